"""Position bias: estimate it over a run and remove it in logit space.

Model: logit P(first shown wins) = s(first) - s(second) + beta. Judging a pair in both orders
gives logit p_ab = d + beta and logit p_ba(first) = -d + beta, so each pair estimates beta as
their mean; the run's beta is the maximum-likelihood fit of one shared shift to those per-pair
shifts, with the pairs whose probabilities were clipped (within EPS of 0 or 1) as censored
observations (`estimate_beta`; without clipping, their mean). Removing it before averaging the two orders
(the RLAIF paper's soft-label averaging) keeps a strongly biased judge's labels usable and makes
the consistency check test content, not position.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

EPS = 1e-4  # probabilities are clipped to [EPS, 1 - EPS]: logits within +-9.21
SIGMA_FLOOR = 1e-6  # the fitted spread of the per-pair shifts never reaches 0 (EM divides by it)


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


def pair_shift(p_ab: float, p_ba: float) -> tuple[float, int | None]:
    """One pair's position shift, (logit P(first wins | ab) + logit P(first wins | ba)) / 2, and what
    is known of it: 0 exact; +1 at least this (a first-shown probability was clipped at 1 - EPS, so
    its logit is at least 9.21); -1 at most this (one clipped at EPS); None nothing (clipped both ways).

    >>> pair_shift(0.8, 0.2)[1], pair_shift(1.0, 0.3)[1], pair_shift(0.7, 1.0)[1], pair_shift(1.0, 1.0)[1]
    (0, 1, -1, None)
    """
    firsts = (p_ab, 1 - p_ba)  # P(first shown wins) in each order
    high = any(p >= 1 - EPS for p in firsts)
    low = any(p <= EPS for p in firsts)
    shift = (logit(p_ab) + logit(1 - p_ba)) / 2
    return shift, (None if high and low else 1 if high else -1 if low else 0)


def estimate_beta(p_a_ab: list[float], p_a_ba: list[float]) -> float:
    """The run's position shift: the maximum-likelihood fit of one shared shift to the per-pair shifts.

    Model: each pair's shift is drawn from N(beta, tau^2); a pair whose verdict probability was
    clipped (within EPS of 0 or 1) gives only a bound on its shift, so it enters the likelihood as a
    censored observation (Tobit; fitted by EM with `fit_censored_normal`), and a pair clipped both ways
    gives nothing. With no clipped probability the fit is the mean of the per-pair shifts, computed as
    it always was. (The mean of clipped logits, used before, is pulled towards 0: a true shift of 6
    with saturated verdicts came out about 4.5, tests/test_judge_pairwise.py.)

    >>> round(estimate_beta([0.8, 0.8], [0.2, 0.2]), 4)  # always prefers the first: biased
    1.3863
    >>> abs(round(estimate_beta([0.8, 0.3], [0.8, 0.3]), 4))  # consistent both ways: no bias
    0.0
    """
    if not p_a_ab:
        return 0.0
    shifts = [pair_shift(ab, ba) for ab, ba in zip(p_a_ab, p_a_ba)]
    if all(kind == 0 for _, kind in shifts):
        return sum(value for value, _ in shifts) / len(shifts)
    known = [(value, kind) for value, kind in shifts if kind is not None]
    if sum(kind == 0 for _, kind in known) < 2:  # too few exact shifts to fit a spread: no maximum exists
        return sum(value for value, _ in shifts) / len(shifts)
    return fit_censored_normal(known)[0]


def _normal_tail_ratio(alpha: float) -> float:
    """phi(alpha) / (1 - Phi(alpha)), the inverse Mills ratio (asymptotic where the tail underflows).

    >>> round(_normal_tail_ratio(0.0), 4), round(_normal_tail_ratio(40.0), 3)
    (0.7979, 40.025)
    """
    tail = 0.5 * math.erfc(alpha / math.sqrt(2))
    if tail < 1e-300:
        return alpha + 1 / alpha
    return math.exp(-alpha * alpha / 2) / math.sqrt(2 * math.pi) / tail


def _moments(value: float, kind: int, mu: float, sigma: float) -> tuple[float, float]:
    """E[x] and E[x^2] of one observation under N(mu, sigma^2): exact, or given x >= value (+1) / x <= value (-1)."""
    if kind == 0:
        return value, value * value
    sign = 1.0 if kind > 0 else -1.0
    ratio = _normal_tail_ratio(sign * (value - mu) / sigma)
    return mu + sign * sigma * ratio, mu * mu + sigma * sigma + sign * sigma * ratio * (value + mu)


def fit_censored_normal(
    observations: list[tuple[float, int]], iterations: int = 2000, tol: float = 1e-10
) -> tuple[float, float]:
    """(mu, sigma) maximising the likelihood of exact (kind 0), at-least (+1) and at-most (-1) observations
    of a normal variable: EM over the truncated-normal moments (each step raises the likelihood).

    >>> [round(x, 4) for x in fit_censored_normal([(1.0, 0), (3.0, 0)])]  # nothing censored: mean, sd
    [2.0, 1.0]
    >>> round(fit_censored_normal([(1.0, 0), (3.0, 0), (2.5, 1)])[0], 2)  # a third value at least 2.5
    2.46
    """
    exact = [value for value, kind in observations if kind == 0]
    mu = sum(exact) / len(exact)
    sigma = max(math.sqrt(sum((x - mu) ** 2 for x in exact) / len(exact)), SIGMA_FLOOR)
    for _ in range(iterations):
        moments = [_moments(value, kind, mu, sigma) for value, kind in observations]
        new_mu = sum(m for m, _ in moments) / len(moments)
        sigma = max(math.sqrt(max(sum(s for _, s in moments) / len(moments) - new_mu * new_mu, 0.0)), SIGMA_FLOOR)
        done, mu = abs(new_mu - mu) < tol, new_mu
        if done:
            break
    return mu, sigma


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
