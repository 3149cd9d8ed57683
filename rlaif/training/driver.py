"""The one training entry point: a dataset version in, a versioned model in the store out.

`train` checks the dataset version, computes the model id from what decides the training (dataset
id, algorithm, base model, settings, reward), returns the existing model when that id is already in
the store, and otherwise builds the rows and the reward, runs the algorithm's trainer (`TRAINERS`)
in a work folder of the store, writes `metrics.jsonl` and commits the model with its manifest.
The CLI `rlaif train` and the Prefect flow `rlaif-train` are executors of it.
"""

from __future__ import annotations

import contextlib
import hashlib
import importlib
import importlib.util
import json
import logging
import math
import os
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from functools import partial
from pathlib import Path
from typing import Any

from rlaif.core.errors import BackendError, StoreError
from rlaif.training.config import TrainSettings, torch_threads
from rlaif.training.job import MetricsFn, RewardFn, TrainJob

log = logging.getLogger(__name__)

TRAINERS = {
    "sft": "rlaif.training.trl_trainers:run_sft",
    "rm": "rlaif.training.trl_trainers:run_rm",
    "dpo": "rlaif.training.trl_trainers:run_dpo",
    "kto": "rlaif.training.trl_trainers:run_kto",
    "ppo": "rlaif.training.ppo:run",
    "rloo": "rlaif.training.trl_trainers:run_rloo",
    "grpo": "rlaif.training.trl_trainers:run_grpo",
    "rrhf": "rlaif.training.rrhf:run",
}
ONLINE = ("ppo", "rloo", "grpo")  # trained against a reward function
TRL_ALGORITHMS = ("sft", "rm", "dpo", "kto", "rloo", "grpo")


@dataclass
class TrainResult:
    model_id: str
    path: Path
    existed: bool
    metrics: dict[str, Any] = field(default_factory=dict)
    seconds: float = 0.0


def trainer_function(algorithm: str) -> Callable[[TrainJob], dict]:
    """The `run(job)` function of `algorithm` (imported on first use)."""
    module, _, name = TRAINERS[algorithm].partition(":")
    return getattr(importlib.import_module(module), name)


def check_installed(algorithm: str) -> None:
    """BackendError naming the extra when a package the trainer needs is missing."""
    needed = ("torch", "transformers", "datasets", "accelerate") + (("trl",) if algorithm in TRL_ALGORITHMS else ())
    missing = [name for name in needed if importlib.util.find_spec(name) is None]
    if missing:
        raise BackendError(
            f"`rlaif train {algorithm}` needs {', '.join(missing)}, which is not installed - pip install 'rlaif[train]'"
        )


def check_dataset(store: str | Path, dataset_id: str) -> dict:
    """The dataset version's manifest; StoreError for a malformed or unknown id."""
    from rlaif.core.names import check_version_id
    from rlaif.store.versions import load_manifest

    try:
        check_version_id(dataset_id)
    except ValueError as exc:
        raise StoreError(f"--dataset: {exc} - `rlaif datasets list` lists the versions") from None
    return load_manifest(store, dataset_id)


def _file_digest(path: str) -> str | None:
    file = Path(path)
    return hashlib.sha256(file.read_bytes()).hexdigest() if file.is_file() else None


def reward_key(settings: TrainSettings) -> dict | None:
    """What identifies the reward: the spec, plus the judge recipe's sha256 (its content, not its path)."""
    if settings.reward is None:
        return None
    spec = settings.reward.model_dump(exclude_none=True)
    if "judge" in spec:
        spec["sha256"] = _file_digest(spec["judge"])
    return spec


def default_name(dataset_id: str, algorithm: str) -> str:
    """`<dataset name>-<algorithm>`, cut to the 64 characters a name may have."""
    dataset_name = dataset_id.rsplit("-", 1)[0]
    return f"{dataset_name[: 63 - len(algorithm)]}-{algorithm}"


def training_revision(settings: TrainSettings) -> int | None:
    """The revision of what these settings train, where it changed since a model id was first made from them
    (so a model trained the old way is not taken for the new one); None where nothing changed (the id stays).

    2 (issue 23): sft rows only from judgments that survived the filters; ppo's stop ids, plain sampling, the
    critic's own learning rate, reward clipping and LoRA settings; rloo / grpo's failed rewards left out and
    their prompt limit applied; dpo `weighting` by the training set's mean weight; rrhf's LoRA settings.
    """
    if settings.algorithm in ("sft", "ppo", "rloo", "grpo"):
        return 2
    if (settings.algorithm == "dpo" and settings.soft_labels == "weighting") or (
        settings.algorithm == "rrhf" and settings.lora
    ):
        return 2
    return None


