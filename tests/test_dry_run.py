"""`rlaif run --dry-run` (rlaif/pipeline/dry_run.py): calls exactly as the real run makes them, tokens an upper
bound, what the cache holds counted as paid, no model call and nothing written."""

from __future__ import annotations

import json

import pytest

from rlaif.config.recipe import parse_recipe
from rlaif.pipeline.dry_run import dry_run
from rlaif.pipeline.runner import run_recipe
from tests.badinput import assert_clean_failure, run_cli, write_recipe
from tests.conftest import write_prompts
from tests.det_server import DetServer

PRICES = {
    "det": {"prompt_per_mtok": 1.5, "completion_per_mtok": 6.0},
    "det-judge": {"prompt_per_mtok": 3.0, "completion_per_mtok": 15.0},
}


def recipe_dict(tmp_path, url: str, judge: dict | None = None, prompts: int = 5) -> dict:
    path = write_prompts(
        tmp_path / "prompts.jsonl",
        [f"Dry question {i}: explain thing number {i} in some detail." for i in range(prompts)],
    )
    endpoint = {"backend": "openai", "base_url": url}
    return {
        "name": "dry",
        "prompts": {"path": str(path)},
        "samples_per_prompt": 3,
        "judge": {**endpoint, "model": "det-judge", **(judge or {})},
        "policies": [{"name": "p", **endpoint, "model": "det", "params": {"max_tokens": 40}}],
        "filters": {"response_near_duplicate": None},
        "prices": PRICES,
    }


JUDGES = {
    "pairwise": {},
    "listwise": {"type": "listwise", "permutations": 3},
    "pointwise": {"type": "pointwise", "aspects": ["helpfulness", "honesty"]},
    "binary": {"type": "binary"},
    "chain of thought": {"chain_of_thought": True},
}


@pytest.mark.parametrize("judge", list(JUDGES), ids=list(JUDGES))
def test_the_estimate_counts_the_calls_the_run_makes(tmp_path, judge):
    with DetServer() as server:
        recipe = parse_recipe(recipe_dict(tmp_path, server.base_url, JUDGES[judge]))
        estimate = dry_run(recipe, tmp_path / "store")
        assert server.calls == 0 and not (tmp_path / "store").exists()  # no call, nothing written
        _, _, manifest, _ = run_recipe(recipe, tmp_path / "store")
    real = manifest["cost"]
    assert estimate["calls"] == {"to_send": manifest["calls"]["live"], "cached": 0}
    for stage, models in real["stages"].items():
        for model, used in models.items():
            guess = estimate["stages"][stage][model]
            assert guess["calls"] == used["calls"]
            assert (
                guess["prompt_tokens"] >= used["prompt_tokens"]
                and guess["completion_tokens"] >= used["completion_tokens"]
            )
            assert guess["usd"] >= used["usd"]
    assert estimate["prompt_tokens_by"] == {"det": "chars/4", "det-judge": "chars/4"}


def test_the_protocol_counts(tmp_path):
    """Pairwise: n responses -> n(n-1)/2 pairs x 2 orders per prompt; here 2 policies x 3 samples = 6 -> 30 verdicts."""
    data = recipe_dict(tmp_path, "http://127.0.0.1:9/v1", prompts=4)
    data["policies"].append({**data["policies"][0], "name": "q", "params": {"max_tokens": 20, "temperature": 0.1}})
    estimate = dry_run(parse_recipe(data), tmp_path / "store")
    assert estimate["stages"]["sampling"]["det"]["calls"] == 4 * 6 and estimate["stages"]["sampling"]["det"][
        "completion_tokens"
    ] == 4 * 3 * (40 + 20)
    assert estimate["stages"]["judging"]["det-judge"]["calls"] == 4 * 15 * 2


