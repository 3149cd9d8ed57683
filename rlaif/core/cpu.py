"""torch's CPU threads where a recipe (a transformers model) or a training config leaves `threads` unset."""

from __future__ import annotations

import os


def default_threads() -> int:
    """Half the cores this process may use, at least 1. torch's own default (every core) collapses when another
    job shares the machine: on 2 cores with one of them busy, the demo's first 6 prompts took 115 s with 2 threads
    and 61 s with 1; idle, 42 s and 63 s (benchmarks/cpu_threads.py, docs/benchmarks.md)."""
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 2)
    return max(1, cores // 2)
