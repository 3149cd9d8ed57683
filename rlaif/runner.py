"""A run in chunks of prompts, so that memory is bounded by a chunk, not by the run.

    start_run -> prompt_chunks (read, filter, spill) -> sample_chunk per policy, then per chunk
              -> judge_chunk per chunk -> finish_judging -> commit_run -> close_run

Inside `one_loaded_backend()` (as `run_recipe` and the flow do it) each model is loaded once per
run and one at a time: a policy goes over every chunk before the next policy or the judge starts.

Every row a step makes is spilled to disk (`rlaif.store.spill.RowSpill`, in a work folder under
the store) as it comes; what stays in memory across chunks is compact numbers (`RunTotals`, the
position-bias tally, one margin per candidate pair). Judging has two phases so that run-wide
statistics stay run-wide: phase 1 (`judge_chunk`) judges each chunk in both orders and spills the
raw judgments; phase 2 (`finish_judging`) estimates the position bias over ALL of them, then
re-reads chunk by chunk, debiases, builds candidate pairs and applies the per-pair filters; the
length-bias cap is chosen over the whole run from the margins, and the pairs table written last.

The chunk size is an execution setting, not content: the committed tables (policy-major
generations, prompt-ordered judgments and pairs) and the version id are the same for any chunk
size. Judges other than a single pairwise judge (listwise, pointwise, binary, juries, principle
ensembles) run in one piece: the whole run is one chunk, as before.
"""

from __future__ import annotations

import os
import tempfile
from array import array
from collections.abc import Callable
from pathlib import Path

from rlaif.backends import one_loaded_backend
from rlaif.cache import CallCache, CallStats
from rlaif.calls import RetryBudget, check_stage, counted
from rlaif.errors import InputError, RecipeError
from rlaif.filters import length_cap_drops, select_candidates
from rlaif.inputs import iter_prompts
from rlaif.judges import jury as juries
from rlaif.judges.pairwise import BiasTally
from rlaif.judging import JudgeOutcome, by_prompt, chunkable, finish_chunk, judge_raw_chunk, judge_stage
from rlaif.pipeline import RunTotals, file_sha256, manifest_of, records
from rlaif.quality.length import chosen_is_longer
from rlaif.quality.prompts import PromptChecker
from rlaif.recipe import Recipe
from rlaif.sampling import sample_policy
from rlaif.schema import Generation, Judgment, PreferencePair, Prompt
from rlaif.store.locks import hold, locked_folder, release, try_hold
from rlaif.store.spill import RowSpill, chain, remove_folder
from rlaif.store.versions import commit_tables, remove_abandoned_commits

DEFAULT_CHUNK_SIZE = 5000
JUDGING = "judging"  # the judge's stage (all members of a jury together)
OUTPUTS = ("judgments", "rankings", "feedback", "candidates", "pairs")


def chunk_size_setting(value: int | None = None) -> int:
    """--chunk-size, then RLAIF_CHUNK_SIZE, then 5000 prompts.

    >>> chunk_size_setting(3)
    3
    """
    raw = value if value is not None else os.environ.get("RLAIF_CHUNK_SIZE") or DEFAULT_CHUNK_SIZE
    try:
        size = int(raw)
    except ValueError:
        size = 0
    if size < 1:
        raise RecipeError("RLAIF_CHUNK_SIZE" if value is None else "--chunk-size", "", f"chunk size must be a whole number of prompts >= 1, got {raw!r}", "e.g. 5000")
    return size


class Run:
    """The state of one run: spills on disk and compact totals (not a dataclass: passed to Prefect tasks as is)."""

    def __init__(self, recipe: Recipe, store: Path, chunk_size: int | None, judge: bool = True) -> None:
        self.recipe, self.store, self.judge = recipe, Path(store), judge
        self.chunked = judge and chunkable(recipe.judge)
        self.chunk_size = chunk_size_setting(chunk_size) if self.chunked or not judge else None  # None: one chunk
        self.work = _new_work_folder(self.store / ".runs")
        remove_abandoned_commits(self.store)
        self.stats, self.totals, self.chunks, self.report = CallStats(), RunTotals(), 0, {}
        self.prompts = RowSpill(self.work, "prompts")
        self.generations = [RowSpill(self.work, f"generations-{i}") for i in range(len(recipe.policies))]
        self.raw = RowSpill(self.work, "raw-judgments")
        self.outputs = {name: RowSpill(self.work, name) for name in OUTPUTS}
        self.tally = BiasTally()
        self.margins, self.longer = array("d"), bytearray()  # per candidate pair, for the length-bias cap


_HELD: dict[str, int] = {}  # work folder -> fd of its lock, held for the run's life (a Run stays a plain object)


def _new_work_folder(runs: Path) -> Path:
    """A fresh work folder, locked by this process until `close_run`; abandoned ones are removed first.

    Scanning and creating happen under a lock on `runs` itself, so a folder is never seen before its owner
    holds its `lock` (see rlaif/store/locks.py): one without a lock file, or whose lock can be
    taken, belongs to a run that is gone.
    """
    runs.mkdir(parents=True, exist_ok=True)
    with locked_folder(runs):
        _remove_stale(runs)
        work = Path(tempfile.mkdtemp(prefix=f"{os.getpid()}-", dir=runs))
        _HELD[str(work)] = hold(work / "lock")
    return work


