"""Length-bias control over a set of kept pairs.

Judges (LLMs and people) prefer longer answers; a dataset in which chosen is nearly always the
longer response teaches a policy to be long. The cap limits the share of kept pairs whose chosen
response is longer (in characters; equal lengths do not count as longer). It drops the
chosen-longer pairs the judge was least sure about first, so the pairs with the strongest
preferences stay. We chose a cap over balancing by length bins: it never drops a pair whose
chosen is the shorter one, has one parameter, and reaches its target exactly.
"""

from __future__ import annotations

import math

from rlaif.core.schema import PreferencePair


def chosen_is_longer(pair: PreferencePair) -> bool:
    return len(pair.chosen[0]["content"]) > len(pair.rejected[0]["content"])


def excess_longer(n_longer: int, n_total: int, max_share: float) -> int:
    """How many chosen-longer pairs to drop so that at most `max_share` of the rest are chosen-longer.

    Dropping k of them leaves (L - k) / (N - k) <= s, so k = ceil((L - s N) / (1 - s)).

    >>> excess_longer(8, 10, 0.6)   # drop 5: 3 of 5 left are longer
    5
    >>> excess_longer(6, 10, 0.6), excess_longer(3, 3, 0.5), excess_longer(3, 3, 1.0)
    (0, 3, 0)
    """
    if n_longer == 0 or max_share >= 1 or n_longer <= max_share * n_total + 1e-9:
        return 0
    return min(n_longer, math.ceil((n_longer - max_share * n_total) / (1 - max_share) - 1e-9))
