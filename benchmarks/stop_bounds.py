"""What a broken endpoint and a stop signal cost, through `rlaif run` as a user runs it (docs/reliability.md).

1. An endpoint that always answers HTTP 500: a whole `rlaif run --no-prefect` process for each number of
   prompts, every setting at its default (max_retries 4, max_concurrency 64, stop_after_failures 8);
   requests the server received, wall time and exit code.
2. Ctrl-C (SIGINT) and SIGTERM once N answers were cached, against a server answering each request after
   100 ms: requests the server received after the signal, answers cached, exit code, seconds to exit.

    python benchmarks/stop_bounds.py [--prompts 1000 10000] [--signal-at 154]
"""

from __future__ import annotations

import argparse
import os
import signal
import sqlite3
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
from tests.det_server import DetServer  # noqa: E402

ENV = {**os.environ, "RLAIF_PROGRESS": "0", "DO_NOT_TRACK": "1", "PREFECT_SERVER_ANALYTICS_ENABLED": "false"}


def recipe(folder: Path, base_url: str, prompts: int) -> Path:
    path = folder / "prompts.jsonl"
    path.write_text("".join(f'{{"id": "p{i}", "prompt": "Question {i}: name thing {i}."}}\n' for i in range(prompts)))
    endpoint = {"backend": "openai", "base_url": base_url, "model": "det"}
    policies = [{"name": n, **endpoint, "params": {"temperature": t}} for n, t in (("cold", 0.2), ("hot", 0.9))]
    body = {"name": "bounds", "prompts": {"path": str(path)}, "policies": policies, "samples_per_prompt": 1}
    (folder / "recipe.yaml").write_text(yaml.safe_dump({**body, "judge": endpoint}))
    return folder / "recipe.yaml"


def argv(recipe_path: Path, store: Path) -> list[str]:
    return [sys.executable, "-m", "rlaif.cli", "run", str(recipe_path), "--store", str(store), "--no-prefect"]


def cached(store: Path) -> int:
    path = store / "cache.sqlite"
    if not path.exists():
        return 0
    try:
        with sqlite3.connect(f"file:{path}?mode=ro", uri=True, timeout=5) as db:
            return db.execute("SELECT COUNT(*) FROM calls").fetchone()[0]
    except sqlite3.OperationalError:
        return 0


def failing_endpoint(prompts: int) -> str:
    with tempfile.TemporaryDirectory() as tmp, DetServer(fail_after=0, fail_status=500) as server:
        folder = Path(tmp)
        start = time.perf_counter()
        done = subprocess.run(
            argv(recipe(folder, server.base_url, prompts), folder / "store"), env=ENV, capture_output=True
        )
        wall = time.perf_counter() - start
    return f"| always 500 | {prompts:,} | {server.received:,} requests | {wall:.1f} s | exit {done.returncode} |"


def stopped(prompts: int, at: int, sig: int) -> str:
    with tempfile.TemporaryDirectory() as tmp, DetServer(latency_s=0.1) as server:
        folder = Path(tmp)
        proc = subprocess.Popen(
            argv(recipe(folder, server.base_url, prompts), folder / "store"),
            env=ENV,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        while cached(folder / "store") < at and proc.poll() is None:
            time.sleep(0.01)
        proc.send_signal(sig)
        signalled, before = time.perf_counter(), server.received
        proc.wait(timeout=300)
        took = time.perf_counter() - signalled
        after, kept = server.received - before, cached(folder / "store")
    name = signal.Signals(sig).name
    return f"| {name} at {at} cached | {prompts:,} | {after} requests after the signal | {took:.1f} s to exit | exit {proc.returncode}, {kept} of {server.calls} answers cached |"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--prompts", type=int, nargs="+", default=[1_000, 10_000])
    parser.add_argument("--signal-at", type=int, default=154)
    args = parser.parse_args()
    print("| case | prompts | requests | time | outcome |\n|---|---|---|---|---|")
    for prompts in args.prompts:
        print(failing_endpoint(prompts), flush=True)
    for sig in (signal.SIGINT, signal.SIGTERM):
        print(stopped(args.prompts[0], args.signal_at, sig), flush=True)


if __name__ == "__main__":
    main()
