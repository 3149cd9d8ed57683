"""Dataset versions: a folder of Parquet tables plus manifest.json, committed atomically.

The id is `<name>-<12 hex>` where the hex is a hash of the content (the rows and the resolved
recipe), so the same content always gets the same id and committing it again is a no-op.
"""

from __future__ import annotations

import json
import os
import shutil
import tempfile
from dataclasses import asdict
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq

from rlaif import __version__
from rlaif.errors import StoreError
from rlaif.schema import content_hash

TABLES = ("pairs", "generations", "judgments", "prompts", "rankings", "feedback")


def default_store() -> Path:
    return Path(os.environ.get("RLAIF_STORE", "data/store"))


def versions_dir(store: str | Path) -> Path:
    return Path(store) / "versions"


def _rows(records: list[Any]) -> list[dict]:
    return [record if isinstance(record, dict) else asdict(record) for record in records]


def _arrow(rows: list[dict]) -> pa.Table:
    return pa.Table.from_pylist(rows) if rows else pa.table({})


def version_digest(tables: dict[str, pa.Table], manifest: dict[str, Any]) -> str:
    """The 12-hex content hash of a version id, from its tables as Arrow stores them.

    Hashing the rows as they read back from Parquet (not the Python objects that went in) lets
    anyone recompute the id from the stored files (`rlaif datasets pull` verifies it that way);
    for rows that round-trip exactly through Arrow it equals hashing the rows themselves.

    >>> version_digest({"pairs": _arrow([{"a": 1}])}, {"recipe": {}}) == version_digest({"pairs": _arrow([{"a": 1}]), "feedback": _arrow([])}, {"recipe": {}})
    True
    """
    rows = {name: tables[name].to_pylist() if name in tables else [] for name in TABLES}
    return content_hash({"rows": rows, "recipe": manifest.get("recipe"), "parents": manifest.get("parents", [])}, 12)


def commit_version(store: str | Path, name: str, tables: dict[str, list[Any]], manifest: dict[str, Any]) -> tuple[str, bool]:
    """Write a version atomically; returns (id, created). created is False when it already existed."""
    arrow = {table: _arrow(_rows(tables.get(table, []))) for table in TABLES}
    digest = version_digest(arrow, manifest)
    version_id = f"{name}-{digest}"
    target = versions_dir(store) / version_id
    if target.exists():
        return version_id, False
    versions_dir(store).mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".tmp-{version_id}-", dir=versions_dir(store)))
    try:
        for table, arrow_table in arrow.items():
            pq.write_table(arrow_table, tmp / f"{table}.parquet")
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
        if target.exists():  # another process committed the same content first
            return version_id, False
        raise StoreError(f"could not write version {version_id} to {store}: {exc} - check that the store folder is writable") from None
    return version_id, True


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
