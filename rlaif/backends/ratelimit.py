"""Client-side rate limits of an endpoint: requests per minute (`rpm`) and tokens per minute (`tpm`).

Each limit is a token bucket on the run's event loop (rlaif.backends.openai_compat.Endpoints),
shared by every backend of the run on that endpoint (base URL). A limit of N per minute is a
bucket of `burst = max(1, N // 60)` (one second's worth) refilled at `(N - burst) / 60` per
second, so that no 60-second window ever holds more than N (burst + 60 s of refill = N) and the
requests are spread evenly instead of sent in one burst at the top of each minute (the way
OpenAI enforces its limits: per minute, quantized to shorter windows). In any window of `w`
seconds at most `burst + rate * w` go out.

tpm: before a request is sent its tokens are estimated (characters of the messages / 4 +
`max_tokens`) and taken from the bucket; when the answer comes back, the bucket is corrected by
the usage the server reported (a request that used fewer tokens gives the difference back). A
request larger than the bucket waits for a full bucket and then goes, leaving the bucket in debt.

Shared across runs: when a Prefect server is used (PREFECT_API_URL is set) and the requests
come from a Prefect flow run, each request also takes its slots from a Prefect global concurrency
limit named after the endpoint (`rlaif-rpm-<host:port>` / `rlaif-tpm-<host:port>`, created or
updated with `limit = burst` and `slot_decay_per_second = rate`), through
`prefect.concurrency.asyncio.rate_limit`: every run and deployment on that server then shares one
budget. The local bucket is still taken first (it is the one corrected by the reported usage; a
Prefect rate limit cannot give slots back). Without a server or outside a flow run only the local
buckets apply: concurrent runs in other processes do not see each other's requests.

The seconds spent waiting are measured as wall time during which at least one request of the run
was held by a limit (`Waits.seconds`), not summed per request.
"""

from __future__ import annotations

import asyncio
import logging
import os
import sys
import time
from collections.abc import Iterable
from urllib.parse import urlsplit

log = logging.getLogger(__name__)


class SharedLimitUnavailable(RuntimeError):
    """The Prefect server did not grant a shared limit's slot (unreachable, timed out, or an error of its own).

    Transient: the request was not sent, and the call engine sends it again in a later pass
    (rlaif.backends.openai_compat.OpenAIBackend.is_transient), never records it as a failed call.
    """


