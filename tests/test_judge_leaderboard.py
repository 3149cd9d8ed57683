"""benchmarks/judge_leaderboard.py: every grid cell is a valid judge, debias off/on and the jury reuse
the single-judge rows' calls (same cache keys), and the debiasing analysis of saved outcomes."""

from __future__ import annotations

import doctest
import importlib
import sys
from dataclasses import asdict

import pytest

from tests.conftest import ROOT

sys.path.insert(0, str(ROOT / "benchmarks"))
board = importlib.import_module("judge_leaderboard")


def recipe_of(grid, cell, debias):
    from rlaif.config.recipe import parse_recipe

    data, judge = board.judge_section(grid, cell, debias, threads=1)
    return parse_recipe({**data, "name": board.row_name(cell, debias), "judge": judge, "store": None}, "grid")


def keys(spec, items):
    """The request-cache keys of a pairwise judge's both-order calls on `items` (as rlaif.calls.engine makes them)."""
    from rlaif.calls.cache import call_key
    from rlaif.calls.engine import backend_identity
    from rlaif.judges.common import judge_template
    from rlaif.judges.pairwise import score_requests

    template = judge_template(spec)
    requests = [r for prompt, a, b in items for r in score_requests(template, prompt, a, b, spec)]
    return [call_key("score", backend_identity(spec), asdict(r), template.sha256) for r in requests]


@pytest.fixture
def items():
    from rlaif.core.gold import load_gold
    from rlaif.judges.evaluate import gold_items

    gold = board.gold_path(board.load_grid(), "mt-bench")
    if not gold.is_file():
        pytest.skip(f"{gold} not present")
    return gold_items(load_gold(gold, 3), seed=0)[0]


def test_doctests_of_the_script():
    assert doctest.testmod(board).failed == 0


def test_every_cell_of_every_plan_is_a_valid_judge():
    grid = board.load_grid()
    for plan in grid["plans"].values():
        for cell in board.expand(plan):
            for debias in (True, False):
                judge = recipe_of(grid, cell, debias).judge
                assert judge.type == cell["type"] and judge.debias is debias and judge.chain_of_thought is cell["cot"]
                if cell["model"] != board.JURY:
                    assert judge.model == cell["model"]


def test_debias_off_and_the_jury_make_the_single_judges_calls(items):
    from rlaif.judges.jury import members_of

    grid = board.load_grid()
    single = {
        name: keys(recipe_of(grid, {"model": name, "type": "pairwise", "cot": False}, True).judge, items)
        for name in grid["models"]
    }
    off = recipe_of(grid, {"model": "smollm2-135m", "type": "pairwise", "cot": False}, False).judge
    assert keys(off, items) == single["smollm2-135m"]
    jury = recipe_of(grid, {"model": board.JURY, "type": "pairwise", "cot": False}, True).judge
    members = members_of(jury)
    assert [m.spec.model for m in members] == grid["jury"]["members"]
    for member in members:
        assert keys(member.spec, items) == single[member.spec.model]


def test_debias_rules_on_outcomes():
    # every pair prefers the first shown by the same shift: the mean and the median find it, per-pair too
    biased = [
        {"p_a_ab": 0.9, "p_a_ba": 0.5, "chosen_is_a": True},
        {"p_a_ab": 0.5, "p_a_ba": 0.1, "chosen_is_a": False},
    ]
    table = board.debias_rules(biased)
    assert table["off"][2] == 0.0  # raw: the two orders never agree
    assert table["run-wide mean"][0] == pytest.approx(1.0986, abs=1e-3)
    assert table["run-wide mean"][2] == 1.0 and table["run-wide mean"][1] == 1.0
    assert table["per pair (logit mean)"][2] == 1.0
    # a shift breaks a consistent near-tie and fixes a biased pair: both are counted
    assert board.flips([{"p_a_ab": 0.9, "p_a_ba": 0.4}, {"p_a_ab": 0.55, "p_a_ba": 0.6}], 0.5) == (1, 1)


def test_length_split():
    outcomes = [
        {"chosen_longer": 1.0, "p_chosen": 0.8},  # humans: longer; judge: the chosen (longer)
        {"chosen_longer": 0.0, "p_chosen": 0.2},  # humans: shorter; judge: the rejected (longer)
        {"chosen_longer": 0.0, "p_chosen": 0.7},  # humans: shorter; judge: the chosen (shorter)
        {"chosen_longer": 0.5, "p_chosen": 0.9},  # equal length: left out
    ]
    assert board.length_split(outcomes) == (1.0, 0.5, 1, 2)
