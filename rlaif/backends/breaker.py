"""A circuit breaker per endpoint: an endpoint whose calls keep failing stops the run in seconds.

Each request already had its own retries (the openai client's `max_retries`). When
`stop_after_failures` requests to one endpoint in a row end failed that way (a transient error, or
401/403/404: a wrong key, model or URL), with no success between, the breaker opens: no further
request goes to that endpoint in this run, the ones not yet sent end as `EndpointDown`, and the
run stops (rlaif.calls.engine: exit code 3, every successful call already cached). A run against
an endpoint that always fails so makes about `stop_after_failures + max_concurrency` requests
(each with its retries), whatever the number of prompts.
"""

from __future__ import annotations

from collections.abc import Callable

ENDPOINT_STATUS = {401, 403, 404}  # the endpoint, key or model is wrong: every call will fail the same way


class EndpointDown(Exception):
    """Not sent: the endpoint's breaker opened after `in_row` calls in a row failed (`last_error` the last)."""

    def __init__(self, url: str, in_row: int, limit: int, last_error: BaseException | None) -> None:
        super().__init__(f"not sent: the last {in_row} calls to {url} in a row failed (stop_after_failures: {limit})")
        self.url, self.in_row, self.limit, self.last_error = url, in_row, limit, last_error


class Breaker:
    """Counts one endpoint's failures in a row; `open` once they reach `limit` (None: never)."""

    def __init__(self, url: str, limit: int | None) -> None:
        self.url, self.limit = url, limit
        self.in_row = 0
        self.last_error: BaseException | None = None
        self.open = False

    def record(self, result: object, transient: Callable[[BaseException], bool]) -> None:
        """A request ended: a success closes the count, a failure that says the endpoint is down adds to it."""
        if not isinstance(result, BaseException):
            self.in_row = 0
            return
        if not (transient(result) or getattr(result, "status_code", None) in ENDPOINT_STATUS):
            return  # a request-specific failure (e.g. HTTP 400): says nothing about the endpoint
        self.in_row += 1
        self.last_error = result
        if self.limit is not None and self.in_row >= self.limit:
            self.open = True

    def refusal(self) -> EndpointDown:
        return EndpointDown(self.url, self.in_row, self.limit or 0, self.last_error)
