"""`rlaif review commit ID`: the people's decisions on a version's pairs as a new version (parents: [ID]).

Each pair's label comes from its reviewers where they picked a response and agree (p_chosen 1.0 for the
response picked, `label_source` "human"), else from the judge (`label_source` "judge"). A kept pair that its
reviewers called a tie or both bad is dropped with that reason; so is one on which reviewers picked different
responses. A dropped pair that reviewers picked a response of is rescued: added with their label. The other
tables are the parent's. The id hashes the rows, the recipe and the parent, so the same decisions give the
same id. The manifest's `review` block: decisions by kind, reviewers, how often the judge agreed with them
(rlaif.review.agreement) and what changed.
"""

from __future__ import annotations

from collections import Counter
from pathlib import Path
from typing import Any

from rlaif.core.errors import StoreError
from rlaif.review import decisions
from rlaif.review.agreement import judge_agreement, reviewer_agreement
from rlaif.review.queue import Item, version_items
from rlaif.store.diff import pair_key, read_table_or_empty
from rlaif.store.versions import TABLES, commit_tables, load_manifest

#: what the parent's manifest passes on to the reviewed version (the rest is the parent's run, not this commit's)
INHERITED = ("recipe", "models", "prompt_templates", "judge", "tokens", "calls", "eval")


def human_labels(standing: dict[tuple[str, str], decisions.Decision]) -> dict[str, dict[str, Any]]:
    """pair key -> {"picked": response id or None, "outcome": "pick" | "tie" | "both_bad" | "reviewers_disagree",
    "reviewers": {name: decision}}, from each reviewer's standing decision (skips are no decision)."""
    by_pair: dict[str, dict[str, decisions.Decision]] = {}
    for (reviewer, pair), line in standing.items():
        if line.decision != "skip":
            by_pair.setdefault(pair, {})[reviewer] = line
    labels = {}
    for pair, lines in by_pair.items():
        answers = {(line.decision, line.picked) for line in lines.values()}
        decision, picked = next(iter(answers)) if len(answers) == 1 else ("reviewers_disagree", None)
        labels[pair] = {"picked": picked, "outcome": decision, "reviewers": lines}
    return labels


def human_row(item: Item, picked: str, template: dict[str, Any]) -> dict[str, Any]:
    """A pairs row labelled by people: the picked response chosen, p_chosen 1.0 and margin 1.0."""
    chosen, rejected = (item.a_id, item.b_id) if picked == item.a_id else (item.b_id, item.a_id)
    text = {item.a_id: item.a_text, item.b_id: item.b_text}
    policy = {item.a_id: item.a_policy, item.b_id: item.b_policy}
    return {
        **template,
        "prompt": item.prompt,
        "chosen": [{"role": "assistant", "content": text[chosen]}],
        "rejected": [{"role": "assistant", "content": text[rejected]}],
        "prompt_id": item.prompt_id,
        "chosen_id": chosen,
        "rejected_id": rejected,
        "chosen_policy": policy[chosen],
        "rejected_policy": policy[rejected],
        "p_chosen": 1.0,
        "margin": 1.0,
        "p_chosen_raw_ab": None,  # the judge's per-order figures do not describe a person's label
        "p_chosen_raw_ba": None,
        "label_source": "human",
    }


def reviewed_rows(items: list[Item], parent_pairs: list[dict], labels: dict[str, dict]) -> tuple[list[dict], Counter]:
    """The new version's pairs (the parent's order, then rescued pairs in queue order) and what happened to each."""
    outcomes: Counter = Counter()
    by_key = {item.key: item for item in items}
    template = {"judge_model": None, "judge_template_sha256": None}  # a rescued pair: no judge label in the version
    rows = []
    for pair in parent_pairs:
        item = by_key[pair_key(pair)]
        label = labels.get(item.key)
        judge_fields = {
            "judge_model": pair.get("judge_model"),
            "judge_template_sha256": pair.get("judge_template_sha256"),
        }
        if label is None:
            rows.append({**pair, "label_source": "judge"})
            outcomes["kept: judge label"] += 1
        elif label["outcome"] == "pick":
            rows.append(human_row(item, label["picked"], judge_fields))
            outcomes["kept: judge confirmed" if label["picked"] == item.judge_choice else "kept: flipped"] += 1
        else:
            outcomes[f"dropped: {label['outcome']}"] += 1
    for item in items:
        label = labels.get(item.key)
        if not item.kept and label and label["outcome"] == "pick":
            rows.append(human_row(item, label["picked"], template))
            outcomes["rescued"] += 1
    return rows, outcomes


def reviewed_counts(counts: dict[str, Any], items: list[Item], labels: dict[str, dict], kept: int) -> dict[str, Any]:
    """The parent's counts with the review's changes: a kept pair people dropped counts under `review_<why>`, a
    rescued one leaves its filter's reason; `in` stays kept + every drop."""
    dropped = Counter(counts.get("dropped") or {})
    for item in items:
        label = labels.get(item.key)
        if label and item.kept and label["outcome"] != "pick":
            dropped[f"review_{label['outcome']}"] += 1
        elif label and not item.kept and label["outcome"] == "pick" and dropped.get(item.reason):
            dropped[item.reason] -= 1
    return {**counts, "kept": kept, "dropped": {reason: n for reason, n in dropped.items() if n}}


def review_block(items: list[Item], labels: dict[str, dict], standing: dict, outcomes: Counter) -> dict[str, Any]:
    by_key = {item.key: item for item in items}
    comparisons = [
        (min(by_key[pair].a_id, by_key[pair].b_id), by_key[pair].judge_choice, line.picked, by_key[pair].margin or 0.0)
        for (_, pair), line in sorted(standing.items())
        if line.decision == "pick" and pair in by_key and by_key[pair].judge_choice is not None
    ]
    picks: dict[str, dict[str, str]] = {}
    for (reviewer, pair), line in standing.items():
        if line.decision == "pick":
            picks.setdefault(pair, {})[reviewer] = line.picked
    return {
        "decisions": dict(sorted(Counter(line.decision for line in standing.values()).items())),
        "reviewers": sorted({reviewer for reviewer, _ in standing}),
        "pairs_reviewed": len(labels),
        "outcomes": dict(sorted(outcomes.items())),
        "judge_agreement": judge_agreement(comparisons),
        "reviewer_agreement": reviewer_agreement(picks),
    }


def commit_review(store: str | Path, version_id: str) -> tuple[str, bool, dict[str, Any]]:
    """The reviewed version of `version_id`: (its id, created, its manifest). StoreError when nothing was decided."""
    parent = load_manifest(store, version_id)
    standing = decisions.current(decisions.read(store, version_id))
    if not standing:
        raise StoreError(
            f"nobody has reviewed {version_id} yet - run `rlaif review {version_id}` and decide some pairs first"
        )
    items = version_items(store, version_id)
    labels = human_labels(standing)
    rows, outcomes = reviewed_rows(items, read_table_or_empty(store, version_id, "pairs"), labels)
    manifest = {key: parent[key] for key in INHERITED if key in parent}
    manifest["parents"] = [version_id]
    manifest["counts"] = reviewed_counts(parent.get("counts") or {}, items, labels, len(rows))
    manifest["review"] = review_block(items, labels, standing, outcomes)
    tables = {name: read_table_or_empty(store, version_id, name) for name in TABLES if name != "pairs"}
    new_id, created = commit_tables(
        store, parent.get("name") or version_id.rsplit("-", 1)[0], {**tables, "pairs": rows}, manifest
    )
    return new_id, created, load_manifest(store, new_id)
