"""Any OpenAI-compatible endpoint (OpenAI, `vllm serve`, llama.cpp server, Ollama, llm-katan).

Async with a concurrency bound and per-request timeouts; the openai client's own retries
(exponential backoff with jitter, Retry-After honoured) take transient errors. The API key is
read from the environment when the client is made and is never stored on the spec, in a cache
key or in a manifest.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import contextlib
import email.utils
import math
import threading
import time
from collections.abc import Awaitable, Callable, Iterable
from typing import Any

from rlaif.backends.base import Backend, Completion, GenerateRequest, ScoreRequest, Scores, Stopped
from rlaif.backends.breaker import Breaker, EndpointDown
from rlaif.backends.endpoints import api_key, endpoint_url
from rlaif.backends.ratelimit import EndpointLimits, SharedLimitUnavailable, Waits, endpoint_limits, prefect_shared
from rlaif.backends.verdicts import verdict_probs
from rlaif.config.engines import ENGINE_OPTIONS
from rlaif.core.secrets import display_url

RETRY_STATUS = {408, 409, 425, 429, 500, 502, 503, 504}
STOP_GRACE_S = 5.0  # after Ctrl-C or SIGTERM: how long requests already in flight may finish (and be cached)


def retry_after_s(headers) -> float | None:
    """Seconds a response's Retry-After asks for (`retry-after-ms`, then `retry-after`: seconds or an HTTP date).

    >>> retry_after_s({"retry-after": "3600"}), retry_after_s({"retry-after-ms": "1500"}), retry_after_s({"retry-after": "soon"})
    (3600.0, 1.5, None)
    """
    for name, divisor in (("retry-after-ms", 1000), ("retry-after", 1)):
        value = headers.get(name)
        with contextlib.suppress(TypeError, ValueError):
            seconds = float(value) / divisor
            return None if math.isnan(seconds) else seconds
    try:
        when = email.utils.parsedate_to_datetime(headers.get("retry-after") or "")
    except (TypeError, ValueError, IndexError):
        return None
    return when.timestamp() - time.time() if when.tzinfo else None


def run_async(coro: Awaitable) -> Any:
    """Run a coroutine to completion from sync code, also when a loop is already running here."""
    try:
        asyncio.get_running_loop()
    except RuntimeError:
        return asyncio.run(coro)
    box: dict[str, Any] = {}
    thread = threading.Thread(target=lambda: box.update(value=asyncio.run(coro)))
    thread.start()
    thread.join()
    return box.get("value")


class Endpoints:
    """What the API backends of one run share: one event loop (in a thread) for all their requests,
    and one limit per endpoint (base URL) of requests in flight, the first spec's `max_concurrency`,
    so steps that run together (policies sampling, the judge judging) never exceed it together;
    one circuit breaker per endpoint (rlaif.backends.breaker); and `stop()`, after which no request is sent.
    """

    def __init__(self) -> None:
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._loop.run_forever, name="rlaif-endpoints", daemon=True)
        self._thread.start()
        self._limits: dict[str, asyncio.Semaphore] = {}
        self._rates: dict[str, EndpointLimits | None] = {}  # rpm / tpm buckets (rlaif.backends.ratelimit)
        self._clients: dict[tuple, Any] = {}  # one client (one connection pool) per endpoint and client settings
        self._breakers: dict[str, Breaker] = {}
        self.waits = Waits()  # wall time the run's requests were held by those limits
        self.shared_limits = prefect_shared()  # decided in the step that made the pool: a flow run's, or not
        self.stopping = False  # set by stop(): workers send no further request
        self._running: set[asyncio.Task] = set()  # the backends' batches now on the loop (`run`)
        self._grace: threading.Timer | None = None

    def stop(self, grace_s: float = STOP_GRACE_S) -> None:
        """Ctrl-C or SIGTERM (from any thread but the loop's): no request is sent from now on; the batches in
        flight have `grace_s` seconds to come back (their results are cached as usual), then are cancelled."""
        if self.stopping:
            return
        self.stopping = True
        self._grace = threading.Timer(grace_s, self._cancel_batches)
        self._grace.daemon = True
        self._grace.start()

    def _cancel_batches(self) -> None:
        def cancel() -> None:
            for task in list(self._running):
                task.cancel()

        if not self._loop.is_closed():
            self._loop.call_soon_threadsafe(cancel)

    async def _tracked(self, coro: Awaitable) -> Any:
        task = asyncio.current_task()
        self._running.add(task)
        try:
            return await coro
        finally:
            self._running.discard(task)

    def run(self, coro: Awaitable) -> Any:
        """Run a coroutine on the shared loop and wait for it (from any thread but the loop's); a batch cancelled
        after a stop's grace period ends as `Stopped`, once its task has ended (no result arrives after that)."""
        future = asyncio.run_coroutine_threadsafe(self._tracked(coro), self._loop)
        try:
            return future.result()
        except concurrent.futures.CancelledError:
            raise Stopped("cancelled: the run is stopping (Ctrl-C or SIGTERM) and its grace period ended") from None

    def limit(self, spec) -> asyncio.Semaphore:
        """The endpoint's limit (call on the loop)."""
        url = endpoint_url(spec)
        if url not in self._limits:
            self._limits[url] = asyncio.Semaphore(spec.max_concurrency)
        return self._limits[url]

    def rates(self, spec) -> EndpointLimits | None:
        """The endpoint's rpm / tpm limits, the first spec's on it (call on the loop); None when it sets neither."""
        url = endpoint_url(spec)
        if url not in self._rates:
            self._rates[url] = endpoint_limits(spec, self.waits, self.shared_limits)
        return self._rates[url]

    def breaker(self, spec) -> Breaker:
        """The endpoint's circuit breaker, with the first spec's `stop_after_failures` (call on the loop)."""
        url = endpoint_url(spec)
        if url not in self._breakers:
            self._breakers[url] = Breaker(display_url(url), spec.stop_after_failures)
        return self._breakers[url]

    def client(self, key: tuple, make: Callable[[], Any]) -> Any:
        """The run's client for `key` (call on the loop): every backend on an endpoint shares its connections,
        so the pool holds about as many as the endpoint's limit lets fly, not one idle set per step."""
        if key not in self._clients:
            self._clients[key] = make()
        return self._clients[key]

    async def _close_clients(self) -> None:
        for client in self._clients.values():
            await client.close()
        self._clients.clear()

    def close(self) -> None:
        if self._grace is not None:
            self._grace.cancel()
        if self._clients:
            self.run(self._close_clients())
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(timeout=5)
        self._loop.close()


class OpenAIBackend(Backend):
    name = "openai"
    options = ENGINE_OPTIONS["openai"]
    requires = ("openai",)

    @classmethod
    def is_transient(cls, exc: BaseException) -> bool:
        """Connection errors, timeouts, a shared limit that cannot be reached, HTTP 408/409/425/429/5xx (also a failed Batch API line's status)."""
        import openai

        if isinstance(
            exc, (openai.APIConnectionError, openai.APITimeoutError, asyncio.TimeoutError, SharedLimitUnavailable)
        ):
            return True
        if (
            getattr(exc, "batch_status", None) is not None
        ):  # a failed line of a Batch API batch (rlaif.backends.openai_batch)
            return exc.batch_status in RETRY_STATUS
        return isinstance(exc, openai.APIStatusError) and exc.status_code in RETRY_STATUS

    @classmethod
    def retry_after(cls, exc: BaseException) -> float | None:
        """The Retry-After (or retry-after-ms) of a failed request's response, in seconds: a number or an HTTP date."""
        headers = getattr(getattr(exc, "response", None), "headers", None)
        return retry_after_s(headers) if headers is not None else None

    @classmethod
    def identity(cls, spec) -> dict:
        """The engine's identity plus the endpoint (dtype stays in: the keys of existing caches include it)."""
        return {**super().identity(spec), "base_url": spec.base_url}

    def __init__(self, spec) -> None:
        super().__init__(spec)
        self._logprobs_supported = True
        self._shared: Endpoints | None = None
        self._waits = Waits()  # used when no run shares its Endpoints

    def share(self, endpoints: Endpoints) -> None:
        """Send requests on the run's loop, within the endpoint's limit shared with the run's other backends."""
        self._shared = endpoints

    def _api_key(self) -> str:
        return api_key(self.spec)

    def load(self) -> None:
        import openai  # noqa: F401  (fail early with a clear message if missing)

        self._api_key()

    def _client(self):
        import openai

        # The client retries connection errors, timeouts, 408/409/429/5xx with exponential backoff
        # and jitter, waiting what Retry-After asks up to 2 minutes (a longer wait is not retried:
        # the run's next pass takes it, rlaif.calls.engine); a 400 is never retried.
        return openai.AsyncOpenAI(
            base_url=self.spec.base_url,
            api_key=self._api_key(),
            timeout=self.spec.timeout_s,
            max_retries=self.spec.max_retries,
        )

    async def _pool(self, requests: list, one: Callable, on_result: Callable) -> None:
        """Bounded worker pool: at most max_concurrency requests in flight, memory flat in N."""
        shared = self._shared is not None
        key = (self.spec.base_url, self.spec.api_key_env, self.spec.timeout_s, self.spec.max_retries)
        client = self._shared.client(key, self._client) if shared else self._client()
        queue: Iterable[tuple[int, Any]] = iter(enumerate(requests))
        limit = self._shared.limit(self.spec) if self._shared else contextlib.nullcontext()
        rates = self._shared.rates(self.spec) if self._shared else endpoint_limits(self.spec, self._waits, False)
        breaker = (
            self._shared.breaker(self.spec)
            if shared
            else Breaker(display_url(endpoint_url(self.spec)), self.spec.stop_after_failures)
        )

        async def worker() -> None:
            for index, request in queue:
                refused = self._refusal(breaker)
                if refused is not None:
                    on_result(index, refused)
                    continue
                try:
                    async with limit:
                        if refused := self._refusal(breaker):  # the breaker may have opened while this one waited
                            raise refused
                        estimate = await rates.before(request.chat(), request.max_tokens) if rates else 0
                        if refused := self._refusal(breaker):  # or the run stopped while an rpm / tpm limit held it
                            raise refused
                        result = await one(client, request)  # the client retries transient errors itself
                        if rates:
                            rates.after(estimate, result)
                except Exception as exc:  # noqa: BLE001 - a failure is a value
                    result = exc
                if not isinstance(result, (EndpointDown, Stopped)):
                    breaker.record(result, self.is_transient, self.retry_after)
                on_result(index, result)

        try:
            workers = min(self.spec.max_concurrency, len(requests))
            await asyncio.gather(*(worker() for _ in range(workers)))
        finally:
            if not shared:
                await client.close()

    def _refusal(self, breaker: Breaker) -> Exception | None:
        """Why the next request must not be sent (the run is stopping, the endpoint's breaker is open), or None."""
        if self.stopping or (self._shared is not None and self._shared.stopping):
            return Stopped("not sent: the run is stopping (Ctrl-C or SIGTERM)")
        return breaker.refusal()

    async def _chat(self, client, body: dict[str, Any]) -> dict[str, Any]:
        """POST /chat/completions with the client's own retries and errors, as plain JSON: the typed
        request transform and response models of `chat.completions.create` cost most of a request's
        CPU here and a run reads four fields."""
        return await client.post("/chat/completions", body=body, cast_to=object)

    async def _generate_one(self, client, request: GenerateRequest) -> Completion:
        start = time.perf_counter()
        body = {
            "model": self.spec.model,
            "messages": request.chat(),
            "temperature": request.temperature,
            "top_p": request.top_p,
            "max_tokens": request.max_tokens,
        }
        if request.seed is not None:
            body["seed"] = request.seed
        response = await self._chat(client, body)
        choice, usage = response["choices"][0], response.get("usage") or {}
        return Completion(
            text=(choice.get("message") or {}).get("content") or "",
            finish_reason=choice.get("finish_reason") or "stop",
            prompt_tokens=usage.get("prompt_tokens") or 0,
            completion_tokens=usage.get("completion_tokens") or 0,
            latency_s=time.perf_counter() - start,
        )

    async def _score_one(self, client, request: ScoreRequest) -> Scores:
        import openai

        start = time.perf_counter()
        body: dict[str, Any] = {
            "model": self.spec.model,
            "messages": request.chat(),
            "temperature": 0.0,
            "max_tokens": request.max_tokens,
        }
        want = request.want_probs and self._logprobs_supported
        try:
            response = await self._chat(client, {**body, **({"logprobs": True, "top_logprobs": 20} if want else {})})
        except openai.BadRequestError:
            if not want:
                raise
            self._logprobs_supported = False  # server rejects logprobs: fall back to parsed answers
            response = await self._chat(client, body)
        choice, usage = response["choices"][0], response.get("usage") or {}
        content = (choice.get("logprobs") or {}).get("content")
        probs = verdict_probs(content, request.options) if content else None
        return Scores(
            probs=probs,
            text=(choice.get("message") or {}).get("content") or "",
            prompt_tokens=usage.get("prompt_tokens") or 0,
            completion_tokens=usage.get("completion_tokens") or 0,
            latency_s=time.perf_counter() - start,
        )

    def _send(self, coro: Awaitable) -> None:
        (self._shared.run if self._shared else run_async)(coro)

    def _batch(self, kind: str, requests, on_result) -> None:
        """`batch: true`: the requests go through the Batch API (rlaif.backends.openai_batch)."""
        from rlaif.backends.openai_batch import batch_requests

        self._send(batch_requests(self, kind, requests, on_result))

    def take_limit_wait(self) -> float:
        """Seconds the run's requests were held by rpm / tpm limits since the last take (rlaif.calls.engine adds them to the step's stats)."""
        return (self._shared.waits if self._shared else self._waits).take()

    def generate(self, requests, on_result) -> None:
        if self.spec.batch:
            return self._batch("generate", requests, on_result)
        self._send(self._pool(requests, self._generate_one, on_result))

    def score(self, requests, on_result) -> None:
        if self.spec.batch:
            return self._batch("score", requests, on_result)
        self._send(self._pool(requests, self._score_one, on_result))
