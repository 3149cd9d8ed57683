"""A recipe's prompts from where people keep them: a JSON Lines, Parquet or CSV file (or a folder of Parquet
files), a Hugging Face Hub dataset, or an earlier version of the store.

A plain JSON Lines file is read as it is (rlaif.core.inputs). Any other source, or a JSON Lines file with
columns or a selection, is read once, row by row, into a prompt file of the store (STORE/sources/<key>.jsonl,
written whole or not at all): each row is checked and converted as it is read (errors name the source, the row and
the column), so the prompts are never held in memory twice. Its key is the source's content (a file's sha256, a
Hub dataset's commit, a version's id) and the selection, so a later run of the same source and recipe reads the
prompt file again without reading the source; with HF_HUB_OFFLINE=1 that means no network call at all.

A Hub dataset's branch or tag is resolved to its commit once, at the start (and remembered in
STORE/sources/refs.json for offline runs); the commit is what is read, recorded and hashed.
"""

from __future__ import annotations

import csv
import json
import os
import random
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pyarrow.parquet as pq

from rlaif.core.errors import HubError, InputError
from rlaif.core.hub_access import HubFixes, first_line, hub_errors, hub_token
from rlaif.core.inputs import RECIPE_PROMPTS_FIX, chat_messages, file_sha256, jsonl_rows
from rlaif.core.schema import content_hash
from rlaif.store.atomic import write_json_atomic
from rlaif.store.versions import version_path

SOURCES = "sources"
FORMAT_OF = {".jsonl": "jsonl", ".json": "jsonl", ".ndjson": "jsonl", ".parquet": "parquet", ".csv": "csv"}
# what a prompt file of the store holds per row; bump when the conversion changes, so no stale file is read
LAYOUT = 1
HUB_FIXES = HubFixes(
    kind="dataset",
    revision="check `prompts.revision` in the recipe (a branch, tag or commit of the dataset)",
    not_found="check `prompts.hub` in the recipe, and set HF_TOKEN to a token that can read it",
    offline="or run once online: a run reads the Hub only for what it has not read before",
    forbidden="HF_TOKEN may not read {repo} (403): accept the dataset's terms on the Hub with that account",
    writable="the Hugging Face cache (HF_HOME)",
)

Row = tuple[str, int, dict]  # (where the row is, its number there, the row)


@dataclass(frozen=True)
class SourceFile:
    """A JSON Lines file to read (a run's prompts, a gold set's rows) and where its rows came from (the lineage)."""

    file: Path
    lineage: dict[str, Any] = field(default_factory=dict)


def resolve_prompts(spec: Any, store: str | Path, limit: int | None = None) -> SourceFile:
    """The prompt file of the recipe's `prompts:` (rlaif.config.prompt_source.PromptSource), reading the source into
    the store first where it is not a plain JSON Lines file. `limit`: the most rows the run may use (the recipe's or
    the command line's); only that many are converted, and a Hub dataset is then streamed, not downloaded whole."""
    kind = spec.kind()
    if kind == "path" and _plain(spec):
        return SourceFile(Path(spec.path), {"path": str(spec.path)})
    source = _SOURCE_OF[kind](spec, Path(store), limit)
    key = {"layout": LAYOUT, "source": source.identity, "spec": _selection(spec), "limit": limit}
    out = _stored(store, key, lambda: _converted(source, spec, limit), source.label)
    return SourceFile(out, {**source.lineage, "prompt_file": str(out)})


def resolve_rows(spec: Any, store: str | Path) -> SourceFile:
    """A gold set's rows (rlaif.config.prompt_source.GoldSource) as JSON Lines, as they are: a JSON Lines file is read
    in place; a Parquet or CSV file or a Hub dataset is read whole into a file of the store first (its format's
    converter, rlaif.core.gold_formats, reads the rows later)."""
    kind = spec.kind()
    if kind == "path" and _format(spec) == "jsonl":
        return SourceFile(Path(spec.path), {"path": str(spec.path)})
    source = _SOURCE_OF[kind](spec, Path(store), None)
    key = {"layout": LAYOUT, "rows": "as-is", "source": source.identity}
    out = _stored(store, key, lambda: (row for _, _, row in source.rows()), source.label)
    return SourceFile(out, {**source.lineage, "rows_file": str(out)})


