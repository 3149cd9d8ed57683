"""Tokens and cost per stage and model (rlaif/calls/costs.py): the manifest's `cost`, the summary, the card
and the report equal what the deterministic stand-in's token counts and the price table give."""

from __future__ import annotations

import json

import pytest

from rlaif.calls.costs import PriceSpec, cost_lines, usd
from rlaif.config.recipe import parse_recipe
from rlaif.pipeline.runner import run_recipe
from rlaif.pipeline.summary import summary_lines
from rlaif.publish.dataset_card import count_context
from rlaif.publish.report import write_report
from rlaif.store.versions import read_table
from tests.conftest import write_prompts
from tests.det_server import DetServer

PRICES = {
    "det": {"prompt_per_mtok": 1.5, "completion_per_mtok": 6.0},
    "det-judge": {"prompt_per_mtok": 3.0, "completion_per_mtok": 15.0},
}


def recipe_of(tmp_path, url: str, prices=PRICES, gold: str | None = None, prompts: int = 5, **extra):
    path = write_prompts(
        tmp_path / "prompts.jsonl",
        [f"Cost question {i}: explain thing number {i} in some detail." for i in range(prompts)],
    )
    endpoint = {"backend": "openai", "base_url": url}
    judge = {**endpoint, "model": "det-judge", **({"gold": gold} if gold else {})}
    return parse_recipe(
        {
            "name": "costs",
            "prompts": {"path": str(path)},
            "samples_per_prompt": 3,
            "judge": judge,
            "policies": [{"name": "p", **endpoint, "model": "det", "params": {"max_tokens": 40}}],
            "filters": {"response_near_duplicate": None},
            "prices": prices,
            **extra,
        }
    )


def test_cost_is_the_stand_ins_tokens_at_the_recipes_prices(tmp_path):
    """Sampling: 10 prompt tokens a call, one completion token a word of the reply; judging: 10 + 1 (the verdict 'a')."""
    with DetServer() as server:
        version, _, manifest, run = run_recipe(recipe_of(tmp_path, server.base_url), tmp_path / "store")
    words = sum(row["completion_tokens"] for row in read_table(tmp_path / "store", version, "generations"))
    assert words == sum(len(row["text"].split()) for row in read_table(tmp_path / "store", version, "generations"))
    sampling = (15 * 10 * 1.5 + words * 6.0) / 1e6  # 5 prompts x 3 samples
    judging = (30 * 10 * 3.0 + 30 * 1 * 15.0) / 1e6  # 3 pairs x 2 orders per prompt
    cost = manifest["cost"]
    assert cost["stages"]["sampling"]["det"]["calls"] == 15 and cost["stages"]["judging"]["det-judge"]["calls"] == 30
    assert cost["stages"]["sampling"]["det"]["usd"] == pytest.approx(sampling)
    assert cost["stages"]["judging"]["det-judge"]["usd"] == pytest.approx(judging)
    assert cost["total_usd"] == pytest.approx(sampling + judging) and cost["unpriced"] == {} and cost["saved_usd"] == 0
    assert cost["tokens"] == manifest["tokens"] == {"prompt": 450, "completion": words + 30}
    total = f"${sampling + judging:.4f}"
    assert any(line.startswith(f"cost: {total}") for line in summary_lines(version, True, manifest, run.stats))
    rows = dict(count_context(manifest)["usage_rows"])  # the dataset card's table
    assert rows["cost total"] == total and rows["cost judging det-judge"].startswith(f"${judging:.4f}: 30 live calls")
    assert (
        f"<td>cost total</td><td>{total}</td>" in write_report(tmp_path / "store", version).read_text()
    )  # the HTML report


def test_a_cached_rerun_costs_nothing_and_says_what_the_cache_saved(tmp_path):
    with DetServer(port=0) as server:
        recipe = recipe_of(tmp_path, server.base_url)
        _, _, first, _ = run_recipe(recipe, tmp_path / "store")
        version, created, again, run = run_recipe(recipe, tmp_path / "store")
    assert not created and again["calls"]["live"] == 0
    assert again["cost"]["total_usd"] == 0 and again["cost"]["saved_usd"] == pytest.approx(first["cost"]["total_usd"])
    assert again["cost"]["stages"]["judging"]["det-judge"]["cached_calls"] == 30
    assert f"cost: $0.0000 (cache saved ${first['cost']['total_usd']:.4f})" in " ".join(
        summary_lines(version, created, again, run.stats)
    )


