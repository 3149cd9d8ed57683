"""Listwise position debiasing keeps real quality differences (issue 23, item 1).

Whole `run_recipe` runs with scripted backends: three policies answer every prompt once (K = 3),
in recipe order, and a scripted listwise judge picks the best output with first-choice
probabilities proportional to slot bias x item strength. With the old design (original and
reversed order only) the middle response never left the middle slot, so dividing out each
slot's mean first-choice rate erased a middle response's real advantage.
"""

from __future__ import annotations

import json
import re
from collections import Counter

import pytest

from rlaif.backends.base import Completion, Scores
from rlaif.config.recipe import parse_recipe
from rlaif.core.errors import RecipeError
from rlaif.pipeline.runner import run_recipe
from rlaif.store.versions import load_manifest, read_table
from tests.badinput import GOOD, assert_clean_failure, run_cli, write_recipe
from tests.fakes import FakeBackend

POLICIES = ("left", "best", "rght")  # same-length names, so no length-bias rule has anything to do
SHOWN = re.compile(r"# Output \(([a-h])\):\n(.*?)\n")


def recipe(tmp_path, judge=None, prompts=4):
    path = tmp_path / "prompts.jsonl"
    path.write_text("".join(json.dumps({"id": f"q{i}", "prompt": f"Question {i}?"}) + "\n" for i in range(prompts)))
    endpoint = {"backend": "openai", "base_url": "http://127.0.0.1:9/v1"}
    return parse_recipe(
        {
            "name": "listwise-debias",
            "prompts": {"path": str(path)},
            "policies": [
                {**endpoint, "name": name, "model": f"m-{name}", "params": {"max_tokens": 16}} for name in POLICIES
            ],
            "samples_per_prompt": 1,
            "judge": {**endpoint, "model": "judge", "type": "listwise", **(judge or {})},
            "filters": {"response_near_duplicate": None, "min_margin": 0.05},
        }
    )


def scripted_judge(strength, slot_bias, seen):
    """P(slot s first) proportional to slot_bias[s] x strength(text shown in s); records (text, slot) per call."""

    def score(request):
        shown = SHOWN.findall(request.messages[0][1])
        seen.append([text for _, text in shown])
        weights = [slot_bias[slot] * strength(text) for slot, (_, text) in enumerate(shown)]
        return Scores(probs={label: 0.9 * w / sum(weights) for (label, _), w in zip(shown, weights)}, text="Output (a")

    return score


@pytest.fixture
def judged(monkeypatch, tmp_path):
    """Run a recipe with the scripted judge; returns (rankings, pairs, manifest, judge calls)."""
    from rlaif.judges import common
    from rlaif.pipeline import sampling

    def go(strength, slot_bias, judge=None):
        seen: list[list[str]] = []
        judge_fn = scripted_judge(strength, slot_bias, seen)

        def factory(spec):
            answer = lambda r: Completion(
                text=f"{spec.model} answers {r.messages[-1][1]}", finish_reason="stop", completion_tokens=3
            )  # noqa: E731
            return FakeBackend(spec, gen=answer, score=judge_fn)

        monkeypatch.setattr(common, "make_backend", factory)
        monkeypatch.setattr(sampling, "make_backend", factory)
        store = tmp_path / "store"
        version = run_recipe(recipe(tmp_path, judge), store)[0]
        return (
            read_table(store, version, "rankings"),
            read_table(store, version, "pairs"),
            load_manifest(store, version),
            seen,
        )

    return go


def prefers_best(text: str) -> float:
    return 3.0 if text.startswith("m-best") else 1.0


def scores_by_policy(rankings) -> list[dict[str, float]]:
    return [dict(zip(row["policies"], row["scores"])) for row in rankings]


def test_an_unbiased_judge_keeps_its_preference_for_the_middle_policy(judged):
    rankings, pairs, manifest, _ = judged(prefers_best, [1.0, 1.0, 1.0])
    assert len(rankings) == 4 and all(
        row["policies"] == list(POLICIES) for row in rankings
    )  # the preferred one is in the middle
    for scores in scores_by_policy(rankings):
        assert scores == pytest.approx({"left": 0.2, "best": 0.6, "rght": 0.2}, abs=1e-6)
    assert manifest["judge"]["first_choice_by_slot_k3"] == pytest.approx([1 / 3] * 3, abs=1e-4)
    assert len(pairs) == 8 and all(p["chosen_policy"] == "best" for p in pairs)  # left vs rght is a tie, dropped


def test_a_pure_slot_bias_without_preference_gives_uniform_strengths(judged):
    rankings, pairs, manifest, _ = judged(lambda text: 1.0, [0.6, 0.3, 0.1])
    for scores in scores_by_policy(rankings):
        assert list(scores.values()) == pytest.approx([1 / 3] * 3, abs=1e-6)
    assert manifest["judge"]["first_choice_by_slot_k3"] == pytest.approx([0.6, 0.3, 0.1], abs=1e-4)
    assert pairs == [] and manifest["counts"]["kept"] == 0


