"""Run model calls through the request cache: cached results are reused, live ones stored as
they arrive, failures returned as values and never stored."""

from __future__ import annotations

import dataclasses
from typing import Any

from rlaif.backends.base import Backend, Completion, GenerateRequest, Scores, ScoreRequest
from rlaif.cache import CallCache, CallStats, call_key
from rlaif.progress import progress_bar


def backend_identity(spec) -> dict[str, Any]:
    """What about a backend determines its answers (never the API key)."""
    identity = {"backend": spec.backend, "model": spec.model, "dtype": spec.dtype}
    if spec.backend == "openai":
        identity["base_url"] = spec.base_url
    return identity


def _run(
    kind: str,
    backend: Backend,
    requests: list,
    cache: CallCache,
    stats: CallStats,
    result_type: type,
    template_sha256: str,
    label: str,
) -> list[Any]:
    identity = backend_identity(backend.spec)
    keys = [
        call_key(kind, identity, dataclasses.asdict(request), template_sha256)
        for request in requests
    ]
    found = cache.get_many(list(set(keys)))
    results: list[Any] = [None] * len(requests)
    pending: list[int] = []
    for index, key in enumerate(keys):
        if key in found:
            results[index] = result_type(**found[key])
            stats.cached += 1
        else:
            pending.append(index)
    with progress_bar(f"{label} ({stats.cached} cached)", len(pending)) as advance:

        def on_result(position: int, result: Any) -> None:
            index = pending[position]
            results[index] = result
            if isinstance(result, Exception):
                stats.failed += 1
            else:
                stats.live += 1
                stats.prompt_tokens += result.prompt_tokens
                stats.completion_tokens += result.completion_tokens
                cache.put(keys[index], dataclasses.asdict(result))
            advance(1)

        if pending:
            backend.ensure_loaded()
            call = backend.generate if kind == "generate" else backend.score
            call([requests[i] for i in pending], on_result)
    missing = [i for i in pending if results[i] is None]
    for index in missing:  # a backend that dropped a request: count it as failed, never lose it
        results[index] = RuntimeError("backend returned no result for this request")
        stats.failed += 1
    return results


def run_generate(backend: Backend, requests: list[GenerateRequest], cache: CallCache, stats: CallStats, label: str = "sampling") -> list[Completion | Exception]:
    return _run("generate", backend, requests, cache, stats, Completion, "", label)


def run_score(
    backend: Backend, requests: list[ScoreRequest], cache: CallCache, stats: CallStats, template_sha256: str, label: str = "judging"
) -> list[Scores | Exception]:
    return _run("score", backend, requests, cache, stats, Scores, template_sha256, label)
