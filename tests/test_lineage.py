"""Lineage: parents walked recursively, a missing parent reported, shared ancestors expanded once,
and the recipe / prompt set / templates of each version; plus `rlaif datasets lineage`."""

from __future__ import annotations

import json

from typer.testing import CliRunner

from rlaif.cli import app
from rlaif.core.schema import content_hash
from rlaif.store.lineage import lineage
from rlaif.store.versions import commit_tables, load_manifest
from tests.test_diff import commit, manifest, pair


def test_parents_are_walked_back_to_the_prompt_set_and_recipe(tmp_path):
    store = tmp_path / "store"
    rows = [pair("p1", 0, 1)]
    base = commit(store, rows)
    child = commit(store, rows, parents=[base])
    assert child != base  # same rows, different parents: a different version
    grandchild = commit(store, rows + [pair("p2", 0, 1)], parents=[child, "gone-000000000000"])
    tree = lineage(store, grandchild)
    assert tree["id"] == grandchild and [p["id"] for p in tree["parents"]] == [child, "gone-000000000000"]
    assert tree["parents"][1]["missing"] is True and tree["parents"][0]["missing"] is False
    assert [p["id"] for p in tree["parents"][0]["parents"]] == [base] and tree["parents"][0]["parents"][0][
        "parents"
    ] == []
    recipe = load_manifest(store, base)["recipe"]
    assert tree["recipe"] == {"name": "t", "sha256": content_hash(recipe)}
    assert tree["prompts"] == {"path": "data/p.jsonl", "sha256": "cd" * 32, "rows": 7}
    assert tree["prompt_templates"] == {"pairwise_judge.j2": "ab" * 32}
    assert tree["models"]["judge"]["model"] == "judge-m"


def test_shared_ancestor_is_expanded_once_and_old_manifests_have_no_prompt_set(tmp_path):
    store = tmp_path / "store"
    old = manifest([pair("p1", 0, 1)])
    del old["inputs"]  # versions made before prompt lineage lack it
    base, _ = commit_tables(store, "t", {"pairs": [pair("p1", 0, 1)]}, old)
    left = commit(store, [pair("p1", 0, 1)], parents=[base], name="left")
    right = commit(store, [pair("p1", 0, 1)], parents=[base], name="right")
    top = commit(store, [pair("p1", 0, 1)], parents=[left, right], name="top")
    tree = lineage(store, top)
    first, second = tree["parents"][0]["parents"][0], tree["parents"][1]["parents"][0]
    assert first["id"] == second["id"] == base
    assert "shown_above" not in first and second["shown_above"] is True
    assert first["prompts"] is None


def test_cli_lineage_tree_and_json(tmp_path):
    store = tmp_path / "store"
    base = commit(store, [pair("p1", 0, 1)])
    child = commit(store, [pair("p1", 0, 1)], parents=[base, "gone-000000000000"])
    runner = CliRunner()
    shown = runner.invoke(app, ["datasets", "lineage", child, "--store", str(store)], terminal_width=200)
    assert shown.exit_code == 0, shown.output
    for text in (
        child,
        base,
        "gone-000000000000",
        "missing",
        "data/p.jsonl (7 rows",
        "template pairwise_judge.j2",
        "judge judge-m",
    ):
        assert text in shown.output, text
    as_json = json.loads(runner.invoke(app, ["datasets", "lineage", child, "--store", str(store), "--json"]).stdout)
    assert as_json["parents"][0]["id"] == base and as_json["parents"][1]["missing"]
    missing = runner.invoke(app, ["datasets", "lineage", "nope-000", "--store", str(store)])
    assert missing.exit_code == 2 and "no version 'nope-000'" in missing.output
    assert "Example:" in runner.invoke(app, ["datasets", "lineage", "--help"]).output
