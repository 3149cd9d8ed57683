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
from rlaif.core.names import check_version_id, is_version_id, name_problem
from rlaif.store.locks import hold, locked_folder, release, remove_unlocked_tmp
from rlaif.store.spill import RowSpill

TABLES = ("pairs", "generations", "judgments", "prompts", "rankings", "feedback")
BATCH_ROWS = 1024  # rows per batch when hashing or reading a table piece by piece


def versions_dir(store: str | Path) -> Path:
    return Path(store) / "versions"


def records(rows: list[Any]) -> list[dict]:
    """Rows as dicts: dataclass rows (rlaif.core.schema) converted, dicts as they are."""
    return [row if isinstance(row, dict) else asdict(row) for row in rows]


def _dumps(value: Any) -> str:
    """The canonical JSON of `content_hash`."""
    return json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False, default=str)


# How a run delivers its calls, not what they are: kept in the manifest's recipe, left out of the id,
# so the same recipe with other retry passes, concurrency or store folder gets the same id.
DELIVERY_SETTINGS = ("retries", "allow_incomplete", "store", "prices", "budget", "execution")
DELIVERY_ENGINE_SETTINGS = ("max_concurrency", "timeout_s", "max_retries", "rpm", "tpm", "batch", "batch_poll_s",
                            "max_model_len", "enable_prefix_caching", "gpu_memory_utilization", "tensor_parallel_size", "vllm_env")  # vLLM engine capacity and location


def hashed_recipe(recipe: Any) -> Any:
    """The part of a manifest's recipe that the version id hashes: all but the delivery settings.

    >>> hashed_recipe({"name": "d", "retries": {"passes": 9}, "store": "x", "judge": {"model": "m", "max_concurrency": 8}})
    {'name': 'd', 'judge': {'model': 'm'}}
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
        return {key: _without_delivery(item) for key, item in value.items() if key not in DELIVERY_ENGINE_SETTINGS}
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
        self._update(f'{{"parents":{_dumps(manifest.get("parents", []))},"recipe":{_dumps(hashed_recipe(manifest.get("recipe")))},"rows":{{')
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
    folder is built under a temporary name (`versions/.tmp-*`, whose lock file beside it this
    process holds while writing), every file and the folder fsynced, then renamed once complete
    and the versions folder fsynced; a commit killed half-way leaves a `.tmp-*` folder that the
    next run or commit removes (`remove_abandoned_commits`), never a listed version. created is
    False when a version with the same content already existed (the new files are then discarded).
    """
    if name_problem(name):  # a library caller's name must not escape STORE/versions either
        raise StoreError(f"dataset name {name_problem(name)}")
    remove_abandoned_commits(store)
    tmp, lock_fd = _new_tmp_folder(versions_dir(store), name)
    version_id = name
    try:
        digest = VersionDigest(manifest)
        for number, table in enumerate(sorted(TABLES)):
            _write_table(tmp / f"{table}.parquet", _parts(tables.get(table), table), digest, table)
            _fsync(tmp / f"{table}.parquet")
            if number == 0:
                _test_pause()
        version_id = f"{name}-{digest.hexdigest()}"
        target = versions_dir(store) / version_id
        if target.exists():
            _remove_tmp(tmp, lock_fd)
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
        _fsync(tmp / "manifest.json")
        _fsync(tmp)
        os.rename(tmp, target)
        _fsync(versions_dir(store))
        _remove_tmp(tmp, lock_fd)
    except OSError as exc:
        _remove_tmp(tmp, lock_fd)
        if (versions_dir(store) / version_id).exists():  # another process committed the same content first
            return version_id, False
        raise StoreError(f"could not write version {version_id} to {store}: {exc} - check that the store folder is writable") from None
    except BaseException:
        _remove_tmp(tmp, lock_fd)
        raise
    return version_id, True


PAUSE_IN_COMMIT = "RLAIF_TEST_PAUSE_IN_COMMIT"  # test hook: seconds to sleep after the first table is written


def _test_pause() -> None:
    """Test hook only (tests/test_kills.py kills a commit half-way): `RLAIF_TEST_PAUSE_IN_COMMIT=seconds`."""
    seconds = os.environ.get(PAUSE_IN_COMMIT)
    if seconds:
        time.sleep(float(seconds))


def _fsync(path: Path) -> None:
    """Flush a file's (or a folder's entries') data to disk."""
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _new_tmp_folder(folder: Path, name: str) -> tuple[Path, int]:
    """`folder/.tmp-<name>-XXXX/` with its lock `folder/.tmp-<name>-XXXX.lock` held; made under a lock on `folder`."""
    folder.mkdir(parents=True, exist_ok=True)
    with locked_folder(folder):
        tmp = Path(tempfile.mkdtemp(prefix=f".tmp-{name}-", dir=folder))
        return tmp, hold(_tmp_lock(tmp))


def _tmp_lock(tmp: Path) -> Path:
    return tmp.with_name(tmp.name + ".lock")


def _remove_tmp(tmp: Path, lock_fd: int) -> None:
    shutil.rmtree(tmp, ignore_errors=True)
    _tmp_lock(tmp).unlink(missing_ok=True)
    release(lock_fd)


