"""Every drop reason, with crafted rows; every candidate ends kept or dropped once."""

from rlaif.filters import post_judge_reason, pre_judge_reason, select_pairs
from rlaif.recipe import FilterSpec
from rlaif.schema import Generation, Judgment, Prompt


def gen(index, text="an answer", finish="stop", error=None):
    return Generation(prompt_id="p", policy="pol", model="m", sample_index=index, text=text, finish_reason=finish, error=error)


def judgment(a, b, p_a=0.8, consistent=True, error=None):
    return Judgment(
        prompt_id="p", a_id=a.id, b_id=b.id, p_a_ab=p_a, p_a_ba=p_a, soft=True, raw_ab="", raw_ba="",
        template="t", template_sha256="s", judge_model="m", p_a=None if error else p_a, consistent=consistent, error=error,
    )


FILTERS = FilterSpec(min_margin=0.2)


def test_pre_judge_reasons():
    ok = gen(0, "yes")
    assert pre_judge_reason(gen(1, None, error="boom"), ok, FILTERS) == "generation_failed"
    assert pre_judge_reason(gen(1, "  "), ok, FILTERS) == "empty"
    assert pre_judge_reason(gen(1, "cut", finish="length"), ok, FILTERS) == "truncated"
    assert pre_judge_reason(gen(1, "cut", finish="length"), ok, FilterSpec(drop_truncated=False)) is None
    assert pre_judge_reason(gen(1, " yes "), ok, FILTERS) == "identical"
    assert pre_judge_reason(gen(1, "no"), ok, FILTERS) is None


def test_post_judge_reasons():
    a, b = gen(0, "x"), gen(1, "y")
    assert post_judge_reason(judgment(a, b, error="unparseable"), FILTERS) == "judge_failed"
    assert post_judge_reason(judgment(a, b, consistent=False), FILTERS) == "inconsistent"
    assert post_judge_reason(judgment(a, b, consistent=False), FilterSpec(consistency=False, min_margin=0.2)) is None
    assert post_judge_reason(judgment(a, b, p_a=0.55), FILTERS) == "low_margin"
    assert post_judge_reason(judgment(a, b, p_a=0.5), FilterSpec(min_margin=0.0)) == "low_margin"  # a tie is never kept
    assert post_judge_reason(judgment(a, b, p_a=0.2), FILTERS) is None


def test_select_pairs_accounts_for_every_candidate_and_orients_chosen():
    prompt = Prompt(id="p", messages=[{"role": "user", "content": "q"}])
    a, b, c, d = gen(0, "first"), gen(1, "second"), gen(2, "third", finish="length"), gen(3, "fourth")
    items = [(prompt, a, b), (prompt, a, c), (prompt, b, d), (prompt, a, d)]
    judgments = {(a.id, b.id): judgment(a, b, p_a=0.1), (b.id, d.id): judgment(b, d, consistent=False)}
    pairs, dropped = select_pairs(items, judgments, FILTERS)
    assert len(pairs) + sum(dropped.values()) == len(items)
    assert dict(dropped) == {"truncated": 1, "inconsistent": 1, "judge_failed": 1}
    (pair,) = pairs
    assert pair.chosen == [{"role": "assistant", "content": "second"}] and pair.rejected[0]["content"] == "first"
    assert pair.p_chosen == 0.9 and abs(pair.margin - 0.8) < 1e-9
