"""The pairs of a dataset version a person reviews (`rlaif review`), and the order they come in.

Every pair the judge judged is an item: the kept ones (the version's `pairs`) and the dropped ones (its
`judgments` not kept: inconsistent orders, a low margin, a failed judgment, a later filter), each with the
prompt, both responses, the judge's choice and its debiased probability, and the signals of doubt:

- `uncertain` (the default queue): kept pairs, the smallest margin first (closest to a coin toss); among equal
  margins, pairs whose two orders disagreed before debiasing, then jury splits (members on both sides), then
  pairs where the judge chose the shorter response;
- `dropped`: the pairs the filters dropped, the largest margin first (the likeliest to rescue);
- `disagreements`: pairs two reviewers decided differently;
- `all`: kept, then dropped.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from rlaif.core.errors import InputError
from rlaif.review.decisions import Decision, current
from rlaif.store.diff import pair_key, read_table_or_empty, responses_key, text_of
from rlaif.store.versions import load_manifest

QUEUES = ("uncertain", "dropped", "disagreements", "all")


@dataclass(frozen=True)
class Item:
    """One pair to review: ids and texts of the prompt and both responses, and what the judge said."""

    key: str
    prompt_id: str
    prompt: list[dict[str, Any]]  # the chat messages (all turns)
    a_id: str
    b_id: str
    a_text: str
    b_text: str
    a_policy: str
    b_policy: str
    kept: bool
    reason: str | None  # why the filters dropped it (None: kept)
    judge_choice: str | None  # the response id the judge preferred (None: a tie or a failed judgment)
    judge_p: float | None  # P(judge_choice is better), debiased
    margin: float | None
    orders_disagreed: bool  # the two presentation orders preferred different responses before debiasing
    shorter_chosen: bool  # the judge chose the shorter response
    jury_split: bool = False  # a jury's members preferred different responses


def version_items(store: str | Path, version_id: str) -> list[Item]:
    """Every judged pair of the version as an Item (kept pairs first, in the version's order)."""
    manifest = load_manifest(store, version_id)  # an unknown id: the store's error listing the known ones
    min_margin = ((manifest.get("recipe") or {}).get("filters") or {}).get("min_margin") or 0.0
    prompts = {row["id"]: row["messages"] for row in read_table_or_empty(store, version_id, "prompts")}
    responses = {row_id(row): row for row in read_table_or_empty(store, version_id, "generations")}
    kept = {pair_key(p): p for p in read_table_or_empty(store, version_id, "pairs")}
    judgments = {
        responses_key(j["prompt_id"], j["a_id"], j["b_id"]): j
        for j in read_table_or_empty(store, version_id, "judgments")
    }
    items = [_kept_item(pair, key, responses) for key, pair in kept.items()]
    for key, judged in judgments.items():
        if key not in kept and judged["a_id"] in responses and judged["b_id"] in responses:
            items.append(_dropped_item(judged, key, prompts.get(judged["prompt_id"], []), responses, min_margin))
    return [replace(item, jury_split=jury_split(judgments.get(item.key))) for item in items]


def jury_split(judged: dict[str, Any] | None) -> bool:
    """Whether a jury's members preferred different responses (rlaif.judges.jury writes each member's p_a into
    raw_ab as "label: p; label: p").

    >>> jury_split({"judge_model": "jury(a,b)", "raw_ab": "a: 0.7; b: 0.4"}), jury_split({"judge_model": "m", "raw_ab": "x"})
    (True, False)
    """
    if not judged or not str(judged.get("judge_model") or "").startswith("jury("):
        return False
    votes = [float(p) for p in re.findall(r": (\d+(?:\.\d+)?(?:e-?\d+)?)", str(judged.get("raw_ab") or ""))]
    return any(p > 0.5 for p in votes) and any(p < 0.5 for p in votes)


def row_id(generation: dict[str, Any]) -> str:
    """A response's id as pairs and judgments name it (rlaif.core.schema.Generation.id)."""
    return f"{generation['prompt_id']}/{generation['policy']}/{generation['sample_index']}"


def _kept_item(pair: dict[str, Any], key: str, responses: dict[str, dict]) -> Item:
    chosen, rejected = text_of(pair["chosen"]), text_of(pair["rejected"])
    raw_ab, raw_ba = pair.get("p_chosen_raw_ab"), pair.get("p_chosen_raw_ba")
    return Item(
        key=key,
        prompt_id=pair["prompt_id"],
        prompt=list(pair["prompt"]),
        a_id=pair["chosen_id"],
        b_id=pair["rejected_id"],
        a_text=chosen,
        b_text=rejected,
        a_policy=pair.get("chosen_policy") or "",
        b_policy=pair.get("rejected_policy") or "",
        kept=True,
        reason=None,
        judge_choice=pair["chosen_id"],
        judge_p=pair.get("p_chosen"),
        margin=pair.get("margin"),
        orders_disagreed=raw_ab is not None and raw_ba is not None and (raw_ab > 0.5) != (raw_ba > 0.5),
        shorter_chosen=len(chosen) < len(rejected),
    )


def _dropped_item(
    judged: dict[str, Any], key: str, prompt: list, responses: dict[str, dict], min_margin: float
) -> Item:
    a, b = responses[judged["a_id"]], responses[judged["b_id"]]
    p_a, ab, ba = judged.get("p_a"), judged.get("p_a_ab"), judged.get("p_a_ba")
    choice = None if p_a is None or p_a == 0.5 else (judged["a_id"] if p_a > 0.5 else judged["b_id"])
    chosen_text = a["text"] if choice == judged["a_id"] else b["text"]
    other_text = b["text"] if choice == judged["a_id"] else a["text"]
    return Item(
        key=key,
        prompt_id=judged["prompt_id"],
        prompt=list(prompt),
        a_id=judged["a_id"],
        b_id=judged["b_id"],
        a_text=a["text"],
        b_text=b["text"],
        a_policy=a.get("policy") or "",
        b_policy=b.get("policy") or "",
        kept=False,
        reason=drop_reason(judged, min_margin),
        judge_choice=choice,
        judge_p=None if choice is None else max(p_a, 1 - p_a),
        margin=None if p_a is None else abs(2 * p_a - 1),
        orders_disagreed=ab is not None and ba is not None and (ab > 0.5) != (ba > 0.5),
        shorter_chosen=choice is not None and len(chosen_text) < len(other_text),
    )


def drop_reason(judged: dict[str, Any], min_margin: float) -> str:
    """Why a judged pair that is not in the version was dropped, from its judgment row and the recipe's
    `min_margin` (the order of rlaif.quality.filters.post_judge_reason; else a filter after it: the length cap).

    >>> drop_reason({"p_a": 0.52, "consistent": True}, 0.1), drop_reason({"p_a": 0.9, "consistent": False}, 0.1)
    ('low_margin', 'inconsistent')
    """
    if judged.get("error") or judged.get("p_a") is None:
        return "judge_failed"
    if judged.get("consistent") is False:
        return "inconsistent"
    return "low_margin" if abs(2 * judged["p_a"] - 1) < max(min_margin, 1e-9) else "length_cap"


def doubt(item: Item) -> tuple:
    """The uncertain queue's order: the smallest margin, then orders that disagreed, a jury split, a shorter choice."""
    margin = item.margin if item.margin is not None else 0.0
    return (margin, not item.orders_disagreed, not item.jury_split, not item.shorter_chosen)


def ordered(items: list[Item], queue: str, decisions: list[Decision] = ()) -> list[Item]:
    """The items of `queue` (one of QUEUES) in review order."""
    if queue not in QUEUES:
        raise InputError("--queue", f"unknown queue {queue!r}", fix=f"use one of {', '.join(QUEUES)}")
    kept = sorted((i for i in items if i.kept), key=doubt)
    dropped = sorted((i for i in items if not i.kept), key=lambda i: -(i.margin or 0.0))
    if queue == "uncertain":
        return kept
    if queue == "dropped":
        return dropped
    if queue == "all":
        return kept + dropped
    split = disagreeing_pairs(decisions)
    return [item for item in kept + dropped if item.key in split]


def disagreeing_pairs(decisions: list[Decision]) -> set[str]:
    """Pairs on which two reviewers' standing decisions differ (a skip is no decision)."""
    seen: dict[str, set[tuple[str, str | None]]] = {}
    for (_, pair), line in current(decisions).items():
        if line.decision != "skip":
            seen.setdefault(pair, set()).add((line.decision, line.picked))
    return {pair for pair, answers in seen.items() if len(answers) > 1}
