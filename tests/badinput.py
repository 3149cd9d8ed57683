"""Shared helpers for the bad-input and fault tests (tests/test_bad_*.py).

Every bad input must end the same way: exit code 2 (or the code named), a message on stderr that
names the file / field / URL, no Python traceback, and nothing written to the store.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import yaml

from tests.conftest import ROOT

QUIET = {"RLAIF_PROGRESS": "0", "PREFECT_SERVER_ANALYTICS_ENABLED": "false", "DO_NOT_TRACK": "1"}
ENV = {**os.environ, **QUIET}  # the environment at import, for tests that start their own processes


def cli_env(extra: dict | None = None) -> dict:
    """The environment now (a fixture may have set PREFECT_API_URL), quiet, with `extra` on top."""
    return {**os.environ, **QUIET, **(extra or {})}


GOOD = {"name": "t", "policies": [{"name": "p", "model": "smollm2-135m"}]}


def run_cli(
    *args: str, cwd: Path = ROOT, env: dict | None = None, timeout: float = 120
) -> subprocess.CompletedProcess:
    """`rlaif ARGS...` in a subprocess, as a user runs it."""
    return subprocess.run(
        [sys.executable, "-m", "rlaif.cli", *args],
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=timeout,
        env=cli_env(env),
    )


def write_recipe(folder: Path, recipe: dict | str, name: str = "recipe.yaml") -> Path:
    """A recipe file: a dict is dumped as YAML, a string written as is (for YAML-level faults)."""
    path = folder / name
    path.write_text(recipe if isinstance(recipe, str) else yaml.safe_dump(recipe, sort_keys=False))
    return path


def assert_clean_failure(
    result: subprocess.CompletedProcess, *needles: str, store: Path | None = None, code: int = 2
) -> None:
    """Exit `code`, every needle in the message (whitespace folded), no traceback, nothing in `store`."""
    message = " ".join(result.stderr.split())
    assert result.returncode == code, f"exit {result.returncode}\nstdout: {result.stdout}\nstderr: {result.stderr}"
    assert "Traceback" not in result.stderr + result.stdout, result.stderr
    for needle in needles:
        assert needle in message, f"{needle!r} not in: {message}"
    if store is not None:
        assert not written(store), f"the store was written: {sorted(str(p) for p in Path(store).rglob('*'))}"


def written(store: Path) -> bool:
    """Whether anything (a version, a cache, a work folder) was written under the store."""
    store = Path(store)
    return store.exists() and any(store.iterdir())
