"""Secrets: which are known, scrubbing them where outside text enters rlaif, and the scan before a push.

Known secrets are the values of the API-key variables a recipe names (`api_key_env`), the Hub
token variables, the userinfo of any URL, and the credentials a failed HTTP request carried (its
Authorization header). Text that comes from outside - the message and body of a failed model
call, a log line about it - is scrubbed (`scrub_text`, `error_text`) at the place it becomes an
rlaif value: a row's `error`, a judgment's error, a log record. What rlaif writes itself never
holds a secret by construction: a recipe holds only the NAME of the key variable, and a URL is
recorded without its userinfo (`public_recipe`). Structured data is never rewritten by value, so
a recipe field that happens to equal a key (a model name, say) stays as it is, and so does the
version id.

`scan_for_secrets` looks for known secret values and key-like strings (sk-..., hf_..., Bearer
..., user:password@ in a URL) in every Parquet cell and text file; `rlaif datasets push` runs it
and uploads nothing when it finds any.
"""

from __future__ import annotations

import json
import os
import re
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import unquote, urlsplit, urlunsplit

MASK = "***"
TOKEN_VARIABLES = ("HF_TOKEN", "HUGGING_FACE_HUB_TOKEN", "OPENAI_API_KEY")
MIN_SCRUB = 4  # shorter values are not treated as secrets when scrubbing text
MIN_SCAN = 8  # a push refuses on known values only this long (a 4-character key would match prose)

# key-like strings, whatever their origin: (what, pattern, replacement)
KEY_PATTERNS: tuple[tuple[str, re.Pattern, str], ...] = (
    ("an API key (sk-...)", re.compile(r"\bsk-(?=[A-Za-z0-9_-]*\d)[A-Za-z0-9_-]{12,}"), MASK),
    ("a Hugging Face token (hf_...)", re.compile(r"\bhf_[A-Za-z0-9]{30,}"), MASK),
    ("a bearer token", re.compile(r"\b(Bearer\s+)(?=[A-Za-z0-9._~+/=-]*\d)[A-Za-z0-9._~+/=-]{12,}"), r"\1" + MASK),
    (
        "credentials in a URL (user:password@)",
        re.compile(r"\b([a-zA-Z][a-zA-Z0-9+.-]*://)[^\s/@:]+:[^\s/@]+@"),
        r"\1" + MASK + "@",
    ),
)


# -- which secrets are known ----------------------------------------------------------------------


def userinfo_secrets(url: str | None) -> list[str]:
    """The credentials in a URL's userinfo (user:password, the password, both also %-decoded).

    >>> userinfo_secrets("http://me:sk-abc%2F1@host/v1")
    ['me:sk-abc%2F1', 'sk-abc%2F1', 'me:sk-abc/1', 'sk-abc/1']
    >>> userinfo_secrets("http://127.0.0.1:8000/v1")
    []
    """
    if not url or "@" not in url:
        return []
    try:
        parts = urlsplit(url)
    except ValueError:
        return []
    userinfo = parts.netloc.rpartition("@")[0] if "@" in parts.netloc else ""
    if not userinfo:
        return []
    found = [userinfo, *([userinfo.partition(":")[2]] if ":" in userinfo else [])]
    found += [unquote(s) for s in found if unquote(s) != s]
    return list(dict.fromkeys(s for s in found if s))


def strip_userinfo(url: str | None) -> str | None:
    """A URL without its userinfo (what rlaif records of an endpoint).

    >>> strip_userinfo("http://user:sk-123@host:8000/v1")
    'http://host:8000/v1'
    """
    if not url or "@" not in url:
        return url
    try:
        parts = urlsplit(url)
    except ValueError:
        return url
    if "@" not in parts.netloc:
        return url
    return urlunsplit(parts._replace(netloc=parts.netloc.rpartition("@")[2]))


SECRET_QUERY_WORDS = ("key", "token", "secret", "signature", "password", "credential", "auth")
SECRET_QUERY_NAMES = {"sig", "sas", "code", "pwd", "pass"}  # sig: Azure SAS tokens


