"""What a model name in a recipe loads: a built-in alias (converted once, rlaif.weights.builtin), a trained model
of the store (its weights, or its LoRA adapter merged once into its base), a local folder or a model in
the Hugging Face cache. Weights are never downloaded at run time."""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import tempfile
from pathlib import Path

from filelock import FileLock

from rlaif.config.settings import store_path
from rlaif.core.errors import BackendError, StoreError
from rlaif.core.names import is_version_id
from rlaif.store.atomic import shareable
from rlaif.store.models import damaged_model, find_model, load_model_manifest, model_path, models_dir
from rlaif.weights.builtin import (
    BUILTIN_MODELS,
    cache_root,
    check_source,
    convert_builtin,
    is_builtin,
    is_converted,
    model_dir,
)


def resolve_model(name: str, store: str | Path | None = None) -> str:
    """Return a loadable model path or id for ``name``.

    A built-in alias (see ``BUILTIN_MODELS``) becomes its converted cache folder, converting
    it on first use; a trained model id of the store (``<name>-<12 hex>`` in STORE/models; the
    default store when ``store`` is None) becomes its weights folder (a LoRA adapter merged into
    its base once); any other name (a local path or a Hub id) is returned unchanged.
    """
    if is_builtin(name):
        return str(convert_builtin(name))
    if _is_store_model(name, store):
        return weights_path(_the_store(store), name)
    return name


def _the_store(store: str | Path | None) -> Path:

    return store_path(None, store)


def _is_store_model(name: str, store: str | Path | None) -> bool:
    """Whether ``name`` is a trained model of the store; BackendError when it has the form of a
    model id but is neither in the store nor a local model folder."""
    if not is_version_id(name):
        return False

    where = _the_store(store)
    if find_model(where, name) is not None:
        return True
    if (Path(name) / "config.json").is_file():
        return False
    raise BackendError(
        f"model '{name}' is not a trained model of the store {where} (no {models_dir(where) / name}) - "
        f"`rlaif models list --store {where}` lists the trained models; run with the store that holds it (--store DIR or $RLAIF_STORE), "
        "or train it with `rlaif train`"
    )


def check_local_model(name: str, store: str | Path | None = None) -> None:
    """Raise BackendError unless ``name`` loads without the network: a built-in alias (its
    package installed), a trained model id of the store, a local model folder (with config.json),
    or a model already in the local Hugging Face cache. Weights are never downloaded at run time."""
    if is_builtin(name):
        if not is_converted(model_dir(name)):
            check_source(BUILTIN_MODELS[name])
        return
    if _is_store_model(name, store):
        _check_store_weights(name, store)
        return
    path = Path(name).expanduser()
    if path.is_dir() and (path / "config.json").is_file():
        return
    if not path.exists() and _in_hub_cache(name):
        return
    what = (
        f"'{name}' is a folder without config.json"
        if path.is_dir()
        else f"'{name}' is not a built-in alias, a trained model of the store, a local model folder or a model in the Hugging Face cache"
    )
    raise BackendError(
        f"model {what} - built-in aliases: {', '.join(BUILTIN_MODELS)}; trained models: `rlaif models list`; weights are not downloaded at run time: "
        "use an alias, a model id of the store, a folder holding config.json and the weights, or download the model first (hf download ORG/NAME)"
    )


def _check_store_weights(name: str, store: str | Path | None) -> None:
    """A store model's manifest is readable and its weights (or adapter and base) are there."""
    where = _the_store(store)
    try:
        manifest = load_model_manifest(where, name)
    except StoreError as exc:
        raise BackendError(str(exc)) from None
    folder = model_path(where, name)
    if (folder / "model" / "config.json").is_file():
        return
    if not (folder / "adapter" / "adapter_config.json").is_file():
        raise BackendError(
            f"{folder}: no model/config.json and no adapter/adapter_config.json - the model is damaged: delete the folder and train it again"
        )
    base = manifest.get("base_model") or manifest.get("base_model_path")
    if not base:
        raise BackendError(
            f"{folder / 'manifest.json'}: a LoRA adapter without `base_model` - the model is damaged: delete the folder and train it again"
        )
    check_local_model(str(base), where)


