"""Turn a stored version into the dataset a trainer expects (TRL's formats)."""

from __future__ import annotations

from pathlib import Path

from rlaif.store.versions import read_table

PREFERENCE_COLUMNS = ("prompt", "chosen", "rejected")


def preference_rows(store: str | Path, version_id: str, extra_columns: tuple[str, ...] = ("margin", "p_chosen")) -> list[dict]:
    """Rows in TRL's conversational preference format (prompt/chosen/rejected) plus soft-label columns."""
    keep = PREFERENCE_COLUMNS + extra_columns
    return [{key: row[key] for key in keep} for row in read_table(store, version_id, "pairs")]


def preference_dataset(store: str | Path, version_id: str, extra_columns: tuple[str, ...] = ("margin", "p_chosen")):
    """A `datasets.Dataset` that DPOTrainer / RewardTrainer load with no glue code."""
    from datasets import Dataset

    return Dataset.from_list(preference_rows(store, version_id, extra_columns))
