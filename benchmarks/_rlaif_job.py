"""One rlaif job against an OpenAI-compatible server, run with the library (no Prefect), in its own
process so that its peak memory is its own. Prints one JSON line with the wall time of the job,
the process's peak RSS and the call counts.

The job is what `flows/pipeline.py` does, with the same library steps (`rlaif.pipeline.runner.run_recipe`):
load prompts in chunks, sample two responses per prompt (two policies, one sample each:
llm-katan's echo differs by temperature), judge the pair in both orders, filter, commit a dataset
version. The request cache lives in the store (on disk).

    .venv/bin/python benchmarks/_rlaif_job.py --base-url http://127.0.0.1:8000/v1 --model katan-echo --prompts 1000 --store /tmp/s
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import _common as common


def write_prompts(path: Path, n: int) -> Path:
    """n distinct prompts as JSON Lines (distinct numbers, so no two are near-duplicates)."""
    with path.open("w", encoding="utf-8") as out:
        for i in range(n):
            out.write(
                json.dumps(
                    {
                        "id": f"q{i}",
                        "prompt": f"Question {i}: in one sentence, why is {i * 7919 % 100003} interesting?",
                    }
                )
                + "\n"
            )
    return path


def job_recipe(prompts: Path, base_url: str, model: str, concurrency: int, judge: bool, policies: int = 2):
    from rlaif.config.recipe import parse_recipe

    return parse_recipe(recipe_data(prompts, base_url, model, concurrency, judge, policies))


def recipe_data(
    prompts: Path, base_url: str, model: str, concurrency: int, judge: bool = True, policies: int = 2
) -> dict:
    """The job as recipe data (also written as YAML for `rlaif run` by benchmarks/rerun.py)."""
    server = {"backend": "openai", "model": model, "base_url": base_url, "max_concurrency": concurrency}
    return {
        "name": "bench",
        "prompts": {"path": str(prompts)},
        "policies": [
            {**server, "name": "cold", "params": {"temperature": 0.7, "max_tokens": 64}},
            {**server, "name": "hot", "params": {"temperature": 1.0, "max_tokens": 64}},
        ][:policies],
        "samples_per_prompt": 1,
        "judge": {**server, "type": "pairwise"} if judge else {**server},
        # prompts are synthetic and distinct, echo responses alike: measure the calls, not the filters
        "filters": {"dedup_prompts": False, "response_near_duplicate": None},
        "min_verdict_share": 0,  # llm-katan's echo gives no verdict: commit its judgments as judge_failed, as before
    }


def run_job(recipe, store: Path, judge: bool = True, chunk_size: int | None = None) -> dict:
    """flows/pipeline.py's rlaif_run minus Prefect: the same library steps (rlaif.pipeline.runner); returns the figures."""
    from rlaif.pipeline.runner import run_recipe

    rss_start = common.current_rss_mib()
    start = time.perf_counter()
    marks = {}

    def after_chunks(run) -> None:  # every chunk sampled (and judged, phase 1)
        marks.update(seconds=time.perf_counter() - start, rss=common.current_rss_mib(), chunks=run.chunks)

    version_id, _, manifest, run = run_recipe(
        recipe, store, chunk_size=chunk_size, judge=judge, after_chunks=after_chunks
    )
    stats = run.stats
    return {
        "seconds": time.perf_counter() - start,
        "sampling_seconds": marks["seconds"],
        "peak_rss_mib": common.peak_rss_mib(),
        "rss_start_mib": rss_start,
        "rss_after_sampling_mib": marks["rss"],
        "chunks": marks["chunks"],
        "chunk_size": run.chunk_size,
        "live": stats.live,
        "cached": stats.cached,
        "failed": stats.failed,
        "generations": manifest["counts"]["generations"],
        "judgments": manifest["counts"]["judgments"],
        "version": version_id,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--base-url", required=True)
    parser.add_argument("--model", required=True)
    parser.add_argument("--prompts", type=int, default=1000)
    parser.add_argument("--concurrency", type=int, default=64)
    parser.add_argument("--store", required=True, help="store folder (the cache is STORE/cache.sqlite)")
    parser.add_argument("--no-judge", action="store_true", help="sampling only")
    parser.add_argument("--policies", type=int, choices=(1, 2), default=2, help="policies, one sample each")
    parser.add_argument(
        "--chunk-size", type=int, default=None, help="prompts per chunk (default: $RLAIF_CHUNK_SIZE or 5000)"
    )
    args = parser.parse_args()
    store = Path(args.store)
    store.mkdir(parents=True, exist_ok=True)
    prompts = store / "prompts.jsonl"
    if not prompts.exists():
        write_prompts(prompts, args.prompts)
    recipe = job_recipe(prompts, args.base_url, args.model, args.concurrency, not args.no_judge, args.policies)
    print(json.dumps(run_job(recipe, store, not args.no_judge, args.chunk_size)))


if __name__ == "__main__":
    main()
