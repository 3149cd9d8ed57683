"""The circuit breaker per endpoint (rlaif/backends/breaker.py) and Retry-After through the run's passes
(rlaif/calls/engine.py), against the deterministic stand-in server (tests/det_server.py): an endpoint that
always fails stops the step after the same number of requests whatever the number of prompts; a
Retry-After longer than a run waits stops it quoting the wait; a server that only sometimes fails never
trips it."""

from __future__ import annotations

import pytest

from rlaif.backends import BackendPool
from rlaif.backends.base import GenerateRequest
from rlaif.backends.breaker import COOL_DOWN_S, Breaker
from rlaif.backends.openai_compat import OpenAIBackend
from rlaif.calls.cache import CallCache, CallStats
from rlaif.calls.engine import RetryBudget, run_generate
from rlaif.config.recipe import PolicySpec
from rlaif.core.errors import RunIncomplete
from tests.det_server import DetServer

LIMIT, CONCURRENCY = 8, 4


def requests(n: int) -> list[GenerateRequest]:
    return [
        GenerateRequest(messages=(("user", f"q{i}"),), temperature=0.7, top_p=1.0, max_tokens=8, seed=i)
        for i in range(n)
    ]


def spec(server: DetServer, **settings) -> PolicySpec:
    defaults = {"max_retries": 0, "max_concurrency": CONCURRENCY, "stop_after_failures": LIMIT}
    return PolicySpec(backend="openai", model="det", base_url=server.base_url, **{**defaults, **settings})


def run_step(tmp_path, server: DetServer, n: int, retry: RetryBudget | None = None, **settings):
    """`run_generate` of n requests on the run's shared endpoints (a BackendPool), as a run's step sends them."""
    pool, stats, cache = BackendPool(), CallStats(), CallCache(tmp_path / f"cache-{n}.sqlite")
    stats.retry = retry or RetryBudget(backoff_s=0)
    try:
        backend = pool.get(OpenAIBackend, spec(server, **settings))
        return run_generate(backend, requests(n), cache, stats), stats
    finally:
        pool.close()
        cache.close()


@pytest.mark.parametrize("n", [1_000, 10_000])
def test_an_endpoint_that_always_fails_stops_the_step_after_the_same_requests_whatever_its_size(tmp_path, n):
    with DetServer(fail_after=0, fail_status=500) as server:
        with pytest.raises(RunIncomplete) as stopped:
            run_step(tmp_path, server, n)
        sent = server.received
    message = " ".join(str(stopped.value).split())
    assert f"stopped after {LIMIT} calls in a row to openai model 'det' at {server.base_url} failed" in message
    assert "injected fault 500" in message and "stop_after_failures: 8" in message
    assert f"{n - sent} calls of this step were not sent" in message or "calls of this step were not sent" in message
    # the breaker opens at the LIMIT-th failure; at most CONCURRENCY - 1 others were in flight then
    assert LIMIT <= sent <= LIMIT + CONCURRENCY - 1


def test_successful_calls_before_the_endpoint_went_down_are_cached(tmp_path):
    """At most LIMIT + 2 (CONCURRENCY - 1) failed requests after the 30 good ones: a success sent before the first
    failure can come back after it and rightly reset the count (up to CONCURRENCY - 1 failures counted before it),
    and CONCURRENCY - 1 are in flight when the breaker opens. (A bound of one CONCURRENCY - 1 failed once under load:
    42 requests, an answer overtaken by a later one.)"""
    with DetServer(fail_after=30, fail_status=503) as server:
        with pytest.raises(RunIncomplete, match="30 successful live calls"):
            run_step(tmp_path, server, 1_000)
        assert server.received <= 30 + LIMIT + 2 * (CONCURRENCY - 1)
    assert len(CallCache(tmp_path / "cache-1000.sqlite")) == 30


def test_a_wrong_key_or_model_opens_it_too_and_a_bad_request_does_not(tmp_path):
    with DetServer(fail_after=0, fail_status=401) as server:
        with pytest.raises(RunIncomplete, match="injected fault 401"):
            run_step(tmp_path, server, 200)
        assert server.received <= LIMIT + CONCURRENCY - 1
    with DetServer(fail_after=0, fail_status=400) as server:  # request-specific: each one is a value, every one sent
        results, stats = run_step(tmp_path, server, 40)
        assert server.received == 40 and stats.failed == 40 and all(isinstance(r, Exception) for r in results)