def secret_query_name(name: str) -> bool:
    """Whether a URL query parameter's name says that it carries a secret, however it is spelled.

    >>> [secret_query_name(n) for n in ("api-key", "sig", "X-Amz-Security-Token", "access_token", "api-version")]
    [True, True, True, True, False]
    """
    plain = re.sub(r"[^a-z]", "", unquote(name).lower())
    return plain in SECRET_QUERY_NAMES or any(word in plain for word in SECRET_QUERY_WORDS)


def display_url(url: str) -> str:
    """A URL as rlaif prints it: no userinfo, and every query value masked (a secret may hide under any name).

    >>> display_url("https://me:sk-1@host/v1?api-version=2024-02-01&sig=abc&flag")
    'https://host/v1?api-version=***&sig=***&flag'
    """
    url = strip_userinfo(url) or url
    try:
        parts = urlsplit(url)
    except ValueError:
        return "(an invalid URL, not shown)"
    if not parts.query:
        return url
    pairs = (part.partition("=") for part in parts.query.split("&") if part)
    return urlunsplit(parts._replace(query="&".join(f"{key}=***" if sep else key for key, sep, _ in pairs)))


def environment_secrets(names: Iterable[str | None]) -> list[str]:
    """Values of the named environment variables (only those set and at least MIN_SCRUB long)."""
    values = (os.environ.get(name, "") for name in sorted({n for n in names if n}))
    return [value for value in values if len(value) >= MIN_SCRUB]


def spec_secrets(spec) -> list[str]:
    """Secrets of one model spec: its key variable's value (if set) and its URL's userinfo."""
    return environment_secrets([getattr(spec, "api_key_env", None)]) + userinfo_secrets(
        getattr(spec, "base_url", None)
    )


def secrets_of(recipe) -> list[str]:
    """Every secret a recipe's run knows: the keys its specs name, the Hub tokens, URL userinfo."""
    specs = [*recipe.policies, recipe.judge, *recipe.judge.jury]
    names = [*TOKEN_VARIABLES, *(spec.api_key_env for spec in specs)]
    return list(
        dict.fromkeys(environment_secrets(names) + [s for spec in specs for s in userinfo_secrets(spec.base_url)])
    )


def manifest_secrets(manifest: dict[str, Any]) -> list[str]:
    """Secrets known for a stored version: the key variables its recipe names, the Hub tokens, URL userinfo."""
    recipe = manifest.get("recipe") if isinstance(manifest.get("recipe"), dict) else {}
    judge = recipe.get("judge") if isinstance(recipe.get("judge"), dict) else {}
    specs = [s for s in [*(recipe.get("policies") or []), judge, *(judge.get("jury") or [])] if isinstance(s, dict)]
    names = [*TOKEN_VARIABLES, *(s.get("api_key_env") for s in specs if isinstance(s.get("api_key_env"), str))]
    urls = [s.get("base_url") for s in specs if isinstance(s.get("base_url"), str)]
    return list(dict.fromkeys(environment_secrets(names) + [s for url in urls for s in userinfo_secrets(url)]))


def exception_secrets(exc: BaseException) -> list[str]:
    """Credentials a failed HTTP call carried: its Authorization header and its URL's userinfo."""
    found: list[str] = []
    seen: set[int] = set()
    while exc is not None and id(exc) not in seen:
        seen.add(id(exc))
        for request in (_attribute(exc, "request"), _attribute(_attribute(exc, "response"), "request")):
            found += _request_secrets(request)
        exc = exc.__cause__ or exc.__context__
    return list(dict.fromkeys(s for s in found if len(s) >= MIN_SCRUB))


def _attribute(value: Any, name: str) -> Any:
    """`value.name`, or None: httpx's exceptions raise RuntimeError for a `.request` that was never set."""
    try:
        return getattr(value, name, None)
    except Exception:  # noqa: BLE001 - a property that refuses: nothing to learn from it
        return None