def test_after_a_run_everything_is_cached_and_costs_nothing(tmp_path):
    with DetServer() as server:
        recipe = parse_recipe(recipe_dict(tmp_path, server.base_url))
        _, _, manifest, _ = run_recipe(recipe, tmp_path / "store")
        estimate = dry_run(recipe, tmp_path / "store")
    assert estimate["calls"] == {"to_send": 0, "cached": 45} and estimate["total_usd"] == 0
    assert estimate["saved_usd"] == pytest.approx(manifest["cost"]["total_usd"])


def test_the_cli_prints_a_table_or_json_and_says_what_is_unknown(tmp_path):
    data = recipe_dict(tmp_path, "http://127.0.0.1:9/v1")  # nothing listens there: a dry run never calls it
    data["prices"] = {"det": PRICES["det"]}
    data["budget"] = {"max_tokens": 100}
    recipe = write_recipe(tmp_path, data)
    table = run_cli("run", str(recipe), "--store", str(tmp_path / "store"), "--dry-run", env={"COLUMNS": "220"})
    assert table.returncode == 0, table.stderr
    text = " ".join(table.stdout.split())
    for needle in ("calls to send", "upper bound", "chars/4", "cost of det-judge not known", "may stop at the budget"):
        assert needle in text
    narrow = run_cli("run", str(recipe), "--store", str(tmp_path / "store"), "--dry-run", env={"COLUMNS": "80"})
    assert narrow.returncode == 0 and "\u2026" not in narrow.stdout, (
        narrow.stdout
    )  # folded, never cut (the walkthrough)
    result = run_cli("run", str(recipe), "--store", str(tmp_path / "store"), "--dry-run", "--json")
    estimate = json.loads(result.stdout)
    assert estimate["calls"]["to_send"] == 45 and estimate["total_usd"] is None and estimate["budget"]["fits"] is False
    assert not (tmp_path / "store").exists()


@pytest.mark.slow  # imports transformers (about 10 s here)
def test_a_local_policy_is_counted_with_its_tokenizer(tmp_path):
    from rlaif.weights.builtin import is_converted, model_dir

    if not is_converted(model_dir("smollm2-135m")):
        pytest.skip("smollm2-135m is not converted on this machine")
    data = recipe_dict(tmp_path, "http://127.0.0.1:9/v1")
    data["policies"] = [{"name": "local", "model": "smollm2-135m", "params": {"max_tokens": 16}}]
    estimate = dry_run(parse_recipe(data), tmp_path / "store")
    assert (
        estimate["prompt_tokens_by"]["smollm2-135m"] == "tokenizer"
        and estimate["stages"]["sampling"]["smollm2-135m"]["calls"] == 15
    )
    assert "smollm2-135m" in estimate["unpriced"] and "local engine" in estimate["unpriced"]["smollm2-135m"]


DRY_PROBLEMS = {
    "missing alias": ({"policies": [{"name": "p", "model": "smollm2-1b"}]}, {}, ["policy 'p'", "'smollm2-1b'"]),
    "missing key": (
        {"judge": {"backend": "openai", "base_url": "https://api.example.invalid/v1", "model": "det-judge"}},
        {"OPENAI_API_KEY": None, "OPENAI_BASE_URL": None},
        ["judge", "no API key", "OPENAI_API_KEY"],
    ),
    "store is a file": ({}, {}, ["is not a folder (a file is in the way)"]),
}


@pytest.mark.parametrize("problem", list(DRY_PROBLEMS))
def test_a_dry_run_runs_the_checks_that_cost_nothing(tmp_path, problem):
    """Issue 25 item 8: a dry run that would pass for a recipe whose run fails at once is no estimate at all."""
    change, env, needles = DRY_PROBLEMS[problem]
    recipe = write_recipe(tmp_path, {**recipe_dict(tmp_path, "http://127.0.0.1:9/v1"), **change})
    store = tmp_path / "store"
    if problem == "store is a file":
        store.write_text("not a folder")
    result = run_cli("run", str(recipe), "--store", str(store), "--dry-run", env=env)
    assert_clean_failure(result, *needles, store=None if problem == "store is a file" else store)
