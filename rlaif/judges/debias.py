"""Position bias: estimate it over a run and remove it in logit space.

Model: logit P(first shown wins) = s(first) - s(second) + beta. Judging a pair in both orders
gives logit p_ab = d + beta and logit p_ba(first) = -d + beta, so each pair estimates beta as
their mean; the run's beta is the mean over pairs. Removing it before averaging the two orders
(the RLAIF paper's soft-label averaging) keeps a strongly biased judge's labels usable and makes
the consistency check test content, not position.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

EPS = 1e-4


def logit(p: float) -> float:
    """
    >>> round(logit(0.5), 6), round(logit(0.8), 4)
    (0.0, 1.3863)
    """
    p = min(max(p, EPS), 1 - EPS)
    return math.log(p / (1 - p))


def sigmoid(x: float) -> float:
    return 1 / (1 + math.exp(-x))


@dataclass
class PositionBias:
    beta: float  # logit shift towards the response shown first (0 = unbiased)
    mean_p_first: float | None  # raw mean P(first shown wins)
    raw_consistency: float | None  # share of pairs with the same winner in both orders, before debiasing
    consistency: float | None  # after debiasing
    n: int  # soft-labelled pairs the estimate rests on

    def as_dict(self) -> dict:
        return {key: (round(value, 4) if isinstance(value, float) else value) for key, value in self.__dict__.items()}


def estimate_beta(p_a_ab: list[float], p_a_ba: list[float]) -> float:
    """Mean of (logit P(first wins | ab) + logit P(first wins | ba)) / 2 over pairs.

    >>> round(estimate_beta([0.8, 0.8], [0.2, 0.2]), 4)  # always prefers the first: biased
    1.3863
    >>> abs(round(estimate_beta([0.8, 0.3], [0.8, 0.3]), 4))  # consistent both ways: no bias
    0.0
    """
    if not p_a_ab:
        return 0.0
    total = sum((logit(ab) + logit(1 - ba)) / 2 for ab, ba in zip(p_a_ab, p_a_ba))
    return total / len(p_a_ab)


def debiased(p_a_ab: float, p_a_ba: float, beta: float) -> tuple[float, float]:
    """P(a better) from each order with the position shift removed.

    >>> [round(x, 3) for x in debiased(0.8, 0.2, 1.3863)]
    [0.5, 0.5]
    """
    return sigmoid(logit(p_a_ab) - beta), sigmoid(logit(p_a_ba) + beta)


def agree(p1: float, p2: float) -> bool:
    """Both orders name the same winner (strictly; 0.5 is no winner).

    >>> agree(0.7, 0.6), agree(0.7, 0.4), agree(0.5, 0.9)
    (True, False, False)
    """
    return (p1 - 0.5) * (p2 - 0.5) > 0
