"""Dataset versions: a folder of Parquet tables plus manifest.json, committed atomically.

The id is `<name>-<12 hex>` where the hex is a hash of the content (the rows and the resolved
recipe), so the same content always gets the same id and committing it again is a no-op.
"""

from __future__ import annotations

import hashlib
import json
import os
import time
from collections.abc import Iterator, Mapping
from dataclasses import asdict
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Union

import pyarrow as pa
import pyarrow.parquet as pq

from rlaif import __version__
from rlaif.core.errors import StoreError
from rlaif.core.names import name_problem
from rlaif.store import artifacts
from rlaif.store.spill import RowSpill

TABLES = ("pairs", "generations", "judgments", "prompts", "rankings", "feedback")
BATCH_ROWS = 1024  # rows per batch when hashing or reading a table piece by piece


VERSIONS = artifacts.ArtifactKind(
    subfolder="versions",
    noun="version",
    remake="make it again (`rlaif run` the recipe, or `rlaif datasets pull` it from the Hub)",
    list_command="rlaif datasets list",
    empty="the store is empty - run `rlaif run recipes/demo.yaml` first",
)


def versions_dir(store: str | Path) -> Path:
    return VERSIONS.folder(store)


def records(rows: list[Any]) -> list[dict]:
    """Rows as dicts: dataclass rows (rlaif.core.schema) converted, dicts as they are."""
    return [row if isinstance(row, dict) else asdict(row) for row in rows]


def _dumps(value: Any) -> str:
    """The canonical JSON of `content_hash`."""
    return json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False, default=str)


# How a run delivers its calls, not what they are: kept in the manifest's recipe, left out of the id,
# so the same recipe with other retry passes, concurrency or store folder gets the same id.
DELIVERY_SETTINGS = ("retries", "allow_incomplete", "min_verdict_share", "store", "prices", "budget", "execution")
DELIVERY_ENGINE_SETTINGS = (
    "max_concurrency",
    "timeout_s",
    "max_retries",
    "stop_after_failures",
    "rpm",
    "tpm",
    "batch",
    "batch_poll_s",
    "max_model_len",
    "enable_prefix_caching",
    "gpu_memory_utilization",
    "tensor_parallel_size",
    "vllm_env",
)  # vLLM engine capacity and location
# Speed only, left out of the id later than the above: hashed as null whatever its value, so the ids of recipes that
# leave it unset are those they had before (torch's CPU threads: the same generations with any count)
SPEED_ENGINE_SETTINGS = ("threads",)


def hashed_recipe(recipe: Any) -> Any:
    """The part of a manifest's recipe that the version id hashes: all but the delivery settings.

    >>> hashed_recipe({"name": "d", "retries": {"passes": 9}, "store": "x", "judge": {"model": "m", "max_concurrency": 8}})
    {'name': 'd', 'judge': {'model': 'm'}}
    >>> hashed_recipe({"judge": {"model": "m", "threads": 4}})
    {'judge': {'model': 'm', 'threads': None}}
    """
    if not isinstance(recipe, dict):
        return recipe
    kept = {key: value for key, value in recipe.items() if key not in DELIVERY_SETTINGS}
    for key in ("policies", "judge"):
        if key in kept:
            kept[key] = _without_delivery(kept[key])
    return kept


def _without_delivery(value: Any) -> Any:
    if isinstance(value, list):
        return [_without_delivery(item) for item in value]
    if isinstance(value, dict):
        return {
            key: None if key in SPEED_ENGINE_SETTINGS else _without_delivery(item)
            for key, item in value.items()
            if key not in DELIVERY_ENGINE_SETTINGS
        }
    return value


class VersionDigest:
    """The 12-hex content hash of a version, fed table by table and row batch by row batch.

    It hashes the same text as `content_hash({"rows": {table: rows}, "recipe": hashed_recipe(...), "parents": ...}, 12)`
    (keys sorted: parents, recipe, rows; tables by name; each row dumped alone and joined by ","),
    without ever holding all rows: feed `TABLES` in sorted order, each with `table(name)` then
    `rows(batch)` any number of times.
    """

    def __init__(self, manifest: dict[str, Any]) -> None:
        self._hash = hashlib.sha256()
        self._update(
            f'{{"parents":{_dumps(manifest.get("parents", []))},"recipe":{_dumps(hashed_recipe(manifest.get("recipe")))},"rows":{{'
        )
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


