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

import json
import os
import shutil
from collections.abc import Callable
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from rlaif import __version__
from rlaif.core.errors import StoreError
from rlaif.core.names import ID_RULE, is_version_id, name_problem
from rlaif.core.schema import content_hash
from rlaif.store.locks import release, remove_unlocked_tmp
from rlaif.store.versions import _fsync, _new_tmp_folder, _tmp_lock

WEIGHTS = ("model", "adapter")  # the weights folder of a full model, of a LoRA adapter
_HELD: dict[str, int] = {}  # workdir -> the fd of its lock, held by this process until commit or discard


def models_dir(store: str | Path) -> Path:
    """STORE/models."""
    return Path(store) / "models"


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


def _shown(value: object) -> str:
    text = repr(value)
    return text if len(text) <= 90 else text[:87] + "..."


def _check_id(store: str | Path, model_id: object) -> str:
    if not is_model_id(model_id):
        raise StoreError(f"{_shown(model_id)} is not a model id ({ID_RULE.replace('version', 'model')}) - `rlaif models list --store {store}` lists the models")
    return model_id  # type: ignore[return-value]


def _inside(folder: Path, path: Path) -> bool:
    """Whether `path` and its manifest.json lie directly inside `folder`, links resolved."""
    real = path.resolve()
    return real.parent == folder.resolve() and (path / "manifest.json").resolve().parent == real


def find_model(store: str | Path, model_id: str) -> Path | None:
    """The folder of a complete committed model `model_id`, or None (also for a text that is no model id)."""
    if not is_model_id(model_id):
        return None
    path = models_dir(store) / model_id
    if not (path / "manifest.json").is_file() or not _inside(models_dir(store), path):
        return None
    return path


def new_model_workdir(store: str | Path, model_id: str) -> Path:
    """An empty temporary folder `STORE/models/.tmp-<id>-XXXX/` (same file system as the models) whose
    lock this process holds until `commit_model` or `discard_model_workdir`; a trainer writes the
    weights into its `model/` or `adapter/` and `metrics.jsonl`."""
    _check_id(store, model_id)
    remove_abandoned_models(store)
    try:
        tmp, fd = _new_tmp_folder(models_dir(store), model_id)
    except OSError as exc:
        raise StoreError(f"could not make a folder in {models_dir(store)}: {exc} - check that the store folder is writable") from None
    _HELD[str(tmp)] = fd
    return tmp


def discard_model_workdir(workdir: str | Path) -> None:
    """Remove a work folder of `new_model_workdir` (a training that failed) and release its lock."""
    tmp = Path(workdir)
    shutil.rmtree(tmp, ignore_errors=True)
    _tmp_lock(tmp).unlink(missing_ok=True)
    fd = _HELD.pop(str(tmp), None)
    if fd is not None:
        release(fd)


def remove_abandoned_models(store: str | Path) -> list[str]:
    """Remove the `models/.tmp-*` folders whose owner is gone (their lock is free); returns their names."""
    folder = models_dir(store)
    if not folder.is_dir():
        return []
    return remove_unlocked_tmp(folder)


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
            raise StoreError(f"{where}: field `{key}` holds {what} - nothing was committed; keep keys out of training settings (name the variable instead)")


def _fsync_tree(folder: Path) -> None:
    for path in sorted(folder.rglob("*"), reverse=True):  # files before their folders
        if path.is_file() or path.is_dir():
            _fsync(path)
    _fsync(folder)


