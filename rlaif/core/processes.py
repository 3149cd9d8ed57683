"""Child processes that must not outlive their run: a free loopback port, and the kernel's parent-death signal.
And SIGTERM ending a run as Ctrl-C does (`sigterm_exits`).

Used by the run's own Prefect server (flows/server.py), the managed `vllm serve`
(rlaif/backends/vllm_server.py) and `rlaif run --no-prefect`.
"""

from __future__ import annotations

import ctypes
import os
import signal
import socket
import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager

PR_SET_PDEATHSIG = 1


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on now."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def die_with_parent(signum: int) -> Callable[[], None] | None:
    """A `preexec_fn` (Linux) asking the kernel to send the child `signum` when the thread that forked it
    ends, even by SIGKILL of the parent; a child whose parent died before that exits at once. None
    elsewhere (no such signal: callers keep their other safeguards). prctl is looked up before the fork."""
    if not sys.platform.startswith("linux"):
        return None
    prctl, parent = ctypes.CDLL(None, use_errno=True).prctl, os.getpid()

    def preexec() -> None:
        prctl(PR_SET_PDEATHSIG, int(signum), 0, 0, 0)
        if os.getppid() != parent:  # the parent died before prctl took effect
            os._exit(1)

    return preexec


def _raise_on_sigterm(signum: int, frame: object) -> None:
    raise SystemExit(128 + signum)


@contextmanager
def sigterm_exits() -> Iterator[None]:
    """In the block, SIGTERM raises SystemExit(143) in the main thread, as Ctrl-C raises KeyboardInterrupt:
    the run stops sending (rlaif.pipeline.runner.stop_on_signal), keeps what came back and exits 143."""
    previous = signal.signal(signal.SIGTERM, _raise_on_sigterm)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)
