"""The local Prefect server that runs share when PREFECT_API_URL is not set (rlaif/flows/shared_server.py): the first
run starts it, later runs reuse it (its pid is the same), a run still shows as a flow run with its tasks and artifacts
whose "View at" link opens, a SIGKILLed run's flow run is marked Crashed by the next, and the server stops itself once
no command has used it for the idle time (never while one holds it). Runs go against tests/det_server.py."""

from __future__ import annotations

import json
import os
import re
import shutil
import signal
import sqlite3
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest

from rlaif.flows.shared_server import healthy, read_state, shared_server, stop_server
from tests.badinput import ROOT, cli_env, two_policy_recipe
from tests.det_server import DetServer

QUESTIONS = [f"Question {i}: name a number above {i}." for i in range(6)]
pytestmark = pytest.mark.slow


@pytest.fixture
def home(tmp_path, monkeypatch):
    home = tmp_path / "prefect-home"
    monkeypatch.setenv("PREFECT_HOME", str(home))
    monkeypatch.delenv("PREFECT_API_URL", raising=False)
    monkeypatch.delenv("RLAIF_PREFECT_SERVER", raising=False)
    yield home
    stop_server()


def rlaif(*args: str, env: dict | None = None, **popen) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "rlaif.cli", *args],
        cwd=ROOT,
        env=cli_env({"PREFECT_API_URL": None, **(env or {})}),
        capture_output=True,
        text=True,
        timeout=300,
        **popen,
    )


def api(url: str, path: str, body: dict | None = None):
    request = urllib.request.Request(
        f"{url}/{path}", data=json.dumps(body or {}).encode(), headers={"Content-Type": "application/json"}
    )
    with urllib.request.urlopen(request, timeout=10) as response:
        return json.loads(response.read())


def flow_runs(url: str) -> list[dict]:
    return sorted(api(url, "flow_runs/filter"), key=lambda run: run["created"])


def test_runs_share_one_server_and_still_show_as_flow_runs_with_tasks_and_artifacts(home, tmp_path):
    with DetServer() as server:
        recipe = two_policy_recipe(tmp_path, server.base_url, QUESTIONS, "shared")
        first = rlaif("run", str(recipe), "--store", str(tmp_path / "store"))
        assert first.returncode == 0, first.stderr
        state = read_state()
        second = rlaif("run", str(recipe), "--store", str(tmp_path / "store"), "--limit", "3")
        assert second.returncode == 0, second.stderr
    assert read_state() == state, "the second run used the server the first one started"
    runs = flow_runs(state["url"])
    assert [run["state_type"] for run in runs] == ["COMPLETED", "COMPLETED"]
    tasks = api(state["url"], "task_runs/filter", {"flow_runs": {"id": {"any_": [runs[0]["id"]]}}})
    assert {task["name"].rsplit("-", 1)[0] for task in tasks} >= {"prompts_task", "sample_task", "judge_task"}
    artifacts = api(state["url"], "artifacts/filter", {"artifacts": {"flow_run_id": {"any_": [runs[0]["id"]]}}})
    assert {artifact["key"] for artifact in artifacts} >= {"rlaif-run-progress"}
    link = re.search(r"View at (http://\S+)", first.stdout + first.stderr)[1]
    assert link == f"{state['url'].removesuffix('/api')}/runs/flow-run/{runs[0]['id']}"
    browser = urllib.request.Request(link, headers={"Accept": "text/html"})  # as a browser asks for a page
    with urllib.request.urlopen(browser, timeout=10) as page:  # the UI is served: the link opens
        assert page.status == 200 and b"<html" in page.read().lower()


