"""Exact logic of the listwise, pointwise and binary judges, juries, principles and
chain-of-thought, with a scripted backend (the real model is in tests/test_judge_types_real.py)."""

from __future__ import annotations

import math
import re

import pytest

from rlaif.backends.base import Completion, Scores
from rlaif.calls.cache import CallCache, CallStats
from rlaif.config.recipe import BinaryJudge, FilterSpec, ListwiseJudge, PairwiseJudge, PointwiseJudge
from rlaif.core.schema import Generation, Prompt
from rlaif.judges import common
from rlaif.judges.stage import judge_section, judge_stage
from rlaif.quality.filters import select_candidates
from tests.fakes import FakeBackend

FILTERS = FilterSpec(consistency=True, min_margin=0.05, drop_truncated=True)


def gen(prompt_id, index, text, policy="p"):
    return Generation(
        prompt_id=prompt_id, policy=policy, model="m", sample_index=index, text=text, finish_reason="stop"
    )


def run(spec, prompts, generations, tmp_path, filters=FILTERS):
    stats = CallStats()
    outcome = judge_stage(prompts, generations, spec, filters, CallCache(tmp_path / "c.sqlite"), stats)
    pairs, dropped = select_candidates(outcome, filters)
    return outcome, pairs, dropped, stats


def quality(text: str) -> int:
    return int(re.search(r"Q(\d)", text).group(1))


def listwise_fake(slot_bias=0.0):
    """Prefers higher Q<n> (n logits) and slot (a) by `slot_bias` logits."""

    def score(request):
        content = request.messages[0][1]
        shown = re.findall(r"# Output \(([a-h])\):\n(.*?)\n", content)
        logits = [quality(text) + (slot_bias if slot == 0 else 0.0) for slot, (_, text) in enumerate(shown)]
        total = sum(math.exp(x) for x in logits)
        return Scores(
            probs={label: 0.9 * math.exp(x) / total for (label, _), x in zip(shown, logits)}, text="Output (a"
        )

    return score


def prompts_and_gens(qualities):
    prompt = Prompt(id="p0", messages=[{"role": "user", "content": "question"}])
    return [prompt], [gen("p0", i, f"answer Q{q}") for i, q in enumerate(qualities)]


def test_listwise_unshuffles_permutations_and_picks_best_vs_worst(use_backend, tmp_path):
    fake = use_backend(FakeBackend(None, score=listwise_fake(slot_bias=1.0)))
    prompts, gens = prompts_and_gens([2, 5, 1, 3])
    spec = ListwiseJudge(permutations=4, pairs="best_vs_worst")  # one block: every response once in every slot
    outcome, pairs, dropped, stats = run(spec, prompts, gens, tmp_path)
    assert fake.calls == 4 and stats.live == 4
    ranking = outcome.rankings[0]
    assert ranking.ranks == [3, 1, 4, 2] and ranking.judge == "listwise"
    assert (
        len(pairs) == 1
        and pairs[0].chosen[0]["content"] == "answer Q5"
        and pairs[0].rejected[0]["content"] == "answer Q1"
    )
    assert pairs[0].p_chosen > 0.9 and -1 <= ranking.agreement <= 1
    equal_prompts, equal_gens = prompts_and_gens([3, 3, 3, 3])
    equal_gens = [gen("p0", i, f"answer Q3 number {i}") for i in range(4)]
    outcome, _, _, _ = run(spec, equal_prompts, equal_gens, tmp_path)
    assert outcome.report["first_choice_by_slot_k4"][0] > 0.4  # slot (a) is favoured, and it is measured


def test_listwise_pure_position_bias_becomes_a_tie_and_is_dropped(use_backend, tmp_path):
    def first_slot_only(request):
        labels = re.findall(r"# Output \(([a-h])\):", request.messages[0][1])
        return Scores(
            probs={label: (0.9 if n == 0 else 0.1 / (len(labels) - 1)) for n, label in enumerate(labels)}, text=""
        )

    use_backend(FakeBackend(None, score=first_slot_only))
    prompts, gens = prompts_and_gens([1, 1])
    gens[1].text = "answer Q1, said differently"
    outcome, pairs, dropped, _ = run(ListwiseJudge(permutations=2), prompts, gens, tmp_path)
    assert pairs == [] and dropped["low_margin"] + dropped["inconsistent"] == 1
    assert outcome.rankings[0].scores[0] == pytest.approx(outcome.rankings[0].scores[1])


def test_listwise_parse_mode_aggregates_written_rankings_with_borda(use_backend, tmp_path):
    def writer(request):
        content = request.messages[0][1]
        shown = re.findall(r"# Output \(([a-h])\):\n(.*?)\n", content)
        ordered = sorted(shown, key=lambda item: -quality(item[1]))
        return Scores(probs=None, text=" > ".join(f"Output ({label})" for label, _ in ordered))

    use_backend(FakeBackend(None, score=writer))
    prompts, gens = prompts_and_gens([1, 3, 2])
    spec = ListwiseJudge(mode="parse", aggregate="borda", pairs="all")
    outcome, pairs, dropped, _ = run(spec, prompts, gens, tmp_path)
    assert outcome.rankings[0].ranks == [3, 1, 2] and outcome.rankings[0].agreement == 1.0
    assert len(pairs) == 3 and all(quality(p.chosen[0]["content"]) > quality(p.rejected[0]["content"]) for p in pairs)


