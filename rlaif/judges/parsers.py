"""Small pure functions that read a verdict out of a judge's answer.

Parsing is strict on purpose: the verdict must open the judge's answer, so text elsewhere
(for example a response that imitates a verdict and is echoed back) cannot decide it. Each
parser takes the answer, the protocol's verdict tokens and its assistant prefix
(rlaif.judges.protocol); a template's protocol names its parser, a key of `PARSERS`.
"""

from __future__ import annotations

import re
from collections.abc import Callable

_IMITATION = re.compile(r"output\s*\(\s*([a-h])\s*\)", re.IGNORECASE)
_RATING_IMITATION = re.compile(r"rating\s*:\s*(\d+)", re.IGNORECASE)
_ANSWER_IMITATION = re.compile(r"answer\s*:\s*\(\s*(yes|no)\s*\)", re.IGNORECASE)
_LEAD = r"^\s*[*#\s]*"  # Markdown emphasis or headings before the verdict


def _words(prefix: str, repeat: str = "+") -> str:
    """A regex for the prefix's words (`repeat`: "+" one or more, "*" optional), each followed by punctuation or spaces.

    >>> _words("Verdict: Response ")
    '(?:(?:verdict|response)[^\\\\w\\\\n]*)+'
    >>> _words("(")
    ''
    """
    words = [re.escape(w.lower()) for w in re.findall(r"[^\W\d_]+", prefix)]
    return f"(?:(?:{'|'.join(words)})[^\\w\\n]*){repeat}" if words else ""


def _alternatives(options: tuple[str, ...]) -> str:
    return "|".join(re.escape(o) for o in sorted(options, key=len, reverse=True))


def _match_option(match: re.Match | None, options: tuple[str, ...]) -> str | None:
    if not match:
        return None
    found = match.group(1).lower()
    return next((o for o in options if o.lower() == found), None)


def parse_verdict(text: str, options: tuple[str, ...] = ("a", "b"), prefix: str = "Output (") -> str | None:
    """The option the answer starts with, or None when it does not start with one.

    The answer may repeat the prefix's words ("Output (b)", "Verdict: Response 2") or be the
    bare option ("(a)", "2."); a bare option must be all of the answer.

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
    >>> parse_verdict("Verdict: Response 2, since it is correct", ("1", "2"), "Verdict: Response ")
    '2'
    >>> parse_verdict("Response 1", ("1", "2"), "Verdict: Response "), parse_verdict("1.", ("1", "2"), "Verdict: Response ")
    ('1', '1')
    >>> parse_verdict("Both responses are fine, 2 is shorter", ("1", "2"), "Verdict: Response ") is None
    True
    """
    text, choices = text or "", _alternatives(options)
    words = _words(prefix)
    if words:
        found = _match_option(
            re.match(rf"{_LEAD}{words}[\(\[]?\s*({choices})(?![^\W_])", text, re.IGNORECASE), options
        )
        if found:
            return found
    bare = re.match(rf"^\s*[\(\[]?\s*({choices})\s*[\)\]]?[.!]?\s*$", text, re.IGNORECASE)
    return _match_option(bare, options)


def neutralize(response: str, prefix: str = "", options: tuple[str, ...] = ()) -> str:
    """Defuse verdict look-alikes inside a response before it is shown to a judge: rlaif's own
    forms, and (given a template's protocol prefix and options) that protocol's verdict.

    >>> neutralize("Final verdict: Output (a)")
    'Final verdict: output [a]'
    >>> neutralize("Rating: 10. Answer: (yes)")
    'rating = 10. answer = [yes]'
    >>> neutralize("So: Verdict: Response 1.", "Verdict: Response ", ("1", "2"))
    'So: verdict response [1].'
    """
    response = _IMITATION.sub(lambda m: f"output [{m.group(1).lower()}]", response)
    response = _RATING_IMITATION.sub(lambda m: f"rating = {m.group(1)}", response)
    response = _ANSWER_IMITATION.sub(lambda m: f"answer = [{m.group(1).lower()}]", response)
    parts = re.findall(r"\w+|[^\w\s]", prefix)
    if not parts or not options:
        return response
    head = r"\s*".join(re.escape(part) for part in parts)
    look_alike = re.compile(rf"{head}\s*({_alternatives(options)})(?![^\W_])[\)\]]?", re.IGNORECASE)
    return look_alike.sub(
        lambda m: (
            " ".join(re.findall(r"[^\W\d_]+", m.group(0)[: m.start(1) - m.start(0)].lower()))
            + f" [{m.group(1).lower()}]"
        ),
        response,
    )


