"""A run killed half-way (SIGKILL) resumes from the request cache: every call that finished before
the kill is reused, none is repeated, and the killed run leaves no version behind.

Real llm-katan echo server with 300 ms latency; real `rlaif run` subprocesses. Two policies
(temperatures differ, so their echo replies differ) with one sample each: 40 prompts -> 80
generation calls at 4 in flight, then 40 pairs x 2 orders = 80 judge calls.
"""

from __future__ import annotations

import json
import os
import re
import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import pytest
import yaml

from rlaif.store.versions import list_versions, load_manifest, read_table, versions_dir
from tests.conftest import ROOT
from tests.servers import start_llm_katan

pytestmark = pytest.mark.slow

N_PROMPTS = 40
IN_FLIGHT = 4  # policy max_concurrency
KILL_AT = 20  # cached calls
TOTAL_CALLS = N_PROMPTS * 2 + N_PROMPTS * 2  # 2 policies x 1 sample, then 1 pair per prompt x 2 orders
ENV = {**os.environ, "RLAIF_PROGRESS": "0", "PREFECT_SERVER_ANALYTICS_ENABLED": "false", "DO_NOT_TRACK": "1"}


def write_recipe(folder: Path, base_url: str, model: str) -> Path:
    prompts = folder / "prompts.jsonl"
    prompts.write_text(
        "".join(json.dumps({"id": f"r{i:03d}", "prompt": f"Resume question {i}?"}) + "\n" for i in range(N_PROMPTS))
    )
    endpoint = {"backend": "openai", "base_url": base_url, "model": model}
    recipe = {
        "name": "resume",
        "prompts": {"path": str(prompts)},
        "policies": [
            {
                "name": name,
                **endpoint,
                "max_concurrency": IN_FLIGHT,
                "params": {"temperature": t, "max_tokens": 32, "seed": 1},
            }
            for name, t in (("cold", 0.2), ("hot", 0.9))
        ],
        "samples_per_prompt": 1,
        "judge": {**endpoint, "template": "prompts/pairwise_judge.j2"},
        "min_verdict_share": 0,  # the echo server's answers give no verdict: the run commits them as judge_failed
    }
    path = folder / "recipe.yaml"
    path.write_text(yaml.safe_dump(recipe))
    return path


def cached_rows(cache: Path) -> int:
    if not cache.exists():
        return 0
    try:
        with sqlite3.connect(f"file:{cache}?mode=ro", uri=True, timeout=5) as db:
            return db.execute("SELECT COUNT(*) FROM calls").fetchone()[0]
    except sqlite3.OperationalError:  # created but the table is not there yet
        return 0


def summary(result: subprocess.CompletedProcess) -> dict:
    assert result.returncode == 0, result.stdout + result.stderr
    calls = re.search(r"calls: live (\d+), cached (\d+), failed (\d+)", result.stdout)
    version = re.search(r"version: (\S+)", result.stdout)
    assert calls and version, result.stdout
    return {"live": int(calls[1]), "cached": int(calls[2]), "failed": int(calls[3]), "version": version[1]}


def test_killed_run_resumes_without_repeating_a_call(tmp_path):
    with start_llm_katan("--latency-ms", "300", "--max-concurrent", "64") as server:
        recipe = write_recipe(tmp_path, server.base_url, server.model)
        store = tmp_path / "store"
        cache = store / "cache.sqlite"
        argv = [sys.executable, "-m", "rlaif.cli", "run", str(recipe), "--store", str(store)]

        # run 1: killed (with anything it started) once >= KILL_AT calls are in the cache
        proc = subprocess.Popen(
            argv, cwd=ROOT, env=ENV, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, start_new_session=True
        )
        try:
            deadline = time.monotonic() + 120
            while cached_rows(cache) < KILL_AT:
                assert proc.poll() is None, f"run ended before it was killed:\n{proc.stdout.read().decode()}"
                assert time.monotonic() < deadline, "the run never reached the kill point"
                time.sleep(0.02)
        finally:
            if proc.poll() is None:
                os.killpg(proc.pid, signal.SIGKILL)
            proc.wait(timeout=10)
            proc.stdout.close()
        assert proc.returncode == -signal.SIGKILL
        n_cached = cached_rows(cache)
        time.sleep(0.6)  # let requests in flight at the kill finish on the server (300 ms latency)
        served_at_kill = server.requests_served()
        assert KILL_AT <= n_cached < N_PROMPTS * 2, "expected the kill to land during sampling"
        # requests in flight when the process died may have been answered but never stored
        assert n_cached <= served_at_kill <= n_cached + IN_FLIGHT
        assert list_versions(store) == []
        assert not versions_dir(store).exists() or not any(versions_dir(store).iterdir()), (
            "the killed run left a version folder"
        )

        # run 2: to completion
        result = subprocess.run(argv, cwd=ROOT, env=ENV, capture_output=True, text=True, timeout=300)
        second = summary(result)
        assert second["cached"] == n_cached  # every call finished before the kill is reused
        assert second["live"] == TOTAL_CALLS - n_cached and second["failed"] == 0  # and none is made again
        assert server.requests_served() - served_at_kill == second["live"]
        # distinct successful calls = stored by run 1 + made by run 2; the only extra answers are the
        # (at most IN_FLIGHT) ones the server sent to the killed process
        assert server.requests_served() == TOTAL_CALLS + (served_at_kill - n_cached)
        assert cached_rows(cache) == TOTAL_CALLS

    versions = list_versions(store)
    assert [v["id"] for v in versions] == [second["version"]]
    assert not [p.name for p in versions_dir(store).iterdir() if p.name.startswith(".tmp-")]
    manifest = load_manifest(store, second["version"])
    assert manifest["calls"] == {"live": second["live"], "cached": n_cached, "failed": 0}
    assert manifest["counts"]["generations"] == N_PROMPTS * 2 and manifest["counts"]["in"] == N_PROMPTS
    generations = read_table(store, second["version"], "generations")
    assert sorted((g["prompt_id"], g["policy"]) for g in generations) == sorted(
        (f"r{i:03d}", p) for i in range(N_PROMPTS) for p in ("cold", "hot")
    )
    assert all(g["error"] is None and g["text"].startswith("[echo]") for g in generations)
    assert manifest["counts"]["dropped"]["judge_failed"] == N_PROMPTS  # the echo judge never answers with a verdict
