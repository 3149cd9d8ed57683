"""The Ray executor of a run's steps (`execution: {engine: ray}`; docs/scale.md).

Ray core actors, `shards` per kind of stage (steps whose models are all APIs: CPU-only workers;
steps with a local engine: workers with the GPUs), each holding its own `BackendPool` (a loaded
model stays loaded between its calls) and its own request-cache file (rlaif/calls/shard_cache.py).
`rlaif.pipeline.runner.drive` decides the order of the steps as for any executor; here "sample" and "judge"
steps of chunk k go to worker k % shards of their stage's group, and "prompts", "finish", "commit" run on the driver. An actor runs its calls
one at a time, in the order the driver sent them: with local engines (policy-major order) a worker
loads each model once and holds one at a time; steps of different shards run at once (`concurrent`).

A shard step takes plain values (the recipe as data, the store, the chunk's Arrow files in the
run's work folder, which every node sees on a shared filesystem) and returns plain values (the
Arrow file of its rows, its call counts); the driver merges them into the run exactly as an
in-process step does (rlaif/pipeline/steps.py), so the committed tables and the version id are the same.
"""

from __future__ import annotations

import importlib
import os
from concurrent.futures import Future
from dataclasses import asdict
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.ipc as ipc

from rlaif.backends import API_BACKENDS, BackendPool, using
from rlaif.calls.cache import CallStats
from rlaif.calls.engine import RetryBudget
from rlaif.calls.shard_cache import ShardCache, abandoned_shards, merge_shards, prepare_snapshot, shard_folder
from rlaif.core.errors import BackendError, RecipeError, RlaifError
from rlaif.core.schema import Generation, Prompt
from rlaif.pipeline.execution import batch_alignment, count_prompts, shard_chunk_size
from rlaif.pipeline.executors import InProcess
from rlaif.pipeline.steps import add_judgments, add_samples, chunk_label, judge_rows, sample_rows
from rlaif.store.prompt_sources import resolve_prompts
from rlaif.store.spill import RowSpill
from rlaif.store.versions import records

COUNTS = ("live", "cached", "failed", "prompt_tokens", "completion_tokens", "latency_s", "retried", "limit_wait_s")
RETRY_COUNTS = ("calls", "spent", "incomplete")
FIX = (
    "start one with `ray start --head` (then --ray auto on that node, or --ray HEAD_IP:6379 elsewhere), "
    "or drop the address (`--ray local`) to start a Ray instance for the run"
)


