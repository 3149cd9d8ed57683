"""Trained models in the store: `STORE/models/<id>/`, committed atomically like dataset versions.

A model folder holds `manifest.json` (what was trained, on which dataset version, how, with what
result), `README.md` (the model card, rlaif.publish.model_card), `metrics.jsonl` (one object per
logged step) and the weights: `model/` (a full model + tokenizer) or `adapter/` (a peft LoRA
adapter + tokenizer). The id is `<name>-<12 hex>` (rlaif.core.names), the hex a hash of what decides the
training (dataset id, algorithm, base model, settings, reward: `model_id_for`), so a re-run with the
same settings finds the model instead of training again.

A trainer writes into `new_model_workdir(store, id)` (a `.tmp-*` folder inside STORE/models whose
lock this process holds), then `commit_model` adds the manifest and card, fsyncs and renames the
folder into place in one step: a half-written model is never listed, a concurrent commit of the
same id keeps one, and the folder of a trainer that died is removed by the next commit
(`remove_abandoned_models`). `weights_path` gives what a backend loads; an adapter is merged into
its base once, into a cache folder, under a file lock.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from rlaif import __version__
from rlaif.core.errors import StoreError
from rlaif.core.names import is_version_id, name_problem
from rlaif.core.schema import content_hash
from rlaif.store import artifacts
from rlaif.store.locks import hold, release, try_hold

WEIGHTS = ("model", "adapter")  # the weights folder of a full model, of a LoRA adapter
MODELS = artifacts.ArtifactKind(
    subfolder="models",
    noun="model",
    remake="train it again (`rlaif train ...`)",
    list_command="rlaif models list",
    empty="{store} has no trained models yet - train one with `rlaif train dpo --dataset ID --model smollm2-135m`",
    broken_in_full=True,  # `rlaif models list` shows the whole message (file and fix) in its table
)


def models_dir(store: str | Path) -> Path:
    """STORE/models."""
    return MODELS.folder(store)


def is_model_id(text: object) -> bool:
    """Whether `text` has the form of a model id, `<name>-<12 hex>` (the rule of version ids)."""
    return is_version_id(text)


def model_id_for(name: str, key: dict[str, Any]) -> str:
    """`<name>-<12 hex of key>`; StoreError when `name` is not a safe name.

    >>> model_id_for("dpo-demo", {"dataset": "demo-0123456789ab"}) == model_id_for("dpo-demo", {"dataset": "demo-0123456789ab"})
    True
    """
    problem = name_problem(name)
    if problem:
        raise StoreError(f"model name {problem}")
    return f"{name}-{content_hash(key, 12)}"


def find_model(store: str | Path, model_id: str) -> Path | None:
    """The folder of a complete committed model `model_id`, or None (also for a text that is no model id)."""
    return artifacts.find(MODELS, store, model_id)


def training_lock_path(store: str | Path, model_id: str) -> Path:
    """The lock file a training of `model_id` holds while it trains and commits (`.train-<id>.lock`, hidden)."""
    return models_dir(store) / f".train-{model_id}.lock"


@contextmanager
def training_lock(store: str | Path, model_id: str, on_wait: Callable[[], None] | None = None) -> Iterator[None]:
    """Hold the lock of `model_id`'s training for the block: an identical training started at the same time
    waits here (`on_wait` is called once when it has to), then finds the model committed and reuses it. The
    kernel drops the lock when its holder ends in any way (rlaif.store.locks)."""
    path = training_lock_path(store, model_id)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd = try_hold(path) if path.exists() else None
    if fd is None:
        if path.exists() and on_wait is not None:
            on_wait()
        fd = hold(path)
    try:
        yield
    finally:
        release(fd)


def new_model_workdir(store: str | Path, model_id: str) -> Path:
    """An empty temporary folder `STORE/models/.tmp-<id>-XXXX/` (same file system as the models) whose
    lock this process holds until `commit_model` or `discard_model_workdir`; a trainer writes the
    weights into its `model/` or `adapter/` and `metrics.jsonl`."""
    artifacts.check_id(MODELS, store, model_id)
    return artifacts.new_workdir(MODELS, store, model_id)


def discard_model_workdir(workdir: str | Path) -> None:
    """Remove a work folder of `new_model_workdir` (a training that failed) and release its lock."""
    artifacts.discard_workdir(workdir)


def remove_abandoned_models(store: str | Path) -> list[str]:
    """Remove the `models/.tmp-*` folders whose owner is gone (their lock is free); returns their names."""
    return artifacts.remove_abandoned(MODELS, store)


def _weights_kind(workdir: Path) -> str:
    if (workdir / "model" / "config.json").is_file():
        return "model"
    if (workdir / "adapter" / "adapter_config.json").is_file():
        return "adapter"
    raise StoreError(
        f"{workdir}: no weights to commit - save the full model with save_pretrained into {workdir / 'model'} "
        f"(config.json + weights) or a peft adapter into {workdir / 'adapter'} (adapter_config.json)"
    )


def full_manifest(model_id: str, manifest: dict[str, Any], weights: str) -> dict[str, Any]:
    """The manifest as committed: id, name, kind, created_at, weights and package_version around the trainer's fields."""
    return {
        "id": model_id,
        "name": model_id.rsplit("-", 1)[0],
        "kind": "model",
        "created_at": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        "package_version": __version__,
        "parents": [],
        **{k: v for k, v in manifest.items() if k not in ("id", "name", "kind")},
        "lora": weights == "adapter" if manifest.get("lora") is None else bool(manifest.get("lora")),
        "weights": weights,
    }


