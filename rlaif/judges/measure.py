"""Judge quality that travels with the data: a recipe's `judge.gold` pairs are judged during the
run (through the request cache, like any call), and the figures go into the version's manifest
(`eval`), its card, its report and the run summary, with warnings when the judge does not beat
the trivial rule "pick the longer response" beyond chance (its 95% agreement interval holds the
rule's agreement) or its order consistency is not significantly above chance (a one-sided exact
binomial test against 0.5, at ALPHA)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from rlaif.judges.stats import binomial_tail

#: A judge's order consistency must beat chance (0.5: what an uninformative judge scores after debiasing,
#: its two orders' verdicts then being independent coin flips) at this level, in a one-sided binomial test.
ALPHA = 0.05
SUMMARY_KEYS = (
    "n",
    "agreement",
    "agreement_ci95",
    "kappa",
    "position_consistency",
    "position_consistency_debiased",
    "prefers_longer",
    "baseline_longer",
    "baseline_shorter",
    "ece",
    "failures",
    "gold",
    "calls",
    "path",
)


def consistency_counts(result: dict[str, Any]) -> tuple[int, int] | None:
    """(pairs named the same winner in both orders after debiasing, judged pairs), from the share and `n`;
    None when the judge has no order-consistency figure."""
    share = result.get("position_consistency_debiased")
    if share is None:
        return None
    pairs = int(result.get("n") or 0)
    return round(share * pairs), pairs


def consistency_warning(result: dict[str, Any]) -> str | None:
    """A warning when order consistency is not significantly above chance (one-sided binomial test, ALPHA)."""
    counts = consistency_counts(result)
    if counts is None:
        return None
    consistent, pairs = counts
    p_value = binomial_tail(consistent, pairs)
    if p_value < ALPHA:
        return None
    share = f" ({consistent / pairs:.2f})" if pairs else ""
    return (
        f"order consistency after debiasing is not significantly above chance: {consistent} of {pairs} pairs{share} name the same winner "
        f"in both orders (one-sided binomial test against 0.5: p = {p_value:.3f}, not below {ALPHA}); its verdicts depend on which response is shown first"
    )


def agreement_warning(result: dict[str, Any]) -> str | None:
    """A warning when the judge's 95% agreement interval (Wilson) reaches down to the "pick the longer
    response" rule's agreement on the same gold pairs: it is not shown to beat a length count."""
    from rlaif.judges.stats import wilson_interval

    agreement, longer = result.get("agreement"), result.get("baseline_longer")
    if agreement is None or longer is None:
        return None
    interval = result.get("agreement_ci95") or wilson_interval(agreement, int(result.get("n") or 0))
    low, high = interval if interval else (agreement, agreement)
    if low > longer:
        return None
    return (
        f'the judge does not beat "pick the longer response" on the gold pairs beyond chance: '
        f"agreement {agreement:.2f} (95% {low:.2f}-{high:.2f}) {'includes' if longer <= high else 'is below'} the rule's {longer:.2f}"
    )


def quality_warnings(result: dict[str, Any]) -> list[str]:
    """What a user should know before trusting the judge's labels: its agreement is not significantly
    above "pick the longer response", its order consistency not significantly above chance, or it failed.

    >>> for warning in quality_warnings({"n": 40, "agreement": 0.6, "baseline_longer": 0.55, "position_consistency_debiased": 0.2}):
    ...     print(warning)
    the judge does not beat "pick the longer response" on the gold pairs beyond chance: agreement 0.60 (95% 0.45-0.74) includes the rule's 0.55
    order consistency after debiasing is not significantly above chance: 8 of 40 pairs (0.20) name the same winner in both orders (one-sided binomial test against 0.5: p = 1.000, not below 0.05); its verdicts depend on which response is shown first
    >>> quality_warnings({"n": 40, "agreement": 0.9, "baseline_longer": 0.6, "position_consistency_debiased": 0.9})
    []
    """
    warnings = [w for w in (agreement_warning(result), consistency_warning(result)) if w]
    if result.get("n") == 0:
        warnings.append("the judge failed on every gold pair: no agreement could be measured")
    return warnings


def measure_judge(recipe, store: str | Path, ledger=None) -> dict[str, Any] | None:
    """The recipe judge's figures on its gold pairs (None without `judge.gold`), for the manifest's `eval`;
    its calls count in the run's `ledger` (rlaif.calls.costs) as stage `gold`."""
    spec = recipe.judge
    if not spec.gold:
        return None
    from rlaif.judges.evaluate import evaluate_judge

    result = evaluate_judge(recipe, spec.gold, store, spec.gold_limit, ledger=ledger)
    summary = {key: result[key] for key in SUMMARY_KEYS if key in result}
    summary["warnings"] = quality_warnings(result)
    return summary


def summary_line(quality: dict[str, Any] | None) -> str | None:
    """One line of the run summary about the judge's gold figures (None when none were measured).

    >>> summary_line({"n": 40, "agreement": 0.5, "agreement_ci95": [0.35, 0.65], "baseline_longer": 0.6, "warnings": ["w"]})
    'judge on 40 gold pairs: agreement 0.50 (95% 0.35-0.65), "pick the longer" 0.60; WARNING: w'
    """
    if not quality:
        return None
    ci = quality.get("agreement_ci95") or []
    interval = f" (95% {ci[0]:.2f}-{ci[1]:.2f})" if len(ci) == 2 else ""
    figure = lambda x: "-" if x is None else f"{x:.2f}"  # noqa: E731
    line = f'judge on {quality.get("n", 0)} gold pairs: agreement {figure(quality.get("agreement"))}{interval}, "pick the longer" {figure(quality.get("baseline_longer"))}'
    if quality.get("warnings"):
        line += "; WARNING: " + "; ".join(quality["warnings"])
    return line