def test_a_slot_bias_on_top_of_a_preference_is_removed_exactly(judged):
    rankings, pairs, manifest, _ = judged(prefers_best, [0.6, 0.3, 0.1])
    for scores in scores_by_policy(rankings):
        assert scores == pytest.approx({"left": 0.2, "best": 0.6, "rght": 0.2}, abs=1e-6)
    assert manifest["judge"]["first_choice_by_slot_k3"] == pytest.approx([0.6, 0.3, 0.1], abs=1e-4)
    assert pairs and all(p["chosen_policy"] == "best" for p in pairs)


def test_by_default_every_response_is_shown_once_in_every_slot(judged):
    _, _, manifest, seen = judged(prefers_best, [1.0, 1.0, 1.0])
    assert len(seen) == 4 * 3 and manifest["judge"]["permutations"] == 3  # K orders per prompt
    for prompt in range(4):
        calls = [shown for shown in seen if shown[0].endswith(f"Question {prompt}?")]
        slots = Counter((text.split()[0], slot) for shown in calls for slot, text in enumerate(shown))
        assert slots == Counter({(f"m-{p}", s): 1 for p in POLICIES for s in range(3)})


def test_a_multiple_of_k_permutations_stays_balanced(judged):
    rankings, _, manifest, seen = judged(prefers_best, [0.6, 0.3, 0.1], judge={"permutations": 6})
    assert len(seen) == 4 * 6 and len({tuple(shown) for shown in seen}) == 4 * 6  # 6 distinct orders per prompt
    slots = Counter((text.split()[0], slot) for shown in seen for slot, text in enumerate(shown))
    assert set(slots.values()) == {4 * 2}
    for scores in scores_by_policy(rankings):
        assert scores == pytest.approx({"left": 0.2, "best": 0.6, "rght": 0.2}, abs=1e-6)


def listwise(samples: int, policies: int = 1, **judge) -> dict:
    return {
        **GOOD,
        "policies": [{"name": f"p{i}", "model": "smollm2-135m"} for i in range(policies)],
        "samples_per_prompt": samples,
        "judge": {"type": "listwise", **judge},
    }


@pytest.mark.parametrize(
    "data",
    [
        listwise(3, permutations=6),
        listwise(3, permutations=3),
        listwise(2, permutations=2),
        listwise(3, permutations=2, debias=False),
        listwise(1, 3),
    ],
    ids=["6-for-3", "3-for-3", "all-2", "no-debias", "3-policies"],
)
def test_balanced_or_undebiased_permutations_are_accepted(data):
    parse_recipe(data)


def test_more_orders_than_exist_are_refused():
    """Issue 26 item 9: 5 orders of 2 responses used to be accepted as "all of them" (2) while the summary said 5."""
    with pytest.raises(RecipeError, match="only 2 distinct orders"):
        parse_recipe(listwise(2, permutations=5))


@pytest.mark.parametrize(
    "data, k",
    [(listwise(3, permutations=2), 3), (listwise(2, 2, permutations=6), 4), (listwise(2, permutations=1), 2)],
    ids=["2-for-3", "6-for-4", "1-for-2"],
)
def test_unbalanced_permutations_with_debias_are_an_error_naming_the_fix(data, k):
    with pytest.raises(RecipeError) as caught:
        parse_recipe(data, "r.yaml")
    message = str(caught.value)
    assert "r.yaml: judge.permutations: " in message and f"{k} responses per prompt" in message
    assert f"a multiple of {k}" in message and "debias: false" in message


def test_the_cli_refuses_an_unbalanced_listwise_recipe(tmp_path):
    path = write_recipe(tmp_path, listwise(3, permutations=2))
    result = run_cli("run", str(path), "--store", str(tmp_path / "store"))
    assert_clean_failure(result, f"{path}: judge.permutations:", "a multiple of 3", store=tmp_path / "store")


def test_the_run_prior_is_the_mean_of_the_prompts_priors_as_pride_pools_them():
    """PriDe (chujiezheng/LLM-MCQ-Bias, debias_pride.py) averages each sample's softmaxed prior over the
    samples (np.mean(all_priors, axis=0)); a geometric pooling of the log-priors gives 0.75 / 0.25 here."""
    from rlaif.judges.listwise import slot_prior

    biased, unbiased = [[0.9, 0.1], [0.9, 0.1]], [[0.5, 0.5], [0.5, 0.5]]
    assert slot_prior([biased, unbiased], 2) == pytest.approx([0.7, 0.3], abs=1e-9)
