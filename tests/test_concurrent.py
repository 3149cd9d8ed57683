"""Concurrent runs on one store do not break each other.

The lock rule (rlaif/store/locks.py): a work folder (`STORE/.runs/<name>/`) or a commit's
`versions/.tmp-*` folder is removed only when its owner's lock can be taken, i.e. its process is
gone. Then ten pairs of runs started together on a new store (same recipe, or two recipes):
all succeed, every version is valid, nothing is left behind. Most pairs call the library
(`rlaif.pipeline.runner.run_recipe`) in subprocesses; one pair is two real `rlaif run` processes.
"""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest
import yaml

from rlaif.store.versions import folder_digest, list_versions, remove_abandoned_commits, versions_dir
from rlaif.store.workdirs import new_work_folder, remove_work_folder
from tests.conftest import ROOT
from tests.servers import start_llm_katan
from tests.test_resume import ENV, cached_rows

N_PROMPTS = 5
CALLS = N_PROMPTS * 2 + N_PROMPTS * 2  # 2 policies x 1 sample, then 1 pair per prompt x 2 orders

HOLDER = textwrap.dedent("""
    import sys, time
    from pathlib import Path
    from rlaif.store.locks import hold
    kind, target = sys.argv[1], Path(sys.argv[2])
    if kind == "run":
        from rlaif.store.workdirs import new_work_folder
        print(new_work_folder(target), flush=True)
    else:  # a commit's temporary folder and its lock, as commit_tables makes them
        from rlaif.store.artifacts import new_tmp_folder
        print(new_tmp_folder(target, "held")[0], flush=True)
    time.sleep(120)
""")


def start_holder(kind: str, target: Path) -> tuple[subprocess.Popen, Path]:
    proc = subprocess.Popen(
        [sys.executable, "-c", HOLDER, kind, str(target)], cwd=ROOT, stdout=subprocess.PIPE, text=True
    )
    return proc, Path(proc.stdout.readline().strip())


def kill(proc: subprocess.Popen) -> None:
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait(timeout=10)
    proc.stdout.close()


def test_a_live_runs_work_folder_is_kept_and_a_dead_runs_removed(tmp_path):
    runs = tmp_path / ".runs"
    proc, theirs = start_holder("run", runs)
    try:
        legacy = runs / "12345-old"  # no lock file: made by an older rlaif, or died before locking
        legacy.mkdir()
        mine = new_work_folder(runs)
        assert theirs.is_dir() and (theirs / "lock").is_file(), "a live run's folder must survive another run's start"
        assert not legacy.exists()
        kill(proc)
        again = new_work_folder(runs)
        assert not theirs.exists(), "a killed run's folder is removed by the next start"
        assert mine.is_dir() and again.is_dir()  # this process's own runs are alive
    finally:
        if proc.poll() is None:
            kill(proc)
    for folder in (mine, again):
        remove_work_folder(folder)
    assert list(runs.iterdir()) == []


def test_an_abandoned_commit_is_removed_only_when_its_owner_is_gone(tmp_path):
    store = tmp_path / "store"
    proc, tmp = start_holder("commit", versions_dir(store))
    try:
        pull = versions_dir(store) / ".tmp-pulled-abc"  # no lock file: e.g. a `datasets pull` under way
        pull.mkdir()
        (tmp / "feedback.parquet").write_bytes(b"half")
        assert remove_abandoned_commits(store) == [] and tmp.is_dir()
        kill(proc)
        assert remove_abandoned_commits(store) == [tmp.name]
        assert not tmp.exists() and not tmp.with_name(tmp.name + ".lock").exists() and pull.is_dir()
    finally:
        if proc.poll() is None:
            kill(proc)


LIBRARY_RUN = textwrap.dedent("""
    import json, sys, time
    from pathlib import Path
    from rlaif.config.recipe import load_recipe
    from rlaif.pipeline.runner import run_recipe
    recipe, store, barrier, me = load_recipe(sys.argv[1]), sys.argv[2], Path(sys.argv[3]), sys.argv[4]
    (barrier / me).touch()
    deadline = time.monotonic() + 60
    while len(list(barrier.iterdir())) < 2 and time.monotonic() < deadline:  # start together
        time.sleep(0.002)
    version_id, created, manifest, run = run_recipe(recipe, store)
    print(json.dumps({"version": version_id, "created": created, **manifest["calls"]}))
""")


