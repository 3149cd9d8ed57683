"""The same job run by distilabel and by rlaif against the same llm-katan server: per prompt, two
responses and a pairwise judgment. distilabel runs from .venv-bench (make it with
`python3 -m venv .venv-bench && .venv-bench/bin/pip install distilabel==1.5.3 openai requests beautifulsoup4`).

    .venv/bin/python benchmarks/vs_distilabel.py --prompts 1000 --repeats 3 --write
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import tempfile
import time
from pathlib import Path

import _common as common

HERE = Path(__file__).resolve().parent
BENCH_PYTHON = common.ROOT / ".venv-bench" / "bin" / "python"
RLAIF_PYTHON = common.ROOT / ".venv" / "bin" / "python"


def run_json(argv: list[str], env: dict[str, str], timeout: float = 900) -> tuple[dict, float]:
    """Run a job script; returns its JSON result line and the process's own wall time."""
    start = time.perf_counter()
    done = subprocess.run(argv, capture_output=True, text=True, env=env, timeout=timeout, cwd=common.ROOT)
    wall = time.perf_counter() - start
    if done.returncode != 0:
        raise SystemExit(f"{argv[1]} failed ({done.returncode}):\n{done.stderr[-3000:]}")
    lines = [line for line in done.stdout.splitlines() if line.startswith("{")]
    return json.loads(lines[-1]), wall


def run_rlaif(server, prompts: int, concurrency: int) -> tuple[dict, float]:
    with tempfile.TemporaryDirectory() as store:
        argv = [str(RLAIF_PYTHON), str(HERE / "_rlaif_job.py"), "--base-url", server.base_url, "--model", server.model,
                "--prompts", str(prompts), "--concurrency", str(concurrency), "--store", store]
        return run_json(argv, {**os.environ, "RLAIF_PROGRESS": "0"})


def run_distilabel(server, prompts: int, batch: int, log_level: str) -> tuple[dict, float]:
    with tempfile.TemporaryDirectory() as cache:
        argv = [str(BENCH_PYTHON), str(HERE / "_distilabel_job.py"), "--base-url", server.base_url, "--model", server.model,
                "--prompts", str(prompts), "--batch", str(batch)]
        env = {**os.environ, "DISTILABEL_CACHE_DIR": cache, "DISTILABEL_LOG_LEVEL": log_level, "OPENAI_API_KEY": "EMPTY"}
        return run_json(argv, env)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--prompts", type=int, default=1000)
    parser.add_argument("--concurrency", type=int, default=64, help="rlaif max_concurrency; distilabel input_batch_size of every step")
    parser.add_argument("--latency-ms", type=int, default=200)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--write", action="store_true", help="refresh the vs-distilabel section of docs/benchmarks.md")
    args = parser.parse_args()
    if not BENCH_PYTHON.exists():
        raise SystemExit(f"{BENCH_PYTHON} not found - create .venv-bench as this script's docstring says")

    load_before = common.load_average()
    runs: dict[str, list[tuple[dict, float]]] = {"rlaif": [], "distilabel": [], "distilabel-quiet": []}
    with common.start_echo_server(args.latency_ms, 1024) as server:
        for repeat in range(args.repeats):
            order = list(runs) if repeat % 2 == 0 else list(reversed(runs))
            for which in order:
                if which == "rlaif":
                    result = run_rlaif(server, args.prompts, args.concurrency)
                else:
                    level = "WARNING" if which == "distilabel-quiet" else "INFO"
                    result = run_distilabel(server, args.prompts, args.concurrency, level)
                runs[which].append(result)
                print(f"  repeat {repeat + 1} {which}: job {result[0]['seconds']:.2f} s, process {result[1]:.2f} s", flush=True)
        served = server.requests_served()
    report(args, runs, load_before, served)


def report(args, runs, load_before: str, served: int) -> None:
    job = {k: common.median([r[0]["seconds"] for r in v]) for k, v in runs.items()}
    wall = {k: common.median([r[1] for r in v]) for k, v in runs.items()}
    rl = runs["rlaif"][0][0]
    rl_requests = rl["live"]
    dl_requests = runs["distilabel"][0][0]["requests"]
    best_dl = min(job["distilabel"], job["distilabel-quiet"])
    ratio = best_dl / job["rlaif"]
    print(f"vs-distilabel: {args.prompts} prompts: rlaif {job['rlaif']:.2f} s ({rl_requests} requests), "
          f"distilabel {job['distilabel']:.2f} s / quiet {job['distilabel-quiet']:.2f} s ({dl_requests} requests); rlaif {ratio:.2f}x faster")
    rows = "\n".join(
        f"| {name} | {requests} | {job[key]:.2f} | {common.fmt_runs([r[0]['seconds'] for r in runs[key]])} | {requests / job[key]:.0f} | {wall[key]:.2f} |"
        for name, key, requests in [
            ("rlaif (library, no Prefect)", "rlaif", rl_requests),
            ("distilabel 1.5.3, default logging (INFO)", "distilabel", dl_requests),
            ("distilabel 1.5.3, DISTILABEL_LOG_LEVEL=WARNING", "distilabel-quiet", dl_requests),
        ]
    )
    body = f"""## Same job: rlaif vs distilabel

- Date: {common.today()}; machine: {common.machine()} (load before: {load_before})
- Command: `{common.command_line()}`
- Server: llm-katan echo, `--latency-ms {args.latency_ms} --max-concurrent 1024`, one server for all runs ({served} requests served in all).
- Job: {args.prompts} prompts; 2 responses per prompt; one pairwise judgment per prompt; results written to disk.
  - rlaif (`benchmarks/_rlaif_job.py`, what `flows/pipeline.py` does without Prefect): two `openai` policies (one sample each), pairwise judge in **both orders** (its default: 2 judge calls per pair), filters, request cache in the store, dataset version committed. `max_concurrency {args.concurrency}`.
  - distilabel (`benchmarks/_distilabel_job.py`, in .venv-bench): `LoadDataFromDicts >> [TextGeneration x2] >> GroupColumns >> PrometheusEval(mode="relative")`, all `OpenAILLM`, `input_batch_size={args.concurrency}` on every step (distilabel's only concurrency knob: a step sends a whole batch at once; it has no global limit, so up to 3 x {args.concurrency} requests can be in flight), `use_cache=False`, Distiset written to a temp cache folder. One judge call per pair. Two TextGeneration steps because llm-katan ignores `n`, so `num_generations=2` would be one request.
- Each job in a fresh process, {args.repeats} repeats in alternating order. "job" = from the start of the job to its result on disk (rlaif: prompt loading to committed version; distilabel: `pipeline.run`); "process" adds interpreter start and imports.

| | requests | job median (s) | runs (s) | requests/s | process median (s) |
|---|---|---|---|---|---|
{rows}

rlaif is **{ratio:.2f}x faster** than the faster distilabel setting on the same job (target: rlaif faster: **{"met" if ratio > 1 else "missed"}**), while making {rl_requests / dl_requests:.2f}x the requests (both judge orders).
"""
    common.publish("vs-distilabel", body, args.write)


if __name__ == "__main__":
    main()
