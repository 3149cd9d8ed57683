"""Client-side rate limits (`rpm`, `tpm`: rlaif.backends.ratelimit) against the real llm-katan:
the request rate never exceeds the limit in any window, nothing is lost, the waiting is reported;
and a 429 storm with Retry-After is retried as the server asks."""

from __future__ import annotations

import asyncio
import os
import re
import subprocess
import sys
import threading
import time
import urllib.request
from datetime import datetime
from http.server import ThreadingHTTPServer

import pytest

from rlaif.backends.base import GenerateRequest
from rlaif.backends.openai_compat import OpenAIBackend
from rlaif.backends.ratelimit import TokenBucket, Waits, bucket_shape, limit_name
from rlaif.config.recipe import PolicySpec, parse_recipe
from rlaif.pipeline.runner import run_recipe
from rlaif.pipeline.summary import summary_lines
from tests.conftest import write_prompts
from tests.det_server import JsonHandler
from tests.servers import start_llm_katan

ARRIVAL = re.compile(
    r"^(\d{4}-\d\d-\d\d \d\d:\d\d:\d\d,\d{3}) - llm_katan\.providers\.openai - INFO - openai \| \S+ \| model=", re.M
)


def arrivals(server) -> list[float]:
    """When llm-katan received each chat completion (its own log, millisecond stamps)."""
    return sorted(
        datetime.strptime(stamp, "%Y-%m-%d %H:%M:%S,%f").timestamp() for stamp in ARRIVAL.findall(server.output())
    )


def most_in_window(times: list[float], weights: list[float], window: float) -> float:
    """The largest total weight of the events in any window [t, t + window]."""
    events = sorted(zip(times, weights))
    return max(sum(w for t, w in events if start <= t <= start + window) for start, _ in events)


def test_a_bucket_never_lets_more_than_its_limit_through_in_any_window():
    """50 acquisitions at 1200 per minute (burst 20, 19.7/s): no window of w s holds more than burst + rate * w."""
    burst, rate = bucket_shape(1200)
    times: list[float] = []

    async def go():
        bucket, waits = TokenBucket(burst, rate), Waits()
        for _ in range(50):
            await bucket.acquire(1, waits)
            times.append(time.monotonic())
        return waits

    waits = asyncio.run(go())
    for window in (0.25, 0.5, 1.0):
        assert most_in_window(times, [1] * 50, window) <= burst + rate * window + 1e-6
    assert times[-1] - times[0] >= (50 - burst) / rate - 0.05
    assert waits.seconds == pytest.approx(times[-1] - times[0], abs=0.2) and waits.requests == 50 - burst


def recorded_releases(monkeypatch) -> list[float]:
    """When the limiter let each request go (the bucket's own clock, right after `acquire`): an event,
    unlike a server's arrival stamps, which bunch when a busy machine starves the server."""
    released: list[float] = []
    real_acquire = TokenBucket.acquire

    async def acquire(self, tokens, waits=None):
        await real_acquire(self, tokens, waits)
        released.append(time.monotonic())

    monkeypatch.setattr(TokenBucket, "acquire", acquire)
    return released


@pytest.mark.slow
def test_rpm_holds_every_window_of_a_run_and_loses_nothing(tmp_path, monkeypatch):
    """40 calls (2 policies x 10 prompts, then 20 verdicts) at rpm 240, every model on one endpoint sharing the bucket."""
    rpm = 240
    burst, rate = bucket_shape(rpm)
    released = recorded_releases(monkeypatch)
    prompts = write_prompts(tmp_path / "prompts.jsonl", [f"Limit question {i}: name thing {i}." for i in range(10)])
    with start_llm_katan("--latency-ms", "30") as server:
        endpoint = {"backend": "openai", "base_url": server.base_url, "model": server.model, "rpm": rpm}
        recipe = parse_recipe(
            {
                "name": "limited",
                "prompts": {"path": str(prompts)},
                "samples_per_prompt": 1,
                "judge": endpoint,
                "policies": [
                    {"name": n, **endpoint, "params": {"temperature": t}} for n, t in (("cold", 0.2), ("hot", 0.9))
                ],
                "min_verdict_share": 0,  # the echo server's answers give no verdict
                "filters": {"min_margin": 0.0, "consistency": False, "response_near_duplicate": None},
            }
        )
        version, _, manifest, run = run_recipe(recipe, tmp_path / "store")
        served = server.requests_served()
    assert len(released) == served == 40 and manifest["calls"] == {"live": 40, "cached": 0, "failed": 0}
    for window in (1.0, 2.0, 5.0):  # exact on the limiter's clock: a slow machine only spreads releases out
        assert most_in_window(released, [1] * 40, window) <= burst + rate * window + 1e-6, window
    assert released[-1] - released[0] >= (40 - burst) / rate - 1e-6
    assert manifest["run"]["limit_wait_s"] >= 5.0
    assert f"waited on rate limits: {run.stats.limit_wait_s:.1f} s" in summary_lines(
        version, True, manifest, run.stats
    )