def test_a_model_without_a_price_has_an_unknown_cost_never_zero(tmp_path):
    with DetServer() as server:
        version, _, manifest, run = run_recipe(
            recipe_of(tmp_path, server.base_url, prices={"det": PRICES["det"]}), tmp_path / "store"
        )
    cost = manifest["cost"]
    assert cost["total_usd"] is None and cost["stages"]["judging"]["det-judge"]["usd"] is None
    assert cost["priced_usd"] == cost["stages"]["sampling"]["det"]["usd"] > 0
    assert "det-judge" in cost["unpriced"] and "prices" in cost["unpriced"]["det-judge"]
    lines = " ".join(summary_lines(version, True, manifest, run.stats))
    assert "priced + unknown" in lines and "cost of det-judge not known" in lines
    assert dict(count_context(manifest)["usage_rows"])["cost judging det-judge"].startswith("unknown")


def test_gold_evaluation_is_its_own_stage(tmp_path):
    gold = tmp_path / "gold.jsonl"
    gold.write_text(
        "".join(
            json.dumps({"prompt": f"Gold {i}?", "chosen": f"good answer {i}", "rejected": f"bad {i}"}) + "\n"
            for i in range(4)
        )
    )
    with DetServer() as server:
        _, _, manifest, _ = run_recipe(recipe_of(tmp_path, server.base_url, gold=str(gold)), tmp_path / "store")
    gold_cost = manifest["cost"]["stages"]["gold"]["det-judge"]
    assert gold_cost["calls"] == 8 and gold_cost["usd"] == pytest.approx(
        (80 * 3.0 + 8 * 15.0) / 1e6
    )  # 4 pairs x 2 orders


def test_prices_and_lines():
    assert usd(PriceSpec(prompt_per_mtok=2, completion_per_mtok=8), 500_000, 250_000) == pytest.approx(3.0)
    assert cost_lines(None) == [] and cost_lines({"stages": {}}) == []


def test_a_run_on_local_models_only_shows_tokens_and_no_unknown_cost():
    """Issue 26 item 11: no "$0.0000 priced + unknown" and "cost of ... not known" lines on every local run."""
    from rlaif.calls.costs import LOCAL

    usage = {
        "calls": 4,
        "prompt_tokens": 800,
        "completion_tokens": 40,
        "cached_calls": 0,
        "usd": None,
        "saved_usd": None,
    }
    cost = {
        "stages": {"sampling": {"smollm2-135m": usage}, "judging": {"smollm2-135m": usage}},
        "total_usd": None,
        "priced_usd": 0.0,
        "saved_usd": 0.0,
        "unpriced": {"smollm2-135m": LOCAL},
    }
    lines = cost_lines(cost)
    assert len(lines) == 1 and "unknown" not in lines[0] and "not known" not in lines[0]
    assert lines[0].startswith("tokens: sampling smollm2-135m: 800 prompt + 40 completion; judging smollm2-135m")
    # the card's and the report's rows, and the dry run's table: no "unknown" either (the first-hour walkthrough)
    from rlaif.calls.costs import cost_rows
    from rlaif.pipeline.dry_run import estimate_lines

    assert cost_rows(cost) == [("cost", "not billed: local models only (`prices:` can count their compute)")]
    estimate = {
        **cost,
        "calls": {"to_send": 8, "cached": 0},
        "tokens": {"prompt": 1600, "completion": 80},
        "prompts": 2,
        "prompts_dropped": {},
        "notes": [],
    }
    estimate["stages"] = {
        stage: {m: {**u, "cached_calls": 0} for m, u in models.items()} for stage, models in cost["stages"].items()
    }
    header, rows, notes = estimate_lines(estimate)
    assert "cost" not in header and not any("unknown" in cell for row in rows for cell in row)
    assert notes[-1].startswith("cost: not billed")