def _stored(store: str | Path, key: dict, rows: Callable[[], Iterator[dict]], label: str) -> Path:
    """STORE/sources/<hash of key>.jsonl, written from `rows()` (whole or not at all) the first time only."""
    out = Path(store) / SOURCES / f"{content_hash(key, 20)}.jsonl"
    if not out.is_file():
        _write(out, rows(), label)
    return out


def _plain(spec: Any) -> bool:
    """A JSON Lines file read as it is, as before sources existed."""
    selection = _selection(spec)
    return _format(spec) == "jsonl" and not any(value for key, value in selection.items() if key != "format")


def _selection(spec: Any) -> dict[str, Any]:
    """What picks and shapes the rows (the prompt file's key hashes it)."""
    keys = ("column", "messages_column", "id_column", "drop_last_assistant", "where")
    shuffle = spec.shuffle.model_dump(mode="json") if spec.shuffle else None
    return {"format": spec.file_format(), "shuffle": shuffle, **{key: getattr(spec, key) for key in keys}}


def _format(spec: Any) -> str:
    if spec.file_format():
        return spec.file_format()
    path = Path(spec.path)
    if path.is_dir():
        return "parquet"
    found = FORMAT_OF.get(path.suffix.lower())
    if found is None:
        raise InputError(
            str(path),
            f"cannot tell the format from the extension {path.suffix or '(none)'!r}",
            fix="name it .jsonl, .parquet or .csv, or set prompts.format: jsonl, parquet or csv",
        )
    return found


# -- sources: what identifies one, where it came from, and its rows ---------------------------------------------


@dataclass
class _Source:
    label: str  # how errors name it
    identity: dict[str, Any]  # its content: what the prompt file's key hashes
    lineage: dict[str, Any]  # the manifest's inputs.prompts
    rows: Callable[[], Iterator[Row]]  # every row, in order (callable again for a second pass)
    default_id: Callable[[int, list], str]  # a prompt's id when the row has none
    name: str = ""  # a prompt's `source` when the row has none (a file's name, a Hub dataset's id)
    stream: Callable[[Any, int | None], Iterator[Row]] | None = None  # a Hub dataset read as a stream


def _file_source(spec: Any, store: Path, limit: int | None) -> _Source:
    path, fmt = Path(spec.path), _format(spec)
    files = _parquet_files(path) if fmt == "parquet" else [path]
    for file in files:
        if not file.is_file():
            raise InputError(str(file), "prompt file not found", fix=RECIPE_PROMPTS_FIX)
    digest = (
        file_sha256(path)
        if path.is_file()
        else content_hash([[file.relative_to(path).as_posix(), file_sha256(file)] for file in files])
    )
    reader = {"jsonl": _jsonl_rows, "parquet": _parquet_rows, "csv": _csv_rows}[fmt]
    row_id = (lambda number, messages: str(number)) if fmt == "jsonl" else _content_id
    return _Source(
        str(path),
        {"path": str(path), "format": fmt, "sha256": digest},
        {"path": str(path), "format": fmt, "sha256": digest},
        lambda: (row for file in files for row in reader(file)),
        row_id,
        path.name,
    )


def _parquet_files(path: Path) -> list[Path]:
    if path.is_file():
        return [path]
    if not path.is_dir():
        raise InputError(str(path), "prompt file not found", fix=RECIPE_PROMPTS_FIX)
    files = sorted(file for file in path.rglob("*.parquet") if file.is_file())
    if not files:
        raise InputError(str(path), "the folder holds no .parquet file", fix="give a Parquet file or a folder of them")
    return files