def abandoned_work_folders(runs: Path) -> list[Path]:
    """Work folders whose run is gone (hold `locked_folder(runs)` while calling and acting on the answer)."""
    gone = []
    for folder in sorted(runs.iterdir()) if runs.is_dir() else []:
        if folder.name.startswith(".") or not folder.is_dir():
            continue
        lock = folder / "lock"
        fd = try_hold(lock)
        if fd is not None:
            release(fd)
            gone.append(folder)
        elif not lock.exists():  # died before locking (creation is under the lock on `runs`), or made by an older rlaif
            gone.append(folder)
    return gone


def _remove_stale(runs: Path) -> None:
    """Work folders of runs that are gone (their lock is free) are removed; live runs' are untouched."""
    for folder in abandoned_work_folders(runs):
        remove_folder(folder)


def start_run(recipe: Recipe, store: str | Path, chunk_size: int | None = None, judge: bool = True) -> Run:
    run = Run(recipe, Path(store), chunk_size, judge)
    run.stats.retry = RetryBudget.of(recipe.retries, recipe.allow_incomplete)  # run-wide: every step shares it
    return run


def close_run(run: Run) -> None:
    remove_work_folder(run.work)


def remove_work_folder(work: Path) -> None:
    """Remove a work folder of this process, then release its lock (so no other run ever sees it half-removed and free)."""
    remove_folder(work)
    fd = _HELD.pop(str(work), None)
    if fd is not None:
        release(fd)


def prompt_chunks(run: Run, limit: int | None = None) -> list[int]:
    """Read and filter the prompt file as a stream, spilling each chunk of kept prompts (read back
    with `chunk_prompts`); returns the chunk indices.

    Prompt filters (duplicates, eval overlap) run before any call; every chunk's prompts are
    spilled for the `prompts` table. A bad row raises InputError naming the file, row and field.
    """
    spec = run.recipe.prompts
    checker = PromptChecker(run.recipe.filters)
    chunk: list[Prompt] = []
    for prompt in iter_prompts(spec.path, spec.system, limit or spec.limit):
        reason = checker.reason(prompt)
        if reason:
            run.totals.prompts_dropped[reason] += 1
            continue
        chunk.append(prompt)
        if run.chunk_size and len(chunk) >= run.chunk_size:
            _add_chunk(run, chunk)
            chunk = []
    if chunk:
        _add_chunk(run, chunk)
    if not run.totals.prompts:
        dropped = ", ".join(f"{reason} {n}" for reason, n in sorted(run.totals.prompts_dropped.items()) if n)
        raise InputError(spec.path, f"no prompt is left after the prompt filters ({dropped or 'no rows'})",
                         fix="check the file, or the recipe's `filters:` (dedup_prompts, prompt_near_duplicate, decontaminate)")
    run.totals.input_sha256 = file_sha256(spec.path)
    return list(range(run.chunks))


def _add_chunk(run: Run, prompts: list[Prompt]) -> None:
    run.prompts.append(records(prompts), key=run.chunks)
    run.chunks += 1
    run.totals.prompts += len(prompts)


def sample_chunk(run: Run, policy_index: int, index: int, prompts: list[Prompt], cache: CallCache, stats: CallStats) -> None:
    """One policy's samples for one chunk, spilled; failed calls are values.

    Policies go one after another over all chunks (see `run_recipe`), so inside
    `one_loaded_backend()` each policy's model is loaded once per run, one model at a time.
    """
    policy = run.recipe.policies[policy_index]
    label = f" (chunk {index + 1}/{run.chunks})" if run.chunks > 1 else ""
    stage = f"sampling policy '{policy.name}'"
    generations = counted(stats, stage, policy, lambda: sample_policy(prompts, policy, run.recipe.samples_per_prompt, cache, stats, label))
    if index == run.chunks - 1:  # the policy's last chunk: a policy whose every call failed ends the run
        check_stage(stats, stage)
    run.generations[policy_index].append(records(generations), key=index)
    run.totals.generations += len(generations)


def chunk_prompts(run: Run, index: int) -> list[Prompt]:
    return [Prompt(**row) for row in run.prompts.rows_of(index)]


def judge_chunk(run: Run, index: int, cache: CallCache, stats: CallStats) -> None:
    """Phase 1: judge one chunk in both orders; raw judgments spilled, their bias tallied."""
    if not run.chunked:
        return  # judged in one piece by finish_judging
    prompts, generations = _chunk_rows(run, index)
    raw = counted(stats, JUDGING, run.recipe.judge, lambda: judge_raw_chunk(by_prompt(prompts, generations), run.recipe.judge, run.recipe.filters, cache, stats))
    if index == run.chunks - 1:
        check_stage(stats, JUDGING)
    run.tally.add(raw)
    run.raw.append(records(raw), key=index)


