"""Text checks on single responses: normalisation, shingles, refusal/boilerplate, language.

All functions here are pure and deterministic; the language model (py3langid, shipped inside the
PyPI package, no download) is loaded once on first use.
"""

from __future__ import annotations

import re
import unicodedata
from functools import cache, lru_cache

# Refusals: the response declines the task. Matched case-insensitively anywhere in the response
# (apostrophes normalised to '). Off by default: refusing is the right answer to a harmful prompt.
REFUSAL_PATTERNS: tuple[str, ...] = (
    r"\bI(?:'m| am) (?:sorry|afraid),? (?:but )?I (?:can(?:'t|not)|won't|am (?:not able|unable)|'m (?:not able|unable))\b",
    r"\bI (?:can(?:'t|not)|won't|will not) (?:help|assist) (?:you )?with (?:that|this)\b",
    r"\bI (?:can(?:'t|not)|won't|will not|must decline to|am unable to|'m unable to) (?:provide|fulfil+|comply with|complete) (?:that|this|your) (?:request|task)\b",
    r"\bI(?:'m| am) not (?:able|allowed|permitted) to (?:help|assist|answer|provide|do that)\b",
    r"\bI (?:must|have to) (?:respectfully )?(?:decline|refuse)\b",
    r"\b(?:it|this) (?:would be|is) (?:inappropriate|unethical|illegal) for me to\b",
)

# Boilerplate: an assistant talking about itself instead of answering ("As an AI language
# model, ..."), knowledge-cutoff and capability disclaimers. Off by default (see FilterSpec).
BOILERPLATE_PATTERNS: tuple[str, ...] = (
    r"\bas an (?:ai|artificial intelligence)(?: language model| model| assistant| chatbot)?\b",
    r"\bas a (?:large )?language model\b",
    r"\bI(?:'m| am) (?:just |only )?an? (?:ai|artificial intelligence|language model|large language model)\b",
    r"\bI (?:do not|don't) have (?:personal )?(?:opinions|feelings|emotions|beliefs)\b",
    r"\bmy (?:knowledge|training)(?: data)? (?:cut-?off|cutoff)\b",
    r"\bI (?:do not|don't) have (?:access to )?(?:real-time|the internet|browsing)\b",
)

_APOSTROPHES = str.maketrans({"\u2019": "'", "\u2018": "'", "\u02bc": "'", "`": "'"})
_NON_WORD = re.compile(r"[\W_]+", re.UNICODE)
_CODE_BLOCK = re.compile(r"```.*?(?:```|$)", re.DOTALL)


def squash(text: str) -> str:
    """Whitespace collapsed; the form used for exact-duplicate checks.

    >>> squash("  two\\n words ")
    'two words'
    """
    return " ".join(text.split())


def normalize(text: str) -> str:
    """Lower case, Unicode NFKC, punctuation and whitespace collapsed to single spaces.

    >>> normalize("Hello,   WORLD!! It's  me.")
    'hello world it s me'
    """
    text = unicodedata.normalize("NFKC", text).lower()
    return _NON_WORD.sub(" ", text).strip()


def words(text: str) -> list[str]:
    """Normalised word tokens.

    >>> words("Don't panic!")
    ['don', 't', 'panic']
    """
    return normalize(text).split()


def shingles(text: str, k: int = 5) -> frozenset[str]:
    """Character k-grams of the normalised text (the whole text when shorter than k).

    Character shingles suit short texts such as prompts and answers: changing one word of a
    sentence changes only the few k-grams that touch it.

    >>> sorted(shingles("Ab, c!", 3))
    ['ab ', 'b c']
    >>> shingles("", 3)
    frozenset()
    """
    norm = normalize(text)
    if len(norm) <= k:
        return frozenset([norm]) if norm else frozenset()
    return frozenset(norm[i : i + k] for i in range(len(norm) - k + 1))


