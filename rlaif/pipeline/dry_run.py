"""`rlaif run RECIPE --dry-run`: the calls, tokens and cost of a run, estimated before anything is spent.

It goes through the run's own code (prompt filters, `sample_policy`, `judge_stage`, the gold
judging) with a stand-in backend that answers every call that is not in the request cache with a
placeholder, and a read-only view of the cache. So the calls are counted by the same code that
makes them: what the cache already holds is counted as cached (paid before: $0 now), the rest as
calls to send. No model is called or loaded and nothing is written (not even the cache file).

Estimates: a call's prompt tokens come from the model's tokenizer when it is a local model whose
files are on disk, else from characters / 4 (plus 4 per message); a placeholder response counts as
its `max_tokens`. Completion tokens are each call's `max_tokens` (an upper bound). Filters that drop
responses before judging (empty, truncated, refusals, duplicates, ...) cannot be known before the
responses exist: the judging figures assume none is dropped (an upper bound), except for responses
already in the cache, which are filtered as in the run.
"""

from __future__ import annotations

import hashlib
import json
import re
import sqlite3
from pathlib import Path
from typing import Any

from rlaif.backends import API_BACKENDS, BackendPool, using
from rlaif.backends.base import Backend, Completion, Scores
from rlaif.calls.cache import CallStats
from rlaif.calls.costs import Ledger, local_only, message_tokens, money
from rlaif.config.recipe import Recipe

DRY_CHUNK = 1000  # prompts per piece (memory)
MARK = re.compile(r"```\ndry-run-([0-9a-f]{16})\n```")


class ReadOnlyCache:
    """The request cache, read-only (`put` does nothing); a store without one is an empty cache (no file is made)."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._db = (
            sqlite3.connect(f"file:{path}?mode=ro", uri=True, check_same_thread=False) if path.is_file() else None
        )

    def get_many(self, keys: list[str]) -> dict[str, dict]:
        found: dict[str, dict] = {}
        for start in range(0, len(keys) if self._db else 0, 500):
            chunk = keys[start : start + 500]
            rows = self._db.execute(f"SELECT key, value FROM calls WHERE key IN ({','.join('?' * len(chunk))})", chunk)
            found.update((key, json.loads(value)) for key, value in rows)
        return found

    def put(self, key: str, value: dict) -> None:
        pass

    def close(self) -> None:
        if self._db is not None:
            self._db.close()


class TokenCounter:
    """How prompt tokens are estimated per model (a local tokenizer, else characters / 4), and the placeholders' lengths."""

    def __init__(self) -> None:
        self.tokenizers: dict[str, Any] = {}
        self.placeholders: dict[str, int] = {}  # placeholder id -> the max_tokens it stands for

    def method(self, spec) -> str:
        return "tokenizer" if self._tokenizer(spec) is not None else "chars/4"

    def _tokenizer(self, spec):
        if spec.model not in self.tokenizers:
            self.tokenizers[spec.model] = local_tokenizer(spec) if spec.backend not in API_BACKENDS else None
        return self.tokenizers[spec.model]

    def prompt_tokens(self, spec, messages, prefix: str = "") -> int:
        """Estimated prompt tokens; each placeholder response counts as its max_tokens."""
        extra = 0
        plain = []
        for role, content in messages:
            extra += sum(self.placeholders.get(found, 0) for found in MARK.findall(content))
            plain.append((role, MARK.sub("", content)))
        tokenizer = self._tokenizer(spec)
        if tokenizer is None:
            return message_tokens(plain) + extra + (len(prefix) + 3) // 4
        chat = [{"role": role, "content": content} for role, content in plain]
        return (
            len(tokenizer.apply_chat_template(chat, tokenize=True, add_generation_prompt=True))
            + len(tokenizer.encode(prefix))
            + extra
        )

    def placeholder(self, request) -> str:
        key = hashlib.sha256(repr(request).encode()).hexdigest()[:16]
        self.placeholders[key] = request.max_tokens
        return f"```\ndry-run-{key}\n```"  # a code block: no language, refusal or judge-address filter drops it


