"""The `budget:` cap (rlaif/calls/budget.py): a run stops cleanly before it would exceed it (exit code 4,
nothing committed, every paid call cached) and a re-run with a higher cap resumes without paying a
call twice (the stand-in counts request bodies); bad `prices:` / `budget:` fields are recipe errors."""

from __future__ import annotations

import hashlib
import json
import re
import sqlite3

import pytest

from rlaif.calls.budget import BudgetExceeded
from rlaif.config.recipe import parse_recipe
from rlaif.pipeline.runner import run_recipe
from rlaif.store.versions import list_versions
from tests.badinput import GOOD, assert_clean_failure, run_cli, write_recipe
from tests.conftest import write_prompts
from tests.det_server import DetServer

PRICES = {
    "det": {"prompt_per_mtok": 1.5, "completion_per_mtok": 6.0},
    "det-judge": {"prompt_per_mtok": 3.0, "completion_per_mtok": 15.0},
}


def recipe_dict(tmp_path, url: str, budget: dict) -> dict:
    path = write_prompts(
        tmp_path / "prompts.jsonl",
        [f"Budget question {i}: explain thing number {i} in some detail." for i in range(5)],
    )
    endpoint = {"backend": "openai", "base_url": url}
    return {
        "name": "budget",
        "prompts": {"path": str(path)},
        "samples_per_prompt": 3,
        "judge": {**endpoint, "model": "det-judge"},
        "policies": [{"name": "p", **endpoint, "model": "det", "params": {"max_tokens": 40}}],
        "filters": {"response_near_duplicate": None},
        "prices": PRICES,
        "budget": budget,
    }


def paid_usd(cache_path) -> float:
    """What the calls in the request cache cost at PRICES (verdicts: the judge's price; responses: the policy's)."""
    total = 0.0
    for (value,) in sqlite3.connect(cache_path).execute("SELECT value FROM calls"):
        row = json.loads(value)
        price = PRICES["det-judge"] if "probs" in row else PRICES["det"]
        total += (
            row["prompt_tokens"] * price["prompt_per_mtok"] + row["completion_tokens"] * price["completion_per_mtok"]
        ) / 1e6
    return total


PROBE = {
    "model": "det-judge",
    "messages": [{"role": "user", "content": "Hi"}],
    "max_tokens": 1,
}  # rlaif.pipeline.preflight's check of a model /models does not list


def run_calls(server: DetServer) -> dict:
    """The stand-in's request bodies (hash -> times received) without the preflight probe, which each run sends once."""
    probe = hashlib.sha256(json.dumps(PROBE, sort_keys=True).encode()).hexdigest()
    return {body: n for body, n in server.bodies.items() if body != probe}


@pytest.mark.slow
def test_a_small_cap_stops_the_run_and_a_higher_one_resumes_without_paying_twice(tmp_path):
    store, cap = tmp_path / "store", 0.0015  # the whole run costs $0.002925 at the stand-in's token counts
    with DetServer() as server:
        small = write_recipe(tmp_path, recipe_dict(tmp_path, server.base_url, {"max_usd": cap}), "small.yaml")
        stopped = run_cli("run", str(small), "--store", str(store), "--no-prefect", process=True)
        assert_clean_failure(
            stopped,
            "stopped before the budget would be exceeded",
            "budget.max_usd",
            "Nothing was committed",
            "higher `budget:`",
            code=4,
        )
        spent = float(re.search(r"spent \$([0-9.]+) of budget.max_usd", " ".join(stopped.stderr.split())).group(1))
        assert 0 < spent <= cap and paid_usd(store / "cache.sqlite") == pytest.approx(spent, abs=1e-6)
        assert not list_versions(store)
        paid_before = sum(server.bodies.values())
        larger = write_recipe(tmp_path, recipe_dict(tmp_path, server.base_url, {"max_usd": 1.0}), "larger.yaml")
        finished = run_cli("run", str(larger), "--store", str(store), "--no-prefect", process=True)
    assert finished.returncode == 0, finished.stderr
    sent = run_calls(server)
    assert 0 < paid_before - 1 < 45 and sum(sent.values()) == 45  # 15 samples + 30 verdicts, each sent once
    assert max(sent.values()) == 1, "a call was paid twice"
    assert f"cached {paid_before - 1}" in finished.stdout and len(list_versions(store)) == 1


def test_a_token_cap_stops_before_the_tokens_run_out(tmp_path):
    with DetServer() as server:
        recipe = parse_recipe(recipe_dict(tmp_path, server.base_url, {"max_tokens": 600}))
        with pytest.raises(BudgetExceeded, match="budget.max_tokens 600") as stopped:
            run_recipe(recipe, tmp_path / "store")
    used = int(re.search(r"used ([0-9,]+) of budget.max_tokens", str(stopped.value)).group(1).replace(",", ""))
    assert 0 < used <= 600 and not list_versions(tmp_path / "store") and stopped.value.exit_code == 4


def test_the_cap_does_not_change_the_version_id(tmp_path):
    with DetServer() as server:
        capped, _, manifest, _ = run_recipe(
            parse_recipe(recipe_dict(tmp_path, server.base_url, {"max_usd": 5})), tmp_path / "a"
        )
        plain = recipe_dict(tmp_path, server.base_url, {})
        plain.pop("budget"), plain.pop("prices")
        uncapped, _, _, _ = run_recipe(parse_recipe(plain), tmp_path / "b")
    assert capped == uncapped and manifest["cost"]["budget"]["stopped"] is None


BAD = {
    "negative max_usd": (
        {"budget": {"max_usd": -1}, "prices": {"smollm2-135m": {"prompt_per_mtok": 0, "completion_per_mtok": 0}}},
        "budget.max_usd",
    ),
    "empty budget": ({"budget": {}}, "budget.max_usd"),
    "max_tokens not a number": ({"budget": {"max_tokens": "lots"}}, "budget.max_tokens"),
    "unknown budget key": ({"budget": {"max_dollars": 3}}, "budget.max_dollars"),
    "negative price": (
        {"prices": {"m": {"prompt_per_mtok": -1, "completion_per_mtok": 1}}},
        "prices.m.prompt_per_mtok",
    ),
    "price missing a field": ({"prices": {"m": {"prompt_per_mtok": 1}}}, "prices.m.completion_per_mtok"),
    "unknown price key": (
        {"prices": {"m": {"prompt_per_mtok": 1, "completion_per_mtok": 1, "cached_per_mtok": 1}}},
        "prices.m.cached_per_mtok",
    ),
    "max_usd with an unpriced API model": (
        {
            "budget": {"max_usd": 1},
            "policies": [{"name": "p", "backend": "openai", "base_url": "http://127.0.0.1:9/v1", "model": "gpt-x"}],
        },
        "prices",
    ),
}


@pytest.mark.parametrize("case", list(BAD), ids=list(BAD))
def test_bad_price_and_budget_fields_are_recipe_errors(tmp_path, case):
    change, field = BAD[case]
    store = tmp_path / "store"
    result = run_cli("run", str(write_recipe(tmp_path, {**GOOD, **change})), "--store", str(store), "--no-prefect")
    assert_clean_failure(result, "recipe.yaml", field, store=store)
