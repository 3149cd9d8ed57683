"""Near-duplicate texts: character-shingle Jaccard similarity, searched with MinHash LSH (datasketch).

Two texts are near-duplicates when the Jaccard similarity of their character 5-grams (after
lower-casing and dropping punctuation) reaches a threshold AND they contain the same numbers in
the same order. The number rule keeps "What is 17 * 23?" and "What is 17 * 24?" apart (different
tasks), and likewise two answers that differ only in the result of a sum - where the whole
preference may lie.

MinHash LSH finds candidates among many texts without comparing every pair; each candidate is
then checked exactly, so a reported duplicate is never an LSH false positive. The index uses a
lower LSH threshold than the one asked for (`recall_margin`), which makes missed duplicates rare.
Everything is deterministic: the permutations come from a fixed seed.
"""

from __future__ import annotations

import re
from collections.abc import Hashable
from dataclasses import dataclass
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from datasketch import MinHash

from rlaif.quality.text import jaccard, shingles

_NUMBER = re.compile(r"\d+(?:[.,]\d+)*")


def numbers(text: str) -> tuple[str, ...]:
    """The numbers in a text, in order.

    >>> numbers("Add 17 and 2.5, then 1,000.")
    ('17', '2.5', '1,000')
    """
    return tuple(_NUMBER.findall(text))


@dataclass(frozen=True)
class Fingerprint:
    """What near-duplicate checks compare: the shingle set and the numbers of a text."""

    shingles: frozenset[str]
    numbers: tuple[str, ...]

    @classmethod
    def of(cls, text: str, k: int = 5) -> Fingerprint:
        return cls(shingles(text, k), numbers(text))

    def similarity(self, other: Fingerprint) -> float:
        """Jaccard similarity of the shingles; 0.0 when the numbers differ.

        >>> Fingerprint.of("The answer is 42.").similarity(Fingerprint.of("the answer is 42"))
        1.0
        >>> Fingerprint.of("The answer is 42.").similarity(Fingerprint.of("The answer is 43."))
        0.0
        """
        return jaccard(self.shingles, other.shingles) if self.numbers == other.numbers else 0.0


def similarity(a: str, b: str, k: int = 5) -> float:
    """Near-duplicate similarity of two texts (see the module docstring).

    >>> similarity("Name three primary colours.", "Name three primary colors!") > 0.7
    True
    """
    return Fingerprint.of(a, k).similarity(Fingerprint.of(b, k))


def minhash(items: frozenset[str], num_perm: int = 128, seed: int = 1) -> MinHash:
    """The MinHash signature of a shingle set (fixed seed: same input, same signature).

    >>> minhash(frozenset({"abc", "bcd"})).jaccard(minhash(frozenset({"bcd", "abc"})))
    1.0
    """
    from datasketch import MinHash  # imported when used: 1.4 s with scipy, paid only with dedup on

    signature = MinHash(num_perm=num_perm, seed=seed)
    signature.update_batch([item.encode("utf-8") for item in sorted(items)])
    return signature


class NearDuplicateIndex:
    """Texts added so far, searchable for near-duplicates of a new text.

    >>> index = NearDuplicateIndex(threshold=0.8)
    >>> index.add("q1", "What is the capital of France?")
    >>> index.find("what is the capital of france")
    ('q1', 1.0)
    >>> index.find("Name three prime numbers greater than ten.") is None
    True
    """

    def __init__(
        self, threshold: float, k: int = 5, num_perm: int = 128, seed: int = 1, recall_margin: float = 0.15
    ) -> None:
        from datasketch import MinHashLSH

        self.threshold, self.k, self.num_perm, self.seed = threshold, k, num_perm, seed
        self._lsh = MinHashLSH(threshold=min(0.95, max(0.05, threshold - recall_margin)), num_perm=num_perm)
        self._prints: dict[Hashable, Fingerprint] = {}
        self._order: dict[Hashable, int] = {}

    def __len__(self) -> int:
        return len(self._prints)

    def add(self, key: Hashable, text: str) -> None:
        """Index a text under a unique key (texts with no letters or digits are not indexed)."""
        fingerprint = Fingerprint.of(text, self.k)
        if not fingerprint.shingles or key in self._prints:
            return
        self._order[key] = len(self._order)
        self._prints[key] = fingerprint
        self._lsh.insert(key, minhash(fingerprint.shingles, self.num_perm, self.seed))

    def find(self, text: str) -> tuple[Hashable, float] | None:
        """The earliest-added text with similarity >= threshold, and that similarity; or None."""
        fingerprint = Fingerprint.of(text, self.k)
        if not fingerprint.shingles or not self._prints:
            return None
        found = []
        for key in self._lsh.query(minhash(fingerprint.shingles, self.num_perm, self.seed)):
            score = fingerprint.similarity(self._prints[key])
            if score >= self.threshold:
                found.append((self._order[key], key, score))
        if not found:
            return None
        _, key, score = min(found, key=lambda row: row[0])
        return key, round(score, 6)
