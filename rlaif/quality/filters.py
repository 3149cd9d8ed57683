"""Which prompts, responses and candidate pairs make it into a dataset, and why the others did not.

Filters act where they save the most (`filters` is the recipe's FilterSpec):
  * prompts, before any sampling: `rlaif.quality.prompts.PromptChecker` (decontamination, exact and near-duplicates);
  * each response, before judging: `response_reason` (failed, empty, truncated, too long,
    refusal, boilerplate, wrong language, addressing the judge) - also used per response by
    listwise/pointwise/binary judges;
  * each pair, before judging: `pre_judge_reason` (either response's reason, then identical or
    near-duplicate responses), so no judge call is paid for a pair that would be dropped anyway;
    decided once, when the candidates are formed, and carried on the judge outcome;
  * each pair, after judging: `post_judge_reason` (judge failed, inconsistent, low margin);
  * the kept set: the run-wide length-bias cap, `length_cap_drops`.
Every candidate pair ends in exactly one place: kept, or dropped under one reason of DROP_REASONS
(earliest reason wins); every prompt is kept or dropped under one of PROMPT_DROP_REASONS.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Sequence

from rlaif.core.schema import Generation, Judgment, PreferencePair, Prompt
from rlaif.quality.dedup import similarity
from rlaif.quality.injection import addresses_judge
from rlaif.quality.length import excess_longer
from rlaif.quality.prompts import PROMPT_DROP_REASONS
from rlaif.quality.text import BOILERPLATE_PATTERNS, REFUSAL_PATTERNS, matches_any, wrong_language

RESPONSE_REASONS = (
    "generation_failed",
    "empty",
    "truncated",
    "too_long",
    "refusal",
    "boilerplate",
    "language",
    "judge_address",
)
PAIR_REASONS = ("identical", "near_duplicate")
JUDGED_REASONS = ("judge_failed", "inconsistent", "low_margin")
SET_REASONS = ("length_bias",)
DROP_REASONS = (*RESPONSE_REASONS, *PAIR_REASONS, *JUDGED_REASONS, *SET_REASONS)

__all__ = [
    "DROP_REASONS",
    "PROMPT_DROP_REASONS",
    "RESPONSE_REASONS",
    "post_judge_reason",
    "pre_judge_reason",
    "response_reason",
    "length_cap_drops",
    "select_candidates",
    "to_pair",
]


def response_reason(generation: Generation, filters) -> str | None:
    """Why one response is unusable (one of RESPONSE_REASONS, first that applies), or None.

    Failed and empty responses are always unusable; the other checks follow the FilterSpec.
    A `completion_tokens` of 0 means the backend did not count tokens: `max_tokens` then does not apply.
    """
    text = generation.text or ""
    if generation.error:
        return "generation_failed"
    if not text.strip():
        return "empty"
    if filters.drop_truncated and generation.finish_reason == "length":
        return "truncated"
    if filters.max_tokens is not None and generation.completion_tokens > filters.max_tokens:
        return "too_long"
    if filters.refusals and matches_any(text, (*REFUSAL_PATTERNS, *filters.refusal_patterns)):
        return "refusal"
    if filters.boilerplate and matches_any(text, (*BOILERPLATE_PATTERNS, *filters.boilerplate_patterns)):
        return "boilerplate"
    if filters.language and wrong_language(
        text, tuple(filters.language), filters.language_min_chars, filters.language_min_confidence
    ):
        return "language"
    if filters.judge_address and addresses_judge(text, tuple(filters.judge_address_patterns)):
        return "judge_address"  # a note or order aimed at the judge (rlaif.quality.injection)
    return None


def pre_judge_reason(a: Generation, b: Generation, filters) -> str | None:
    """Why a pair is dropped before judging, or None.

    First the responses' own reasons (the earlier one in RESPONSE_REASONS, whichever side), then
    the pair: identical texts (whitespace aside) always, near-duplicates when
    `filters.response_near_duplicate` is set. Neither carries a preference worth a judge call.
    """
    reasons = [r for r in (response_reason(a, filters), response_reason(b, filters)) if r]
    if reasons:
        return min(reasons, key=RESPONSE_REASONS.index)
    if a.text.strip() == b.text.strip():
        return "identical"
    threshold = filters.response_near_duplicate
    if threshold is not None and similarity(a.text, b.text, filters.minhash.shingle_chars) >= threshold:
        return "near_duplicate"
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


def select_candidates(outcome, filters) -> tuple[list[PreferencePair], Counter]:
    """The pairs of a judge outcome (rlaif.judges.stage.JudgeOutcome) that pass every per-pair check
    (before the run-wide length-bias cap), and drop counts.

    Each candidate's pre-judge reason is the one decided when the candidates were formed
    (`outcome.reasons`); the judged ones are checked by `post_judge_reason`.
    """
    kept: list[PreferencePair] = []
    dropped: Counter = Counter()
    for (prompt, a, b), reason in zip(outcome.items, outcome.reasons, strict=True):
        judgment = outcome.judgments.get((a.id, b.id))
        if reason is None:
            reason = "judge_failed" if judgment is None else post_judge_reason(judgment, filters)
        if reason:
            dropped[reason] += 1
        else:
            kept.append(to_pair(prompt, a, b, judgment))
    return kept, dropped


def length_cap_drops(
    margins: Sequence[float],
    longer: Sequence[int],
    max_share: float | None,
    keys_of: Callable[[list[int]], list[tuple]],
) -> set[int]:
    """Positions (among a run's candidate pairs) that the length-bias cap drops, from compact numbers.

    The cap (rlaif.quality.length) over the whole run: the k lowest-margin chosen-longer pairs
    (k from `excess_longer`), ties broken by (prompt_id, chosen_id, rejected_id), which
    `keys_of(positions)` gives for the pairs tied at the cut only.

    >>> sorted(length_cap_drops([0.5, 0.2, 0.9, 0.2], [1, 1, 0, 1], 0.5, lambda ps: [("p", str(p), "") for p in ps]))
    [1, 3]
    """
    if max_share is None:
        return set()
    candidates = [i for i, is_longer in enumerate(longer) if is_longer]
    k = excess_longer(len(candidates), len(margins), max_share)
    if k == 0:
        return set()
    candidates.sort(key=lambda i: margins[i])
    cut = margins[candidates[k - 1]]
    below = [i for i in candidates if margins[i] < cut]
    tied = [i for i in candidates if margins[i] == cut]
    ranked = [i for _, i in sorted(zip(keys_of(tied), tied))]
    return set(below) | set(ranked[: k - len(below)])
