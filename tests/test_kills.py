"""Killed runs leave nothing behind: SIGKILL during sampling, judging and the version commit, and
SIGTERM, each of a real `rlaif run` subprocess (only its pid is signalled, as `kill PID` does).

After each kill: no Prefect server of that run is alive 5 s later; no half-written version is
listed; the next run completes, repeats no finished call and leaves no `versions/.tmp-*` or work
folder; the request cache is intact; the killed flow run is Crashed in Prefect's database, not
RUNNING. Same recipe and llm-katan latency as tests/test_resume.py (40 prompts, 80 generation
calls at 4 in flight, then 80 judge calls); Prefect's database is this module's own (PREFECT_HOME).
"""

from __future__ import annotations

import os
import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import pytest

from rlaif.store.versions import PAUSE_IN_COMMIT, folder_digest, list_versions, load_manifest, versions_dir
from tests.conftest import ROOT
from tests.servers import start_llm_katan
from tests.test_resume import ENV, N_PROMPTS, TOTAL_CALLS, cached_rows, summary, write_recipe

SERVER_APP = "prefect.server.api.server:create_app"
GENERATION_CALLS = N_PROMPTS * 2


@pytest.fixture(scope="module")
def katan():
    with start_llm_katan("--latency-ms", "300", "--max-concurrent", "64") as server:
        yield server


@pytest.fixture(scope="module")
def env(tmp_path_factory):
    # a server of the run's own (RLAIF_PREFECT_SERVER=run): its guarantees are what these tests check; the shared
    # server that runs use by default is tests/test_shared_server.py's
    return {**ENV, "PREFECT_HOME": str(tmp_path_factory.mktemp("prefect-home")), "RLAIF_PREFECT_SERVER": "run"}


def _status(pid: int) -> dict[str, str]:
    try:
        lines = Path(f"/proc/{pid}/status").read_text().splitlines()
    except OSError:
        return {}
    return dict(line.split(":\t", 1) for line in lines if ":\t" in line)


def server_pids(parent: int) -> list[int]:
    """Prefect API servers whose parent is `parent` (read from /proc)."""
    found = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit() and _status(int(entry.name)).get("PPid", "").strip() == str(parent):
            try:
                if SERVER_APP in (entry / "cmdline").read_bytes().decode(errors="replace"):
                    found.append(int(entry.name))
            except OSError:
                pass
    return found


def alive(pid: int) -> bool:
    state = _status(pid).get("State", "")
    return bool(state) and not state.startswith("Z")  # a zombie is dead, only not yet reaped


def flow_run_states(home: str) -> list[str]:
    with sqlite3.connect(f"file:{Path(home) / 'prefect.db'}?mode=ro", uri=True, timeout=10) as db:
        return [row[0] for row in db.execute("SELECT state_type FROM flow_run ORDER BY created")]


def argv_of(recipe: Path, store: Path) -> list[str]:
    return [sys.executable, "-m", "rlaif.cli", "run", str(recipe), "--store", str(store)]


