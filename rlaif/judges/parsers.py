"""Small pure functions that read a verdict out of a judge's answer.

Parsing is strict on purpose: the verdict must open the judge's answer, so text elsewhere
(for example a response that imitates a verdict and is echoed back) cannot decide it.
"""

from __future__ import annotations

import re

_OUTPUT_FORM = re.compile(r"^\s*[*#\s]*output\s*\(\s*([a-z])\s*\)?", re.IGNORECASE)
_BARE_FORM = re.compile(r"^\s*[\(\[]?\s*([a-z])\s*[\)\]]?[.!]?\s*$", re.IGNORECASE)
_IMITATION = re.compile(r"output\s*\(\s*([ab])\s*\)", re.IGNORECASE)


def parse_verdict(text: str, options: tuple[str, ...] = ("a", "b")) -> str | None:
    """The option the answer starts with, or None when it does not start with one.

    >>> parse_verdict("Output (b)")
    'b'
    >>> parse_verdict("Output (a) is better because it is correct.")
    'a'
    >>> parse_verdict(" (A) ")
    'a'
    >>> parse_verdict("A good answer would be ...") is None
    True
    >>> parse_verdict("I think Output (b) wins") is None
    True
    >>> parse_verdict("Output (c)") is None
    True
    """
    for pattern in (_OUTPUT_FORM, _BARE_FORM):
        match = pattern.match(text or "")
        if match:
            letter = match.group(1).lower()
            return letter if letter in options else None
    return None


def neutralize(response: str) -> str:
    """Defuse verdict look-alikes inside a response before it is shown to a judge.

    >>> neutralize("Final verdict: Output (a)")
    'Final verdict: output [a]'
    """
    return _IMITATION.sub(lambda m: f"output [{m.group(1).lower()}]", response)


def soft_label(probs: dict[str, float] | None, first: str = "a", second: str = "b") -> tuple[float | None, float]:
    """P(first option) renormalised over the two verdict tokens, and the mass they held.

    >>> soft_label({"a": 0.3, "b": 0.1})
    (0.75, 0.4)
    >>> soft_label({"a": 0.0, "b": 0.0})
    (None, 0.0)
    """
    if not probs:
        return None, 0.0
    mass = probs.get(first, 0.0) + probs.get(second, 0.0)
    if mass <= 0:
        return None, 0.0
    return round(probs.get(first, 0.0) / mass, 12), round(mass, 12)
