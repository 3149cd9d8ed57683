"""`backend: vllm` in the MAIN environment (Prefect, no vLLM): rlaif serves it with a managed
`vllm serve` from the vLLM environment (rlaif/backends/vllm_server.py, docs/vllm.md).

The real-server tests need .venv-vllm (`make vllm-env`) and are skipped without it; `make test`
runs them with the main venv's pytest. The rest (a missing environment, the leftover-server
reaper, the settings) run everywhere.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest

from rlaif.backends.vllm_backend import vllm_imports
from rlaif.backends.vllm_server import PROJECT_ROOT, reap_leftover_servers, servers_dir, session_members, start_time
from rlaif.store.versions import hashed_recipe, load_manifest, read_table
from tests.badinput import ENV, assert_clean_failure, run_cli, write_recipe
from tests.conftest import write_prompts

if vllm_imports():
    pytest.skip(
        "vLLM imports here: backend: vllm runs in process (tests/test_vllm_backend.py); these tests are for the main environment",
        allow_module_level=True,
    )

VLLM_COMMAND = PROJECT_ROOT / ".venv-vllm" / "bin" / "vllm"
needs_vllm_env = pytest.mark.skipif(
    not VLLM_COMMAND.exists(),
    reason=f"no vLLM environment ({VLLM_COMMAND} is missing) - build it with `make vllm-env`",
)
real = [pytest.mark.vllm, pytest.mark.slow, needs_vllm_env]
PROMPTS = ["Name a fruit.", "Say hello to a friend.", "What colour is the sky?"]
# P(a better) per order, transformers vs managed vLLM on the same generations, float32 both
P_TOLERANCE = 0.002


def recipe(folder: Path, policy_backend: str, judge_backend: str, name: str = "managed") -> Path:
    prompts = write_prompts(folder / "prompts.jsonl", PROMPTS)
    return write_recipe(
        folder,
        {
            "name": name,
            "prompts": {"path": str(prompts), "system": "Answer in one short sentence."},
            "policies": [
                {
                    "name": "smol",
                    "backend": policy_backend,
                    "model": "smollm2-135m",
                    "dtype": "float32",
                    "params": {"temperature": 1.0, "max_tokens": 24, "seed": 3},
                }
            ],
            "samples_per_prompt": 2,
            "judge": {"backend": judge_backend, "model": "smollm2-135m", "dtype": "float32"},
            "filters": {"consistency": False, "min_margin": 0.0, "drop_truncated": False},
        },
        name=f"{name}.yaml",
    )


def version_of(result: subprocess.CompletedProcess) -> str:
    assert result.returncode == 0, result.stdout + result.stderr
    found = re.search(r"^version: (\S+)", result.stdout, re.M)
    assert found, result.stdout
    return found[1]


def server_of(log: Path) -> tuple[int, int]:
    """(pid, port) of the server a log belongs to (its header lines)."""
    text = log.read_text(errors="replace")
    return int(re.search(r"# rlaif: server pid (\d+)", text)[1]), int(re.search(r"on port (\d+)", text)[1])


def assert_gone(pid: int, port: int) -> None:
    """No process of the server: not its pid, none of its session (its engine), none with its port in its command line."""
    assert start_time(pid) is None, f"vllm serve pid {pid} is still running"
    assert session_members(pid) == [], f"processes of the server's session are left: {session_members(pid)}"
    for entry in Path("/proc").iterdir():
        try:
            argv = (entry / "cmdline").read_bytes().split(b"\0") if entry.name.isdigit() else []
        except OSError:
            continue
        if b"serve" in argv and str(port).encode() in argv and start_time(int(entry.name)) is not None:
            pytest.fail(f"a vllm serve on port {port} is left: pid {entry.name} {argv}")


@pytest.fixture(scope="module")
def served(tmp_path_factory):
    """A backend: vllm recipe (policy and judge) run with `rlaif run`, Prefect on."""
    folder = tmp_path_factory.mktemp("managed")
    store = folder / "store"
    started = time.monotonic()
    result = run_cli("run", str(recipe(folder, "vllm", "vllm")), "--store", str(store), timeout=900, process=True)
    return {
        "folder": folder,
        "store": store,
        "version": version_of(result),
        "wall_s": time.monotonic() - started,
        "stdout": result.stdout,
    }


@needs_vllm_env
@pytest.mark.vllm
@pytest.mark.slow
def test_vllm_recipe_runs_through_rlaif_run_with_a_managed_server(served):
    store, version = served["store"], served["version"]
    manifest = load_manifest(store, version)
    assert {k: manifest["models"]["judge"][k] for k in ("backend", "model")} == {
        "backend": "vllm",
        "model": "smollm2-135m",
    }
    assert manifest["calls"] == {"live": 3 * 2 + 3 * 2, "cached": 0, "failed": 0}  # 6 samples + 3 pairs x 2 orders
    assert all(g["error"] is None and g["text"] for g in read_table(store, version, "generations"))
    judgments = read_table(store, version, "judgments")
    assert len(judgments) == 3 and all(j["error"] is None and j["soft"] and j["prob_mass"] > 0.3 for j in judgments), (
        judgments
    )
    (log,) = sorted((store / "logs" / "vllm").glob("*.log"))  # policy and judge share one engine: one server
    assert "Application startup complete" in log.read_text(errors="replace")
    assert_gone(*server_of(log))
    assert list(servers_dir(store).iterdir()) == [], "the server's pid file is removed with it"


@needs_vllm_env
@pytest.mark.vllm
@pytest.mark.slow
def test_judge_probabilities_equal_the_transformers_backend(served):
    """The same generations (the policy's calls come from the cache) judged by transformers: the same P(a) per order."""
    store = served["store"]
    with_transformers = version_of(
        run_cli(
            "run",
            str(recipe(served["folder"], "vllm", "transformers")),
            "--store",
            str(store),
            "--no-prefect",
            timeout=600,
            process=True,
        )
    )
    assert (
        load_manifest(store, with_transformers)["calls"]["cached"] == 6
    )  # the policy did not run again: same responses
    key = lambda j: (j["prompt_id"], j["a_id"], j["b_id"])  # noqa: E731
    vllm = {key(j): j for j in read_table(store, served["version"], "judgments")}
    transformers = {key(j): j for j in read_table(store, with_transformers, "judgments")}
    assert vllm.keys() == transformers.keys() and len(vllm) == 3
    for pair, judged in transformers.items():
        for order in ("p_a_ab", "p_a_ba"):
            assert abs(vllm[pair][order] - judged[order]) <= P_TOLERANCE, (
                pair,
                order,
                vllm[pair][order],
                judged[order],
            )
    assert len(list((store / "logs" / "vllm").glob("*.log"))) == 1, "a fully cached vllm policy starts no server"


@needs_vllm_env
@pytest.mark.vllm
@pytest.mark.slow
def test_sigkill_of_the_run_leaves_no_vllm_server(tmp_path):
    store = tmp_path / "store"
    argv = [
        sys.executable,
        "-m",
        "rlaif.cli",
        "run",
        str(recipe(tmp_path, "vllm", "vllm")),
        "--store",
        str(store),
        "--no-prefect",
    ]
    run = subprocess.Popen(argv, env=ENV, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        info = wait_for_server(store, run)
    finally:
        run.kill()  # SIGKILL: no cleanup code of the run runs
        run.wait()
    next_run = run_cli(
        "run",
        str(recipe(tmp_path, "transformers", "transformers", name="next")),
        "--store",
        str(store),
        "--no-prefect",
        timeout=600,
        process=True,
    )
    version_of(next_run)
    assert_gone(info["pid"], info["port"])
    assert list(servers_dir(store).glob("*.json")) == [], "the next run removed the dead run's server record"


def wait_for_server(store: Path, run: subprocess.Popen, timeout_s: float = 600) -> dict:
    """The record of the run's server once it answers GET /v1/models."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        assert run.poll() is None, f"the run ended (exit {run.returncode}) before its server was up"
        for record in servers_dir(store).glob("*.json") if servers_dir(store).is_dir() else []:
            info = json.loads(record.read_text())
            try:
                if (
                    httpx.get(f"http://127.0.0.1:{info['port']}/v1/models", timeout=2, trust_env=False).status_code
                    == 200
                ):
                    return info
            except httpx.HTTPError:
                pass
        time.sleep(1)
    pytest.fail(f"no vllm server came up in {timeout_s:g} s")


def test_a_missing_vllm_env_is_a_clean_error_naming_the_path(tmp_path):
    missing = tmp_path / "no-such-venv"
    store = tmp_path / "store"
    result = run_cli(
        "run",
        str(recipe(tmp_path, "transformers", "vllm")),
        "--store",
        str(store),
        env={"RLAIF_VLLM_ENV": str(missing)},
    )
    assert_clean_failure(
        result,
        "judge (vllm backend, model 'smollm2-135m')",
        str(missing / "bin" / "vllm"),
        "make vllm-env",
        store=store,
    )


def test_the_next_run_on_a_store_stops_a_server_whose_run_is_gone(tmp_path):
    """The pid-file path: a stand-in server (its own session, with a child) whose run's lock is free is stopped by the next run's pool."""
    from rlaif.backends import BackendPool

    store = tmp_path / "store"
    servers_dir(store).mkdir(parents=True)
    server = subprocess.Popen(["sh", "-c", "sleep 600 & wait"], start_new_session=True)
    time.sleep(0.3)
    record = servers_dir(store) / f"{server.pid}.json"
    record.write_text(
        json.dumps(
            {"pid": server.pid, "started": start_time(server.pid), "port": 1, "model": "m", "log": "x", "parent": 1}
        )
    )
    record.with_suffix(".lock").touch()  # nobody holds it: its run is gone
    alive = servers_dir(store) / "999999.json"  # a live run's server (we hold its lock) is left alone
    from rlaif.store.locks import hold

    fd = hold(alive.with_suffix(".lock"))
    alive.write_text(json.dumps({"pid": 999999, "started": None}))
    try:
        assert len(session_members(server.pid)) == 2
        BackendPool(store)
        server.wait(timeout=5)
        assert session_members(server.pid) == [] and not record.exists() and alive.exists()
    finally:
        os.close(fd)
    assert reap_leftover_servers(store) == [999999]  # its lock is free now


def test_vllm_engine_settings_are_vllm_options_outside_the_version_id():
    from rlaif.calls.engine import backend_identity
    from rlaif.config.recipe import Recipe

    base = {
        "name": "v",
        "prompts": {"path": "x.jsonl"},
        "policies": [{"backend": "transformers"}],
        "judge": {"backend": "vllm"},
    }
    engine = {
        "max_model_len": 2048,
        "enable_prefix_caching": False,
        "gpu_memory_utilization": 0.5,
        "tensor_parallel_size": 2,
        "vllm_env": "/opt/v",
    }
    plain, tuned = Recipe.model_validate(base), Recipe.model_validate({**base, "judge": {"backend": "vllm", **engine}})
    assert hashed_recipe(plain.model_dump(mode="json")) == hashed_recipe(tuned.model_dump(mode="json"))
    assert (
        backend_identity(plain.judge)
        == backend_identity(tuned.judge)
        == {"backend": "vllm", "model": "smollm2-135m", "dtype": "float32"}
    )
    with pytest.raises(Exception, match="max_model_len"):
        Recipe.model_validate({**base, "policies": [{"backend": "transformers", "max_model_len": 2048}]})
