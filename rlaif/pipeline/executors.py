"""Executors of a run's steps (the order is rlaif.pipeline.runner.drive's): `InProcess` runs them in threads
of this process (the library, `rlaif run --no-prefect`); flows/pipeline.py's `PrefectSteps` runs
them as Prefect tasks."""

from __future__ import annotations

import contextvars
from collections.abc import Callable, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from typing import Any, Protocol

from rlaif.backends.base import Stopped


class Steps(Protocol):
    """Runs one step: `submit(kind, fn, args, after)` calls fn(*args) (a library step: the run, then plain
    values) once every handle in `after` is done; returns a handle whose `result()` waits for its value
    and raises the step's error. `InProcess` here; Prefect tasks in flows/pipeline.py."""

    def submit(self, kind: str, fn: Callable[..., Any], args: tuple, after: Sequence[Any] = ()) -> Any: ...

    def stop(self) -> None:
        """Ctrl-C or SIGTERM: stop the steps' work that the run's backend pool does not reach (other processes)."""

    def expect(self, steps: int) -> None:
        """How many steps the run submits in all, the first included (told once its chunks are known): a progress total."""


class InProcess:
    """The executor of the library and `rlaif run --no-prefect`: steps in threads of this process."""

    def __init__(self) -> None:
        self.threads = ThreadPoolExecutor(max_workers=32, thread_name_prefix="rlaif-step")

    def submit(self, kind: str, fn: Callable[..., Any], args: tuple, after: Sequence[Future] = ()) -> Future:
        context = contextvars.copy_context()

        def step() -> Any:
            for handle in after:
                handle.result()  # a failed dependency fails this step too
            return context.run(fn, *args)

        return self.threads.submit(step)

    def stop(self) -> None:
        """Nothing of its own: its steps call the run's backend pool, which the caller stops."""

    def expect(self, steps: int) -> None:
        """Nothing: the CLI's progress bars follow the model calls themselves (rlaif.core.progress)."""

    def close(self) -> None:
        self.threads.shutdown(wait=True)


def settle(handles: list, on_signal: Callable[[BaseException], None] | None = None) -> BaseException | None:
    """Wait for every handle; the first error among them (None when all succeeded), one that made the others
    stop (e.g. a full disk) before a step's `Stopped`.

    A Ctrl-C or SIGTERM while waiting (KeyboardInterrupt, SystemExit: not an Exception) calls `on_signal` (which
    stops the steps) and the wait goes on, so every step has ended when it returns; the signal is then the error
    returned. A second signal is raised at once."""
    errors: list[BaseException] = []
    signal: BaseException | None = None
    for handle in handles:
        while True:
            try:
                handle.result()
            except Exception as exc:  # noqa: BLE001 - collected, the first re-raised by the caller
                errors.append(exc)
            except BaseException as exc:
                if signal is not None or on_signal is None:
                    raise
                signal = exc
                on_signal(exc)
                continue  # wait for this step again: stopped, it ends within the grace period
            break
    causes = [exc for exc in errors if not isinstance(exc, Stopped)]
    return signal or (causes or errors or [None])[0]
