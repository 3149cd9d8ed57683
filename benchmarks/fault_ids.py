"""Transient faults never reach a version: the same recipe run against a deterministic
OpenAI-compatible stand-in (tests/det_server.py, one port for both runs) with and without 30% of
requests answered HTTP 500; prints both runs' calls, retry passes, wall time and version ids.

    .venv/bin/python benchmarks/fault_ids.py --prompts 1000 --error-rate 0.3
"""

from __future__ import annotations

import argparse
import json
import socket
import tempfile
import time
from pathlib import Path

import _common as common  # noqa: F401  (puts the project root on sys.path)

from rlaif.config.recipe import parse_recipe
from rlaif.pipeline.runner import run_recipe
from tests.conftest import write_prompts
from tests.det_server import DetServer


def recipe_for(prompts: Path, base_url: str):
    endpoint = {"backend": "openai", "base_url": base_url, "model": "det"}
    policies = [{"name": name, **endpoint, "params": {"temperature": t}} for name, t in (("cold", 0.2), ("hot", 0.9))]
    return parse_recipe(
        {
            "name": "faultid",
            "prompts": {"path": str(prompts)},
            "policies": policies,
            "samples_per_prompt": 1,
            "judge": endpoint,
        }
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--prompts", type=int, default=1000)
    parser.add_argument("--error-rate", type=float, default=0.3)
    args = parser.parse_args()
    folder = Path(tempfile.mkdtemp())
    prompts = write_prompts(
        folder / "prompts.jsonl", [f"Question {i}: what is {i} times {i}?" for i in range(args.prompts)]
    )
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    results = {}
    for label, rate in (("faulty", args.error_rate), ("fault-free", 0.0)):
        with DetServer(error_rate=rate, port=port) as server:
            start = time.perf_counter()
            version, _, manifest, _ = run_recipe(recipe_for(prompts, server.base_url), folder / label)
            results[label] = {
                "id": version,
                "calls": manifest["calls"],
                "retries": manifest["retries"],
                "injected_500s": server.failures,
                "wall_s": round(time.perf_counter() - start, 1),
            }
    results["same_id"] = results["faulty"]["id"] == results["fault-free"]["id"]
    print(json.dumps(results))


if __name__ == "__main__":
    main()
