"""Push a dataset version to the Hugging Face Hub and pull it back, with `huggingface_hub`.

A push makes ONE commit on `main` of a dataset repo (private unless asked otherwise) holding

    README.md, data/train-00000-of-00001.parquet   the export (rlaif.publish.export) that
                                                   `datasets.load_dataset(REPO, revision=ID)` reads
    rlaif/manifest.json, rlaif/<table>.parquet     the version itself, byte for byte

and tags that commit with the version id. Stale files under data/ and rlaif/ (from an earlier
version) are deleted in the same commit, so each tag holds exactly one version; other files in
the repo are left alone. A version whose tag already exists is not pushed again.

A pull downloads `rlaif/` at a revision, checks that the tables hash to the version id (the
same computation as `commit_tables`), and commits the version into the store atomically with
the same id and a byte-identical manifest.json. Where it came from (repo, revision, commit) goes
to `origin.json` beside the manifest, not into it, so the manifest stays exactly what was pushed.

The token comes from the environment only (HF_TOKEN): never from a flag, never written anywhere.
The endpoint is huggingface_hub's own (HF_ENDPOINT, for mirrors) and is not recorded either.
"""

from __future__ import annotations

import json
import os
import shutil
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path

import pyarrow as pa

from rlaif import __version__
from rlaif.core.errors import HubError, StoreError
from rlaif.core.hub_access import HubFixes, hub_errors, hub_token
from rlaif.core.names import check_revision, is_version_id
from rlaif.core.secrets import manifest_secrets, scan_for_secrets
from rlaif.store import artifacts
from rlaif.store.atomic import write_json_atomic
from rlaif.store.formats import FORMATS
from rlaif.store.rows import STYLES
from rlaif.store.versions import TABLES, VERSIONS, folder_digest, load_manifest, version_path, versions_dir

REPO_TYPE = "dataset"
RAW_DIR = "rlaif"  # where the version itself lives in the repo
MANAGED_DIRS = ("data/", f"{RAW_DIR}/")  # stale files here are deleted by a push


@dataclass(frozen=True)
class PushResult:
    repo: str
    version_id: str
    commit: str  # the commit the tag points at
    url: str  # the repo at the tag
    pushed: bool  # False: the tag existed already, nothing was uploaded
    private: bool | None


@dataclass(frozen=True)
class PullResult:
    repo: str
    revision: str
    commit: str
    version_id: str
    created: bool  # False: the version was already in the store
    path: Path


def parse_repo_ref(ref: str) -> tuple[str, str]:
    """Split `NS/NAME[@REV]` into (repo id, revision); the revision defaults to "main".

    >>> parse_repo_ref("alice/prefs@demo-0123456789ab")
    ('alice/prefs', 'demo-0123456789ab')
    >>> parse_repo_ref("alice/prefs")
    ('alice/prefs', 'main')
    """
    repo, _, revision = ref.partition("@")
    try:
        revision = check_revision(revision or "main")
    except ValueError as exc:
        raise HubError(f"{repo}@...: {exc}") from None
    return check_repo_id(repo), revision


def check_repo_id(repo: str) -> str:
    """Return `repo` if it is a valid `NS/NAME` dataset repo id, else raise HubError.

    >>> check_repo_id("prefs")
    Traceback (most recent call last):
    rlaif.core.errors.HubError: 'prefs' is not a repo id of the form NAMESPACE/NAME (e.g. alice/prefs) - give your user or organization name too
    """
    from huggingface_hub.utils import HFValidationError, validate_repo_id

    if repo.count("/") != 1:
        raise HubError(
            f"{repo!r} is not a repo id of the form NAMESPACE/NAME (e.g. alice/prefs) - give your user or organization name too"
        )
    try:
        validate_repo_id(repo)
    except HFValidationError as exc:
        raise HubError(f"{repo!r} is not a valid Hub repo id: {exc}") from None
    return repo


def _api(token: str | bool, endpoint: str | None):
    from huggingface_hub import HfApi

    return HfApi(endpoint=endpoint, token=token, library_name="rlaif", library_version=__version__)


DATASET_FIXES = HubFixes(
    kind="dataset repo",
    revision="`rlaif datasets push` tags each version with its id; check the revision",
    not_found="check the name, and set HF_TOKEN to a token with access",
    offline="check the network or HF_ENDPOINT",
    forbidden="HF_TOKEN may not write to {namespace} (403) - use a namespace you own, or a token with write access to it",
    writable="the store and the temporary folder",
    missing="was it pushed with `rlaif datasets push`?",
)


