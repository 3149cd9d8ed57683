"""A person's decisions on the pairs of a dataset version (`rlaif review`): an append-only JSON Lines log beside
the version, never inside it (versions are immutable): STORE/reviews/<version id>/decisions.jsonl.

Each action is one line, written under a file lock and fsynced before `append` returns, so a server killed at
any moment loses nothing it acknowledged, and two browsers (two reviewers, or one twice) never mix their lines.
An undo is a line too (`undoes`: the id of the decision it takes back). `current` folds the log into each
reviewer's standing decision per pair.
"""

from __future__ import annotations

import datetime
import json
import os
import uuid
from collections.abc import Iterable
from dataclasses import asdict, dataclass, field
from pathlib import Path

from filelock import FileLock

from rlaif.core.errors import InputError, StoreError

#: what a reviewer can decide on a pair: one response ("pick", with `picked`), a tie, both bad, or skip it
DECISIONS = ("pick", "tie", "both_bad", "skip")
LOG_FILE = "decisions.jsonl"


@dataclass(frozen=True)
class Decision:
    """One line of the log: a decision on a pair (`action` "decide") or the undo of one (`action` "undo")."""

    version: str
    reviewer: str
    pair: str  # rlaif.store.diff.pair_key: prompt id and the two response ids
    action: str  # "decide" or "undo"
    decision: str | None = None  # one of DECISIONS (decide)
    picked: str | None = None  # the response id the reviewer preferred (decision "pick")
    left: str | None = None  # the response id shown on the left (the order shown is random per pair)
    right: str | None = None
    judge_choice: str | None = None  # the response id the judge preferred; None for a pair it tied or failed
    judge_p: float | None = None  # the judge's P(judge_choice is better), debiased
    note: str = ""
    undoes: str | None = None  # undo: the id of the decision taken back
    id: str = field(default_factory=lambda: uuid.uuid4().hex)
    time: str = field(default_factory=lambda: datetime.datetime.now(datetime.timezone.utc).isoformat())


def reviews_folder(store: str | Path, version_id: str) -> Path:
    return Path(store) / "reviews" / version_id


def log_path(store: str | Path, version_id: str) -> Path:
    return reviews_folder(store, version_id) / LOG_FILE


def check(decision: Decision) -> None:
    """A decision line that makes sense, or InputError saying what to send instead."""
    where = f"decision on pair {decision.pair}"
    if decision.action == "undo":
        if not decision.undoes:
            raise InputError(where, "an undo names the decision it takes back", field="undoes")
        return
    if decision.action != "decide" or decision.decision not in DECISIONS:
        raise InputError(where, f"unknown decision {decision.decision!r}", field="decision", fix=f"one of {DECISIONS}")
    if (decision.decision == "pick") != (decision.picked is not None):
        raise InputError(where, "a pick names the response picked, and only a pick does", field="picked")
    if decision.picked is not None and decision.picked not in (decision.left, decision.right):
        raise InputError(where, f"picked {decision.picked!r} is neither response shown", field="picked")


def append(store: str | Path, decision: Decision) -> Decision:
    """Write one line of the version's log, durably (fsync) and alone (a file lock), then return it."""
    check(decision)
    path = log_path(store, decision.version)
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        line = json.dumps(asdict(decision), ensure_ascii=False, sort_keys=True) + "\n"
        with FileLock(str(path) + ".lock"), open(path, "a", encoding="utf-8") as log:
            log.write(line)
            log.flush()
            os.fsync(log.fileno())
    except OSError as exc:
        raise StoreError(f"could not save the decision to {path}: {exc} - check that the store is writable") from None
    return decision


def read(store: str | Path, version_id: str) -> list[Decision]:
    """Every line of the version's log, oldest first ([] when nobody reviewed it yet). A last line cut short by a
    kill was never acknowledged and is left out; a broken line before it is an error naming it."""
    path = log_path(store, version_id)
    if not path.is_file():
        return []
    lines = path.read_text(encoding="utf-8").splitlines()
    found = []
    for number, line in enumerate(lines, 1):
        if not line.strip():
            continue
        try:
            found.append(Decision(**json.loads(line)))
        except (ValueError, TypeError) as exc:
            if number == len(lines):
                break  # cut short while being written: never acknowledged
            raise StoreError(
                f"{path} line {number} is not a decision ({exc}) - remove that line; every other line is kept"
            ) from None
    return found


def current(decisions: Iterable[Decision]) -> dict[tuple[str, str], Decision]:
    """(reviewer, pair) -> that reviewer's standing decision on the pair: the latest one not undone."""
    standing: dict[tuple[str, str], list[Decision]] = {}
    for line in decisions:
        key = (line.reviewer, line.pair)
        if line.action == "decide":
            standing.setdefault(key, []).append(line)
        else:
            standing[key] = [kept for kept in standing.get(key, []) if kept.id != line.undoes]
    return {key: lines[-1] for key, lines in standing.items() if lines}
