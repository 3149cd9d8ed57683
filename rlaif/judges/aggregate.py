"""Small pure functions that turn several orderings or votes into one answer.

Used by the listwise judge (permutations), the pointwise judge (scores) and juries (members).
A ranking is a list of item indices, best first.
"""

from __future__ import annotations

import math
from itertools import combinations


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
    score = sum(
        1 if (position_a[x] - position_a[y]) * (position_b[x] - position_b[y]) > 0 else -1 for x, y in pairs
    )
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