def model_key(dataset_id: str, algorithm: str, model: str, settings: TrainSettings) -> dict:
    key = {
        "dataset": dataset_id,
        "algorithm": algorithm,
        "base_model": model,
        "settings": settings.key(),
        "reward": reward_key(settings),
    }
    revision = training_revision(settings)
    return key if revision is None else {**key, "revision": revision}


def resolve_base(model: str, store: str | Path) -> str:
    """A loadable folder for the base model: an alias, a local folder or a model id of the store."""
    from rlaif.weights.resolve import check_local_model, resolve_model

    check_local_model(model, store)
    return resolve_model(model, store)


def build_reward(settings: TrainSettings, store: str | Path, device: str) -> RewardFn | None:
    if settings.algorithm not in ONLINE:
        return None
    if settings.reward is None:
        from rlaif.core.errors import RecipeError

        raise RecipeError(
            "training settings",
            "reward",
            f"{settings.algorithm} trains against a reward",
            "set reward: {model: RM_MODEL_ID} or reward: {judge: RECIPE.yaml} in --config",
        )
    from rlaif.training.rewards import reward_from_spec

    return reward_from_spec(settings.reward.model_dump(exclude_none=True), store, device=device)


def pick_device() -> str:
    import torch

    return "cuda" if torch.cuda.is_available() else "cpu"


def hardware(device: str) -> dict[str, Any]:
    import torch
    import transformers

    trl_version = None
    if importlib.util.find_spec("trl") is not None:
        import trl

        trl_version = trl.__version__
    gpu = torch.cuda.get_device_name(0) if device.startswith("cuda") else None
    return {
        "device": device,
        "gpu": gpu,
        "cpu_count": os.cpu_count(),
        "torch_threads": torch.get_num_threads(),
        "torch": torch.__version__,
        "transformers": transformers.__version__,
        "trl": trl_version,
    }


class StepRecorder:
    """Receives each logged step: appends it to metrics.jsonl, advances the bar, calls the user's hook."""

    def __init__(self, path: Path, advance: Callable[[int], None], on_metrics: MetricsFn | None) -> None:
        self.path, self.advance, self.on_metrics, self.step = path, advance, on_metrics, 0

    def __call__(self, metrics: dict[str, Any]) -> None:
        clean = {
            key: value for key, value in metrics.items() if not (isinstance(value, float) and not math.isfinite(value))
        }
        with self.path.open("a", encoding="utf-8") as out:
            out.write(json.dumps(clean) + "\n")
        step = int(metrics.get("step", self.step + 1))
        if step > self.step:
            self.advance(step - self.step)
            self.step = step
        if self.on_metrics is not None:
            self.on_metrics(dict(clean))


def expected_steps(settings: TrainSettings, rows: int) -> int:
    """Steps for the progress bar: max_steps, else an estimate from the epochs (TRL's default 3)."""
    if settings.max_steps:
        return settings.max_steps
    per_step = settings.batch_size * int(settings.options.get("gradient_accumulation_steps", 1))
    epochs = float(settings.options.get("num_train_epochs", 3))
    return max(1, math.ceil(math.ceil(rows / per_step) * epochs))


def build_manifest(ctx: dict[str, Any], settings: TrainSettings, metrics: dict, seconds: float) -> dict[str, Any]:
    """The model's manifest (plan12.md): what was trained on what, how, with what result, where."""
    dataset = ctx["dataset_manifest"]
    parents = [ctx["dataset_id"]]
    if ctx["base_is_store_model"]:
        parents.append(ctx["model"])
    return {
        "algorithm": settings.algorithm,
        "base_model": ctx["model"],
        "base_model_path": ctx["model_path"],
        "dataset": {
            "id": ctx["dataset_id"],
            "name": dataset.get("name"),
            "counts": dataset.get("counts"),
            "eval": dataset.get("eval"),
        },
        "parents": parents,
        "settings": settings.model_dump(mode="json"),
        "reward": reward_key(settings),
        "lora": settings.lora,
        "metrics": metrics,
        "steps": int(metrics.get("steps", 0)),
        "seconds": round(seconds, 3),
        "rows": ctx["rows"],
        "hardware": hardware(ctx["device"]),
    }


def _run_in_workdir(job: TrainJob, store: str | Path, model_id: str, progress: bool) -> tuple[dict, float]:
    from rlaif.core.progress import progress_bar
    from rlaif.store.models import discard_model_workdir

    started = time.perf_counter()
    try:
        with progress_bar(
            f"train {job.algorithm}", expected_steps(job.settings, len(job.rows)) if progress else 0
        ) as advance:
            job.on_metrics = StepRecorder(job.output_dir / "metrics.jsonl", advance, job.on_metrics)
            (job.output_dir / "metrics.jsonl").touch()
            metrics = trainer_function(job.algorithm)(job)
    except BaseException:
        discard_model_workdir(job.output_dir)
        raise
    return metrics, time.perf_counter() - started