@pytest.mark.slow
def test_tpm_holds_the_tokens_the_server_counted_and_corrects_its_estimates(monkeypatch):
    """tpm 3000 (burst 50, 49.2/s): the estimate (chars / 4 + max_tokens) is replaced by llm-katan's usage."""
    tpm = 3000
    burst, rate = bucket_shape(tpm)
    sent: list[tuple[float, int]] = []
    real_chat = OpenAIBackend._chat

    async def recording_chat(self, client, body):
        at = time.monotonic()
        response = await real_chat(self, client, body)
        sent.append((at, response["usage"]["total_tokens"]))
        return response

    monkeypatch.setattr(OpenAIBackend, "_chat", recording_chat)
    with start_llm_katan() as server:
        backend = OpenAIBackend(
            PolicySpec(backend="openai", base_url=server.base_url, model=server.model, tpm=tpm, max_concurrency=8)
        )
        requests = [
            GenerateRequest(
                GenerateRequest.pack([{"role": "user", "content": f"Tokens question {i}"}]), 0.5, 1.0, 8, i
            )
            for i in range(24)
        ]
        results: dict[int, object] = {}
        backend.generate(requests, results.__setitem__)
    assert len(results) == 24 and not [r for r in results.values() if isinstance(r, Exception)]
    times, tokens = [t for t, _ in sent], [n for _, n in sent]
    biggest = max(tokens)
    for window in (1.0, 2.0, 4.0):  # a request sent on an estimate may overshoot by its own size until its usage is in
        assert most_in_window(times, tokens, window) <= burst + rate * window + 2 * biggest, window
    assert times[-1] - times[0] >= (sum(tokens) - burst - 2 * biggest) / rate
    assert backend.take_limit_wait() > 1.0


class RetryAfterProxy(JsonHandler):
    """In front of llm-katan: at most `per_second` chat completions per wall-clock second; the
    others get 429 with `Retry-After: 1`. Records (time, user message, status) of every attempt."""

    per_second, upstream, attempts, lock = 4, "", [], threading.Lock()

    def do_POST(self) -> None:  # noqa: N802
        body = self.read_json()
        now = time.time()
        with self.lock:
            this_second = [a for a in self.attempts if int(a[0]) == int(now) and a[2] == 200]
            status = 200 if len(this_second) < self.per_second else 429
            self.attempts.append((now, body["messages"][-1]["content"], status))
        if status == 429:
            data = b'{"error": {"message": "rate limit exceeded", "type": "rate_limit_error"}}'
            self.send_response(429)
            self.send_header("Retry-After", "1")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            return self.wfile.write(data)
        forward = urllib.request.Request(
            self.upstream + self.path,
            data=__import__("json").dumps(body).encode(),
            headers={"Content-Type": "application/json", "Authorization": "Bearer x"},
        )
        with urllib.request.build_opener(urllib.request.ProxyHandler({})).open(forward, timeout=10) as answer:
            self.send_json(answer.status, __import__("json").loads(answer.read()))