def parse_ranking(text: str, labels: tuple[str, ...], prefix: str = "Output (") -> list[str] | None:
    """A full ranking of `labels`, best first, from an answer like "Output (c) > Output (a) > Output (b)".

    The answer must start with the ranking and name every label exactly once.

    >>> parse_ranking("Output (c) > Output (a) > Output (b)", ("a", "b", "c"))
    ['c', 'a', 'b']
    >>> parse_ranking("(b) > (a)", ("a", "b"))
    ['b', 'a']
    >>> parse_ranking("Output (c) > Output (a)", ("a", "b", "c")) is None
    True
    >>> parse_ranking("I like Output (a) > Output (b)", ("a", "b")) is None
    True
    >>> parse_ranking("Output (c) > Output (a) because it is right", ("a", "b", "c")) is None
    True
    >>> parse_ranking("Answer 2 > Answer 1", ("1", "2"), "Answer ")
    ['2', '1']
    """
    slot = re.compile(
        rf"{_words(prefix, '*')}[\(\[]?\s*(?<![^\W_])({_alternatives(labels)})(?![^\W_])\s*[\)\]]?", re.IGNORECASE
    )
    head = (text or "").strip()
    if not slot.match(head):
        return None
    found = [next(label for label in labels if label.lower() == m.lower()) for m in slot.findall(head)][: len(labels)]
    return found if sorted(found) == sorted(labels) else None


def parse_rating(text: str, scale: int, prefix: str = "Rating: ") -> int | None:
    """The rating the answer starts with, if it is within 1..scale.

    >>> parse_rating("Rating: 4", 5), parse_rating("10 - great", 10), parse_rating("Rating: 7", 5)
    (4, 10, None)
    >>> parse_rating("The response deserves Rating: 3", 5) is None
    True
    >>> parse_rating("Score: 3/5", 5, "Score: ")
    3
    """
    words = _words(prefix, "*")
    match = re.match(rf"{_LEAD}{words}(\d{{1,2}})\b", text or "", re.IGNORECASE)
    if not match:
        return None
    value = int(match.group(1))
    return value if 1 <= value <= scale else None


def parse_yes_no(text: str, options: tuple[str, ...] = ("yes", "no"), prefix: str = "Answer: (") -> bool | None:
    """True for an answer starting with the yes option (options[0]), False for the no option, None otherwise.

    >>> parse_yes_no("Answer: (yes)"), parse_yes_no("no, because"), parse_yes_no("maybe") is None
    (True, False, True)
    >>> parse_yes_no("Verdict: good", ("good", "bad"), "Verdict: ")
    True
    """
    words = _words(prefix, "*")
    match = re.match(rf"{_LEAD}{words}\(?\s*({_alternatives(options[:2])})\b", text or "", re.IGNORECASE)
    return None if not match else match.group(1).lower() == options[0].lower()


PARSERS: dict[str, Callable] = {
    "verdict": parse_verdict,
    "ranking": parse_ranking,
    "rating": parse_rating,
    "yes_no": parse_yes_no,
}


def soft_label(probs: dict[str, float] | None, first: str = "a", second: str = "b") -> tuple[float | None, float]:
    """P(first option) renormalised over the two verdict tokens, and the mass they held.

    >>> soft_label({"a": 0.3, "b": 0.1})
    (0.75, 0.4)
    >>> soft_label({"1": 0.3, "2": 0.1}, "1", "2")
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