def train(
    store: str | Path,
    dataset_id: str,
    algorithm: str,
    model: str,
    settings: TrainSettings,
    on_metrics: MetricsFn | None = None,
    progress: bool = True,
    device: str | None = None,
) -> TrainResult:
    """Train `algorithm` on the dataset version `dataset_id` from the base `model`; the model id and
    folder in the store, `existed=True` (and no training) when the same training is already there."""
    from rlaif.store.models import model_id_for, training_lock

    if settings.algorithm != algorithm:
        raise StoreError(
            f"the settings are for {settings.algorithm}, not {algorithm} - load them with load_settings({algorithm!r}, ...)"
        )
    dataset_manifest = check_dataset(store, dataset_id)
    model_id = model_id_for(
        settings.name or default_name(dataset_id, algorithm), model_key(dataset_id, algorithm, model, settings)
    )
    waited = partial(log.warning, "waiting for an identical training of %s", model_id)
    one_at_a_time = (
        contextlib.nullcontext()
        if int(os.environ.get("WORLD_SIZE", "1")) > 1  # torchrun's ranks train together: they never wait on each other
        else training_lock(store, model_id, on_wait=waited)
    )
    with one_at_a_time:
        return _train(
            store, dataset_id, algorithm, model, settings, model_id, dataset_manifest, on_metrics, progress, device
        )


def _train(store, dataset_id, algorithm, model, settings, model_id, dataset_manifest, on_metrics, progress, device):
    """`train` once the model id is known (and, in one process, its training lock is held)."""
    from rlaif.publish.model_card import render_model_card
    from rlaif.store.models import commit_model, find_model, is_model_id, new_model_workdir

    found = find_model(store, model_id)
    if found is not None:
        return TrainResult(
            model_id, found, True, json.loads((found / "manifest.json").read_text()).get("metrics", {}), 0.0
        )
    check_installed(algorithm)
    from rlaif.training.data import training_rows

    rows = training_rows(store, dataset_id, algorithm)
    device = device or pick_device()
    model_path = resolve_base(model, store)
    reward = build_reward(settings, store, device)
    _prepare_torch(settings, device)
    workdir = new_model_workdir(store, model_id)
    job = TrainJob(
        algorithm,
        model_path,
        rows,
        settings,
        workdir,
        on_metrics or (lambda m: None),
        reward,
        device,
        {"store": str(store), "dataset_id": dataset_id},
    )
    metrics, seconds = _run_in_workdir(job, store, model_id, progress)
    ctx = {
        "dataset_manifest": dataset_manifest,
        "dataset_id": dataset_id,
        "model": model,
        "model_path": model_path,
        "base_is_store_model": is_model_id(model) and find_model(store, model) is not None,
        "device": device,
        "rows": len(rows),
    }
    if _rank() != 0:  # several processes (accelerate launch, torchrun): the weights are rank 0's, and so is the commit
        from rlaif.store.models import discard_model_workdir, models_dir

        discard_model_workdir(workdir)
        _barrier()  # until rank 0 has committed
        return TrainResult(model_id, models_dir(store) / model_id, False, metrics, seconds)
    path = commit_model(
        store,
        model_id,
        workdir,
        build_manifest(ctx, settings, metrics, seconds),
        card=partial(render_model_card, store=store),
    )
    _write_report(store, model_id)
    _barrier()
    return TrainResult(model_id, path, False, metrics, seconds)


def _write_report(store: str | Path, model_id: str) -> None:
    """The HTML training report (plots of every logged metric) beside the committed model; its id
    hashes the training settings, not the folder, so a report written after the commit changes nothing."""
    from rlaif.training.report import write_training_report

    try:
        write_training_report(store, model_id)
    except Exception as exc:  # noqa: BLE001 - the model is committed: a report that cannot be written is a note, not a failed training
        log.warning("no training report for %s: %s (write it with `rlaif models report %s`)", model_id, exc, model_id)


def _rank() -> int:
    """This process's rank in a multi-process training (0 when there is only one)."""
    import torch.distributed as dist

    return dist.get_rank() if dist.is_available() and dist.is_initialized() else 0


def _barrier() -> None:
    import torch.distributed as dist

    if dist.is_available() and dist.is_initialized():
        dist.barrier()


def _prepare_torch(settings: TrainSettings, device: str) -> None:
    """Threads set deliberately on CPU, and the seed set before any weights are made (e.g. a reward head)."""
    import torch
    from transformers import set_seed

    if device == "cpu":
        torch.set_num_threads(torch_threads(settings))
    set_seed(settings.seed)
