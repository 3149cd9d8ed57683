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
        *([incremental] if incremental else []),
        f"calls: live {stats.live}, cached {stats.cached}, failed {stats.failed}",
        *cost_lines(manifest.get("cost")),
        *([f"waited on rate limits: {stats.limit_wait_s:.1f} s"] if stats.limit_wait_s else []),
        f"version: {version_id}" + ("" if created else " (already in the store: same content)"),
    ]
