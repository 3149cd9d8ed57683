"""How often the judge agreed with the people who reviewed its pairs (the manifest's `review` block).

A comparison is one reviewer's pick on one pair the judge chose a side of: the judge agreed when it chose the
same response. Figures: the share overall and per margin bucket (with 95% Wilson intervals), Cohen's kappa
between the judge and the reviewers (each side named by its place in the pair's id order, so a judge that always
says "a" is not mistaken for one that agrees), the agreement between reviewers on pairs two of them picked,
and the smallest margin above which the judge agreed with people at least 95% of the time (a `min_margin`).
"""

from __future__ import annotations

from typing import Any

from rlaif.judges.stats import cohen_kappa, wilson_interval

#: margin buckets of the agreement table: [low, high)
BUCKETS = ((0.0, 0.1), (0.1, 0.2), (0.2, 0.4), (0.4, 1.01))
SUGGEST_AT = 0.95  # the agreement a suggested min_margin reaches above it
SUGGEST_MIN_N = 10  # comparisons a suggestion needs above its margin


def share(hits: int, n: int) -> dict[str, Any]:
    """{"agreement", "n", "interval"}; the agreement is None (not 0) when there is nothing to measure."""
    value = round(hits / n, 4) if n else None
    return {"agreement": value, "n": n, "interval": wilson_interval(value, n)}


def judge_agreement(comparisons: list[tuple[str, str, str, float]]) -> dict[str, Any]:
    """comparisons: (the pair's first response id in id order, the judge's choice, the reviewer's pick, the
    judge's margin).

    >>> round(judge_agreement([("a", "a", "a", 0.3), ("a", "b", "b", 0.3), ("a", "a", "b", 0.05)])["kappa"], 4)
    0.4
    """
    hits = [judge == person for _, judge, person, _ in comparisons]
    side = lambda first, choice: "first" if choice == first else "second"  # noqa: E731
    result = share(sum(hits), len(hits))
    result["kappa"] = cohen_kappa(
        [side(key, judge) for key, judge, _, _ in comparisons],
        [side(key, person) for key, _, person, _ in comparisons],
    )
    result["by_margin"] = []
    for low, high in BUCKETS:
        inside = [hit for hit, (_, _, _, margin) in zip(hits, comparisons) if low <= margin < high]
        result["by_margin"].append({"margin": [low, min(high, 1.0)], **share(sum(inside), len(inside))})
    result["suggested_min_margin"] = suggested_min_margin(
        [(margin, hit) for hit, (_, _, _, margin) in zip(hits, comparisons)]
    )
    return result


def suggested_min_margin(scored: list[tuple[float, bool]]) -> dict[str, Any] | None:
    """The smallest margin m such that the judge agreed with people on at least SUGGEST_AT of the (at least
    SUGGEST_MIN_N) comparisons with a margin of m or more; None when no margin reaches it.

    >>> suggested_min_margin([(m / 20, m >= 4) for m in range(20)])
    {'min_margin': 0.2, 'agreement': 1.0, 'n': 16}
    >>> suggested_min_margin([(0.5, False)] * 20) is None
    True
    """
    for margin in sorted({m for m, _ in scored}):
        above = [hit for m, hit in scored if m >= margin]
        if len(above) < SUGGEST_MIN_N:
            return None
        if sum(above) / len(above) >= SUGGEST_AT:
            return {"min_margin": round(margin, 4), "agreement": round(sum(above) / len(above), 4), "n": len(above)}
    return None


def reviewer_agreement(picks: dict[str, dict[str, str]]) -> dict[str, Any]:
    """picks: pair key -> {reviewer: the response picked}. On the pairs two or more reviewers picked: the share
    on which they all picked the same response."""
    shared = [set(by.values()) for by in picks.values() if len(by) > 1]
    return share(sum(len(chosen) == 1 for chosen in shared), len(shared))
