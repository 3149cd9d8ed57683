"""Reading prompt files: JSON Lines with `prompt` (text) or `messages` (chat), optional `id`."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

from rlaif.errors import InputError
from rlaif.schema import Message, Prompt

ROLES = {"system", "user", "assistant"}


def _messages(row: dict, path: str, line: int) -> list[Message]:
    if "messages" in row:
        messages = row["messages"]
        field_name = "messages"
    elif "prompt" in row:
        messages = row["prompt"]
        field_name = "prompt"
        if isinstance(messages, str):
            messages = [{"role": "user", "content": messages}]
    else:
        raise InputError(path, "no 'prompt' or 'messages' field", line, fix='each row needs {"prompt": "..."} or {"messages": [...]}')
    if not isinstance(messages, list) or not messages:
        raise InputError(path, "must be a non-empty string or list of messages", line, field_name)
    for message in messages:
        if not isinstance(message, dict) or message.get("role") not in ROLES or not isinstance(message.get("content"), str):
            raise InputError(path, "each message needs 'role' (system/user/assistant) and 'content' (text)", line, field_name)
    if messages[-1]["role"] != "user":
        raise InputError(path, "the last message must be from the user", line, field_name)
    if not messages[-1]["content"].strip():
        raise InputError(path, "the prompt is empty", line, field_name, fix="remove the row or write a prompt")
    return [{"role": m["role"], "content": m["content"]} for m in messages]


def jsonl_rows(path: Path, what: str, fix: str) -> Iterator[tuple[int, object]]:
    """(line number, parsed row) for each non-blank line; a missing file, bytes that are not
    UTF-8 text (say a binary file) or bad JSON name the file, the row and the byte offset."""
    if not path.is_file():
        raise InputError(str(path), f"{what} not found", fix=fix)
    try:
        with path.open("rb") as handle:
            yield from _parsed_lines(handle, str(path))
    except OSError as exc:
        raise InputError(str(path), f"{what} cannot be read ({exc.strerror or exc})", fix=fix) from None


def _parsed_lines(handle, path: str) -> Iterator[tuple[int, object]]:
    offset = 0
    for line_number, raw in enumerate(handle, start=1):
        start, offset = offset, offset + len(raw)
        if line_number == 1 and raw.startswith(b"\xef\xbb\xbf"):  # a UTF-8 byte order mark
            raw, start = raw[3:], 3
        try:
            line = raw.decode("utf-8")
        except UnicodeDecodeError as exc:
            raise InputError(
                path, f"not UTF-8 text (byte {raw[exc.start]:#04x} at byte offset {start + exc.start})", line_number, fix="save the file as UTF-8 JSON Lines"
            ) from None
        if "\x00" in line:
            nul = start + raw.index(b"\x00")
            raise InputError(path, f"NUL byte at byte offset {nul}: a binary file, not JSON Lines text", line_number, fix="give a UTF-8 JSON Lines file")
        if not line.strip():
            continue
        try:
            yield line_number, json.loads(line)
        except json.JSONDecodeError as exc:
            raise InputError(path, f"not valid JSON ({exc.msg})", line_number, fix="one JSON object per line") from None


def iter_prompts(path: str | Path, system: str | None = None, limit: int | None = None) -> Iterator[Prompt]:
    """Read and validate a prompt file row by row; every problem names the file, row and field.

    Rows are numbered from 1 as lines of the file; blank lines are skipped. Ids default to
    the row number and must be unique.
    """
    path = Path(path)
    seen: dict[str, int] = {}
    fix = "check prompts.path in the recipe (relative to the current folder)"
    count = 0
    for line_number, row in jsonl_rows(path, "prompt file", fix):
        if not isinstance(row, dict):
            raise InputError(str(path), "each row must be a JSON object", line_number)
        messages = _messages(row, str(path), line_number)
        prompt_id = str(row.get("id", line_number))
        if prompt_id in seen:
            raise InputError(str(path), f"duplicate id {prompt_id!r} (first on row {seen[prompt_id]})", line_number, "id")
        seen[prompt_id] = line_number
        if system and messages[0]["role"] != "system":
            messages = [{"role": "system", "content": system}, *messages]
        yield Prompt(id=prompt_id, messages=messages, source=str(row.get("source", path.name)))
        count += 1
        if limit is not None and count >= limit:
            break
    if not count:
        raise InputError(str(path), "no prompts in file", fix="add JSON Lines rows with a 'prompt' field")


def load_prompts(path: str | Path, system: str | None = None, limit: int | None = None) -> list[Prompt]:
    """Load and validate a prompt file (see `iter_prompts`)."""
    return list(iter_prompts(path, system, limit))


def validate_prompts(path: str | Path, system: str | None = None, limit: int | None = None) -> int:
    """Check a whole prompt file without keeping it in memory; returns the number of prompts."""
    return sum(1 for _ in iter_prompts(path, system, limit))
