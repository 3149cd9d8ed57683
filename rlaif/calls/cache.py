"""Request-level cache: every model call keyed by the content that determines it.

Only successful results are stored, each as soon as it arrives, so a re-run makes no live
call, a failed call is retried next time, and a run killed half-way resumes where it stopped.
"""

from __future__ import annotations

import json
import sqlite3
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from rlaif.core.schema import content_hash
from rlaif.store.locks import locked_folder
from rlaif.store.space import out_of_space, space_error


@dataclass
class CallStats:
    live: int = 0
    cached: int = 0
    failed: int = 0
    prompt_tokens: int = 0
    completion_tokens: int = 0
    latency_s: float = 0.0  # summed over live calls: a measurement, kept out of the hashed rows
    retried: int = 0  # calls sent again in a later pass after a transient failure (rlaif.calls.engine)
    retry: Any = None  # the run-wide retry state (rlaif.calls.engine.RetryBudget) shared by every step; None: one pass
    last_error: str | None = None  # the latest call failure that stayed a failure ("Type: message")
    stages: dict = field(default_factory=dict)  # stage name -> {"ok", "failed", "error"} (rlaif.pipeline.runner)
    limit_wait_s: float = 0.0  # wall time requests were held by rpm / tpm limits (rlaif.backends.ratelimit)
    ledger: Any = (
        None  # the run-wide tokens, cost and budget (rlaif.calls.costs.Ledger) shared by every step; None: not counted
    )
    stage: str = (
        ""  # the cost stage of these calls when not read from the step's label (rlaif.calls.costs.stage_of), e.g. gold
    )

    def add(self, other: CallStats) -> None:
        for name in (
            "live",
            "cached",
            "failed",
            "prompt_tokens",
            "completion_tokens",
            "latency_s",
            "retried",
            "limit_wait_s",
        ):
            setattr(self, name, getattr(self, name) + getattr(other, name))


def call_key(kind: str, engine: dict[str, Any], request: dict[str, Any], template_sha256: str = "") -> str:
    """The cache key of one call: a hash of everything that determines its result.

    `engine` names the backend and model (and endpoint); `request` holds the messages, sampling
    parameters, seed (which encodes the sample index) and verdict options.
    """
    return content_hash({"kind": kind, "engine": engine, "request": request, "template": template_sha256})


def select_many(db: sqlite3.Connection, keys: list[str]) -> dict[str, dict]:
    """The stored results of `keys` in a cache database (500 keys a query: SQLite's variable limit)."""
    found: dict[str, dict] = {}
    for start in range(0, len(keys), 500):
        chunk = keys[start : start + 500]
        for key, value in db.execute(
            f"SELECT key, value FROM calls WHERE key IN ({','.join('?' * len(chunk))})", chunk
        ):
            found[key] = json.loads(value)
    return found


class CallCache:
    """A SQLite table of key -> JSON result; safe to share between threads of one process, and
    between processes (concurrent runs on one store: WAL, writers serialized, 30 s busy timeout).

    What is shared is finished calls only: two runs that need the same call at the same moment
    both make it (docs/reliability.md); the last answer stored is kept.
    """

    def __init__(self, path: str | Path, journal_mode: str = "WAL") -> None:
        """`journal_mode`: WAL for a store's cache; DELETE for a file on a network filesystem (a shard's, rlaif/calls/shard_cache.py: WAL's shared memory needs one host)."""
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._lock = threading.Lock()
        self._db = sqlite3.connect(self.path, check_same_thread=False, timeout=30)
        # Under the folder's creation lock: runs that open a new cache at the same moment would otherwise race
        # to switch it to WAL, and SQLite answers the loser "database is locked" at once (no busy wait for that).
        with locked_folder(self.path.parent):
            self._db.execute(f"PRAGMA journal_mode={journal_mode}")
            # Each put still commits, so a killed process keeps every finished call; NORMAL skips the
            # fsync per commit (3 ms here, run on the event loop: 40% of API throughput). Only a power
            # loss or OS crash may drop the last few calls, which are then simply made again.
            self._db.execute("PRAGMA synchronous=NORMAL")
            self._db.execute(
                "CREATE TABLE IF NOT EXISTS calls (key TEXT PRIMARY KEY, value TEXT NOT NULL, created REAL NOT NULL)"
            )
            self._db.commit()

    def get_many(self, keys: list[str]) -> dict[str, dict]:
        with self._lock:
            return select_many(self._db, keys)

    def put(self, key: str, value: dict) -> None:
        """Store one finished call; a full disk is a StoreError (the calls stored before stay intact)."""
        with self._lock:
            try:
                self._db.execute(
                    "INSERT OR REPLACE INTO calls (key, value, created) VALUES (?, ?, ?)",
                    (key, json.dumps(value, ensure_ascii=False), time.time()),
                )
                self._db.commit()
            except sqlite3.OperationalError as exc:
                if not out_of_space(exc):
                    raise
                self._db.rollback()
                raise space_error(
                    self.path.parent, f"a model call's answer to the request cache {self.path}"
                ) from None

    def __len__(self) -> int:
        with self._lock:
            return self._db.execute("SELECT COUNT(*) FROM calls").fetchone()[0]

    def close(self) -> None:
        with self._lock:
            self._db.close()
