"""Progress of long work on stderr: a rich bar on a terminal, plain lines elsewhere (a file, CI, nohup, a
Prefect worker: at every tenth of the work and at least every PLAIN_EVERY_S seconds); quiet when
RLAIF_PROGRESS=0."""

from __future__ import annotations

import os
import sys
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager

PLAIN_EVERY_S = 30.0  # without a terminal: a line at least this often while work goes on

#: the progress bars of the Hugging Face libraries (transformers' "Loading weights", datasets' maps, the Hub's
#: transfers), off when stderr is not a terminal: in a file they are lines of carriage returns
LIBRARY_BARS_OFF = {
    "HF_HUB_DISABLE_PROGRESS_BARS": "1",
    "HF_DATASETS_DISABLE_PROGRESS_BARS": "1",
    "TQDM_DISABLE": "1",  # plain tqdm bars (transformers converting a GGUF): one long carriage-return line in a file
}


def quiet_library_bars() -> None:
    """Turn the libraries' own bars off where output is not a terminal (a user's setting of them is kept). Call
    before transformers, datasets or huggingface_hub is imported: they read these once."""
    if not sys.stderr.isatty():
        for name, value in LIBRARY_BARS_OFF.items():
            os.environ.setdefault(name, value)


@contextmanager
def progress_bar(description: str, total: int) -> Iterator[Callable[[int], None]]:
    """Yield `advance(n)`; shows progress on stderr unless RLAIF_PROGRESS=0."""
    if os.environ.get("RLAIF_PROGRESS", "1") == "0" or total == 0:
        yield lambda n=1: None
        return
    from rich.console import Console  # here, not at import: `rlaif --help` imports this module
    from rich.progress import (
        BarColumn,
        MofNCompleteColumn,
        Progress,
        TextColumn,
        TimeElapsedColumn,
        TimeRemainingColumn,
    )

    console = Console(stderr=True)
    if not console.is_terminal:
        with plain_progress(description, total) as advance:
            yield advance
        return
    columns = (
        TextColumn("{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        TimeRemainingColumn(),
    )
    with Progress(*columns, console=console, transient=False) as progress:
        task = progress.add_task(description, total=total)
        yield lambda n=1: progress.advance(task, n)


@contextmanager
def plain_progress(
    description: str, total: int, write: Callable[[str], None] | None = None
) -> Iterator[Callable[[int], None]]:
    """Progress as lines ("sampling: 40/400 (10%), 12 s"): at each tenth of `total`, at least every PLAIN_EVERY_S
    seconds while it advances, and at the end. `write` (default: stderr) takes each line.

    >>> lines = []
    >>> with plain_progress("judging", 20, lines.append) as advance:
    ...     for _ in range(20):
    ...         advance(1)
    >>> [line.split(",")[0] for line in lines][:3], len(lines)
    (['judging: 2/20 (10%)', 'judging: 4/20 (20%)', 'judging: 6/20 (30%)'], 10)
    """
    write = write or (lambda line: print(line, file=sys.stderr, flush=True))
    started, lock = time.monotonic(), threading.Lock()
    state = {"done": 0, "tenth": 0, "said": started}

    def say(done: int) -> None:
        write(f"{description}: {done}/{total} ({100 * done // total}%), {time.monotonic() - started:.0f} s")
        state["said"] = time.monotonic()

    def advance(n: int = 1) -> None:
        with lock:
            state["done"] = min(total, state["done"] + n)
            tenth = 10 * state["done"] // total
            if tenth > state["tenth"] or time.monotonic() - state["said"] >= PLAIN_EVERY_S:
                state["tenth"] = tenth
                say(state["done"])

    yield advance
    with lock:
        if state["tenth"] < 10:  # the end, when the last advance did not say it
            say(state["done"])
