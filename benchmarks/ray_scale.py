"""Speed across Ray workers, measured: the same run in this process, on 1 and on 2 local Ray shard
workers (`execution: {engine: ray, shards: N}`), for an API job (llm-katan echo with a fixed
latency per request, policy and judge) and a local-engine job (smollm2-135m on the transformers
backend, policy and judge). Every run starts from a fresh store (no cached call); each Ray run's
time includes starting its actors (and loading the model in each); one Ray instance serves them all.

    .venv/bin/python benchmarks/ray_scale.py --api-prompts 400 --latency-ms 200 --local-prompts 4 --write
"""

from __future__ import annotations

import argparse
import json
import os
import tempfile
import time
from pathlib import Path

import _common as common

from rlaif.config.recipe import parse_recipe
from rlaif.pipeline.runner import run_recipe

os.environ.setdefault("RLAIF_PROGRESS", "0")


# llm-katan's echo names the current time in each answer: frozen (as in tests/test_ray.py), so that runs can be compared by id
FROZEN = (
    "import datetime\nclass Frozen(datetime.datetime):\n    @classmethod\n    def now(cls, tz=None):\n        return cls(2026, 1, 1, tzinfo=tz)\n"
    "datetime.datetime = Frozen\nfrom llm_katan.cli import main\nmain()\n"
)


def frozen_echo_server(latency_ms: int):
    import sys

    from tests import servers

    servers.llm_katan_command = lambda: [sys.executable, "-c", FROZEN]
    return common.start_echo_server(latency_ms)


def write_prompts(folder: Path, n: int) -> Path:
    path = folder / f"prompts-{n}.jsonl"
    path.write_text(
        "".join(
            json.dumps({"id": f"q{i}", "prompt": f"Question {i}: name a colour and a number."}) + "\n"
            for i in range(n)
        )
    )
    return path


def api_recipe(prompts: Path, base_url: str, model: str) -> dict:
    endpoint = {"backend": "openai", "base_url": base_url, "model": model}
    return {
        "name": "bench-api",
        "prompts": {"path": str(prompts)},
        "policies": [
            {"name": n, **endpoint, "params": {"temperature": t, "max_tokens": 32}}
            for n, t in (("a", 0.2), ("b", 0.9))
        ],
        "samples_per_prompt": 1,
        "judge": endpoint,
        "filters": {"consistency": False, "min_margin": 0.0, "drop_truncated": False},
        "min_verdict_share": 0,  # llm-katan's echo gives no verdict: commit its judgments as judge_failed
    }


def local_recipe(prompts: Path) -> dict:
    model = {"model": "smollm2-135m", "threads": 1}
    return {
        "name": "bench-local",
        "prompts": {"path": str(prompts)},
        "policies": [
            {"name": "smol", **model, "batch_size": 2, "params": {"temperature": 1.0, "max_tokens": 16, "seed": 3}}
        ],
        "samples_per_prompt": 2,
        "judge": {**model, "batch_size": 1},
        "filters": {"drop_truncated": False},
    }


def timed(data: dict, shards: int | None) -> tuple[float, str, dict]:
    """Seconds for one run into a fresh store: in this process (shards None) or on `shards` Ray workers."""
    recipe = parse_recipe({**data, **({"execution": {"engine": "ray", "shards": shards}} if shards else {})})
    with tempfile.TemporaryDirectory() as store:
        start = time.perf_counter()
        version_id, _, manifest, _ = run_recipe(recipe, store)
        return time.perf_counter() - start, version_id, manifest["calls"]


def job(name: str, data: dict, repeats: int) -> dict:
    """The job in process, on 1 and on 2 workers, alternating the order over repeats; medians, and whether the ids agree."""
    times: dict[str, list[float]] = {"in-process": [], "ray-1": [], "ray-2": []}
    ids, calls = set(), None
    for repeat in range(repeats):
        order = [("in-process", None), ("ray-1", 1), ("ray-2", 2)]
        for label, shards in order if repeat % 2 == 0 else order[::-1]:
            seconds, version_id, calls = timed(data, shards)
            times[label].append(seconds)
            ids.add(version_id)
            print(f"  {name} {label}: {seconds:.2f} s ({version_id}, calls {calls})", flush=True)
    return {"name": name, "times": times, "same_id": len(ids) == 1, "calls": calls}


def table(results: list[dict]) -> str:
    rows = [
        "| job | calls (live) | in process | Ray, 1 worker | Ray, 2 workers | speed-up, 2 vs 1 workers | Ray 1 worker over in process | same version id |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for r in results:
        m = {label: common.median(values) for label, values in r["times"].items()}
        runs = {
            label: f"{m[label]:.1f} s" + (f" ({common.fmt_runs(values)})" if len(values) > 1 else "")
            for label, values in r["times"].items()
        }
        rows.append(
            f"| {r['name']} | {r['calls']['live']} | {runs['in-process']} | {runs['ray-1']} | {runs['ray-2']} | "
            f"{m['ray-1'] / m['ray-2']:.2f}x | +{m['ray-1'] - m['in-process']:.1f} s ({m['ray-1'] / m['in-process']:.2f}x) | {'yes' if r['same_id'] else 'NO'} |"
        )
    return "\n".join(rows)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--api-prompts", type=int, default=400)
    parser.add_argument("--latency-ms", type=int, default=200)
    parser.add_argument("--local-prompts", type=int, default=4)
    parser.add_argument("--repeats", type=int, default=1)
    parser.add_argument("--write", action="store_true", help="refresh the bench:ray-scale section of docs/scale.md")
    args = parser.parse_args()
    import ray

    before = common.machine()
    start = time.perf_counter()
    ray.init(num_cpus=2, include_dashboard=False, logging_level="WARNING")
    ray_start = time.perf_counter() - start
    results = []
    with tempfile.TemporaryDirectory() as tmp, frozen_echo_server(args.latency_ms) as server:
        results.append(
            job(
                f"API: {args.api_prompts} prompts, 2 policies + pairwise judge, llm-katan echo {args.latency_ms} ms",
                api_recipe(write_prompts(Path(tmp), args.api_prompts), server.base_url, server.model),
                args.repeats,
            )
        )
        results.append(
            job(
                f"local engine: smollm2-135m, {args.local_prompts} prompts x 2 samples + pairwise judge, 1 torch thread",
                local_recipe(write_prompts(Path(tmp), args.local_prompts)),
                args.repeats,
            )
        )
    ray.shutdown()
    body = "\n".join(
        [
            f"Measured {common.today()} with `{common.command_line()}` ({args.repeats} run(s) each, medians, each run in brackets; fresh store each run).",
            f"Machine: {before} at the start; load average {common.load_average()} at the end. One local Ray instance "
            f"(`ray.init(num_cpus=2)`, {ray_start:.1f} s to start, not counted below); the Ray times include starting the shard actors.",
            "",
            table(results),
        ]
    )
    common.DOC = common.ROOT / "docs" / "scale.md"
    common.publish("ray-scale", body, args.write)


if __name__ == "__main__":
    main()