def test_a_killed_run_leaves_the_server_up_and_the_next_run_marks_it_crashed(home, tmp_path):
    store = tmp_path / "store"
    with DetServer(latency_s=0.3) as server:
        questions = [f"Question {i}: what is {i} squared?" for i in range(12)]
        recipe = two_policy_recipe(tmp_path, server.base_url, questions, "killed", max_concurrency=2)
        argv = [sys.executable, "-m", "rlaif.cli", "run", str(recipe), "--store", str(store)]
        proc = subprocess.Popen(argv, cwd=ROOT, env=cli_env({"PREFECT_API_URL": None}), stdout=subprocess.DEVNULL)
        deadline = time.monotonic() + 180
        while not cached_calls(store) >= 4:
            assert proc.poll() is None and time.monotonic() < deadline, "the run ended before it was killed"
            time.sleep(0.05)
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait()
        state = read_state()
        assert [run["state_type"] for run in flow_runs(state["url"])] == ["RUNNING"]
        again = rlaif("run", str(recipe), "--store", str(store))
        assert again.returncode == 0, again.stderr
    assert read_state() == state, "the server outlives a killed run: it is the runs' to share"
    assert [run["state_type"] for run in flow_runs(state["url"])] == ["CRASHED", "COMPLETED"]


def running(pid: int) -> bool:
    """Whether `pid` runs (a zombie that no parent reaped yet - here, a container's pid 1 may not - is gone)."""
    try:
        return "\nState:\tZ" not in Path(f"/proc/{pid}/status").read_text()
    except OSError:
        return False


def cached_calls(store: Path) -> int:
    try:
        with sqlite3.connect(store / "cache.sqlite") as db:
            return db.execute("SELECT COUNT(*) FROM calls").fetchone()[0]
    except sqlite3.Error:
        return 0


def test_the_server_stops_when_idle_and_never_while_a_command_uses_it(home, monkeypatch):
    monkeypatch.setenv("RLAIF_SERVER_IDLE_S", "1")
    with shared_server() as url:
        state = read_state()
        time.sleep(4)  # four idle times, but a command holds the server
        assert read_state() == state and healthy(url)
    deadline = time.monotonic() + 60
    while running(state["pid"]):
        assert time.monotonic() < deadline, "the server did not stop once idle"
        time.sleep(0.1)
    assert read_state() is None


def test_server_start_status_and_stop(home):
    assert rlaif("server", "status").returncode == 1
    started = rlaif("server", "start")
    assert started.returncode == 0, started.stderr
    state = read_state()
    assert f"Prefect server: {state['url'].removesuffix('/api')} (UI)" in started.stdout
    status = rlaif("server", "status", "--json")
    assert status.returncode == 0 and json.loads(status.stdout) == {"running": True, **state}
    stopped = rlaif("server", "stop")
    assert stopped.returncode == 0 and f"stopped the shared Prefect server (pid {state['pid']})" in stopped.stdout
    assert not running(state["pid"]) and read_state() is None
    assert rlaif("server", "status").returncode == 1


CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")


@pytest.mark.skipif(CHROMIUM is None, reason="needs Chromium: apt-get install chromium (.ci/run installs it)")
def test_the_view_at_link_shows_the_flow_run_in_chromium(home, tmp_path):
    """Issue 26: the link a run prints opens its flow run in a real browser: the UI's pages call this server's
    API (not Prefect's default port 4200, where nothing listens) and show the run by its name."""
    playwright = pytest.importorskip("playwright.sync_api", reason="pip install playwright (in the dev extra)")
    with DetServer() as server:
        recipe = two_policy_recipe(tmp_path, server.base_url, QUESTIONS[:2], "browsed")
        result = rlaif("run", str(recipe), "--store", str(tmp_path / "store"))
    assert result.returncode == 0, result.stderr
    output = result.stdout + result.stderr
    name, link = re.search(r"Flow run '([\w-]+)' - View at (http://\S+)", output).groups()
    with playwright.sync_playwright() as driver:
        browser = driver.chromium.launch(executable_path=CHROMIUM, args=["--no-sandbox"])
        try:
            page = browser.new_page()
            page.goto(link, wait_until="networkidle", timeout=60_000)
            page.get_by_text(name).first.wait_for(timeout=30_000)
            text = page.inner_text("body")
        finally:
            browser.close()
    assert "Can't connect to Server API" not in text and "Something went wrong" not in text, text[:2000]