def test_a_server_that_fails_one_request_in_five_never_trips_it(tmp_path):
    with DetServer(error_rate=0.2, seed=1) as server:
        results, stats = run_step(tmp_path, server, 400, retry=RetryBudget(passes=10, budget=1000, backoff_s=0))
    assert stats.failed == 0 and not any(isinstance(r, Exception) for r in results)
    assert server.failures > LIMIT  # it did fail, more often than the limit, just never LIMIT times in a row


def test_null_never_stops(tmp_path):
    with DetServer(fail_after=0, fail_status=500) as server:
        with pytest.raises(RunIncomplete, match="still failed with transient errors, after 1 pass"):
            run_step(tmp_path, server, 50, retry=RetryBudget(passes=1), stop_after_failures=None)
        assert server.received == 50


def test_a_retry_after_longer_than_a_run_waits_stops_it_quoting_the_wait(tmp_path):
    with DetServer(fail_after=5, fail_status=429, retry_after="3600") as server:
        with pytest.raises(RunIncomplete) as stopped:
            run_step(tmp_path, server, 6)
        assert server.received == 6  # the failed call was not sent again a second later
    message = " ".join(str(stopped.value).split())
    assert "asked to wait 3,600 s before the next request (Retry-After)" in message
    assert "5 successful live calls" in message and "Run the same command again after that wait" in message


def test_a_short_retry_after_is_waited_for_between_passes(tmp_path, monkeypatch):
    from rlaif.calls import engine

    waits: list[float] = []  # the engine's waits between passes
    monkeypatch.setattr(engine, "pause", lambda backend, seconds: waits.append(seconds))
    with DetServer(fail_after=2, fail_status=429, retry_after="7") as server:
        with pytest.raises(RunIncomplete):
            run_step(tmp_path, server, 3, retry=RetryBudget(passes=2, budget=5, backoff_s=1.0))
    assert waits == [7.0]


def test_rate_limiting_429s_do_not_trip_it(tmp_path):
    """A server that answers 429 to most requests (each retried by the run's passes) is busy, not down."""
    with DetServer(fail_after=0, fail_status=429, retry_after="1") as server:
        with pytest.raises(RunIncomplete, match="40 of 40 calls .* still failed with transient errors, after 1 pass"):
            run_step(tmp_path, server, 40, retry=RetryBudget(passes=1))
    assert server.received == 40  # every request was sent: no breaker refused one (the passes stop the run)


def test_out_of_credit_429s_do_trip_it(tmp_path):
    with DetServer(fail_after=0, fail_status=429, error_code="insufficient_quota") as server:
        with pytest.raises(RunIncomplete, match="insufficient_quota|calls in a row"):
            run_step(tmp_path, server, 200)
        assert server.received <= LIMIT + CONCURRENCY - 1


def test_outside_a_run_an_open_breaker_lets_a_trial_through_after_its_cool_down():
    now = [0.0]
    breaker = Breaker("http://x/v1", 2, clock=lambda: now[0])
    transient = lambda exc: isinstance(exc, TimeoutError)  # noqa: E731
    breaker.record(TimeoutError(), transient)
    breaker.record(TimeoutError(), transient)
    assert breaker.refusal() is not None
    now[0] = COOL_DOWN_S
    assert breaker.refusal() is None  # the trial
    assert breaker.refusal() is not None  # the others wait for its answer
    breaker.record("ok", transient)
    assert breaker.refusal() is None and not breaker.open


def test_a_retry_after_over_two_minutes_opens_it_at_once():
    breaker = Breaker("http://x/v1", 8)
    breaker.record(ValueError("429"), lambda exc: True, lambda exc: 3600.0)
    assert breaker.refusal().asked_wait == 3600.0


def test_the_breaker_counts_only_failures_in_a_row():
    breaker = Breaker("http://x/v1", 3)
    transient = lambda exc: isinstance(exc, TimeoutError)  # noqa: E731
    for result in (TimeoutError(), TimeoutError(), "ok", TimeoutError(), ValueError("400"), TimeoutError()):
        breaker.record(result, transient)
    assert not breaker.open and breaker.in_row == 2
    breaker.record(TimeoutError(), transient)
    assert breaker.open and breaker.refusal().in_row == 3