def _jsonl_rows(path: Path) -> Iterator[Row]:
    for number, row in jsonl_rows(path, "prompt file", RECIPE_PROMPTS_FIX):
        if not isinstance(row, dict):
            raise InputError(str(path), "each row must be a JSON object", number)
        yield str(path), number, row


def _parquet_rows(path: Path) -> Iterator[Row]:
    try:
        batches = pq.ParquetFile(path).iter_batches(batch_size=1024)
        number = 0
        for batch in batches:
            for row in batch.to_pylist():
                number += 1
                yield str(path), number, row
    except OSError as exc:
        raise InputError(
            str(path), f"not a readable Parquet file ({first_line(exc)})", fix="give a Parquet file"
        ) from None


def _csv_rows(path: Path) -> Iterator[Row]:
    try:
        with path.open(newline="", encoding="utf-8-sig") as handle:
            reader = csv.DictReader(handle)
            for row in reader:
                yield str(path), reader.line_num, dict(row)
    except UnicodeDecodeError as exc:
        raise InputError(str(path), f"not UTF-8 text ({exc.reason})", fix="save the file as UTF-8 CSV") from None
    except csv.Error as exc:
        raise InputError(str(path), f"not valid CSV ({exc})", fix="one header line, then one row per line") from None


def _version_source(spec: Any, store: Path, limit: int | None) -> _Source:
    folder = version_path(store, spec.version)  # a StoreError naming the store when it is not there
    table = folder / "prompts.parquet"
    if not table.is_file():
        raise InputError(
            str(table), "the version has no prompts table", fix="give the id of a version made by `rlaif run`"
        )
    label = f"version {spec.version}"
    return _Source(
        label,
        {"version": spec.version},
        {"version": spec.version},
        lambda: ((label, number, row) for _, number, row in _parquet_rows(table)),
        _content_id,
        label,
    )


def _hub_source(spec: Any, store: Path, limit: int | None) -> _Source:
    from huggingface_hub import constants

    split = spec.split or "train"
    commit = _commit(spec, store)
    where = " ".join(part for part in (spec.hub, spec.config and f"({spec.config})", f"split {split}") if part)
    label = f"{where} at {commit[:12]}"
    lineage = {"hub": spec.hub, "config": spec.config, "split": split, "revision": spec.revision or "main"}
    lineage |= {"commit": commit, "endpoint": constants.ENDPOINT}
    identity = {"hub": spec.hub, "config": spec.config, "split": split, "commit": commit}
    if limit is None:
        return _Source(label, identity, lineage, lambda: _hub_rows(spec, split, commit, label), _content_id, spec.hub)
    buffer = spec.shuffle.buffer if spec.shuffle else None
    lineage["streamed"] = {"shuffle_buffer": buffer} if buffer else True
    source = _Source(label, identity, lineage, lambda: iter(()), _content_id, spec.hub)
    source.stream = lambda matches, most: _hub_stream(spec, split, commit, label, matches, most)
    return source


def _commit(spec: Any, store: Path) -> str:
    """The commit that the recipe's revision names now; offline, the one it named when last resolved here."""
    from huggingface_hub import HfApi, constants

    revision = spec.revision or "main"
    if len(revision) == 40 and all(c in "0123456789abcdef" for c in revision):
        return revision
    refs_file = store / SOURCES / "refs.json"
    refs = json.loads(refs_file.read_text()) if refs_file.is_file() else {}
    key = f"{spec.hub}@{revision}"
    if _offline():
        if key not in refs:
            raise HubError(
                f"{key}: HF_HUB_OFFLINE is set and this revision was never resolved with this store - run once "
                "online, or pin prompts.revision to a commit whose data is in the Hugging Face cache"
            )
        return refs[key]
    with hub_errors(spec.hub, revision, constants.ENDPOINT, HubError, HUB_FIXES):
        commit = HfApi(token=hub_token()).dataset_info(spec.hub, revision=revision).sha
    if refs.get(key) != commit:
        write_json_atomic(refs_file, {**refs, key: commit})
    return commit


