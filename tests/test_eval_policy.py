"""`rlaif eval-policy`: win rate of a policy over a baseline, judged in both orders, with the judge's quality."""

from __future__ import annotations

import json

import pytest

from rlaif.config.recipe import Recipe
from rlaif.core.schema import Generation, Judgment, Prompt
from rlaif.training.eval_policy import QUALITY_UNKNOWN, judge_quality, new_is_a, pair_items, settle, win_figures
from tests.badinput import assert_clean_failure, run_cli, write_recipe
from tests.conftest import MT_BENCH_GOLD, ROOT, shared_data, write_prompts


def gen(prompt_id: str, policy: str, text: str | None, error: str | None = None) -> Generation:
    return Generation(prompt_id, policy, "m", 0, text, None if text is None else "stop", error=error)


def judgment(p_a: float | None, error: str | None = None) -> Judgment:
    return Judgment("p", "a", "b", p_a, p_a, True, "", "", "t", "", "m", p_a=p_a, error=error)


def test_pairs_put_new_on_either_side_and_read_the_verdict_back():
    prompts = [Prompt(id=f"p{i}", messages=[{"role": "user", "content": "q"}]) for i in range(5)]
    new = [
        gen("p0", "new", "long answer"),
        gen("p1", "new", "same"),
        gen("p2", "new", None, "timeout"),
        gen("p3", "new", "x"),
        gen("p4", "new", "y"),
    ]
    old = [
        gen("p0", "baseline", "short"),
        gen("p1", "baseline", "same"),
        gen("p2", "baseline", "b"),
        gen("p3", "baseline", "z"),
        gen("p4", "baseline", "w"),
    ]
    items, outcomes = pair_items(prompts, new, old, seed=0)
    assert len(items) == 3  # identical and failed samples need no judge
    for outcome, (_, a, _b) in zip([o for o in outcomes if o["item"] is not None], items):
        assert (a.policy == "new") == outcome["new_is_a"] == new_is_a(0, int(outcome["prompt_id"][1]))
    p_new = [0.8, 0.3, None]  # what the judge said about NEW on the three judged prompts
    judgments = [
        judgment(p if o["new_is_a"] else (None if p is None else 1 - p), None if p is not None else "unreadable")
        for p, o in zip(p_new, [o for o in outcomes if o["item"] is not None])
    ]
    settled = settle(outcomes, judgments)
    assert [round(o["p_new"], 6) if o["p_new"] is not None else None for o in settled] == [0.8, 0.5, None, 0.3, None]
    figures = win_figures(settled)
    assert (
        figures["wins"],
        figures["losses"],
        figures["ties"],
        figures["identical"],
        figures["failed"],
        figures["n"],
    ) == (1, 1, 1, 1, 2, 3)
    assert figures["win_rate"] == 0.5 and figures["win_rate_ci95"][0] < 0.5 < figures["win_rate_ci95"][1]
    assert any(f.startswith("sampling failed: timeout") for f in figures["failures"]) and any(
        f.startswith("judgment failed") for f in figures["failures"]
    )


def test_without_gold_the_judge_quality_is_said_to_be_unknown(tmp_path):
    recipe = Recipe(name="x", policies=[{"name": "p"}])
    assert judge_quality(recipe, tmp_path) == (None, QUALITY_UNKNOWN)
    assert "add judge.gold" in QUALITY_UNKNOWN


def tiny_recipe(folder, gold: bool) -> str:
    judge = {
        "model": "smollm2-135m",
        "template": str(ROOT / "rlaif/judges/prompts/pairwise_judge.j2"),
        "batch_size": 4,
    }
    if gold:
        judge.update(gold=str(shared_data(MT_BENCH_GOLD)), gold_limit=2)
    recipe = {
        "name": "evalp",
        "policies": [{"name": "p", "model": "smollm2-135m", "batch_size": 4, "params": {"max_tokens": 12}}],
        "judge": judge,
    }
    return str(write_recipe(folder, recipe))


@pytest.mark.slow
def test_eval_policy_same_model_is_a_coin_flip_and_reruns_are_cached(tmp_path):
    prompts = write_prompts(
        tmp_path / "held_out.jsonl", ["Say hi.", "Name a colour.", "What is 2+2?", "Give a fruit."]
    )
    args = [
        "eval-policy",
        "--model",
        "smollm2-135m",
        "--baseline",
        "smollm2-135m",
        "--prompts",
        str(prompts),
        "--judge",
        tiny_recipe(tmp_path, gold=True),
        "--limit",
        "3",
        "--temperature",
        "0.7",
        "--baseline-temperature",
        "1.2",
        "--store",
        str(tmp_path / "store"),
    ]
    first = run_cli(*args, "--json", timeout=600, process=True)
    assert first.returncode == 0, first.stderr
    result = json.loads(first.stdout)
    for key in (
        "win_rate",
        "win_rate_ci95",
        "wins",
        "losses",
        "ties",
        "failed",
        "n",
        "mean_p_new",
        "position_bias",
        "judge_quality",
        "calls",
        "sampling",
    ):
        assert key in result, key
    assert result["n"] + result["failed"] == 3 and result["wins"] + result["losses"] + result["ties"] == result["n"]
    low, high = result["win_rate_ci95"]
    assert low < 0.5 < high and 0.0 <= result["win_rate"] <= 1.0
    assert result["sampling"]["model"]["temperature"] == 0.7 and result["sampling"]["baseline"]["temperature"] == 1.2
    assert (
        result["judge_quality"]["n"] + result["judge_quality"].get("failures", 0) == 2
        and "agreement" in result["judge_quality"]
    )
    assert result["calls"]["live"] > 0
    again = run_cli(*args, timeout=600, process=True)
    assert again.returncode == 0, again.stderr
    out = " ".join(again.stdout.split())
    assert (
        f"win rate {result['win_rate']:.2f}" in out
        and "judge on 2 gold pairs: agreement" in out
        and "calls: live 0," in out
    )


@pytest.mark.parametrize(
    ("change", "needles"),
    [
        ({"--prompts": "missing.jsonl"}, ["missing.jsonl", "check the file given to --prompts"]),  # not the recipe
        ({"--judge": "nope.yaml"}, ["nope.yaml"]),
        ({"--model": "no/such/model"}, ["--model 'no/such/model'"]),
        ({"--baseline": "no/such/base"}, ["--baseline 'no/such/base'"]),
    ],
)
def test_bad_eval_policy_inputs_exit_2(tmp_path, change, needles):
    prompts = write_prompts(tmp_path / "p.jsonl", ["Say hi."])
    options = {
        "--model": "smollm2-135m",
        "--baseline": "smollm2-135m",
        "--prompts": str(prompts),
        "--judge": tiny_recipe(tmp_path, gold=False),
        **change,
    }
    args = [x for pair in options.items() for x in pair]
    assert_clean_failure(
        run_cli("eval-policy", *args, "--store", str(tmp_path / "store")), *needles, store=tmp_path / "store"
    )