def _in_hub_cache(name: str) -> bool:
    """Whether a Hub id (ORG/NAME) has its config.json in the local Hugging Face cache."""
    if name.count("/") != 1 or name.startswith((".", "/", "~")):
        return False
    try:
        from huggingface_hub import try_to_load_from_cache
    except ImportError:
        return False
    try:
        found = try_to_load_from_cache(name, "config.json")
    except Exception:  # noqa: BLE001 - an invalid repo id is simply not cached
        return False
    return isinstance(found, str)


def weights_path(store: str | Path, model_id: str) -> str:
    """A loadable full-model folder of `model_id`: its `model/`, or its adapter merged once into its base
    (in the rlaif cache: `merged/<id>-<adapter hash>`)."""
    folder = model_path(store, model_id)
    if (folder / "model" / "config.json").is_file():
        return str(folder / "model")
    if (folder / "adapter" / "adapter_config.json").is_file():
        return str(merged_adapter(store, model_id, folder / "adapter"))
    raise damaged_model(folder / "model", "missing (no model/config.json and no adapter/adapter_config.json)")


def _adapter_digest(adapter: Path) -> str:
    digest = hashlib.sha256()
    for path in sorted(adapter.iterdir()):
        if path.is_file():
            digest.update(path.name.encode() + b"\0")
            with path.open("rb") as handle:
                for block in iter(lambda: handle.read(1 << 20), b""):
                    digest.update(block)
    return digest.hexdigest()[:12]


def merged_adapter(store: str | Path, model_id: str, adapter: Path) -> Path:
    """The adapter merged into its base model, saved once in the cache; later calls reuse the folder."""
    final = cache_root() / "merged" / f"{model_id}-{_adapter_digest(adapter)}"
    done = final / ".rlaif-merged"
    if done.is_file():
        return final
    final.parent.mkdir(parents=True, exist_ok=True)
    with FileLock(final.parent / f".{final.name}.lock"):
        if done.is_file():
            return final
        for stale in final.parent.glob(f".tmp-{final.name}-*"):
            shutil.rmtree(stale, ignore_errors=True)
        temp = shareable(tempfile.mkdtemp(prefix=f".tmp-{final.name}-", dir=final.parent))  # the umask's, not 0700
        try:
            _merge(store, model_id, adapter, temp)
            if final.exists():
                shutil.rmtree(final)
            os.replace(temp, final)
        finally:
            shutil.rmtree(temp, ignore_errors=True)
    return final


def _merge(store: str | Path, model_id: str, adapter: Path, out: Path) -> None:
    """Load the base named in the model's manifest, apply the adapter, merge, save model + tokenizer to `out`."""
    import torch
    from peft import PeftModel
    from transformers import AutoModelForCausalLM, AutoModelForSequenceClassification, AutoTokenizer

    manifest = load_model_manifest(store, model_id)
    base_name = manifest.get("base_model") or manifest.get("base_model_path")
    if not base_name:
        raise damaged_model(
            models_dir(store) / model_id / "manifest.json", "no `base_model` to merge the adapter into"
        )
    base = resolve_model(str(base_name), store)
    config = json.loads((adapter / "adapter_config.json").read_text(encoding="utf-8"))
    tokenizer = AutoTokenizer.from_pretrained(str(adapter if (adapter / "tokenizer_config.json").is_file() else base))
    if config.get("task_type") == "SEQ_CLS":
        model = AutoModelForSequenceClassification.from_pretrained(base, num_labels=1, dtype=torch.float32)
        model.config.pad_token_id = (
            tokenizer.pad_token_id if tokenizer.pad_token_id is not None else tokenizer.eos_token_id
        )
    else:
        model = AutoModelForCausalLM.from_pretrained(base, dtype=torch.float32)
    merged = PeftModel.from_pretrained(model, str(adapter)).merge_and_unload()
    merged.save_pretrained(str(out), safe_serialization=True)
    tokenizer.save_pretrained(str(out))
    (out / ".rlaif-merged").write_text(f"{model_id}: {adapter} merged into {base}\n", encoding="utf-8")
