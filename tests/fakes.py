"""A scripted backend for unit tests of exact logic (never the only test of a feature)."""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable

from rlaif.backends.base import Backend, Completion, Scores


class FakeBackend(Backend):
    """Answers from functions of the request; counts calls; can fail chosen requests."""

    name = "fake"
    # a stand-in for any engine (tests put it in place of a real one) takes every engine option
    options = frozenset(
        {"base_url", "api_key_env", "max_concurrency", "timeout_s", "max_retries", "batch_size", "threads", "dtype"}
    )

    @classmethod
    def is_transient(cls, exc: BaseException) -> bool:
        """As the API backend it stands in for: the fault tests raise the openai client's errors."""
        from rlaif.backends.openai_compat import OpenAIBackend

        return OpenAIBackend.is_transient(exc)

    def __init__(self, spec, gen: Callable | None = None, score: Callable | None = None) -> None:
        super().__init__(spec)
        self.gen_fn = gen or (
            lambda r: Completion(
                text=f"answer {r.seed} to {r.messages[-1][1]}", finish_reason="stop", completion_tokens=3
            )
        )
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


def kept_pairs(outcome, filters) -> tuple[list, Counter]:
    """The pairs a run keeps from a judge outcome, and drop counts, with the run's own functions:
    the per-pair checks (`select_candidates`), then the length-bias cap over them (`length_cap_drops`)."""
    from rlaif.quality.filters import length_cap_drops, select_candidates
    from rlaif.quality.length import chosen_is_longer

    candidates, dropped = select_candidates(outcome, filters)
    keys = lambda positions: [
        (candidates[i].prompt_id, candidates[i].chosen_id, candidates[i].rejected_id) for i in positions
    ]  # noqa: E731
    drops = length_cap_drops(
        [p.margin for p in candidates], [chosen_is_longer(p) for p in candidates], filters.max_longer_share, keys
    )
    if drops:
        dropped["length_bias"] += len(drops)
    return [p for i, p in enumerate(candidates) if i not in drops], dropped


def outcome_of(items: list, judgments: dict, filters):
    """A judge outcome of hand-made candidate pairs, each with its pre-judge reason decided as a run decides it."""
    from rlaif.judges.stage import JudgeOutcome
    from rlaif.quality.filters import pre_judge_reason

    return JudgeOutcome(items, judgments, reasons=[pre_judge_reason(a, b, filters) for _, a, b in items])


def marker_judge(rating: str) -> Callable:
    """A pointwise judge's score function (1-5) that fails on every response containing MARK and rates the
    rest by the digit the `rating` pattern captures (e.g. r"\\bR(\\d)\\b")."""
    import re

    def score(request) -> Scores:
        text = "\n".join(str(content) for _, content in request.messages)
        if "MARK" in text:
            raise RuntimeError("the judge cannot read this response")
        found = re.search(rating, text).group(1)
        return Scores(probs={option: float(option == found) for option in request.options}, text="")

    return score