def _offline() -> bool:
    """Offline mode, as huggingface_hub and datasets read it (HF_HUB_OFFLINE, or datasets' HF_DATASETS_OFFLINE)."""
    from huggingface_hub import constants

    return bool(constants.HF_HUB_OFFLINE) or os.environ.get("HF_DATASETS_OFFLINE", "").upper() in (
        "1",
        "ON",
        "YES",
        "TRUE",
    )


def _load(spec: Any, split: str, commit: str, label: str, streaming: bool):
    import datasets
    from huggingface_hub import constants

    datasets.utils.logging.set_verbosity_error()
    datasets.disable_progress_bars()
    try:
        with hub_errors(spec.hub, commit, constants.ENDPOINT, HubError, HUB_FIXES):
            return datasets.load_dataset(
                spec.hub, spec.config, split=split, revision=commit, streaming=streaming, token=hub_token()
            )
    except (ValueError, FileNotFoundError) as exc:
        fix = f"check {spec.split_setting()}"
        if _offline():
            fix = "HF_HUB_OFFLINE is set and these rows are not in the cache: run once online"
        raise InputError(label, first_line(exc), fix=fix) from None


def _hub_rows(spec: Any, split: str, commit: str, label: str) -> Iterator[Row]:
    rows = _load(spec, split, commit, label, streaming=False)
    for number, row in enumerate(rows, 1):
        yield label, number, row


def _hub_stream(spec: Any, split: str, commit: str, label: str, matches, most: int | None) -> Iterator[Row]:
    rows = _load(spec, split, commit, label, streaming=True)
    if spec.where:
        rows = rows.filter(lambda row: matches(row, label, 0))
    if spec.shuffle:
        rows = rows.shuffle(seed=spec.shuffle.seed, buffer_size=spec.shuffle.buffer)
    if most is not None:
        rows = rows.take(most)
    for number, row in enumerate(rows, 1):
        yield f"{label} (streamed: row {number} of the selection)", number, row


_SOURCE_OF = {"path": _file_source, "hub": _hub_source, "version": _version_source}


# -- the selection and the conversion ----------------------------------------------------------------------------


def _converted(source: _Source, spec: Any, limit: int | None) -> Iterator[dict]:
    seen: dict[str, str] = {}
    repeats: dict[str, int] = {}
    for where, number, row in _selected(source, spec, limit):
        messages = _messages(row, spec, where, number)
        prompt_id = _prompt_id(row, spec, where, number, messages, source.default_id)
        if prompt_id in seen:
            if spec.id_column or "id" in row:
                raise InputError(where, f"duplicate id {prompt_id!r} (first at {seen[prompt_id]})", number, "id")
            repeats[prompt_id] = repeats.get(prompt_id, 1) + 1  # the same content again: the prompt filters drop it
            prompt_id = f"{prompt_id}-{repeats[prompt_id]}"
        seen[prompt_id] = f"row {number}"
        origin = row.get("source")
        yield {"id": prompt_id, "messages": messages, "source": origin if isinstance(origin, str) else source.name}


def _selected(source: _Source, spec: Any, limit: int | None) -> Iterator[Row]:
    """The rows that `where` keeps, shuffled when asked, at most `limit` of them."""
    if source.stream is not None:
        yield from source.stream(_matches(spec), limit)
        return
    matches = _matches(spec)
    if spec.shuffle is None:
        kept = 0
        for where, number, row in source.rows():
            if matches(row, where, number):
                yield where, number, row
                kept += 1
                if limit is not None and kept >= limit:
                    return
        return
    positions = [i for i, (where, number, row) in enumerate(source.rows()) if matches(row, where, number)]
    random.Random(spec.shuffle.seed).shuffle(positions)
    order = {position: rank for rank, position in enumerate(positions[:limit] if limit else positions)}
    picked: dict[int, Row] = {}
    for i, found in enumerate(source.rows()):
        if i in order:
            picked[order[i]] = found
    yield from (picked[rank] for rank in range(len(order)))


