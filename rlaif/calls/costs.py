"""Tokens and cost per stage and model, from the recipe's price table (`prices:`).

Every live call adds its prompt and completion tokens (as the backend reported them) to a run-wide
`Ledger` under (stage, model): stage is `sampling`, `judging` or `gold` (the judge on `judge.gold`).
A cached call costs nothing: its tokens are counted apart, and what they would have cost is the
cost the cache `saved`. A model without a price has an unknown cost, said so in `unpriced` (the
total is then None and `priced_usd` holds the known part), never 0.
"""

from __future__ import annotations

import math
import threading
from dataclasses import asdict, dataclass
from typing import Any

from rlaif.config.sections import PriceSpec

STAGES = ("sampling", "judging", "gold")
LOCAL = "local engine: not billed per token (add it to `prices:` to count its compute)"
NO_PRICE = "no price in the recipe's `prices:`"


def usd(price: PriceSpec | None, prompt_tokens: int, completion_tokens: int) -> float | None:
    """The cost of tokens at a price; None without one.

    >>> usd(PriceSpec(prompt_per_mtok=2.5, completion_per_mtok=10), 1000, 100), usd(None, 1, 1)
    (0.0035, None)
    """
    if price is None:
        return None
    return (prompt_tokens * price.prompt_per_mtok + completion_tokens * price.completion_per_mtok) / 1e6


def text_tokens(text: str) -> int:
    """A tokenizer-free estimate: one token per 4 characters (OpenAI's rule of thumb).

    >>> text_tokens("abcde"), text_tokens("")
    (2, 0)
    """
    return math.ceil(len(text) / 4)


def message_tokens(messages) -> int:
    """Estimated prompt tokens of a chat: each message's text, plus 4 per message and 3 for the reply's start.

    >>> message_tokens([("user", "abcd")])
    8
    """
    return sum(4 + text_tokens(content) for _, content in messages) + 3


@dataclass
class Usage:
    """Calls and tokens of one (stage, model): live (paid) and cached (not paid again)."""

    calls: int = 0
    prompt_tokens: int = 0
    completion_tokens: int = 0
    cached_calls: int = 0
    cached_prompt_tokens: int = 0
    cached_completion_tokens: int = 0


def stage_of(label: str, stage: str = "") -> str:
    """The cost stage of a step: its stats' own (e.g. `gold`), else from the step's label.

    >>> stage_of("sampling p (chunk 1/2)"), stage_of("judging (both orders)"), stage_of("judging", "gold")
    ('sampling', 'judging', 'gold')
    """
    return stage or ("sampling" if label.startswith("sampling") else "judging")


class Ledger:
    """Run-wide tokens by (stage, model), the price table, and the run's budget (rlaif.calls.budget.Budget or None).

    Shared by every step of a run (as `CallStats.ledger`), so it adds under a lock."""

    def __init__(
        self, prices: dict[str, PriceSpec] | None = None, local: set[str] | frozenset = frozenset(), budget: Any = None
    ) -> None:
        self.prices = dict(prices or {})
        self.local = set(local)  # models of local engines (transformers, vllm): unpriced means not billed
        self.budget = budget
        self.usage: dict[tuple[str, str], Usage] = {}
        self.lock = threading.Lock()

    def price(self, model: str) -> PriceSpec | None:
        return self.prices.get(model)

    def _usage(self, stage: str, model: str) -> Usage:
        return self.usage.setdefault((stage, model), Usage())

    def paid(self, stage: str, model: str, result: Any) -> None:
        """A live call that succeeded: its tokens are paid."""
        with self.lock:
            usage = self._usage(stage, model)
            usage.calls += 1
            usage.prompt_tokens += result.prompt_tokens
            usage.completion_tokens += result.completion_tokens

    def cached(self, stage: str, model: str, results: list[Any]) -> None:
        """Calls answered by the request cache: counted, not paid (their cost is `saved`)."""
        if not results:
            return
        with self.lock:
            usage = self._usage(stage, model)
            usage.cached_calls += len(results)
            usage.cached_prompt_tokens += sum(r.prompt_tokens for r in results)
            usage.cached_completion_tokens += sum(r.completion_tokens for r in results)

    def add(self, other: Ledger) -> None:
        """Add another ledger's usage (e.g. a dry run's parts)."""
        with self.lock:
            for key, usage in other.usage.items():
                mine = self._usage(*key)
                for name, value in asdict(usage).items():
                    setattr(mine, name, getattr(mine, name) + value)

    def spent(self) -> tuple[float, int]:
        """(USD, tokens) paid so far; unpriced models add no USD."""
        with self.lock:
            items = list(self.usage.items())
        money = sum(usd(self.price(model), u.prompt_tokens, u.completion_tokens) or 0.0 for (_, model), u in items)
        return money, sum(u.prompt_tokens + u.completion_tokens for _, u in items)

    def section(self) -> dict[str, Any]:
        """The manifest's `cost`: per stage and model tokens and USD, totals, the cache's savings, what was not priced."""
        with self.lock:
            items = sorted(
                self.usage.items(),
                key=lambda item: (STAGES.index(item[0][0]) if item[0][0] in STAGES else 9, item[0][1]),
            )
        stages: dict[str, dict[str, Any]] = {}
        unpriced: dict[str, str] = {}
        priced = saved = 0.0
        for (stage, model), u in items:
            price = self.price(model)
            cost = usd(price, u.prompt_tokens, u.completion_tokens)
            kept = usd(price, u.cached_prompt_tokens, u.cached_completion_tokens)
            if price is None:
                unpriced[model] = LOCAL if model in self.local else NO_PRICE
            priced, saved = priced + (cost or 0.0), saved + (kept or 0.0)
            stages.setdefault(stage, {})[model] = {**asdict(u), "usd": _round(cost), "saved_usd": _round(kept)}
        return {
            "currency": "USD",
            "stages": stages,
            "total_usd": None if unpriced else _round(priced),
            "priced_usd": _round(priced),
            "saved_usd": _round(saved),
            "tokens": {
                "prompt": sum(u.prompt_tokens for _, u in items),
                "completion": sum(u.completion_tokens for _, u in items),
            },
            "unpriced": unpriced,
            **({"budget": self.budget.section()} if self.budget is not None else {}),
        }