def _request_secrets(request: Any) -> list[str]:
    try:
        headers = getattr(request, "headers", None) or {}
        auth = headers.get("authorization") or headers.get("Authorization") or ""
        found = [auth, auth.partition(" ")[2]] if auth else []
        return found + userinfo_secrets(str(getattr(request, "url", "") or ""))
    except Exception:  # noqa: BLE001 - a foreign object: nothing to learn from it
        return []


# -- scrubbing -------------------------------------------------------------------------------------


def scrub_text(text: str, secrets: Iterable[str] = ()) -> str:
    """Free text from outside with every known secret and every key-like string masked.

    >>> scrub_text("401: bad key sk-live-0123456789abcdef for http://u:pw@h/v1", [])
    '401: bad key *** for http://***@h/v1'
    >>> scrub_text("Authorization: Bearer tok3n-abcdefghij", [])
    'Authorization: Bearer ***'
    """
    for secret in sorted({s for s in secrets if len(s) >= MIN_SCRUB}, key=len, reverse=True):
        text = text.replace(secret, MASK)
    for _, pattern, replacement in KEY_PATTERNS:
        text = pattern.sub(replacement, text)
    return text


def exception_text(exc: BaseException, secrets: Iterable[str] = ()) -> str:
    """`str(exc)` scrubbed of `secrets`, of the credentials the failed request carried, and of the Hub tokens."""
    return scrub_text(str(exc), [*secrets, *exception_secrets(exc), *environment_secrets(TOKEN_VARIABLES)])


def error_text(exc: BaseException, secrets: Iterable[str] = ()) -> str:
    """The `error` string of a failed call: `Type: message`, scrubbed (see `exception_text`)."""
    return f"{type(exc).__name__}: {exception_text(exc, secrets)}"


def redact(value: Any, secrets: list[str]) -> Any:
    """Scrub every string in a nested structure of outside text (e.g. error messages); see `scrub_text`.

    Never use it on what rlaif wrote itself (a recipe, a manifest): that is secret-free by construction.

    >>> redact({"a": ["key sk-123 here"]}, ["sk-123"])
    {'a': ['key *** here']}
    """
    if isinstance(value, str):
        return scrub_text(value, secrets)
    if isinstance(value, dict):
        return {k: redact(v, secrets) for k, v in value.items()}
    if isinstance(value, list):
        return [redact(v, secrets) for v in value]
    return value


def public_recipe(data: Any) -> Any:
    """A dumped recipe (or spec) with every `base_url` stripped of its userinfo; nothing else changes."""
    if isinstance(data, dict):
        return {
            k: strip_userinfo(v) if k == "base_url" and isinstance(v, str) else public_recipe(v)
            for k, v in data.items()
        }
    if isinstance(data, list):
        return [public_recipe(v) for v in data]
    return data


# -- the scan before a push ------------------------------------------------------------------------


@dataclass(frozen=True)
class Finding:
    """A secret (or something shaped like one) found in a file: where, and what it looks like."""

    file: str
    where: str  # "column 'error', row 3" (Parquet) or "line 12" (text)
    what: str

    def __str__(self) -> str:
        return f"{self.file} ({self.where}): {self.what}"


def scan_for_secrets(paths: Path | Iterable[Path], secrets: Iterable[str] = (), limit: int = 20) -> list[Finding]:
    """Known secret values and key-like strings in every Parquet cell and every other file's lines.

    `paths`: a folder (scanned recursively) or files. At most one finding per file and column
    (or per file, for text), `limit` in all.
    """
    known = sorted({s for s in secrets if len(s) >= MIN_SCAN}, key=len, reverse=True)
    findings: list[Finding] = []
    for path in _files(paths):
        for finding in _scan_file(path, known):
            findings.append(finding)
            if len(findings) >= limit:
                return findings
    return findings


def _files(paths: Path | Iterable[Path]) -> list[Path]:
    items = [paths] if isinstance(paths, (str, Path)) else list(paths)
    files: list[Path] = []
    for item in map(Path, items):
        files += sorted(p for p in item.rglob("*") if p.is_file()) if item.is_dir() else [item]
    return files