def _matches(spec: Any) -> Callable[[dict, str, int], bool]:
    conditions = {key: value if isinstance(value, list) else [value] for key, value in (spec.where or {}).items()}

    def matches(row: dict, where: str, number: int) -> bool:
        for column, values in conditions.items():
            if column not in row:
                raise _no_column(where, number, column, row, "prompts.where")
            if row[column] not in values:
                return False
        return True

    return matches


def _messages(row: dict, spec: Any, where: str, number: int) -> list:
    fix = "set prompts.column (text) or prompts.messages_column (a chat) to the column that holds the prompt"
    column = spec.messages_column or spec.column
    if column is None:
        column = next((name for name in ("messages", "prompt") if name in row), None)
        if column is None:
            raise _no_column(where, number, "prompt", row, "prompts.column", fix)
    if column not in row:
        raise _no_column(
            where, number, column, row, "prompts.messages_column" if spec.messages_column else "prompts.column"
        )
    value = row[column]
    if spec.messages_column and isinstance(value, str) and value.lstrip().startswith("["):
        try:
            value = json.loads(value)  # a chat stored as JSON text (a CSV cell)
        except json.JSONDecodeError as exc:
            raise InputError(where, f"not a JSON list of messages ({exc.msg})", number, column) from None
    if spec.drop_last_assistant and isinstance(value, list):
        while value and isinstance(value[-1], dict) and value[-1].get("role") == "assistant":
            value = value[:-1]
    chat_fix = (
        "set prompts.drop_last_assistant: true to cut each chat at its last user turn"
        if isinstance(value, list) and value and isinstance(value[-1], dict) and value[-1].get("role") == "assistant"
        else None
    )
    try:
        return chat_messages(value, where, number, column, fix=chat_fix)
    except InputError as exc:
        if chat_fix and "last message must be from the user" in str(exc):
            raise InputError(where, "the last message must be from the user", number, column, fix=chat_fix) from None
        raise


def _prompt_id(row: dict, spec: Any, where: str, number: int, messages: list, default: Callable) -> str:
    if spec.id_column:
        if spec.id_column not in row:
            raise _no_column(where, number, spec.id_column, row, "prompts.id_column")
        value = row[spec.id_column]
    else:
        value = row.get("id")
    if value is None or (isinstance(value, str) and not value.strip()):
        return default(number, messages)
    return str(value)


def _content_id(number: int, messages: list) -> str:
    """A prompt's id from its content: the same prompt gets the same id wherever it stands."""
    return content_hash(messages, 12)


def _no_column(where: str, number: int, column: str, row: dict, setting: str, fix: str = "") -> InputError:
    columns = ", ".join(sorted(map(str, row))) or "none"
    return InputError(
        where,
        f"no column {column!r} (the columns are: {columns})",
        number,
        fix=fix or f"check {setting} in the recipe",
    )


def _write(out: Path, rows: Iterator[dict], label: str) -> None:
    """Write the prompt file whole or not at all (a bad row raises before anything is in place)."""
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = out.with_name(f".{out.name}.{random.getrandbits(32):08x}.tmp")
    try:
        count = 0
        with tmp.open("w", encoding="utf-8") as handle:
            for row in rows:
                handle.write(json.dumps(row, ensure_ascii=False, default=str) + "\n")
                count += 1
        if not count:
            raise InputError(
                label, "no prompts selected", fix="the source is empty, or prompts.where keeps no row: check it"
            )
        tmp.replace(out)
    finally:
        tmp.unlink(missing_ok=True)
