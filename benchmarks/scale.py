"""Scale: N prompts through the llm-katan echo server (no added latency) with the rlaif library,
each size in a fresh process with its request cache on disk; wall time and the process's peak
memory (max RSS) per size. The run goes through in chunks of prompts (`--chunk-size`, default
$RLAIF_CHUNK_SIZE or 5000), so memory should be bounded by a chunk, not by the run.

    .venv/bin/python benchmarks/scale.py --sizes 10000 100000 --write            # sampling stage (1 response per prompt)
    .venv/bin/python benchmarks/scale.py --sizes 1000 10000 --judge --write      # the whole job (2 responses + both-order judge)
"""

from __future__ import annotations

import argparse
import tempfile

import _common as common
from vs_peers import HERE, RLAIF_PYTHON, run_json


def run_size(server, n: int, concurrency: int, judge: bool, chunk_size: int | None = None) -> dict:
    import os

    with tempfile.TemporaryDirectory() as store:
        argv = [
            str(RLAIF_PYTHON),
            str(HERE / "_rlaif_job.py"),
            "--base-url",
            server.base_url,
            "--model",
            server.model,
            "--prompts",
            str(n),
            "--concurrency",
            str(concurrency),
            "--store",
            store,
        ]
        argv += ["--policies", "2"] if judge else ["--policies", "1", "--no-judge"]
        argv += ["--chunk-size", str(chunk_size)] if chunk_size else []
        result, wall = run_json(argv, {**os.environ, "RLAIF_PROGRESS": "0"}, timeout=3600)
    result["process_s"] = wall
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--sizes", type=int, nargs="+", default=[10000, 100000])
    parser.add_argument("--concurrency", type=int, default=64)
    parser.add_argument("--judge", action="store_true", help="whole job: 2 policies and the both-order pairwise judge")
    parser.add_argument(
        "--chunk-size", type=int, default=None, help="prompts per chunk (default: $RLAIF_CHUNK_SIZE or 5000)"
    )
    parser.add_argument("--write", action="store_true", help="refresh the scale section of docs/benchmarks.md")
    args = parser.parse_args()
    load_before = common.load_average()
    results = {}
    with common.start_echo_server(0, 1024) as server:
        for n in args.sizes:
            results[n] = run_size(server, n, args.concurrency, args.judge, args.chunk_size)
            r = results[n]
            print(
                f"  {n} prompts: {r['seconds']:.1f} s, {r['live']} calls, {r['chunks']} chunks, peak RSS {r['peak_rss_mib']:.0f} MiB (after imports {r['rss_start_mib']:.0f}, after the chunks {r['rss_after_sampling_mib']:.0f})",
                flush=True,
            )
    report(args, results, load_before)


def report(args, results: dict, load_before: str) -> None:
    small, large = min(results), max(results)
    time_ratio = results[large]["seconds"] / results[small]["seconds"]
    mem_ratio = results[large]["peak_rss_mib"] / results[small]["peak_rss_mib"]
    growth = {n: r["peak_rss_mib"] - r["rss_start_mib"] for n, r in results.items()}
    per_prompt_kib = (growth[large] - growth[small]) * 1024 / (large - small)
    diff = growth[large] - growth[small]
    growth_text = (
        f"the job holds about {per_prompt_kib:.1f} KiB per prompt above the imports"
        if per_prompt_kib > 0
        else f"the peak does not grow with the prompts ({diff:+.0f} MiB from {small:,} to {large:,})"
    )
    what = (
        "whole job (2 responses, both-order pairwise judge, filters, commit)"
        if args.judge
        else "sampling stage (1 response per prompt) + commit of the version"
    )
    name = "scale-job" if args.judge else "scale"
    print(f"{name}: {small} -> {large} prompts: time x{time_ratio:.1f}, peak memory x{mem_ratio:.2f}")
    rows = "\n".join(
        f"| {n:,} | {r['chunks']} x {r['chunk_size'] or n:,} | {r['live']:,} | {r['seconds']:.1f} | {r['live'] / r['seconds']:.0f} | {r['rss_start_mib']:.0f} | {r['rss_after_sampling_mib']:.0f} | {r['peak_rss_mib']:.0f} |"
        for n, r in sorted(results.items())
    )
    body = f"""## Scale: {what}

- Date: {common.today()}; machine: {common.machine()} (load before: {load_before})
- Command: `{common.command_line()}`
- llm-katan echo, no added latency, `--max-concurrent 1024`; rlaif `openai` backend, max_concurrency {args.concurrency}; `benchmarks/_rlaif_job.py` (the flow's library steps, `rlaif.pipeline.runner.run_recipe`) in a fresh process per size; request cache (SQLite), the run's spilled rows and the committed version on disk. The run goes through in chunks of prompts: each chunk sampled{" and judged in both orders (phase 1)" if args.judge else ""} and its rows spilled to disk; {"then position bias over the whole run, pairs and filters chunk by chunk (phase 2), " if args.judge else ""}then the commit writes and hashes the tables part by part. "After all chunks" is after the last chunk. Memory = that process's max RSS (`getrusage`).

| prompts | chunks x prompts | live calls | wall (s) | calls/s | RSS after imports (MiB) | RSS after all chunks (MiB) | peak RSS (MiB) |
|---|---|---|---|---|---|---|---|
{rows}

- Cost: {large // small}x the prompts took **{time_ratio:.1f}x the time** (linear: {large // small}x).
- Memory: peak at {large:,} is **{mem_ratio:.2f}x** the peak at {small:,} (target <= 1.5x: **{"met" if mem_ratio <= 1.5 else "missed"}**); {growth_text}.
"""
    common.publish(name, body, args.write)


if __name__ == "__main__":
    main()
