"""End-to-end flow: sample -> judge (pairwise both orders, listwise, pointwise, binary; one judge or a jury) -> filter -> commit a version.

The order of the steps is the library's (`rlaif.pipeline.runner.drive`); this module only runs each step
as a Prefect task. Prompts go through in chunks, so memory is bounded by a chunk. The request
cache lives in the store, so task retries and re-runs never repeat a finished model call
(Prefect's own result caching is off).
"""

from __future__ import annotations

import contextvars
import threading
from pathlib import Path

from prefect import flow, task
from prefect.artifacts import (
    create_markdown_artifact,
    create_progress_artifact,
    update_progress_artifact,
)
from prefect.cache_policies import NO_CACHE
from prefect.logging import get_run_logger
from prefect.states import Failed

from rlaif.config.recipe import load_recipe
from rlaif.config.sections import ExecutionSpec
from rlaif.config.settings import store_path
from rlaif.core.errors import RlaifError
from rlaif.flows.server import SUMMARY_RECORD, crash_abandoned_flow_runs, record_flow_run
from rlaif.pipeline import runner
from rlaif.pipeline.incremental import NothingNew
from rlaif.pipeline.run import live_run, start_run
from rlaif.pipeline.summary import summary_lines

# One task per step kind, each wrapping the library step of the same name (rlaif/pipeline/runner.py). A task
# takes plain values (the run's work folder, indices) and returns plain values: an RlaifError is
# returned, not raised, so Prefect logs no traceback; the flow raises it (see `prefect_steps`).


@task(cache_policy=NO_CACHE)
def prompts_task(work: str, limit: int | None) -> list[int] | RlaifError:
    try:
        return runner.prompt_chunks(live_run(work), limit)
    except RlaifError as exc:
        return exc


@task(cache_policy=NO_CACHE)
def sample_task(work: str, policy_index: int, index: int) -> int | RlaifError:
    try:
        return runner.sample_chunk(live_run(work), policy_index, index)
    except RlaifError as exc:
        return exc


@task(cache_policy=NO_CACHE)
def judge_task(work: str, index: int) -> int | RlaifError:
    try:
        return runner.judge_chunk(live_run(work), index)
    except RlaifError as exc:
        return exc


@task(cache_policy=NO_CACHE)
def finish_task(work: str) -> int | RlaifError:
    try:
        return runner.finish_judging(live_run(work))
    except RlaifError as exc:
        return exc


@task(cache_policy=NO_CACHE, retries=2, retry_delay_seconds=1)
def commit_task(work: str) -> tuple[str, bool, dict] | RlaifError:
    try:
        return runner.commit_run(live_run(work))
    except RlaifError as exc:  # e.g. StageFailed: not worth a retry
        return exc


TASKS = {
    "prompts": prompts_task,
    "sample": sample_task,
    "judge": judge_task,
    "finish": finish_task,
    "commit": commit_task,
}


class PrefectSteps:
    """The driver's executor here (rlaif.pipeline.executors.Steps): each step as its kind's task, submitted to the
    flow's task runner, after the tasks it waits for. With `shards` (engine ray: rlaif.pipeline.executors_ray.RaySteps)
    sampling and judging go to its Ray workers instead; prompts, finish and commit stay tasks of the flow.

    The share of steps done is the flow run's progress artifact `rlaif-run-progress`."""

    def __init__(self, shards=None) -> None:
        self.shards, self.concurrent = shards, shards is not None
        self.progress = _StepProgress()

    def submit(self, kind: str, fn, args: tuple, after=()):
        if self.shards is not None and kind in ("sample", "judge"):
            handle = self.shards.submit(kind, fn, args, after)
            handle.add_done_callback(self.progress.step_done)
            return handle
        if self.shards is not None and kind == "finish":
            self.shards.release()  # the shards' calls merged into the store's cache before the driver judges
        plain = (args[0].work.as_posix(), *args[1:])  # the run -> its work folder (a plain value)
        future = TASKS[kind].submit(*plain, wait_for=[handle.future for handle in after])
        future.add_done_callback(self.progress.step_done)
        return _Handle(future)

    def expect(self, steps: int) -> None:
        self.progress.start(steps)

    def stop(self) -> None:
        """The tasks run here, on the run's backend pool (stopped by the caller); Ray shard workers are stopped."""
        if self.shards is not None:
            self.shards.stop()


