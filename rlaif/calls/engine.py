"""Run model calls through the request cache: cached results are reused, live ones stored as
they arrive, failures returned as values and never stored.

A call that still fails with a transient error (connection, timeout, HTTP 408/409/425/429/5xx)
after the backend's own per-request retries goes again in a later pass of the same step, after a
backoff, while the run's `RetryBudget` allows (recipe `retries:`: passes, a run-wide budget of
extra calls, a deadline). Transient failures left after the last pass stop the run
(`RunIncomplete`, exit code 3) unless the recipe has `allow_incomplete: true`; other failures
(e.g. HTTP 400) stay values, as the rows' `error`.
"""

from __future__ import annotations

import dataclasses
import logging
import math
import time
from collections.abc import Callable, Iterable
from typing import Any

from rlaif.backends.base import Backend, Completion, GenerateRequest, ScoreRequest, Scores, Stopped
from rlaif.backends.breaker import MAX_RETRY_AFTER_S, EndpointDown
from rlaif.calls.budget import Budget, Gate
from rlaif.calls.cache import CallCache, CallStats, call_key
from rlaif.calls.costs import Ledger, stage_of
from rlaif.config.engines import API_BACKENDS
from rlaif.core.errors import RunIncomplete, StageFailed, StoreError
from rlaif.core.progress import progress_bar
from rlaif.core.secrets import error_text, spec_secrets

log = logging.getLogger(__name__)
MAX_BACKOFF_S = 60.0


class MissingResult(RuntimeError):
    """A backend ended a batch without a result for a request (treated as transient)."""


def retryable(exc: BaseException, backend: Backend) -> bool:
    """Whether a failure is transient: worth another pass (a dropped result, or what the backend's class calls transient)."""
    return isinstance(exc, MissingResult) or type(backend).is_transient(exc)


def error_summary(exc: BaseException, secrets: Iterable[str] = (), limit: int = 400) -> str:
    """`error_text` of a failed call, scrubbed of `secrets` (the backend's key: a server may quote it in its error)."""
    text = error_text(exc, secrets)
    return text if len(text) <= limit else text[: limit - 3] + "..."


@dataclasses.dataclass
class RetryBudget:
    """The run's retry state, shared by every step (carried as `CallStats.retry`)."""

    passes: int = 5
    budget: float = 0.1  # below 1: share of the run's calls so far; else a number of calls
    backoff_s: float = 1.0
    deadline_s: float | None = None
    allow_incomplete: bool = False
    started: float = dataclasses.field(default_factory=time.monotonic)
    calls: int = 0  # requests the run's steps asked for so far (cached ones included)
    spent: int = 0  # calls sent again in later passes
    most_passes: int = 1  # the most passes one step needed
    incomplete: int = 0  # transient failures left in a run that allows an incomplete version

    @classmethod
    def of(cls, spec, allow_incomplete: bool = False) -> RetryBudget:
        """From a recipe's `retries:` (rlaif.config.recipe.RetrySpec)."""
        return cls(spec.passes, spec.budget, spec.backoff_s, spec.deadline_s, allow_incomplete)

    def allowed(self) -> int:
        """Extra calls the run may make by now.

        >>> RetryBudget(budget=0.1, calls=95).allowed(), RetryBudget(budget=25, calls=95).allowed(), RetryBudget(budget=0).allowed()
        (10, 25, 0)
        """
        if self.budget >= 1:
            return int(self.budget)
        return math.ceil(self.budget * self.calls)

    def left(self) -> int:
        return max(0, self.allowed() - self.spent)

    def wait_before(self, done: int) -> float | None:
        """Seconds to wait before pass `done + 1`, or None when no further pass may start."""
        if done >= self.passes or self.left() == 0:
            return None
        wait = min(MAX_BACKOFF_S, self.backoff_s * 2 ** (done - 1))
        if self.deadline_s is not None and time.monotonic() + wait - self.started > self.deadline_s:
            return None
        return wait

    def why_stopped(self, done: int) -> str:
        if done >= self.passes:
            return f"after {done} pass{'es' if done > 1 else ''} (retries.passes: {self.passes})"
        if self.left() == 0:
            return f"the run's retry budget is spent ({self.spent} calls sent again; retries.budget: {self.budget:g})"
        return f"the retry deadline passed (retries.deadline_s: {self.deadline_s:g})"


