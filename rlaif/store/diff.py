"""Compare two dataset versions: which preference rows were added, removed or changed, and how
the counts, the drop reasons and the label statistics moved.

A row is keyed by its prompt and its two responses, in either order, so a pair whose winner
flipped is "changed", not "removed + added". Also home of `version_stats`, the per-version
numbers that the diff and the HTML report share.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any, Literal

from rlaif.store.versions import load_manifest, version_path

TOLERANCE = 1e-6
STAT_KEYS = (
    "mean_margin",
    "mean_p_chosen",
    "prefers_longer",
    "consistency",
    "raw_consistency",
    "beta",
    "mean_chosen_chars",
    "mean_rejected_chars",
)


def read_table_or_empty(store: str | Path, version_id: str, table: str) -> list[dict]:
    """Rows of a table; [] when the version predates that table (older versions lack some files)."""
    import pyarrow.parquet as pq

    path = version_path(store, version_id) / f"{table}.parquet"
    return pq.read_table(path).to_pylist() if path.is_file() else []


def text_of(messages: Any) -> str:
    """Content of the last message of a conversational field (or the field itself when it is a string).

    >>> text_of([{"role": "user", "content": "hi"}, {"role": "assistant", "content": "hello"}]), text_of("plain")
    ('hello', 'plain')
    """
    if isinstance(messages, str):
        return messages
    return str(messages[-1].get("content", "")) if messages else ""


def mean(values: list[float]) -> float | None:
    """
    >>> mean([1, 2]), mean([])
    (1.5, None)
    """
    return round(sum(values) / len(values), 4) if values else None


def version_stats(manifest: dict[str, Any], pairs: list[dict]) -> dict[str, float | None]:
    """Label statistics of a version: means over its kept pairs plus the judge's position-bias report."""
    bias = manifest.get("judge", {}).get("position_bias") or {}
    chosen = [len(text_of(p["chosen"])) for p in pairs]
    rejected = [len(text_of(p["rejected"])) for p in pairs]
    return {
        "mean_margin": mean([p["margin"] for p in pairs if p.get("margin") is not None]),
        "mean_p_chosen": mean([p["p_chosen"] for p in pairs if p.get("p_chosen") is not None]),
        "prefers_longer": mean([float(c > r) for c, r in zip(chosen, rejected)]),
        "consistency": bias.get("consistency"),
        "raw_consistency": bias.get("raw_consistency"),
        "beta": bias.get("beta"),
        "mean_chosen_chars": mean(chosen),
        "mean_rejected_chars": mean(rejected),
    }


def pair_key(row: dict) -> str:
    """Stable key of a preference row: the prompt and its two responses, in either order.

    >>> pair_key({"prompt_id": "p1", "chosen_id": "p1/x/1", "rejected_id": "p1/x/0"})
    'p1 | p1/x/0 | p1/x/1'
    """
    return responses_key(row["prompt_id"], row["chosen_id"], row["rejected_id"])


def responses_key(prompt_id: str, a_id: str, b_id: str) -> str:
    """The key of two responses to a prompt (a preference row's, a judgment's), whichever is called a.

    >>> responses_key("p1", "p1/x/1", "p1/x/0") == responses_key("p1", "p1/x/0", "p1/x/1")
    True
    """
    first, second = sorted((a_id, b_id))
    return f"{prompt_id} | {first} | {second}"


def _change(a: dict, b: dict) -> dict | None:
    """How the same pair differs between two versions, or None when it did not change."""
    fields = []
    if a["chosen_id"] != b["chosen_id"]:
        fields.append("flipped")
    for name in ("p_chosen", "margin"):
        x, y = a.get(name), b.get(name)
        if (x is None) != (y is None) or (x is not None and abs(x - y) > TOLERANCE):
            fields.append(name)
    texts = lambda row: sorted((text_of(row["chosen"]), text_of(row["rejected"])))  # noqa: E731
    if texts(a) != texts(b):
        fields.append("text")
    if not fields:
        return None
    return {
        "key": pair_key(b),
        "fields": fields,
        "chosen": [a["chosen_id"], b["chosen_id"]],
        "p_chosen": [a.get("p_chosen"), b.get("p_chosen")],
        "margin": [a.get("margin"), b.get("margin")],
    }


def diff_rows(rows_a: list[dict], rows_b: list[dict]) -> dict[str, Any]:
    """Rows added, removed and changed from `rows_a` to `rows_b` (keys sorted), and how many are unchanged."""
    by_a = {pair_key(row): row for row in rows_a}
    by_b = {pair_key(row): row for row in rows_b}
    changes = [_change(by_a[key], by_b[key]) for key in sorted(by_a.keys() & by_b.keys())]
    changed = [change for change in changes if change]
    return {
        "added": sorted(by_b.keys() - by_a.keys()),
        "removed": sorted(by_a.keys() - by_b.keys()),
        "changed": changed,
        "unchanged": len(changes) - len(changed),
    }


def delta(a: float | None, b: float | None) -> dict[str, float | None]:
    """
    >>> delta(2, 5), delta(None, 1)
    ({'a': 2, 'b': 5, 'delta': 3}, {'a': None, 'b': 1, 'delta': None})
    """
    change = None if a is None or b is None else round(b - a, 6)
    return {"a": a, "b": b, "delta": change}


