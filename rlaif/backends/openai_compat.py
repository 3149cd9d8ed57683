"""Any OpenAI-compatible endpoint (OpenAI, `vllm serve`, llama.cpp server, Ollama, llm-katan).

Async with a concurrency bound, per-request timeouts, and retries with exponential backoff and
full jitter that honour Retry-After. The API key is read from the environment when the client
is made and is never stored on the spec, in a cache key or in a manifest.
"""

from __future__ import annotations

import asyncio
import datetime
import email.utils
import logging
import math
import os
import random
import threading
import time
from collections.abc import Awaitable, Callable, Iterable
from typing import Any

from rlaif.backends.base import Backend, Completion, GenerateRequest, ScoreRequest, Scores
from rlaif.errors import BackendError
from rlaif.secrets import exception_text, spec_secrets

log = logging.getLogger(__name__)
RETRY_STATUS = {408, 409, 425, 429, 500, 502, 503, 504}
MAX_RETRY_AFTER_S = 60.0  # like the official client: a longer wait request is capped, not obeyed
DEFAULT_BASE_URL = "https://api.openai.com/v1"


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


def retry_after_seconds(exc: BaseException) -> float | None:
    """Seconds the server asked us to wait (Retry-After / retry-after-ms), if it said.

    >>> class R: headers = {"retry-after": "2"}
    >>> class E(Exception): response = R()
    >>> retry_after_seconds(E())
    2.0
    """
    headers = getattr(getattr(exc, "response", None), "headers", None) or {}
    if headers.get("retry-after-ms"):
        try:
            seconds = float(headers["retry-after-ms"]) / 1000
            if math.isfinite(seconds):
                return max(0.0, seconds)
        except ValueError:
            pass
    value = headers.get("retry-after")
    if not value:
        return None
    try:
        seconds = float(value)
        return max(0.0, seconds) if math.isfinite(seconds) else None  # "inf"/"nan" would hang or mislead
    except ValueError:
        pass
    try:  # an HTTP-date; unparseable values raise ValueError/TypeError on Python >= 3.10
        parsed = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError, IndexError):
        return None  # a malformed header must not turn a retryable error into a crash
    if parsed is None:
        return None
    if parsed.tzinfo is None:  # "-0000" parses naive; HTTP-dates are always UTC
        parsed = parsed.replace(tzinfo=datetime.timezone.utc)
    return max(0.0, parsed.timestamp() - time.time())


def is_retryable(exc: BaseException) -> bool:
    import openai

    if isinstance(exc, (openai.APIConnectionError, openai.APITimeoutError, asyncio.TimeoutError)):
        return True
    return isinstance(exc, openai.APIStatusError) and exc.status_code in RETRY_STATUS


def backoff_delay(attempt: int, base: float = 0.25, cap: float = 20.0) -> float:
    """Exponential backoff with full jitter: uniform in [0, min(cap, base * 2**attempt)]."""
    return random.uniform(0, min(cap, base * 2**attempt))


def normalize_token(token: str) -> str:
    """'(a' -> 'a', ' B' -> 'b', 'a)' -> 'a'.

    >>> [normalize_token(t) for t in ["(a", " B", "a)", "Output"]]
    ['a', 'b', 'a', 'output']
    """
    return token.strip().strip("()[]*\"'.:").strip().lower()


def verdict_probs(content: list[Any], options: tuple[str, ...]) -> dict[str, float] | None:
    """Probabilities of the options at the first generated token that is one of them."""
    wanted = {option.lower(): option for option in options}
    for position in content:
        if normalize_token(position.token) not in wanted:
            continue
        probs = {option: 0.0 for option in options}
        for top in position.top_logprobs or []:
            key = wanted.get(normalize_token(top.token))
            if key is not None:
                probs[key] += math.exp(top.logprob)
        return probs
    return None


def endpoint_url(spec) -> str:
    """The base URL the client talks to: the spec's, else $OPENAI_BASE_URL, else OpenAI's (as the openai client does)."""
    return spec.base_url or os.environ.get("OPENAI_BASE_URL") or DEFAULT_BASE_URL


def is_local_url(url: str) -> bool:
    """Whether a URL's host is this machine (loopback or 0.0.0.0).

    >>> is_local_url("http://127.0.0.1:8000/v1"), is_local_url("http://localhost/v1"), is_local_url("https://api.example.com/127.0.0.1")
    (True, True, False)
    """
    from urllib.parse import urlsplit

    host = (urlsplit(url).hostname or "").lower()
    return host.startswith("127.") or host in ("localhost", "::1", "0.0.0.0")