def backend_identity(spec) -> dict[str, Any]:
    """What about a backend determines its answers (never the API key): the named backend's own
    `identity` (rlaif.backends.base.Backend.identity), also when a test stands in another object."""
    from rlaif.backends import backend_class

    return backend_class(spec.backend).identity(spec)


def _run(
    kind: str,
    backend: Backend,
    requests: list,
    cache: CallCache,
    stats: CallStats,
    result_type: type,
    template_sha256: str,
    label: str,
) -> list[Any]:
    identity = backend_identity(backend.spec)
    keys = [call_key(kind, identity, dataclasses.asdict(request), template_sha256) for request in requests]
    found = cache.get_many(list(set(keys)))
    results: list[Any] = [None] * len(requests)
    pending: list[int] = []
    for index, key in enumerate(keys):
        if key in found:
            results[index] = result_type(**found[key])
            stats.cached += 1
        else:
            pending.append(index)
    gate = _gate(stats, backend, requests, label)
    if gate is not None:
        gate.ledger.cached(gate.stage, gate.model, [r for r in results if r is not None])
    retry: RetryBudget | None = stats.retry
    if retry is not None:
        retry.calls += len(requests)
    done, todo = 0, pending
    with progress_bar(f"{label} ({stats.cached} cached)", len(pending)) as advance:
        while todo:
            _one_pass(kind, backend, requests, keys, todo, results, cache, stats, advance, gate)
            done += 1
            _stop_if_refused(backend, label, todo, results, stats, cache)
            todo = [i for i in todo if isinstance(results[i], Exception) and retryable(results[i], backend)]
            todo = _next_pass(todo, done, retry, stats, label, results, backend, cache) or _give_up(todo, advance)
    left = _settle(pending, results, stats, backend)
    if left and retry is not None:
        if not retry.allow_incomplete:
            raise RunIncomplete(
                _incomplete_message(backend, label, len(requests), left, results, done, retry, stats, cache)
            )
        retry.incomplete += len(left)
    return results


def _gate(stats: CallStats, backend: Backend, requests: list, label: str):
    """The run's token accounting and budget for this step's requests (rlaif.calls.budget.Gate), or None outside a run."""
    ledger = getattr(stats, "ledger", None)
    if ledger is None:
        return None
    return Gate(
        ledger, stage_of(label, getattr(stats, "stage", "")), backend.spec.model, requests, label, where(backend.spec)
    )


def _one_pass(kind, backend, requests, keys, todo, results, cache, stats, advance, gate=None) -> None:
    """Send the `todo` requests once, in parts the run's budget admits; successes are counted and cached as they arrive."""
    for index in todo:
        results[index] = None
    backend.ensure_loaded()
    call = backend.generate if kind == "generate" else backend.score
    for part in gate.parts(todo) if gate is not None else [todo]:  # BudgetExceeded when the next part never fits
        _send(backend, call, part, requests, keys, results, cache, stats, advance, gate)


