"""Which candidate pairs become preference rows, and why the others were dropped.

Every candidate pair ends in exactly one place: kept, or dropped under one reason. Checks that
need no judge run first, so no judge call is paid for a pair that would be dropped anyway.
"""

from __future__ import annotations

from collections import Counter

from rlaif.schema import Generation, Judgment, PreferencePair, Prompt

DROP_REASONS = (
    "generation_failed",
    "empty",
    "truncated",
    "identical",
    "judge_failed",
    "inconsistent",
    "low_margin",
)


def pre_judge_reason(a: Generation, b: Generation, filters) -> str | None:
    """Why a pair is dropped before judging, or None.

    Generation failures, empty and identical responses are always dropped: they carry no
    preference. Truncated responses are dropped when `filters.drop_truncated`.
    """
    if a.error or b.error:
        return "generation_failed"
    if not (a.text or "").strip() or not (b.text or "").strip():
        return "empty"
    if filters.drop_truncated and "length" in (a.finish_reason, b.finish_reason):
        return "truncated"
    if a.text.strip() == b.text.strip():
        return "identical"
    return None


def post_judge_reason(judgment: Judgment, filters) -> str | None:
    """Why a judged pair is dropped, or None. A failed judgment is always dropped (it has no label)."""
    if judgment.error or judgment.p_a is None:
        return "judge_failed"
    if filters.consistency and not judgment.consistent:
        return "inconsistent"
    if judgment.margin is None or judgment.margin < max(filters.min_margin, 1e-9):
        return "low_margin"  # a margin of exactly 0 is a tie and is never kept
    return None


def to_pair(prompt: Prompt, a: Generation, b: Generation, judgment: Judgment) -> PreferencePair:
    a_wins = judgment.p_a > 0.5
    chosen, rejected = (a, b) if a_wins else (b, a)
    p_chosen = judgment.p_a if a_wins else 1 - judgment.p_a
    raw_ab, raw_ba = (judgment.p_a_ab, judgment.p_a_ba) if a_wins else (1 - judgment.p_a_ba, 1 - judgment.p_a_ab)
    return PreferencePair(
        prompt=prompt.messages,
        chosen=[{"role": "assistant", "content": chosen.text}],
        rejected=[{"role": "assistant", "content": rejected.text}],
        prompt_id=prompt.id,
        chosen_id=chosen.id,
        rejected_id=rejected.id,
        chosen_policy=chosen.policy,
        rejected_policy=rejected.policy,
        p_chosen=round(p_chosen, 6),
        margin=round(judgment.margin, 6),
        p_chosen_raw_ab=round(raw_ab, 6),
        p_chosen_raw_ba=round(raw_ba, 6),
        judge_model=judgment.judge_model,
        judge_template_sha256=judgment.template_sha256,
    )


def select_pairs(
    items: list[tuple[Prompt, Generation, Generation]], judgments: dict[tuple[str, str], Judgment], filters
) -> tuple[list[PreferencePair], Counter]:
    """Kept pairs and drop counts; `judgments` maps (a_id, b_id) to the judgment of that pair."""
    kept: list[PreferencePair] = []
    dropped: Counter = Counter()
    for prompt, a, b in items:
        reason = pre_judge_reason(a, b, filters)
        judgment = judgments.get((a.id, b.id))
        if reason is None:
            reason = "judge_failed" if judgment is None else post_judge_reason(judgment, filters)
        if reason:
            dropped[reason] += 1
        else:
            kept.append(to_pair(prompt, a, b, judgment))
    return kept, dropped