def _round(value: float | None) -> float | None:
    return None if value is None else round(value, 6)


def money(value: float | None) -> str:
    """
    >>> money(0.0123456), money(None), money(12.5)
    ('$0.0123', 'unknown', '$12.50')
    """
    if value is None:
        return "unknown"
    return f"${value:.2f}" if value >= 10 else f"${value:.4f}"


def cost_lines(cost: dict[str, Any] | None) -> list[str]:
    """Human lines about a manifest's `cost` (summary, card, report); [] when there is none."""
    if not isinstance(cost, dict) or not cost.get("stages"):
        return []
    if local_only(cost):
        return _local_lines(cost)  # nothing billed: tokens only, no "unknown" cost
    parts = []
    for stage, models in cost["stages"].items():
        for model, u in models.items():
            parts.append(
                f"{stage} {model}: {u['prompt_tokens']:,} prompt + {u['completion_tokens']:,} completion tokens, {money(u['usd'])}"
            )
    total = (
        money(cost.get("total_usd"))
        if cost.get("total_usd") is not None
        else f"{money(cost.get('priced_usd'))} priced + unknown"
    )
    lines = [f"cost: {total} (cache saved {money(cost.get('saved_usd'))}); " + "; ".join(parts)]
    for model, why in (cost.get("unpriced") or {}).items():
        lines.append(f"cost of {model} not known: {why}")
    budget = cost.get("budget")
    if isinstance(budget, dict):
        lines.append(f"budget: {budget.get('text', '')}")
    return lines


def local_only(cost: dict[str, Any]) -> bool:
    """Whether every model of the cost is a local engine with no price: nothing was billed.

    >>> local_only({"unpriced": {"m": LOCAL}, "priced_usd": 0.0}), local_only({"unpriced": {"m": "no price"}})
    (True, False)
    """
    unpriced = cost.get("unpriced") or {}
    return bool(unpriced) and set(unpriced.values()) == {LOCAL} and not cost.get("priced_usd")


def _local_lines(cost: dict[str, Any]) -> list[str]:
    """A run on local engines only: the tokens each stage used, and that nothing is billed.

    >>> _local_lines({"stages": {"sampling": {"m": {"prompt_tokens": 1200, "completion_tokens": 30}}}, "unpriced": {"m": LOCAL}})
    ['tokens: sampling m: 1,200 prompt + 30 completion (local models: not billed; `prices:` can count their compute)']
    """
    parts = [
        f"{stage} {model}: {u['prompt_tokens']:,} prompt + {u['completion_tokens']:,} completion"
        for stage, models in cost["stages"].items()
        for model, u in models.items()
    ]
    lines = ["tokens: " + "; ".join(parts) + " (local models: not billed; `prices:` can count their compute)"]
    budget = cost.get("budget")
    if isinstance(budget, dict):
        lines.append(f"budget: {budget.get('text', '')}")
    return lines


def cost_rows(cost: dict[str, Any] | None) -> list[tuple[str, str]]:
    """(label, value) rows about a manifest's `cost` for the card's and the report's tables; [] when there is none.

    >>> cost_rows({"stages": {"sampling": {"m": {"calls": 2, "prompt_tokens": 20, "completion_tokens": 8, "cached_calls": 1, "usd": None, "saved_usd": None}}},
    ...            "total_usd": None, "priced_usd": 0.0, "saved_usd": 0.0, "unpriced": {"m": "no price"}})[0]
    ('cost sampling m', 'unknown: 2 live calls, 20 prompt + 8 completion tokens; 1 cached (saved unknown)')
    """
    if not isinstance(cost, dict) or not cost.get("stages"):
        return []
    if local_only(cost):  # nothing billed: one row saying so, not a cost of "unknown" per stage
        return [("cost", "not billed: local models only (`prices:` can count their compute)")]
    rows = []
    for stage, models in cost["stages"].items():
        for model, u in models.items():
            rows.append(
                (
                    f"cost {stage} {model}",
                    f"{money(u['usd'])}: {u['calls']} live calls, {u['prompt_tokens']:,} prompt + {u['completion_tokens']:,} "
                    f"completion tokens; {u['cached_calls']} cached (saved {money(u['saved_usd'])})",
                )
            )
    total = cost.get("total_usd")
    rows.append(
        (
            "cost total",
            money(total) if total is not None else f"unknown ({money(cost.get('priced_usd'))} for the priced models)",
        )
    )
    rows.append(("cost saved by the request cache", money(cost.get("saved_usd"))))
    rows += [(f"not priced: {model}", why) for model, why in (cost.get("unpriced") or {}).items()]
    if isinstance(cost.get("budget"), dict):
        rows.append(("budget", cost["budget"].get("text", "")))
    return rows
