"""The layers of rlaif (pyproject.toml [tool.importlinter], docs/development.md): checked on the tree, and
shown to catch an upward import inside a function, the kind that used to close the import circles."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from tests.conftest import ROOT

LINT = Path(sys.executable).with_name("lint-imports")
pytestmark = pytest.mark.skipif(not LINT.exists(), reason="import-linter is a dev dependency (make install)")


def lint(where: Path) -> subprocess.CompletedProcess:
    env = {"PYTHONPATH": str(where), "PATH": "/usr/bin:/bin", "HOME": str(where)}
    return subprocess.run(
        [str(LINT), str(where / "pyproject.toml"), "--no-cache"],
        cwd=where,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )


def test_the_tree_keeps_its_layers() -> None:
    done = lint(ROOT)
    assert done.returncode == 0, done.stdout[-3000:]
    assert "KEPT" in done.stdout and "BROKEN" not in done.stdout


def test_an_upward_import_inside_a_function_breaks_the_contract(tmp_path: Path) -> None:
    shutil.copytree(
        ROOT / "rlaif", tmp_path / "rlaif", ignore=shutil.ignore_patterns("__pycache__")
    )  # rlaif/flows: its files
    shutil.copy(ROOT / "pyproject.toml", tmp_path / "pyproject.toml")
    lowest = tmp_path / ("rlaif.core.errors".replace(".", "/") + ".py")
    lowest.write_text(
        lowest.read_text()
        + "\n\ndef _upward():\n    from rlaif.pipeline.runner import run_recipe\n\n    return run_recipe\n"
    )
    done = lint(tmp_path)
    assert done.returncode != 0 and "BROKEN" in done.stdout
    assert "rlaif.core is not allowed to import rlaif.pipeline" in done.stdout, done.stdout[-3000:]
    assert "rlaif.core.errors -> rlaif.pipeline.runner" in done.stdout