def local_tokenizer(spec):
    """The tokenizer of a local model whose files are on disk (a converted built-in alias or a folder); None otherwise.
    Never converts, downloads or writes."""
    from rlaif.weights.builtin import is_builtin, is_converted, model_dir

    folder = model_dir(spec.model) if is_builtin(spec.model) else Path(spec.model)
    if not folder.is_dir() or (is_builtin(spec.model) and not is_converted(folder)):
        return None
    try:
        from transformers import AutoTokenizer

        return AutoTokenizer.from_pretrained(str(folder), local_files_only=True)
    except Exception:  # noqa: BLE001 - any failure: fall back to characters / 4, and say so
        return None


class DryBackend(Backend):
    """Answers each call it is sent with a placeholder whose tokens are the call's estimate."""

    name = "dry-run"

    def __init__(self, spec, counter: TokenCounter) -> None:
        super().__init__(spec)
        self.counter = counter

    def generate(self, requests, on_result) -> None:
        for index, request in enumerate(requests):
            tokens = self.counter.prompt_tokens(self.spec, request.messages)
            on_result(index, Completion(self.counter.placeholder(request), "stop", tokens, request.max_tokens))

    def score(self, requests, on_result) -> None:
        for index, request in enumerate(requests):
            tokens = self.counter.prompt_tokens(self.spec, request.messages, request.prefix)
            probs = {option: 1 / len(request.options) for option in request.options}
            on_result(index, Scores(probs, "", tokens, request.max_tokens))


class DryPool(BackendPool):
    """Every backend of the dry run is a DryBackend (nothing is loaded)."""

    def __init__(self, counter: TokenCounter) -> None:
        super().__init__()
        self.counter = counter

    def get(self, factory, spec) -> Backend:
        return DryBackend(spec, self.counter)


def dry_run(recipe: Recipe, store: str | Path, limit: int | None = None) -> dict[str, Any]:
    """The estimate of a run of `recipe` on `store` (the `--dry-run` JSON)."""
    recipe = recipe.model_copy(
        update={"filters": recipe.filters.model_copy(update={"max_tokens": None})}
    )  # placeholders are max_tokens long
    counter, ledger = (
        TokenCounter(),
        Ledger(recipe.prices, {s.model for s in recipe.models() if s.backend not in API_BACKENDS}),
    )
    cache = ReadOnlyCache(Path(store) / "cache.sqlite")
    pool = DryPool(counter)
    try:
        with using(pool):
            prompts, dropped = _count_prompts(recipe, store, limit, cache, ledger)
            if recipe.judge.gold:
                _gold(recipe, store, cache, ledger)
    finally:
        cache.close()
    return _estimate(recipe, ledger, counter, prompts, dropped)


def _count_prompts(recipe: Recipe, store: str | Path, limit: int | None, cache, ledger: Ledger) -> tuple[int, dict]:
    from rlaif.core.inputs import iter_prompts
    from rlaif.quality.prompts import PromptChecker
    from rlaif.store.prompt_sources import resolve_prompts

    spec, checker = recipe.prompts, PromptChecker(recipe.filters)
    kept, dropped, chunk = 0, {}, []
    most = limit or spec.limit
    for prompt in iter_prompts(resolve_prompts(spec, store, most).file, spec.system, most):
        reason = checker.reason(prompt)
        if reason:
            dropped[reason] = dropped.get(reason, 0) + 1
            continue
        chunk.append(prompt)
        kept += 1
        if len(chunk) >= DRY_CHUNK:
            _sample_and_judge(recipe, chunk, cache, ledger)
            chunk = []
    if chunk:
        _sample_and_judge(recipe, chunk, cache, ledger)
    return kept, dropped


def _sample_and_judge(recipe: Recipe, prompts: list, cache, ledger: Ledger) -> None:
    from rlaif.judges.stage import judge_stage
    from rlaif.pipeline.sampling import sample_policy

    stats = CallStats(ledger=ledger)
    generations = [
        g
        for policy in recipe.policies
        for g in sample_policy(prompts, policy, recipe.samples_per_prompt, cache, stats)
    ]
    judge_stage(prompts, generations, recipe.judge, recipe.filters, cache, stats)


def _gold(recipe: Recipe, store: str | Path, cache, ledger: Ledger) -> None:
    from rlaif.judges.evaluate import gold_items, judge_items, load_gold_source

    gold, _, _ = load_gold_source(recipe.judge.gold, store, recipe.judge.gold_limit)
    items, _ = gold_items(gold.pairs, 0)
    judge_items(items, recipe.judge, cache, CallStats(ledger=ledger, stage="gold"))


