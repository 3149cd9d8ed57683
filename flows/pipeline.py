"""End-to-end flow: sample -> judge (pairwise both orders, listwise, pointwise, binary; one judge or a jury) -> filter -> commit a version.

Each task wraps one library function; the request cache lives in the store, so task retries
and re-runs never repeat a finished model call (Prefect's own result caching is off).
"""

from __future__ import annotations

from pathlib import Path

from prefect import flow, task
from prefect.artifacts import create_link_artifact, create_markdown_artifact
from prefect.cache_policies import NO_CACHE

from rlaif.cache import CallCache, CallStats
from rlaif.filters import filter_prompts, select_pairs
from rlaif.inputs import load_prompts
from rlaif.judging import JudgeOutcome, judge_stage
from rlaif.pipeline import build_manifest, records, store_path, summary_lines
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
def judge_task(prompts, generations, recipe: Recipe, cache_path: Path) -> tuple[JudgeOutcome, CallStats]:
    stats, cache = CallStats(), CallCache(cache_path)
    try:
        return judge_stage(prompts, generations, recipe.judge, recipe.filters, cache, stats), stats
    finally:
        cache.close()


@task(cache_policy=NO_CACHE, retries=2, retry_delay_seconds=1)
def commit_task(store: Path, name: str, tables: dict, manifest: dict) -> tuple[str, bool]:
    return commit_version(store, name, tables, manifest)


@task(cache_policy=NO_CACHE)
def report_task(store: Path, version_id: str) -> Path | None:
    """Write the version's HTML report beside it (STORE/reports/<id>.html) and post it as artifacts.

    The version is already committed: a report that cannot be written is logged, not fatal.
    """
    from prefect.logging import get_run_logger

    from rlaif.errors import RlaifError
    from rlaif.report import report_markdown, write_report

    try:
        path = write_report(store, version_id)
    except (RlaifError, OSError) as exc:
        get_run_logger().warning(f"no report for {version_id}: {exc}")
        return None
    create_markdown_artifact(key="rlaif-dataset-report", markdown=report_markdown(store, version_id, path), description=f"Key figures of {version_id}")
    create_link_artifact(key="rlaif-dataset-report-html", link=path.resolve().as_uri(), link_text=f"{version_id} report (HTML with plots)")
    return path


@flow(name="rlaif-run")
def rlaif_run(recipe_path: str, store: str | None = None, limit: int | None = None) -> dict:
    """Run a recipe end to end and commit a dataset version; returns the summary."""
    recipe = load_recipe(recipe_path)
    store_dir = store_path(recipe, store)
    cache_path = store_dir / "cache.sqlite"
    prompts = load_prompts_task(recipe, limit)
    prompts, prompts_dropped = filter_prompts(prompts, recipe.filters)  # duplicates, eval overlap: before any call
    stats = CallStats()
    generations = []
    for policy in recipe.policies:
        policy_generations, policy_stats = sample_task(prompts, policy, recipe.samples_per_prompt, cache_path)
        generations.extend(policy_generations)
        stats.add(policy_stats)
    outcome, judge_stats = judge_task(prompts, generations, recipe, cache_path)
    stats.add(judge_stats)
    pairs, dropped = select_pairs(outcome.items, outcome.judgments, recipe.filters)
    manifest = build_manifest(recipe, prompts, generations, outcome, pairs, dropped, stats, prompts_dropped=prompts_dropped)
    tables = {
        "pairs": records(pairs), "generations": records(generations), "judgments": records(outcome.table),
        "prompts": records(prompts), "rankings": records(outcome.rankings), "feedback": records(outcome.feedback),
    }
    version_id, created = commit_task(store_dir, recipe.name, tables, manifest)
    lines = summary_lines(version_id, created, manifest, stats)
    report = report_task(store_dir, version_id)
    if report:
        lines.insert(-1, f"report: {report}")  # the summary still ends in the version id
    create_markdown_artifact(key="rlaif-run-summary", markdown="## rlaif run\n\n" + "\n".join(f"- {line}" for line in lines))
    return {"version_id": version_id, "created": created, "lines": lines, "calls": manifest["calls"], "manifest": manifest}
