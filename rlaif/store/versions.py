"""Dataset versions: a folder of Parquet tables plus manifest.json, committed atomically.

The id is `<name>-<12 hex>` where the hex is a hash of the content (the rows and the resolved
recipe), so the same content always gets the same id and committing it again is a no-op.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import tempfile
from collections.abc import Iterator, Mapping
from dataclasses import asdict
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Union

import pyarrow as pa
import pyarrow.parquet as pq

from rlaif import __version__
from rlaif.errors import StoreError
from rlaif.schema import content_hash
from rlaif.store.spill import RowSpill

TABLES = ("pairs", "generations", "judgments", "prompts", "rankings", "feedback")
BATCH_ROWS = 1024  # rows per batch when hashing or reading a table piece by piece


def default_store() -> Path:
    return Path(os.environ.get("RLAIF_STORE", "data/store"))


def versions_dir(store: str | Path) -> Path:
    return Path(store) / "versions"


def _rows(records: list[Any]) -> list[dict]:
    return [record if isinstance(record, dict) else asdict(record) for record in records]


def _arrow(rows: list[dict]) -> pa.Table:
    return pa.Table.from_pylist(rows) if rows else pa.table({})


def _dumps(value: Any) -> str:
    """The canonical JSON of `content_hash`."""
    return json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False, default=str)


class VersionDigest:
    """The 12-hex content hash of a version, fed table by table and row batch by row batch.

    It hashes the same text as `content_hash({"rows": {table: rows}, "recipe": ..., "parents": ...}, 12)`
    (keys sorted: parents, recipe, rows; tables by name; each row dumped alone and joined by ","),
    without ever holding all rows: feed `TABLES` in sorted order, each with `table(name)` then
    `rows(batch)` any number of times.
    """

    def __init__(self, manifest: dict[str, Any]) -> None:
        self._hash = hashlib.sha256()
        self._update(f'{{"parents":{_dumps(manifest.get("parents", []))},"recipe":{_dumps(manifest.get("recipe"))},"rows":{{')
        self._tables = 0
        self._open = False

    def _update(self, text: str) -> None:
        self._hash.update(text.encode())

    def table(self, name: str) -> None:
        self._close_table()
        self._update(("," if self._tables else "") + _dumps(name) + ":[")
        self._tables += 1
        self._open, self._rows = True, 0

    def rows(self, rows: list[dict]) -> None:
        if rows:
            self._update(("," if self._rows else "") + ",".join(_dumps(row) for row in rows))
            self._rows += len(rows)

    def _close_table(self) -> None:
        if self._open:
            self._update("]")
            self._open = False

    def hexdigest(self) -> str:
        self._close_table()
        self._update("}}")
        return self._hash.hexdigest()[:12]


def version_digest(tables: dict[str, pa.Table], manifest: dict[str, Any]) -> str:
    """The 12-hex content hash of a version id, from its tables as Arrow stores them.

    Hashing the rows as they read back from Parquet (not the Python objects that went in) lets
    anyone recompute the id from the stored files (`rlaif datasets pull` verifies it that way);
    for rows that round-trip exactly through Arrow it equals hashing the rows themselves.
    Rows are hashed in batches of 1024, never all at once.

    >>> version_digest({"pairs": _arrow([{"a": 1}])}, {"recipe": {}}) == version_digest({"pairs": _arrow([{"a": 1}]), "feedback": _arrow([])}, {"recipe": {}})
    True
    >>> version_digest({"pairs": _arrow([{"a": 1}])}, {"recipe": {}}) == content_hash({"rows": {**{t: [] for t in TABLES}, "pairs": [{"a": 1}]}, "recipe": {}, "parents": []}, 12)
    True
    """
    digest = VersionDigest(manifest)
    for name in sorted(TABLES):
        digest.table(name)
        if name in tables:
            for batch in tables[name].to_batches(max_chunksize=BATCH_ROWS):
                digest.rows(batch.to_pylist())
    return digest.hexdigest()


def folder_digest(folder: str | Path, manifest: dict[str, Any]) -> str:
    """`version_digest` of a version folder's Parquet files, read batch by batch."""
    digest = VersionDigest(manifest)
    for name in sorted(TABLES):
        digest.table(name)
        path = Path(folder) / f"{name}.parquet"
        if path.is_file():
            for batch in pq.ParquetFile(path).iter_batches(batch_size=BATCH_ROWS):
                digest.rows(batch.to_pylist())
    return digest.hexdigest()