def flatten(value: Any, prefix: str = "", lists: Literal["index", "json"] = "index") -> dict[str, Any]:
    """Nested dicts as dotted keys (the one flattener of manifests: diffs, cards, the secret check).
    `lists="index"`: a list of dicts or lists as `key[i]` entries (a list of scalars stays a value);
    `lists="json"`: every list as one JSON string (a card's table cell).

    >>> flatten({"judge": {"model": "m"}, "policies": [{"name": "p"}]})
    {'judge.model': 'm', 'policies[0].name': 'p'}
    >>> flatten({"a": {"b": 1}, "c": [1, 2]}, lists="json")
    {'a.b': 1, 'c': '[1, 2]'}
    """
    if isinstance(value, dict):
        out: dict[str, Any] = {}
        for key, item in value.items():
            out.update(flatten(item, f"{prefix}.{key}" if prefix else str(key), lists))
        return out
    if isinstance(value, list) and lists == "json":
        return {prefix: json.dumps(value, ensure_ascii=False, default=str)}
    if isinstance(value, list) and value and all(isinstance(item, (dict, list)) for item in value):
        out = {}
        for index, item in enumerate(value):
            out.update(flatten(item, f"{prefix}[{index}]", lists))
        return out
    return {prefix: value}


def changed_settings(a: dict, b: dict) -> dict[str, list]:
    """Dotted keys whose value differs between two nested dicts, as [value in a, value in b]."""
    flat_a, flat_b = flatten(a or {}), flatten(b or {})
    return {
        key: [flat_a.get(key), flat_b.get(key)]
        for key in sorted(flat_a.keys() | flat_b.keys())
        if flat_a.get(key) != flat_b.get(key)
    }


def count_deltas(manifest_a: dict, manifest_b: dict) -> dict[str, dict]:
    """Counts (in, kept, prompts, ...) and nested ones as dotted keys (drops by reason: `dropped.<reason>`,
    `prompts_dropped.<reason>`, `feedback.good`...), each as a, b, delta; a nested count one side lacks is 0."""
    flat_a, flat_b = flatten(manifest_a.get("counts", {})), flatten(manifest_b.get("counts", {}))
    out = {}
    for key in dict.fromkeys([*flat_a, *flat_b]):
        missing = 0 if "." in key else None
        a, b = flat_a.get(key, missing), flat_b.get(key, missing)
        out[key] = delta(a, b) if _number(a) and _number(b) else {"a": a, "b": b, "delta": None}
    return out


def _number(value: Any) -> bool:
    return value is None or (isinstance(value, (int, float)) and not isinstance(value, bool))


# The rows of each table, by key (the pairs are compared by `pair_key` in `rows`): which rows a version added or removed.
TABLE_KEYS = {
    "prompts": ("id",),
    "generations": ("prompt_id", "policy", "sample_index"),
    "judgments": ("prompt_id", "a_id", "b_id", "judge_model", "template"),
    "rankings": ("prompt_id",),
    "feedback": ("prompt_id", "response_id"),
}


def table_keys(store: str | Path, version_id: str, table: str) -> list[str] | None:
    """The keys of a table's rows, read column by column (None when the version lacks the table or its key columns)."""
    import pyarrow.parquet as pq

    path = version_path(store, version_id) / f"{table}.parquet"
    columns = list(TABLE_KEYS[table])
    if not path.is_file() or not set(columns) <= set(pq.read_schema(path).names):
        return None
    keys = pq.read_table(path, columns=columns).to_pylist()
    return [" | ".join(str(row[c]) for c in columns if row[c] is not None) for row in keys]


def diff_table_rows(store: str | Path, a: str, b: str) -> dict[str, dict]:
    """Per table: rows in a and in b, and the keys of the rows added and removed (sorted)."""
    out = {}
    for table in TABLE_KEYS:
        keys_a, keys_b = table_keys(store, a, table), table_keys(store, b, table)
        if keys_a is None and keys_b is None:
            continue
        set_a, set_b = set(keys_a or []), set(keys_b or [])
        out[table] = {
            "a": len(keys_a or []),
            "b": len(keys_b or []),
            "added": sorted(set_b - set_a),
            "removed": sorted(set_a - set_b),
        }
    return out


def diff_versions(store: str | Path, a: str, b: str) -> dict[str, Any]:
    """Everything that differs from version `a` to version `b` (a is the older one by convention)."""
    manifest_a, manifest_b = load_manifest(store, a), load_manifest(store, b)
    pairs_a, pairs_b = read_table_or_empty(store, a, "pairs"), read_table_or_empty(store, b, "pairs")
    stats_a, stats_b = version_stats(manifest_a, pairs_a), version_stats(manifest_b, pairs_b)
    return {
        "a": a,
        "b": b,
        "rows": diff_rows(pairs_a, pairs_b),
        "tables": diff_table_rows(store, a, b),
        "counts": count_deltas(manifest_a, manifest_b),
        "stats": {key: delta(stats_a[key], stats_b[key]) for key in STAT_KEYS},
        "recipe": changed_settings(manifest_a.get("recipe", {}), manifest_b.get("recipe", {})),
        "prompt_templates": changed_settings(
            manifest_a.get("prompt_templates", {}), manifest_b.get("prompt_templates", {})
        ),
        "parents": {"a": manifest_a.get("parents", []), "b": manifest_b.get("parents", [])},
        "review": {"a": manifest_a.get("review"), "b": manifest_b.get("review")},  # rlaif review commit's block
    }
