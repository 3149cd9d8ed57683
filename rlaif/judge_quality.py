"""Judge quality that travels with the data: a recipe's `judge.gold` pairs are judged during the
run (through the request cache, like any call), and the figures go into the version's manifest
(`eval`), its card, its report and the run summary, with warnings when the judge does not beat
the trivial rule "pick the longer response" or is not order-consistent."""

from __future__ import annotations

from pathlib import Path
from typing import Any

#: Below this share of pairs judged alike in both orders (after debiasing), the summary warns.
MIN_CONSISTENCY = 0.5
SUMMARY_KEYS = (
    "n", "agreement", "agreement_ci95", "kappa", "position_consistency", "position_consistency_debiased",
    "prefers_longer", "baseline_longer", "baseline_shorter", "ece", "failures", "gold", "calls", "path",
)


def quality_warnings(result: dict[str, Any]) -> list[str]:
    """What a user should know before trusting the judge's labels.

    >>> quality_warnings({"agreement": 0.55, "baseline_longer": 0.69, "position_consistency_debiased": 0.2})
    ['the judge does not beat "pick the longer response" on the gold pairs (agreement 0.55 vs 0.69)', 'low order consistency after debiasing (0.20 < 0.5): its verdicts depend on which response is shown first']
    >>> quality_warnings({"agreement": 0.8, "baseline_longer": 0.6, "position_consistency_debiased": 0.9})
    []
    """
    warnings = []
    agreement, longer = result.get("agreement"), result.get("baseline_longer")
    if agreement is not None and longer is not None and agreement <= longer:
        warnings.append(f'the judge does not beat "pick the longer response" on the gold pairs (agreement {agreement:.2f} vs {longer:.2f})')
    consistency = result.get("position_consistency_debiased")
    if consistency is not None and consistency < MIN_CONSISTENCY:
        warnings.append(
            f"low order consistency after debiasing ({consistency:.2f} < {MIN_CONSISTENCY}): its verdicts depend on which response is shown first"
        )
    if result.get("n") == 0:
        warnings.append("the judge failed on every gold pair: no agreement could be measured")
    return warnings


def measure_judge(recipe, store: str | Path, ledger=None) -> dict[str, Any] | None:
    """The recipe judge's figures on its gold pairs (None without `judge.gold`), for the manifest's `eval`;
    its calls count in the run's `ledger` (rlaif.costs) as stage `gold`."""
    spec = recipe.judge
    if not spec.gold:
        return None
    from rlaif.evaluate import evaluate_judge

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
    line = f"judge on {quality.get('n', 0)} gold pairs: agreement {figure(quality.get('agreement'))}{interval}, \"pick the longer\" {figure(quality.get('baseline_longer'))}"
    if quality.get("warnings"):
        line += "; WARNING: " + "; ".join(quality["warnings"])
    return line