def bucket_shape(per_minute: int) -> tuple[int, float]:
    """(burst, refill per second) of a per-minute limit: burst + 60 s of refill = the limit.

    >>> bucket_shape(120), bucket_shape(30), bucket_shape(1)
    ((2, 1.9666666666666666), (1, 0.48333333333333334), (1, 0.016666666666666666))
    """
    burst = max(1, per_minute // 60)
    rate = (per_minute - burst) / 60 if per_minute > burst else per_minute / 60
    return burst, rate


class Waits:
    """Wall time during which at least one request was held by a limit (call on the loop)."""

    def __init__(self) -> None:
        self.seconds = 0.0
        self.requests = 0  # requests that had to wait
        self._held = 0
        self._since = 0.0
        self._taken = 0.0  # seconds already handed out by `take`

    def hold(self) -> None:
        if self._held == 0:
            self._since = time.monotonic()
        self._held += 1
        self.requests += 1

    def release(self) -> None:
        self._held -= 1
        if self._held == 0:
            self.seconds += time.monotonic() - self._since

    def take(self) -> float:
        """The seconds waited since the last take (so that each is counted once, by whoever takes it)."""
        total = self.seconds + (time.monotonic() - self._since if self._held else 0.0)
        taken, self._taken = total - self._taken, total
        return max(0.0, taken)


class TokenBucket:
    """A token bucket on one asyncio loop: `acquire(n)` waits until n tokens (at most `capacity`) are there."""

    def __init__(self, capacity: float, rate: float) -> None:
        self.capacity, self.rate = float(capacity), rate
        self.level = float(capacity)
        self._stamp = time.monotonic()
        self._lock = asyncio.Lock()  # first come, first served

    def _refill(self) -> None:
        now = time.monotonic()
        self.level = min(self.capacity, self.level + (now - self._stamp) * self.rate)
        self._stamp = now

    def delay(self, tokens: float) -> float:
        """Seconds until `tokens` (capped at the capacity) are in the bucket; 0 when they are now."""
        self._refill()
        need = min(tokens, self.capacity)
        return 0.0 if self.level >= need - 1e-9 else (need - self.level) / self.rate

    async def acquire(self, tokens: float, waits: Waits | None = None) -> None:
        async with self._lock:  # requests queued here wait while the one holding it sleeps: counted once
            wait = self.delay(tokens)
            held = wait > 0 and waits is not None
            if held:
                waits.hold()
            try:
                while wait > 0:
                    await asyncio.sleep(wait)
                    wait = self.delay(tokens)
            finally:
                if held:
                    waits.release()
            self.level -= tokens

    def give_back(self, tokens: float) -> None:
        """Correct an estimate: positive gives tokens back, negative takes more (the bucket may go into debt)."""
        self._refill()
        self.level = min(self.capacity, self.level + tokens)


def estimate_tokens(messages: Iterable[dict], max_tokens: int) -> int:
    """A request's tokens before it is sent: characters of its messages / 4, plus `max_tokens`.

    >>> estimate_tokens([{"role": "user", "content": "x" * 40}], 16)
    26
    """
    return sum(len(m.get("content") or "") for m in messages) // 4 + max_tokens


def limit_name(kind: str, url: str) -> str:
    """The Prefect global concurrency limit of an endpoint.

    >>> limit_name("rpm", "https://api.openai.com/v1")
    'rlaif-rpm-api.openai.com'
    """
    parts = urlsplit(url)
    return f"rlaif-{kind}-{parts.netloc.rsplit('@', 1)[-1] or 'default'}"


def prefect_shared() -> bool:
    """Whether limits are shared through Prefect: PREFECT_API_URL is set and this is a flow run (or its task).

    A flow run has imported Prefect; without it (`rlaif run --no-prefect` with PREFECT_API_URL set)
    this is not a flow run, and importing Prefect to find that out would cost 1.7 s."""
    if not os.environ.get("PREFECT_API_URL") or sys.modules.get("prefect") is None:  # None: imported and blocked
        return False
    from prefect.context import FlowRunContext, TaskRunContext

    return FlowRunContext.get() is not None or TaskRunContext.get() is not None


class EndpointLimits:
    """The rpm and tpm buckets of one endpoint (either may be None), and the Prefect limits that share them."""

    def __init__(self, url: str, rpm: int | None, tpm: int | None, waits: Waits, shared: bool) -> None:
        self.url, self.rpm, self.tpm, self.waits = url, rpm, tpm, waits
        self.requests = TokenBucket(*bucket_shape(rpm)) if rpm else None
        self.tokens = TokenBucket(*bucket_shape(tpm)) if tpm else None
        self.shared = shared and bool(rpm or tpm)
        self._created = False
        self._creating = asyncio.Lock()

    async def before(self, messages: list[dict], max_tokens: int) -> int:
        """Wait until the request may go; returns its token estimate (0 without a tpm limit)."""
        estimate = estimate_tokens(messages, max_tokens) if self.tokens else 0
        if self.requests:
            await self.requests.acquire(1, self.waits)
        if self.tokens:
            await self.tokens.acquire(estimate, self.waits)
        if self.shared:
            await self._prefect(estimate)
        return estimate

    def after(self, estimate: int, result: object) -> None:
        """Correct the tpm bucket by the tokens the server reported for the request (a failure: no correction)."""
        used = getattr(result, "prompt_tokens", 0) + getattr(result, "completion_tokens", 0)
        if self.tokens and used and not isinstance(result, BaseException):
            self.tokens.give_back(estimate - used)

    async def _prefect(self, estimate: int) -> None:
        from prefect.concurrency.asyncio import rate_limit

        try:
            names = await self._prefect_limits()
        except Exception as exc:  # noqa: BLE001 - the server's own failure: transient for the request
            raise SharedLimitUnavailable(
                f"the shared rate limits of {self.url} could not be set on the Prefect server: {exc}"
            ) from exc
        start = time.monotonic()
        self.waits.hold()
        try:
            if self.rpm:
                await rate_limit(names["rpm"], occupy=1, strict=True)
            if self.tpm:
                await rate_limit(names["tpm"], occupy=max(1, min(estimate, bucket_shape(self.tpm)[0])), strict=True)
        except Exception as exc:  # noqa: BLE001 - ConcurrencySlotAcquisitionError wraps whatever the server said
            raise SharedLimitUnavailable(
                f"the Prefect server did not grant a slot of the shared rate limit of {self.url}: {_cause(exc)}"
            ) from exc
        finally:
            self.waits.release()
            if time.monotonic() - start < 0.05:  # not a wait: the round trip to the server
                self.waits.requests -= 1

    async def _prefect_limits(self) -> dict[str, str]:
        """Create (or update) the endpoint's global concurrency limits once per run: limit = burst, slot decay = rate."""
        names = {kind: limit_name(kind, self.url) for kind in ("rpm", "tpm")}
        async with self._creating:
            if self._created:
                return names
            from prefect.client.orchestration import get_client

            async with get_client() as client:
                for kind, per_minute in (("rpm", self.rpm), ("tpm", self.tpm)):
                    if per_minute:
                        burst, rate = bucket_shape(per_minute)
                        await client.upsert_global_concurrency_limit_by_name(
                            names[kind], burst, slot_decay_per_second=rate
                        )
            self._created = True
            log.info(
                "rate limits of %s shared through Prefect global concurrency limits %s", self.url, list(names.values())
            )
        return names


def _cause(exc: BaseException) -> str:
    """An exception's message with its cause's (Prefect's wrapper names the limits, the cause says what went wrong)."""
    cause = exc.__cause__
    return f"{exc} ({type(cause).__name__}: {cause})" if cause else str(exc)


def endpoint_limits(spec, waits: Waits, shared: bool) -> EndpointLimits | None:
    """The limits a spec sets on its endpoint (None when it sets no rpm and no tpm)."""
    rpm, tpm = getattr(spec, "rpm", None), getattr(spec, "tpm", None)
    if not rpm and not tpm:
        return None
    from rlaif.backends.endpoints import endpoint_url

    return EndpointLimits(endpoint_url(spec), rpm, tpm, waits, shared)
