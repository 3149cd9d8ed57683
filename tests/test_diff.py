"""`diff_versions` and `rlaif datasets diff` on hand-made versions whose differences are known.

Also home of the small helpers that the report and lineage tests use to commit versions.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from rlaif.cli import app
from rlaif.store.diff import diff_versions, pair_key
from rlaif.store.versions import commit_tables

TEMPLATE_SHA = "ab" * 32


def pair(
    prompt_id: str,
    chosen: int,
    rejected: int,
    p: float = 0.8,
    *,
    policies=("pol", "pol"),
    chosen_text=None,
    rejected_text=None,
    prompt_text=None,
) -> dict:
    """A pairs-table row for responses `<prompt_id>/<policy>/<index>`."""
    return {
        "prompt": [{"role": "user", "content": prompt_text or f"question {prompt_id}"}],
        "chosen": [{"role": "assistant", "content": chosen_text or f"answer {chosen} to {prompt_id}"}],
        "rejected": [{"role": "assistant", "content": rejected_text or f"reply #{rejected}"}],
        "prompt_id": prompt_id,
        "chosen_id": f"{prompt_id}/{policies[0]}/{chosen}",
        "rejected_id": f"{prompt_id}/{policies[1]}/{rejected}",
        "chosen_policy": policies[0],
        "rejected_policy": policies[1],
        "p_chosen": p,
        "margin": round(abs(2 * p - 1), 6),
        "p_chosen_raw_ab": p,
        "p_chosen_raw_ba": p,
        "judge_model": "judge-m",
        "judge_template_sha256": TEMPLATE_SHA,
    }


def manifest(
    pairs: list[dict],
    *,
    dropped: dict | None = None,
    parents: list[str] | None = None,
    recipe: dict | None = None,
    policies=("pol",),
    consistency=0.5,
) -> dict:
    """A manifest shaped like the pipeline's, with counts that match `pairs`."""
    dropped = dropped or {"inconsistent": 2, "low_margin": 1}
    return {
        "parents": parents or [],
        "recipe": recipe or {"name": "t", "judge": {"model": "judge-m"}, "filters": {"min_margin": 0.05}},
        "inputs": {"prompts": {"path": "data/p.jsonl", "sha256": "cd" * 32, "rows": 7}},
        "models": {
            "policies": [{"name": name, "backend": "openai", "model": f"{name}-model"} for name in policies],
            "judge": {"backend": "openai", "model": "judge-m"},
        },
        "prompt_templates": {"pairwise_judge.j2": TEMPLATE_SHA},
        "counts": {"prompts": 7, "in": len(pairs) + sum(dropped.values()), "kept": len(pairs), "dropped": dropped},
        "calls": {"live": 10, "cached": 4, "failed": 1},
        "tokens": {"prompt": 100, "completion": 50},
        "judge": {
            "type": "pairwise",
            "position_bias": {
                "beta": 0.4,
                "mean_p_first": 0.6,
                "raw_consistency": 0.1,
                "consistency": consistency,
                "n": 9,
            },
        },
    }


def commit(store: Path, pairs: list[dict], name: str = "t", **kwargs) -> str:
    version_id, created = commit_tables(store, name, {"pairs": pairs}, manifest(pairs, **kwargs))
    assert created
    return version_id


@pytest.fixture
def two_versions(tmp_path):
    store = tmp_path / "store"
    same, flipped, removed, moved = pair("p1", 0, 1), pair("p2", 0, 1), pair("p3", 0, 1), pair("p5", 1, 0, p=0.7)
    a = commit(store, [same, flipped, removed, moved], dropped={"inconsistent": 3, "low_margin": 1})
    b_pairs = [same, pair("p2", 1, 0), pair("p4", 2, 0, p=0.9), pair("p5", 1, 0, p=0.75)]
    b = commit(
        store,
        b_pairs,
        dropped={"inconsistent": 1, "low_margin": 2},
        recipe={"name": "t", "judge": {"model": "judge-2"}, "filters": {"min_margin": 0.05}},
        consistency=0.75,
    )
    return store, a, b


