"""The steps of a run that are not sampling or judging themselves: the store path, the manifest
(secrets redacted), and the summary. flows/ wires these into a Prefect flow."""

from __future__ import annotations

import hashlib
import os
from collections import Counter
from dataclasses import asdict
from pathlib import Path
from typing import Any

from rlaif.cache import CallStats
from rlaif.filters import DROP_REASONS, PROMPT_DROP_REASONS
from rlaif.judging import JudgeOutcome, judge_section, judge_summary, judge_templates
from rlaif.recipe import Recipe
from rlaif.schema import Generation, PreferencePair, Prompt


def store_path(recipe: Recipe, store: str | None) -> Path:
    """--store, then RLAIF_STORE, then the recipe's store, then data/store."""
    return Path(store or os.environ.get("RLAIF_STORE") or recipe.store or "data/store")


def redact(value: Any, secrets: list[str]) -> Any:
    """Replace any secret string found anywhere in a nested structure.

    >>> redact({"a": ["key sk-123 here"]}, ["sk-123"])
    {'a': ['key *** here']}
    """
    if isinstance(value, str):
        for secret in secrets:
            value = value.replace(secret, "***")
        return value
    if isinstance(value, dict):
        return {k: redact(v, secrets) for k, v in value.items()}
    if isinstance(value, list):
        return [redact(v, secrets) for v in value]
    return value


def secrets_of(recipe: Recipe) -> list[str]:
    """Values of the API-key variables the recipe names (to keep them out of every output)."""
    names = {spec.api_key_env for spec in [*recipe.policies, recipe.judge, *recipe.judge.jury]}
    return [os.environ[name] for name in names if len(os.environ.get(name, "")) >= 4]


def build_manifest(
    recipe: Recipe,
    prompts: list[Prompt],
    generations: list[Generation],
    outcome: JudgeOutcome,
    pairs: list[PreferencePair],
    dropped: Counter,
    stats: CallStats,
    prompts_dropped: Counter | None = None,
) -> dict[str, Any]:
    judgments = outcome.table
    manifest = {
        "recipe": recipe.model_dump(mode="json"),
        "inputs": {"prompts": input_lineage(recipe.prompts.path, prompts)},
        "models": {
            "policies": [{"name": p.name, "backend": p.backend, "model": p.model} for p in recipe.policies],
            "judge": {"backend": recipe.judge.backend, "model": recipe.judge.model},
        },
        "prompt_templates": judge_templates(recipe.judge),
        "counts": {
            "prompts": len(prompts),
            "prompts_dropped": {reason: (prompts_dropped or {}).get(reason, 0) for reason in PROMPT_DROP_REASONS},
            "generations": len(generations),
            "responses_dropped": dict(sorted(outcome.responses_dropped.items())),
            "in": len(outcome.items),
            "kept": len(pairs),
            "dropped": {reason: dropped.get(reason, 0) for reason in DROP_REASONS},
            "judgments": len(judgments),
            "rankings": len(outcome.rankings),
            "feedback": {"good": sum(f.label for f in outcome.feedback), "bad": sum(not f.label for f in outcome.feedback)},
            "prompts_with_pair": len({pair.prompt_id for pair in pairs}),
        },
        "calls": {"live": stats.live, "cached": stats.cached, "failed": stats.failed},
        "tokens": {"prompt": stats.prompt_tokens, "completion": stats.completion_tokens},
        "judge": {
            **judge_section(recipe.judge, outcome),
            "mean_prob_mass": _mean([j.prob_mass for j in judgments if j.prob_mass is not None]),
            "prefers_longer": _prefers_longer(pairs),
        },
    }
    return redact(manifest, secrets_of(recipe))


def input_lineage(path: str, prompts: list[Prompt]) -> dict[str, Any]:
    """Where the prompts came from: the file, its sha256, and how many rows were used."""
    file = Path(path)
    sha = hashlib.sha256(file.read_bytes()).hexdigest() if file.is_file() else None
    return {"path": str(path), "sha256": sha, "rows": len(prompts)}


def _mean(values: list[float]) -> float | None:
    return round(sum(values) / len(values), 4) if values else None


def _prefers_longer(pairs: list[PreferencePair]) -> float | None:
    """Share of kept pairs whose chosen response is the longer one (length bias check)."""
    return _mean([float(len(p.chosen[0]["content"]) > len(p.rejected[0]["content"])) for p in pairs])


def summary_lines(version_id: str, created: bool, manifest: dict[str, Any], stats: CallStats) -> list[str]:
    """The run summary, ending in the version id."""
    counts = manifest["counts"]
    drops = ", ".join(f"{reason} {n}" for reason, n in counts["dropped"].items() if n) or "none"
    response_drops = ", ".join(f"{reason} {n}" for reason, n in counts.get("responses_dropped", {}).items() if n)
    if response_drops:
        drops += f"; responses not judged: {response_drops}"
    prompt_drops = ", ".join(f"{reason} {n}" for reason, n in counts.get("prompts_dropped", {}).items() if n)
    return [
        f"prompts: {counts['prompts']}" + (f" (dropped before sampling: {prompt_drops})" if prompt_drops else "")
        + f", responses: {counts['generations']}, candidate pairs: {counts['in']}",
        judge_summary(manifest["judge"]),
        f"dropped: {drops}",
        f"kept: {counts['kept']} preference pairs from {counts['prompts_with_pair']} prompts",
        f"calls: live {stats.live}, cached {stats.cached}, failed {stats.failed}",
        f"version: {version_id}" + ("" if created else " (already in the store: same content)"),
    ]


def records(rows: list[Any]) -> list[dict]:
    return [asdict(row) for row in rows]
