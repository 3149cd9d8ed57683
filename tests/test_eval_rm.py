"""`rlaif eval-rm`: a reward model's accuracy on the shared human-labelled pairs, the length baseline,
and the labelling judge's quality for a model of the store."""

from __future__ import annotations

import json
import shutil
from functools import partial

import pytest

from rlaif.publish.model_card import render_model_card
from rlaif.training.eval_rm import rm_figures
from tests.badinput import assert_clean_failure, run_cli
from tests.conftest import MT_BENCH_GOLD, shared_data
from tests.test_reward_server import reward_model  # noqa: F401 - the tiny real reward model fixture

GOLD = "GOLD"  # in the bad-input cases: a two-row gold file of the test's own (the inputs under test are the others)
JUDGE_EVAL = {"n": 40, "agreement": 0.55, "agreement_ci95": [0.4, 0.69], "baseline_longer": 0.62, "warnings": []}


def test_rm_figures_count_ties_half_and_compare_with_the_longer_rule():
    figures = rm_figures([2.0, 0.0, 1.0], [1.0, 1.0, 1.0], [1.0, 0.0, 0.5])
    assert (figures["n"], figures["accuracy"], figures["baseline_longer"], figures["baseline_shorter"]) == (
        3,
        0.5,
        0.5,
        0.5,
    )
    assert (
        figures["prefers_longer"] == 1.0 and figures["mean_margin"] == 0.0
    )  # row 1: picks the longer; row 2: picks the longer (rejected is longer)
    assert figures["accuracy_ci95"][0] < 0.5 < figures["accuracy_ci95"][1]


@pytest.fixture
def stored_rm(reward_model, tmp_path):  # noqa: F811
    """The tiny reward model committed to a store as a trained model, with its dataset's judge figures."""
    from rlaif.store.models import commit_model, model_id_for, new_model_workdir

    store = tmp_path / "store"
    model_id = model_id_for("rm-test", {"dataset": "demo-0123456789ab"})
    workdir = new_model_workdir(store, model_id)
    shutil.copytree(reward_model, workdir / "model")
    manifest = {
        "algorithm": "rm",
        "base_model": "smollm2-135m",
        "dataset": {"id": "demo-0123456789ab", "name": "demo", "counts": {}, "eval": JUDGE_EVAL},
    }
    commit_model(store, model_id, workdir, manifest, card=partial(render_model_card, store=store))
    return store, model_id


@pytest.mark.slow
def test_eval_rm_on_the_shared_human_pairs(stored_rm):
    store, model_id = stored_rm
    gold = shared_data(MT_BENCH_GOLD)
    args = ("eval-rm", "--model", model_id, "--gold", str(gold), "--limit", "8", "--store", str(store))
    result = run_cli(
        *args, "--json", process=True, env={"RLAIF_PROGRESS": "1"}
    )  # the model loads and scores: a process
    assert result.returncode == 0, result.stderr
    assert "scoring the gold pairs with" in result.stderr and "16/16 (100%)" in result.stderr  # progress, not silence
    figures = json.loads(result.stdout)
    assert figures["n"] == 8 and 0.0 <= figures["accuracy"] <= 1.0 and len(figures["accuracy_ci95"]) == 2
    assert figures["baseline_longer"] is not None and len(figures["rows"]) == 8 and figures["gold"]["rows"] == 8
    assert figures["trained_on"] == {
        "algorithm": "rm",
        "base_model": "smollm2-135m",
        "dataset": "demo-0123456789ab",
        "judge_quality": JUDGE_EVAL,
    }
    text = run_cli(*args, process=True)
    assert text.returncode == 0, text.stderr
    out = " ".join(text.stdout.split())
    assert (
        f"accuracy {figures['accuracy']:.2f}" in out and f'"pick the longer" {figures["baseline_longer"]:.2f}' in out
    )
    assert "trained (rm) on demo-0123456789ab, labelled by a judge with: judge on 40 gold pairs: agreement 0.55" in out


@pytest.mark.parametrize(
    ("args", "needles"),
    [
        (["--model", "no/such/rm", "--gold", GOLD], ["--model 'no/such/rm'", "not a model folder"]),
        (  # issue 25 item 8: a causal LM would be scored by a new, random head
            ["--model", "smollm2-135m", "--gold", GOLD],
            ["--model 'smollm2-135m'", "LlamaForCausalLM, not a reward model", "rlaif train rm"],
        ),
        (["--model", "smollm2-135m", "--gold", "missing.jsonl"], ["missing.jsonl", "gold file not found"]),
        (["--model", "smollm2-135m", "--gold", GOLD, "--judge", "nope.yaml"], ["nope.yaml"]),
    ],
)
def test_bad_eval_rm_inputs_exit_2(tmp_path, args, needles):
    gold = tmp_path / "gold.jsonl"
    row = {"prompt": [{"role": "user", "content": "Say hi."}], "chosen": "Hi!", "rejected": "No."}
    gold.write_text(json.dumps(row) + "\n" + json.dumps({**row, "chosen": "Hello.", "rejected": "Go away."}) + "\n")
    args = [str(gold) if arg == GOLD else arg for arg in args]
    assert_clean_failure(
        run_cli("eval-rm", *args, "--store", str(tmp_path / "store")), *needles, store=tmp_path / "store"
    )
