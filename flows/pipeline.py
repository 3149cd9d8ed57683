"""End-to-end flow: sample -> judge (pairwise both orders, listwise, pointwise, binary; one judge or a jury) -> filter -> commit a version.

Prompts go through in chunks (rlaif/runner.py), so memory is bounded by a chunk. Each task wraps
one library function; the request cache lives in the store, so task retries
and re-runs never repeat a finished model call (Prefect's own result caching is off).
"""

from __future__ import annotations

from pathlib import Path

from prefect import flow, task
from prefect.artifacts import create_link_artifact, create_markdown_artifact
from prefect.cache_policies import NO_CACHE
from prefect.states import Failed

from flows.server import crash_abandoned_flow_runs, record_flow_run
from rlaif.backends import one_loaded_backend
from rlaif.cache import CallCache
from rlaif.errors import RlaifError
from rlaif.pipeline import store_path, summary_lines
from rlaif.recipe import load_recipe
from rlaif.runner import Run, chunk_prompts, close_run, commit_run, finish_judging, judge_chunk, prompt_chunks, sample_chunk, start_run


@task(cache_policy=NO_CACHE)
def sample_task(run: Run, policy_index: int, index: int) -> RlaifError | None:
    cache = CallCache(run.store / "cache.sqlite")
    try:
        sample_chunk(run, policy_index, index, chunk_prompts(run, index), cache, run.stats)
    except RlaifError as exc:  # a value, so Prefect logs no traceback; the flow raises it (see _raised)
        return exc
    finally:
        cache.close()


@task(cache_policy=NO_CACHE)
def judge_task(run: Run, index: int) -> RlaifError | None:
    cache = CallCache(run.store / "cache.sqlite")
    try:
        judge_chunk(run, index, cache, run.stats)
    except RlaifError as exc:  # a value, so Prefect logs no traceback; the flow raises it (see _raised)
        return exc
    finally:
        cache.close()


@task(cache_policy=NO_CACHE)
def finish_task(run: Run) -> RlaifError | None:
    cache = CallCache(run.store / "cache.sqlite")
    try:
        finish_judging(run, cache, run.stats)
    except RlaifError as exc:  # a value, so Prefect logs no traceback; the flow raises it (see _raised)
        return exc
    finally:
        cache.close()


@task(cache_policy=NO_CACHE, retries=2, retry_delay_seconds=1)
def commit_task(run: Run) -> tuple[str, bool, dict] | RlaifError:
    try:
        return commit_run(run)
    except RlaifError as exc:  # e.g. StageFailed: not worth a retry
        return exc


def _raised(value):
    """A task's value; an RlaifError it returned is raised here, in the flow."""
    if isinstance(value, RlaifError):
        raise value
    return value


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
def rlaif_run(recipe_path: str, store: str | None = None, limit: int | None = None, chunk_size: int | None = None) -> dict:
    """Run a recipe end to end and commit a dataset version; returns the summary.

    Prompts go through in chunks of `chunk_size` (default $RLAIF_CHUNK_SIZE or 5000): each policy
    samples every chunk, the judge judges every chunk (phase 1), then debias, filter and write pairs
    run-wide (phase 2), then commit. Each model is loaded once, one at a time.
    The chunk size changes memory, never the version.
    """
    recipe = load_recipe(recipe_path)
    crash_abandoned_flow_runs(store_path(recipe, store))  # runs SIGKILLed on this store: Crashed, not RUNNING
    run = start_run(recipe, store_path(recipe, store), chunk_size)
    try:
        record_flow_run(run.work)
        with one_loaded_backend():  # each model loaded once per run, one at a time
            chunks = prompt_chunks(run, limit)  # duplicates, eval overlap: dropped before any call
            for policy_index in range(len(recipe.policies)):
                for index in chunks:
                    _raised(sample_task(run, policy_index, index))
            for index in chunks:
                _raised(judge_task(run, index))
            _raised(finish_task(run))
        version_id, created, manifest = _raised(commit_task(run))
    except RlaifError as exc:  # RunIncomplete (exit 3), StageFailed, InputError: the flow run ends Failed with the
        return Failed(message=str(exc), data=exc)  # message, and calling rlaif_run raises exc (no traceback logged)
    finally:
        close_run(run)
    stats = run.stats
    lines = summary_lines(version_id, created, manifest, stats)
    report = report_task(run.store, version_id)
    if report:
        lines.insert(-1, f"report: {report}")  # the summary still ends in the version id
    create_markdown_artifact(key="rlaif-run-summary", markdown="## rlaif run\n\n" + "\n".join(f"- {line}" for line in lines))
    return {"version_id": version_id, "created": created, "lines": lines, "calls": manifest["calls"], "manifest": manifest}
