"""Verdict tokens: the probability of each verdict option read from an OpenAI-style logprobs list."""

from __future__ import annotations

import math
from typing import Any


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
        if normalize_token(position["token"]) not in wanted:
            continue
        probs = {option: 0.0 for option in options}
        for top in position.get("top_logprobs") or []:
            key = wanted.get(normalize_token(top["token"]))
            if key is not None:
                probs[key] += math.exp(top["logprob"])
        return probs
    return None
