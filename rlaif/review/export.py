"""`rlaif review export ID --out FILE.jsonl`: the pairs people picked a response of, as a gold file
(rlaif.core.gold's format: prompt, chosen, rejected), so `rlaif eval-judge RECIPE --gold FILE.jsonl` measures any
judge against your own reviewers on your own data. Pairs on which reviewers disagree are left out."""

from __future__ import annotations

import json
from pathlib import Path

from rlaif.core.errors import StoreError
from rlaif.review import decisions
from rlaif.review.commit import human_labels
from rlaif.review.queue import version_items
from rlaif.store.atomic import write_atomic


def gold_rows(store: str | Path, version_id: str) -> list[dict]:
    labels = human_labels(decisions.current(decisions.read(store, version_id)))
    rows = []
    for item in version_items(store, version_id):
        label = labels.get(item.key)
        if not label or label["outcome"] != "pick":
            continue
        text = {item.a_id: item.a_text, item.b_id: item.b_text}
        other = item.b_id if label["picked"] == item.a_id else item.a_id
        rows.append(
            {
                "prompt": item.prompt,
                "chosen": text[label["picked"]],
                "rejected": text[other],
                "source": f"review of {version_id} by {', '.join(sorted(label['reviewers']))}",
                "pair": item.key,
            }
        )
    return rows


def export_gold(store: str | Path, version_id: str, out: str | Path) -> int:
    """Write the gold file (atomically); the number of rows. StoreError when no pair has a picked response."""
    rows = gold_rows(store, version_id)
    if not rows:
        raise StoreError(
            f"no pair of {version_id} has a response picked by its reviewers - review some first: `rlaif review {version_id}`"
        )
    write_atomic(out, "".join(json.dumps(row, ensure_ascii=False) + "\n" for row in rows))
    return len(rows)
