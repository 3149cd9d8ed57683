"""`rlaif datasets push` and `rlaif datasets pull`: versions to and from the Hugging Face Hub."""

from __future__ import annotations

from typing import Optional

import typer

from rlaif.cli.common import RecipeStoreOption, StoreOption, console, fail, store_of
from rlaif.core.errors import RlaifError


def datasets_push(
    version_id: str = typer.Argument(..., help="Version id (see `rlaif datasets list`)."),
    repo: str = typer.Option(..., "--repo", help="Hub dataset repo NAMESPACE/NAME (created if missing)."),
    public: bool = typer.Option(
        False, "--public", help="Create the repo public (default: private; an existing public repo needs this flag)."
    ),
    fmt: str = typer.Option(
        "dpo", "--format", help="Export format at the repo root: dpo | rm | kto | sft | prompts | listwise."
    ),
    store: Optional[str] = StoreOption,
    recipe: Optional[str] = RecipeStoreOption,
) -> None:
    """Push a version to the Hugging Face Hub in one commit tagged with the version id: the export
    (README.md card + data/*.parquet, for `datasets.load_dataset(REPO, revision=ID)`) and the
    version itself under rlaif/. Re-pushing a version is a no-op. The token is read from HF_TOKEN
    only; HF_ENDPOINT selects a mirror.

    Example:

        HF_TOKEN=hf_... rlaif datasets push demo-0123456789ab --repo alice/prefs
    """
    from rlaif.publish.hub import push_version

    try:
        result = push_version(store_of(store, recipe), version_id, repo, private=not public, fmt=fmt)
    except RlaifError as exc:
        fail(exc)
    visibility = {True: "private", False: "public"}.get(result.private, "visibility unknown")
    what = "pushed" if result.pushed else "already pushed (tag exists, nothing uploaded):"
    console.print(
        f"{what} {version_id} to {repo} ({visibility}) at commit {result.commit[:12]}: {result.url}",
        highlight=False,
        soft_wrap=True,
        markup=False,
    )


def datasets_pull(
    ref: str = typer.Argument(
        ...,
        help="NAMESPACE/NAME or NAMESPACE/NAME@REV: a repo pushed by `rlaif datasets push`; REV is a version id (its tag), a branch or a commit (default: main).",
    ),
    store: Optional[str] = StoreOption,
    recipe: Optional[str] = RecipeStoreOption,
) -> None:
    """Bring a pushed version back into the store with the same id and manifest, after checking
    that its tables hash to the id. A version already in the store is left as it is. Private repos
    need HF_TOKEN.

    Example:

        rlaif datasets pull alice/demo-prefs@demo-0123456789ab --store data/store
    """
    from rlaif.publish.hub import pull_version

    try:
        result = pull_version(store_of(store, recipe), ref)
    except RlaifError as exc:
        fail(exc)
    what = "pulled" if result.created else "already in the store:"
    console.print(
        f"{what} {result.version_id} from {result.repo}@{result.revision} (commit {result.commit[:12]}) into {result.path}",
        highlight=False,
        soft_wrap=True,
        markup=False,
    )
