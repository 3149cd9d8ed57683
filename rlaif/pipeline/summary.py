"""The run summary printed at the end of `rlaif run`, ending in the version id."""

from __future__ import annotations

from typing import Any

from rlaif.calls.cache import CallStats
from rlaif.calls.costs import cost_lines
from rlaif.judges.measure import summary_line
from rlaif.judges.stage import judge_summary
from rlaif.pipeline.incremental import summary_line as incremental_line


def summary_lines(version_id: str, created: bool, manifest: dict[str, Any], stats: CallStats) -> list[str]:
    """The run summary, ending in the version id."""
    counts = manifest["counts"]
    drops = ", ".join(f"{reason} {n}" for reason, n in counts["dropped"].items() if n) or "none"
    response_drops = ", ".join(f"{reason} {n}" for reason, n in counts.get("responses_dropped", {}).items() if n)
    if response_drops:
        drops += f"; responses not judged: {response_drops}"
    prompt_drops = ", ".join(f"{reason} {n}" for reason, n in counts.get("prompts_dropped", {}).items() if n)
    quality = summary_line(manifest.get("eval") if isinstance(manifest.get("eval"), dict) else None)
    incremental = incremental_line(manifest)  # a version on a parent: the new rows and the whole version
    return [
        f"prompts: {counts['prompts']}"
        + (f" (dropped before sampling: {prompt_drops})" if prompt_drops else "")
        + f", responses: {counts['generations']}, candidate pairs: {counts['in']}",
        judge_summary(manifest["judge"]),
        *([quality] if quality else []),
        f"dropped: {drops}",
        f"kept: {counts['kept']} preference pairs from {counts['prompts_with_pair']} prompts",
        *([none_kept_line(counts)] if not counts["kept"] and counts["in"] else []),
        *([incremental] if incremental else []),
        f"calls: live {stats.live}, cached {stats.cached}, failed {stats.failed}",
        *cost_lines(manifest.get("cost")),
        *([f"waited on rate limits: {stats.limit_wait_s:.1f} s"] if stats.limit_wait_s else []),
        f"version: {version_id}" + ("" if created else " (already in the store: same content)"),
    ]


#: what to change when one reason dropped most candidate pairs and none was kept
NONE_KEPT_FIX = {
    "generation_failed": "the policy's calls failed: check its model, endpoint and key",
    "empty": "the policy answered nothing: check its chat template and `params.max_tokens`",
    "truncated": "responses hit `params.max_tokens`: raise it, or set `filters.drop_truncated: false`",
    "too_long": "raise `filters.max_tokens`",
    "refusal": "the policy refused: change the prompts, or set `filters.refusals: false`",
    "boilerplate": "change `filters.boilerplate_patterns`, or set `filters.boilerplate: false`",
    "language": "check `filters.language` against the prompts' language",
    "judge_address": "the responses addressed the judge: see docs/reliability.md, or set `filters.judge_address: false`",
    "identical": "the samples were identical: raise the policies' `params.temperature`, or sample from two policies",
    "near_duplicate": "raise `filters.response_near_duplicate`, or sample with more temperature",
    "judge_failed": "the judge gave no verdict: check its `template:` and `model:`, or raise its `max_tokens`",
    "inconsistent": "the judge changed its verdict with the order: set `filters.consistency: false`, or use a stronger judge",
    "low_margin": "the judge's margins were small: lower `filters.min_margin`, or use a stronger judge",
    "length_bias": "raise `filters.max_longer_share`",
}


def none_kept_line(counts: dict[str, Any]) -> str:
    """With no pair kept: the reason that dropped the most (responses left unjudged and pairs dropped, each counted
    in its own unit) and what to change.

    >>> print(none_kept_line({"dropped": {"low_margin": 3, "identical": 1}, "responses_dropped": {}}))
    no pair kept: the main reason was low_margin (3 pairs dropped) - the judge's margins were small: lower `filters.min_margin`, or use a stronger judge
    >>> print(none_kept_line({"dropped": {"truncated": 1, "low_margin": 1}, "responses_dropped": {"truncated": 2}}).split(" - ")[0])
    no pair kept: the main reason was truncated (2 responses not judged, 1 pair dropped)
    """
    responses, pairs = counts.get("responses_dropped", {}), {k: v for k, v in counts["dropped"].items() if v}
    totals = {reason: responses.get(reason, 0) + pairs.get(reason, 0) for reason in {**responses, **pairs}}
    reason, _ = max(totals.items(), key=lambda item: item[1], default=(None, 0))
    if reason is None:
        return "no pair kept"
    parts = [
        f"{n} {unit}{'s' if n != 1 else ''} {what}"
        for n, unit, what in (
            (responses.get(reason, 0), "response", "not judged"),
            (pairs.get(reason, 0), "pair", "dropped"),
        )
        if n
    ]
    fix = NONE_KEPT_FIX.get(reason, "see the recipe's `filters:`")
    return f"no pair kept: the main reason was {reason} ({', '.join(parts)}) - {fix}"