def match_secret(text: str, known: list[str]) -> str | None:
    """What secret-like thing `text` holds (a description), or None.

    >>> match_secret("call failed: Bearer abc123def456ghi", [])
    'a bearer token'
    >>> match_secret("the model is sk-mine-1", ["sk-mine-1"])
    'a known secret (the value of a key or token variable, or URL credentials)'
    """
    if any(secret in text for secret in known):
        return "a known secret (the value of a key or token variable, or URL credentials)"
    return next((what for what, pattern, _ in KEY_PATTERNS if pattern.search(text)), None)


def _scan_file(path: Path, known: list[str]) -> Iterator[Finding]:
    if path.suffix == ".parquet":
        import pyarrow.parquet as pq

        try:
            parquet = pq.ParquetFile(path)
        except Exception:  # noqa: BLE001 - not readable as Parquet: scan its bytes as text below
            parquet = None
        if parquet is not None:
            yield from _scan_parquet(parquet, str(path), known)
            return
    text = path.read_bytes().decode("utf-8", errors="replace")
    for number, line in enumerate(text.splitlines(), 1):
        what = match_secret(line, known)
        if what:
            yield Finding(str(path), f"line {number}", what)
            return


def _scan_parquet(parquet, name: str, known: list[str]) -> Iterator[Finding]:
    """At most one finding per column; Arrow picks the candidate cells, Python checks only those."""
    found: set[str] = set()
    offset = 0
    for batch in parquet.iter_batches(batch_size=8192):
        for column_name, column in zip(batch.schema.names, batch.columns):
            if column_name in found:
                continue
            for row in _candidate_rows(column, known):
                what = match_secret(_strings(column[row].as_py()), known)
                if what:
                    found.add(column_name)
                    yield Finding(name, f"column '{column_name}', row {offset + row}", what)
                    break
        offset += batch.num_rows


PREFILTER = ("sk-", "hf_", "Bearer", "://")  # a literal that each key pattern's match contains


def _candidate_rows(column, known: list[str]) -> list[int]:
    """Rows of a column whose strings (nested ones too) contain a prefilter literal or a known secret."""
    import pyarrow.compute as pc

    rows: set[int] = set()
    for leaf, parents in _leaves(column, None):
        if leaf is None:  # a type the walk does not know: check every row in Python
            return list(range(len(column)))
        hit = None
        for literal in (*PREFILTER, *known):
            matched = pc.match_substring(leaf, literal)
            hit = matched if hit is None else pc.or_(hit, matched)
        if hit is None or not len(leaf):
            continue
        index = pc.indices_nonzero(pc.fill_null(hit, False)).to_numpy()
        rows.update((index if parents is None else parents[index]).tolist())
    return sorted(rows)


def _leaves(array, parents) -> Iterator[tuple[Any, Any]]:
    """(string array, row of each of its values in the column, or None for 1:1) for every string leaf."""
    import pyarrow as pa
    import pyarrow.compute as pc

    kind = array.type
    if pa.types.is_string(kind) or pa.types.is_large_string(kind):
        yield array, parents
    elif pa.types.is_struct(kind):
        for field in array.flatten():
            yield from _leaves(field, parents)
    elif pa.types.is_list(kind) or pa.types.is_large_list(kind):
        inner = pc.list_parent_indices(array).to_numpy()
        yield from _leaves(array.flatten(), inner if parents is None else parents[inner])
    elif (
        pa.types.is_nested(kind)
        or pa.types.is_dictionary(kind)
        or pa.types.is_binary(kind)
        or pa.types.is_large_binary(kind)
    ):
        yield None, None
    # numbers, booleans, timestamps: no text


def _strings(value: Any) -> str:
    """Every string in a cell (nested lists and structs too), one per line."""
    if isinstance(value, str):
        return value
    if isinstance(value, dict):
        return "\n".join(_strings(v) for v in value.values())
    if isinstance(value, (list, tuple)):
        return "\n".join(_strings(v) for v in value)
    return "" if isinstance(value, (int, float, bool)) else json.dumps(value, default=str)