class RaySteps:
    """`rlaif.pipeline.executors.Steps` on Ray actors (one per shard); use inside `with start_run(...)`, closed at the end of `drive`."""

    concurrent = True  # drive does not wait for one step before the next: shards work at once

    def __init__(self, run, limit: int | None = None) -> None:
        check_recipe(run.recipe)
        self.run, self.spec = run, run.recipe.execution
        self.ray = _import_ray()
        self.groups = stage_groups(run)
        self.started = connect(self.ray, self.spec, len(self.groups))
        self.local = InProcess()
        self.workers: dict[str, list[Any]] = {}  # stage group ("api" / "local") -> its shard workers
        if run.chunked and run.chunk_size:  # at least one chunk per shard
            most = limit or run.recipe.prompts.limit
            prompts = count_prompts(resolve_prompts(run.recipe.prompts, run.store, most).file, most)
            run.chunk_size = shard_chunk_size(run.chunk_size, prompts, self.spec.shards, batch_alignment(run.recipe))
        live = {p.name for p in (run.store / ".runs").iterdir()} if (run.store / ".runs").is_dir() else set()
        merge_shards(run.cache, abandoned_shards(run.store, live))  # calls of a killed sharded run, kept
        prepare_snapshot(run.cache)
        try:
            self.workers = start_workers(self.ray, run, self.spec, self.groups)
        except BaseException:
            self.close()
            raise

    def submit(self, kind: str, fn, args: tuple, after=()) -> Future:
        if kind == "finish":
            return self.local.submit(kind, self._after_shards, (fn, args), after)
        if kind not in ("sample", "judge") or (kind == "judge" and not self.run.chunked):
            return self.local.submit(kind, fn, args, after)
        if not after:  # sent now, in the driver's order: each worker gets its calls in that order
            ref = self._send(kind, args)
            return self.local.threads.submit(self._merge, kind, args, ref)
        return self.local.submit(kind, lambda: self._merge(kind, args, self._send(kind, args)), (), after)

    def _send(self, kind: str, args: tuple):
        run, index = args[0], args[-1]
        group = self.workers[step_group(run.recipe, kind, args[1] if kind == "sample" else None)]
        worker = group[index % len(group)]
        prompts = str(run.prompts.parts[run.prompts.keys[index]])
        if kind == "sample":
            return worker.sample.remote(args[1], index, run.chunks, prompts)
        generations = [str(spill.parts[spill.keys[index]]) for spill in run.generations if index in spill.keys]
        return worker.judge.remote(index, prompts, generations)

    def _merge(self, kind: str, args: tuple, ref) -> int:
        result = self.ray.get(ref)
        if "error" in result:
            raise rebuilt(result["error"])
        run, index = args[0], args[-1]
        rows = read_rows(result["path"]) if result["path"] else []
        if result["path"]:
            Path(result["path"]).unlink(missing_ok=True)  # now in the run's own spill
        stats = absorb(run, result["stats"])
        return (
            add_samples(run, args[1], index, rows, stats)
            if kind == "sample"
            else add_judgments(run, index, rows, stats)
        )

    def _after_shards(self, fn, args: tuple):
        self.release()  # the shards' calls are in the main cache before the driver judges (gold, one-piece judges)
        return fn(*args)

    def stop(self) -> None:
        """Ctrl-C or SIGTERM: each worker's backends stop as the driver's do (`ShardWorker.stop`, run beside the
        step it is in: its own concurrency group), so no shard sends a further request and what comes back in
        the grace period reaches its cache file, merged into the store's cache when the run closes (`release`).
        A worker that cannot be reached is killed."""
        workers = [worker for group in self.workers.values() for worker in group]
        for worker in workers:
            try:
                self.ray.get(worker.stop.options(concurrency_group="control").remote(), timeout=10)
            except Exception:  # noqa: BLE001 - dead or stuck: nothing of it may send again
                self.ray.kill(worker)

    def expect(self, steps: int) -> None:
        """Nothing: under Prefect, PrefectSteps (which wraps this) keeps the run's progress artifact."""

    def release(self) -> None:
        """Stop the workers and merge their cache files into the store's cache (also after a failure: a re-run resumes)."""
        workers, self.workers = [worker for group in self.workers.values() for worker in group], {}
        if workers:
            try:
                self.ray.get([worker.close.remote() for worker in workers], timeout=120)
            except Exception:  # noqa: BLE001 - a dead worker: its file is merged as far as it was written
                pass
            for worker in workers:
                self.ray.kill(worker)
        merge_shards(self.run.cache, sorted(shard_folder(self.run.store).glob(f"{self.run.work.name}-*.sqlite")))

    def close(self) -> None:
        try:
            self.local.close()
            self.release()
        finally:
            if self.started:
                self.ray.shutdown()


def check_recipe(recipe) -> None:
    """What a sharded run cannot keep: a run-wide `budget:` (each shard would enforce it alone)."""
    if recipe.budget is not None:
        raise RecipeError(
            "recipe",
            "budget",
            "a budget is enforced within one process; with execution.engine: ray each shard would spend up to the whole cap",
            "run the budgeted recipe with engine: local, or remove `budget:`",
        )


def preflight(recipe) -> None:
    """Before anything is written: the recipe fits a sharded run, Ray is installed, and the cluster the address names answers."""
    check_recipe(recipe)
    ray = _import_ray()
    address = recipe.execution.address or os.environ.get("RAY_ADDRESS") or None
    if address == "auto":
        try:
            address = ray._private.services.canonicalize_bootstrap_address("auto")
        except ConnectionError as exc:
            raise BackendError(
                f"no Ray cluster runs on this node for address 'auto' (execution.address, or --ray): {exc} - {FIX}"
            ) from None
        except Exception:  # noqa: BLE001 - Ray's own lookup moved: ray.init says it later
            return
    if address not in (None, "auto", "local"):
        reachable(address)


def _import_ray():
    try:
        import ray
    except ImportError:
        raise BackendError(
            "execution.engine: ray needs Ray - pip install 'rlaif[ray]' (or ray>=2.40) into this environment and on every node"
        ) from None
    return ray