def check_no_secrets(manifest: dict[str, Any], where: Path) -> None:
    """StoreError naming the field when a manifest value holds a known secret (a Hub token's value) or a key-like string."""
    from rlaif.core.secrets import MIN_SCAN, TOKEN_VARIABLES, environment_secrets, match_secret
    from rlaif.store.diff import flatten

    known = [s for s in environment_secrets(TOKEN_VARIABLES) if len(s) >= MIN_SCAN]
    for key, value in flatten(manifest, lists="json").items():
        what = match_secret(str(value), known)
        if what:
            raise StoreError(
                f"{where}: field `{key}` holds {what} - nothing was committed; keep keys out of training settings (name the variable instead)"
            )


def commit_model(
    store: str | Path, model_id: str, workdir: Path, manifest: dict[str, Any], card: Callable[[dict[str, Any]], str]
) -> Path:
    """Write manifest.json and the README.md card (`card` of the full manifest, e.g. rlaif.publish.model_card.render_model_card)
    into `workdir`, then rename it to STORE/models/<id> (rlaif.store.artifacts.commit).

    When the model already exists (the same training committed first, here or by another process)
    the work folder is discarded and the existing folder returned. Returns the model's folder.
    """
    artifacts.check_id(MODELS, store, model_id)
    workdir = Path(workdir)
    folder = models_dir(store)
    if workdir.resolve().parent != folder.resolve() or not workdir.name.startswith(f".tmp-{model_id}-"):
        raise StoreError(
            f"{workdir}: not a work folder of model {model_id} - make it with new_model_workdir(store, {model_id!r})"
        )

    def write(work: Path) -> None:
        trainer = work / "trainer"  # TRL's output_dir: empty unless it saved checkpoints
        if trainer.is_dir() and not any(trainer.iterdir()):
            trainer.rmdir()
        full = full_manifest(model_id, manifest, _weights_kind(work))
        check_no_secrets(full, folder / model_id / "manifest.json")
        artifacts.write_manifest(work, full)
        (work / "README.md").write_text(card(full), encoding="utf-8")

    return artifacts.commit(MODELS, store, model_id, workdir, write)[0]


def damaged_model(path: Path, problem: str) -> StoreError:
    """The error of a damaged model: `path` (a file or folder in the model's folder) and what is wrong."""
    return artifacts.damaged(MODELS, path, problem)


def model_path(store: str | Path, model_id: str) -> Path:
    """The folder of a known model; StoreError naming the id, the store and the known models otherwise."""
    return artifacts.artifact_path(MODELS, store, model_id)


def load_model_manifest(store: str | Path, model_id: str) -> dict[str, Any]:
    """The manifest of a known model; StoreError naming the file and what to do when it is damaged."""
    return artifacts.load_manifest(MODELS, store, model_id)


def list_models(store: str | Path) -> list[dict[str, Any]]:
    """Manifests of all models, oldest first; a damaged one is listed as `{"id", "broken": problem}`."""
    return artifacts.list_manifests(MODELS, store)
