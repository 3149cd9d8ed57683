"""The one implementation of an immutable, content-addressed folder in the store.

Dataset versions (`STORE/versions/<id>/`, rlaif.store.versions) and trained models
(`STORE/models/<id>/`, rlaif.store.models) are both such artifacts: a folder named by an id of
the form `<name>-<12 hex>` (rlaif.core.names), holding a `manifest.json` whose `id` is that name,
written once and never changed. An `ArtifactKind` says which folder and how messages name one;
the functions here do the rest, the same way for every kind:

- `new_workdir`: a temporary folder `STORE/<kind>/.tmp-<label>-XXXX/` whose lock file
  (`.tmp-<label>-XXXX.lock`, rlaif.store.locks) this process holds until `commit` or
  `discard_workdir`; folders of owners that died are removed first (`remove_abandoned`).
- `commit`: fsync every file and folder, rename the folder into place in one step, fsync the
  kind's folder. An artifact already there (committed first, here or by a concurrent process)
  wins: ours is discarded and the existing one returned.
- `find` / `artifact_path` / `load_manifest`: a complete artifact lying directly inside the
  kind's folder once links are resolved; its manifest checked (UTF-8, JSON, an object, its `id`),
  with errors naming the file and the fix.
- `list_manifests`: every manifest, a damaged artifact listed as `{"id", "broken"}`.
"""

from __future__ import annotations

import json
import os
import shutil
import tempfile
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from rlaif.core.errors import StoreError
from rlaif.core.names import ID_RULE, is_version_id, short_repr
from rlaif.store.atomic import shareable
from rlaif.store.locks import hold, locked_folder, release, remove_unlocked_tmp
from rlaif.store.space import folder_size, out_of_space, space_error

MANIFEST = "manifest.json"
_HELD: dict[str, int] = {}  # workdir -> the fd of its lock, held by this process until commit or discard


@dataclass(frozen=True)
class ArtifactKind:
    """Which artifacts: where they live and how messages name them and say what to do."""

    subfolder: str  # the artifacts are STORE/<subfolder>/<id>/
    noun: str  # "version": how messages name one
    remake: str  # what makes a damaged one again, after "delete its folder and "
    list_command: str  # the command that lists them (given --store)
    empty: str  # what to do in a store without any ("{store}" is replaced by the store)
    broken_in_full: bool = False  # a listing's `broken` is the whole message (else the problem alone)

    def folder(self, store: str | Path) -> Path:
        return Path(store) / self.subfolder


# ---------------------------------------------------------------- ids, messages


def check_id(kind: ArtifactKind, store: str | Path, artifact_id: object) -> str:
    """`artifact_id` if it has the form of an id (`<name>-<12 hex>`: no '/', '..' or absolute path), else StoreError."""
    if not is_version_id(artifact_id):
        rule = ID_RULE.replace("version", kind.noun)
        raise StoreError(
            f"{short_repr(artifact_id)} is not a {kind.noun} id ({rule}) - `{kind.list_command} --store {store}` lists the {kind.noun}s"
        )
    return artifact_id  # type: ignore[return-value]


def known(kind: ArtifactKind, store: str | Path) -> str:
    """The tail of a "no such id" error: the newest ids of the store, or what to do when it has none."""
    ids = [m["id"] for m in list_manifests(kind, store)]
    if not ids:
        return kind.empty.replace("{store}", str(store))
    more = f" (and {len(ids) - 5} more: `{kind.list_command} --store {store}`)" if len(ids) > 5 else ""
    return f"known {kind.noun}s: {', '.join(ids[-5:])}{more}"


class ArtifactError(StoreError):
    """One artifact's folder or file is not what it must be: `path`, `problem`, and the fix in the message."""

    def __init__(self, path: Path, problem: str, fix: str) -> None:
        self.path, self.problem = path, problem
        super().__init__(f"{path}: {problem} - {fix}")


def damaged(kind: ArtifactKind, path: Path, problem: str, folder: Path | None = None) -> ArtifactError:
    """The error of a damaged artifact: `path` (its folder, or a file in `folder`, by default path's parent) and what is wrong."""
    folder = path.parent if folder is None else folder
    return ArtifactError(path, problem, f"the {kind.noun} is damaged: delete its folder ({folder}) and {kind.remake}")


def _link_out(kind: ArtifactKind, folder: Path, path: Path) -> ArtifactError:
    return ArtifactError(
        path, f"a link out of {folder}, not a {kind.noun} of this store", f"remove it and {kind.remake}"
    )


def inside(folder: Path, path: Path) -> bool:
    """Whether the artifact folder `path` and its manifest.json lie directly in `folder`, links resolved."""
    real = path.resolve()
    return real.parent == folder.resolve() and (path / MANIFEST).resolve().parent == real


# ---------------------------------------------------------------- reading


