"""A circuit breaker per endpoint: an endpoint whose calls keep failing stops the run in seconds.

Each request already had its own retries (the openai client's `max_retries`). When
`stop_after_failures` requests to one endpoint in a row end failed that way, with no success
between, and each failure says the endpoint is down, the breaker opens: no further request goes to
that endpoint, the ones not yet sent end as `EndpointDown`, and a run stops (rlaif.calls.engine:
exit code 3, every successful call already cached). A run against an endpoint that always fails
so makes about `stop_after_failures + max_concurrency` requests (each with its retries), whatever
its number of prompts.

What says "down": a transient error (connection, timeout, 408/409/425/5xx), or 401/403/404 (a
wrong key, model or URL). A 429 is the endpoint asking to slow down, not a fault (the client
waits its Retry-After, the run's passes send it again), so it does not count, except OpenAI's
`insufficient_quota` (no credit left: every call will fail). A 429 or 503 whose Retry-After asks
for more than `MAX_RETRY_AFTER_S` opens the breaker at once, quoting the wait. A 400 says
something about one request only and does not count.

Outside a run (the reward endpoint, a training run's judge reward, which keep one pool for the
whole process) an open breaker lets one trial request through every `COOL_DOWN_S`; a success
closes it again.
"""

from __future__ import annotations

import time
from collections.abc import Callable

ENDPOINT_STATUS = {401, 403, 404}  # the endpoint, key or model is wrong: every call will fail the same way
MAX_RETRY_AFTER_S = 120.0  # the longest Retry-After a run waits for (the openai client's own limit)
COOL_DOWN_S = 30.0


class EndpointDown(Exception):
    """Not sent: the endpoint's breaker opened after `in_row` calls in a row failed (`last_error` the last),
    or at once when the endpoint asked to wait `asked_wait` seconds (Retry-After), longer than a run waits."""

    def __init__(
        self, url: str, in_row: int, limit: int, last_error: BaseException | None, asked_wait: float | None = None
    ) -> None:
        reason = (
            f"{url} asked to wait {asked_wait:,.0f} s (Retry-After)"
            if asked_wait is not None
            else f"the last {in_row} calls to {url} in a row failed (stop_after_failures: {limit})"
        )
        super().__init__(f"not sent: {reason}")
        self.url, self.in_row, self.limit, self.last_error, self.asked_wait = (
            url,
            in_row,
            limit,
            last_error,
            asked_wait,
        )


def says_down(exc: BaseException, transient: Callable[[BaseException], bool]) -> bool:
    """Whether a failed request (after its retries) says the endpoint is down, rather than busy or the request bad."""
    status = getattr(exc, "status_code", None)
    if status == 429:
        return getattr(exc, "code", None) == "insufficient_quota"
    return status in ENDPOINT_STATUS or transient(exc)


class Breaker:
    """Counts one endpoint's failures in a row; open once they reach `limit` (None: never)."""

    def __init__(self, url: str, limit: int | None, clock: Callable[[], float] = time.monotonic) -> None:
        self.url, self.limit, self.clock = url, limit, clock
        self.in_row = 0
        self.last_error: BaseException | None = None
        self.asked_wait: float | None = None
        self.opened_at: float | None = None

    @property
    def open(self) -> bool:
        return self.opened_at is not None

    def record(
        self,
        result: object,
        transient: Callable[[BaseException], bool],
        retry_after: Callable[[BaseException], float | None] = lambda exc: None,
    ) -> None:
        """A request ended: a success closes the breaker, a failure that says the endpoint is down counts."""
        if not isinstance(result, BaseException):
            self.in_row, self.opened_at, self.asked_wait = 0, None, None
            return
        wait = retry_after(result)
        if wait is not None and wait > MAX_RETRY_AFTER_S:
            self.last_error, self.asked_wait, self.opened_at = result, wait, self.clock()
            return
        if not says_down(result, transient):
            return
        self.in_row += 1
        self.last_error = result
        if self.limit is not None and self.in_row >= self.limit:
            self.opened_at = self.clock()

    def refusal(self) -> EndpointDown | None:
        """Why the next request must not be sent, or None. While open, one request goes through every
        COOL_DOWN_S (a run has stopped by then; a long-lived pool, such as the reward endpoint's, recovers):
        its success closes the breaker, its failure reopens it."""
        if self.opened_at is None:
            return None
        if self.clock() - self.opened_at >= COOL_DOWN_S:
            self.opened_at = self.clock()  # this one is the trial; the others wait for its answer or the next
            return None
        return EndpointDown(self.url, self.in_row, self.limit or 0, self.last_error, self.asked_wait)
