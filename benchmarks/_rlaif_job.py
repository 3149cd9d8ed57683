"""One rlaif job against an OpenAI-compatible server, run with the library (no Prefect), in its own
process so that its peak memory is its own. Prints one JSON line with the wall time of the job,
the process's peak RSS and the call counts.

The job is what `flows/pipeline.py` does: load prompts, sample two responses per prompt (two
policies, one sample each: llm-katan's echo differs by temperature), judge the pair in both
orders, filter, commit a dataset version. The request cache lives in the store (on disk).

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
            out.write(json.dumps({"id": f"q{i}", "prompt": f"Question {i}: in one sentence, why is {i * 7919 % 100003} interesting?"}) + "\n")
    return path


def job_recipe(prompts: Path, base_url: str, model: str, concurrency: int, judge: bool, policies: int = 2):
    from rlaif.recipe import parse_recipe

    return parse_recipe(recipe_data(prompts, base_url, model, concurrency, judge, policies))


def recipe_data(prompts: Path, base_url: str, model: str, concurrency: int, judge: bool = True, policies: int = 2) -> dict:
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
    }


def run_job(recipe, store: Path, judge: bool = True) -> dict:
    """flows/pipeline.py's rlaif_run, minus Prefect; returns the figures."""
    from rlaif.cache import CallCache, CallStats
    from rlaif.filters import filter_prompts, select_pairs
    from rlaif.inputs import load_prompts
    from rlaif.judging import JudgeOutcome, judge_stage
    from rlaif.pipeline import build_manifest, records
    from rlaif.sampling import sample_policy
    from rlaif.store.versions import commit_version

    rss_start = common.current_rss_mib()
    start = time.perf_counter()
    cache = CallCache(store / "cache.sqlite")
    stats = CallStats()
    prompts, prompts_dropped = filter_prompts(load_prompts(recipe.prompts.path), recipe.filters)
    generations = [g for policy in recipe.policies for g in sample_policy(prompts, policy, recipe.samples_per_prompt, cache, stats)]
    sampled = time.perf_counter() - start
    rss_sampled = common.current_rss_mib()
    if judge:
        outcome = judge_stage(prompts, generations, recipe.judge, recipe.filters, cache, stats)
    else:
        outcome = JudgeOutcome(items=[], judgments={})
    pairs, dropped = select_pairs(outcome.items, outcome.judgments, recipe.filters)
    manifest = build_manifest(recipe, prompts, generations, outcome, pairs, dropped, stats, prompts_dropped=prompts_dropped)
    tables = {
        "pairs": records(pairs), "generations": records(generations), "judgments": records(outcome.table),
        "prompts": records(prompts), "rankings": records(outcome.rankings), "feedback": records(outcome.feedback),
    }
    version_id, _ = commit_version(store, recipe.name, tables, manifest)
    cache.close()
    return {
        "seconds": time.perf_counter() - start, "sampling_seconds": sampled, "peak_rss_mib": common.peak_rss_mib(),
        "rss_start_mib": rss_start, "rss_after_sampling_mib": rss_sampled,
        "live": stats.live, "cached": stats.cached, "failed": stats.failed,
        "generations": len(generations), "judgments": len(outcome.table), "version": version_id,
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
    args = parser.parse_args()
    store = Path(args.store)
    store.mkdir(parents=True, exist_ok=True)
    prompts = store / "prompts.jsonl"
    if not prompts.exists():
        write_prompts(prompts, args.prompts)
    recipe = job_recipe(prompts, args.base_url, args.model, args.concurrency, not args.no_judge, args.policies)
    print(json.dumps(run_job(recipe, store, not args.no_judge)))


if __name__ == "__main__":
    main()
