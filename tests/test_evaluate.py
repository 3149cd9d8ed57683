"""Judge evaluation on human labels: metrics on crafted inputs, a scripted judge whose figures are
worked out by hand, the cache and the saved result, and the real CLI with the embedded model."""

import json
import math
import os
import re
import subprocess
import sys

import pytest
from typer.testing import CliRunner

from rlaif.backends.base import Scores
from rlaif.config.recipe import parse_recipe
from rlaif.core.gold import load_gold
from rlaif.judges.evaluate import (
    agreement,
    baseline_longer,
    baseline_shorter,
    chosen_is_a,
    cohen_kappa,
    evaluate_judge,
    expected_calibration_error,
    gold_items,
    prefers_longer,
)
from tests.conftest import MT_BENCH_GOLD, ROOT, shared_data
from tests.fakes import FakeBackend

REQUIRED = (
    "n",
    "agreement",
    "position_consistency",
    "prefers_longer",
    "kappa",
    "ece",
    "failures",
    "baseline_longer",
    "baseline_shorter",
)


def test_metrics_on_crafted_inputs():
    assert agreement([1.0, 0.7, 0.5, 0.3, 0.0]) == pytest.approx(0.5)
    assert baseline_longer([1.0, 0.0, 0.0, 0.5]) == pytest.approx(0.375)
    assert baseline_shorter([1.0, 0.0, 0.0, 0.5]) == pytest.approx(0.625)
    # judge picks chosen, chosen, rejected, tie; chosen longer, shorter, longer, longer
    assert prefers_longer([0.9, 0.8, 0.3, 0.5], [1.0, 0.0, 1.0, 1.0]) == pytest.approx((1 + 0 + 0 + 0.5) / 4)
    assert prefers_longer([0.9], [0.5]) is None  # equal lengths only: undefined, not NaN
    # 2x2 table: a/a 20, a/b 5, b/a 10, b/b 15 -> po 0.7, pe 0.5*0.6 + 0.5*0.4 = 0.5 -> kappa 0.4
    judge = ["a"] * 25 + ["b"] * 25
    human = ["a"] * 20 + ["b"] * 5 + ["a"] * 10 + ["b"] * 15
    assert cohen_kappa(judge, human) == pytest.approx(0.4)
    assert cohen_kappa(["a", "b"], ["b", "a"]) == pytest.approx(-1.0)
    assert cohen_kappa(["tie", "a"], ["a", "a"]) == pytest.approx(0.0)  # a tie is a third label
    # ECE: bin [0.9,0.95) holds 0.9/0.1/0.9 (2 of 3 right), bin [0.6,0.65) holds 0.6 (wrong)
    ece = expected_calibration_error([0.9, 0.1, 0.9, 0.4])
    assert ece == pytest.approx((3 * abs(0.9 - 2 / 3) + 1 * abs(0.6 - 0)) / 4)
    assert expected_calibration_error([]) is None


def test_ab_order_is_seeded_per_row_and_independent_of_limit(tmp_path):
    path = tmp_path / "g.jsonl"
    path.write_text(
        "".join(json.dumps({"prompt": f"q{i}", "chosen": f"c{i}", "rejected": f"r{i}"}) + "\n" for i in range(40))
    )
    items, flags = gold_items(load_gold(path), seed=0)
    _, first_ten = gold_items(load_gold(path, limit=10), seed=0)
    assert first_ten == flags[:10]
    assert 0 < sum(flags) < 40 and flags != gold_items(load_gold(path), seed=1)[1]
    for (_prompt, a, b), flag in zip(items, flags):
        assert (a.text.startswith("c")) == flag and b.text.startswith("r") == flag
        assert a.id != b.id and a.finish_reason == "stop" and a.policy == "gold"


def outputs(request):
    content = request.messages[0][1]
    a = re.search(r"# Output \(a\):\n(.*?)\n\n# Output \(b\)", content, re.S).group(1)
    b = re.search(r"# Output \(b\):\n(.*?)\n\n# Which", content, re.S).group(1)
    return a, b


