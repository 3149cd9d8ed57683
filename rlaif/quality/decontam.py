"""Decontamination: find prompts that overlap a user-given evaluation set.

A prompt is contaminated when, compared with any evaluation prompt, it
  * is the same text after normalisation (case, punctuation, whitespace), or
  * shares a run of `ngram` consecutive words (13 by default, the GPT-3 convention), or
  * is a near-duplicate: character-shingle Jaccard >= `similarity` with the same numbers
    (MinHash LSH, then an exact check; this catches short prompts that have no 13-gram).
Only user turns are compared: a shared system prompt says nothing about contamination.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from pathlib import Path

from rlaif.core.errors import InputError
from rlaif.core.inputs import chat_messages, jsonl_rows
from rlaif.quality.dedup import NearDuplicateIndex
from rlaif.quality.text import normalize, words


def user_text(prompt: str | list) -> str:
    """The text of a prompt given as a string or as a chat message list (user turns only).

    >>> user_text([{"role": "system", "content": "Be brief."}, {"role": "user", "content": "Hi"}])
    'Hi'
    >>> user_text("Hi")
    'Hi'
    """
    if isinstance(prompt, str):
        return prompt
    return "\n".join(
        m["content"]
        for m in prompt
        if isinstance(m, dict) and m.get("role") == "user" and isinstance(m.get("content"), str)
    )


def ngrams(tokens: list[str], n: int) -> set[str]:
    """Hashes of the word n-grams of a token list (none when it is shorter than n).

    >>> len(ngrams("a b c d".split(), 3)), len(ngrams("a b".split(), 3))
    (2, 0)
    """
    return {
        hashlib.blake2b(" ".join(tokens[i : i + n]).encode(), digest_size=8).hexdigest()
        for i in range(len(tokens) - n + 1)
    }


def read_eval_texts(path: str | Path) -> list[str]:
    """Prompt texts of an evaluation file (JSON Lines; `prompt` as text or messages, or `messages`).

    Rows from preference files (`prompt`/`chosen`/`rejected`) work as they are; only the prompt
    is read. Errors name the file, row and field.
    """
    path = Path(path)
    texts: list[str] = []
    for line_number, row in jsonl_rows(path, "evaluation file", "check filters.decontaminate.path in the recipe"):
        key = "prompt" if isinstance(row, dict) and "prompt" in row else "messages"
        if not isinstance(row, dict) or key not in row:
            raise InputError(
                str(path),
                "needs a 'prompt' (text or messages ending with a user turn) or 'messages'",
                line_number,
                key,
            )
        texts.append(user_text(chat_messages(row[key], str(path), line_number, key)))
    if not texts:
        raise InputError(str(path), "no rows in the evaluation file", fix='add JSON Lines rows with a "prompt" field')
    return texts


@dataclass
class EvalIndex:
    """An evaluation set, indexed for the three contamination checks."""

    ngram: int | None = 13
    similarity: float | None = 0.8
    shingle_chars: int = 5
    num_perm: int = 128
    seed: int = 1
    exact: set[str] = field(default_factory=set)
    grams: set[str] = field(default_factory=set)
    near: NearDuplicateIndex | None = None

    def add(self, key: int, text: str) -> None:
        self.exact.add(normalize(text))
        if self.ngram:
            self.grams |= ngrams(words(text), self.ngram)
        if self.similarity is not None:
            if self.near is None:
                self.near = NearDuplicateIndex(self.similarity, self.shingle_chars, self.num_perm, self.seed)
            self.near.add(key, text)

    def contaminated(self, text: str) -> bool:
        """True when the text overlaps any evaluation prompt (see the module docstring).

        >>> index = EvalIndex(ngram=4, similarity=None)
        >>> index.add(0, "Explain why the sky is blue in simple words.")
        >>> index.contaminated("Please explain why the sky is blue to a child."), index.contaminated("Why is grass green?")
        (True, False)
        """
        if normalize(text) in self.exact:
            return True
        if self.ngram and not self.grams.isdisjoint(ngrams(words(text), self.ngram)):
            return True
        return self.near is not None and self.near.find(text) is not None


def build_eval_index(spec, shingle_chars: int = 5, num_perm: int = 128, seed: int = 1) -> EvalIndex:
    """Read the evaluation file named by a DecontaminateSpec and index it."""
    index = EvalIndex(spec.ngram, spec.similarity, shingle_chars, num_perm, seed)
    for key, text in enumerate(read_eval_texts(spec.path)):
        index.add(key, text)
    return index
