"""The statistics of judging, in one place: small pure functions that turn several orderings or votes
into one answer (Plackett-Luce, Borda, Kendall tau, Bradley-Terry, majority: the listwise judge's
permutations, the pointwise judge's scores, juries), and those that measure a judge against human
labels (Wilson interval, Cohen's kappa, calibration error, the binomial tail).
A ranking is a list of item indices, best first.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from itertools import combinations
from typing import Any


def ranks_from_scores(scores: list[float]) -> list[int]:
    """1 = best; equal scores share the best of their ranks (competition ranking).

    >>> ranks_from_scores([0.2, 0.9, 0.2, 0.5])
    [3, 1, 3, 2]
    """
    return [1 + sum(other > score for other in scores) for score in scores]


def order_from_scores(scores: list[float]) -> list[int]:
    """Item indices best first; ties keep their original order.

    >>> order_from_scores([0.2, 0.9, 0.5])
    [1, 2, 0]
    """
    return sorted(range(len(scores)), key=lambda i: -scores[i])


def borda(rankings: list[list[int]], k: int) -> list[float]:
    """Mean Borda score of each of `k` items in [0, 1] (1 = ranked first every time).

    >>> borda([[0, 1, 2], [0, 2, 1]], 3)
    [1.0, 0.25, 0.25]
    """
    if not rankings or k < 2:
        return [0.0] * k
    points = [0.0] * k
    for ranking in rankings:
        for position, item in enumerate(ranking):
            points[item] += (k - 1 - position) / (k - 1)
    return [p / len(rankings) for p in points]


def plackett_luce(rankings: list[list[int]], k: int, iterations: int = 200, tol: float = 1e-9) -> list[float]:
    """Plackett-Luce strengths (summing to 1) by Hunter's (2004) MM algorithm.

    A small prior (one win and one loss against a virtual average item) keeps every
    strength finite when an item always wins or always loses.

    >>> w = plackett_luce([[0, 1, 2]] * 5 + [[1, 0, 2]] * 2, 3)
    >>> w[0] > w[1] > w[2], round(sum(w), 6)
    (True, 1.0)
    """
    w = [1.0 / k] * k
    for _ in range(iterations):
        wins = [1.0] * k  # prior win
        denom = [2.0 / (w[i] + 1.0 / k) for i in range(k)]  # prior comparisons against 1/k
        for ranking in rankings:
            remaining = sum(w[i] for i in ranking)
            for position, item in enumerate(ranking[:-1]):
                wins[item] += 1
                for later in ranking[position:]:
                    denom[later] += 1.0 / remaining
                remaining -= w[item]
        new = [wins[i] / denom[i] for i in range(k)]
        total = sum(new)
        new = [x / total for x in new]
        if max(abs(a - b) for a, b in zip(new, w)) < tol:
            return new
        w = new
    return w


def kendall_tau(a: list[int], b: list[int]) -> float:
    """Kendall's tau between two rankings of the same items (1 = same order, -1 = reversed).

    >>> kendall_tau([0, 1, 2], [0, 1, 2]), kendall_tau([0, 1, 2], [2, 1, 0]), kendall_tau([0, 1, 2], [1, 0, 2])
    (1.0, -1.0, 0.3333333333333333)
    """
    position_a = {item: i for i, item in enumerate(a)}
    position_b = {item: i for i, item in enumerate(b)}
    items = list(position_a)
    pairs = list(combinations(items, 2))
    if not pairs:
        return 1.0
    score = sum(1 if (position_a[x] - position_a[y]) * (position_b[x] - position_b[y]) > 0 else -1 for x, y in pairs)
    return score / len(pairs)


def mean_tau(rankings: list[list[int]]) -> float | None:
    """Mean Kendall tau over all pairs of rankings; None with fewer than two.

    >>> mean_tau([[0, 1], [0, 1], [1, 0]])
    -0.3333333333333333
    """
    taus = [kendall_tau(a, b) for a, b in combinations(rankings, 2)]
    return sum(taus) / len(taus) if taus else None


def pairwise_share(rankings: list[list[int]], i: int, j: int) -> float:
    """Share of rankings that put item i above item j.

    >>> pairwise_share([[0, 1, 2], [2, 0, 1], [1, 0, 2]], 0, 1)
    0.6666666666666666
    """
    above = [r.index(i) < r.index(j) for r in rankings]
    return sum(above) / len(above) if above else 0.5


def expected_score(probs: dict[str, float]) -> tuple[float | None, float]:
    """Expected rating from the probabilities of the rating tokens, and the mass they held.

    >>> expected_score({"1": 0.1, "2": 0.0, "3": 0.3})
    (2.5, 0.4)
    >>> expected_score({"1": 0.0})
    (None, 0.0)
    """
    mass = sum(probs.values())
    if mass <= 0:
        return None, 0.0
    return round(sum(int(k) * p for k, p in probs.items()) / mass, 12), round(mass, 12)


def bradley_terry(score_i: float, score_j: float, scale: float = 1.0) -> float:
    """P(i beats j) from two scores: sigmoid((s_i - s_j) / scale).

    >>> bradley_terry(7, 7), round(bradley_terry(8, 6), 4)
    (0.5, 0.8808)
    """
    return 1 / (1 + math.exp(-(score_i - score_j) / scale))


def majority(votes: list[bool]) -> float:
    """Share of True votes (0.5 on an empty list).

    >>> majority([True, True, False])
    0.6666666666666666
    """
    return sum(votes) / len(votes) if votes else 0.5


def mean_agreement(labels: list[list[bool | None]]) -> float | None:
    """Mean share of items on which two members gave the same label, over all member pairs.

    `labels[m][i]` is member m's label for item i (None = no label, skipped).

    >>> mean_agreement([[True, True, False], [True, False, False]])
    0.6666666666666666
    """
    shares = []
    for a, b in combinations(labels, 2):
        both = [(x, y) for x, y in zip(a, b) if x is not None and y is not None]
        if both:
            shares.append(sum(x == y for x, y in both) / len(both))
    return sum(shares) / len(shares) if shares else None


# Judge evaluation against human labels (rlaif.judges.evaluate, rlaif.judges.measure, the training evaluations)

ECE_BINS = 10
ECE_RANGE = (0.5, 1.0)  # binary confidence max(p, 1 - p) lies here


def pick_score(p: float) -> float:
    """1 when p favours the side it is about, 0 when it favours the other, 0.5 for a tie.

    >>> pick_score(0.7), pick_score(0.2), pick_score(0.5)
    (1.0, 0.0, 0.5)
    """
    return 1.0 if p > 0.5 else 0.0 if p < 0.5 else 0.5


def wilson_interval(share: float | None, n: int, z: float = 1.96) -> list[float] | None:
    """95% Wilson score interval of a share measured on n rows (how far chance alone reaches).

    >>> wilson_interval(0.6, 50)
    [0.4618, 0.7239]
    >>> wilson_interval(None, 0) is None
    True
    """
    if share is None or n == 0:
        return None
    centre = (share + z * z / (2 * n)) / (1 + z * z / n)
    half = z * math.sqrt(share * (1 - share) / n + z * z / (4 * n * n)) / (1 + z * z / n)
    return [round(centre - half, 4), round(centre + half, 4)]


def cohen_kappa(labels_1: Sequence[Any], labels_2: Sequence[Any]) -> float | None:
    """Cohen's kappa between two raters' labels on the same rows (any hashable labels).

    (observed agreement - chance agreement) / (1 - chance agreement), where chance agreement
    comes from each rater's own label frequencies. None when it is undefined (no rows, or both
    raters always give the same single label).

    >>> cohen_kappa(["a", "a", "b", "b"], ["a", "a", "b", "b"])
    1.0
    >>> cohen_kappa(["a", "b", "a", "b"], ["a", "a", "b", "b"])
    0.0
    >>> round(cohen_kappa(["a", "a", "a", "b"], ["a", "a", "b", "b"]), 4)
    0.5
    >>> cohen_kappa(["a", "a"], ["a", "a"]) is None
    True
    """
    n = len(labels_1)
    if n == 0 or n != len(labels_2):
        return None
    observed = sum(x == y for x, y in zip(labels_1, labels_2)) / n
    chance = sum((list(labels_1).count(k) / n) * (list(labels_2).count(k) / n) for k in set(labels_1) | set(labels_2))
    if chance >= 1.0:
        return None
    return (observed - chance) / (1 - chance)


def expected_calibration_error(p_chosen: Sequence[float], bins: int = ECE_BINS) -> float | None:
    """ECE of the judge's soft labels against the human labels.

    Per row: confidence = max(p, 1 - p) of p(human-chosen), in [0.5, 1]; correctness =
    `pick_score(p)` (1 right, 0 wrong, 0.5 for a tie at confidence 0.5). Rows fall into `bins`
    equal-width bins of confidence over [0.5, 1] (the last bin includes 1.0); ECE is the
    row-weighted mean of |mean correctness - mean confidence| over the bins.

    >>> expected_calibration_error([1.0, 0.0])  # certain, right once and wrong once
    0.5
    >>> expected_calibration_error([0.5, 0.5])  # ties: confidence 0.5, half right
    0.0
    >>> round(expected_calibration_error([0.8, 0.8, 0.8, 0.2, 0.6]), 4)  # 4 rows at 0.8 (3 right), 1 at 0.6
    0.12
    """
    if not p_chosen:
        return None
    low, high = ECE_RANGE
    grouped: dict[int, list[tuple[float, float]]] = {}
    for p in p_chosen:
        confidence = max(p, 1 - p)
        index = min(int(round((confidence - low) / (high - low) * bins, 9)), bins - 1)  # round: 0.55 is bin 1
        grouped.setdefault(index, []).append((confidence, pick_score(p)))
    total = 0.0
    for rows in grouped.values():
        gap = abs(sum(c for c, _ in rows) / len(rows) - sum(s for _, s in rows) / len(rows))
        total += len(rows) * gap
    return total / len(p_chosen)


def binomial_tail(successes: int, trials: int) -> float:
    """P(X >= successes) for X ~ Binomial(trials, 1/2), exactly: the one-sided p-value of `successes`
    against chance (scipy.stats.binomtest(successes, trials, 0.5, alternative="greater").pvalue).

    >>> round(binomial_tail(22, 40), 4), round(binomial_tail(26, 40), 4), binomial_tail(0, 0)
    (0.3179, 0.0403, 1.0)
    """
    if successes <= 0 or trials == 0:
        return 1.0
    term, total = math.comb(trials, successes), 0
    for i in range(successes, trials + 1):
        total += term
        term = term * (trials - i) // (i + 1)
    return total / 2**trials
