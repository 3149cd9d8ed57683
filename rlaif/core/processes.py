"""Child processes that must not outlive their run: a free loopback port, and the kernel's parent-death signal.

Used by the run's own Prefect server (flows/server.py) and the managed `vllm serve`
(rlaif/backends/vllm_server.py).
"""

from __future__ import annotations

import ctypes
import os
import socket
import sys
from collections.abc import Callable

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