@pytest.mark.slow
def test_a_429_storm_is_retried_after_what_retry_after_asks_and_nothing_is_lost():
    with start_llm_katan() as katan:
        RetryAfterProxy.upstream, RetryAfterProxy.attempts = katan.root_url, []
        proxy = ThreadingHTTPServer(("127.0.0.1", 0), RetryAfterProxy)
        threading.Thread(target=proxy.serve_forever, daemon=True).start()
        try:
            spec = PolicySpec(
                backend="openai",
                base_url=f"http://127.0.0.1:{proxy.server_address[1]}/v1",
                model=katan.model,
                max_retries=10,
                max_concurrency=16,
            )
            requests = [
                GenerateRequest(GenerateRequest.pack([{"role": "user", "content": f"storm {i}"}]), 0.5, 1.0, 8, i)
                for i in range(20)
            ]
            results: dict[int, object] = {}
            OpenAIBackend(spec).generate(requests, results.__setitem__)
            served = katan.requests_served()
        finally:
            proxy.shutdown()
    attempts = RetryAfterProxy.attempts
    assert not [r for r in results.values() if isinstance(r, Exception)] and len(results) == 20 and served == 20
    assert sum(a[2] == 429 for a in attempts) >= 10  # a storm: 16 at once against 4 a second
    for message in {a[1] for a in attempts}:
        mine = sorted((t, s) for t, m, s in attempts if m == message)
        for (t, status), (t_next, _) in zip(mine, mine[1:]):
            assert status == 429 and t_next - t >= 0.95  # waited what Retry-After asked (1 s) before trying again


@pytest.mark.parametrize("field, value", [("rpm", 60), ("tpm", 1000), ("batch", True)])
def test_a_delivery_limit_on_a_local_backend_is_a_recipe_error_naming_the_field(tmp_path, field, value):
    from rlaif.core.errors import RecipeError

    prompts = write_prompts(tmp_path / "prompts.jsonl", ["q"])
    with pytest.raises(RecipeError, match=rf"{field}.*does not apply to the transformers backend"):
        parse_recipe(
            {
                "name": "x",
                "prompts": {"path": str(prompts)},
                "policies": [{"name": "p", "backend": "transformers", field: value}],
            }
        )


@pytest.mark.slow
def test_two_concurrent_runs_on_one_prefect_server_share_one_rpm_limit(tmp_path):
    """Two `rlaif run` processes (the Prefect path) on one real Prefect server, each with rpm 240 on the
    same llm-katan: their requests together keep to 240 per minute (each alone would keep to it and
    together send twice as fast without the shared Prefect limit), and the server holds the limit."""
    import json
    import os
    import subprocess
    import sys
    import urllib.request
    from unittest import mock

    from rlaif.flows.server import start_server, stop
    from tests.badinput import write_recipe
    from tests.conftest import ROOT

    rpm = 240
    burst, rate = bucket_shape(rpm)
    home = tmp_path / "prefect-home"
    home.mkdir()
    with mock.patch.dict(os.environ, {"PREFECT_HOME": str(home)}), open(home / "server.log", "w+b") as log:
        proc, api = start_server(log)
        try:
            with start_llm_katan("--latency-ms", "30") as server:
                endpoint = {"backend": "openai", "base_url": server.base_url, "model": server.model, "rpm": rpm}
                recipes = []
                for side in ("a", "b"):
                    prompts = write_prompts(
                        tmp_path / f"{side}.jsonl", [f"Shared limit {side} {i}: name thing {i}." for i in range(8)]
                    )
                    recipes.append(
                        write_recipe(
                            tmp_path,
                            {
                                "name": f"shared-{side}",
                                "prompts": {"path": str(prompts)},
                                "samples_per_prompt": 1,
                                "judge": endpoint,
                                "min_verdict_share": 0,
                                "policies": [
                                    {"name": n, **endpoint, "params": {"temperature": t}}
                                    for n, t in (("cold", 0.2), ("hot", 0.9))
                                ],
                                "filters": {"min_margin": 0.0, "consistency": False, "response_near_duplicate": None},
                            },
                            name=f"{side}.yaml",
                        )
                    )
                env = {**os.environ, "PREFECT_API_URL": api, "PREFECT_HOME": str(home), "RLAIF_PROGRESS": "0"}
                runs = [
                    subprocess.Popen(
                        [sys.executable, "-m", "rlaif.cli", "run", str(recipe), "--store", str(tmp_path / "store")],
                        cwd=ROOT,
                        env=env,
                        stdout=subprocess.PIPE,
                        stderr=subprocess.PIPE,
                        text=True,
                    )
                    for recipe in recipes
                ]
                outs = [run.communicate(timeout=300) for run in runs]
                times = arrivals(server)
            limits = json.loads(
                urllib.request.urlopen(
                    urllib.request.Request(
                        f"{api}/v2/concurrency_limits/filter",
                        data=b"{}",
                        headers={"Content-Type": "application/json"},
                        method="POST",
                    ),
                    timeout=10,
                ).read()
            )
        finally:
            stop(proc)
    for run, (out, errors) in zip(runs, outs):
        assert run.returncode == 0, errors
        assert "calls: live 32, cached 0, failed 0" in out, (
            out + errors[-3000:]
        )  # 8 prompts x 2 policies + 16 verdicts each, nothing lost
    assert len(times) == 64
    for window in (2.0, 5.0):
        assert most_in_window(times, [1] * 64, window) <= 2 * burst + rate * (window + 0.1), (
            window
        )  # each run's own burst, then one shared rate
    assert times[-1] - times[0] >= (64 - 2 * burst) / rate - 0.5  # alone, each run would finish in half the time
    assert any(limit["name"] == limit_name("rpm", server.base_url) and limit["limit"] == burst for limit in limits)


