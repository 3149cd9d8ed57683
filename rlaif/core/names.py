"""The one rule for dataset names and version ids, which become folder names in the store.

A name is 1-64 characters of letters, digits, '.', '_' and '-', starting with a letter or digit
(so no '/', no '..' path, no leading '.' or '-'); a version id is `<name>-<12 lowercase hex>`.
Hub revisions (`pull NS/NAME@REV`) may also hold '/' between such parts (branches like `refs/pr/1`).
"""

from __future__ import annotations

import re

NAME_PATTERN = r"[A-Za-z0-9][A-Za-z0-9._-]{0,63}"
NAME_RE = re.compile(NAME_PATTERN)
VERSION_ID_RE = re.compile(rf"({NAME_PATTERN})-([0-9a-f]{{12}})")
REVISION_PART_RE = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,127}")
NAME_RULE = "1-64 letters, digits, '.', '_' or '-', starting with a letter or digit (no '/' or spaces)"
ID_RULE = "a version id is <name>-<12 hex digits>, e.g. demo-0123456789ab"


def name_problem(name: object) -> str | None:
    """Why `name` cannot be a dataset name, or None when it can.

    >>> name_problem("demo-v2.1") is None
    True
    >>> name_problem("../../escaped")
    "'../../escaped' is not a safe name: use 1-64 letters, digits, '.', '_' or '-', starting with a letter or digit (no '/' or spaces)"
    """
    if not isinstance(name, str):
        return f"must be text, got {type(name).__name__}"
    if not name:
        return f"is empty: use {NAME_RULE}"
    shown = repr(name) if len(name) <= 80 else repr(name[:77] + "...")
    if len(name) > 64:
        return f"{shown} is {len(name)} characters long: use at most 64"
    if not NAME_RE.fullmatch(name):
        return f"{shown} is not a safe name: use {NAME_RULE}"
    return None


def check_name(name: str) -> str:
    """`name` if it is a safe dataset name, else ValueError saying why (see `name_problem`)."""
    problem = name_problem(name)
    if problem:
        raise ValueError(problem)
    return name


def is_version_id(text: object) -> bool:
    """Whether `text` has the form of a version id, `<name>-<12 hex>`.

    >>> is_version_id("demo-0123456789ab"), is_version_id("../demo-0123456789ab"), is_version_id("nope-000")
    (True, False, False)
    """
    return isinstance(text, str) and VERSION_ID_RE.fullmatch(text) is not None


def check_version_id(version_id: object) -> str:
    """`version_id` if it has the form of a version id, else ValueError saying what one looks like."""
    if not is_version_id(version_id):
        raise ValueError(f"{short_repr(version_id)} is not a version id ({ID_RULE})")
    return version_id  # type: ignore[return-value]


def check_revision(revision: object) -> str:
    """A Hub revision (tag, branch or commit): safe parts joined by '/', no '..' part, at most 200 characters.

    >>> check_revision("refs/pr/1")
    'refs/pr/1'
    """
    parts = revision.split("/") if isinstance(revision, str) else []
    if (
        not parts
        or len(revision) > 200
        or not all(REVISION_PART_RE.fullmatch(part) and ".." not in part for part in parts)
    ):
        raise ValueError(
            f"{short_repr(revision)} is not a revision: use a version id (its tag, e.g. demo-0123456789ab), a branch or a commit"
        )
    return revision  # type: ignore[return-value]


def short_repr(value: object) -> str:
    """`repr(value)` cut to 90 characters, for messages that name a value given by a user.

    >>> short_repr("ok"), len(short_repr("x" * 100)), short_repr("x" * 100)[-4:]
    ("'ok'", 90, 'x...')
    """
    text = repr(value)
    return text if len(text) <= 90 else text[:87] + "..."