def connect(ray, spec, groups: int = 1) -> bool:
    """Join the cluster `spec.address` names (else $RAY_ADDRESS, else start one); True when this run started Ray."""
    if ray.is_initialized():
        return False
    address = spec.address or os.environ.get("RAY_ADDRESS") or None
    kwargs: dict[str, Any] = {"include_dashboard": False, "logging_level": "WARNING", "log_to_driver": False}
    if address is None:  # the run's own instance: room for every shard on this machine
        kwargs["num_cpus"] = max(os.cpu_count() or 1, int(groups * spec.shards * spec.num_cpus + 0.999))
    if address not in (None, "auto"):
        reachable(address)
    try:
        ray.init(address=address, **kwargs)
    except (ConnectionError, RuntimeError, ValueError, TimeoutError) as exc:
        raise BackendError(
            f"cannot reach the Ray cluster at {address!r} (execution.address, or --ray): {str(exc).splitlines()[0][:300]} - {FIX}"
        ) from None
    return address is None


def reachable(address: str, timeout_s: float = 5.0) -> None:
    """A TCP connection to HOST:PORT (`ray://` too) within a few seconds, else a BackendError naming it (ray.init would retry for a minute)."""
    import socket

    host, _, port = address.removeprefix("ray://").rpartition(":")
    try:
        with socket.create_connection((host or "127.0.0.1", int(port)), timeout=timeout_s):
            return
    except (OSError, ValueError) as exc:
        raise BackendError(
            f"cannot reach the Ray cluster at {address!r} (execution.address, or --ray): {exc or 'no answer'} - {FIX}"
        ) from None


def step_group(recipe, kind: str, policy_index: int | None = None) -> str:
    """Which workers run a step: "api" (CPUs only) when every model it calls is an API, else "local" (the GPUs)."""
    from rlaif.judges import jury

    specs = (
        [recipe.policies[policy_index]]
        if kind == "sample"
        else [member.spec for member in jury.members_of(recipe.judge)]
    )
    return group_of(specs)


def group_of(specs) -> str:
    return "api" if all(spec.backend in API_BACKENDS for spec in specs) else "local"


def stage_groups(run) -> list[str]:
    """The worker groups a run needs: its policies' and (judged on the shards) its judge's."""
    groups = {group_of([policy]) for policy in run.recipe.policies}  # each sample step's
    if run.chunked:
        groups.add(step_group(run.recipe, "judge"))
    return sorted(groups)


def start_workers(ray, run, spec, groups: list[str]) -> dict[str, list]:
    """`shards` actors per stage group, each declaring what its stage needs: CPUs for API calls, GPUs for local engines."""
    gpus = spec.num_gpus if spec.num_gpus is not None else default_gpus(run.recipe, ray.cluster_resources())
    gpus = gpus if "local" in groups else 0
    have = ray.cluster_resources()
    for name, each, count in (
        ("CPU", spec.num_cpus, len(groups)),
        ("GPU", gpus, 1),
    ):  # an actor holds its share for the run: more would wait forever
        need = each * spec.shards * count
        if each and have.get(name, 0) + 1e-9 < need:
            raise BackendError(
                f"the Ray cluster has {have.get(name, 0):g} {name}s; {count * spec.shards} shard workers ({', '.join(groups)} stages) need {need:g} "
                f"(execution.num_{name.lower()}s {each:g} each) - lower execution.shards or num_{name.lower()}s, or add nodes to the cluster"
            )
    data = run.recipe.model_dump(
        mode="json", exclude_unset=True
    )  # as written: defaults of other backends do not validate
    folder = run.recipe.judge.folder  # the recipe file's (not part of the dumped recipe)
    folder = str(folder) if folder is not None else None
    workers = {}
    for group in groups:
        # `stop` runs in a concurrency group of its own, while a step runs (the default group: one at a time)
        actor = ray.remote(concurrency_groups={"control": 1})(ShardWorker).options(
            num_cpus=spec.num_cpus, num_gpus=gpus if group == "local" else 0, max_restarts=0
        )
        workers[group] = [
            actor.remote(data, str(run.store), str(run.work), f"{group}{shard}", os.getcwd(), folder)
            for shard in range(spec.shards)
        ]
    return workers


def default_gpus(recipe, resources: dict) -> float:
    """GPUs per worker when the recipe leaves them out: its local models' largest tensor_parallel_size when the cluster has GPUs."""
    local = [spec for spec in recipe.models() if spec.backend not in API_BACKENDS]
    if not local or not resources.get("GPU"):
        return 0
    return float(max(getattr(spec, "tensor_parallel_size", 1) or 1 for spec in local))