def test_listwise_unparseable_answers_are_counted_failures(use_backend, tmp_path):
    use_backend(FakeBackend(None, score=lambda r: Scores(probs=None, text="I cannot rank these")))
    prompts, gens = prompts_and_gens([1, 2, 3])
    outcome, pairs, dropped, _ = run(ListwiseJudge(mode="parse", pairs="best_vs_worst"), prompts, gens, tmp_path)
    assert pairs == [] and dropped["judge_failed"] == 1 and outcome.rankings[0].error == "unparseable ranking"


def rating_fake(request):
    content = request.messages[0][1]
    q = quality(re.search(r"# Response:\n(.*?)\n", content).group(1))
    if request.prefix.endswith("1"):  # second step of a 10-point scale: P("0" | "1")
        return Scores(probs={"0": 0.8}, text="Rating: 10")
    return Scores(probs={d: (0.9 if int(d) == q else 0.1 / 8) for d in request.options}, text=f"Rating: {q}")


def test_pointwise_expected_scores_pairs_and_kto_feedback(use_backend, tmp_path):
    use_backend(FakeBackend(None, score=rating_fake))
    prompts, gens = prompts_and_gens([4, 2, 5])
    spec = PointwiseJudge(aspects=["helpfulness", "honesty"], scale=5, pairs="best_vs_random", threshold=3.5)
    outcome, pairs, dropped, stats = run(spec, prompts, gens, tmp_path)
    assert stats.live == 3 * 2  # responses x aspects
    scores = outcome.rankings[0].scores
    assert scores[2] > scores[0] > scores[1]
    assert len(pairs) == 1 and pairs[0].chosen[0]["content"] == "answer Q5"
    labels = {f.response_id: f.label for f in outcome.feedback}
    assert labels == {"p0/p/0": True, "p0/p/1": False, "p0/p/2": True}


def test_pointwise_ten_point_scale_reads_two_digit_ratings(use_backend, tmp_path):
    use_backend(
        FakeBackend(
            None,
            score=lambda r: (
                Scores(probs={d: (1.0 if d == "1" else 0.0) for d in r.options}, text="")
                if not r.prefix.endswith("1")
                else Scores(probs={"0": 0.8}, text="")
            ),
        )
    )
    prompts, gens = prompts_and_gens([1, 2])
    outcome, _, _, stats = run(PointwiseJudge(aspects=["helpfulness"], scale=10), prompts, gens, tmp_path)
    assert stats.live == 4 and outcome.rankings[0].scores == [pytest.approx(0.2 * 1 + 0.8 * 10)] * 2


def test_binary_yes_no_threshold_at_the_run_median(use_backend, tmp_path):
    def yes_no(request):
        q = quality(re.search(r"# Response:\n(.*?)\n", request.messages[0][1]).group(1))
        return Scores(probs={"yes": 0.5 + q / 20, "no": 0.5 - q / 20}, text="Answer: (yes")

    use_backend(FakeBackend(None, score=yes_no))
    prompts, gens = prompts_and_gens([1, 3, 5, 7])
    outcome, pairs, _, _ = run(BinaryJudge(pairs="best_vs_worst"), prompts, gens, tmp_path)
    assert [f.label for f in outcome.feedback] == [False, False, True, True]  # everything is "yes", the median splits
    assert outcome.report["mean_p_yes"] > 0.5 and pairs[0].chosen[0]["content"] == "answer Q7"


def pairwise_prefers(letter_for):
    def score(request):
        content = request.messages[0][1]
        winner = letter_for(content)
        return Scores(probs={"a": 0.9 if winner == "a" else 0.1, "b": 0.9 if winner == "b" else 0.1}, text="")

    return score


def outputs(content):
    return re.search(r"# Output \(a\):\n(.*?)\n", content).group(1), re.search(
        r"# Output \(b\):\n(.*?)\n", content
    ).group(1)


