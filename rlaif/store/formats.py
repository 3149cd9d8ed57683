"""Turn a stored version into the dataset a trainer expects (TRL's formats), with no glue code.

Formats (`FORMATS`) and where their rows come from:

- ``dpo`` / ``rm``: the ``pairs`` table, one row per kept pair: explicit ``prompt``, ``chosen``,
  ``rejected`` plus the soft labels (``p_chosen``, ``margin``, raw per-order labels) and provenance.
  TRL's RewardTrainer uses ``margin`` in its loss; DPOTrainer drops the extra columns.
- ``kto``: ``prompt``/``completion``/``label`` from the ``feedback`` table when it has rows, else
  unpaired from ``pairs`` (chosen -> True, rejected -> False, as TRL's ``unpair_preference_dataset``),
  interleaved so that every sequential batch holds both labels.
- ``sft``: the best response per prompt as ``prompt``/``completion``, only from the judgments that
  survived the version's filters (its kept ``pairs``): with a listwise / pointwise / binary judge's
  ``rankings``, the rank-1 response that is the chosen one of a kept pair; otherwise (a pairwise
  judge, whose ``rankings`` average every judgment, dropped ones included) the response with the
  highest mean P(win) over its kept pairs. A prompt with no kept pair gives no row (`sft_selection`
  counts them for the card).
- ``prompts``: prompt-only rows (GRPO / RLOO) from the ``prompts`` table, else the distinct prompts
  of ``pairs``.
- ``listwise``: all responses of a prompt with ``scores`` and ``ranks`` (1 = best, ties share a rank)
  from ``rankings``, else built from the pairwise judgments (score = mean debiased P(win)).

OpenRLHF's and verl's formats (``openrlhf-pairs``, ``verl-rl``) are built in rlaif.store.formats_rl.

Styles (`STYLES`): ``conversational`` keeps message lists, as TRL documents; ``standard`` renders
them as plain text with `render_prompt` and prefixes every completion with one space.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Callable
from pathlib import Path

from rlaif.core.errors import StoreError
from rlaif.store.formats_rl import RL_FORMATS, RL_SOURCES, rl_rows
from rlaif.store.rows import (
    PREFERENCE_COLUMNS,
    STYLES,
    dpo_rows,
    kto_rows,
    listwise_rows,
    prompt_rows,
    read_optional,
    sft_rows,
)
from rlaif.store.versions import read_table, version_path

FORMATS = ("dpo", "rm", "kto", "sft", "prompts", "listwise", *RL_FORMATS)


def _check(fmt: str, style: str) -> None:
    if fmt not in FORMATS:
        raise StoreError(f"unknown export format {fmt!r} - use one of: {', '.join(FORMATS)}")
    if style not in STYLES:
        raise StoreError(f"unknown export style {style!r} - use one of: {', '.join(STYLES)}")


BUILDERS: dict[str, Callable[[dict[str, list[dict]], str], list[dict]]] = {
    "dpo": lambda t, s: dpo_rows(t["pairs"], s),
    "rm": lambda t, s: dpo_rows(t["pairs"], s),
    "kto": lambda t, s: kto_rows(t["feedback"], t["pairs"], s),
    "sft": lambda t, s: sft_rows(t["rankings"], t["pairs"], s),
    "prompts": lambda t, s: prompt_rows(t["prompts"], t["pairs"], s),
    "listwise": lambda t, s: listwise_rows(t["rankings"], t, s),
}
SOURCES = {
    "dpo": ("pairs",),
    "rm": ("pairs",),
    "kto": ("feedback", "pairs"),
    "sft": ("rankings", "pairs"),
    "prompts": ("prompts", "pairs"),
    "listwise": ("rankings", "judgments", "generations", "prompts", "pairs"),
    **RL_SOURCES,
}


def build_rows(store: str | Path, version_id: str, fmt: str, style: str = "conversational") -> tuple[list[dict], str]:
    """(rows, the table they were built from) for one export format and style."""
    _check(fmt, style)
    version_path(store, version_id)  # a clear StoreError for an unknown version
    if fmt in RL_FORMATS:
        return rl_rows(store, version_id, fmt, style)
    tables = {name: read_optional(store, version_id, name) for name in SOURCES[fmt]}
    source = next((name for name in SOURCES[fmt][:-1] if tables[name]), SOURCES[fmt][-1])
    if fmt == "listwise" and source != "rankings":
        source = "judgments"
    if fmt == "sft" and not any(r.get("judge") != "pairwise" for r in tables["rankings"]):
        source = "pairs"  # a pairwise judge's rankings average dropped judgments too: the kept pairs decide
    return BUILDERS[fmt](defaultdict(list, tables), style), source


def format_rows(store: str | Path, version_id: str, fmt: str, style: str = "conversational") -> list[dict]:
    """The rows of one export format and style, as plain dicts (see the module docstring)."""
    return build_rows(store, version_id, fmt, style)[0]


def format_dataset(store: str | Path, version_id: str, fmt: str, style: str = "conversational"):
    """`format_rows` as a `datasets.Dataset`, ready for the TRL trainer of the format.

    Raises StoreError when the version has no rows for the format (a trainer cannot use it).
    """
    from datasets import Dataset

    rows = format_rows(store, version_id, fmt, style)
    if not rows:
        raise StoreError(empty_message(version_id, fmt))
    return Dataset.from_list(rows)


def empty_message(version_id: str, fmt: str) -> str:
    tables = " or ".join(SOURCES[fmt][:2])
    return (
        f"version {version_id} has no rows for format {fmt!r} (its {tables} table is empty) - "
        "see `rlaif datasets show` for the drops by reason; relax the recipe's filters or judge more prompts"
    )


def preference_rows(
    store: str | Path, version_id: str, extra_columns: tuple[str, ...] = ("margin", "p_chosen")
) -> list[dict]:
    """Rows in TRL's conversational preference format (prompt/chosen/rejected) plus soft-label columns."""
    keep = PREFERENCE_COLUMNS + extra_columns
    return [{key: row[key] for key in keep} for row in read_table(store, version_id, "pairs")]


def preference_dataset(store: str | Path, version_id: str, extra_columns: tuple[str, ...] = ("margin", "p_chosen")):
    """A `datasets.Dataset` that DPOTrainer / RewardTrainer load with no glue code."""
    from datasets import Dataset

    return Dataset.from_list(preference_rows(store, version_id, extra_columns))