def api_key(spec) -> str:
    """The key from the variable `spec.api_key_env`; a loopback server takes any key ("EMPTY")."""
    key = os.environ.get(spec.api_key_env)
    if key:
        return key
    if spec.base_url and is_local_url(spec.base_url):
        return "EMPTY"  # local servers (vllm serve, llm-katan, llama.cpp) take any key
    from rlaif.secrets import strip_userinfo  # $OPENAI_BASE_URL is not checked like a recipe's base_url

    raise BackendError(
        f"no API key found for {strip_userinfo(endpoint_url(spec))} - set {spec.api_key_env} or point api_key_env at the variable that holds your key"
    )


class OpenAIBackend(Backend):
    name = "openai"

    def __init__(self, spec) -> None:
        super().__init__(spec)
        self._logprobs_supported = True

    def _api_key(self) -> str:
        return api_key(self.spec)

    def load(self) -> None:
        import openai  # noqa: F401  (fail early with a clear message if missing)

        self._api_key()

    def _client(self):
        import openai

        return openai.AsyncOpenAI(
            base_url=self.spec.base_url, api_key=self._api_key(), timeout=self.spec.timeout_s, max_retries=0
        )

    async def _with_retries(self, call: Callable[[], Awaitable[Any]]) -> Any:
        for attempt in range(self.spec.max_retries + 1):
            try:
                return await call()
            except Exception as exc:  # noqa: BLE001 - classified below
                if attempt >= self.spec.max_retries or not is_retryable(exc):
                    raise
                delay = max(backoff_delay(attempt), min(retry_after_seconds(exc) or 0.0, MAX_RETRY_AFTER_S))
                log.debug("retrying after %s (%.2fs): %s", type(exc).__name__, delay, exception_text(exc, spec_secrets(self.spec)))
                await asyncio.sleep(delay)

    async def _pool(self, requests: list, one: Callable, on_result: Callable) -> None:
        """Bounded worker pool: at most max_concurrency requests in flight, memory flat in N."""
        client = self._client()
        queue: Iterable[tuple[int, Any]] = iter(enumerate(requests))

        async def worker() -> None:
            for index, request in queue:
                try:
                    result = await self._with_retries(lambda request=request: one(client, request))
                except Exception as exc:  # noqa: BLE001 - a failure is a value
                    result = exc
                on_result(index, result)

        try:
            workers = min(self.spec.max_concurrency, len(requests))
            await asyncio.gather(*(worker() for _ in range(workers)))
        finally:
            await client.close()

    async def _generate_one(self, client, request: GenerateRequest) -> Completion:
        start = time.perf_counter()
        response = await client.chat.completions.create(
            model=self.spec.model,
            messages=request.chat(),
            temperature=request.temperature,
            top_p=request.top_p,
            max_tokens=request.max_tokens,
            seed=request.seed,
        )
        choice = response.choices[0]
        usage = response.usage
        return Completion(
            text=choice.message.content or "",
            finish_reason=choice.finish_reason or "stop",
            prompt_tokens=getattr(usage, "prompt_tokens", 0) or 0,
            completion_tokens=getattr(usage, "completion_tokens", 0) or 0,
            latency_s=time.perf_counter() - start,
        )

    async def _score_one(self, client, request: ScoreRequest) -> Scores:
        import openai

        start = time.perf_counter()
        kwargs: dict[str, Any] = dict(model=self.spec.model, messages=request.chat(), temperature=0.0, max_tokens=request.max_tokens)
        want = request.want_probs and self._logprobs_supported
        try:
            response = await client.chat.completions.create(**kwargs, **({"logprobs": True, "top_logprobs": 20} if want else {}))
        except openai.BadRequestError:
            if not want:
                raise
            self._logprobs_supported = False  # server rejects logprobs: fall back to parsed answers
            response = await client.chat.completions.create(**kwargs)
        choice = response.choices[0]
        content = getattr(choice.logprobs, "content", None) if choice.logprobs else None
        probs = verdict_probs(content, request.options) if content else None
        usage = response.usage
        return Scores(
            probs=probs,
            text=choice.message.content or "",
            prompt_tokens=getattr(usage, "prompt_tokens", 0) or 0,
            completion_tokens=getattr(usage, "completion_tokens", 0) or 0,
            latency_s=time.perf_counter() - start,
        )

    def generate(self, requests, on_result) -> None:
        run_async(self._pool(requests, self._generate_one, on_result))

    def score(self, requests, on_result) -> None:
        run_async(self._pool(requests, self._score_one, on_result))
