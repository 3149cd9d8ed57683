"""The request cache of a sharded run: many writers on many nodes, none of them sharing a SQLite file.

SQLite's locking (and WAL's shared memory) is not safe on a network filesystem, so no two processes
write one file: each shard worker reads the store's main `cache.sqlite` as an immutable snapshot
(the driver checkpoints it first and does not write it while shards work) and writes the calls it
makes to a file of its own, `STORE/cache/shards/<run>-<shard>.sqlite` (rollback journal, one writer).
After the shard work the driver, the one writer of the main cache, merges every shard file into it
and deletes them; a run killed before that leaves its shard files, merged by the next sharded run on
the store, so a resumed run still repeats no finished call.
"""

from __future__ import annotations

import sqlite3
import threading
from pathlib import Path

from rlaif.calls.cache import CallCache, select_many

SHARDS = Path("cache") / "shards"


def shard_folder(store: str | Path) -> Path:
    return Path(store) / SHARDS


class ShardCache:
    """What a shard worker's calls go through (the `CallCache` interface): its own file first, then the main cache, read-only."""

    def __init__(self, main: str | Path, own: str | Path) -> None:
        self._own = CallCache(own, journal_mode="DELETE")  # no WAL: its shared memory needs one host
        self.path = self._own.path  # where this worker's calls are kept (named in messages)
        self.main = Path(main)
        self._lock = threading.Lock()  # the snapshot's connection
        self._base = _open_snapshot(self.main)

    def get_many(self, keys: list[str]) -> dict[str, dict]:
        found = self._own.get_many(keys)
        missing = [key for key in keys if key not in found]
        if self._base is not None and missing:
            with self._lock:
                try:
                    found.update(select_many(self._base, missing))
                except (
                    sqlite3.DatabaseError
                ):  # the snapshot changed under us (another run wrote it): a miss, the call is made again
                    pass
        return found

    def put(self, key: str, value: dict) -> None:
        self._own.put(key, value)

    def __len__(self) -> int:
        return len(self._own)

    def close(self) -> None:
        self._own.close()
        with self._lock:
            if self._base is not None:
                self._base.close()


def _open_snapshot(path: Path) -> sqlite3.Connection | None:
    """The main cache read-only, without locks or WAL (`immutable=1`); None when there is none yet."""
    if not path.exists():
        return None
    try:
        db = sqlite3.connect(f"{path.resolve().as_uri()}?mode=ro&immutable=1", uri=True, check_same_thread=False)
        db.execute("SELECT 1 FROM calls LIMIT 1")
        return db
    except sqlite3.DatabaseError:
        return None


def prepare_snapshot(cache: CallCache) -> None:
    """Fold the main cache's WAL into its file, so that workers reading the file alone see every call."""
    with cache._lock:
        cache._db.execute("PRAGMA wal_checkpoint(TRUNCATE)")


def merge_shards(cache: CallCache, paths: list[Path]) -> int:
    """Copy every call of the shard files into the main cache, then delete the files; the calls merged."""
    merged = 0
    for path in paths:
        if not path.exists():
            continue
        with cache._lock:
            try:
                cache._db.execute("ATTACH DATABASE ? AS shard", (str(path),))
                try:
                    merged += cache._db.execute(
                        "INSERT OR REPLACE INTO main.calls (key, value, created) SELECT key, value, created FROM shard.calls"
                    ).rowcount
                    cache._db.commit()
                finally:
                    cache._db.execute("DETACH DATABASE shard")
            except sqlite3.DatabaseError:  # an unreadable file (a worker killed mid-write): its calls are made again
                pass
        for leftover in (path, path.with_name(path.name + "-journal")):
            leftover.unlink(missing_ok=True)
    return merged


def abandoned_shards(store: str | Path, live: set[str]) -> list[Path]:
    """Shard files of runs that are gone (their work folder name is not in `live`)."""
    folder = shard_folder(store)
    return (
        sorted(p for p in folder.glob("*.sqlite") if p.name.rsplit("-", 1)[0] not in live) if folder.is_dir() else []
    )
