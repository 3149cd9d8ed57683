"""Training flow `rlaif-train`: a dataset version -> a trained, versioned model in the store.

The training itself is the library's (`rlaif.training.driver.train`, the same as `rlaif train`); this
module only runs it as a Prefect task and posts what it did as artifacts:

- `rlaif-train-progress`: a progress artifact, updated at every logged step (when max_steps is set);
- `rlaif-train-metrics`: a table of the per-step metrics (step, loss, reward_accuracy, kl, mean_reward, ...)
  from the model folder's metrics.jsonl;
- `rlaif-train-summary`: Markdown with the key figures (model id, dataset version and its judge quality,
  final metrics) and a plot per metric (SVG images inline: a `file://` link to the HTML report would not open
  from the UI, so its path is named instead).

Tasks take and return plain values (store path, dataset id, algorithm, model name, config path,
overrides dict, model id). Start it the way `rlaif run` starts its flow, with a Prefect API of its own
unless PREFECT_API_URL names one (flows/server.py):

    from rlaif.flows.server import prefect_api
    with prefect_api():
        from rlaif.flows.train import rlaif_train
        result = rlaif_train(store="data/store", dataset_id=ID, algorithm="dpo", model="smollm2-135m", overrides={"max_steps": 2})
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from prefect import flow, task
from prefect.artifacts import (
    create_markdown_artifact,
    create_progress_artifact,
    create_table_artifact,
    update_progress_artifact,
)
from prefect.cache_policies import NO_CACHE
from prefect.logging import get_run_logger
from prefect.states import Failed

from rlaif.core.errors import RlaifError
from rlaif.flows.server import SUMMARY_RECORD

TABLE_COLUMNS = ("step", "loss", "reward_accuracy", "kl", "mean_reward", "learning_rate", "epoch")


def _io_error(task, task_run, state) -> bool:
    """Retry a task only when it raised an OSError (a store on a flaky disk or network file system, the API
    briefly away); an RlaifError is returned as a value and never retried."""
    return isinstance(state.data, OSError)


class _Progress:
    """The driver's `on_metrics` in the task: moves the progress artifact at each logged step."""

    def __init__(self, max_steps: int | None, description: str) -> None:
        self.max_steps, self.artifact = max_steps, None
        if max_steps:
            try:
                self.artifact = create_progress_artifact(0.0, key="rlaif-train-progress", description=description)
            except Exception:  # no progress bar in the UI; the training goes on
                self.artifact = None

    def __call__(self, metrics: dict[str, Any]) -> None:
        if isinstance(metrics.get("step"), (int, float)):
            self._update(100.0 * metrics["step"] / self.max_steps if self.max_steps else 0.0)

    def finish(self) -> None:
        """100% (also when the model existed and nothing was trained)."""
        self._update(100.0)

    def _update(self, percent: float) -> None:
        if self.artifact is None:
            return
        try:
            update_progress_artifact(self.artifact, min(100.0, percent))
        except Exception:  # the progress bar of the UI is not worth stopping a training for
            self.artifact = None


@task(cache_policy=NO_CACHE)
def settings_task(algorithm: str, config_path: str | None, overrides: dict[str, Any]) -> dict | RlaifError:
    """The validated training settings (as plain values): a bad config fails before any training."""
    from rlaif.training.config import load_settings

    try:
        return load_settings(algorithm, config_path, **overrides).model_dump(mode="json")
    except RlaifError as exc:
        return exc


@task(cache_policy=NO_CACHE, retries=1, retry_delay_seconds=2, retry_condition_fn=_io_error)
def train_task(
    store: str,
    dataset_id: str,
    algorithm: str,
    model: str,
    config_path: str | None,
    overrides: dict[str, Any],
    progress: bool = True,
) -> dict | RlaifError:
    """Train (or find the model the same settings made before); the result as plain values."""
    from rlaif.training import driver
    from rlaif.training.config import load_settings

    try:
        settings = load_settings(algorithm, config_path, **overrides)
        steps = _Progress(settings.max_steps, f"rlaif train {algorithm} on {dataset_id}")
        result = driver.train(store, dataset_id, algorithm, model, settings, on_metrics=steps, progress=progress)
    except RlaifError as exc:
        return exc
    steps.finish()
    return {
        "model_id": result.model_id,
        "path": str(result.path),
        "existed": result.existed,
        "metrics": result.metrics,
        "seconds": result.seconds,
    }


