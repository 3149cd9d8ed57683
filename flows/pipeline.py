"""End-to-end flow: sample -> judge (both orders) -> debias -> filter -> commit a version.

Each task wraps one library function; the request cache lives in the store, so task retries
and re-runs never repeat a finished model call (Prefect's own result caching is off).
"""

from __future__ import annotations

from pathlib import Path

from prefect import flow, task
from prefect.artifacts import create_markdown_artifact
from prefect.cache_policies import NO_CACHE

from rlaif.cache import CallCache, CallStats
from rlaif.filters import pre_judge_reason, select_pairs
from rlaif.inputs import load_prompts
from rlaif.judges.pairwise import judge_pairs, remove_position_bias
from rlaif.pipeline import build_items, build_manifest, records, store_path, summary_lines
from rlaif.recipe import Recipe, load_recipe
from rlaif.sampling import sample_policy
from rlaif.store.versions import commit_version


@task(cache_policy=NO_CACHE, retries=2, retry_delay_seconds=1)
def load_prompts_task(recipe: Recipe, limit: int | None):
    return load_prompts(recipe.prompts.path, recipe.prompts.system, limit or recipe.prompts.limit)


@task(cache_policy=NO_CACHE)
def sample_task(prompts, policy, samples: int, cache_path: Path) -> tuple[list, CallStats]:
    stats, cache = CallStats(), CallCache(cache_path)
    try:
        return sample_policy(prompts, policy, samples, cache, stats), stats
    finally:
        cache.close()


@task(cache_policy=NO_CACHE)
def judge_task(items, judge_spec, cache_path: Path) -> tuple[list, CallStats]:
    stats, cache = CallStats(), CallCache(cache_path)
    try:
        return judge_pairs(items, judge_spec, cache, stats), stats
    finally:
        cache.close()


@task(cache_policy=NO_CACHE, retries=2, retry_delay_seconds=1)
def commit_task(store: Path, name: str, tables: dict, manifest: dict) -> tuple[str, bool]:
    return commit_version(store, name, tables, manifest)


@flow(name="rlaif-run")
def rlaif_run(recipe_path: str, store: str | None = None, limit: int | None = None) -> dict:
    """Run a recipe end to end and commit a dataset version; returns the summary."""
    recipe = load_recipe(recipe_path)
    store_dir = store_path(recipe, store)
    cache_path = store_dir / "cache.sqlite"
    prompts = load_prompts_task(recipe, limit)
    stats = CallStats()
    generations = []
    for policy in recipe.policies:
        policy_generations, policy_stats = sample_task(prompts, policy, recipe.samples_per_prompt, cache_path)
        generations.extend(policy_generations)
        stats.add(policy_stats)
    items = build_items(prompts, generations, recipe.judge.pairs)
    to_judge = [(prompt, a, b) for prompt, a, b in items if pre_judge_reason(a, b, recipe.filters) is None]
    judgments, judge_stats = judge_task(to_judge, recipe.judge, cache_path)
    stats.add(judge_stats)
    bias = remove_position_bias(judgments, recipe.judge.debias)
    pairs, dropped = select_pairs(items, {(j.a_id, j.b_id): j for j in judgments}, recipe.filters)
    manifest = build_manifest(recipe, prompts, generations, judgments, pairs, dropped, bias, stats, len(items))
    tables = {"pairs": records(pairs), "generations": records(generations), "judgments": records(judgments), "prompts": records(prompts)}
    version_id, created = commit_task(store_dir, recipe.name, tables, manifest)
    lines = summary_lines(version_id, created, manifest, stats)
    create_markdown_artifact(key="rlaif-run-summary", markdown="## rlaif run\n\n" + "\n".join(f"- {line}" for line in lines))
    return {"version_id": version_id, "created": created, "lines": lines, "calls": manifest["calls"], "manifest": manifest}