def test_jury_of_two_templates_mean_and_agreement(use_backend, tmp_path):
    contrarian = tmp_path / "contrarian.j2"
    block, rest = common.load_template("prompts/pairwise_judge.j2").text.split("-#}\n", 1)
    contrarian.write_text(block + "-#}\nCONTRARIAN\n" + rest)

    def letter(content):
        a, b = outputs(content)
        better = "a" if quality(a) > quality(b) else "b"
        return ({"a": "b", "b": "a"}[better]) if content.startswith("CONTRARIAN") else better

    use_backend(FakeBackend(None, score=pairwise_prefers(letter)))
    prompts, gens = prompts_and_gens([1, 4])
    spec = PairwiseJudge(jury=[{"name": "plain"}, {"name": "contrarian", "template": str(contrarian)}])
    outcome, pairs, dropped, _ = run(spec, prompts, gens, tmp_path)
    assert outcome.report["inter_judge_agreement"] == 0.0
    assert pairs == [] and dropped["low_margin"] == 1  # the two members cancel out
    section = judge_section(spec, outcome)
    assert [m["label"] for m in section["jury"]["members"]] == ["plain", "contrarian"]
    majority = PairwiseJudge(jury=[{"name": "x"}, {"name": "y"}], jury_aggregate="majority")
    _, pairs, _, _ = run(majority, prompts, gens, tmp_path)
    assert len(pairs) == 1 and pairs[0].p_chosen == 1.0 and pairs[0].chosen[0]["content"] == "answer Q4"


def test_principles_ensemble_judges_each_item_under_each_principle(use_backend, tmp_path):
    constitution = tmp_path / "constitution.yaml"
    constitution.write_text("- Prefer the LONGER answer.\n- Prefer the HIGHER quality answer.\n- unused\n")

    def letter(content):
        a, b = outputs(content)
        if "LONGER" in content:
            return "a" if len(a) > len(b) else "b"
        return "a" if quality(a) > quality(b) else "b"

    fake = use_backend(FakeBackend(None, score=pairwise_prefers(letter)))
    prompts = [Prompt(id="p0", messages=[{"role": "user", "content": "q"}])]
    gens = [gen("p0", 0, "Q1 a much longer answer"), gen("p0", 1, "Q5 short")]
    spec = PairwiseJudge(principles={"path": str(constitution), "mode": "ensemble", "count": 2})
    outcome, pairs, dropped, _ = run(spec, prompts, gens, tmp_path)
    assert fake.calls == 2 * 2  # 2 principles x both orders
    section = judge_section(spec, outcome)
    assert section["principles"]["texts"][0] == "Prefer the LONGER answer." and len(section["jury"]["members"]) == 2
    assert outcome.report["inter_judge_agreement"] == 0.0 and pairs == []


def test_sampled_principle_is_rendered_and_fixed_per_item(use_backend, tmp_path):
    seen = []
    fake = FakeBackend(
        None, score=lambda r: seen.append(r.messages[0][1]) or Scores(probs={"a": 0.6, "b": 0.4}, text="")
    )
    use_backend(fake)
    prompts, gens = prompts_and_gens([1, 2])
    spec = PairwiseJudge(principles={"path": "prompts/constitution.yaml", "mode": "sample"})
    run(spec, prompts, gens, tmp_path)
    principles = {re.search(r"Judge by this principle: (.*)", text).group(1) for text in seen}
    assert len(seen) == 2 and len(principles) == 1  # both orders of the item share its principle


def test_chain_of_thought_writes_a_rationale_then_scores_the_verdict(use_backend, tmp_path):
    def rationale(request):
        assert "First explain your reasoning" in request.messages[-1][1]
        return Completion(text="Output (b) is more precise. Output (b)", finish_reason="stop")

    def verdict(request):
        assert request.messages[-2][0] == "assistant" and request.messages[-2][1] == "Output (b) is more precise."
        return Scores(probs={"a": 0.2, "b": 0.7}, text="Output (")

    fake = use_backend(FakeBackend(None, gen=rationale, score=verdict))
    prompts, gens = prompts_and_gens([1, 2])
    outcome, pairs, _, stats = run(PairwiseJudge(chain_of_thought=True), prompts, gens, tmp_path)
    assert stats.live == 4 and fake.calls == 4  # 2 rationales + 2 verdicts
    judgment = outcome.table[0]
    assert judgment.raw_ab.split(" | ")[-1].startswith("[rationale] Output (b) is more precise.")
    _, _, _, again = run(PairwiseJudge(chain_of_thought=True), prompts, gens, tmp_path)
    assert again.live == 0 and again.cached == 4


def test_eval_judge_routes_every_judge_type(use_backend, tmp_path):
    from rlaif.judges.evaluate import judge_items

    use_backend(FakeBackend(None, score=rating_fake))
    prompts, gens = prompts_and_gens([2, 5])
    judgments, bias = judge_items(
        [(prompts[0], gens[0], gens[1])],
        PointwiseJudge(aspects=["helpfulness"]),
        CallCache(tmp_path / "c.sqlite"),
        CallStats(),
    )
    assert judgments[0].p_a < 0.5 and judgments[0].error is None and bias.n == 0
    use_backend(FakeBackend(None, score=listwise_fake()))
    judgments, bias = judge_items(
        [(prompts[0], gens[0], gens[1])], ListwiseJudge(), CallCache(tmp_path / "d.sqlite"), CallStats()
    )
    assert judgments[0].p_a < 0.5 and bias.n == 1 and bias.consistency == 1.0
