"""The training rows of a dataset version for one algorithm: the export formats (rlaif.store.formats),
conversational style (message lists, which each trainer renders with the model's chat template)."""

from __future__ import annotations

from pathlib import Path

from rlaif.core.errors import StoreError
from rlaif.store.formats import build_rows, empty_message

FORMAT_OF = {
    "sft": "sft",  # distillation: the chosen / best-ranked response per prompt
    "rm": "rm",
    "dpo": "dpo",
    "kto": "kto",
    "ppo": "prompts",
    "rloo": "prompts",
    "grpo": "prompts",
    "rrhf": "listwise",
}


def training_rows(store: str | Path, dataset_id: str, algorithm: str) -> list[dict]:
    """Rows in the format `algorithm` trains on; StoreError naming the version when there are none."""
    fmt = FORMAT_OF[algorithm]
    rows, source = build_rows(store, dataset_id, fmt, "conversational")
    if fmt == "listwise":
        rows = [row for row in rows if len(row.get("responses") or []) >= 2]
    if not rows:
        why = " (no prompt has two or more ranked responses)" if fmt == "listwise" else ""
        raise StoreError(f"cannot train {algorithm}: {empty_message(dataset_id, fmt)}{why} [rows built from {source}]")
    return rows