def find(kind: ArtifactKind, store: str | Path, artifact_id: object) -> Path | None:
    """The folder of a complete committed artifact, or None (also for a text that is no id)."""
    if not is_version_id(artifact_id):
        return None
    path = kind.folder(store) / artifact_id  # type: ignore[operator]
    if not (path / MANIFEST).is_file() or not inside(kind.folder(store), path):
        return None
    return path


def _checked_folder(kind: ArtifactKind, folder: Path, path: Path) -> Path:
    """`path` (an existing folder in `folder`) if it has a manifest and lies inside `folder`; ArtifactError otherwise."""
    if not (path / MANIFEST).is_file():
        raise damaged(kind, path / MANIFEST, "missing")
    if not inside(folder, path):
        raise _link_out(kind, folder, path)
    return path


def artifact_path(kind: ArtifactKind, store: str | Path, artifact_id: str) -> Path:
    """The folder of a known artifact of the store; StoreError naming the id and the known ones otherwise,
    ArtifactError for a folder without manifest or a link out of the store."""
    try:
        check_id(kind, store, artifact_id)
    except StoreError as exc:
        raise StoreError(f"no {kind.noun} {short_repr(artifact_id)} in {store}: {exc}; {known(kind, store)}") from None
    folder = kind.folder(store)
    path = folder / artifact_id
    if not (path / MANIFEST).is_file() and not path.is_dir():
        raise StoreError(f"no {kind.noun} {artifact_id!r} in {store} - {known(kind, store)}")
    return _checked_folder(kind, folder, path)


_JSON_TYPES = {list: "array", str: "string", int: "number", float: "number", bool: "boolean", type(None): "null"}


def read_manifest(kind: ArtifactKind, path: Path) -> dict[str, Any]:
    """The manifest of the artifact folder `path`, checked: UTF-8 JSON, an object, whose `id` is the folder's name."""
    file = path / MANIFEST
    try:
        manifest = json.loads(file.read_text(encoding="utf-8"))
    except UnicodeDecodeError as exc:
        raise damaged(kind, file, f"not UTF-8 text (byte offset {exc.start})") from None
    except json.JSONDecodeError as exc:
        raise damaged(kind, file, f"not valid JSON ({exc.msg}, line {exc.lineno} column {exc.colno})") from None
    except OSError as exc:
        raise damaged(kind, file, f"cannot be read ({exc.strerror or exc})") from None
    if not isinstance(manifest, dict):
        shown = "array" if isinstance(manifest, list) else _JSON_TYPES.get(type(manifest), type(manifest).__name__)
        raise damaged(kind, file, f"a JSON {shown}, not an object")
    if "id" not in manifest:
        raise damaged(kind, file, "no `id` key")
    if manifest["id"] != path.name:
        raise damaged(kind, file, f"its `id` is {str(manifest['id'])[:80]!r}, not the folder's name")
    return manifest


def load_manifest(kind: ArtifactKind, store: str | Path, artifact_id: str) -> dict[str, Any]:
    """The checked manifest of a known artifact (see `artifact_path` and `read_manifest`)."""
    return read_manifest(kind, artifact_path(kind, store, artifact_id))


def list_manifests(kind: ArtifactKind, store: str | Path) -> list[dict[str, Any]]:
    """Manifests of all artifacts, oldest first; one that cannot be read (no manifest, not JSON, not an
    object, no or another `id`, a link out of the store, a folder name that is no id) is listed as
    `{"id": <folder name>, "broken": <problem>}` instead of stopping the listing. Temporary folders
    (`.tmp-*`, any name starting with '.') are not listed."""
    folder = kind.folder(store)
    for path in (Path(store), folder):  # a file in the way is a wrong --store, not an empty store
        if path.exists() and not path.is_dir():
            raise StoreError(
                f"store {store}: {path} is not a folder (a file is in the way) - pass the store folder with --store (or $RLAIF_STORE)"
            )
    if not folder.is_dir():
        return []
    found = []
    for path in folder.iterdir():
        if path.name.startswith(".") or not path.is_dir():
            continue
        try:
            if not is_version_id(path.name):
                raise damaged(kind, path, f"the folder's name is not a {kind.noun} id", folder=path)
            found.append(read_manifest(kind, _checked_folder(kind, folder, path)))
        except ArtifactError as exc:
            where = f"{MANIFEST}: " if exc.path.name == MANIFEST else ""
            found.append({"id": path.name, "broken": str(exc) if kind.broken_in_full else where + exc.problem})
    return sorted(found, key=lambda m: (str(m.get("created_at", "")), str(m["id"])))


# ---------------------------------------------------------------- writing


def fsync(path: Path) -> None:
    """Flush a file's (or a folder's entries') data to disk."""
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def fsync_tree(folder: Path) -> None:
    """fsync every file and folder under `folder`, files before their folders, then `folder` itself."""
    for path in sorted(folder.rglob("*"), reverse=True):
        if path.is_file() or path.is_dir():
            fsync(path)
    fsync(folder)