@contextmanager
def _quiet_if_asked() -> Iterator[None]:
    """Hide huggingface_hub's download bars when RLAIF_PROGRESS=0, as rlaif's own bars are."""
    from huggingface_hub.utils import are_progress_bars_disabled, disable_progress_bars, enable_progress_bars

    if os.environ.get("RLAIF_PROGRESS", "1") != "0" or are_progress_bars_disabled():
        yield
        return
    disable_progress_bars()
    try:
        yield
    finally:
        enable_progress_bars()


def recompute_version_id(folder: Path, manifest: dict) -> str:
    """The id that a version's files prove: the name it was made under (its recipe's name, as a run commits it;
    the manifest's `name` when it holds no recipe), then the hash of its recipe and of the Parquet tables in
    `folder` (read batch by batch). Nothing of the id the manifest claims goes into it."""
    recipe = manifest.get("recipe")
    name = recipe.get("name") if isinstance(recipe, dict) else None
    return f"{name or manifest.get('name')}-{folder_digest(folder, manifest)}"


def _raw_files(folder: Path) -> dict[str, Path]:
    """The files of a version that a push uploads under rlaif/ (never origin.json or others)."""
    names = ["manifest.json", *(f"{table}.parquet" for table in TABLES)]
    return {f"{RAW_DIR}/{name}": folder / name for name in names if (folder / name).is_file()}


def _operations(api, repo: str, export: Path, version: Path) -> list:
    from huggingface_hub import CommitOperationAdd, CommitOperationDelete

    files = {path.relative_to(export).as_posix(): path for path in sorted(export.rglob("*")) if path.is_file()}
    files.update(_raw_files(version))
    existing = api.list_repo_files(repo, repo_type=REPO_TYPE, revision="main")
    stale = [name for name in existing if name.startswith(MANAGED_DIRS) and name not in files]
    return [CommitOperationDelete(path_in_repo=name) for name in stale] + [
        CommitOperationAdd(path_in_repo=name, path_or_fileobj=str(path)) for name, path in files.items()
    ]


def check_no_secrets(version_id: str, files: dict[str, Path], manifest: dict) -> None:
    """Refuse (HubError, before anything is uploaded) when a secret scan of `files` finds anything.

    `files`: what each file is called in the message -> the file. The scan looks for the values of
    the key variables the recipe names and of the Hub tokens, and for key-like strings
    (rlaif.core.secrets.scan_for_secrets) in every Parquet cell and every line of the other files.
    """
    secrets = manifest_secrets(manifest)
    findings = [(label, found) for label, path in files.items() for found in scan_for_secrets(path, secrets)]
    if not findings:
        return
    (label, first), more = findings[0], findings[1:]
    others = ""
    if more:
        others = (
            "; also in "
            + ", ".join(f"{name} ({found.where})" for name, found in more[:5])
            + (" and more" if len(more) > 5 else "")
        )
    raise HubError(
        f"refusing to push {version_id}: a secret scan found {first.what} in {label} ({first.where}){others} - nothing was uploaded. "
        "A version made before rlaif scrubbed secrets from the error messages of failed calls can hold an API key: "
        "rotate the key if it may have leaked, make the version again with `rlaif run`, and push the new one"
    )


def _check_visibility(api, repo: str, private: bool) -> bool | None:
    """Refuse to push into an existing public repo unless public was asked for."""
    is_private = api.dataset_info(repo).private
    if private and is_private is False:
        raise HubError(
            f"{repo} exists and is public - pass --public (private=False) to push to it, or make it private on the Hub"
        )
    return is_private


def push_version(
    store: str | Path,
    version_id: str,
    repo: str,
    *,
    private: bool = True,
    fmt: str = "dpo",
    style: str = "conversational",
    endpoint: str | None = None,
) -> PushResult:
    """Push a version (export + raw tables) in one commit tagged with its id; a no-op if tagged already."""
    from rlaif.publish.export import export_version

    check_repo_id(repo)
    token = hub_token(required=True)
    folder = version_path(store, version_id)
    manifest = load_manifest(store, version_id)
    check_no_secrets(version_id, {str(path): path for path in _raw_files(folder).values()}, manifest)
    if recompute_version_id(folder, manifest) != version_id:
        raise StoreError(
            f"{folder}: the tables no longer hash to {version_id} (the folder was modified) - re-create the version instead of pushing it"
        )
    api = _api(token, endpoint)
    if fmt not in FORMATS or style not in STYLES:
        raise StoreError(
            f"unknown export format {fmt!r} or style {style!r} - use one of {', '.join(FORMATS)} and {' or '.join(STYLES)}"
        )
    with hub_errors(repo, "main", api.endpoint, HubError, DATASET_FIXES):
        api.create_repo(repo, repo_type=REPO_TYPE, private=private, exist_ok=True)
        is_private = _check_visibility(api, repo, private)
        tags = {ref.name: ref.target_commit for ref in api.list_repo_refs(repo, repo_type=REPO_TYPE).tags}
        url = f"{api.endpoint}/datasets/{repo}/tree/{version_id}"
        if version_id in tags:
            return PushResult(repo, version_id, tags[version_id], url, pushed=False, private=is_private)
        with tempfile.TemporaryDirectory(prefix="rlaif-push-") as tmp:
            export = export_version(store, version_id, fmt, Path(tmp) / "export", style=style)
            check_no_secrets(
                version_id,
                {
                    f"the export's {p.relative_to(export).as_posix()}": p
                    for p in sorted(export.rglob("*"))
                    if p.is_file()
                },
                manifest,
            )
            commit = api.create_commit(
                repo,
                _operations(api, repo, export, folder),
                commit_message=f"rlaif: dataset version {version_id}",
                commit_description=f"Format {fmt} ({style}); the version itself is under {RAW_DIR}/. Pushed by rlaif {__version__}.",
                repo_type=REPO_TYPE,
                revision="main",
            )
        api.create_tag(
            repo,
            tag=version_id,
            revision=commit.oid,
            repo_type=REPO_TYPE,
            tag_message=f"rlaif dataset version {version_id}",
            exist_ok=True,
        )
    return PushResult(repo, version_id, commit.oid, url, pushed=True, private=is_private)


