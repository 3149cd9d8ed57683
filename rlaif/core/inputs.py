"""Reading prompt files: JSON Lines with `prompt` (text) or `messages` (chat), optional `id`."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterator
from pathlib import Path
from typing import BinaryIO

import jsonlines

from rlaif.core.errors import InputError
from rlaif.core.schema import Message, Prompt

ROLES = {"system", "user", "assistant"}


def chat_messages(value: object, path: str, line: int, field: str, fix: str | None = None) -> list[Message]:
    """The one parser of a chat prompt (prompt files, gold files, evaluation sets): text (one user
    turn) or a non-empty list of {role, content} messages ending with a non-empty user turn.
    Errors name the file, the row and `field`; `fix` is said where the value has the wrong shape.

    >>> chat_messages("Hi", "p.jsonl", 1, "prompt")
    [{'role': 'user', 'content': 'Hi'}]
    >>> chat_messages([{"role": "assistant", "content": "x"}], "g.jsonl", 3, "prompt")
    Traceback (most recent call last):
    ...
    rlaif.core.errors.InputError: g.jsonl, row 3, field 'prompt': the last message must be from the user
    """
    messages = [{"role": "user", "content": value}] if isinstance(value, str) else value
    if not isinstance(messages, list) or not messages:
        raise InputError(path, "must be a non-empty list of messages (or a string)", line, field, fix=fix)
    for message in messages:
        if (
            not isinstance(message, dict)
            or message.get("role") not in ROLES
            or not isinstance(message.get("content"), str)
        ):
            raise InputError(
                path, "each message needs 'role' (system/user/assistant) and 'content' (text)", line, field
            )
    if messages[-1]["role"] != "user":
        raise InputError(path, "the last message must be from the user", line, field)
    if not messages[-1]["content"].strip():
        raise InputError(path, "the prompt is empty", line, field, fix="remove the row or write a prompt")
    return [{"role": m["role"], "content": m["content"]} for m in messages]


def _messages(row: dict, path: str, line: int) -> list[Message]:
    """A prompt file row's chat: its `messages`, else its `prompt`."""
    for field_name in ("messages", "prompt"):
        if field_name in row:
            return chat_messages(row[field_name], path, line, field_name)
    raise InputError(
        path, "no 'prompt' or 'messages' field", line, fix='each row needs {"prompt": "..."} or {"messages": [...]}'
    )


def jsonl_rows(path: Path, what: str, fix: str) -> Iterator[tuple[int, object]]:
    """(line number, parsed row) for each non-blank line; a missing file, bytes that are not
    UTF-8 text (say a binary file) or bad JSON name the file, the row and the byte offset.

    `jsonlines` parses the JSON and numbers the lines; the bytes are checked here first, because
    its decode error gives no byte offset and a binary file would reach it as a JSON error."""
    if not path.is_file():
        raise InputError(str(path), f"{what} not found", fix=fix)
    try:
        with path.open("rb") as handle:
            lines = _TextLines(handle, str(path))
            reader = jsonlines.Reader(
                lines, loads=json.loads
            )  # the same parser (and messages) wherever orjson is installed
            try:
                for row in reader.iter(allow_none=True, skip_empty=True):
                    yield lines.line_number, row
            except jsonlines.InvalidLineError as exc:
                cause = exc.__cause__
                reason = cause.msg if isinstance(cause, json.JSONDecodeError) else str(exc)
                raise InputError(
                    str(path), f"not valid JSON ({reason})", exc.lineno, fix="one JSON object per line"
                ) from None
    except OSError as exc:
        raise InputError(str(path), f"{what} cannot be read ({exc.strerror or exc})", fix=fix) from None


class _TextLines:
    """The lines of a binary file as text, each checked for UTF-8 and NUL bytes (errors name the
    row and the byte offset); `line_number` is the row last handed out, numbered from 1."""

    def __init__(self, handle: BinaryIO, path: str) -> None:
        self.handle, self.path, self.line_number, self.offset = handle, path, 0, 0

    def __iter__(self) -> Iterator[str]:
        for raw in self.handle:
            self.line_number += 1
            start, self.offset = self.offset, self.offset + len(raw)
            if self.line_number == 1 and raw.startswith(b"\xef\xbb\xbf"):  # a UTF-8 byte order mark
                raw, start = raw[3:], 3
            yield self._decode(raw, start)

    def _decode(self, raw: bytes, start: int) -> str:
        try:
            line = raw.decode("utf-8")
        except UnicodeDecodeError as exc:
            raise InputError(
                self.path,
                f"not UTF-8 text (byte {raw[exc.start]:#04x} at byte offset {start + exc.start})",
                self.line_number,
                fix="save the file as UTF-8 JSON Lines",
            ) from None
        if "\x00" in line:
            nul = start + raw.index(b"\x00")
            raise InputError(
                self.path,
                f"NUL byte at byte offset {nul}: a binary file, not JSON Lines text",
                self.line_number,
                fix="give a UTF-8 JSON Lines file",
            )
        return line


RECIPE_PROMPTS_FIX = "check prompts.path in the recipe (relative to the current folder)"


def iter_prompts(
    path: str | Path, system: str | None = None, limit: int | None = None, fix: str = RECIPE_PROMPTS_FIX
) -> Iterator[Prompt]:
    """Read and validate a prompt file row by row; every problem names the file, row and field.

    Rows are numbered from 1 as lines of the file; blank lines are skipped. Ids default to
    the row number and must be unique. `fix`: what a missing file's error tells to check (where the path came from).
    """
    path = Path(path)
    seen: dict[str, int] = {}
    count = 0
    for line_number, row in jsonl_rows(path, "prompt file", fix):
        if not isinstance(row, dict):
            raise InputError(str(path), "each row must be a JSON object", line_number)
        messages = _messages(row, str(path), line_number)
        prompt_id = str(row.get("id", line_number))
        if prompt_id in seen:
            raise InputError(
                str(path), f"duplicate id {prompt_id!r} (first on row {seen[prompt_id]})", line_number, "id"
            )
        seen[prompt_id] = line_number
        if system and messages[0]["role"] != "system":
            messages = [{"role": "system", "content": system}, *messages]
        yield Prompt(id=prompt_id, messages=messages, source=str(row.get("source", path.name)))
        count += 1
        if limit is not None and count >= limit:
            break
    if not count:
        raise InputError(str(path), "no prompts in file", fix="add JSON Lines rows with a 'prompt' field")


def load_prompts(
    path: str | Path, system: str | None = None, limit: int | None = None, fix: str = RECIPE_PROMPTS_FIX
) -> list[Prompt]:
    """Load and validate a prompt file (see `iter_prompts`)."""
    return list(iter_prompts(path, system, limit, fix))


def validate_prompts(
    path: str | Path, system: str | None = None, limit: int | None = None, fix: str = RECIPE_PROMPTS_FIX
) -> int:
    """Check a whole prompt file without keeping it in memory; returns the number of prompts."""
    return sum(1 for _ in iter_prompts(path, system, limit, fix))


def file_sha256(path: str | Path) -> str | None:
    """sha256 of a file read in 1 MiB blocks (None when there is no such file)."""
    file = Path(path)
    if not file.is_file():
        return None
    digest = hashlib.sha256()
    with file.open("rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()
