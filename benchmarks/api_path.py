"""API path: N chat requests through rlaif's `openai` backend (with the request cache) against a
bare `AsyncOpenAI` client at the same concurrency, both against the same llm-katan echo server
(fixed latency per request) in the same run, alternating which goes first.

    .venv/bin/python benchmarks/api_path.py --requests 3000 --concurrency 64 --latency-ms 200 --repeats 3 --write
"""

from __future__ import annotations

import argparse
import asyncio
import tempfile
import time
from pathlib import Path

import _common as common
from _bare_job import send

from rlaif.backends import make_backend
from rlaif.calls.cache import CallCache, CallStats
from rlaif.calls.engine import run_generate
from rlaif.config.recipe import PolicySpec, SamplingParams
from rlaif.core.schema import Prompt
from rlaif.pipeline.sampling import generation_requests

PARAMS = SamplingParams(temperature=0.7, top_p=1.0, max_tokens=64, seed=0)


def make_prompts(n: int, tag: str = "") -> list[Prompt]:
    """n distinct one-turn prompts (the tag keeps repeats apart)."""
    return [
        Prompt(id=f"p{tag}{i}", messages=[{"role": "user", "content": f"Question {tag}{i}: name a colour."}])
        for i in range(n)
    ]


def time_rlaif(
    base_url: str, model: str, prompts: list[Prompt], concurrency: int, synchronous: str = ""
) -> tuple[float, CallStats]:
    """Seconds for rlaif's generation path: requests, cache lookup, backend pool, cache writes."""
    spec = PolicySpec(backend="openai", model=model, base_url=base_url, max_concurrency=concurrency, params=PARAMS)
    stats = CallStats()
    with tempfile.TemporaryDirectory() as tmp:
        cache = CallCache(Path(tmp) / "cache.sqlite")
        if synchronous:  # reproduce an older cache setting (FULL: one fsync per stored call)
            cache._db.execute(f"PRAGMA synchronous={synchronous}")
        start = time.perf_counter()
        requests = generation_requests(prompts, spec, 1)
        with make_backend(spec) as backend:
            run_generate(backend, requests, cache, stats)
        elapsed = time.perf_counter() - start
        cache.close()
    if stats.live != len(prompts) or stats.failed:
        raise SystemExit(f"rlaif run incomplete: {stats}")
    return elapsed, stats


def bare_bodies(model: str, prompts: list[Prompt]) -> list[dict]:
    """The chat.completions.create bodies of the rlaif side's requests."""
    return [
        {
            "model": model,
            "messages": prompt.messages,
            "temperature": PARAMS.temperature,
            "top_p": PARAMS.top_p,
            "max_tokens": PARAMS.max_tokens,
            "seed": PARAMS.seed,
        }
        for prompt in prompts
    ]


def time_bare(base_url: str, model: str, prompts: list[Prompt], concurrency: int) -> float:
    """Seconds for a bare AsyncOpenAI worker pool sending the same requests."""
    bodies = bare_bodies(model, prompts)
    start = time.perf_counter()
    done = asyncio.run(send(base_url, bodies, concurrency))
    elapsed = time.perf_counter() - start
    if done != len(prompts):
        raise SystemExit(f"bare client finished {done} of {len(prompts)}")
    return elapsed


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--requests", type=int, default=3000, help="requests per measured run (N)")
    parser.add_argument("--concurrency", type=int, default=64, help="requests in flight (C), both clients")
    parser.add_argument("--latency-ms", type=int, default=200, help="llm-katan --latency-ms")
    parser.add_argument("--repeats", type=int, default=3, help="measured pairs (rlaif, bare), order alternating")
    parser.add_argument(
        "--sqlite-synchronous",
        choices=("", "FULL", "NORMAL"),
        default="",
        help="override the cache's PRAGMA synchronous (FULL = before the fix)",
    )
    parser.add_argument("--write", action="store_true", help="refresh the api-path section of docs/benchmarks.md")
    args = parser.parse_args()

    load_before = common.load_average()
    rlaif_s: list[float] = []
    bare_s: list[float] = []
    with common.start_echo_server(args.latency_ms, 1024) as server:
        warm = make_prompts(min(200, args.requests), "warm")
        time_bare(server.base_url, server.model, warm, args.concurrency)
        time_rlaif(server.base_url, server.model, warm, args.concurrency)
        for repeat in range(args.repeats):
            prompts = make_prompts(args.requests, f"r{repeat}-")
            order = ("rlaif", "bare") if repeat % 2 == 0 else ("bare", "rlaif")
            for which in order:
                if which == "rlaif":
                    rlaif_s.append(
                        time_rlaif(server.base_url, server.model, prompts, args.concurrency, args.sqlite_synchronous)[
                            0
                        ]
                    )
                else:
                    bare_s.append(time_bare(server.base_url, server.model, prompts, args.concurrency))
                print(
                    f"  repeat {repeat + 1} {which}: {(rlaif_s if which == 'rlaif' else bare_s)[-1]:.2f} s", flush=True
                )
    report(args, rlaif_s, bare_s, load_before)


def report(args, rlaif_s: list[float], bare_s: list[float], load_before: str) -> None:
    bound = args.requests * args.latency_ms / 1000 / args.concurrency
    r, b = common.median(rlaif_s), common.median(bare_s)
    share = b / r  # rlaif throughput as a share of the bare client's
    print(
        f"api-path: N={args.requests} C={args.concurrency}: rlaif {r:.2f} s, bare {b:.2f} s, bound {bound:.2f} s; rlaif at {share:.0%} of bare throughput"
    )
    variant = f" (cache with `PRAGMA synchronous={args.sqlite_synchronous}`)" if args.sqlite_synchronous else ""
    body = f"""## API path: rlaif's `openai` backend vs a bare AsyncOpenAI client{variant}

- Date: {common.today()}; machine: {common.machine()} (load before: {load_before})
- Command: `{common.command_line()}`
- Server: llm-katan echo backend, `--latency-ms {args.latency_ms} --max-concurrent 1024`, on 127.0.0.1, same server for both clients.
- rlaif side: `rlaif.calls.engine.run_generate` with the `openai` backend (max_concurrency {args.concurrency}) and a fresh SQLite `CallCache` in a temp folder: request building, cache lookup, retries wrapper, one cache write per result. Bare side: `openai.AsyncOpenAI` with {args.concurrency} workers sending the same {args.requests} requests. {args.repeats} repeats, order alternating (rlaif first, then bare first, ...), after a 200-request warm-up of each.

| | median wall (s) | runs (s) | requests/s |
|---|---|---|---|
| bound N*latency/C | {bound:.2f} | | {args.requests / bound:.0f} |
| bare AsyncOpenAI | {b:.2f} | {common.fmt_runs(bare_s)} | {args.requests / b:.0f} |
| rlaif `openai` backend | {r:.2f} | {common.fmt_runs(rlaif_s)} | {args.requests / r:.0f} |

rlaif throughput = **{share:.0%} of the bare client's** (target >= 90%: **{"met" if share >= 0.9 else "missed"}**); bare client at {bound / b:.0%} of the latency bound (the 2-core machine runs server and client, so the server's CPU, not the latency, sets the pace).
"""
    name = "api-path" + (f"-sync-{args.sqlite_synchronous.lower()}" if args.sqlite_synchronous else "")
    common.publish(name, body, args.write)


if __name__ == "__main__":
    main()
