"""The state of one run (`Run`): its spills on disk, compact totals, and its own request cache and
backend pool; `start_run` opens one, `live_run` finds it again from its work folder (what a Prefect
task is given). The order of a run's steps is rlaif.pipeline.runner's."""

from __future__ import annotations

import os
import threading
from array import array
from pathlib import Path

from rlaif.backends import BackendPool
from rlaif.calls.cache import CallCache, CallStats
from rlaif.calls.engine import RetryBudget, run_ledger
from rlaif.config.recipe import Recipe
from rlaif.core.errors import RecipeError
from rlaif.judges.pairwise import BiasTally
from rlaif.judges.stage import chunkable
from rlaif.pipeline.manifest import RunTotals
from rlaif.store.spill import RowSpill
from rlaif.store.versions import remove_abandoned_commits
from rlaif.store.workdirs import new_work_folder, remove_work_folder

DEFAULT_CHUNK_SIZE = 5000
API_CHUNK_SIZE = 256  # every model an API: small chunks keep the endpoint busy from the first request to the last
OUTPUTS = ("judgments", "rankings", "feedback", "candidates", "pairs")


def chunk_size_setting(value: int | None = None, api_only: bool = False) -> int:
    """--chunk-size, then RLAIF_CHUNK_SIZE, then 5000 prompts (256 when every model is an API).

    >>> chunk_size_setting(3)
    3
    """
    raw = (
        value
        if value is not None
        else os.environ.get("RLAIF_CHUNK_SIZE") or (API_CHUNK_SIZE if api_only else DEFAULT_CHUNK_SIZE)
    )
    try:
        size = int(raw)
    except ValueError:
        size = 0
    if size < 1:
        raise RecipeError(
            "RLAIF_CHUNK_SIZE" if value is None else "--chunk-size",
            "",
            f"chunk size must be a whole number of prompts >= 1, got {raw!r}",
            "e.g. 5000",
        )
    return size


class Run:
    """The state of one run: spills on disk, compact totals, and the run's own request cache and
    backend pool (open inside `with start_run(...) as run:`, closed with the work folder at its end)."""

    def __init__(self, recipe: Recipe, store: Path, chunk_size: int | None, judge: bool = True) -> None:
        self.recipe, self.store, self.judge = recipe, Path(store), judge
        self.chunked = judge and chunkable(recipe.judge)
        self.api_only = recipe.api_only(judge)
        self.chunk_size = (
            chunk_size_setting(chunk_size, self.api_only) if self.chunked or not judge else None
        )  # None: one chunk
        self.work = new_work_folder(self.store / ".runs")
        remove_abandoned_commits(self.store)
        self.stats, self.totals, self.chunks, self.report = CallStats(), RunTotals(), 0, {}
        self.stats.retry, self.stats.ledger = (
            RetryBudget.of(recipe.retries, recipe.allow_incomplete),
            run_ledger(recipe),
        )  # run-wide: every step shares them
        self.prompts = RowSpill(self.work, "prompts")
        self.generations = [RowSpill(self.work, f"generations-{i}") for i, _policy in enumerate(recipe.policies)]
        self.raw = RowSpill(self.work, "raw-judgments")
        self.outputs = {name: RowSpill(self.work, name) for name in OUTPUTS}
        self.tally = BiasTally()
        self.margins, self.longer = array("d"), bytearray()  # per candidate pair, for the length-bias cap
        self.cache: CallCache | None = None
        self.pool = BackendPool(self.store)  # backends resolve trained model ids (`model: <id>`) in the run's store
        self.lock = threading.Lock()  # steps that run together add their rows and counts under it
        self.done: dict[str, int] = {}  # stage -> chunks done
        self.quality: dict | None = (
            None  # the judge on the recipe's gold pairs (judge.gold), for the manifest's `eval`
        )

    def __enter__(self) -> Run:
        self.cache = CallCache(self.store / "cache.sqlite")
        _LIVE[str(self.work)] = self
        return self

    def __exit__(self, *exc) -> None:
        _LIVE.pop(str(self.work), None)
        try:
            self.pool.close()
            if self.cache is not None:
                self.cache.close()
        finally:
            remove_work_folder(self.work)

    def step_stats(self) -> CallStats:
        """Counts of one step (steps may run together); `add_stats` adds them to the run's."""
        return CallStats(retry=self.stats.retry, ledger=self.stats.ledger)

    def merged(self, stage: str) -> int:
        """Count one more chunk of `stage` done; the chunks done so far (in any order)."""
        self.done[stage] = self.done.get(stage, 0) + 1
        return self.done[stage]

    def add_stats(self, stats: CallStats) -> None:
        self.stats.add(stats)
        self.stats.last_error = stats.last_error or self.stats.last_error
        for name, tally in stats.stages.items():
            total = self.stats.stages.setdefault(name, {**tally, "ok": 0, "failed": 0})
            total["ok"] += tally["ok"]
            total["failed"] += tally["failed"]
            total["error"] = total["error"] or tally["error"]


_LIVE: dict[
    str, Run
] = {}  # work folder -> its open Run in this process (Prefect tasks take the folder, a plain value)


def live_run(work: str) -> Run:
    """The open run whose work folder is `work` (what a step task is given)."""
    run = _LIVE.get(str(work))
    if run is None:
        raise RuntimeError(
            f"no open run has the work folder {work} in this process - steps run inside `with start_run(...)`"
        )
    return run


def start_run(recipe: Recipe, store: str | Path, chunk_size: int | None = None, judge: bool = True) -> Run:
    """A new run on `store`; use it as `with start_run(...) as run:` (its cache is open inside)."""
    return Run(recipe, Path(store), chunk_size, judge)
