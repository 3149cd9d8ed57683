"""The same job through the user-facing commands, each timed as a whole process, alternating:
`rlaif run RECIPE` (the Prefect flow; a Prefect server already running, as after `make server`),
`rlaif run RECIPE --no-prefect`, a distilabel script calling `pipeline.run`, and a bare
AsyncOpenAI client sending the requests rlaif makes (recorded in a warm-up run), at the same concurrency; all against one
llm-katan echo server. distilabel runs from .venv-bench (make it with
`python3 -m venv .venv-bench && .venv-bench/bin/pip install distilabel==1.5.3 openai requests beautifulsoup4`).

    .venv/bin/python benchmarks/vs_distilabel.py --prompts 1000 --repeats 3 --write
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import subprocess
import tempfile
import time
from pathlib import Path

import _common as common
import yaml
from _rlaif_job import recipe_data, write_prompts

HERE = Path(__file__).resolve().parent
BENCH_PYTHON = common.ROOT / ".venv-bench" / "bin" / "python"
RLAIF_PYTHON = common.ROOT / ".venv" / "bin" / "python"
OWN = "rlaif run, no server running"  # out of the box: no PREFECT_API_URL, the run starts (and stops) its own server
NP = "rlaif run --no-prefect"
SIDES = ("rlaif run", OWN, NP, "distilabel", "bare AsyncOpenAI")


def timed(argv: list[str], env: dict[str, str], timeout: float = 900) -> tuple[float, str]:
    """A whole process's wall time (interpreter start, imports, job, exit) and its stdout."""
    start = time.perf_counter()
    done = subprocess.run(argv, capture_output=True, text=True, env=env, timeout=timeout, cwd=common.ROOT)
    wall = time.perf_counter() - start
    if done.returncode != 0:
        raise SystemExit(
            f"{' '.join(argv[:3])} failed ({done.returncode}):\n{done.stdout[-2000:]}\n{done.stderr[-3000:]}"
        )
    return wall, done.stdout


def run_side(side: str, server, args, recipe: Path, env: dict[str, str]) -> tuple[float, int]:
    """(process seconds, requests) of one side."""
    if side.startswith("rlaif"):
        with tempfile.TemporaryDirectory() as store:
            argv = [
                str(RLAIF_PYTHON),
                "-m",
                "rlaif.cli",
                "run",
                str(recipe),
                "--store",
                store,
                *(["--no-prefect"] if "no-prefect" in side else []),
            ]
            side_env = {key: value for key, value in env.items() if side != OWN or key != "PREFECT_API_URL"}
            wall, out = timed(argv, {**side_env, "RLAIF_PROGRESS": "0"})
        live = int(next(line for line in out.splitlines() if line.startswith("calls:")).split("live")[1].split(",")[0])
        return wall, live
    if side == "distilabel":
        with tempfile.TemporaryDirectory() as cache:
            argv = [
                str(BENCH_PYTHON),
                str(HERE / "_distilabel_job.py"),
                "--base-url",
                server.base_url,
                "--model",
                server.model,
                "--prompts",
                str(args.prompts),
                "--batch",
                str(args.concurrency),
            ]
            wall, out = timed(argv, {**env, "DISTILABEL_CACHE_DIR": cache, "OPENAI_API_KEY": "EMPTY"})
        return wall, json.loads(out.splitlines()[-1])["requests"]
    argv = [
        str(RLAIF_PYTHON),
        str(HERE / "_bare_job.py"),
        "--base-url",
        server.base_url,
        "--requests-file",
        str(args.requests_file),
        "--concurrency",
        str(args.concurrency),
    ]
    wall, out = timed(argv, env)
    return wall, json.loads(out.splitlines()[-1])["requests"]


def captured_requests(recipe: Path, store: Path) -> list[dict]:
    """Run the job once in this process (a warm-up) and keep every request body rlaif sent: the bare client's job."""
    from rlaif.backends import openai_compat
    from rlaif.config.recipe import load_recipe
    from rlaif.pipeline.runner import run_recipe

    bodies: list[dict] = []
    post = openai_compat.OpenAIBackend._chat

    async def recording(self, client, body):
        bodies.append(body)  # the very JSON body rlaif posts to /chat/completions
        return await post(self, client, body)

    openai_compat.OpenAIBackend._chat = recording
    try:
        run_recipe(load_recipe(str(recipe)), store)
    finally:
        openai_compat.OpenAIBackend._chat = post
    return bodies