def test_rows_added_removed_and_changed_by_unordered_key(two_versions):
    store, a, b = two_versions
    rows = diff_versions(store, a, b)["rows"]
    assert rows["added"] == ["p4 | p4/pol/0 | p4/pol/2"]
    assert rows["removed"] == ["p3 | p3/pol/0 | p3/pol/1"]
    changed = {change["key"]: change for change in rows["changed"]}
    assert set(changed) == {"p2 | p2/pol/0 | p2/pol/1", "p5 | p5/pol/0 | p5/pol/1"}
    assert "flipped" in changed["p2 | p2/pol/0 | p2/pol/1"]["fields"]
    assert changed["p2 | p2/pol/0 | p2/pol/1"]["chosen"] == ["p2/pol/0", "p2/pol/1"]
    assert changed["p5 | p5/pol/0 | p5/pol/1"]["fields"] == ["p_chosen", "margin"]
    assert changed["p5 | p5/pol/0 | p5/pol/1"]["p_chosen"] == [0.7, 0.75]
    assert rows["unchanged"] == 1


def test_counts_stats_and_settings_as_deltas(two_versions):
    store, a, b = two_versions
    result = diff_versions(store, a, b)
    assert result["counts"]["kept"] == {"a": 4, "b": 4, "delta": 0}
    assert result["counts"]["dropped.inconsistent"] == {"a": 3, "b": 1, "delta": -2}
    assert result["counts"]["dropped.low_margin"]["delta"] == 1
    # margins: a = 0.6, 0.6, 0.6, 0.4 -> 0.55; b = 0.6, 0.6, 0.8, 0.5 -> 0.625
    assert result["stats"]["mean_margin"]["a"] == pytest.approx(0.55)
    assert result["stats"]["mean_margin"]["delta"] == pytest.approx(0.075)
    assert result["stats"]["consistency"] == {"a": 0.5, "b": 0.75, "delta": 0.25}
    assert result["recipe"] == {"judge.model": ["judge-m", "judge-2"]}
    assert result["prompt_templates"] == {}


def test_same_version_has_no_changes_and_edited_text_is_a_change(tmp_path):
    store = tmp_path / "store"
    a = commit(store, [pair("p1", 0, 1)])
    assert diff_versions(store, a, a)["rows"] == {"added": [], "removed": [], "changed": [], "unchanged": 1}
    b = commit(store, [pair("p1", 0, 1, chosen_text="a different answer")])
    assert diff_versions(store, a, b)["rows"]["changed"][0]["fields"] == ["text"]


def test_pair_key_ignores_order():
    assert pair_key(pair("p1", 0, 1)) == pair_key(pair("p1", 1, 0))
    assert pair_key(pair("p1", 0, 1)) != pair_key(pair("p1", 0, 2))


def test_cli_diff_table_json_and_missing_version(two_versions):
    store, a, b = two_versions
    runner = CliRunner()
    shown = runner.invoke(app, ["datasets", "diff", a, b, "--store", str(store)], terminal_width=200)
    assert shown.exit_code == 0, shown.output
    assert (
        "p4 | p4/pol/0 | p4/pol/2" in shown.output
        and "dropped.inconsistent" in shown.output
        and "judge-2" in shown.output
    )
    as_json = runner.invoke(app, ["datasets", "diff", a, b, "--store", str(store), "--json"])
    assert json.loads(as_json.stdout)["rows"]["removed"] == ["p3 | p3/pol/0 | p3/pol/1"]
    missing = runner.invoke(app, ["datasets", "diff", a, "nope-000", "--store", str(store)])
    assert missing.exit_code == 2 and "no version 'nope-000'" in missing.output
    assert "Example:" in runner.invoke(app, ["datasets", "diff", "--help"]).output