def _send(backend, call, todo, requests, keys, results, cache, stats, advance, gate) -> None:
    unstored: list[StoreError] = []  # the cache could not be written (a full disk): the backend stops, the step ends

    def on_result(position: int, result: Any) -> None:
        index = todo[position]
        results[index] = result
        if gate is not None:
            gate.done(index, result)
        if isinstance(result, Exception):
            if not retryable(result, backend):
                advance(1)
            return
        stats.live += 1
        stats.prompt_tokens += result.prompt_tokens
        stats.completion_tokens += result.completion_tokens
        stats.latency_s += result.latency_s
        try:
            cache.put(keys[index], dataclasses.asdict(result))
        except StoreError as exc:
            unstored.append(exc)
            backend.stop()  # no further paid call whose answer could not be kept
        advance(1)

    call([requests[i] for i in todo], on_result)
    if unstored:
        raise unstored[0]
    stats.limit_wait_s += backend.take_limit_wait() if hasattr(backend, "take_limit_wait") else 0.0
    for index in todo:  # a backend that dropped a request: a failure, never a lost row
        if results[index] is None:
            results[index] = MissingResult("backend returned no result for this request")


def _stop_if_refused(backend, label, todo, results, stats, cache) -> None:
    """Requests the backend refused to send end the step: the run is stopping (`Stopped`, re-raised: the run's
    own Ctrl-C or SIGTERM is what the user sees), or, in a run, the endpoint's breaker opened (RunIncomplete,
    exit code 3). Outside a run (no `stats.retry`) a refused request stays a failure, as any other."""
    refused = [results[i] for i in todo if isinstance(results[i], (Stopped, EndpointDown))]
    if not refused:
        return
    stopped = next((r for r in refused if isinstance(r, Stopped)), None)
    if stopped is not None:
        raise stopped
    if stats.retry is None:
        return
    down, secrets = refused[0], spec_secrets(backend.spec)
    if down.asked_wait is not None:
        raise RunIncomplete(_asked_message(label, backend, down.asked_wait, len(refused), stats, cache))
    raise RunIncomplete(
        f"{label}: stopped after {down.in_row} calls in a row to {where(backend.spec)} failed, each after its own "
        f"retries (max_retries: {getattr(backend.spec, 'max_retries', 0)}; the run stops at stop_after_failures: {down.limit}); "
        f"last error: {error_summary(down.last_error, secrets)}. {len(refused)} calls of this step were not sent. "
        f"{_resumes(stats, cache)} - check that the endpoint is up and its model name and key, then run again "
        f"(or raise the model's `stop_after_failures`)."
    )


def _asked_message(label, backend, asked: float, left: int, stats: CallStats, cache: CallCache) -> str:
    return (
        f"{label}: {where(backend.spec)} asked to wait {asked:,.0f} s before the next request (Retry-After), longer "
        f"than the {MAX_RETRY_AFTER_S:.0f} s a run waits; {left} calls of this step are still to make. Run the same "
        f"command again after that wait. {_resumes(stats, cache)}."
    )


def _resumes(stats: CallStats, cache: CallCache) -> str:
    return (
        f"So far this run made {stats.live} successful live calls ({stats.cached} more were cached); every successful "
        f"call is kept in {cache.path}, so re-running the same command resumes from there without repeating one. "
        f"Nothing was committed"
    )


def _asked_wait(failed: list[int], results: list[Any], backend: Backend) -> float:
    """The longest Retry-After the failed calls' server asked for (0 when none)."""
    return max((backend.retry_after(results[i]) or 0.0 for i in failed), default=0.0)


def _next_pass(
    failed: list[int], done: int, retry: RetryBudget | None, stats: CallStats, label: str, results, backend, cache
) -> list[int]:
    """The transient failures to send again (after the backoff, or the server's Retry-After), within the run's
    budget; [] to stop."""
    if not failed or retry is None:
        return []
    wait = retry.wait_before(done)
    if wait is None:
        return []
    asked = _asked_wait(failed, results, backend)
    if (
        asked > MAX_RETRY_AFTER_S
    ):  # the call that asked came last in its pass (nothing refused after it), or no breaker
        raise RunIncomplete(_asked_message(label, backend, asked, len(failed), stats, cache))
    wait = max(wait, asked)
    again = failed[: retry.left()]
    log.info("%s: %d calls failed with transient errors; pass %d in %.1fs", label, len(again), done + 1, wait)
    pause(backend, wait)
    retry.spent += len(again)
    retry.most_passes = max(retry.most_passes, done + 1)
    stats.retried += len(again)
    return again