def _estimate(recipe: Recipe, ledger: Ledger, counter: TokenCounter, prompts: int, dropped: dict) -> dict[str, Any]:

    section = ledger.section()
    methods = {spec.model: counter.method(spec) for spec in recipe.models()}
    budget = recipe.budget
    estimate = {
        "prompts": prompts,
        "prompts_dropped": dropped,
        "stages": section["stages"],
        "calls": {
            "to_send": sum(u["calls"] for m in section["stages"].values() for u in m.values()),
            "cached": sum(u["cached_calls"] for m in section["stages"].values() for u in m.values()),
        },
        "tokens": section["tokens"],
        "total_usd": section["total_usd"],
        "priced_usd": section["priced_usd"],
        "saved_usd": section["saved_usd"],
        "unpriced": section["unpriced"],
        "prompt_tokens_by": methods,
        "notes": [
            "calls: exact for sampling and for every judge call whose responses are cached; for the rest an upper bound, "
            "because responses that filters drop before judging (empty, truncated, refusals, duplicates, ...) are not known in advance",
            "completion tokens: each call's max_tokens (an upper bound); prompt tokens: "
            + ", ".join(f"{m}: {how}" for m, how in methods.items()),
            "cached calls were paid by an earlier run: they cost nothing now (saved_usd is what they cost then)",
        ],
    }
    if budget is not None:
        estimate["budget"] = _budget_check(budget, estimate)
    return estimate


def _budget_check(budget, estimate: dict[str, Any]) -> dict[str, Any]:
    tokens = estimate["tokens"]["prompt"] + estimate["tokens"]["completion"]
    over = []
    if budget.max_usd is not None and (estimate["total_usd"] or 0) > budget.max_usd:
        over.append(f"{money(estimate['total_usd'])} > max_usd {budget.max_usd:g}")
    if budget.max_tokens is not None and tokens > budget.max_tokens:
        over.append(f"{tokens:,} tokens > max_tokens {budget.max_tokens:,}")
    return {
        "max_usd": budget.max_usd,
        "max_tokens": budget.max_tokens,
        "fits": not over,
        "text": ("may stop at the budget: " + "; ".join(over)) if over else "the estimate fits the budget",
    }


def estimate_lines(estimate: dict[str, Any]) -> tuple[list[str], list[list[str]], list[str]]:
    """(header, rows, notes) of the dry-run table; without the cost columns when only local models run (nothing billed)."""
    billed = not local_only(estimate)
    header = [
        "stage",
        "model",
        "calls to send",
        "cached",
        "prompt tokens (est.)",
        "completion tokens (at most)",
        "cost",
        "saved",
    ]
    rows = [
        [
            stage,
            model,
            str(u["calls"]),
            str(u["cached_calls"]),
            f"{u['prompt_tokens']:,}",
            f"{u['completion_tokens']:,}",
            money(u["usd"]),
            money(u["saved_usd"]),
        ]
        for stage, models in estimate["stages"].items()
        for model, u in models.items()
    ]
    total = estimate["total_usd"]
    rows.append(
        [
            "total",
            "",
            str(estimate["calls"]["to_send"]),
            str(estimate["calls"]["cached"]),
            f"{estimate['tokens']['prompt']:,}",
            f"{estimate['tokens']['completion']:,}",
            money(total) if total is not None else f"{money(estimate['priced_usd'])} + unknown",
            money(estimate["saved_usd"]),
        ]
    )
    drops = ", ".join(f"{k} {v}" for k, v in estimate["prompts_dropped"].items())
    notes = [
        f"prompts: {estimate['prompts']}" + (f" (dropped before sampling: {drops})" if drops else ""),
        *estimate["notes"],
    ]
    if not billed:
        header, rows = header[:-2], [row[:-2] for row in rows]
        return header, rows, [*notes, "cost: not billed, local models only (`prices:` can count their compute)"]
    notes += [f"cost of {model} not known: {why}" for model, why in estimate["unpriced"].items()]
    if "budget" in estimate:
        notes.append(f"budget: {estimate['budget']['text']}")
    return header, rows, notes
