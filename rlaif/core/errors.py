"""User-facing errors. Each says where the problem is and how to fix it."""

from __future__ import annotations


class RlaifError(Exception):
    """Base for errors shown to users; the CLI prints them and exits with code 2."""

    exit_code = 2


class RecipeError(RlaifError):
    """A recipe file is missing, malformed, or names an unknown key or value."""

    def __init__(self, path: str, key: str, problem: str, fix: str = "") -> None:
        self.path, self.key, self.problem, self.fix = path, key, problem, fix
        where = f"{path}: {key}" if key else path
        message = f"{where}: {problem}"
        if fix:
            message += f" - {fix}"
        super().__init__(message)


class InputError(RlaifError):
    """An input data file (prompts, gold labels) is missing or has a malformed row."""

    def __init__(self, path: str, problem: str, row: int | None = None, field: str = "", fix: str = "") -> None:
        where = str(path)
        if row is not None:
            where += f", row {row}"
        if field:
            where += f", field '{field}'"
        message = f"{where}: {problem}"
        if fix:
            message += f" - {fix}"
        super().__init__(message)


class BackendError(RlaifError):
    """A model backend could not be set up (missing extra, missing key, unknown model)."""


class StoreError(RlaifError):
    """The dataset store is missing a version or cannot be written."""


class HubError(RlaifError):
    """A Hugging Face Hub push or pull failed (no token, unknown repo or tag, refused, unreachable)."""


class RunIncomplete(RlaifError):
    """Model calls still failed with transient errors (connection, timeout, 429, 5xx) after every
    retry pass, and the recipe does not allow an incomplete version: nothing was committed, and
    re-running resumes from the request cache. Exit code 3."""

    exit_code = 3


class StageFailed(RlaifError):
    """Every call of a stage (a policy's sampling, the judge) failed: nothing was committed. Exit code 2."""
