"""Shared test helpers: a fake backend for exact logic, tiny recipes, project paths."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
os.environ.setdefault("PREFECT_SERVER_ANALYTICS_ENABLED", "false")
os.environ.setdefault("DO_NOT_TRACK", "1")


def write_prompts(path: Path, prompts: list[str]) -> Path:
    path.write_text("".join(json.dumps({"id": f"p{i}", "prompt": p}) + "\n" for i, p in enumerate(prompts)))
    return path


@pytest.fixture
def prompts_file(tmp_path: Path) -> Path:
    return write_prompts(tmp_path / "prompts.jsonl", ["Say hi.", "Name a colour.", "What is 2+2?", "Give a fruit."])


@pytest.fixture
def use_backend(monkeypatch):
    """Install a scripted backend (tests/fakes.py) wherever a judge makes one; returns it."""
    from rlaif.judges import common

    def install(backend):
        def factory(spec):
            backend.spec = spec
            return backend

        monkeypatch.setattr(common, "make_backend", factory)
        return backend

    return install
