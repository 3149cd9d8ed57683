"""Locks that last exactly as long as the process that holds them (`fcntl.flock`).

A run's work folder (`STORE/.runs/<name>/lock`) and a commit's temporary folder
(`STORE/versions/.tmp-*.lock`) each have a lock file that its owner holds, with an exclusive
flock on an open file descriptor, for as long as it uses the folder. The kernel drops the lock
when the process ends in any way (exit, exception, SIGTERM, SIGKILL), so "I could take the
lock" proves "the owner is gone" - no pid guess, no clock. Folders are created and scanned under
a short-lived creation lock (a flock on the parent folder itself), so a folder is never seen between
its creation and the moment its owner locks it.

Locks are advisory, per open file description: two opens in one process exclude each other
too. They need a local file system (flock over NFS is not reliable).

Why not `filelock` (which rlaif.weights.builtin uses for the model cache, where the question is only
"wait for whoever converts"): these locks answer "is the owner of this folder still alive?"
about other processes' files, with a non-blocking try that must not create, delete or keep
anything (`try_hold`, `is_held`), a lock on a folder itself (the creation lock) and a descriptor handed back
to the caller; `filelock.FileLock` is reentrant within a process (a second lock of the same
path in one process succeeds, so it cannot tell a live owner here from a dead one), may delete
its lock file on release, and locks only files it creates.
"""

from __future__ import annotations

import fcntl
import os
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path


def hold(path: str | Path) -> int:
    """Create `path` if needed and take its exclusive lock, waiting for it; returns the fd (close it to release)."""
    fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o644)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
    except BaseException:
        os.close(fd)
        raise
    return fd


def try_hold(path: str | Path) -> int | None:
    """The lock of an existing lock file if nobody holds it (its owner is gone), else None; never waits."""
    try:
        fd = os.open(path, os.O_RDWR | os.O_CLOEXEC)
    except FileNotFoundError:
        return None
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        os.close(fd)
        return None
    return fd


def is_held(path: str | Path) -> bool:
    """True while some process holds the lock of `path`."""
    fd = try_hold(path)
    if fd is None:
        return Path(path).exists()
    os.close(fd)
    return False


def release(fd: int) -> None:
    try:
        os.close(fd)
    except OSError:
        pass


@contextmanager
def locked_folder(folder: str | Path) -> Iterator[None]:
    """Hold the exclusive lock of the folder itself for the block (a creation lock: keep the block short).

    The lock is on the folder's own descriptor, so no lock file is left in it.
    """
    fd = os.open(folder, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        yield
    finally:
        release(fd)


def remove_unlocked_tmp(folder: Path) -> list[str]:
    """Under the folder's lock, remove each `.tmp-*` folder whose `.lock` file no process holds (its
    commit died), with its lock file; returns their names. A held lock (a commit under way) is left."""
    import shutil

    removed = []
    with locked_folder(folder):
        for lock in sorted(Path(folder).glob(".tmp-*.lock")):
            fd = try_hold(lock)
            if fd is None:
                continue
            tmp = lock.with_name(lock.name[: -len(".lock")])
            shutil.rmtree(tmp, ignore_errors=True)
            lock.unlink(missing_ok=True)
            release(fd)
            removed.append(tmp.name)
    return removed
