"""A scripted backend for unit tests of exact logic (never the only test of a feature)."""

from __future__ import annotations

from collections.abc import Callable

from rlaif.backends.base import Backend, Completion, Scores


class FakeBackend(Backend):
    """Answers from functions of the request; counts calls; can fail chosen requests."""

    name = "fake"

    def __init__(self, spec, gen: Callable | None = None, score: Callable | None = None) -> None:
        super().__init__(spec)
        self.gen_fn = gen or (lambda r: Completion(text=f"answer {r.seed} to {r.messages[-1][1]}", finish_reason="stop", completion_tokens=3))
        self.score_fn = score or (lambda r: Scores(probs={"a": 0.6, "b": 0.4}, text="Output (a"))
        self.calls = 0
        self.loads = 0

    def load(self) -> None:
        self.loads += 1

    def _each(self, requests, fn, on_result) -> None:
        for index, request in enumerate(requests):
            self.calls += 1
            try:
                on_result(index, fn(request))
            except Exception as exc:  # noqa: BLE001
                on_result(index, exc)

    def generate(self, requests, on_result) -> None:
        self._each(requests, self.gen_fn, on_result)

    def score(self, requests, on_result) -> None:
        self._each(requests, self.score_fn, on_result)


def collect(method, requests: list) -> list:
    """Run a backend batch method (`generate` / `score`); results in request order, each exactly once."""
    results = {}
    method(requests, lambda index, result: results.__setitem__(index, result))
    assert sorted(results) == list(range(len(requests))), "every request must get exactly one result"
    return [results[i] for i in range(len(requests))]
