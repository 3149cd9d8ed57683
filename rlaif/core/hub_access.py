"""Reading the Hugging Face Hub from every layer: the token (HF_TOKEN, from the environment only) and what to
tell the user when a Hub call fails (a model download, a dataset push or pull, a prompt set)."""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass

from rlaif.core.errors import HubError

TOKEN_HELP = "create a token at https://huggingface.co/settings/tokens and `export HF_TOKEN=hf_...`"


def hub_token(required: bool = False, why: str = "pushing needs a Hub token with write access") -> str | bool:
    """HF_TOKEN from the environment; False (anonymous) when unset and not required."""
    token = os.environ.get("HF_TOKEN", "").strip()
    if token:
        return token
    if required:
        raise HubError(f"HF_TOKEN is not set - {why}: {TOKEN_HELP}")
    return False  # never fall back to a token file: the environment is the only source


@dataclass(frozen=True)
class HubFixes:
    """What to tell the user for each kind of Hub failure (a model download and a dataset push or pull differ)."""

    kind: str  # the kind of repository: "model repository", "dataset repo"
    revision: str  # for a revision that does not exist
    not_found: str  # for a repository that does not exist or is invisible
    offline: str  # for a Hub that cannot be reached
    forbidden: str  # for a 403; {namespace} and {repo} are filled in
    writable: str  # what must be writable when a file operation fails
    missing: str = ""  # for a file missing from the repository
    other: str = ""  # after any other HTTP answer


@contextmanager
def hub_errors(repo: str, revision: str, endpoint: str, error: type[Exception], fixes: HubFixes) -> Iterator[None]:
    """Turn huggingface_hub and network exceptions inside the block into `error`s that say what to do."""
    try:
        yield
    except error:
        raise
    except Exception as exc:  # noqa: BLE001 - mapped below, re-raised as it is when not a Hub or network failure
        message = hub_error_message(exc, repo, revision, endpoint, fixes)
        if message is None:
            raise
        raise error(message) from None


def hub_error_message(exc: Exception, repo: str, revision: str, endpoint: str, fixes: HubFixes) -> str | None:
    """The message of a huggingface_hub or network failure, None for any other exception."""
    from huggingface_hub.errors import (
        EntryNotFoundError,
        HfHubHTTPError,
        LocalEntryNotFoundError,
        OfflineModeIsEnabled,
        RepositoryNotFoundError,
        RevisionNotFoundError,
    )

    where = f"{repo} on {endpoint}"
    if isinstance(exc, RevisionNotFoundError):
        return f"{repo}@{revision}: no such tag, branch or commit on {endpoint} - {fixes.revision}"
    if isinstance(exc, RepositoryNotFoundError):
        return (
            f"{where}: no such {fixes.kind}, or it is gated or private and HF_TOKEN cannot read it - {fixes.not_found}"
        )
    if isinstance(exc, EntryNotFoundError):
        return f"{where}@{revision}: a file is missing ({first_line(exc)})" + (
            f" - {fixes.missing}" if fixes.missing else ""
        )
    if isinstance(exc, (OfflineModeIsEnabled, LocalEntryNotFoundError)):
        return (
            f"cannot reach {endpoint} (offline mode, or the network is down) - unset HF_HUB_OFFLINE, {fixes.offline}"
        )
    if isinstance(exc, HfHubHTTPError):
        status = exc.response.status_code if exc.response is not None else None
        if status == 401:
            return f"{where}: the Hub refused HF_TOKEN (401) - set HF_TOKEN to a valid token: {TOKEN_HELP}"
        if status == 403:
            return f"{where}: " + fixes.forbidden.format(namespace=repo.split("/")[0], repo=repo)
        return f"{where}: the Hub answered {status}: {first_line(exc)}" + (f" - {fixes.other}" if fixes.other else "")
    if type(exc).__module__.split(".")[0] in ("httpx", "httpx2", "httpcore", "requests", "urllib3"):
        return f"cannot reach {endpoint}: {type(exc).__name__}: {exc} - check the network, or HF_ENDPOINT if you use a mirror; {fixes.offline}"
    if isinstance(exc, OSError):
        return f"{where}: {type(exc).__name__}: {exc} - check the network, and that {fixes.writable} is writable"
    return None


def first_line(exc: Exception) -> str:
    """The first non-empty line of an exception's text (its type's name when it has none)."""
    lines = [line for line in str(exc).splitlines() if line.strip()]
    return lines[0] if lines else type(exc).__name__
