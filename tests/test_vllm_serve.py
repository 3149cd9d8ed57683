"""`vllm serve` as a real OpenAI-compatible server: smollm2-135m on loopback (CPU), and a recipe
whose policy and judge both go through the `openai` backend to it, run with `rlaif run` (the main
venv's CLI: a real Prefect flow).

Runs in the vLLM environment (`make vllm-env`; `make test` runs it there): the server is that
venv's `vllm` command, the CLI is .venv/bin/python (or $RLAIF_MAIN_PYTHON).
"""

from __future__ import annotations

import os
import re
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from pathlib import Path

import pytest
import yaml

pytest.importorskip(
    "vllm", reason="vLLM is not installed in this environment - build it with `make vllm-env` (runs in .venv-vllm)"
)

from rlaif.store.versions import list_versions, load_manifest, read_table  # noqa: E402
from tests.conftest import ROOT, write_prompts  # noqa: E402

pytestmark = [pytest.mark.vllm, pytest.mark.slow]

SERVED = "smollm2-135m-vllm"
MAIN_PYTHON = Path(os.environ.get("RLAIF_MAIN_PYTHON", ROOT / ".venv/bin/python"))
OPENER = urllib.request.build_opener(urllib.request.ProxyHandler({}))  # loopback, whatever *_proxy says


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def get(url: str) -> str:
    with OPENER.open(url, timeout=10) as response:
        return response.read().decode()


def metric(root: str, name: str) -> float:
    """Sum of a Prometheus counter over its label sets."""
    return sum(
        float(v) for v in re.findall(rf"^{re.escape(name)}(?:{{[^}}]*}})? (\S+)$", get(root + "/metrics"), re.M)
    )


@pytest.fixture(scope="module")
def server():
    from rlaif.weights.resolve import resolve_model

    port, log = free_port(), tempfile.NamedTemporaryFile(prefix="vllm-serve-", suffix=".log", delete=False)
    argv = [
        str(Path(sys.executable).parent / "vllm"),
        "serve",
        resolve_model("smollm2-135m"),
        "--host",
        "127.0.0.1",
        "--port",
        str(port),
        "--served-model-name",
        SERVED,
        "--dtype",
        "float32",
        "--max-model-len",
        "4096",
        "--enforce-eager",
        # CPU blocks default to 128 tokens: too coarse for short prompts to share cached prefixes
        "--enable-prefix-caching",
        "--block-size",
        "32",
    ]
    env = {**os.environ, "VLLM_CPU_KVCACHE_SPACE": "1", "PYTHONUNBUFFERED": "1"}
    proc = subprocess.Popen(argv, stdout=log, stderr=subprocess.STDOUT, env=env, start_new_session=True)
    root = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 600
        while True:
            assert proc.poll() is None, (
                f"vllm serve exited with {proc.returncode}:\n{Path(log.name).read_text()[-4000:]}"
            )
            try:
                if SERVED in get(root + "/v1/models"):
                    break
            except (urllib.error.URLError, OSError):
                pass
            assert time.monotonic() < deadline, f"vllm serve not ready in 600 s:\n{Path(log.name).read_text()[-4000:]}"
            time.sleep(1)
        yield root
    finally:
        os.killpg(proc.pid, signal.SIGTERM)  # the server and its engine process (its own session)
        try:
            proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()
        Path(log.name).unlink(missing_ok=True)


def rlaif_run(recipe: Path, store: Path) -> dict:
    if not MAIN_PYTHON.is_file():
        pytest.skip(
            f"no main environment at {MAIN_PYTHON} to run the rlaif CLI - run `make install` or set RLAIF_MAIN_PYTHON"
        )
    env = {**os.environ, "RLAIF_PROGRESS": "0", "PREFECT_SERVER_ANALYTICS_ENABLED": "false", "DO_NOT_TRACK": "1"}
    # never the user's Prefect home: the shared server this run starts is the test's
    env["PREFECT_HOME"] = str(store.parent / "prefect-home")
    env.pop("VIRTUAL_ENV", None)
    result = subprocess.run(
        [str(MAIN_PYTHON), "-m", "rlaif.cli", "run", str(recipe), "--store", str(store)],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=900,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    calls = re.search(r"calls: live (\d+), cached (\d+), failed (\d+)", result.stdout)
    version = re.search(r"^version: (\S+)", result.stdout, re.M)
    assert calls and version, result.stdout
    return {"live": int(calls[1]), "cached": int(calls[2]), "failed": int(calls[3]), "version": version[1]}


def test_recipe_through_vllm_serve_is_soft_complete_and_cached(server, tmp_path):
    prompts = write_prompts(
        tmp_path / "prompts.jsonl", ["Name a fruit.", "Say hello to a friend.", "What colour is the sky?"]
    )
    endpoint = {"backend": "openai", "base_url": server + "/v1", "model": SERVED}
    recipe = tmp_path / "served.yaml"
    recipe.write_text(
        yaml.safe_dump(
            {
                "name": "vllm-served",
                "prompts": {"path": str(prompts), "system": "Answer in one short sentence."},
                "policies": [
                    {"name": "smol-served", **endpoint, "params": {"temperature": 1.0, "max_tokens": 24, "seed": 3}}
                ],
                "samples_per_prompt": 2,
                "judge": endpoint,
                "filters": {"consistency": False, "min_margin": 0.0, "drop_truncated": False},
            }
        )
    )
    store = tmp_path / "store"
    served_before = metric(server, "vllm:request_success_total")

    first = rlaif_run(recipe, store)
    assert (
        first["live"] == 3 * 2 + 3 * 2 and first["failed"] == 0 and first["cached"] == 0
    )  # 6 samples + 3 pairs x 2 orders
    assert metric(server, "vllm:request_success_total") - served_before == first["live"]
    manifest = load_manifest(store, first["version"])
    assert manifest["models"]["judge"] == {"backend": "openai", "model": SERVED}
    generations = read_table(store, first["version"], "generations")
    assert sorted(g["prompt_id"] for g in generations) == ["p0", "p0", "p1", "p1", "p2", "p2"]
    assert all(g["error"] is None and g["text"] for g in generations)
    counts = manifest["counts"]
    assert counts["in"] == 3 and counts["kept"] + sum(counts["dropped"].values()) == 3
    judgments = read_table(store, first["version"], "judgments")
    assert len(judgments) == 3 and all(j["error"] is None for j in judgments)
    assert all(j["soft"] and j["prob_mass"] > 0.3 for j in judgments), "logprobs must come back from vllm serve"
    assert metric(server, "vllm:prefix_cache_hits_total") > 0, (
        "samples of one prompt and both orders of a pair share a prefix"
    )

    served_after_first = metric(server, "vllm:request_success_total")
    again = rlaif_run(recipe, store)
    assert again["live"] == 0 and again["failed"] == 0 and again["cached"] == first["live"]
    assert again["version"] == first["version"] and len(list_versions(store)) == 1
    assert metric(server, "vllm:request_success_total") == served_after_first, (
        "a cached re-run sends nothing to the server"
    )
