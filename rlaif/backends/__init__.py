"""Backends chosen by name from the table in rlaif.config.engines, imported lazily (vLLM and torch only when used)."""

from __future__ import annotations

import contextlib
import contextvars
import importlib
import json
import threading
from collections.abc import Callable, Iterator

from rlaif.backends.base import Backend
from rlaif.config.engines import API_BACKENDS, BACKENDS
from rlaif.config.recipe import ModelSpec
from rlaif.core.errors import BackendError

__all__ = [
    "API_BACKENDS",
    "BACKENDS",
    "Backend",
    "BackendPool",
    "backend_class",
    "engine_key",
    "make_backend",
    "opened",
    "pooled",
    "using",
]


def backend_class(name: str) -> type[Backend]:
    """The class of a backend name, imported on first use (no engine is loaded)."""
    if name not in BACKENDS:
        raise BackendError(f"unknown backend {name!r} - use one of: {', '.join(BACKENDS)}")
    module_name, class_name = BACKENDS[name].split(":")
    return getattr(importlib.import_module(module_name), class_name)


def make_backend(spec) -> Backend:
    """Build (not load) the backend a ModelSpec names (vllm: in this process, or a managed server where vLLM does not import)."""
    if spec.backend == "vllm":
        from rlaif.backends.vllm_backend import vllm_backend

        return vllm_backend(spec)
    return backend_class(spec.backend)(spec)


def engine_key(spec) -> str:
    """What decides how a backend loads (the ModelSpec fields; not a policy's name or sampling params)."""
    return json.dumps(spec.model_dump(mode="json", include=set(ModelSpec.model_fields)), sort_keys=True)


class BackendPool:
    """The backends one run has loaded (owned by `rlaif.pipeline.run.Run`, closed with it).

    A backend stays loaded after use and is reused by the next use with the same engine settings
    (e.g. one policy over every chunk of a run, or a judge on the policy's own model). A local
    engine (transformers, vllm) is loaded alone: using another closes every other local one first,
    so at most one model is in memory at a time. API backends hold no model and stay side by side,
    so steps on them can run together; they share one request limit per endpoint (`endpoints`).
    """

    def __init__(self, store=None) -> None:
        self.store = store  # the run's store: a backend resolves a trained model id (`model: <id>`) in it
        if (
            store is not None
        ):  # `vllm serve` processes of runs on this store that were killed (rlaif.backends.vllm_server)
            from rlaif.backends.vllm_server import reap_leftover_servers

            reap_leftover_servers(store)
        self._held: dict[str, Backend] = {}
        self._lock = threading.Lock()
        self.endpoints = None  # rlaif.backends.openai_compat.Endpoints, made on first use
        self.stopping = False  # stop() was called: a backend made now starts stopped

    def get(self, factory: Callable[[object], Backend], spec) -> Backend:
        key = engine_key(spec)
        with self._lock:
            if key not in self._held:
                if spec.backend not in API_BACKENDS:
                    for other in [k for k, b in self._held.items() if b.spec.backend not in API_BACKENDS]:
                        _release(self._held.pop(other))
                backend = factory(spec)
                backend.kept = True
                backend.store = self.store
                if hasattr(backend, "share"):  # API backends: one limit per endpoint, one event loop
                    backend.share(self._endpoints())
                if self.stopping:
                    backend.stop()
                self._held[key] = backend
            return self._held[key]

    def _endpoints(self):
        if self.endpoints is None:
            from rlaif.backends.openai_compat import Endpoints

            self.endpoints = Endpoints()
        return self.endpoints

    def stop(self) -> None:
        """Ctrl-C or SIGTERM: no backend starts a further request; API requests in flight get a short grace
        (rlaif.backends.openai_compat.STOP_GRACE_S) and are then cancelled. The steps then end with `Stopped` values."""
        with self._lock:
            self.stopping, held = True, list(self._held.values())
        for backend in held:
            backend.stop()
        if self.endpoints is not None:
            self.endpoints.stop()

    def close(self) -> None:
        with self._lock:
            held, self._held = list(self._held.values()), {}
        for backend in held:
            _release(backend)
        if self.endpoints is not None:
            self.endpoints.close()
            self.endpoints = None


_ACTIVE: contextvars.ContextVar[BackendPool | None] = contextvars.ContextVar("rlaif_backend_pool", default=None)


@contextlib.contextmanager
def using(pool: BackendPool | None) -> Iterator[None]:
    """Backends opened inside this block (in this thread or task) come from `pool` (a run's step)."""
    token = _ACTIVE.set(pool)
    try:
        yield
    finally:
        _ACTIVE.reset(token)


@contextlib.contextmanager
def pooled(store) -> Iterator[BackendPool]:
    """The pool of the current step (see `using`), else a new pool on `store` for the block (closed at its end):
    how code outside a run (eval-judge, a reward from a judge, eval-policy) lets `model: <trained model id>` resolve in its store."""
    pool = _ACTIVE.get()
    if pool is not None:
        yield pool
        return
    pool = BackendPool(store)
    try:
        with using(pool):
            yield pool
    finally:
        pool.close()


@contextlib.contextmanager
def opened(factory: Callable[[object], Backend], spec, pool: BackendPool | None = None) -> Iterator[Backend]:
    """The backend `pool` (else the pool of the current step, see `using`) keeps for these settings;
    without a pool, `with factory(spec) as backend`."""
    pool = pool or _ACTIVE.get()
    if pool is None:
        with factory(spec) as backend:
            yield backend
        return
    yield pool.get(factory, spec)


def _release(backend: Backend | None) -> None:
    """Close a kept backend (its `with` exit, no longer skipped)."""
    if backend is not None:
        backend.kept = False
        backend.__exit__(None, None, None)
