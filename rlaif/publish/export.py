"""Export a version in one trainer format: a self-contained folder that `datasets.load_dataset`
reads as is (locally or once uploaded to the Hub)::

    OUT/README.md                              the dataset card (front matter points at data/)
    OUT/data/train-00000-of-00001.parquet      the rows (see rlaif.store.formats)

The folder is written to a temporary sibling and renamed into place, so a failed export leaves
nothing half-written. An existing OUT is replaced only when it is empty or is itself an earlier
rlaif export (nothing but README.md with `rlaif` front matter and data/*.parquet); any other
non-empty folder is refused, so an export never deletes files it did not write.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import tempfile
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import yaml

from rlaif.core.errors import StoreError
from rlaif.publish.dataset_card import render_card
from rlaif.store.atomic import shareable, write_atomic
from rlaif.store.formats import build_rows, empty_message
from rlaif.store.rows import sft_selection
from rlaif.store.versions import load_manifest

DATA_FILE = "data/train-00000-of-00001.parquet"


def is_rlaif_export(folder: Path) -> bool:
    """True when `folder` holds nothing but an earlier rlaif export (safe to replace)."""
    entries = {entry.name for entry in folder.iterdir()}
    if not entries <= {"README.md", "data"} or "README.md" not in entries:
        return False
    data = folder / "data"
    if data.exists() and not (data.is_dir() and all(f.is_file() and f.suffix == ".parquet" for f in data.iterdir())):
        return False
    text = (folder / "README.md").read_text(encoding="utf-8", errors="replace")
    if not text.startswith("---\n") or "\n---\n" not in text[4:]:
        return False
    try:
        meta = yaml.safe_load(text[4 : text.index("\n---\n", 4)])
    except yaml.YAMLError:
        return False
    return isinstance(meta, dict) and isinstance(meta.get("rlaif"), dict) and "version" in meta["rlaif"]


def load_evaluation(path: str | Path) -> dict:
    """An `rlaif eval-judge` result file (STORE/evals/*.json)."""
    try:
        data = json.loads(Path(path).read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise StoreError(
            f"{path}: cannot read the evaluation ({exc}) - pass a JSON file that `rlaif eval-judge` wrote under STORE/evals/"
        ) from None
    if not isinstance(data, dict):
        raise StoreError(
            f"{path}: an evaluation must be a JSON object - pass a file that `rlaif eval-judge` wrote under STORE/evals/"
        )
    return data


def _check_target(out: Path) -> None:
    if out.exists() and not out.is_dir():
        raise StoreError(f"{out} exists and is not a folder - choose a new or empty folder for --out")
    if out.is_dir() and any(out.iterdir()) and not is_rlaif_export(out):
        raise StoreError(
            f"{out} is not empty and is not an earlier rlaif export - choose a new or empty folder for --out "
            "(an earlier export there would be replaced; other files are never deleted)"
        )


def _move_into_place(tmp: Path, out: Path) -> None:
    """Rename tmp to out; an earlier export at out is swapped out first and then deleted."""
    old = None
    if out.is_dir() and any(out.iterdir()):
        old = Path(tempfile.mkdtemp(prefix=f".old-{out.name}-", dir=out.parent))
        os.rename(out, old / out.name)
    elif out.is_dir():
        out.rmdir()
    os.rename(tmp, out)
    if old is not None:
        shutil.rmtree(old, ignore_errors=True)


def export_version(
    store: str | Path,
    version_id: str,
    fmt: str,
    out_dir: str | Path,
    style: str = "conversational",
    license: str | None = None,
    evaluation: dict | list | None = None,
) -> Path:
    """Write `version_id` in format `fmt` (and `style`) with its card to `out_dir`; returns it.

    `license` goes into the card (default: the recipe's `license`, else "other" with a note);
    `evaluation` is an `rlaif eval-judge` result (or a list) to report (default: the manifest's `eval`).
    Raises StoreError for an unknown version, format or style, a version with no rows for the
    format, or an `out_dir` that is neither new, empty, nor an earlier rlaif export.
    """
    manifest = load_manifest(store, version_id)  # first: a clear StoreError for an unknown or damaged version
    rows, source = build_rows(store, version_id, fmt, style)
    if not rows:
        raise StoreError(empty_message(version_id, fmt))
    out = Path(out_dir)
    _check_target(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = shareable(tempfile.mkdtemp(prefix=f".tmp-{out.name}-", dir=out.parent))  # the umask's, not 0700
    try:
        (tmp / "data").mkdir()
        table = pa.Table.from_pylist(rows)
        pq.write_table(table, tmp / DATA_FILE)
        data_sha256 = hashlib.sha256((tmp / DATA_FILE).read_bytes()).hexdigest()
        sft = sft_selection(store, version_id, len(rows)) if fmt == "sft" else None
        card = render_card(
            manifest, fmt, style, len(rows), table.column_names, source, license, evaluation, data_sha256, sft=sft
        )
        write_atomic(tmp / "README.md", card)
        _move_into_place(tmp, out)
    except OSError as exc:
        raise StoreError(f"could not write the export to {out}: {exc} - check that the folder is writable") from None
    finally:
        shutil.rmtree(tmp, ignore_errors=True)  # gone already after a successful rename
    return out
