"""A run in chunks of prompts, so that memory is bounded by a chunk, not by the run.

    with start_run(...) as run:  drive(run, steps)
        prompt_chunks (read, filter, spill) -> sample_chunk / judge_chunk in the order of `waves`
        -> finish_judging -> commit_run

`drive` alone decides the order of a run's steps; `steps` executes them: `InProcess` (the
library and `rlaif run --no-prefect`), Prefect tasks in flows/pipeline.py, or Ray shard workers
(`execution: {engine: ray}`, rlaif/pipeline/executors_ray.py; the step bodies are rlaif/pipeline/steps.py). A step takes the run
and plain values (policy and chunk indices) and returns plain values; the run's request cache and
backend pool are the run's own (`Run` is a context manager), never a step's argument.

Each model is loaded once per run. With a local engine anywhere in the run, one model at a time:
a policy goes over every chunk before the next policy or the judge starts. When every model is an
API backend, the steps of a chunk run together (every policy samples chunk k while the judge
judges chunk k-1) under one request limit per endpoint, so the endpoint is never idle between
stages; chunks are then small (`API_CHUNK_SIZE`) so that the first and last waves are short.

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

from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from rlaif.backends import using
from rlaif.calls.engine import check_stage, counted
from rlaif.config.recipe import Recipe
from rlaif.core.errors import InputError, RunIncomplete
from rlaif.core.inputs import file_sha256
from rlaif.core.schema import Judgment, PreferencePair, Prompt
from rlaif.judges import jury as juries
from rlaif.judges.measure import measure_judge
from rlaif.judges.stage import JudgeOutcome, by_prompt, finish_chunk, judge_stage
from rlaif.pipeline.executors import InProcess, Steps, settle
from rlaif.pipeline.incremental import new_prompts, with_parent
from rlaif.pipeline.manifest import manifest_of
from rlaif.pipeline.run import Run, start_run
from rlaif.pipeline.steps import JUDGING, chunk_prompts, chunk_rows, judge_chunk, sample_chunk  # noqa: F401 - the step bodies (rlaif/pipeline/steps.py), named here for executors
from rlaif.quality.filters import length_cap_drops, select_candidates
from rlaif.quality.length import chosen_is_longer
from rlaif.quality.prompts import PromptChecker
from rlaif.store.spill import RowSpill, chain
from rlaif.store.versions import commit_tables, records


def prompt_chunks(run: Run, limit: int | None = None) -> list[int]:
    """Read and filter the prompt file as a stream, spilling each chunk of kept prompts (read back
    with `chunk_prompts`); returns the chunk indices.

    Prompt filters (duplicates, eval overlap) run before any call; every chunk's prompts are
    spilled for the `prompts` table. A bad row raises InputError naming the file, row and field.
    """
    spec = run.recipe.prompts
    checker = PromptChecker(run.recipe.filters)
    chunk: list[Prompt] = []
    for prompt in new_prompts(
        run, limit
    ):  # the prompt file, less the prompts of the recipe's `parent:` (NothingNew when none is left)
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
        raise InputError(
            spec.label(),
            f"no prompt is left after the prompt filters ({dropped or 'no rows'})",
            fix="check the file, or the recipe's `filters:` (dedup_prompts, prompt_near_duplicate, decontaminate)",
        )
    run.totals.input_sha256 = file_sha256(run.totals.prompt_file)
    return list(range(run.chunks))


def _add_chunk(run: Run, prompts: list[Prompt]) -> None:
    run.prompts.append(records(prompts), key=run.chunks)
    run.chunks += 1
    run.totals.prompts += len(prompts)


def finish_judging(run: Run) -> int:
    """Phase 2: debias with the run's bias, build and filter pairs chunk by chunk, cap length bias run-wide.
    Returns the pairs kept."""
    if not run.judge:
        return 0
    with using(run.pool):
        _finish(run)
        run.quality = measure_judge(
            run.recipe, run.store, run.stats.ledger
        )  # while the judge is loaded; cached like any call
    return run.outputs["pairs"].rows


def _finish(run: Run) -> None:
    spec, filters = run.recipe.judge, run.recipe.filters
    if run.chunked:
        for index in range(run.chunks):  # in chunk order, whatever order phase 1 finished in
            run.tally.add([Judgment(**row) for row in run.raw.rows_of(index)])
        beta = run.tally.beta(juries.members_of(spec)[0].spec.debias)
        for index in range(run.chunks):
            prompts, generations = chunk_rows(run, index)
            raw = [Judgment(**row) for row in run.raw.rows_of(index)]
            _add_outcome(
                run, index, finish_chunk(by_prompt(prompts, generations), raw, spec, filters, run.tally, beta)
            )
        run.report = {"type": "pairwise", "position_bias": run.tally.report(beta).as_dict()}
        run.raw.remove()
    elif run.chunks:
        assert run.chunks == 1, "a judge that is not chunkable runs as one chunk"
        prompts, generations = chunk_rows(run, 0)  # one piece: the whole run is chunk 0
        stats = run.stats  # no other step runs now
        outcome = counted(
            stats, JUDGING, spec, lambda: judge_stage(prompts, generations, spec, filters, run.cache, stats)
        )
        check_stage(stats, JUDGING)
        _add_outcome(run, 0, outcome)
        run.report = outcome.report
    _write_pairs(run)


def _add_outcome(run: Run, index: int, outcome: JudgeOutcome) -> None:
    candidates, dropped = select_candidates(outcome, run.recipe.filters)
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
    keys_of: Callable[[list[int]], list[tuple]] = lambda positions: candidates.column_values(
        ["prompt_id", "chosen_id", "rejected_id"], positions
    )  # noqa: E731
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


def in_chunk_order(spill: RowSpill) -> RowSpill:
    """The parts of a spill keyed by chunk, in chunk order (steps that run together finish in any order)."""
    ordered = RowSpill(spill.folder, spill.name)
    ordered.columns, ordered.rows = spill.columns, spill.rows
    for key in sorted(spill.keys):
        ordered.parts.append(spill.parts[spill.keys[key]])
        ordered.schemas.append(spill.schemas[spill.keys[key]])
    return ordered


def commit_run(run: Run) -> tuple[str, bool, dict]:
    """Commit the run's tables (read from the spills part by part) with its manifest; (id, created, manifest).

    A run in which every call of a stage failed never commits (StageFailed); one that kept transient
    failures (allowed by `allow_incomplete: true`) says so in its manifest: `incomplete: {failed_calls: N}`.
    """
    check_stage(run.stats)
    check_judge(run.totals, run.recipe.min_verdict_share)
    manifest = manifest_of(run.recipe, run.totals, run.report, run.stats)
    retry = run.stats.retry
    if retry is not None and retry.incomplete:
        manifest["incomplete"] = {"failed_calls": retry.incomplete}
    if run.quality is not None:
        manifest["eval"] = run.quality
    tables = {
        "pairs": run.outputs["pairs"],
        "generations": chain("generations", [in_chunk_order(spill) for spill in run.generations]),
        "judgments": run.outputs["judgments"],
        "prompts": run.prompts,
        "rankings": run.outputs["rankings"],
        "feedback": run.outputs["feedback"],
    }
    version_id, created = commit_tables(
        run.store, run.recipe.name, with_parent(run, tables, manifest), manifest
    )  # a parent's rows first
    return version_id, created, manifest


UNREAD_MIN = 5  # judgments a run needs before `min_verdict_share` applies


def check_judge(totals, min_verdict_share: float) -> None:
    """A judge whose answers nearly all give no verdict (a wrong template, protocol or max_tokens) stops the run
    before it commits (RunIncomplete, exit code 3), quoting one answer: such a version would hold no pair.
    "Nearly all": fewer than `min_verdict_share` (recipe, default 0.1) of at least UNREAD_MIN judgments read."""
    read = totals.judgments - totals.unread
    if totals.judgments < UNREAD_MIN or not totals.unread or read >= min_verdict_share * totals.judgments:
        return
    error, raw, template = totals.unread_example
    answer = raw if len(raw) <= 300 else raw[:297] + "..."
    example = f"e.g. the judge answered {answer!r} to" if answer else "with"
    raise RunIncomplete(
        f"judging: {totals.unread} of {totals.judgments} judgments gave no verdict ({error}), {example} the template "
        f"{template}, whose protocol asks for its verdict after the prefix the template names (docs/judges.md, 'A judge "
        f"variant is a file'). Nothing was committed, and every call is cached - check the judge's `template:` and "
        f"`model:`, or raise its `max_tokens` if the answers were cut short, then run again (`min_verdict_share: 0` "
        f"commits such a run anyway)."
    )


LOOKAHEAD = 2  # every model an API: chunks sampled ahead of the oldest chunk not yet judged (memory: a few chunks)


def _sample_and_judge(run: Run, steps: Steps, chunks: list[int]) -> None:
    """Sampling and phase-1 judging, in the one order the run allows.

    Every model an API: chunk by chunk, every policy at once, and each chunk judged as soon as all its
    samples are in, while later chunks are sampled (at most LOOKAHEAD chunks ahead), so the endpoint,
    whose one limit they share, is never idle between stages. Otherwise one step at a time,
    policy-major, then the judge over every chunk, so each model is loaded once and alone.
    """
    together, policies = run.api_only, range(len(run.recipe.policies))
    waits = not (
        together or getattr(steps, "concurrent", False)
    )  # Ray: each shard worker has its own engine, steps of different shards run at once
    order = [(k, p) for k in chunks for p in policies] if together else [(k, p) for p in policies for k in chunks]
    sampled: dict[int, list] = {k: [] for k in chunks}
    judged: dict[int, Any] = {}
    handles: list = []  # everything submitted, oldest first

    def submit(kind: str, fn: Callable[..., Any], args: tuple, after: Sequence[Any] = ()) -> Any:
        handles.append(steps.submit(kind, fn, args, after))
        if waits:
            handles[-1].result()
        return handles[-1]

    try:
        for k, p in order:
            if together and p == 0 and k >= LOOKAHEAD:  # bounded memory: wait for an older chunk
                (judged.get(k - LOOKAHEAD) or sampled[k - LOOKAHEAD][-1]).result()
            sampled[k].append(submit("sample", sample_chunk, (run, p, k)))
            if together and run.chunked and len(sampled[k]) == len(policies):
                judged[k] = submit("judge", judge_chunk, (run, k), sampled[k])
        for k in chunks if run.chunked and not together else []:
            judged[k] = submit("judge", judge_chunk, (run, k), sampled[k])
    except BaseException as exc:
        stop_on_signal(run, steps, exc)
        raise
    finally:
        # every step ends before an error leaves (the run then closes its backends); a signal meanwhile stops them
        error = settle(handles, lambda exc: stop_on_signal(run, steps, exc))
    if error is not None:
        raise error


def stop_on_signal(run: Run, steps: Steps, exc: BaseException) -> None:
    """Ctrl-C or SIGTERM (KeyboardInterrupt, SystemExit, Prefect's TerminationSignal: not an Exception) while
    steps run in other threads: no backend sends a further request, the ones in flight get a few seconds
    (rlaif.backends.openai_compat.STOP_GRACE_S) and are cached as they come back, and the steps end."""
    if not isinstance(exc, Exception):
        run.pool.stop()
        steps.stop()


def drive(
    run: Run, steps: Steps | None = None, limit: int | None = None, after_chunks: Callable[[Run], None] | None = None
) -> tuple[str, bool, dict]:
    """Every step of a run, in order, through `steps` (default: in this process); (version id, created, manifest)."""
    own = steps is None
    steps = executor_of(run, limit) if steps is None else steps
    current: list = []  # the step the driver waits for now: a signal stops it, then waits for its end

    def step(kind: str, fn: Callable[..., Any], args: tuple) -> Any:
        current[:] = [steps.submit(kind, fn, args)]
        return current[0].result()

    try:
        chunks = step("prompts", prompt_chunks, (run, limit))  # duplicates, eval overlap: dropped before any call
        steps.expect(planned_steps(run, chunks))
        _sample_and_judge(run, steps, chunks)
        if after_chunks:
            after_chunks(run)
        step("finish", finish_judging, (run,))
        return step("commit", commit_run, (run,))
    except BaseException as exc:
        if not isinstance(exc, Exception):
            stop_on_signal(run, steps, exc)
            settle(current)  # a commit under way completes (one rename): the version is then there, whole
        raise
    finally:
        if own:
            steps.close()


def planned_steps(run: Run, chunks: list[int]) -> int:
    """How many steps `drive` submits: the prompts, each chunk sampled by each policy, each chunk judged (when the
    judge goes chunk by chunk), the finish and the commit."""
    return 1 + len(chunks) * len(run.recipe.policies) + (len(chunks) if run.chunked else 0) + 2


def executor_of(run: Run, limit: int | None = None) -> Steps:
    """The executor the run's `execution:` names: InProcess, or Ray shard workers (rlaif/pipeline/executors_ray.py)."""
    if run.recipe.execution.engine == "ray":
        from rlaif.pipeline.executors_ray import RaySteps

        return RaySteps(run, limit)
    return InProcess()


def run_recipe(
    recipe: Recipe,
    store: str | Path,
    limit: int | None = None,
    chunk_size: int | None = None,
    judge: bool = True,
    after_chunks: Callable[[Run], None] | None = None,
) -> tuple[str, bool, dict, Run]:
    """A whole run in this process (`drive` with `InProcess`); (id, created, manifest, run)."""
    with start_run(recipe, store, chunk_size, judge) as run:
        version_id, created, manifest = drive(run, None, limit, after_chunks)
    return version_id, created, manifest, run
