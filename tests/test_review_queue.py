"""The review queue of a real (scripted-endpoint) version: every judged pair is an item, kept and dropped,
in the order of doubt; and the decisions log: durable, append-only, undo, two reviewers."""

from __future__ import annotations

import json
import multiprocessing

import pytest

from rlaif.config.recipe import parse_recipe
from rlaif.core.errors import InputError, StoreError
from rlaif.pipeline.runner import run_recipe
from rlaif.review import decisions
from rlaif.review.decisions import Decision
from rlaif.review.queue import ordered, version_items
from rlaif.store.diff import pair_key
from rlaif.store.versions import read_table
from tests.conftest import write_prompts
from tests.det_server import DetServer


@pytest.fixture(scope="module")
def version(tmp_path_factory):
    folder = tmp_path_factory.mktemp("review")
    prompts = write_prompts(folder / "prompts.jsonl", [f"Question {i}: name {i} fruits." for i in range(8)])
    with DetServer() as server:
        endpoint = {"backend": "openai", "base_url": server.base_url, "model": "det"}
        recipe = parse_recipe(
            {
                "name": "rev",
                "prompts": {"path": str(prompts)},
                "policies": [{"name": "p", **endpoint, "params": {"temperature": 0.9, "max_tokens": 16}}],
                "samples_per_prompt": 3,
                "judge": endpoint,
                "filters": {"consistency": True, "min_margin": 0.2},
            }
        )
        version_id, _, manifest, _ = run_recipe(recipe, folder / "store")
    return folder / "store", version_id, manifest


def test_every_judged_pair_is_an_item_kept_or_dropped_with_its_reason(version):
    store, version_id, manifest = version
    items = version_items(store, version_id)
    judged = read_table(store, version_id, "judgments")
    kept = read_table(store, version_id, "pairs")
    assert len(items) == len(judged) and sum(item.kept for item in items) == len(kept) > 0
    dropped = manifest["counts"]["dropped"]
    for reason in ("inconsistent", "low_margin"):
        assert sum(item.reason == reason for item in items) == dropped.get(reason, 0), reason
    assert sum(not item.kept for item in items) > 0
    for item, pair in zip(items, kept):  # a kept item: the version's own pair, the judge's choice first
        assert item.key == pair_key(pair)
        assert (item.judge_choice, item.judge_p) == (pair["chosen_id"], pair["p_chosen"])
        assert item.a_text == pair["chosen"][0]["content"] and item.prompt[-1]["content"].startswith("Question")


def test_the_uncertain_queue_puts_the_closest_calls_first_and_dropped_the_likeliest_rescues(version):
    store, version_id, _ = version
    items = version_items(store, version_id)
    uncertain = ordered(items, "uncertain")
    assert [i.margin for i in uncertain] == sorted(i.margin for i in items if i.kept)
    rescues = ordered(items, "dropped")
    assert all(not i.kept for i in rescues) and [i.margin or 0 for i in rescues] == sorted(
        (i.margin or 0 for i in rescues), reverse=True
    )
    assert ordered(items, "all") == uncertain + rescues
    with pytest.raises(InputError, match="use one of uncertain, dropped, disagreements, all"):
        ordered(items, "newest")


def decide(version_id: str, reviewer: str, item, pick: str | None, decision: str = "pick") -> Decision:
    return Decision(
        version=version_id,
        reviewer=reviewer,
        pair=item.key,
        action="decide",
        decision=decision,
        picked=pick,
        left=item.b_id,
        right=item.a_id,
        judge_choice=item.judge_choice,
        judge_p=item.judge_p,
    )


def test_decisions_are_appended_undone_and_two_reviewers_disagreements_found(version, tmp_path):
    _, version_id, _ = version
    store = tmp_path / "store"  # a log of its own
    items = version_items(version[0], version_id)
    first, second = items[0], items[1]
    a = decisions.append(store, decide(version_id, "ann", first, first.a_id))
    decisions.append(store, decide(version_id, "ann", second, second.b_id))
    decisions.append(store, decide(version_id, "bob", first, first.b_id))
    later = decisions.append(store, decide(version_id, "ann", first, None, "tie"))
    decisions.append(store, Decision(version_id, "ann", first.key, "undo", undoes=later.id))
    log = decisions.read(store, version_id)
    assert len(log) == 5 and log[0] == a  # every line kept, in order
    standing = decisions.current(log)
    assert standing[("ann", first.key)].id == a.id  # the undo restored ann's earlier pick
    assert ordered(items, "disagreements", log) == [first]  # ann picked a, bob picked b
    assert (store / "reviews" / version_id / "decisions.jsonl").is_file()


def test_bad_decisions_are_refused_and_a_line_cut_short_by_a_kill_is_left_out(version, tmp_path):
    _, version_id, _ = version
    item = version_items(version[0], version_id)[0]
    with pytest.raises(InputError, match="neither response shown"):
        decisions.append(tmp_path, decide(version_id, "ann", item, "someone/else/0"))
    with pytest.raises(InputError, match="unknown decision"):
        decisions.append(tmp_path, decide(version_id, "ann", item, None, "maybe"))
    kept = decisions.append(tmp_path, decide(version_id, "ann", item, item.a_id))
    path = decisions.log_path(tmp_path, version_id)
    with open(path, "a") as log:
        log.write('{"version": "cut sho')  # killed mid-write: never acknowledged
    assert decisions.read(tmp_path, version_id) == [kept]
    path.write_text("not json\n" + path.read_text())
    with pytest.raises(StoreError, match="line 1 is not a decision"):
        decisions.read(tmp_path, version_id)


def _append_many(store: str, version_id: str, reviewer: str, key: str, a: str, b: str) -> None:
    for i in range(50):
        decisions.append(
            store,
            Decision(version_id, reviewer, key, "decide", "pick", picked=a, left=a, right=b, note=f"{reviewer} {i}"),
        )


def test_two_processes_appending_at_once_lose_and_mix_nothing(version, tmp_path):
    _, version_id, _ = version
    item = version_items(version[0], version_id)[0]
    context = multiprocessing.get_context("spawn")
    workers = [
        context.Process(target=_append_many, args=(str(tmp_path), version_id, name, item.key, item.a_id, item.b_id))
        for name in ("ann", "bob")
    ]
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join(60)
    lines = decisions.log_path(tmp_path, version_id).read_text().splitlines()
    assert len(lines) == 100 and all(json.loads(line)["note"] for line in lines)  # whole lines only
    for name in ("ann", "bob"):
        notes = [json.loads(line)["note"] for line in lines if json.loads(line)["reviewer"] == name]
        assert notes == [f"{name} {i}" for i in range(50)]


def test_among_equal_margins_doubtful_signals_come_first():
    from dataclasses import replace

    from rlaif.review.queue import Item

    base = Item("k", "p", [], "a", "b", "x", "y", "p", "p", True, None, "a", 0.6, 0.2, False, False)
    plain, split, flipped, shorter = (
        replace(base, key="plain"),
        replace(base, key="split", jury_split=True),
        replace(base, key="orders", orders_disagreed=True),
        replace(base, key="shorter", shorter_chosen=True),
    )
    closer = replace(base, key="closer", margin=0.1)
    queue = ordered([plain, shorter, split, flipped, closer], "uncertain")
    assert [item.key for item in queue] == ["closer", "orders", "split", "shorter", "plain"]