TableSource = Union[list[Any], RowSpill]


def _parts(source: TableSource | None, name: str) -> Iterator[pa.Table]:
    """A table's content as Arrow tables of one schema: a list of rows is one part."""
    if source is None:
        return iter(())
    if isinstance(source, RowSpill):
        return source.tables()
    rows = _rows(source)
    if not rows:
        return iter(())
    try:
        return iter([pa.Table.from_pylist(rows)])
    except (pa.ArrowException, TypeError) as exc:
        raise StoreError(f"table {name}: rows cannot be stored ({exc}) - every row's fields need consistent types") from None


def _write_table(path: Path, parts: Iterator[pa.Table], digest: VersionDigest, name: str) -> None:
    """Write one table's parts to a Parquet file, hashing its rows as they go."""
    digest.table(name)
    writer = None
    try:
        for part in parts:
            if writer is None:
                writer = pq.ParquetWriter(path, part.schema)
            writer.write_table(part)
            for batch in part.to_batches(max_chunksize=BATCH_ROWS):
                digest.rows(batch.to_pylist())
    finally:
        if writer is not None:
            writer.close()
    if writer is None:
        pq.write_table(pa.table({}), path)


def commit_tables(store: str | Path, name: str, tables: Mapping[str, TableSource], manifest: dict[str, Any]) -> tuple[str, bool]:
    """Write a version atomically, table by table; returns (id, created).

    Each table is a list of rows (dicts or dataclasses) or a `RowSpill` written during the run;
    spilled tables are written and hashed part by part, so memory is bounded by a part. The
    folder is built under a temporary name and renamed once complete; created is False when
    a version with the same content already existed (the new files are then discarded).
    """
    versions_dir(store).mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".tmp-{name}-", dir=versions_dir(store)))
    version_id = name
    try:
        digest = VersionDigest(manifest)
        for table in sorted(TABLES):
            _write_table(tmp / f"{table}.parquet", _parts(tables.get(table), table), digest, table)
        version_id = f"{name}-{digest.hexdigest()}"
        target = versions_dir(store) / version_id
        if target.exists():
            shutil.rmtree(tmp, ignore_errors=True)
            return version_id, False
        full = {
            "id": version_id,
            "name": name,
            "created_at": datetime.now(timezone.utc).isoformat(timespec="seconds"),
            "parents": [],
            "package_version": __version__,
            **manifest,
        }
        (tmp / "manifest.json").write_text(json.dumps(full, indent=2, ensure_ascii=False, default=str) + "\n")
        os.rename(tmp, target)
    except OSError as exc:
        shutil.rmtree(tmp, ignore_errors=True)
        if (versions_dir(store) / version_id).exists():  # another process committed the same content first
            return version_id, False
        raise StoreError(f"could not write version {version_id} to {store}: {exc} - check that the store folder is writable") from None
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return version_id, True


def commit_version(store: str | Path, name: str, tables: dict[str, list[Any]], manifest: dict[str, Any]) -> tuple[str, bool]:
    """Write a version atomically from lists of rows; returns (id, created). created is False when it already existed."""
    return commit_tables(store, name, tables, manifest)


def list_versions(store: str | Path) -> list[dict[str, Any]]:
    """Manifests of all versions, oldest first."""
    folder = versions_dir(store)
    if not folder.is_dir():
        return []
    manifests = [json.loads(p.read_text()) for p in folder.glob("*/manifest.json") if not p.parent.name.startswith(".")]
    return sorted(manifests, key=lambda m: (m.get("created_at", ""), m["id"]))


def version_path(store: str | Path, version_id: str) -> Path:
    path = versions_dir(store) / version_id
    if not (path / "manifest.json").is_file():
        known = [m["id"] for m in list_versions(store)]
        hint = f"known versions: {', '.join(known[-5:])}" if known else "the store is empty - run `rlaif run recipes/demo.yaml` first"
        raise StoreError(f"no version {version_id!r} in {store} - {hint}")
    return path


def load_manifest(store: str | Path, version_id: str) -> dict[str, Any]:
    return json.loads((version_path(store, version_id) / "manifest.json").read_text())


def read_table(store: str | Path, version_id: str, table: str = "pairs") -> list[dict]:
    return pq.read_table(version_path(store, version_id) / f"{table}.parquet").to_pylist()