def write_recipe(folder: Path, base_url: str, model: str, name: str, temperatures: tuple[float, float]) -> Path:
    prompts = folder / "prompts.jsonl"
    if not prompts.exists():
        prompts.write_text(
            "".join(
                json.dumps({"id": f"c{i}", "prompt": f"Concurrent question {i}?"}) + "\n" for i in range(N_PROMPTS)
            )
        )
    endpoint = {"backend": "openai", "base_url": base_url, "model": model}
    recipe = {
        "name": name,
        "prompts": {"path": str(prompts)},
        "samples_per_prompt": 1,
        "policies": [
            {
                "name": f"p{i}",
                **endpoint,
                "max_concurrency": 4,
                "params": {"temperature": t, "max_tokens": 16, "seed": 1},
            }
            for i, t in enumerate(temperatures)
        ],
        "judge": {**endpoint, "template": "prompts/pairwise_judge.j2"},
        "min_verdict_share": 0,  # the echo server's answers give no verdict: the run commits them as judge_failed
    }
    path = folder / f"{name}.yaml"
    path.write_text(yaml.safe_dump(recipe))
    return path


def library_pair(recipes: list[Path], store: Path, barrier: Path) -> list[dict]:
    barrier.mkdir()
    procs = [
        subprocess.Popen(
            [sys.executable, "-c", LIBRARY_RUN, str(r), str(store), str(barrier), str(i)],
            cwd=ROOT,
            env=ENV,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for i, r in enumerate(recipes)
    ]
    results = []
    for proc in procs:
        out, errors = proc.communicate(timeout=180)
        assert proc.returncode == 0, errors[-3000:]
        results.append(json.loads(out.strip().splitlines()[-1]))
    return results


def cli_pair(recipes: list[Path], store: Path) -> list[dict]:
    procs = [
        subprocess.Popen(
            [sys.executable, "-m", "rlaif.cli", "run", str(r), "--store", str(store)],
            cwd=ROOT,
            env=ENV,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
        )
        for r in recipes
    ]
    results = []
    for proc in procs:
        out, _ = proc.communicate(timeout=300)
        assert proc.returncode == 0, out[-3000:]
        calls = re.search(r"calls: live (\d+), cached (\d+), failed (\d+)", out)
        version = re.search(r"version: (\S+)", out)
        created = "(already in the store" not in out.split("version:")[-1]
        results.append(
            {
                "version": version[1],
                "live": int(calls[1]),
                "cached": int(calls[2]),
                "failed": int(calls[3]),
                "created": created,
            }
        )
    return results


def check_store(store: Path, results: list[dict], same: bool) -> int:
    """Both succeeded; the store holds exactly their valid versions and each call once, nothing
    half-done; returns how many calls were paid twice (made live by both runs).

    llm-katan's replies carry the time, so when both runs of one recipe make a call live they get
    different answers: each version uses its own (valid, but then the two ids differ).
    """
    versions = {m["id"]: m for m in list_versions(store)}
    assert set(versions) == {r["version"] for r in results}
    for version_id, manifest in versions.items():
        assert version_id.endswith("-" + folder_digest(versions_dir(store) / version_id, manifest)), (
            f"{version_id} does not match its content"
        )
    assert all(r["failed"] == 0 and r["live"] + r["cached"] == CALLS for r in results)
    rows = cached_rows(store / "cache.sqlite")
    if same:  # generation calls have the same keys in both runs; judge calls too when the generations were shared
        assert CALLS <= rows <= 2 * CALLS - N_PROMPTS * 2
        created = sorted(r["created"] for r in results)
        assert created == (
            [False, True] if len(versions) == 1 else [True, True]
        )  # one commit wins, the other finds it there
    else:
        assert rows == 2 * CALLS and all(r["created"] for r in results)
    assert [p.name for p in versions_dir(store).iterdir() if p.name.startswith(".tmp-")] == []
    assert list((store / ".runs").iterdir()) == []
    return sum(r["live"] for r in results) - rows


@pytest.mark.slow
def test_ten_concurrent_pairs_on_a_new_store(tmp_path):
    duplicated = 0
    with start_llm_katan("--latency-ms", "100", "--max-concurrent", "64") as server:
        recipe_a = write_recipe(tmp_path, server.base_url, server.model, "conc-a", (0.2, 0.9))
        recipe_b = write_recipe(tmp_path, server.base_url, server.model, "conc-b", (0.3, 0.8))
        for rep in range(10):
            same = rep % 2 == 0 or rep == 9
            recipes = [recipe_a, recipe_a if same else recipe_b]
            store = tmp_path / f"store-{rep}"
            started = time.monotonic()
            results = (
                cli_pair(recipes, store) if rep == 9 else library_pair(recipes, store, tmp_path / f"barrier-{rep}")
            )
            twice = check_store(store, results, same)
            duplicated += twice
            print(
                f"pair {rep} ({'cli' if rep == 9 else 'library'}, {'same' if same else 'different'} recipes): {time.monotonic() - started:.1f} s, {twice} calls paid twice, {results}"
            )
    print(f"calls paid twice by identical concurrent runs: {duplicated} (6 pairs of {CALLS} calls per run)")