def _read_manifest(path: Path, where: str) -> dict:
    try:
        manifest = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise HubError(
            f"{where}: {RAW_DIR}/manifest.json is not readable JSON ({exc}) - push the version again"
        ) from None
    version_id = manifest.get("id") if isinstance(manifest, dict) else None
    if not is_version_id(version_id):
        shown = f" ({str(version_id)[:80]!r} is not <name>-<12 hex>)" if version_id is not None else ""
        raise HubError(
            f"{where}: {RAW_DIR}/manifest.json has no valid `id`{shown} - push the version again with `rlaif datasets push`"
        )
    return manifest


def _install(store: str | Path, files: dict[str, Path], origin: dict, version_id: str) -> tuple[Path, bool]:
    """Copy the downloaded version into the store as any version is committed (rlaif.store.artifacts: a locked
    work folder, fsynced and renamed into place; created is False when the version got there first)."""
    workdir = artifacts.new_workdir(VERSIONS, store, version_id)
    with artifacts.discarded_on_error(VERSIONS, store, workdir, version_id):
        for name, path in files.items():
            shutil.copyfile(path, workdir / name.removeprefix(f"{RAW_DIR}/"))
        write_json_atomic(workdir / "origin.json", origin)
    return artifacts.commit(VERSIONS, store, version_id, workdir)


def pull_version(store: str | Path, ref: str, *, endpoint: str | None = None) -> PullResult:
    """Bring `NS/NAME[@REV]` back into the store with its id and manifest (no-op if it is there)."""
    repo, revision = parse_repo_ref(ref)
    api = _api(hub_token(required=False), endpoint)
    where = f"{repo}@{revision}"
    versions_dir(store).mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=".pull-", dir=versions_dir(store)))
    try:
        with hub_errors(repo, revision, api.endpoint, HubError, DATASET_FIXES), _quiet_if_asked():
            commit = api.dataset_info(repo, revision=revision).sha
            manifest_file = api.hf_hub_download(
                repo, f"{RAW_DIR}/manifest.json", repo_type=REPO_TYPE, revision=commit, local_dir=staging
            )
            manifest = _read_manifest(Path(manifest_file), where)
            version_id = manifest["id"]
            api.snapshot_download(
                repo, repo_type=REPO_TYPE, revision=commit, allow_patterns=[f"{RAW_DIR}/*"], local_dir=staging
            )
        files = _raw_files(staging / RAW_DIR)
        try:  # before anything is trusted, the version in the store included: the claimed id proves nothing
            got = recompute_version_id(staging / RAW_DIR, manifest)
        except (OSError, pa.ArrowException) as exc:
            raise HubError(
                f"{where}: a table under {RAW_DIR}/ is not readable Parquet ({exc}) - push the version again"
            ) from None
        if got != version_id:
            raise HubError(
                f"{where}: the tables under {RAW_DIR}/ hash to {got}, not to the version id {version_id} - the upload was edited or is incomplete; push the version again"
            )
        if (versions_dir(store) / version_id / "manifest.json").is_file():
            return PullResult(repo, revision, commit, version_id, False, versions_dir(store) / version_id)
        pulled_at = datetime.now(timezone.utc).isoformat(timespec="seconds")
        origin = {"repo": repo, "revision": revision, "commit": commit, "pulled_at": pulled_at}
        path, created = _install(store, files, origin, version_id)
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    return PullResult(repo, revision, commit, version_id, created, path)