def _chunk_rows(run: Run, index: int) -> tuple[list[Prompt], list[Generation]]:
    prompts = chunk_prompts(run, index)
    generations = [Generation(**row) for spill in run.generations for row in spill.rows_of(index)]
    return prompts, generations


def finish_judging(run: Run, cache: CallCache, stats: CallStats) -> None:
    """Phase 2: debias with the run's bias, build and filter pairs chunk by chunk, cap length bias run-wide."""
    if not run.judge:
        return
    spec, filters = run.recipe.judge, run.recipe.filters
    if run.chunked:
        beta = run.tally.beta(juries.members_of(spec)[0].spec.debias)
        for index in range(run.chunks):
            prompts, generations = _chunk_rows(run, index)
            raw = [Judgment(**row) for row in run.raw.rows_of(index)]
            _add_outcome(run, index, finish_chunk(by_prompt(prompts, generations), raw, spec, filters, run.tally, beta))
        run.report = {"type": "pairwise", "position_bias": run.tally.report(beta).as_dict()}
        run.raw.remove()
    elif run.chunks:
        assert run.chunks == 1, "a judge that is not chunkable runs as one chunk"
        prompts, generations = _chunk_rows(run, 0)  # one piece: the whole run is chunk 0
        outcome = counted(stats, JUDGING, spec, lambda: judge_stage(prompts, generations, spec, filters, cache, stats))
        check_stage(stats, JUDGING)
        _add_outcome(run, 0, outcome)
        run.report = outcome.report
    _write_pairs(run)


def _add_outcome(run: Run, index: int, outcome: JudgeOutcome) -> None:
    candidates, dropped = select_candidates(outcome.items, outcome.judgments, run.recipe.filters)
    run.totals.add_outcome(outcome)
    run.totals.dropped.update(dropped)
    for name, rows in (("judgments", outcome.table), ("rankings", outcome.rankings), ("feedback", outcome.feedback)):
        run.outputs[name].append(records(rows))
    run.outputs["candidates"].append(records(candidates), key=index)
    run.margins.extend(pair.margin for pair in candidates)
    run.longer.extend(chosen_is_longer(pair) for pair in candidates)


def _write_pairs(run: Run) -> None:
    """The pairs table: candidates minus the run-wide length-bias cap, in run order."""
    candidates = run.outputs["candidates"]
    keys_of: Callable[[list[int]], list[tuple]] = lambda positions: candidates.column_values(["prompt_id", "chosen_id", "rejected_id"], positions)  # noqa: E731
    drops = length_cap_drops(run.margins, run.longer, run.recipe.filters.max_longer_share, keys_of)
    if drops:
        run.totals.dropped["length_bias"] += len(drops)
    position, previous = 0, None
    for index in range(run.chunks):
        rows = candidates.rows_of(index)
        kept = [row for offset, row in enumerate(rows) if position + offset not in drops]
        position += len(rows)
        run.outputs["pairs"].append(kept, key=index)
        previous = run.totals.add_kept([PreferencePair(**row) for row in kept], previous)
    candidates.remove()


def commit_run(run: Run) -> tuple[str, bool, dict]:
    """Commit the run's tables (read from the spills part by part) with its manifest; (id, created, manifest).

    A run in which every call of a stage failed never commits (StageFailed); one that kept transient
    failures (allowed by `allow_incomplete: true`) says so in its manifest: `incomplete: {failed_calls: N}`.
    """
    check_stage(run.stats)
    manifest = manifest_of(run.recipe, run.totals, run.report, run.stats)
    retry = run.stats.retry
    if retry is not None and retry.incomplete:
        manifest["incomplete"] = {"failed_calls": retry.incomplete}
    tables = {
        "pairs": run.outputs["pairs"], "generations": chain("generations", run.generations), "judgments": run.outputs["judgments"],
        "prompts": run.prompts, "rankings": run.outputs["rankings"], "feedback": run.outputs["feedback"],
    }
    version_id, created = commit_tables(run.store, run.recipe.name, tables, manifest)
    return version_id, created, manifest


def run_recipe(
    recipe: Recipe, store: str | Path, limit: int | None = None, chunk_size: int | None = None, judge: bool = True,
    after_chunks: Callable[[Run], None] | None = None,
) -> tuple[str, bool, dict, Run]:
    """A whole run without Prefect (the flow does the same steps as tasks); (id, created, manifest, run)."""
    run = start_run(recipe, store, chunk_size, judge)
    cache = CallCache(Path(store) / "cache.sqlite")
    try:
        with one_loaded_backend():
            chunks = prompt_chunks(run, limit)  # read, filtered and spilled
            for policy_index in range(len(recipe.policies)):
                for index in chunks:
                    sample_chunk(run, policy_index, index, chunk_prompts(run, index), cache, run.stats)
            for index in chunks:
                judge_chunk(run, index, cache, run.stats)
            if after_chunks:
                after_chunks(run)
            finish_judging(run, cache, run.stats)
        version_id, created, manifest = commit_run(run)
    finally:
        cache.close()
        close_run(run)
    return version_id, created, manifest, run
