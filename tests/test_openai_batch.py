"""The Batch API path (`batch: true`) against tests/batch_server.py, a local stand-in of the OpenAI
Files and Batches endpoints (not the real service): same version as the live path, no batch
submitted twice after a crash, failed lines counted or retried."""

from __future__ import annotations

import json

import pytest

from rlaif.backends import openai_batch
from rlaif.config.recipe import parse_recipe
from rlaif.pipeline.runner import run_recipe
from rlaif.store.versions import read_table
from tests.batch_server import BatchServer
from tests.conftest import write_prompts

PROMPTS = 6


def recipe_for(tmp_path, base_url: str, batch: bool, **extra):
    prompts = write_prompts(
        tmp_path / "prompts.jsonl", [f"Batch question {i}: what is {i} + {i}?" for i in range(PROMPTS)]
    )
    endpoint = {
        "backend": "openai",
        "base_url": base_url,
        "model": "det",
        **({"batch": True, "batch_poll_s": 0.05} if batch else {}),
    }
    return parse_recipe(
        {
            "name": "batched",
            "prompts": {"path": str(prompts)},
            "policies": [
                {"name": n, **endpoint, "params": {"temperature": t, "max_tokens": 16}}
                for n, t in (("cold", 0.1), ("hot", 0.9))
            ],
            "samples_per_prompt": 1,
            "judge": endpoint,
            "filters": {"consistency": False, "min_margin": 0.0},
            "retries": {"passes": 3, "backoff_s": 0.1},
            **extra,
        }
    )


def test_a_batch_run_makes_the_live_runs_version_and_a_rerun_pays_nothing(tmp_path):
    with BatchServer(polls=3) as server:
        live, _, _, _ = run_recipe(recipe_for(tmp_path, server.base_url, batch=False), tmp_path / "live")
        assert not server.batches
        batched, created, manifest, _ = run_recipe(
            recipe_for(tmp_path, server.base_url, batch=True), tmp_path / "batch"
        )
        made = len(server.batches)
        again, created_again, manifest_again, _ = run_recipe(
            recipe_for(tmp_path, server.base_url, batch=True), tmp_path / "batch"
        )
        assert not server.unknown
    assert created and batched == live  # same answers, same id (batch is a delivery setting)
    assert made == 3 and manifest["calls"] == {
        "live": 24,
        "cached": 0,
        "failed": 0,
    }  # two policies + the judge: one batch each
    assert (
        again == batched and not created_again and len(server.batches) == made and manifest_again["calls"]["live"] == 0
    )
    records = list((tmp_path / "batch" / ".batches").glob("*.json"))
    assert len(records) == 3 and all(json.loads(r.read_text())["collected"] for r in records)


class Crash(BaseException):
    """Stands for the process dying while it polls (not an Exception: nothing catches it as a failure)."""


def test_a_run_that_crashes_after_submitting_resumes_that_batch_and_submits_none_again(tmp_path, monkeypatch):
    real_poll = openai_batch.poll

    async def crashing_poll(client, batch_id, first_s):
        raise Crash(batch_id)

    with BatchServer(polls=2) as server:
        recipe = recipe_for(tmp_path, server.base_url, batch=True)
        monkeypatch.setattr(openai_batch, "poll", crashing_poll)
        with pytest.raises(Crash):
            run_recipe(recipe, tmp_path / "store")
        before = set(server.batches)  # the two policies sample at once: one or both submitted, none polled
        assert before and not server.seen
        records = [json.loads(r.read_text()) for r in (tmp_path / "store" / ".batches").glob("*.json")]
        assert {r["batch_id"] for r in records} == before and not any(r.get("collected") for r in records)
        monkeypatch.setattr(openai_batch, "poll", real_poll)
        version, created, manifest, _ = run_recipe(recipe, tmp_path / "store")
        assert all(server.seen[b] >= 2 for b in before) and len(server.batches) == 3  # resumed, not submitted again
        assert len(server.files) == 3 + 3  # three inputs uploaded once each, three outputs
    assert created and manifest["calls"] == {"live": 24, "cached": 0, "failed": 0}


def test_transient_failed_lines_are_sent_again_in_a_smaller_batch(tmp_path):
    with BatchServer(polls=1, fail_lines=2, fail_status=500, fail_batches=1) as server:
        _, _, manifest, run = run_recipe(recipe_for(tmp_path, server.base_url, batch=True), tmp_path / "store")
        sizes = [json.loads(r.read_text())["lines"] for r in (tmp_path / "store" / ".batches").glob("*.json")]
    assert manifest["calls"] == {"live": 24, "cached": 0, "failed": 0} and manifest["retries"]["calls"] == 2
    assert len(server.batches) == 4 and sorted(sizes) == [2, 6, 6, 12]


def test_lines_that_fail_with_400_are_counted_failures_as_values(tmp_path):
    with BatchServer(polls=1, fail_lines=2, fail_status=400, fail_batches=1) as server:
        version, _, manifest, _ = run_recipe(recipe_for(tmp_path, server.base_url, batch=True), tmp_path / "store")
    # 2 of the first policy's 6 samples failed: 10 samples, so 4 pairs (8 verdicts) to judge
    assert manifest["calls"]["failed"] == 2 and manifest["calls"]["live"] == 10 + 8 and len(server.batches) == 3
    errors = [row["error"] for row in read_table(tmp_path / "store", version, "generations") if row["error"]]
    assert len(errors) == 2 and all("HTTP 400" in e and "injected batch line fault" in e for e in errors)
