"""The one way rlaif writes a file that others may read while it is being written: a temporary
file beside the target, flushed and fsynced, then `os.replace`d over it. A reader sees the old
file or the new one, never a half-written one, and a crash (or a kill) leaves at worst a hidden
`.NAME.*.tmp` file beside the target, never a truncated target.

Folders that appear whole (a version, an export, a converted model) are built in a temporary
folder and renamed into place by their owners; this module is for single files.
"""

from __future__ import annotations

import json
import os
import tempfile
from pathlib import Path
from typing import Any


def umask() -> int:
    """The process's umask, read without changing it (os.umask sets it, for a moment, for every thread)."""
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("Umask:"):
                return int(line.split()[1], 8)
    except (OSError, ValueError):
        pass
    mask = os.umask(0o022)  # no /proc (not Linux): the classic read, set and restore
    os.umask(mask)
    return mask


def shareable(path: str | Path) -> Path:
    """Give a folder made by mkdtemp (0700), or a file made by mkstemp (0600), the permissions a new one gets
    from the user's umask (usually 0755 / 0644), so a store shared by a team stays readable by it."""
    path = Path(path)
    path.chmod((0o777 if path.is_dir() else 0o666) & ~umask())
    return path


def write_atomic(path: str | Path, data: str | bytes) -> Path:
    """Write `data` (text is UTF-8 encoded) to `path` atomically; the parent folder is created.

    >>> import tempfile, pathlib
    >>> target = pathlib.Path(tempfile.mkdtemp()) / "sub" / "a.txt"
    >>> write_atomic(target, "one").read_text(), write_atomic(target, b"two").read_text()
    ('one', 'two')
    >>> sorted(p.name for p in target.parent.iterdir())
    ['a.txt']
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    payload = data.encode("utf-8") if isinstance(data, str) else data
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        os.fchmod(fd, 0o666 & ~umask())  # mkstemp's file is 0600: give it what the user's umask gives a new file
        with os.fdopen(fd, "wb") as handle:
            handle.write(payload)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return path


def write_json_atomic(path: str | Path, value: Any) -> Path:
    """`value` as indented UTF-8 JSON with a final newline, written with `write_atomic`."""
    return write_atomic(path, json.dumps(value, indent=2, ensure_ascii=False, default=str) + "\n")
