"""The run's spending cap (recipe `budget: {max_usd, max_tokens}`).

Before a step sends requests (each pass, each API chunk or batch), it asks the budget to admit
them: a request is sent only when what was paid so far, plus the estimated cost of every request
in flight (its own included), stays within the cap. A request's estimate is its prompt tokens
(chars/4 per message, scaled up by the run's measured tokens-per-estimate ratio once calls came
back) plus `max_tokens` as its completion (an upper bound). When the next request does not fit and
nothing else is in flight, the run stops with `BudgetExceeded` (exit code 4): nothing is committed,
every paid call is in the request cache, and a re-run with a higher cap resumes without repaying one.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from typing import Any

from rlaif.calls.costs import Ledger, message_tokens, text_tokens, usd
from rlaif.config.sections import BudgetSpec
from rlaif.core.errors import RlaifError

WAIT_S = 0.05  # how often a step that does not fit looks again while other steps have calls in flight


class BudgetExceeded(RlaifError):
    """The next call would take the run over its `budget:`: stopped before sending it, nothing committed. Exit code 4."""

    exit_code = 4


class Budget:
    """Spent and in-flight (reserved) USD and tokens against the caps; thread-safe (steps may run together)."""

    def __init__(self, max_usd: float | None = None, max_tokens: int | None = None) -> None:
        self.max_usd, self.max_tokens = max_usd, max_tokens
        self.reserved_usd, self.reserved_tokens = 0.0, 0
        self.stopped: str | None = None  # why the run stopped, when it did
        self.ratio = 1.0  # measured prompt tokens / estimated, at least 1
        self._estimated = self._measured = 0
        self.cond = threading.Condition()

    @classmethod
    def of(cls, spec: BudgetSpec | None) -> Budget | None:
        return None if spec is None else cls(spec.max_usd, spec.max_tokens)

    def fits(self, spent: tuple[float, int], cost: float, tokens: int) -> bool:
        if self.max_usd is not None and spent[0] + self.reserved_usd + cost > self.max_usd + 1e-12:
            return False
        return self.max_tokens is None or spent[1] + self.reserved_tokens + tokens <= self.max_tokens

    def section(self) -> dict[str, Any]:
        return {"max_usd": self.max_usd, "max_tokens": self.max_tokens, "stopped": self.stopped, "text": self.text()}

    def text(self) -> str:
        caps = [
            f"max_usd {self.max_usd:g}" if self.max_usd is not None else "",
            f"max_tokens {self.max_tokens}" if self.max_tokens is not None else "",
        ]
        return ", ".join(c for c in caps if c) + (f"; stopped: {self.stopped}" if self.stopped else "; not reached")


def estimate(request: Any, ratio: float = 1.0) -> tuple[int, int]:
    """(prompt tokens, completion tokens at most) of a GenerateRequest or ScoreRequest, before it is sent.

    >>> from rlaif.backends.base import GenerateRequest
    >>> estimate(GenerateRequest(messages=(("user", "abcd"),), temperature=0, top_p=1, max_tokens=50, seed=0))
    (8, 50)
    """
    prompt = message_tokens(request.messages) + text_tokens(getattr(request, "prefix", ""))
    return int(prompt * ratio + 0.999), request.max_tokens


class Gate:
    """Admits a step's requests in parts that fit the budget; `done` settles each one as it comes back."""

    def __init__(self, ledger: Ledger, stage: str, model: str, requests: list, label: str, where: str) -> None:
        self.ledger, self.budget, self.stage, self.model = ledger, ledger.budget, stage, model
        self.requests, self.label, self.where = requests, label, where
        self.held: dict[int, tuple[float, int, int]] = {}  # index -> (usd, tokens, estimated prompt tokens) in flight
        self.sent = 0

    def parts(self, todo: list[int]) -> Iterator[list[int]]:
        """`todo` in parts that fit (all of it without a budget); BudgetExceeded when the next one never can."""
        if self.budget is None:
            yield todo
            return
        rest = list(todo)
        while rest:
            part = self._admit(rest)
            rest = rest[len(part) :]
            self.sent += len(part)
            yield part
            with self.budget.cond:  # requests a backend never answered: released too
                for index in part:
                    self._release(index)
                self.budget.cond.notify_all()

    def _cost(self, index: int) -> tuple[float, int, int]:
        raw = estimate(self.requests[index])
        prompt, completion = estimate(self.requests[index], self.budget.ratio)
        return usd(self.ledger.price(self.model), prompt, completion) or 0.0, prompt + completion, raw[0]

    def _admit(self, rest: list[int]) -> list[int]:
        budget = self.budget
        with budget.cond:
            while True:
                spent, part = self.ledger.spent(), []
                for index in rest:
                    cost = self._cost(index)
                    if not budget.fits(spent, cost[0], cost[1]):
                        break
                    budget.reserved_usd += cost[0]
                    budget.reserved_tokens += cost[1]
                    self.held[index] = cost
                    part.append(index)
                if part:
                    return part
                if budget.reserved_usd <= 0 and budget.reserved_tokens <= 0:
                    raise BudgetExceeded(self._message(rest[0], spent, len(rest)))
                budget.cond.wait(WAIT_S)  # other steps' calls in flight: their settled cost may leave room

    def _release(self, index: int) -> tuple[float, int, int] | None:
        cost = self.held.pop(index, None)
        if cost is not None:
            self.budget.reserved_usd = max(0.0, self.budget.reserved_usd - cost[0])
            self.budget.reserved_tokens = max(0, self.budget.reserved_tokens - cost[1])
        return cost

    def done(self, index: int, result: Any) -> None:
        """A request came back: a success is paid (tokens recorded), any result frees its reservation."""
        if not isinstance(result, Exception):
            self.ledger.paid(self.stage, self.model, result)
        if self.budget is None:
            return
        with self.budget.cond:
            cost = self._release(index)
            if cost is not None and not isinstance(result, Exception) and result.prompt_tokens:
                budget = self.budget
                budget._estimated += cost[2]
                budget._measured += result.prompt_tokens
                budget.ratio = max(1.0, budget._measured / max(1, budget._estimated))
            self.budget.cond.notify_all()

    def _message(self, index: int, spent: tuple[float, int], left: int) -> str:
        prompt, completion = estimate(self.requests[index], self.budget.ratio)
        cost = usd(self.ledger.price(self.model), prompt, completion)
        paid = sum(u.calls for u in self.ledger.usage.values())
        cached = sum(u.cached_calls for u in self.ledger.usage.values())
        caps = []
        if self.budget.max_usd is not None:
            caps.append(f"spent ${spent[0]:.6f} of budget.max_usd ${self.budget.max_usd:g}")
        if self.budget.max_tokens is not None:
            caps.append(f"used {spent[1]:,} of budget.max_tokens {self.budget.max_tokens:,} tokens")
        self.budget.stopped = f"{self.label}: {left} calls not sent"
        return (
            f"{self.label}: stopped before the budget would be exceeded: the next call to {self.where} (estimated "
            f"{prompt + completion:,} tokens"
            + (f", ${cost:.6f}" if cost is not None else "")
            + f" at most) does not fit; "
            f"{'; '.join(caps)}. This run made {paid} paid calls ({cached} more came from the cache); {self.sent} calls of this step "
            f"were sent and {left} were not. Every paid call is kept in the request cache, so re-running with a higher `budget:` resumes "
            "without paying for one again. Nothing was committed. `rlaif run RECIPE --dry-run` estimates what the whole run needs."
        )