class _StepProgress:
    """The progress artifact of the flow run: steps done / steps the run submits in all. The UI's progress bar is
    not worth failing a run for: when Prefect cannot take it, the run goes on without it.

    A step's end is reported from whichever thread ends it, which lacks the flow's context: without it Prefect's
    client does not know the run's API (the run's own server is a context setting) and starts a temporary server
    of its own, seconds each time. So every update runs in the flow's context, copied when the run starts."""

    def __init__(self) -> None:
        self.done, self.total, self.artifact = 0, 0, None
        self.lock = threading.Lock()
        self.context: contextvars.Context | None = None

    def start(self, total: int) -> None:
        with self.lock:
            self.total, self.context = total, contextvars.copy_context()
            try:
                self.artifact = create_progress_artifact(
                    self._percent(), key="rlaif-run-progress", description=f"rlaif run: steps done of {total}"
                )
            except Exception:  # noqa: BLE001 - no progress bar in the UI; the run goes on
                self.artifact = None

    def step_done(self, _future) -> None:
        with self.lock:
            self.done += 1
            if self.artifact is None:
                return
            try:  # one update at a time (the lock): a context is entered by one thread at once
                self.context.run(update_progress_artifact, self.artifact, self._percent())
            except Exception:  # noqa: BLE001
                self.artifact = None

    def _percent(self) -> float:
        return min(100.0, 100.0 * self.done / self.total) if self.total else 0.0


class _Handle:
    def __init__(self, future) -> None:
        self.future = future

    def result(self):
        """The task's value; an RlaifError it returned is raised here, in the flow."""
        return _raised(self.future.result())


def _raised(value):
    """A task's value; an RlaifError it returned is raised here, in the flow."""
    if isinstance(value, RlaifError):
        raise value
    return value


@task(cache_policy=NO_CACHE)
def report_task(store: Path, version_id: str) -> Path | None:
    """Write the version's HTML report beside it (STORE/reports/<id>.html) and post its figures and plots as an artifact.

    The version is already committed: a report that cannot be written is logged, not fatal.
    """
    from rlaif.core.errors import RlaifError
    from rlaif.publish.report import report_markdown, write_report

    try:
        path = write_report(store, version_id)
    except (RlaifError, OSError) as exc:
        get_run_logger().warning(f"no report for {version_id}: {exc}")
        return None
    create_markdown_artifact(
        key="rlaif-dataset-report",
        markdown=report_markdown(store, version_id, path),
        description=f"Key figures and plots of {version_id}",
    )
    return path


@flow(name="rlaif-run")
def rlaif_run(
    recipe_path: str,
    store: str | None = None,
    limit: int | None = None,
    chunk_size: int | None = None,
    execution: dict | None = None,
) -> dict:
    """Run a recipe end to end and commit a dataset version; returns the summary.

    The steps and their order are `rlaif.pipeline.runner.drive`'s (the same as `rlaif run --no-prefect`),
    each run here as a task. The chunk size changes memory, never the version.
    """
    recipe = load_recipe(recipe_path)
    if execution:  # `rlaif run --ray/--shards` (rlaif/pipeline/execution.py)
        recipe = recipe.model_copy(update={"execution": ExecutionSpec.model_validate(execution)})
    crash_abandoned_flow_runs(store_path(recipe, store))  # runs SIGKILLed on this store: Crashed, not RUNNING
    try:
        with start_run(recipe, store_path(recipe, store), chunk_size) as run:
            record_flow_run(run.work)
            shards = runner.executor_of(run, limit) if recipe.execution.engine == "ray" else None
            try:
                version_id, created, manifest = runner.drive(
                    run, PrefectSteps(shards), limit
                )  # the steps in the library's order
            finally:
                if shards is not None:
                    shards.close()
    except (
        NothingNew
    ) as exc:  # `parent:` holds every prompt: no version, and the (nightly) flow run Completed, saying so
        create_markdown_artifact(key="rlaif-run-summary", markdown=f"## rlaif run\n\n- {exc}")
        return {"version_id": None, "created": False, "lines": [str(exc)], "calls": None, "manifest": None}
    except RlaifError as exc:  # RunIncomplete (exit 3), StageFailed, InputError: the flow run ends Failed with the
        return Failed(message=str(exc), data=exc)  # message, and calling rlaif_run raises exc (no traceback logged)
    stats = run.stats
    lines = summary_lines(version_id, created, manifest, stats)
    report = report_task(run.store, version_id)
    if report:
        lines.insert(-1, f"report: {report}")  # the summary still ends in the version id
    get_run_logger().info("\n".join(lines), extra={SUMMARY_RECORD: True})
    create_markdown_artifact(
        key="rlaif-run-summary", markdown="## rlaif run\n\n" + "\n".join(f"- {line}" for line in lines)
    )
    return {
        "version_id": version_id,
        "created": created,
        "lines": lines,
        "calls": manifest["calls"],
        "manifest": manifest,
    }