def remove_abandoned_commits(store: str | Path) -> list[str]:
    """Remove the `versions/.tmp-*` folders of commits whose process is gone (their lock is free); returns their names.

    Folders of commits still running (their lock is held) are untouched, and so is any `.tmp-*`
    folder without a lock file (not made by `commit_tables`, e.g. a `datasets pull` under way).
    """
    folder = versions_dir(store)
    if not folder.is_dir():
        return []
    return remove_unlocked_tmp(folder)


def list_versions(store: str | Path) -> list[dict[str, Any]]:
    """Manifests of all versions, oldest first.

    A version whose manifest.json cannot be read (not JSON, not an object, no or another `id`)
    is listed as `{"id": <folder name>, "broken": <problem>}` instead of stopping the listing.
    """
    folder = versions_dir(store)
    if not folder.is_dir():
        return []
    manifests = []
    for path in folder.glob("*/manifest.json"):
        if path.parent.name.startswith("."):
            continue
        try:
            if not is_version_id(path.parent.name):
                raise _ManifestError(path.parent, "the folder's name is not a version id")
            if not _inside(folder, path.parent):
                raise _ManifestError(path.parent, f"a link out of {folder}, not a version of this store")
            manifests.append(_read_manifest(folder, path.parent.name))
        except _ManifestError as exc:
            where = "manifest.json: " if exc.path.name == "manifest.json" else ""
            manifests.append({"id": path.parent.name, "broken": where + exc.problem})
    return sorted(manifests, key=lambda m: (str(m.get("created_at", "")), str(m["id"])))


_JSON_TYPES = {list: "array", str: "string", int: "number", float: "number", bool: "boolean", type(None): "null"}


class _ManifestError(StoreError):
    def __init__(self, path: Path, problem: str) -> None:
        self.path, self.problem = path, problem
        super().__init__(
            f"{path}: {problem} - the version is damaged: delete its folder and make it again "
            "(`rlaif run` the recipe, or `rlaif datasets pull` it from the Hub)"
        )


def _read_manifest(folder: Path, version_id: str) -> dict[str, Any]:
    """The manifest of folder/version_id, checked: a JSON object whose `id` is the folder's name."""
    path = folder / version_id / "manifest.json"
    try:
        manifest = json.loads(path.read_text(encoding="utf-8"))
    except UnicodeDecodeError as exc:
        raise _ManifestError(path, f"not UTF-8 text (byte offset {exc.start})") from None
    except json.JSONDecodeError as exc:
        raise _ManifestError(path, f"not valid JSON ({exc.msg}, line {exc.lineno} column {exc.colno})") from None
    except OSError as exc:
        raise _ManifestError(path, f"cannot be read ({exc.strerror or exc})") from None
    if not isinstance(manifest, dict):
        raise _ManifestError(path, f"a JSON {_JSON_TYPES.get(type(manifest), type(manifest).__name__)}, not an object")
    if "id" not in manifest:
        raise _ManifestError(path, "no `id` key")
    if manifest["id"] != version_id:
        raise _ManifestError(path, f"its `id` is {str(manifest['id'])[:80]!r}, not the folder's name")
    return manifest


def _known(store: str | Path) -> str:
    known = [m["id"] for m in list_versions(store)]
    if not known:
        return "the store is empty - run `rlaif run recipes/demo.yaml` first"
    return f"known versions: {', '.join(known[-5:])}" + (f" (and {len(known) - 5} more: `rlaif datasets list`)" if len(known) > 5 else "")


def version_path(store: str | Path, version_id: str) -> Path:
    """The folder of a known version of the store; StoreError naming the id and the known ones otherwise.

    The id must have the form `<name>-<12 hex>` (so no '/', '..' or absolute path), and the folder
    must lie directly inside STORE/versions once symlinks are resolved.
    """
    try:
        check_version_id(version_id)
    except ValueError as exc:
        raise StoreError(f"no version {_shown_id(version_id)} in {store}: {exc} - {_known(store)}") from None
    folder = versions_dir(store)
    path = folder / version_id
    if not (path / "manifest.json").is_file():
        raise StoreError(f"no version {version_id!r} in {store} - {_known(store)}")
    if not _inside(folder, path):
        raise StoreError(f"{path}: a link out of {folder} is not a version of this store - remove it and pull or make the version here")
    return path


def _inside(folder: Path, path: Path) -> bool:
    """Whether the version folder `path` and its manifest.json lie directly in `folder`, links resolved."""
    real = path.resolve()
    return real.parent == folder.resolve() and (path / "manifest.json").resolve().parent == real


def _shown_id(version_id: object) -> str:
    text = repr(version_id)
    return text if len(text) <= 90 else text[:87] + "..."


def load_manifest(store: str | Path, version_id: str) -> dict[str, Any]:
    """The manifest of a known version; StoreError naming the file and what to do when it is damaged."""
    path = version_path(store, version_id)
    return _read_manifest(path.parent, version_id)


def read_table(store: str | Path, version_id: str, table: str = "pairs") -> list[dict]:
    return pq.read_table(version_path(store, version_id) / f"{table}.parquet").to_pylist()
