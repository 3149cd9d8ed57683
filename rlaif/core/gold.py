"""Reading human-labelled ("gold") preference files for judge evaluation.

A gold file is JSON Lines; each row has `prompt` (a list of chat messages ending with a user
turn, or a plain string), `chosen` (the response humans preferred) and `rejected` (text; an
empty response is allowed). Other fields (`source`, `index`, ...) are kept as-is but unused.
Rows are numbered from 1 as lines of the file; blank lines are skipped. Every problem raises
`InputError` naming the file, the row and the field.

A file in a public set's own shape (MT-Bench human judgments, PandaLM, hh-rlhf, UltraFeedback
binarized, RewardBench) is read with `format=` (rlaif.core.gold_formats): each row is converted
first, and rows without a usable preference (ties, no majority, ...) are skipped and counted by
reason (`load_gold_counted`).
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from rlaif.core.errors import InputError
from rlaif.core.gold_formats import Skip, converter
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


@dataclass
class GoldSet:
    """The pairs kept from a gold file, and the rows skipped on purpose, counted by reason."""

    pairs: list[GoldPair]
    format: str = "rlaif"
    skipped: Counter[str] = field(default_factory=Counter)

    def lineage(self) -> dict:
        """What an evaluation records of the conversion: {"rows": kept, "format", "skipped": {reason: n}}."""
        return {"rows": len(self.pairs), "format": self.format, "skipped": dict(sorted(self.skipped.items()))}


def _refuse_json_array(path: Path) -> None:
    """A JSON array over several lines (PandaLM ships testset-v1.json as one) is refused with the
    command that converts it, instead of a JSON error on its first line."""
    try:
        with path.open("rb") as handle:
            first = handle.readline(4096).strip().lstrip(b"\xef\xbb\xbf")
    except OSError:
        return  # jsonl_rows says why the file cannot be read
    if first.startswith(b"[") and not first.endswith(b"]"):
        convert = "python -c 'import json,sys; [print(json.dumps(r)) for r in json.load(open(sys.argv[1]))]' FILE.json > FILE.jsonl"
        raise InputError(
            str(path), "a JSON array, not JSON Lines (one object per line)", 1, fix=f"convert it first: {convert}"
        )


def load_gold_counted(path: str | Path, limit: int | None = None, format: str = "rlaif") -> GoldSet:
    """Read, convert (`format`, see rlaif.core.gold_formats) and validate a gold file; with `limit`,
    stop after N kept pairs (the skip counts then cover the rows read so far)."""
    path = Path(path)
    convert = converter(format)
    result = GoldSet([], format)
    if path.is_file():
        _refuse_json_array(path)
    for line_number, row in jsonl_rows(
        path, "gold file", "pass a JSON Lines file of human-labelled pairs with --gold"
    ):
        converted = convert(row, str(path), line_number)
        if isinstance(converted, Skip):
            result.skipped[converted.reason] += 1
            continue
        result.pairs.append(parse_gold_row(converted, str(path), line_number))
        if limit is not None and len(result.pairs) >= limit:
            break
    if not result.pairs and result.skipped:
        reasons = ", ".join(f"{reason} {n}" for reason, n in sorted(result.skipped.items()))
        raise InputError(
            str(path),
            f"every row was skipped ({reasons}): no pair to evaluate",
            fix=f"check that --gold-format {format} is this file's format",
        )
    if not result.pairs:
        raise InputError(str(path), "no rows in gold file", fix=f"add JSON Lines rows like {EXAMPLE}")
    return result


def load_gold(path: str | Path, limit: int | None = None, format: str = "rlaif") -> list[GoldPair]:
    """Read and validate a gold file; with `limit`, only its first N pairs (see `load_gold_counted`)."""
    return load_gold_counted(path, limit, format).pairs


def gold_label(lineage: dict) -> str | None:
    """How reports name a gold set from its lineage: its file, or its Hub dataset at the commit read.

    >>> gold_label({"path": "data/gold-sample.jsonl"}), gold_label({"hub": "org/set", "split": "test", "commit": "0123456789abcdef"})
    ('data/gold-sample.jsonl', 'org/set (split test) at 0123456789ab')
    """
    if lineage.get("hub"):
        return f"{lineage['hub']} (split {lineage.get('split')}) at {str(lineage.get('commit'))[:12]}"
    return lineage.get("path")