@contextlib.contextmanager
def prefect_server():
    """A Prefect server for the whole benchmark (what `make server` gives a user), stopped at the end."""
    from rlaif.flows.server import start_server, stop

    with tempfile.TemporaryFile() as log:
        proc, url = start_server(log)
        try:
            yield url
        finally:
            stop(proc)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--prompts", type=int, default=1000)
    parser.add_argument(
        "--concurrency",
        type=int,
        default=64,
        help="rlaif max_concurrency; distilabel input_batch_size of every step; bare client workers",
    )
    parser.add_argument("--latency-ms", type=int, default=200)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--write", action="store_true", help="refresh the vs-distilabel section of docs/benchmarks.md")
    args = parser.parse_args()
    if not BENCH_PYTHON.exists():
        raise SystemExit(f"{BENCH_PYTHON} not found - create .venv-bench as this script's docstring says")
    # bytecode for the project's own modules, as a user's second run has it (pip compiled every installed
    # package's; an editable install's sources are compiled on first import, unless PYTHONDONTWRITEBYTECODE is set)
    subprocess.run(
        [str(RLAIF_PYTHON), "-m", "compileall", "-q", "rlaif", "flows"],
        cwd=common.ROOT,
        check=True,
        capture_output=True,
    )
    load_before = common.load_average()
    runs: dict[str, list[tuple[float, int]]] = {side: [] for side in SIDES}
    with (
        tempfile.TemporaryDirectory() as folder,
        common.start_echo_server(args.latency_ms, 1024) as server,
        prefect_server() as api,
    ):
        prompts = write_prompts(Path(folder) / "prompts.jsonl", args.prompts)
        recipe = Path(folder) / "bench.yaml"
        recipe.write_text(yaml.safe_dump(recipe_data(prompts, server.base_url, server.model, args.concurrency)))
        args.requests_file = Path(folder) / "requests.jsonl"
        bodies = captured_requests(recipe, Path(folder) / "warm-up")
        args.requests_file.write_text("".join(json.dumps(body) + "\n" for body in bodies))
        env = {key: value for key, value in os.environ.items() if not key.startswith("PREFECT_")}
        env["PREFECT_API_URL"] = api
        for repeat in range(args.repeats):
            for side in SIDES if repeat % 2 == 0 else tuple(reversed(SIDES)):
                runs[side].append(run_side(side, server, args, recipe, env))
                print(
                    f"  repeat {repeat + 1} {side}: {runs[side][-1][0]:.2f} s ({runs[side][-1][1]} requests)",
                    flush=True,
                )
        served = server.requests_served()
    report(args, runs, load_before, common.load_average(), served)


def report(args, runs, load_before: str, load_after: str, served: int) -> None:
    wall = {side: common.median([seconds for seconds, _ in runs[side]]) for side in SIDES}
    requests = {side: runs[side][0][1] for side in SIDES}
    per_request = {side: wall[side] / requests[side] * 1000 for side in SIDES}
    rl, dl, bare = "rlaif run", "distilabel", "bare AsyncOpenAI"
    job_ratio, request_ratio, bare_ratio = (
        wall[dl] / wall[rl],
        per_request[dl] / per_request[rl],
        wall[rl] / wall[bare],
    )
    met = lambda ok: "met" if ok else "missed"  # noqa: E731
    rows = "\n".join(
        f"| `{side}` | {requests[side]} | {wall[side]:.2f} | {common.fmt_runs([s for s, _ in runs[side]])} | {per_request[side]:.2f} | {requests[side] / wall[side]:.0f} |"
        for side in SIDES
    )
    print(f"vs-distilabel: rlaif run {wall[rl]:.2f} s, distilabel {wall[dl]:.2f} s, bare {wall[bare]:.2f} s")
    body = f"""## Same job: rlaif vs distilabel, whole processes

- Date: {common.today()}; machine: {common.machine()} (load average before: {load_before}; after: {load_after})
- Command: `{common.command_line()}`
- Server: llm-katan echo, `--latency-ms {args.latency_ms} --max-concurrent 1024`, one server for all runs ({served} requests served in all).
- Job: {args.prompts} prompts; 2 responses per prompt (two policies, one sample each); a pairwise judgment per prompt; results on disk.
  - `rlaif run RECIPE` (the Prefect flow) with a Prefect server already running (`make server`, `PREFECT_API_URL` set), the same with no server running (the run starts its own), and `rlaif run RECIPE --no-prefect`: two `openai` policies, pairwise judge in **both orders** (2 judge calls per pair), filters, request cache, dataset version committed, HTML report written. `max_concurrency {args.concurrency}`: one limit for the endpoint shared by the policies and the judge, which work together: every policy samples a chunk (256 prompts) at once and the judge judges a chunk as soon as its samples are in, while later chunks are sampled (rlaif/pipeline/runner.py `_sample_and_judge`).
  - distilabel 1.5.3 (`benchmarks/_distilabel_job.py`, in .venv-bench): `LoadDataFromDicts >> [TextGeneration x2] >> GroupColumns >> PrometheusEval(mode="relative")`, all `OpenAILLM`, `input_batch_size={args.concurrency}` on every step, default logging, `use_cache=False`, `pipeline.run`. One judge call per pair.
  - bare AsyncOpenAI (`benchmarks/_bare_job.py`): the very {requests[rl]} request bodies rlaif sent (recorded in a warm-up run of the job: both policies' generations, then the judge's prompts in both orders with `logprobs`), from {args.concurrency} workers, in the order recorded, nothing stored.
- Each side a fresh process timed whole (interpreter start, imports, the job, exit), {args.repeats} repeats in alternating order.

| | requests | process median (s) | runs (s) | ms per request | requests/s |
|---|---|---|---|---|---|
{rows}

- Per job: `rlaif run` is **{job_ratio:.2f}x** distilabel's speed while judging both orders (target >= 1: **{met(job_ratio >= 1)}**).
- Per request: **{request_ratio:.2f}x** faster than distilabel (target >= 1.3: **{met(request_ratio >= 1.3)}**).
- Against the bare client sending the same requests: `rlaif run` takes **{bare_ratio:.2f}x** its time (target <= 1.15: **{met(bare_ratio <= 1.15)}**).
- In-process (`rlaif run --no-prefect`, the same driver without Prefect): {wall[NP]:.2f} s, **{wall[NP] / wall[bare]:.2f}x** the bare client's time (target <= 1.15: **{met(wall[NP] / wall[bare] <= 1.15)}**), {wall[dl] / wall[NP]:.2f}x distilabel's speed per job.
- Out of the box (`{OWN}`: no `PREFECT_API_URL`, so each `rlaif run` starts and stops its own Prefect server): {wall[OWN]:.2f} s, **{wall[dl] / wall[OWN]:.2f}x** distilabel's speed per job, {wall[OWN] / wall[bare]:.2f}x the bare client's time.
"""
    common.publish("vs-distilabel", body, args.write)


if __name__ == "__main__":
    main()
