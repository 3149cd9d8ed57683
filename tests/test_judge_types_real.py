"""Every judge type with the real smollm2-135m (transformers backend), on fixed responses."""

from __future__ import annotations

import pytest

from rlaif.calls.cache import CallCache, CallStats
from rlaif.config.recipe import BinaryJudge, FilterSpec, JudgeBase, ListwiseJudge, PairwiseJudge, PointwiseJudge
from rlaif.core.schema import Generation, Prompt
from rlaif.judges.stage import judge_stage
from rlaif.quality.filters import select_candidates

pytestmark = pytest.mark.slow
FILTERS = FilterSpec(consistency=False, min_margin=0.0)
PROMPTS = [
    Prompt(id="capital", messages=[{"role": "user", "content": "What is the capital of France?"}]),
    Prompt(id="add", messages=[{"role": "user", "content": "What is 2 + 3?"}]),
]
ANSWERS = {
    "capital": ["The capital of France is Paris.", "France's capital is Berlin.", "I like turtles."],
    "add": ["2 + 3 = 5.", "2 + 3 is 7.", "Numbers are fun."],
}
GENERATIONS = [
    Generation(prompt_id=pid, policy="fixed", model="-", sample_index=i, text=text, finish_reason="stop")
    for pid, texts in ANSWERS.items()
    for i, text in enumerate(texts)
]


def judge(spec: JudgeBase, tmp_path):
    stats = CallStats()
    outcome = judge_stage(PROMPTS, GENERATIONS, spec, FILTERS, CallCache(tmp_path / "cache.sqlite"), stats)
    pairs, dropped = select_candidates(outcome, FILTERS)
    assert stats.failed == 0 and stats.live > 0
    assert len(pairs) + sum(dropped.values()) == len(outcome.items)
    return outcome, pairs, stats


def test_listwise_real(tmp_path):
    outcome, pairs, stats = judge(ListwiseJudge(permutations=3, pairs="best_vs_worst", batch_size=3), tmp_path)
    assert stats.live == 2 * 3 and len(outcome.rankings) == 2
    for ranking in outcome.rankings:
        assert sorted(ranking.ranks) == [1, 2, 3] or len(set(ranking.ranks)) < 3
        assert ranking.error is None and -1 <= ranking.agreement <= 1
    assert sum(outcome.report["first_choice_by_slot_k3"]) == pytest.approx(1, abs=1e-3)


def test_pointwise_and_binary_real(tmp_path):
    outcome, _, stats = judge(PointwiseJudge(aspects=["helpfulness"], scale=5, batch_size=6), tmp_path)
    assert stats.live == 6 and all(1 <= s <= 5 for r in outcome.rankings for s in r.scores)
    assert len(outcome.feedback) == 6 and {f.label for f in outcome.feedback} <= {True, False}
    outcome, _, stats = judge(BinaryJudge(batch_size=6), tmp_path)
    assert stats.live == 6 and all(0 < f.score < 1 for f in outcome.feedback)
    assert {f.label for f in outcome.feedback} == {True, False}  # the run-median threshold splits them


def test_pairwise_jury_with_principles_and_chain_of_thought_real(tmp_path):
    spec = PairwiseJudge(
        jury=[{"name": "plain"}, {"name": "listwise-style", "template": "prompts/pairwise_judge.j2", "batch_size": 4}],
        principles={"mode": "sample"},
        pairs="first",
        batch_size=4,
    )
    outcome, pairs, stats = judge(spec, tmp_path)
    assert stats.live == 2 * 2  # two prompts, both orders; the second member repeats the first's calls from the cache
    assert outcome.report["inter_judge_agreement"] == 1.0
    cot, _, cot_stats = judge(
        PairwiseJudge(chain_of_thought=True, rationale_tokens=24, pairs="first", batch_size=4), tmp_path
    )
    assert cot_stats.live == 2 * 2 * 2  # rationale + verdict, both orders
    assert all(j.raw_ab.split(" | ")[-1].startswith("[rationale]") for j in cot.table)