def tmp_lock(tmp: Path) -> Path:
    """The lock file of a temporary folder: beside it, `<name>.lock`."""
    return tmp.with_name(tmp.name + ".lock")


def new_tmp_folder(folder: Path, label: str) -> tuple[Path, int]:
    """`folder/.tmp-<label>-XXXX/` with its lock `folder/.tmp-<label>-XXXX.lock` held (returns the fd); made under a lock on `folder`."""
    folder.mkdir(parents=True, exist_ok=True)
    with locked_folder(folder):
        tmp = shareable(tempfile.mkdtemp(prefix=f".tmp-{label}-", dir=folder))  # not mkdtemp's 0700: the umask's
        return tmp, hold(tmp_lock(tmp))


def remove_abandoned(kind: ArtifactKind, store: str | Path) -> list[str]:
    """Remove the temporary folders of the kind whose owner is gone (their lock is free); returns their names.

    Folders still being written (their lock is held) are untouched, and so is any `.tmp-*` folder
    without a lock file (not made by `new_workdir`: left by an rlaif older than the locks).
    """
    folder = kind.folder(store)
    if not folder.is_dir():
        return []
    return remove_unlocked_tmp(folder)


def new_workdir(kind: ArtifactKind, store: str | Path, label: str) -> Path:
    """An empty temporary folder `STORE/<kind>/.tmp-<label>-XXXX/` (same file system as the artifacts) whose
    lock this process holds until `commit` or `discard_workdir`; abandoned ones are removed first."""
    folder = kind.folder(store)
    try:
        remove_abandoned(kind, store)
        tmp, fd = new_tmp_folder(folder, label)
    except OSError as exc:
        raise StoreError(
            f"could not make a folder in {folder}: {exc} - check that the store folder is writable"
        ) from None
    _HELD[str(tmp)] = fd
    return tmp


def discard_workdir(workdir: str | Path) -> None:
    """Remove a work folder of `new_workdir` (if still there) and its lock file, and release its lock."""
    tmp = Path(workdir)
    shutil.rmtree(tmp, ignore_errors=True)
    tmp_lock(tmp).unlink(missing_ok=True)
    fd = _HELD.pop(str(tmp), None)
    if fd is not None:
        release(fd)


def _write_failed(kind: ArtifactKind, store: str | Path, what: str, exc: OSError, workdir: Path) -> StoreError:
    """The StoreError of a failed write into `workdir` (called before it is discarded: a full disk says how much
    had been written)."""
    if out_of_space(exc):
        return space_error(kind.folder(store), f"{kind.noun} {what}", folder_size(workdir))
    return StoreError(
        f"could not write {kind.noun} {what} to {kind.folder(store)}: {exc} - check that the store folder is writable"
    )


@contextmanager
def discarded_on_error(kind: ArtifactKind, store: str | Path, workdir: Path, what: str) -> Iterator[None]:
    """While filling a work folder: on any error discard it (an OSError becomes a StoreError naming `what`)."""
    try:
        yield
    except OSError as exc:
        failed = _write_failed(kind, store, what, exc, workdir)
        discard_workdir(workdir)
        raise failed from None
    except BaseException:
        discard_workdir(workdir)
        raise


def write_manifest(folder: Path, manifest: dict[str, Any]) -> None:
    """`folder/manifest.json`: the manifest as indented UTF-8 JSON."""
    (folder / MANIFEST).write_text(
        json.dumps(manifest, indent=2, ensure_ascii=False, default=str) + "\n", encoding="utf-8"
    )


def commit(
    kind: ArtifactKind, store: str | Path, artifact_id: str, workdir: Path, write: Callable[[Path], None] | None = None
) -> tuple[Path, bool]:
    """Make the work folder the artifact `STORE/<kind>/<id>`; returns (its folder, created).

    `write(workdir)` adds the last files (the manifest) first; then every file and folder is fsynced,
    the work folder renamed into place and the kind's folder fsynced. When the artifact is already
    there (the same content committed first, here or by a concurrent process) the work folder is
    discarded and created is False. A half-written artifact is never listed: the rename is one step.
    """
    folder = kind.folder(store)
    target = folder / artifact_id
    try:
        if find(kind, store, artifact_id) is not None:
            discard_workdir(workdir)
            return target, False
        if write is not None:
            write(workdir)
        fsync_tree(workdir)
        os.rename(workdir, target)
        fsync(folder)
    except OSError as exc:
        failed = _write_failed(kind, store, artifact_id, exc, workdir)
        discard_workdir(workdir)
        if find(kind, store, artifact_id) is not None:  # another process committed the same artifact first
            return target, False
        raise failed from None
    except BaseException:
        discard_workdir(workdir)
        raise
    discard_workdir(workdir)  # only the lock is left to release
    remove_abandoned(kind, store)
    return target, True