def commit_model(store: str | Path, model_id: str, workdir: Path, manifest: dict[str, Any], card: Callable[[dict[str, Any]], str]) -> Path:
    """Write manifest.json and the README.md card (`card` of the full manifest, e.g. rlaif.publish.model_card.render_model_card)
    into `workdir`, then rename it to STORE/models/<id>.

    When the model already exists (the same training committed first, here or by another process)
    the work folder is discarded and the existing folder returned. Returns the model's folder.
    """
    _check_id(store, model_id)
    workdir = Path(workdir)
    folder = models_dir(store)
    if workdir.resolve().parent != folder.resolve() or not workdir.name.startswith(f".tmp-{model_id}-"):
        raise StoreError(f"{workdir}: not a work folder of model {model_id} - make it with new_model_workdir(store, {model_id!r})")
    target = folder / model_id
    try:
        if find_model(store, model_id) is not None:
            discard_model_workdir(workdir)
            return target
        full = full_manifest(model_id, manifest, _weights_kind(workdir))
        check_no_secrets(full, folder / model_id / "manifest.json")
        (workdir / "manifest.json").write_text(json.dumps(full, indent=2, ensure_ascii=False, default=str) + "\n", encoding="utf-8")
        (workdir / "README.md").write_text(card(full), encoding="utf-8")
        _fsync_tree(workdir)
        os.rename(workdir, target)
        _fsync(folder)
    except OSError as exc:
        discard_model_workdir(workdir)
        if find_model(store, model_id) is not None:  # another process committed the same model first
            return target
        raise StoreError(f"could not write model {model_id} to {folder}: {exc} - check that the store folder is writable") from None
    except BaseException:
        discard_model_workdir(workdir)
        raise
    discard_model_workdir(workdir)  # only the lock is left to release
    remove_abandoned_models(store)
    return target


def damaged_model(path: Path, problem: str) -> StoreError:
    return StoreError(f"{path}: {problem} - the model is damaged: delete its folder ({path.parent}) and train it again (`rlaif train ...`)")


def _read_manifest(path: Path, model_id: str) -> dict[str, Any]:
    try:
        manifest = json.loads(path.read_text(encoding="utf-8"))
    except UnicodeDecodeError as exc:
        raise damaged_model(path, f"not UTF-8 text (byte offset {exc.start})") from None
    except json.JSONDecodeError as exc:
        raise damaged_model(path, f"not valid JSON ({exc.msg}, line {exc.lineno} column {exc.colno})") from None
    except OSError as exc:
        raise damaged_model(path, f"cannot be read ({exc.strerror or exc})") from None
    if not isinstance(manifest, dict):
        raise damaged_model(path, f"a JSON {type(manifest).__name__}, not an object")
    if manifest.get("id") != model_id:
        raise damaged_model(path, f"its `id` is {str(manifest.get('id'))[:80]!r}, not the folder's name")
    return manifest


def _known(store: str | Path) -> str:
    known = [m["id"] for m in list_models(store)]
    if not known:
        return f"{store} has no trained models yet - train one with `rlaif train dpo --dataset ID --model smollm2-135m`"
    shown = ", ".join(known[-5:]) + (f" (and {len(known) - 5} more)" if len(known) > 5 else "")
    return f"known models: {shown}; `rlaif models list --store {store}` lists them"


def model_path(store: str | Path, model_id: str) -> Path:
    """The folder of a known model; StoreError naming the id, the store and the known models otherwise."""
    try:
        _check_id(store, model_id)
    except StoreError as exc:
        raise StoreError(f"no model {_shown(model_id)} in {store}: {exc}") from None
    path = models_dir(store) / model_id
    if path.is_dir() and not (path / "manifest.json").is_file():
        raise damaged_model(path / "manifest.json", "missing")
    found = find_model(store, model_id)
    if found is None:
        if (path / "manifest.json").is_file():
            raise StoreError(f"{path}: a link out of {models_dir(store)} is not a model of this store - remove it")
        raise StoreError(f"no model {model_id!r} in {store} - {_known(store)}")
    return found


def load_model_manifest(store: str | Path, model_id: str) -> dict[str, Any]:
    """The manifest of a known model; StoreError naming the file and what to do when it is damaged."""
    return _read_manifest(model_path(store, model_id) / "manifest.json", model_id)


def list_models(store: str | Path) -> list[dict[str, Any]]:
    """Manifests of all models, oldest first; a damaged one is listed as `{"id", "broken": problem}`."""
    folder = models_dir(store)
    if not folder.is_dir():
        return []
    found = []
    for path in folder.iterdir():
        if path.name.startswith(".") or not path.is_dir():
            continue
        try:
            if not is_model_id(path.name):
                raise damaged_model(path, "the folder's name is not a model id")
            found.append(load_model_manifest(store, path.name))
        except StoreError as exc:
            found.append({"id": path.name, "broken": str(exc)})
    return sorted(found, key=lambda m: (str(m.get("created_at", "")), str(m["id"])))