def scripted_judge(request):
    """Prefers a response containing GOOD by 2 logits and the first position by 3; fails on FAIL."""
    a, b = outputs(request)
    if "FAIL" in a + b:
        raise TimeoutError("judge timed out")
    p = 1 / (1 + math.exp(-(2 * (("GOOD" in a) - ("GOOD" in b)) + 3)))
    return Scores(probs={"a": 0.9 * p, "b": 0.9 * (1 - p)}, text="Output (")


# (chosen, rejected): the judge is right on rows 1, 2, 4, 6, wrong on 3, fails on 5
GOLD = [
    ("GOOD long answer here", "bad"),  # chosen longer
    ("GOOD", "bad but much longer answer"),  # chosen shorter
    ("meh", "GOOD and longer"),  # chosen shorter; judge picks the longer rejected one
    ("GOOD x", "other"),  # chosen longer
    ("FAIL text", "GOOD"),  # judge failure
    ("GOOD", "nope"),  # equal length
]


@pytest.fixture
def gold_file(tmp_path):
    path = tmp_path / "gold.jsonl"
    path.write_text(
        "".join(
            json.dumps({"prompt": [{"role": "user", "content": f"q{i}"}], "chosen": c, "rejected": r}) + "\n"
            for i, (c, r) in enumerate(GOLD)
        )
    )
    return path


class ScriptedBackend(FakeBackend):
    """The scripted judge, registered under the recipe's backend name (see `fake_judge`)."""

    calls_total = 0

    def __init__(self, spec):
        super().__init__(spec, score=scripted_judge)

    def score(self, requests, on_result):
        ScriptedBackend.calls_total += len(requests)
        super().score(requests, on_result)


@pytest.fixture
def fake_judge(monkeypatch):
    """Every judge built by name gets the scripted backend, whichever module builds it."""
    from rlaif import backends

    monkeypatch.setitem(backends.BACKENDS, "transformers", "tests.test_evaluate:ScriptedBackend")
    monkeypatch.setattr(ScriptedBackend, "calls_total", 0)
    return ScriptedBackend


RECIPE = parse_recipe({"name": "t", "policies": [{"name": "p"}]})


def test_scripted_judge_figures_match_hand_computation(gold_file, fake_judge, tmp_path):
    store = tmp_path / "store"
    result = evaluate_judge(RECIPE, gold_file, store, seed=0)
    assert result["n"] == 5 and result["failures"] == 1 and result["calls"] == {"live": 10, "cached": 0, "failed": 2}
    assert result["agreement"] == pytest.approx(4 / 5)
    assert result["baseline_longer"] == pytest.approx((1 + 0 + 0 + 1 + 0.5) / 5)
    assert result["baseline_shorter"] == pytest.approx((0 + 1 + 1 + 0 + 0.5) / 5)
    assert result["prefers_longer"] == pytest.approx(3 / 4)  # rows 1, 3, 4 of the 4 unequal ones
    assert result["position_consistency"] == 0.0  # raw: the first position always wins
    assert result["position_consistency_debiased"] == 1.0  # the 3-logit shift is measured and removed
    assert result["position_bias"]["beta"] == pytest.approx(3.0, abs=1e-3)
    sigma2 = 1 / (1 + math.exp(-2))  # debiased confidence of every row
    assert result["ece"] == pytest.approx(abs(sigma2 - 4 / 5), abs=1e-4)
    assert result["mean_prob_mass"] == pytest.approx(0.9)
    # kappa in the randomised A/B space, by hand from the seeded order
    flags = [chosen_is_a(0, row) for row in (1, 2, 3, 4, 6)]
    right = [True, True, False, True, True]
    human = ["a" if f else "b" for f in flags]
    judge = [h if r else ("b" if h == "a" else "a") for h, r in zip(human, right)]
    observed = sum(x == y for x, y in zip(judge, human)) / 5
    chance = sum(judge.count(k) * human.count(k) for k in "ab") / 25
    assert result["kappa"] is not None and result["kappa"] == (
        None if chance == 1 else pytest.approx((observed - chance) / (1 - chance), abs=1e-4)
    )

    saved = json.loads((store / "evals").joinpath(result["path"].split("/")[-1]).read_text())
    assert saved["gold"]["rows"] == 6 and len(saved["gold"]["sha256"]) == 64 and saved["seed"] == 0
    assert [o["row"] for o in saved["outcomes"]] == [1, 2, 3, 4, 5, 6]
    assert "TimeoutError" in saved["outcomes"][4]["error"] and saved["outcomes"][4]["p_chosen"] is None
    assert not list((store / "evals").glob(".tmp-*"))