class ShardWorker:
    """One shard's worker (a Ray actor): its backends stay loaded between calls; its calls go to its own cache file."""

    def __init__(self, recipe: dict, store: str, work: str, shard: str, cwd: str, folder: str | None = None) -> None:
        from rlaif.config.recipe import Recipe

        if Path(cwd).is_dir():
            os.chdir(cwd)  # relative paths of the recipe (templates, local models) as on the driver
        # the judge's templates are looked for next to the recipe file first, as on the driver
        self.recipe = Recipe.model_validate(recipe).read_from(folder)
        self.pool = BackendPool(Path(store))
        self.cache = ShardCache(
            Path(store) / "cache.sqlite", shard_folder(store) / f"{Path(work).name}-{shard}.sqlite"
        )
        self.out = Path(work) / "shards" / str(shard)

    def sample(self, policy_index: int, index: int, chunks: int, prompts: str) -> dict:
        rows = [Prompt(**row) for row in read_rows(prompts)]
        return self._step(
            f"generations-{policy_index}-{index}",
            lambda stats: sample_rows(self.recipe, policy_index, rows, chunk_label(index, chunks), self.cache, stats),
        )

    def judge(self, index: int, prompts: str, generations: list[str]) -> dict:
        rows = [Prompt(**row) for row in read_rows(prompts)]
        samples = [Generation(**row) for path in generations for row in read_rows(path)]
        return self._step(
            f"raw-judgments-{index}", lambda stats: judge_rows(self.recipe, rows, samples, self.cache, stats)
        )

    def _step(self, name: str, compute) -> dict:
        from rlaif.calls.engine import run_ledger

        stats = CallStats(
            retry=RetryBudget.of(self.recipe.retries, self.recipe.allow_incomplete), ledger=run_ledger(self.recipe)
        )
        try:
            with using(self.pool):
                rows = records(compute(stats))
        except RlaifError as exc:  # a value, raised again by the driver (no traceback of the worker)
            return {"error": [type(exc).__module__, type(exc).__qualname__, str(exc)]}
        spill = RowSpill(self.out, name)
        spill.append(rows)
        return {"path": str(spill.parts[0]) if spill.parts else None, "stats": stats_record(stats)}

    def stop(self) -> None:
        """Ctrl-C or SIGTERM on the driver: no backend of this worker starts a further request (BackendPool.stop)."""
        self.pool.stop()

    def close(self) -> None:
        try:
            self.pool.close()
        finally:
            self.cache.close()


def stats_record(stats: CallStats) -> dict:
    """A step's call counts, retries and token usage as plain values."""
    retry = stats.retry
    return {
        "counts": {name: getattr(stats, name) for name in COUNTS},
        "last_error": stats.last_error,
        "stages": stats.stages,
        "retry": {**{name: getattr(retry, name) for name in RETRY_COUNTS}, "most_passes": retry.most_passes},
        "usage": [[stage, model, asdict(usage)] for (stage, model), usage in stats.ledger.usage.items()],
    }


def absorb(run, record: dict) -> CallStats:
    """A worker's counts as the step's CallStats (added to the run's by the merge); its retries and tokens added to the run's now."""
    from rlaif.calls.costs import Ledger, Usage

    retry = run.stats.retry
    with run.lock:
        for name in RETRY_COUNTS:
            setattr(retry, name, getattr(retry, name) + record["retry"][name])
        retry.most_passes = max(retry.most_passes, record["retry"]["most_passes"])
    usage = Ledger()
    usage.usage = {(stage, model): Usage(**values) for stage, model, values in record["usage"]}
    run.stats.ledger.add(usage)
    return CallStats(**record["counts"], last_error=record["last_error"], stages=record["stages"])


def read_rows(path: str | Path) -> list[dict]:
    with pa.OSFile(str(path), "rb") as source:
        return ipc.open_file(source).read_all().to_pylist()


def rebuilt(error: list) -> RlaifError:
    """A worker's RlaifError, raised again on the driver with its message (its class keeps its exit code)."""
    module, name, message = error
    cls = getattr(importlib.import_module(module), name)
    exc = cls.__new__(cls)
    Exception.__init__(exc, message)
    return exc
