"""Shared test helpers: a fake backend for exact logic, tiny recipes, project paths."""

from __future__ import annotations

import json
import os
import tempfile
from collections.abc import Iterator
from pathlib import Path
from unittest import mock

import pytest

ROOT = Path(__file__).resolve().parents[1]
SHARED_DATA = ROOT.parent / "shared" / "data"
MT_BENCH_GOLD = SHARED_DATA / "mt-bench-human-sample" / "pairs.jsonl"
os.environ.setdefault("PREFECT_SERVER_ANALYTICS_ENABLED", "false")
os.environ.setdefault("DO_NOT_TRACK", "1")
# Prefect's own ephemeral server (a flow called in a test's child process) waits 20 s for its start by default:
# a busy machine (parallel workers) can take longer. Waiting longer changes no outcome, only when a failure shows.
os.environ.setdefault("PREFECT_SERVER_EPHEMERAL_STARTUP_TIMEOUT_SECONDS", "180")
# the shared local Prefect server that a run without PREFECT_API_URL starts (rlaif/flows/shared_server.py) stops
# after 30 idle seconds in tests, not 30 minutes; pytest_sessionfinish stops those still up
os.environ.setdefault("RLAIF_SERVER_IDLE_S", "30")
if int(os.environ.get("PYTEST_XDIST_WORKER_COUNT", "1")) > 1:
    # parallel workers (make test): one compute thread per process, the worker and every child it starts. Several
    # torch processes with a thread per core each spin against each other (6 workers without it: 70 min of CPU).
    for _threads in ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS"):
        os.environ.setdefault(_threads, "1")
    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
    # a Prefect home (its SQLite database) per worker: the runs of two workers never write one database
    os.environ["PREFECT_HOME"] = str(
        Path(tempfile.gettempdir()) / f"rlaif-tests-prefect-{os.environ.get('PYTEST_XDIST_WORKER', 'gw')}"
    )


def write_prompts(path: Path, prompts: list[str]) -> Path:
    path.write_text("".join(json.dumps({"id": f"p{i}", "prompt": p}) + "\n" for i, p in enumerate(prompts)))
    return path


def shared_data(path: Path) -> Path:
    """`path` under ../shared/data, or the test is skipped saying where that data comes from."""
    if not path.exists():
        pytest.skip(
            f"{path} not found: the human-labelled pairs and prompt sets (MT-Bench, PandaLM, LLMEval2; each with its "
            f"license) live in ../shared/data beside the project's checkout, not in the repository - put that folder "
            f"there to run this test"
        )
    return path


@pytest.fixture(scope="session")
def prefect_server(tmp_path_factory) -> Iterator[str]:
    """One Prefect API server (its own home and SQLite database) for the session; yields its API URL.
    Started on first use, stopped at the session's end (and killed with pytest: flows/server.py)."""
    from rlaif.flows.server import start_server, stop

    home = tmp_path_factory.mktemp("prefect-shared")
    with open(home / "server.log", "w+b") as log:
        with mock.patch.dict(os.environ, {"PREFECT_HOME": str(home)}):
            proc, url = start_server(log)
        try:
            yield url
        finally:
            stop(proc)


@pytest.fixture
def shared_prefect(prefect_server: str, monkeypatch) -> str:
    """`rlaif run` in a test's child processes uses the session's Prefect server (PREFECT_API_URL), as a
    user's runs use `make server`, instead of starting one of its own (8-18 s of CPU each). For tests
    whose subject is not the run's own server: test_kills and test_e2e keep theirs."""
    monkeypatch.setenv("PREFECT_API_URL", prefect_server)
    return prefect_server


@pytest.fixture(scope="module")
def tiny_model(tmp_path_factory) -> str:
    """A one-layer random llama with smollm2's tokenizer (tests/tiny_lm.py), one thread: real trainer steps in a second."""
    import torch

    from tests.tiny_lm import tiny_causal_lm

    torch.set_num_threads(1)
    return tiny_causal_lm(tmp_path_factory.mktemp("tiny") / "model")


@pytest.fixture
def prompts_file(tmp_path: Path) -> Path:
    return write_prompts(tmp_path / "prompts.jsonl", ["Say hi.", "Name a colour.", "What is 2+2?", "Give a fruit."])


@pytest.fixture
def use_backend(monkeypatch):
    """Install a scripted backend (tests/fakes.py) wherever a judge makes one; returns it."""
    from rlaif.judges import common

    def install(backend):
        def factory(spec):
            backend.spec = spec
            return backend

        monkeypatch.setattr(common, "make_backend", factory)
        return backend

    return install


def pytest_sessionfinish(session) -> None:
    """Stop the shared Prefect servers that tests' runs started (under this session's temporary folders)."""
    from rlaif.flows.shared_server import stop_server

    roots = [Path(tempfile.gettempdir()) / f"rlaif-tests-prefect-{os.environ.get('PYTEST_XDIST_WORKER', 'gw')}"]
    factory = getattr(session.config, "_tmp_path_factory", None)
    if factory is not None:
        roots.append(factory.getbasetemp())
    for root in roots:
        for state in Path(root).rglob("rlaif-server.json") if Path(root).is_dir() else []:
            with mock.patch.dict(os.environ, {"PREFECT_HOME": str(state.parent)}):
                stop_server()
