"""Backends chosen by name from a plain dict, imported lazily (vLLM and torch only when used)."""

from __future__ import annotations

import importlib

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
