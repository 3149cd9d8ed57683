"""The manifest's `review` block (rlaif review commit) as named rows: the HTML report, the dataset card and
`rlaif datasets diff` show these."""

from __future__ import annotations

from typing import Any


def share_text(figure: dict[str, Any] | None) -> str:
    """ "62% of 16 (95%: 39-82%)"; "none measured" when n is 0.

    >>> share_text({"agreement": 0.625, "n": 16, "interval": [0.3864, 0.8152]}), share_text({"n": 0})
    ('62% of 16 (95%: 39-82%)', 'none measured')
    """
    if not figure or not figure.get("n") or figure.get("agreement") is None:
        return "none measured"
    text = f"{figure['agreement']:.0%} of {figure['n']}"
    low_high = figure.get("interval")
    return text + (f" (95%: {100 * low_high[0]:.0f}-{100 * low_high[1]:.0f}%)" if low_high else "")


def review_rows(manifest: dict[str, Any]) -> list[tuple[str, Any]]:
    """(label, value) rows of the review block; [] for a version nobody reviewed."""
    review = manifest.get("review")
    if not isinstance(review, dict):
        return []
    agreement = review.get("judge_agreement") or {}
    rows: list[tuple[str, Any]] = [
        ("reviewed version", ", ".join(manifest.get("parents") or [])),
        ("reviewers", ", ".join(review.get("reviewers") or [])),
        ("pairs reviewed", review.get("pairs_reviewed")),
    ]
    rows += [(f"decisions: {kind.replace('_', ' ')}", n) for kind, n in (review.get("decisions") or {}).items()]
    rows += [(outcome.replace("_", " "), n) for outcome, n in (review.get("outcomes") or {}).items()]
    rows.append(("judge agreed with reviewers", share_text(agreement)))
    for bucket in agreement.get("by_margin") or []:
        if bucket.get("n"):
            low, high = bucket["margin"]
            rows.append((f"judge agreed, margin {low:g} to {high:g}", share_text(bucket)))
    rows.append(("judge-reviewer kappa", "n/a" if agreement.get("kappa") is None else round(agreement["kappa"], 3)))
    between = review.get("reviewer_agreement") or {}
    if between.get("n"):
        rows.append(("reviewers agreed with each other", share_text(between)))
    suggested = agreement.get("suggested_min_margin")
    rows.append(
        (
            "suggested min_margin",
            f"{suggested['min_margin']:g} (the judge agreed on {suggested['agreement']:.0%} of {suggested['n']} above it)"
            if suggested
            else "none: no margin reaches 95% agreement on 10 or more comparisons",
        )
    )
    return rows
