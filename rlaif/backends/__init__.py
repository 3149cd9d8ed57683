"""Backends chosen by name from a plain dict, imported lazily (vLLM and torch only when used)."""

from __future__ import annotations

import contextlib
import importlib
import json
from collections.abc import Callable, Iterator

from rlaif.backends.base import Backend
from rlaif.errors import BackendError

BACKENDS: dict[str, str] = {
    "transformers": "rlaif.backends.transformers_backend:TransformersBackend",
    "openai": "rlaif.backends.openai_compat:OpenAIBackend",
    "vllm": "rlaif.backends.vllm_backend:VLLMBackend",
}


def make_backend(spec) -> Backend:
    """Build (not load) the backend a ModelSpec names."""
    if spec.backend not in BACKENDS:
        raise BackendError(f"unknown backend {spec.backend!r} - use one of: {', '.join(BACKENDS)}")
    module_name, class_name = BACKENDS[spec.backend].split(":")
    return getattr(importlib.import_module(module_name), class_name)(spec)


#: The backend kept loaded between uses inside `one_loaded_backend()`: [key, backend] or None outside it.
_slot: list | None = None


def engine_key(spec) -> str:
    """What decides how a backend loads (the ModelSpec fields; not a policy's name or sampling params)."""
    from rlaif.recipe import ModelSpec

    return json.dumps(spec.model_dump(mode="json", include=set(ModelSpec.model_fields)), sort_keys=True)


@contextlib.contextmanager
def one_loaded_backend() -> Iterator[None]:
    """Inside this block a backend stays loaded after use and is reused by the next use with the
    same engine settings (e.g. one policy over every chunk of a run, or a judge on the policy's
    own model); a use with other settings closes it first, so at most one model is loaded at a time.
    """
    global _slot
    outer, _slot = _slot, [None, None]
    try:
        yield
    finally:
        held, _slot = _slot[1], outer
        _release(held)


@contextlib.contextmanager
def opened(factory: Callable[[object], Backend], spec) -> Iterator[Backend]:
    """`with factory(spec) as backend`, or the backend kept by `one_loaded_backend()` for these settings."""
    if _slot is None:
        with factory(spec) as backend:
            yield backend
        return
    key = engine_key(spec)
    if _slot[0] != key:
        _release(_slot[1])
        _slot[0], _slot[1] = key, factory(spec)
        _slot[1].kept = True
    yield _slot[1]


def _release(backend: Backend | None) -> None:
    """Close a kept backend (its `with` exit, no longer skipped)."""
    if backend is not None:
        backend.kept = False
        backend.__exit__(None, None, None)