def jaccard(a: frozenset[str], b: frozenset[str]) -> float:
    """Exact Jaccard similarity of two shingle sets (1.0 for two empty sets).

    >>> jaccard(frozenset("abc"), frozenset("bcd"))
    0.5
    """
    if not a and not b:
        return 1.0
    return len(a & b) / len(a | b)


@lru_cache(maxsize=64)
def compile_patterns(patterns: tuple[str, ...]) -> re.Pattern:
    """One case-insensitive regex matching any of the patterns."""
    return re.compile("|".join(f"(?:{p})" for p in patterns), re.IGNORECASE)


def matches_any(text: str, patterns: tuple[str, ...]) -> bool:
    """True when any pattern occurs in the text (apostrophes normalised, case ignored).

    >>> matches_any("I\u2019m sorry, but I can\u2019t help with that.", REFUSAL_PATTERNS)
    True
    >>> matches_any("I'm sorry to hear that. Here is a recipe:", REFUSAL_PATTERNS)
    False
    """
    return bool(patterns) and compile_patterns(tuple(patterns)).search(text.translate(_APOSTROPHES)) is not None


@cache
def _identifier():
    from py3langid.langid import MODEL_FILE, LanguageIdentifier

    return LanguageIdentifier.from_model_file(MODEL_FILE, norm_probs=True)


def prose(text: str) -> str:
    """The text without fenced code blocks and inline code (code says little about language).

    >>> prose("Run this:\\n```py\\nprint(1)\\n```\\nand `x` then.")
    'Run this:\\n\\nand  then.'
    """
    return re.sub(r"`[^`\n]*`", "", _CODE_BLOCK.sub("", text))


@lru_cache(maxsize=65536)
def detect_language(text: str) -> tuple[str, float]:
    """(ISO 639-1 code, probability) by py3langid for the prose part of the text.

    >>> detect_language("The weather is lovely today and we are going for a walk in the park.")[0]
    'en'
    >>> detect_language("Il fait très beau aujourd'hui et nous allons nous promener dans le parc.")[0]
    'fr'
    """
    language, probability = _identifier().classify(prose(text))
    return language, float(probability)


def wrong_language(text: str, allowed: tuple[str, ...], min_chars: int, min_confidence: float) -> bool:
    """True only when the detector is confident the text is in a language not allowed.

    Texts whose prose part is shorter than `min_chars` are never judged (too short to tell).

    >>> wrong_language("Das ist ein ganz normaler deutscher Satz über das Wetter.", ("en",), 20, 0.5)
    True
    >>> wrong_language("Ja.", ("en",), 20, 0.5)
    False
    """
    if len(prose(text).strip()) < min_chars:
        return False
    language, probability = detect_language(text)
    return language not in allowed and probability >= min_confidence


def check_languages(codes: list[str] | None) -> list[str] | None:
    """Validate language codes against the detector's list (for the recipe); lower-cased.

    >>> check_languages(["EN", "de"])
    ['en', 'de']
    >>> check_languages(["english"])
    Traceback (most recent call last):
    ...
    ValueError: unknown language code 'english' - use ISO 639-1 codes such as en, de, fr, es, zh
    """
    if codes is None:
        return None
    known = set(_identifier().labels)
    codes = [str(code).strip().lower() for code in codes]
    for code in codes:
        if code not in known:
            raise ValueError(f"unknown language code {code!r} - use ISO 639-1 codes such as en, de, fr, es, zh")
    return codes


def check_patterns(patterns: list[str]) -> list[str]:
    """Validate regexes (for the recipe).

    >>> check_patterns([r"\\bI can't\\b"])
    ["\\\\bI can't\\\\b"]
    >>> check_patterns(["(unclosed"])
    Traceback (most recent call last):
    ...
    ValueError: not a valid regular expression '(unclosed' (missing ), unterminated subpattern at position 0) - escape ( ) [ ] . * + ? with a backslash
    """
    for pattern in patterns:
        try:
            re.compile(pattern)
        except re.error as exc:
            raise ValueError(
                f"not a valid regular expression {pattern!r} ({exc}) - escape ( ) [ ] . * + ? with a backslash"
            ) from None
    return patterns