def test_rerun_is_cached_and_failures_are_retried(gold_file, fake_judge, tmp_path):
    store = tmp_path / "store"
    first = evaluate_judge(RECIPE, gold_file, store)
    calls_before = fake_judge.calls_total
    second = evaluate_judge(RECIPE, gold_file, store)
    assert second["calls"] == {"live": 0, "cached": 10, "failed": 2}
    assert fake_judge.calls_total - calls_before == 2  # only the failed requests were sent again
    assert second["path"] == first["path"] and second["agreement"] == first["agreement"]
    other_seed = evaluate_judge(RECIPE, gold_file, store, seed=1)
    assert other_seed["path"] != first["path"]


def test_cli_json_prints_only_the_result(gold_file, fake_judge, tmp_path, monkeypatch):
    from rlaif.cli import app

    monkeypatch.setenv("RLAIF_PROGRESS", "0")
    result = CliRunner().invoke(
        app,
        [
            "eval-judge",
            "recipes/demo.yaml",
            "--gold",
            str(gold_file),
            "--store",
            str(tmp_path / "s"),
            "--json",
            "--limit",
            "4",
        ],
    )
    assert result.exit_code == 0, result.output
    data = json.loads(result.stdout)
    assert set(REQUIRED) <= set(data) and data["n"] == 4 and data["limit"] == 4
    table = CliRunner().invoke(
        app,
        ["eval-judge", "recipes/demo.yaml", "--gold", str(gold_file), "--store", str(tmp_path / "s"), "--limit", "4"],
    )
    assert table.exit_code == 0 and "always longer" in table.stdout and "cached 8" in table.stdout


def test_help_has_an_example():
    from rlaif.cli import app

    result = CliRunner().invoke(app, ["eval-judge", "--help"])
    assert result.exit_code == 0 and "Example:" in result.stdout


@pytest.mark.slow
def test_real_model_on_mt_bench_rows_through_the_cli(tmp_path):
    args = [
        "eval-judge",
        "recipes/demo.yaml",
        "--gold",
        str(shared_data(MT_BENCH_GOLD)),
        "--limit",
        "5",
        "--json",
        "--store",
        str(tmp_path / "store"),
    ]
    env = {**os.environ, "RLAIF_PROGRESS": "0"}
    result = subprocess.run(
        [sys.executable, "-m", "rlaif.cli", *args], cwd=ROOT, capture_output=True, text=True, timeout=600, env=env
    )
    assert result.returncode == 0, result.stderr
    data = json.loads(result.stdout)  # stdout is only the JSON object
    assert set(REQUIRED) <= set(data)
    assert data["n"] + data["failures"] == 5 and data["calls"]["live"] + data["calls"]["failed"] == 10
    for key in ("agreement", "position_consistency", "prefers_longer", "ece", "baseline_longer", "baseline_shorter"):
        assert 0.0 <= data[key] <= 1.0, key
    assert data["mean_prob_mass"] > 0.5  # the "Output (" prefix puts most probability on a/b
    again = subprocess.run(
        [sys.executable, "-m", "rlaif.cli", *args], cwd=ROOT, capture_output=True, text=True, timeout=600, env=env
    )
    assert json.loads(again.stdout)["calls"]["live"] == 0  # the request cache answered every call