@task(cache_policy=NO_CACHE, retries=2, retry_delay_seconds=1, retry_condition_fn=_io_error)
def artifacts_task(store: str, model_id: str) -> str | None:
    """Post the per-step metrics table and the summary with its plots (the HTML report written if missing);
    returns the report's path. The model is committed: a report that cannot be written is logged, not fatal."""

    from rlaif.store.models import load_model_manifest, model_path
    from rlaif.training.report import REPORT_FILE, read_metrics, training_markdown, write_training_report

    try:
        folder, manifest = model_path(store, model_id), load_model_manifest(store, model_id)
    except RlaifError as exc:
        get_run_logger().warning(f"no artifacts for {model_id}: {exc}")
        return None
    rows, _ = read_metrics(folder)
    if rows:
        create_table_artifact(
            metrics_table(rows), key="rlaif-train-metrics", description=f"Per-step training metrics of {model_id}"
        )
    report: Path | None = folder / REPORT_FILE
    if not report.is_file():
        try:
            report = write_training_report(store, model_id)
        except (RlaifError, OSError) as exc:
            get_run_logger().warning(f"no training report for {model_id}: {exc}")
            report = None
    create_markdown_artifact(
        key="rlaif-train-summary",
        markdown=training_markdown(manifest, report, rows),
        description=f"Trained model {model_id}",
    )
    return str(report) if report else None


def metrics_table(rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The logged steps as table rows: the usual columns first, then any other logged number.

    >>> metrics_table([{"step": 1, "loss": 0.5, "grad_norm": 2.0}, {"step": 2, "kl": 0.1}])
    [{'step': 1, 'loss': 0.5, 'kl': None, 'grad_norm': 2.0}, {'step': 2, 'loss': None, 'kl': 0.1, 'grad_norm': None}]
    """
    seen = {key for row in rows for key in row}
    columns = [c for c in TABLE_COLUMNS if c in seen] + sorted(seen - set(TABLE_COLUMNS))
    return [{column: row.get(column) for column in columns} for row in rows]


@flow(name="rlaif-train")
def rlaif_train(
    store: str,
    dataset_id: str,
    algorithm: str,
    model: str,
    config_path: str | None = None,
    overrides: dict[str, Any] | None = None,
    progress: bool = True,
) -> dict:
    """Train `model` on the dataset version `dataset_id` with `algorithm` and commit it to the store.

    `config_path` is a training YAML (recipes/train/ALG.yaml), `overrides` its fields set from the
    command line (max_steps, lora, ...). Returns {model_id, path, existed, metrics, seconds, report};
    the same settings again find the existing model instead of training.
    """
    overrides = {key: value for key, value in (overrides or {}).items() if value is not None}
    try:
        _raised(settings_task(algorithm, config_path, overrides))
        result = _raised(train_task(str(store), dataset_id, algorithm, model, config_path, overrides, progress))
    except (
        RlaifError
    ) as exc:  # the flow run ends Failed with the message; calling rlaif_train raises exc (no traceback logged)
        return Failed(message=str(exc), data=exc)
    result["report"] = artifacts_task(str(store), result["model_id"])
    done = "already trained (the same dataset, algorithm, base model and settings)" if result["existed"] else "trained"
    summary = f"{done}: {algorithm} on {dataset_id}, {result['seconds']:.1f} s\nmodel: {result['model_id']}"
    get_run_logger().info(summary, extra={SUMMARY_RECORD: True})  # the flow run's log names what it made
    return result


def _raised(value):
    """A task's value; an RlaifError it returned is raised here, in the flow."""
    if isinstance(value, RlaifError):
        raise value
    return value
