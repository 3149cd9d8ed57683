"""Typed records that flow through a run: prompts, generations, judgments, preference pairs.

Every record is a plain dataclass so it converts to a Parquet row with `dataclasses.asdict`.
Failures are values: a generation or judgment that failed carries `error` and is counted and
filtered later, never turned into -1, NaN or a silent None row.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, field
from typing import Any

Message = dict[str, str]  # {"role": "user" | "assistant" | "system", "content": str}


def content_hash(obj: Any, length: int = 64) -> str:
    """sha256 of the canonical JSON form of ``obj`` (sorted keys, no spaces).

    >>> content_hash({"b": 1, "a": [1, 2]}, 12) == content_hash({"a": [1, 2], "b": 1}, 12)
    True
    """
    data = json.dumps(obj, sort_keys=True, separators=(",", ":"), ensure_ascii=False, default=str)
    return hashlib.sha256(data.encode()).hexdigest()[:length]


@dataclass(frozen=True)
class Prompt:
    id: str
    messages: list[Message]
    source: str = ""


@dataclass
class Generation:
    """One sampled response of one policy to one prompt.

    Only content: measurements of the run (latency, wall time) are kept out of the rows, which
    the version id hashes, and summed in the manifest's `run` section instead.
    """

    prompt_id: str
    policy: str
    model: str
    sample_index: int
    text: str | None
    finish_reason: str | None
    prompt_tokens: int = 0
    completion_tokens: int = 0
    params: dict[str, Any] = field(default_factory=dict)
    seed: int | None = None
    error: str | None = None

    @property
    def id(self) -> str:
        return f"{self.prompt_id}/{self.policy}/{self.sample_index}"


@dataclass
class OrderVerdict:
    """The judge's answer for one presentation order (which response stood first)."""

    p_first: float | None  # P(the response shown first is better); None when the call failed
    soft: bool  # True when p_first came from verdict-token probabilities
    raw: str  # the judge's raw output (or the top tokens it scored)
    prob_mass: float | None = None  # share of next-token probability on the verdict tokens
    error: str | None = None


@dataclass
class Judgment:
    """A pairwise judgment of responses a and b, made in both orders.

    `p_a_ab` is P(a better) read from the order (a, b); `p_a_ba` from the order (b, a).
    `p_a` is their mean after removing the run's position bias (RLAIF-paper averaging).
    """

    prompt_id: str
    a_id: str
    b_id: str
    p_a_ab: float | None
    p_a_ba: float | None
    soft: bool
    raw_ab: str
    raw_ba: str
    template: str
    template_sha256: str
    judge_model: str
    prob_mass: float | None = None
    p_a: float | None = None
    consistent: bool | None = None
    consistent_raw: bool | None = None
    error: str | None = None

    @property
    def margin(self) -> float | None:
        """|2 p_a - 1|: 0 for a tie, 1 for a certain preference."""
        return None if self.p_a is None else abs(2 * self.p_a - 1)


@dataclass
class PreferencePair:
    """A row of the dataset, in TRL's conversational preference format plus provenance."""

    prompt: list[Message]
    chosen: list[Message]
    rejected: list[Message]
    prompt_id: str
    chosen_id: str
    rejected_id: str
    chosen_policy: str
    rejected_policy: str
    p_chosen: float  # debiased, both-order-averaged probability that chosen is better
    margin: float
    p_chosen_raw_ab: float  # P(chosen better) as judged with chosen shown first, before debiasing
    p_chosen_raw_ba: float  # ... with chosen shown second
    judge_model: str
    judge_template_sha256: str


@dataclass
class Ranking:
    """How a listwise or pointwise judge ordered the responses to one prompt (a `rankings` row)."""

    prompt_id: str
    prompt: list[Message]
    response_ids: list[str]
    responses: list[str]
    policies: list[str]
    scores: list[float]  # higher is better: PL strength, Borda score, or expected rating
    ranks: list[int]  # 1 = best; ties share a rank
    judge: str  # "listwise" | "pointwise" | "binary" | "pairwise"
    agreement: float | None = None  # mean Kendall tau between permutations (listwise) or jury members
    detail: str = ""  # per-permutation / per-aspect / per-member breakdown as JSON text
    error: str | None = None


@dataclass
class Feedback:
    """Binary (KTO-style) feedback on one response (a `feedback` row)."""

    prompt_id: str
    response_id: str
    prompt: list[Message]
    completion: list[Message]
    policy: str
    score: float | None
    label: bool