def test_outside_a_flow_run_limits_are_not_shared_and_prefect_is_not_imported():
    """`rlaif run --no-prefect` with PREFECT_API_URL set: not a flow run, found out without importing Prefect (1.7 s)."""
    code = (
        "import sys; from rlaif.backends.ratelimit import prefect_shared; "
        "print(prefect_shared(), 'prefect' in sys.modules); import prefect; print(prefect_shared())"
    )
    env = {**os.environ, "PREFECT_API_URL": "http://127.0.0.1:9/api"}
    out = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    assert out.stdout.split() == ["False", "False", "False"]  # imported, but still no flow run


def test_a_slot_the_prefect_server_fails_to_grant_is_sent_again_not_counted_failed(tmp_path, monkeypatch):
    """Under load the Prefect server can fail a slot request (Prefect wraps the timeout or the error status in
    ConcurrencySlotAcquisitionError). The request was never sent: the call goes again in the next pass, and the
    run counts it neither failed nor twice (before: a permanent failure, `failed 1`, the shared-rpm test's flake)."""
    import httpx
    import prefect.concurrency.asyncio as prefect_concurrency
    from prefect.concurrency.asyncio import ConcurrencySlotAcquisitionError

    import rlaif.backends.openai_compat as openai_compat
    from rlaif.backends.ratelimit import EndpointLimits
    from rlaif.calls.cache import CallCache, CallStats
    from rlaif.calls.engine import RetryBudget, run_generate
    from tests.det_server import DetServer

    granted = []

    async def flaky_rate_limit(name, occupy=1, strict=False):
        if not granted:
            granted.append(False)
            raise ConcurrencySlotAcquisitionError(
                f"Unable to acquire concurrency slots on {[name]!r}"
            ) from httpx.ReadTimeout("timed out")
        granted.append(True)

    async def names(self):
        return {"rpm": limit_name("rpm", self.url), "tpm": limit_name("tpm", self.url)}

    monkeypatch.setattr(prefect_concurrency, "rate_limit", flaky_rate_limit)
    monkeypatch.setattr(EndpointLimits, "_prefect_limits", names)
    monkeypatch.setattr(
        openai_compat,
        "endpoint_limits",
        lambda spec, waits, shared: EndpointLimits(spec.base_url, 6000, None, waits, True),
    )
    with DetServer() as server:
        spec = PolicySpec(name="p", backend="openai", base_url=server.base_url, model="det", rpm=6000)
        requests = [GenerateRequest((("user", f"q{i}"),), 0.5, 1.0, 8, i) for i in range(3)]
        stats = CallStats(retry=RetryBudget(passes=3, budget=10, backoff_s=0))
        results = run_generate(
            OpenAIBackend(spec), requests, CallCache(tmp_path / "cache.sqlite"), stats, label="sampling p"
        )
        sent = server.calls
    assert not [r for r in results if isinstance(r, Exception)], results
    assert (stats.live, stats.failed, stats.retried, sent) == (
        3,
        0,
        1,
        3,
    )  # one request waited for a pass, none was sent twice
    assert granted == [False, True, True, True]