def folder_digest(folder: str | Path, manifest: dict[str, Any]) -> str:
    """The content hash of a version folder's Parquet files, read batch by batch (what a commit hashed).

    Hashing the rows as they read back from Parquet (not the Python objects that went in) lets
    anyone recompute the id from the stored files (`rlaif datasets pull` verifies it that way).
    """
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
    rows = records(source)
    if not rows:
        return iter(())
    try:
        return iter([pa.Table.from_pylist(rows)])
    except (pa.ArrowException, TypeError) as exc:
        raise StoreError(
            f"table {name}: rows cannot be stored ({exc}) - every row's fields need consistent types"
        ) from None


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


def commit_tables(
    store: str | Path, name: str, tables: Mapping[str, TableSource], manifest: dict[str, Any]
) -> tuple[str, bool]:
    """Write a version atomically, table by table; returns (id, created).

    Each table is a list of rows (dicts or dataclasses) or a `RowSpill` written during the run;
    spilled tables are written and hashed part by part, so memory is bounded by a part. The
    folder is built under a temporary name (`versions/.tmp-*`, whose lock file beside it this
    process holds while writing), every file and the folder fsynced, then renamed once complete
    and the versions folder fsynced (rlaif.store.artifacts); a commit killed half-way leaves a `.tmp-*`
    folder that the next run or commit removes (`remove_abandoned_commits`), never a listed version.
    created is False when a version with the same content already existed (the new files are then discarded).
    """
    if name_problem(name):  # a library caller's name must not escape STORE/versions either
        raise StoreError(f"dataset name {name_problem(name)}")
    workdir = artifacts.new_workdir(VERSIONS, store, name)
    with artifacts.discarded_on_error(VERSIONS, store, workdir, name):
        digest = VersionDigest(manifest)
        for number, table in enumerate(sorted(TABLES)):
            _write_table(workdir / f"{table}.parquet", _parts(tables.get(table), table), digest, table)
            if number == 0:
                _test_pause()
    version_id = f"{name}-{digest.hexdigest()}"
    full = {
        "id": version_id,
        "name": name,
        "created_at": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        "parents": [],
        "package_version": __version__,
        **manifest,
    }
    _, created = artifacts.commit(
        VERSIONS, store, version_id, workdir, write=lambda folder: artifacts.write_manifest(folder, full)
    )
    return version_id, created


PAUSE_IN_COMMIT = "RLAIF_TEST_PAUSE_IN_COMMIT"  # test hook: seconds to sleep after the first table is written


def _test_pause() -> None:
    """Test hook only (tests/test_kills.py kills a commit half-way): `RLAIF_TEST_PAUSE_IN_COMMIT=seconds`."""
    seconds = os.environ.get(PAUSE_IN_COMMIT)
    if seconds:
        time.sleep(float(seconds))


def remove_abandoned_commits(store: str | Path) -> list[str]:
    """Remove the `versions/.tmp-*` folders of commits whose process is gone (their lock is free); returns their names.

    Folders of commits still running (their lock is held) are untouched, and so is any `.tmp-*`
    folder without a lock file (not made by `commit_tables`, e.g. a `datasets pull` under way).
    """
    return artifacts.remove_abandoned(VERSIONS, store)


def list_versions(store: str | Path) -> list[dict[str, Any]]:
    """Manifests of all versions, oldest first.

    A version whose manifest.json cannot be read (missing, not JSON, not an object, no or another `id`, a link
    out of the store) is listed as `{"id": <folder name>, "broken": <problem>}` instead of stopping the listing.
    """
    return artifacts.list_manifests(VERSIONS, store)


def version_path(store: str | Path, version_id: str) -> Path:
    """The folder of a known version of the store; StoreError naming the id and the known ones otherwise.

    The id must have the form `<name>-<12 hex>` (so no '/', '..' or absolute path), and the folder
    must lie directly inside STORE/versions once symlinks are resolved.
    """
    return artifacts.artifact_path(VERSIONS, store, version_id)


def load_manifest(store: str | Path, version_id: str) -> dict[str, Any]:
    """The manifest of a known version; StoreError naming the file and what to do when it is damaged."""
    return artifacts.load_manifest(VERSIONS, store, version_id)


def read_table(store: str | Path, version_id: str, table: str = "pairs") -> list[dict]:
    return pq.read_table(version_path(store, version_id) / f"{table}.parquet").to_pylist()
