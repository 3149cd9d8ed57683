"""Ctrl-C and SIGTERM stop the spending (rlaif.pipeline.runner.stop_on_signal, rlaif/backends): a real
`rlaif run` child process, with and without Prefect, against a stand-in server that answers each request
after 100 ms and counts every request it receives. After the signal no new request is sent: the server
receives at most the requests that were already on their way (the endpoint's `max_concurrency`); those
that come back in the grace period are cached; the run exits 130 (SIGINT) or 143 (SIGTERM), commits
nothing, and the next run resumes without paying for a finished call again.
"""

from __future__ import annotations

import signal
import subprocess
import sys
import time

import pytest

from rlaif.store.versions import list_versions
from tests.badinput import cli_env, two_policy_recipe
from tests.conftest import ROOT
from tests.det_server import DetServer
from tests.test_faults import cached_rows

CONCURRENCY = 8


def recipe_for(folder, base_url: str, prompts: int):
    questions = [f"Stop question {i}: name thing {i}." for i in range(prompts)]
    return two_policy_recipe(folder, base_url, questions, "stop", max_concurrency=CONCURRENCY)


def signalled_run(tmp_path, prompts: int, sig: int, *flags: str) -> tuple[int, int, int, int, str]:
    """Start `rlaif run`, signal it once the server gave 100 answers; (exit code, requests received at the signal,
    requests received after it, answers the server gave, output)."""
    with DetServer(latency_s=0.1) as server:
        recipe, store = recipe_for(tmp_path, server.base_url, prompts), tmp_path / "store"
        argv = [sys.executable, "-m", "rlaif.cli", "run", str(recipe), "--store", str(store), *flags]
        proc = subprocess.Popen(
            argv,
            cwd=ROOT,
            env=cli_env(),
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            # Ctrl-C reaches a terminal's foreground process: set, not inherited, since pytest run as a background
            # job of a script (`make test &`) has SIGINT ignored, which fork and exec keep (tests/test_deploy.py spawned)
            preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL),
        )
        try:
            while server.calls < 100:
                assert proc.poll() is None, proc.stdout.read().decode()
                time.sleep(0.02)
            proc.send_signal(sig)
            at_signal = server.received
            output, _ = proc.communicate(timeout=120)
        finally:
            proc.kill()
        return proc.returncode, at_signal, server.received - at_signal, server.calls, output.decode(errors="replace")


# 300 prompts: one chunk, so the signal comes while the driver waits for every step to end; 1,000: four
# chunks, while it still submits them
CASES = [
    pytest.param(300, signal.SIGINT, ("--no-prefect",), id="300-sigint-no-prefect"),
    pytest.param(300, signal.SIGTERM, ("--no-prefect",), id="300-sigterm-no-prefect"),
    pytest.param(300, signal.SIGINT, (), id="300-sigint-prefect"),
    pytest.param(300, signal.SIGTERM, (), id="300-sigterm-prefect"),
    pytest.param(1_000, signal.SIGINT, ("--no-prefect",), id="1000-sigint-no-prefect"),
    # two Ray shard workers (a Ray of the run's own), each with its own 8 requests in flight
    pytest.param(1_000, signal.SIGINT, ("--no-prefect", "--ray", "local"), id="1000-sigint-ray"),
]


@pytest.mark.slow
@pytest.mark.parametrize("prompts, sig, flags", CASES)
def test_a_stop_signal_sends_no_further_request_and_keeps_what_came_back(tmp_path, prompts, sig, flags, request):
    if not flags:
        request.getfixturevalue("shared_prefect")  # the flow run reports to the session's Prefect server
    code, at_signal, after, answered, output = signalled_run(tmp_path, prompts, sig, *flags)
    assert code == 128 + sig, output
    in_flight = CONCURRENCY * (2 if "--ray" in flags else 1)
    assert after <= in_flight, f"{after} requests reached the server after the signal ({at_signal} before)"
    store = tmp_path / "store"
    assert list_versions(store) == [] and "Traceback" not in output, output
    # what came back before the run ended is cached, none of it lost: every answer the server gave
    assert cached_rows(store / "cache.sqlite") == answered
