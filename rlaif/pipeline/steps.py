"""The bodies of a run's chunk steps (the order is rlaif.pipeline.runner.drive's), each split in two:

- a compute part, plain inputs -> rows and call counts: `sample_rows` (one policy on a chunk's
  prompts) and `judge_rows` (phase 1: the chunk's pairs in both orders, raw); it touches no run
  state, so a Ray actor runs it as well as this process (rlaif/pipeline/executors_ray.py);
- a merge part, `add_samples` / `add_judgments`: the rows spilled into the run and the counts added,
  under `run.lock` (steps may finish in any order).

`sample_chunk` and `judge_chunk` are the two together, in this process (InProcess, Prefect tasks).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from rlaif.backends import using
from rlaif.calls.cache import CallStats
from rlaif.calls.engine import check_stage, counted
from rlaif.core.schema import Generation, Judgment, Prompt
from rlaif.judges.stage import by_prompt, judge_raw_chunk
from rlaif.pipeline.sampling import sample_policy
from rlaif.store.versions import records

if TYPE_CHECKING:
    from rlaif.config.recipe import Recipe
    from rlaif.pipeline.run import Run

JUDGING = "judging"  # the judge's stage (all members of a jury together)


def sampling_stage(recipe: Recipe, policy_index: int) -> str:
    return f"sampling policy '{recipe.policies[policy_index].name}'"


def chunk_label(index: int, chunks: int) -> str:
    return f" (chunk {index + 1}/{chunks})" if chunks > 1 else ""


def sample_rows(
    recipe: Recipe, policy_index: int, prompts: list[Prompt], label: str, cache, stats: CallStats
) -> list[Generation]:
    """One policy's samples of some prompts; failed calls are values (Generation.error)."""
    policy = recipe.policies[policy_index]
    stage = sampling_stage(recipe, policy_index)
    return counted(
        stats, stage, policy, lambda: sample_policy(prompts, policy, recipe.samples_per_prompt, cache, stats, label)
    )


def judge_rows(
    recipe: Recipe, prompts: list[Prompt], generations: list[Generation], cache, stats: CallStats
) -> list[Judgment]:
    """Phase 1 of chunked judging on some prompts and their samples: raw both-order judgments, not debiased."""
    judge = recipe.judge
    return counted(
        stats,
        JUDGING,
        judge,
        lambda: judge_raw_chunk(by_prompt(prompts, generations), judge, recipe.filters, cache, stats),
    )


def add_samples(run: Run, policy_index: int, index: int, rows: list[dict], stats: CallStats) -> int:
    """Merge one policy's samples of chunk `index` into the run; returns the rows."""
    stage = sampling_stage(run.recipe, policy_index)
    with run.lock:
        run.add_stats(stats)
        if run.merged(stage) == run.chunks:  # the policy's last chunk: a policy whose every call failed ends the run
            check_stage(run.stats, stage)
        run.generations[policy_index].append(rows, key=index)
        run.totals.generations += len(rows)
    return len(rows)


def add_judgments(run: Run, index: int, rows: list[dict], stats: CallStats) -> int:
    """Merge chunk `index`'s raw judgments into the run; returns the rows."""
    with run.lock:
        run.add_stats(stats)
        if run.merged(JUDGING) == run.chunks:
            check_stage(run.stats, JUDGING)
        run.raw.append(rows, key=index)
    return len(rows)


def sample_chunk(run: Run, policy_index: int, index: int) -> int:
    """One policy's samples for one chunk, spilled; failed calls are values. Returns the rows written."""
    prompts, stats = chunk_prompts(run, index), run.step_stats()
    with using(run.pool):
        generations = sample_rows(run.recipe, policy_index, prompts, chunk_label(index, run.chunks), run.cache, stats)
    return add_samples(run, policy_index, index, records(generations), stats)


def judge_chunk(run: Run, index: int) -> int:
    """Phase 1: judge one chunk in both orders; raw judgments spilled, their bias tallied. Returns the rows written."""
    if not run.chunked:
        return 0  # judged in one piece by finish_judging
    (prompts, generations), stats = chunk_rows(run, index), run.step_stats()
    with using(run.pool):
        raw = judge_rows(run.recipe, prompts, generations, run.cache, stats)
    return add_judgments(run, index, records(raw), stats)


def chunk_prompts(run: Run, index: int) -> list[Prompt]:
    return [Prompt(**row) for row in run.prompts.rows_of(index)]


def chunk_rows(run: Run, index: int) -> tuple[list[Prompt], list[Generation]]:
    """A chunk's prompts and every policy's samples of them."""
    prompts = chunk_prompts(run, index)
    generations = [Generation(**row) for spill in run.generations for row in spill.rows_of(index)]
    return prompts, generations
