"""A run's work folder under STORE/.runs: made and locked by its run, removed at its end; folders
of runs that are gone (their lock is free) are found and removed by the next run."""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

from rlaif.store.locks import hold, locked_folder, release, try_hold
from rlaif.store.spill import remove_folder

_HELD: dict[str, int] = {}  # work folder -> fd of its lock, held for the run's life


def new_work_folder(runs: Path) -> Path:
    """A fresh work folder, locked by this process until `remove_work_folder`; abandoned ones are removed first.

    Scanning and creating happen under a lock on `runs` itself, so a folder is never seen before its owner
    holds its `lock` (see rlaif/store/locks.py): one without a lock file, or whose lock can be
    taken, belongs to a run that is gone.
    """
    runs.mkdir(parents=True, exist_ok=True)
    with locked_folder(runs):
        _remove_stale(runs)
        work = Path(tempfile.mkdtemp(prefix=f"{os.getpid()}-", dir=runs))
        _HELD[str(work)] = hold(work / "lock")
    return work


def abandoned_work_folders(runs: Path) -> list[Path]:
    """Work folders whose run is gone (hold `locked_folder(runs)` while calling and acting on the answer)."""
    gone = []
    for folder in sorted(runs.iterdir()) if runs.is_dir() else []:
        if folder.name.startswith(".") or not folder.is_dir():
            continue
        lock = folder / "lock"
        fd = try_hold(lock)
        if fd is not None:
            release(fd)
            gone.append(folder)
        elif (
            not lock.exists()
        ):  # died before locking (creation is under the lock on `runs`), or made by an older rlaif
            gone.append(folder)
    return gone


def _remove_stale(runs: Path) -> None:
    """Work folders of runs that are gone (their lock is free) are removed; live runs' are untouched."""
    for folder in abandoned_work_folders(runs):
        remove_folder(folder)


def remove_work_folder(work: Path) -> None:
    """Remove a work folder of this process, then release its lock (so no other run ever sees it half-removed and free)."""
    remove_folder(work)
    fd = _HELD.pop(str(work), None)
    if fd is not None:
        release(fd)