def pause(backend: Backend, seconds: float) -> None:
    """Wait between passes; a stop signal (`Backend.stop`) ends the wait and the step at once."""
    if backend.stop_event.wait(seconds):
        raise Stopped("not sent again: the run is stopping (Ctrl-C or SIGTERM)")


def _give_up(todo: list[int], advance) -> list[int]:
    advance(len(todo))  # failures that stay failures: the bar still ends full
    return []


def _settle(pending: list[int], results: list[Any], stats: CallStats, backend: Backend) -> list[int]:
    """Count the calls that stayed failures; returns those that failed with a transient error."""
    secrets, left = spec_secrets(backend.spec), []
    for index in pending:
        result = results[index]
        if isinstance(result, Exception):
            stats.failed += 1
            stats.last_error = error_summary(result, secrets)
            if retryable(result, backend):
                left.append(index)
    return left


def _incomplete_message(backend, label, total, left, results, done, retry, stats, cache) -> str:
    """What failed (step, model, endpoint, status), how far the run got, and that re-running resumes."""
    return (
        f"{label}: {len(left)} of {total} calls to {where(backend.spec)} still failed with transient errors, {retry.why_stopped(done)}; "
        f"last error: {error_summary(results[left[-1]], spec_secrets(backend.spec))}. {_resumes(stats, cache)} - check "
        f"the endpoint and its limits, raise `retries:` in the recipe, or set `allow_incomplete: true` to commit what there is."
    )


def run_ledger(recipe) -> Ledger:
    """The run-wide tokens, cost and budget of a run of `recipe` (its prices, its local models, its `budget:`),
    carried as `CallStats.ledger`."""
    local = {spec.model for spec in recipe.models() if spec.backend not in API_BACKENDS}
    return Ledger(recipe.prices, local, Budget.of(recipe.budget))


def run_generate(
    backend: Backend, requests: list[GenerateRequest], cache: CallCache, stats: CallStats, label: str = "sampling"
) -> list[Completion | Exception]:
    return _run("generate", backend, requests, cache, stats, Completion, "", label)


def run_score(
    backend: Backend,
    requests: list[ScoreRequest],
    cache: CallCache,
    stats: CallStats,
    template_sha256: str,
    label: str = "judging",
) -> list[Scores | Exception]:
    return _run("score", backend, requests, cache, stats, Scores, template_sha256, label)


def where(spec) -> str:
    """The model a step calls, for messages: backend, model and endpoint (never the key)."""
    url = getattr(spec, "base_url", None)
    return f"{spec.backend} model {spec.model!r}" + (f" at {url}" if url else "")


def counted(stats: CallStats, stage: str, spec, step: Callable[[], Any]) -> Any:
    """Run `step`, adding the calls it made (succeeded: live or cached; failed) to `stats.stages[stage]`."""
    ok, failed = stats.live + stats.cached, stats.failed
    stats.last_error = None
    value = step()
    tally = stats.stages.setdefault(stage, {"ok": 0, "failed": 0, "error": None, "where": where(spec)})
    tally["ok"] += stats.live + stats.cached - ok
    tally["failed"] += stats.failed - failed
    tally["error"] = tally["error"] or stats.last_error
    return value


def check_stage(stats: CallStats, stage: str | None = None) -> None:
    """Raise StageFailed when every call of a stage (or of any stage) failed: such a run never commits."""
    for name, tally in stats.stages.items():
        if (stage is None or name == stage) and tally["failed"] and not tally["ok"]:
            raise StageFailed(
                f"{name} ({tally['where']}): every one of its {tally['failed']} calls failed, e.g. {tally['error']}. "
                "Nothing was committed (not even with allow_incomplete) - check the model name, endpoint, key and parameters, then run again"
            )
