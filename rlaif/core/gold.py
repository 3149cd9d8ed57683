"""Reading human-labelled ("gold") preference files for judge evaluation.

A gold file is JSON Lines; each row has `prompt` (a list of chat messages ending with a user
turn, or a plain string), `chosen` (the response humans preferred) and `rejected` (text; an
empty response is allowed). Other fields (`source`, `index`, ...) are kept as-is but unused.
Rows are numbered from 1 as lines of the file; blank lines are skipped. Every problem raises
`InputError` naming the file, the row and the field.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from rlaif.core.errors import InputError
from rlaif.core.inputs import chat_messages, jsonl_rows
from rlaif.core.schema import Message

EXAMPLE = '{"prompt": [{"role": "user", "content": "..."}], "chosen": "...", "rejected": "..."}'


@dataclass(frozen=True)
class GoldPair:
    """One human-labelled comparison: `chosen` was preferred to `rejected` for `prompt`."""

    row: int  # line number in the file (from 1)
    prompt: list[Message]
    chosen: str
    rejected: str
    source: str = ""


def parse_gold_row(row: Any, path: str, line: int) -> GoldPair:
    """One validated gold row (see the module docstring for the schema)."""
    if not isinstance(row, dict):
        raise InputError(path, "each row must be a JSON object", line, fix=f"rows look like {EXAMPLE}")
    for name in ("prompt", "chosen", "rejected"):
        if name not in row:
            raise InputError(path, "missing field", line, name, fix=f"rows look like {EXAMPLE}")
    messages = chat_messages(row["prompt"], path, line, "prompt", fix=f"rows look like {EXAMPLE}")
    for name in ("chosen", "rejected"):
        if not isinstance(row[name], str):
            raise InputError(path, f"must be the response text (a string), got {type(row[name]).__name__}", line, name)
    if row["chosen"].strip() == row["rejected"].strip():
        raise InputError(
            path,
            "chosen and rejected are the same text: no preference to check",
            line,
            "rejected",
            fix="remove the row",
        )
    return GoldPair(
        row=line, prompt=messages, chosen=row["chosen"], rejected=row["rejected"], source=str(row.get("source", ""))
    )


def load_gold(path: str | Path, limit: int | None = None) -> list[GoldPair]:
    """Read and validate a gold file; with `limit`, only its first N rows."""
    path = Path(path)
    pairs: list[GoldPair] = []
    for line_number, row in jsonl_rows(
        path, "gold file", "pass a JSON Lines file of human-labelled pairs with --gold"
    ):
        pairs.append(parse_gold_row(row, str(path), line_number))
        if limit is not None and len(pairs) >= limit:
            break
    if not pairs:
        raise InputError(str(path), "no rows in gold file", fix=f"add JSON Lines rows like {EXAMPLE}")
    return pairs
