"""Re-run cost of an identical recipe: the same job twice against the same store, once with the
library (no Prefect) and once as `rlaif run` (Prefect flow on the local server that runs share, a fresh
PREFECT_HOME so the first run pays Prefect's one-time database set-up and the server's start, reported apart). llm-katan echo with
200 ms latency: a live call costs time, a cached one should cost none.

    .venv/bin/python benchmarks/rerun.py --prompts 1000 --write
"""

from __future__ import annotations

import argparse
import os
import re
import subprocess
import tempfile
import time
from pathlib import Path

import _common as common
import yaml
from _rlaif_job import recipe_data, write_prompts
from vs_peers import HERE, RLAIF_PYTHON, run_json

ENV = {**os.environ, "RLAIF_PROGRESS": "0", "PREFECT_SERVER_ANALYTICS_ENABLED": "false", "DO_NOT_TRACK": "1"}


def library_runs(server, folder: Path, prompts: int, concurrency: int) -> list[dict]:
    store = folder / "lib-store"
    argv = [
        str(RLAIF_PYTHON),
        str(HERE / "_rlaif_job.py"),
        "--base-url",
        server.base_url,
        "--model",
        server.model,
        "--prompts",
        str(prompts),
        "--concurrency",
        str(concurrency),
        "--store",
        str(store),
    ]
    out = []
    for _ in range(2):
        result, wall = run_json(argv, ENV)
        out.append({**result, "process_s": wall})
    return out


def cli_runs(server, folder: Path, prompts: int, concurrency: int) -> list[dict]:
    prompt_file = write_prompts(folder / "prompts.jsonl", prompts)
    recipe = folder / "recipe.yaml"
    recipe.write_text(yaml.safe_dump(recipe_data(prompt_file, server.base_url, server.model, concurrency)))
    env = {**ENV, "PREFECT_HOME": str(folder / "prefect-home")}
    argv = [str(common.ROOT / ".venv" / "bin" / "rlaif"), "run", str(recipe), "--store", str(folder / "cli-store")]
    out = []
    for _ in range(2):
        start = time.perf_counter()
        done = subprocess.run(argv, capture_output=True, text=True, env=env, timeout=900, cwd=common.ROOT)
        wall = time.perf_counter() - start
        calls = re.search(r"calls: live (\d+), cached (\d+), failed (\d+)", done.stdout)
        version = re.search(r"version: (\S+)", done.stdout)
        if done.returncode != 0 or not calls:
            raise SystemExit(f"rlaif run failed ({done.returncode}):\n{done.stdout[-2000:]}\n{done.stderr[-2000:]}")
        out.append(
            {
                "process_s": wall,
                "live": int(calls[1]),
                "cached": int(calls[2]),
                "failed": int(calls[3]),
                "version": version[1],
            }
        )
    # the runs started the local Prefect server that they share (rlaif/flows/shared_server.py): stop it
    subprocess.run([str(common.ROOT / ".venv" / "bin" / "rlaif"), "server", "stop"], env=env, capture_output=True)
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--prompts", type=int, default=1000)
    parser.add_argument("--concurrency", type=int, default=64)
    parser.add_argument("--latency-ms", type=int, default=200)
    parser.add_argument("--write", action="store_true", help="refresh the rerun section of docs/benchmarks.md")
    args = parser.parse_args()
    load_before = common.load_average()
    with tempfile.TemporaryDirectory() as tmp, common.start_echo_server(args.latency_ms, 1024) as server:
        lib = library_runs(server, Path(tmp), args.prompts, args.concurrency)
        print(
            f"  library: first {lib[0]['seconds']:.2f} s ({lib[0]['live']} live), again {lib[1]['seconds']:.2f} s ({lib[1]['live']} live)",
            flush=True,
        )
        cli = cli_runs(server, Path(tmp), args.prompts, args.concurrency)
        print(
            f"  rlaif run: first {cli[0]['process_s']:.2f} s ({cli[0]['live']} live), again {cli[1]['process_s']:.2f} s ({cli[1]['live']} live)",
            flush=True,
        )
    report(args, lib, cli, load_before)


def report(args, lib: list[dict], cli: list[dict], load_before: str) -> None:
    same = lib[0]["version"] == lib[1]["version"] and cli[0]["version"] == cli[1]["version"]
    zero_live = lib[1]["live"] == 0 and cli[1]["live"] == 0
    print(
        f"rerun: library {lib[1]['seconds']:.2f} s, rlaif run {cli[1]['process_s']:.2f} s, live calls {lib[1]['live']}/{cli[1]['live']}"
    )
    body = f"""## Re-run cost of an identical recipe

- Date: {common.today()}; machine: {common.machine()} (load before: {load_before})
- Command: `{common.command_line()}`
- Job: {args.prompts} prompts, 2 policies x 1 sample, both-order pairwise judge ({lib[0]["live"]} calls), llm-katan echo with `--latency-ms {args.latency_ms}`, max_concurrency {args.concurrency}; the second run is the identical recipe against the same store (request cache `STORE/cache.sqlite`).

| | first run (s) | live / cached calls | identical re-run (s) | live / cached calls |
|---|---|---|---|---|
| library (`benchmarks/_rlaif_job.py`), job only | {lib[0]["seconds"]:.2f} | {lib[0]["live"]} / {lib[0]["cached"]} | {lib[1]["seconds"]:.2f} | {lib[1]["live"]} / {lib[1]["cached"]} |
| library, whole process (imports included) | {lib[0]["process_s"]:.2f} | | {lib[1]["process_s"]:.2f} | |
| `rlaif run` (Prefect ephemeral, fresh PREFECT_HOME), whole process | {cli[0]["process_s"]:.2f} | {cli[0]["live"]} / {cli[0]["cached"]} | {cli[1]["process_s"]:.2f} | {cli[1]["live"]} / {cli[1]["cached"]} |

- The re-run makes **{lib[1]["live"]} live calls** (library) and **{cli[1]["live"]}** (`rlaif run`){"" if zero_live else " - NOT zero"}, and {"returns the same version id" if same else "returned a different version id"}.
- The re-run's cost is process start, cache look-up, filters and the commit check: {lib[1]["seconds"]:.2f} s in the library. `rlaif run` adds Prefect: its first run here includes the one-time ephemeral database set-up of a fresh PREFECT_HOME; the difference between the re-run through `rlaif run` and through the library process ({cli[1]["process_s"] - lib[1]["process_s"]:.1f} s) is Prefect's per-run overhead (ephemeral server start, flow and task runs, artifacts) plus the HTML report, which the library job does not write.
"""
    common.publish("rerun", body, args.write)


if __name__ == "__main__":
    main()
