"""From per-prompt scores to preference pairs: best-vs-worst, best-vs-random (Zephyr), or all
pairs; the soft preference and margin are kept on every pair, and ties never become a pair
(they are dropped as `low_margin`, since chosen == rejected carries no preference)."""

from __future__ import annotations

import json
import random
from dataclasses import dataclass, field
from itertools import combinations

from rlaif.core.schema import Feedback, Generation, Judgment, Prompt, Ranking, content_hash
from rlaif.judges.stats import ranks_from_scores


@dataclass
class Scored:
    """What a listwise / pointwise / binary judge (or a jury of them) says about one prompt's responses."""

    prompt: Prompt
    generations: list[Generation]
    scores: list[float] | None  # higher is better; None when the judge failed on this prompt
    pref: list[list[float]] = field(default_factory=list)  # pref[i][j] = P(response i beats j)
    consistent: list[list[bool | None]] = field(default_factory=list)  # permutations agree on i vs j
    agreement: float | None = None
    detail: dict = field(default_factory=dict)
    error: str | None = None
    raw: list[str] = field(default_factory=list)  # the judge's raw outputs, for the judgments table


def pair_indices(scored: Scored, strategy: str, seed: int = 0) -> list[tuple[int, int]]:
    """Which (i, j) pairs of one prompt's responses become candidates; i < j is not implied.

    >>> s = Scored(prompt=None, generations=[None] * 4, scores=[0.1, 0.7, 0.3, 0.7])
    >>> pair_indices(s, "best_vs_worst"), pair_indices(s, "first"), len(pair_indices(s, "all"))
    ([(1, 0)], [(0, 1)], 6)
    """
    k = len(scored.generations)
    if k < 2:
        return []
    if strategy == "all":
        return list(combinations(range(k), 2))
    if strategy == "first" or scored.scores is None:  # a failed prompt still counts once, as judge_failed
        return [(0, 1)]
    best = max(range(k), key=lambda i: (scored.scores[i], -i))
    if strategy == "best_vs_worst":
        worst = min(range(k), key=lambda i: (scored.scores[i], i))
        return [(best, worst if worst != best else (best + 1) % k)]
    rng = random.Random(int(content_hash([scored.prompt.id, seed], 8), 16))
    return [(best, rng.choice([i for i in range(k) if i != best]))]


def to_judgment(
    scored: Scored, i: int, j: int, judge_type: str, template: str, template_sha256: str, model: str
) -> Judgment:
    a, b = scored.generations[i], scored.generations[j]
    common = dict(
        prompt_id=scored.prompt.id,
        a_id=a.id,
        b_id=b.id,
        template=template,
        template_sha256=template_sha256,
        judge_model=model,
        raw_ab=f"{judge_type}: scores {scored.scores}" if scored.scores else "",
        raw_ba="",
    )
    if scored.error or scored.scores is None:
        return Judgment(p_a_ab=None, p_a_ba=None, soft=False, error=scored.error or "no scores", **common)
    p = scored.pref[i][j]
    consistent = scored.consistent[i][j] if scored.consistent else None
    return Judgment(
        p_a_ab=p,
        p_a_ba=p,
        soft=True,
        p_a=p,
        consistent=True if consistent is None else consistent,
        consistent_raw=consistent,
        **common,
    )


def construct_pairs(
    scored: list[Scored], strategy: str, seed: int, judge_type: str, template: str, template_sha256: str, model: str
) -> tuple[list[tuple[Prompt, Generation, Generation]], dict[tuple[str, str], Judgment]]:
    """Candidate items and their judgments, ready for `rlaif.quality.filters.select_candidates`."""
    items, judgments = [], {}
    for entry in scored:
        for i, j in pair_indices(entry, strategy, seed):
            a, b = entry.generations[i], entry.generations[j]
            items.append((entry.prompt, a, b))
            judgments[(a.id, b.id)] = to_judgment(entry, i, j, judge_type, template, template_sha256, model)
    return items, judgments


def to_ranking(entry: Scored, judge_type: str) -> Ranking:
    scores = entry.scores or []
    return Ranking(
        prompt_id=entry.prompt.id,
        prompt=entry.prompt.messages,
        response_ids=[g.id for g in entry.generations],
        responses=[g.text or "" for g in entry.generations],
        policies=[g.policy for g in entry.generations],
        scores=[round(s, 6) for s in scores],
        ranks=ranks_from_scores(scores) if scores else [],
        judge=judge_type,
        agreement=None if entry.agreement is None else round(entry.agreement, 4),
        detail=json.dumps({**entry.detail, "raw": entry.raw}, sort_keys=True, default=str),
        error=entry.error,
    )


def to_feedback(entry: Scored, threshold: float) -> list[Feedback]:
    """Good/bad per response: score >= threshold (KTO's desirable / undesirable)."""
    if entry.scores is None:
        return []
    return [
        Feedback(
            prompt_id=entry.prompt.id,
            response_id=g.id,
            prompt=entry.prompt.messages,
            completion=[{"role": "assistant", "content": g.text or ""}],
            policy=g.policy,
            score=round(score, 6),
            label=score >= threshold,
        )
        for g, score in zip(entry.generations, entry.scores)
    ]
