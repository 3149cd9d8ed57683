"""The one small contract every backend follows.

A backend is an object with explicit `load()` / `close()` and two batch methods. Each method
takes all pending requests at once (so the engine can schedule them) and reports every result
through `on_result(index, result)` as soon as it is ready; a result is either the value or the
exception that ended that request. Nothing is returned in bulk, so a caller can cache each
result the moment it arrives.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from dataclasses import dataclass
from typing import Union

from rlaif.core.errors import BackendError, RlaifError
from rlaif.core.schema import Message


@dataclass(frozen=True)
class GenerateRequest:
    messages: tuple[tuple[str, str], ...]  # ((role, content), ...), hashable
    temperature: float
    top_p: float
    max_tokens: int
    seed: int
    sample_index: int = 0  # part of the cache key: sample i of a prompt is its own call

    @staticmethod
    def pack(messages: list[Message]) -> tuple[tuple[str, str], ...]:
        return tuple((m["role"], m["content"]) for m in messages)

    def chat(self) -> list[Message]:
        return [{"role": role, "content": content} for role, content in self.messages]


@dataclass(frozen=True)
class ScoreRequest:
    """Ask for the judge's verdict: which of `options` comes next after the assistant `prefix`."""

    messages: tuple[tuple[str, str], ...]
    prefix: str  # the assistant turn starts with this (e.g. "Output (")
    options: tuple[str, ...]  # verdict tokens (e.g. ("a", "b"))
    max_tokens: int = 8  # budget for a written answer when probabilities are not available
    want_probs: bool = True

    def chat(self) -> list[Message]:
        return [{"role": role, "content": content} for role, content in self.messages]


@dataclass
class Completion:
    text: str
    finish_reason: str
    prompt_tokens: int = 0
    completion_tokens: int = 0
    latency_s: float = 0.0


@dataclass
class Scores:
    """Verdict-token probabilities (None when the backend gave none) and any written answer."""

    probs: dict[str, float] | None
    text: str
    prompt_tokens: int = 0
    completion_tokens: int = 0
    latency_s: float = 0.0


class Stopped(RlaifError):
    """Not sent: the run is stopping (Ctrl-C or SIGTERM; `Backend.stop`). A step ends with it as a value (a
    Prefect task returns it: no traceback); the command ends with the signal's own exit code."""

    exit_code = 130


GenerateCallback = Callable[[int, Union[Completion, Exception]], None]
ScoreCallback = Callable[[int, Union[Scores, Exception]], None]


class Backend:
    """Base class of the engines; subclasses fill in the four methods."""

    name = "base"
    #: The ModelSpec fields this engine reads besides `backend` and `model`; a recipe that sets
    #: another one for it is an error naming the field (rlaif.config.recipe.ModelSpec).
    options: tuple[str, ...] | frozenset[str] = ()
    #: The packages this engine imports when it loads (checked before a run: rlaif.pipeline.preflight).
    requires: tuple[str, ...] = ()

    @classmethod
    def check_installed(cls, spec) -> None:
        """Before a run (rlaif.pipeline.preflight): BackendError saying what to install when this engine cannot load here."""
        import importlib.util

        missing = [name for name in cls.requires if importlib.util.find_spec(name) is None]
        if missing:
            raise BackendError(
                f"needs {', '.join(missing)}, which is not installed here - pip install {' '.join(missing)}"
            )

    @classmethod
    def is_transient(cls, exc: BaseException) -> bool:
        """Whether a failed call of this engine is worth another pass (rlaif.calls.engine); a local engine's failures are not."""
        return False

    @classmethod
    def retry_after(cls, exc: BaseException) -> float | None:
        """Seconds a failed call's server asked to wait before the next try (Retry-After), or None."""
        return None

    @classmethod
    def identity(cls, spec) -> dict:
        """What about this engine determines its answers: part of every cache key (never the API key).

        Changing it changes every key, so the request cache of earlier runs would no longer be found.
        """
        from rlaif.weights.builtin import weights_identity

        # a built-in alias downloaded from its upstream repository (make judges FROM=hub) adds which commit
        return {"backend": spec.backend, "model": spec.model, "dtype": spec.dtype, **weights_identity(spec.model)}

    def __init__(self, spec) -> None:  # spec: rlaif.config.recipe.ModelSpec
        self.spec = spec
        self.loaded = False
        self.kept = False  # kept loaded after a `with` block (rlaif.backends.one_loaded_backend)
        self.stop_event = threading.Event()  # set by stop(): requests not yet started end as `Stopped`

    @property
    def stopping(self) -> bool:
        return self.stop_event.is_set()

    def stop(self) -> None:
        """Ctrl-C or SIGTERM (from another thread): start no further request; the calls of this batch not yet
        begun end as `Stopped` values, and a wait between passes ends (rlaif.calls.engine.pause)."""
        self.stop_event.set()

    def ensure_loaded(self) -> None:
        """Load on first use, so a fully cached run never loads a model."""
        if not self.loaded:
            self.load()
            self.loaded = True

    @property
    def model_name(self) -> str:
        return self.spec.model

    def load(self) -> None:
        """Acquire the model or client; called once before any request."""

    def close(self) -> None:
        """Release memory, threads and connections."""

    def generate(self, requests: list[GenerateRequest], on_result: GenerateCallback) -> None:
        raise NotImplementedError

    def score(self, requests: list[ScoreRequest], on_result: ScoreCallback) -> None:
        raise NotImplementedError

    def __enter__(self) -> Backend:
        return self

    def __exit__(self, *exc) -> None:
        if self.loaded and not self.kept:
            self.close()
            self.loaded = False
