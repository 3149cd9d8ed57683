"""`rlaif review commit` and `export` as library calls: people's decisions become a new version (parents: the
reviewed one) with human labels, drops and rescues, the same id for the same decisions, a `review` block with
the judge's agreement; and a gold file that eval-judge reads."""

from __future__ import annotations

import shutil

import pytest

from rlaif.core.errors import StoreError
from rlaif.core.gold import load_gold
from rlaif.publish.export import export_version
from rlaif.publish.report import write_report
from rlaif.review import decisions
from rlaif.review.commit import commit_review
from rlaif.review.export import export_gold
from rlaif.review.queue import ordered, version_items
from rlaif.store.versions import load_manifest, read_table
from tests.badinput import run_cli
from tests.test_review_queue import decide, version  # noqa: F401  (a fixture)


def other(item, response_id: str) -> str:
    return item.b_id if response_id == item.a_id else item.a_id


def own_copy(made, tmp_path):
    """The module's version in a store of this test's own (decisions go beside it)."""
    store, version_id, _ = made
    shutil.copytree(store, tmp_path / "store")
    return tmp_path / "store", version_id


def test_decisions_become_a_new_version_with_human_labels_drops_and_rescues(version, tmp_path):  # noqa: F811
    store, version_id = own_copy(version, tmp_path)
    with pytest.raises(StoreError, match="nobody has reviewed"):
        commit_review(store, version_id)
    items = version_items(store, version_id)
    k1, k2, k3, k4 = ordered(items, "uncertain")[:4]
    d1, d2 = [i for i in ordered(items, "dropped") if i.judge_choice][:2]
    for line in (
        decide(version_id, "ann", k1, k1.judge_choice),  # confirms the judge
        decide(version_id, "bob", k1, other(k1, k1.judge_choice)),  # ... and bob does not: dropped
        decide(version_id, "ann", k2, other(k2, k2.judge_choice)),  # flips it, and bob agrees
        decide(version_id, "bob", k2, other(k2, k2.judge_choice)),
        decide(version_id, "ann", k3, None, "tie"),
        decide(version_id, "ann", k4, None, "both_bad"),
        decide(version_id, "ann", d1, d1.a_id),  # rescued
        decide(version_id, "ann", d2, None, "skip"),
    ):
        decisions.append(store, line)
    parent_pairs = read_table(store, version_id, "pairs")
    new_id, created, manifest = commit_review(store, version_id)
    assert created and new_id != version_id and manifest["parents"] == [version_id]
    rows = {(r["prompt_id"], r["chosen_id"], r["rejected_id"]): r for r in read_table(store, new_id, "pairs")}
    assert len(rows) == len(parent_pairs) - 3 + 1  # k1 (reviewers differ), k3 (tie), k4 (both bad) out; d1 in
    flipped = rows[(k2.prompt_id, other(k2, k2.judge_choice), k2.judge_choice)]
    assert flipped["label_source"] == "human" and flipped["p_chosen"] == 1.0
    assert rows[(d1.prompt_id, d1.a_id, d1.b_id)]["label_source"] == "human"
    judged = [r for r in rows.values() if r["label_source"] == "judge"]
    assert len(judged) == len(parent_pairs) - 4 and all(r["p_chosen"] < 1.0 for r in judged)
    for table in ("generations", "judgments", "prompts"):
        assert read_table(store, new_id, table) == read_table(store, version_id, table)
    review = manifest["review"]
    assert review["reviewers"] == ["ann", "bob"] and review["decisions"] == {
        "both_bad": 1,
        "pick": 5,
        "skip": 1,
        "tie": 1,
    }
    assert review["outcomes"] == {
        "dropped: both_bad": 1,
        "dropped: reviewers_disagree": 1,
        "dropped: tie": 1,
        "kept: flipped": 1,
        "kept: judge label": len(parent_pairs) - 4,
        "rescued": 1,
    }
    agreement = review["judge_agreement"]  # ann k1 yes, bob k1 no, ann k2 no, bob k2 no, ann d1: the judge's side?
    hits = 1 + (d1.judge_choice == d1.a_id)
    assert agreement["n"] == 5 and agreement["agreement"] == round(hits / 5, 4) and agreement["interval"]
    assert sum(bucket["n"] for bucket in agreement["by_margin"]) == 5
    assert review["reviewer_agreement"] == {"agreement": 0.5, "n": 2, "interval": [0.0945, 0.9055]}
    counts = manifest["counts"]
    assert counts["kept"] == len(rows) and counts["kept"] + sum(counts["dropped"].values()) == counts["in"]
    again_id, again_created, _ = commit_review(store, version_id)
    assert (again_id, again_created) == (new_id, False)  # the same decisions, the same id
    assert load_manifest(store, new_id)["review"] == review
    # the report, the dataset card and datasets diff show the review block
    share = f"{agreement['agreement']:.0%} of 5"
    assert (
        "Human review" in write_report(store, new_id).read_text() and share in write_report(store, new_id).read_text()
    )
    export_version(store, new_id, "dpo", tmp_path / "export")
    card = (tmp_path / "export" / "README.md").read_text()
    assert "## Human review" in card and f"| judge agreed with reviewers | {share}" in card
    diffed = run_cli("datasets", "diff", version_id, new_id, "--store", str(store), env={"COLUMNS": "200"})
    assert "is the human review of" in diffed.stdout and "judge agreed with reviewers" in diffed.stdout
    assert f"store: {store} (--store)" in diffed.stderr  # diff names the store it read
    assert "Human review" not in write_report(store, version_id).read_text()  # the parent was not reviewed


def test_export_writes_the_picked_pairs_as_a_gold_file(version, tmp_path):  # noqa: F811
    store, version_id = own_copy(version, tmp_path)
    with pytest.raises(StoreError, match="review some first"):
        export_gold(store, version_id, tmp_path / "gold.jsonl")
    k1, k2, k3 = ordered(version_items(store, version_id), "uncertain")[:3]
    decisions.append(store, decide(version_id, "ann", k1, k1.b_id))
    decisions.append(store, decide(version_id, "bob", k1, k1.b_id))
    decisions.append(store, decide(version_id, "ann", k2, k2.a_id))
    decisions.append(store, decide(version_id, "bob", k2, k2.b_id))  # reviewers differ: left out
    decisions.append(store, decide(version_id, "ann", k3, None, "tie"))
    assert export_gold(store, version_id, tmp_path / "gold.jsonl") == 1
    (gold,) = load_gold(tmp_path / "gold.jsonl")  # the format eval-judge reads
    assert (gold.chosen, gold.rejected) == (k1.b_text, k1.a_text) and gold.prompt == k1.prompt