def run_until(argv, env, ready, timeout: float = 180) -> tuple[subprocess.Popen, list[int]]:
    """Start `rlaif run`; wait for `ready()`; returns the process and its Prefect server's pid(s)."""
    proc = subprocess.Popen(argv, cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    deadline, servers = time.monotonic() + timeout, []
    while not ready():
        servers = servers or server_pids(proc.pid)
        if proc.poll() is not None:
            raise AssertionError(f"run ended before it was killed:\n{proc.stdout.read().decode()}")
        if time.monotonic() > deadline:
            proc.kill()
            raise AssertionError("the run never reached the kill point")
        time.sleep(0.02)
    return proc, servers or server_pids(proc.pid)


def kill(proc: subprocess.Popen, sig: int, servers: list[int]) -> str:
    """Signal the run's pid only; the server(s) must be gone 5 s later; returns the run's output."""
    assert servers, "the run's own Prefect server was not found"
    os.kill(proc.pid, sig)
    killed_at = time.monotonic()
    output, _ = proc.communicate(timeout=60)  # returns only once nothing holds the run's stdout
    while any(alive(pid) for pid in servers) and time.monotonic() - killed_at < 5:
        time.sleep(0.05)
    assert not [pid for pid in servers if alive(pid)], "the run's Prefect server outlived it by 5 s"
    return output.decode(errors="replace")


def resume(recipe: Path, store: Path, env: dict, n_cached: int) -> dict:
    """The next run: completes, reuses every stored call, makes only the missing ones, leaves nothing behind."""
    result = subprocess.run(argv_of(recipe, store), cwd=ROOT, env=env, capture_output=True, text=True, timeout=300)
    second = summary(result)
    assert second["cached"] == n_cached and second["live"] == TOTAL_CALLS - n_cached and second["failed"] == 0
    assert [v["id"] for v in list_versions(store)] == [second["version"]]
    manifest = load_manifest(store, second["version"])
    assert second["version"] == f"resume-{folder_digest(versions_dir(store) / second['version'], manifest)}"
    assert [p.name for p in versions_dir(store).iterdir() if p.name.startswith(".tmp-")] == []
    assert list((store / ".runs").iterdir()) == []
    with sqlite3.connect(store / "cache.sqlite") as db:
        assert db.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
    assert cached_rows(store / "cache.sqlite") == TOTAL_CALLS
    return second


def test_a_configured_prefect_api_is_used_and_nothing_started(monkeypatch):
    from rlaif.flows import server

    monkeypatch.setenv("PREFECT_API_URL", "http://127.0.0.1:9/api")
    monkeypatch.setattr(server, "_launch", lambda log: pytest.fail("no server may be started"))
    with server.prefect_api() as url:
        assert url == "http://127.0.0.1:9/api"


@pytest.mark.slow
@pytest.mark.parametrize("point", ["sampling", "judging"])
def test_sigkill_resumes_and_leaves_nothing(tmp_path, katan, env, point):
    recipe, store = write_recipe(tmp_path, katan.base_url, katan.model), tmp_path / "store"
    kill_at = 20 if point == "sampling" else GENERATION_CALLS + 20
    states_before = (
        len(flow_run_states(env["PREFECT_HOME"])) if (Path(env["PREFECT_HOME"]) / "prefect.db").exists() else 0
    )
    proc, servers = run_until(argv_of(recipe, store), env, lambda: cached_rows(store / "cache.sqlite") >= kill_at)
    kill(proc, signal.SIGKILL, servers)
    assert proc.returncode == -signal.SIGKILL
    n_cached = cached_rows(store / "cache.sqlite")
    if point == "sampling":
        assert n_cached < GENERATION_CALLS, "expected the kill to land during sampling"
    else:
        assert GENERATION_CALLS <= n_cached < TOTAL_CALLS, "expected the kill to land during judging"
    assert list_versions(store) == []
    assert flow_run_states(env["PREFECT_HOME"])[states_before:] == ["RUNNING"]  # nobody could say otherwise yet
    time.sleep(0.6)  # requests in flight at the kill finish on the server
    resume(recipe, store, env, n_cached)
    assert flow_run_states(env["PREFECT_HOME"])[states_before:] == ["CRASHED", "COMPLETED"]  # marked by the next run


@pytest.mark.slow
def test_sigkill_during_commit_leaves_no_tmp_folder(tmp_path, katan, env):
    recipe, store = write_recipe(tmp_path, katan.base_url, katan.model), tmp_path / "store"
    first_table = versions_dir(store) / ".tmp-resume-*" / "feedback.parquet"
    half_written = lambda: bool(list(versions_dir(store).glob(".tmp-resume-*/feedback.parquet")))  # noqa: E731
    proc, servers = run_until(argv_of(recipe, store), {**env, PAUSE_IN_COMMIT: "60"}, half_written)
    kill(proc, signal.SIGKILL, servers)
    assert list(versions_dir(store).glob(".tmp-*/")), f"the kill should leave {first_table.parent}"
    assert list_versions(store) == [] and cached_rows(store / "cache.sqlite") == TOTAL_CALLS
    second = resume(recipe, store, env, TOTAL_CALLS)
    assert second["live"] == 0
    assert sorted(p.name for p in versions_dir(store).iterdir()) == [second["version"]]


@pytest.mark.slow
def test_sigterm_stops_server_and_crashes_flow_run(tmp_path, katan, env):
    recipe, store = write_recipe(tmp_path, katan.base_url, katan.model), tmp_path / "store"
    states_before = (
        len(flow_run_states(env["PREFECT_HOME"])) if (Path(env["PREFECT_HOME"]) / "prefect.db").exists() else 0
    )
    proc, servers = run_until(argv_of(recipe, store), env, lambda: cached_rows(store / "cache.sqlite") >= 20)
    output = kill(proc, signal.SIGTERM, servers)  # communicate() returning = nothing holds the pipe (`| tee` ends)
    assert proc.returncode == 128 + signal.SIGTERM, output
    assert flow_run_states(env["PREFECT_HOME"])[states_before:] == ["CRASHED"]
    assert list_versions(store) == [] and list((store / ".runs").iterdir()) == []
    time.sleep(0.6)
    resume(recipe, store, env, cached_rows(store / "cache.sqlite"))
