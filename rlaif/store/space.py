"""A full disk as a StoreError that says what was being written, where, and the space there.

SQLite says "database or disk is full", the OS says ENOSPC (or EDQUOT over a quota), Arrow says
"No space left on device" in an OSError without an errno: `out_of_space` knows each. The message
says what to do: free space (or use another store) and run the same command again, which resumes
from the request cache (a full disk never half-commits a version: rlaif/store/artifacts.py).
"""

from __future__ import annotations

import errno
import shutil
import sqlite3
from pathlib import Path

from rlaif.core.errors import StoreError

NO_SPACE = (errno.ENOSPC, errno.EDQUOT)


def out_of_space(exc: BaseException) -> bool:
    """Whether a failed write failed because the disk (or the user's quota) is full."""
    if isinstance(exc, sqlite3.OperationalError):
        return "disk is full" in str(exc)
    return isinstance(exc, OSError) and (exc.errno in NO_SPACE or _no_space_text(exc))


def _no_space_text(exc: BaseException) -> bool:
    text = str(exc).lower()
    return "no space left" in text or "quota exceeded" in text


def free_space(path: str | Path) -> int | None:
    """Bytes free on the file system of `path` (its nearest existing folder), or None when unknown."""
    folder = Path(path)
    while not folder.exists() and folder != folder.parent:
        folder = folder.parent
    try:
        return shutil.disk_usage(folder).free
    except OSError:
        return None


def size_text(count: int | None) -> str:
    """
    >>> size_text(0), size_text(1536), size_text(5 * 2**30), size_text(None)
    ('0 B', '1.5 KiB', '5.0 GiB', 'unknown')
    """
    if count is None:
        return "unknown"
    value, unit = float(count), "B"
    for unit in ("B", "KiB", "MiB", "GiB", "TiB"):
        if value < 1024 or unit == "TiB":
            break
        value /= 1024
    return f"{int(value)} B" if unit == "B" else f"{value:.1f} {unit}"


def space_error(where: str | Path, writing: str, written: int | None = None) -> StoreError:
    """The StoreError of a write under `where` that found its disk full; `written`: bytes it had written by then."""
    done = f"; it had written {size_text(written)} when it failed and needs more" if written else ""
    return StoreError(
        f"the disk holding {where} is full: writing {writing} failed ({size_text(free_space(where))} free{done}). "
        "Nothing was committed, and every finished model call is kept in the store's request cache - free some space "
        "there (or give another --store) and run the same command again: it resumes without repeating a call."
    )


def folder_size(folder: str | Path) -> int:
    """Bytes of the files under `folder` (0 when it is gone)."""
    return sum(p.stat().st_size for p in Path(folder).rglob("*") if p.is_file())
