"""Incremental versions (rlaif/pipeline/incremental.py): a recipe's `parent:` builds on a version, judging
only the prompts it does not hold. Against tests/det_server.py (deterministic, counts its answers)."""

from __future__ import annotations

import json
from pathlib import Path

import pyarrow.parquet as pq
import pytest

from rlaif.config.recipe import parse_recipe
from rlaif.core.errors import InputError, RecipeError, StoreError
from rlaif.pipeline.incremental import NothingNew
from rlaif.pipeline.runner import run_recipe
from rlaif.pipeline.summary import summary_lines
from rlaif.store.diff import diff_versions
from rlaif.store.versions import folder_digest, list_versions, load_manifest, versions_dir
from tests.badinput import assert_clean_failure, run_cli, write_recipe
from tests.det_server import DetServer

# `rlaif run` in a child process uses the session's Prefect server (tests/conftest.py: shared_prefect)

QUESTIONS = [f"Question number {i}: what is {i} + {i} times {i}?" for i in range(40)]
TABLES = ("pairs", "prompts", "generations", "judgments")
CALLS_PER_PROMPT = 2 + 2  # two samples, then one pair judged in both orders


def write_prompts(path: Path, questions: list[str], first_id: int = 0) -> Path:
    path.write_text(
        "".join(json.dumps({"id": f"p{first_id + i}", "prompt": q}) + "\n" for i, q in enumerate(questions))
    )
    return path


def recipe_data(tmp_path: Path, base_url: str, count: int, parent: str | None = None, **changes) -> dict:
    endpoint = {"backend": "openai", "base_url": base_url, "model": "det"}
    data = {
        "name": "inc",
        "prompts": {"path": str(write_prompts(tmp_path / f"prompts-{count}.jsonl", QUESTIONS[:count]))},
        "policies": [{"name": "pol", **endpoint, "params": {"temperature": 0.9, "max_tokens": 16}}],
        "samples_per_prompt": 2,
        "judge": endpoint,
        "filters": {"consistency": False, "min_margin": 0.0},
    }
    if parent is not None:
        data["parent"] = parent
    for key, value in changes.items():
        data[key] = value
    return data


def run(tmp_path: Path, server: DetServer, count: int, parent: str | None = None, **changes):
    """(version id, manifest, calls the server answered, the run)."""
    before = server.calls
    version_id, _, manifest, state = run_recipe(
        parse_recipe(recipe_data(tmp_path, server.base_url, count, parent, **changes)), tmp_path / "store"
    )
    return version_id, manifest, server.calls - before, state


def rows(store: Path, version_id: str, table: str) -> list[dict]:
    return pq.read_table(versions_dir(store) / version_id / f"{table}.parquet").to_pylist()


@pytest.fixture(scope="module")
def child(tmp_path_factory):
    """Version A from 20 prompts, then B: the same recipe on 30 prompts (A's 20 first) with `parent: A`."""
    tmp_path = tmp_path_factory.mktemp("child")
    with DetServer() as server:
        a, manifest_a, calls_a, _ = run(tmp_path, server, 20)
        b, manifest, calls_b, state = run(tmp_path, server, 30, parent=a)
    return tmp_path / "store", a, b, manifest_a, manifest, calls_a, calls_b, state


@pytest.mark.slow
@pytest.mark.usefixtures("shared_prefect")  # its child processes use the session's Prefect server
def test_a_child_judges_only_the_new_prompts_and_holds_the_parents_rows_then_the_new_ones(child):
    store, a, b, manifest_a, manifest, calls_a, calls_b, state = child
    assert calls_a == 20 * CALLS_PER_PROMPT
    assert (
        calls_b == manifest["calls"]["live"] == 10 * CALLS_PER_PROMPT and manifest["calls"]["cached"] == 0
    )  # the 20 old prompts: no call at all
    new_ids = {f"p{i}" for i in range(20, 30)}
    for table in TABLES:
        old, new = rows(store, a, table), rows(store, b, table)
        key = "id" if table == "prompts" else "prompt_id"
        assert new[: len(old)] == old, table  # the parent's rows, unchanged and first
        assert {row[key] for row in new[len(old) :]} == new_ids and len(new) > len(old), table
    stored = load_manifest(store, b)
    assert (
        stored["parents"] == [a] and folder_digest(versions_dir(store) / b, stored) == b.rsplit("-", 1)[1]
    )  # the id hashes the merged tables
    inc = stored["incremental"]
    assert (inc["parent"], inc["prompts_skipped"], inc["new_prompts"], inc["new_pairs"]) == (a, 20, 10, 10)
    assert (
        stored["counts"]["prompts"] == 30 and stored["counts"]["kept"] == 30 and stored["counts"]["generations"] == 60
    )
    assert inc["new_judge"]["position_bias"]["n"] == 10 and stored["judge"]["position_bias"]["n"] == 30
    assert manifest_a["judge"]["position_bias"]["n"] == 20
    line = next(line for line in summary_lines(b, True, manifest, state.stats) if line.startswith("incremental"))
    assert f"incremental on {a}: new 10 prompts, 10 pairs" in line and "whole version 30 prompts, 30 pairs" in line


@pytest.mark.slow
@pytest.mark.usefixtures("shared_prefect")  # its child processes use the session's Prefect server
def test_diff_from_the_parent_shows_exactly_the_added_rows(child):
    store, a, b = child[:3]
    result = diff_versions(store, a, b)
    new_ids = {f"p{i}" for i in range(20, 30)}
    assert {key.split(" | ")[0] for key in result["rows"]["added"]} == new_ids and len(result["rows"]["added"]) == 10
    assert result["rows"]["removed"] == [] and result["rows"]["changed"] == [] and result["rows"]["unchanged"] == 20
    assert set(result["tables"]["prompts"]["added"]) == new_ids
    for table in ("prompts", "generations", "judgments"):
        assert result["tables"][table]["removed"] == [], table
    assert len(result["tables"]["generations"]["added"]) == 20 and result["counts"]["prompts"]["delta"] == 10
    shown = run_cli("datasets", "diff", a, b, "--store", str(store))
    assert shown.returncode == 0, shown.stderr
    text = " ".join(shown.stdout.split())
    assert f"builds on {a}" in text and "prompt added │ p25" in text and "removed │ 0" in text


@pytest.mark.slow
@pytest.mark.usefixtures("shared_prefect")  # its child processes use the session's Prefect server
def test_parent_latest_builds_on_the_newest_version_and_is_a_full_run_in_an_empty_store(tmp_path):
    with DetServer() as server:
        first, manifest, calls, state = run(tmp_path, server, 20, parent="latest")
        assert (
            manifest.get("parents", []) == []
            and manifest["incremental"]["parent"] is None
            and calls == 20 * CALLS_PER_PROMPT
        )
        assert any(
            "no version named 'inc'" in line and "a full run" in line
            for line in summary_lines(first, True, manifest, state.stats)
        )
        second, manifest, calls, _ = run(tmp_path, server, 30, parent="latest")
        third, manifest_3, calls_3, _ = run(tmp_path, server, 35, parent="latest")
    assert manifest["parents"] == [first] and calls == 10 * CALLS_PER_PROMPT
    assert (
        manifest_3["parents"] == [second] and calls_3 == 5 * CALLS_PER_PROMPT
    )  # the newest: second, though made in the same second as others
    assert load_manifest(tmp_path / "store", third)["counts"]["prompts"] == 35


def test_no_new_prompt_makes_no_version_and_says_so(tmp_path):
    with DetServer() as server:
        a, _, _, _ = run(tmp_path, server, 20)
        with pytest.raises(NothingNew, match=f"no new prompts since {a}: nothing to do") as caught:
            run(tmp_path, server, 20, parent="latest")
    assert caught.value.exit_code == 0
    assert [m["id"] for m in list_versions(tmp_path / "store")] == [a]


def test_a_new_prompt_that_duplicates_a_parent_prompt_is_not_judged_again(tmp_path):
    with DetServer() as server:
        a, _, _, _ = run(tmp_path, server, 5)
        path = write_prompts(
            tmp_path / "more.jsonl", [*QUESTIONS[:5], QUESTIONS[0].upper(), QUESTIONS[7]]
        )  # p5: p0 shouted
        data = recipe_data(tmp_path, server.base_url, 5, parent=a)
        data["prompts"]["path"] = str(path)
        _, _, manifest, _ = run_recipe(parse_recipe(data), tmp_path / "store")
    assert manifest["incremental"]["prompts_skipped"] == 6 and manifest["incremental"]["new_prompts"] == 1


def test_a_new_prompt_reusing_a_parent_id_is_an_error_naming_the_id(tmp_path):
    with DetServer() as server:
        a, _, _, _ = run(tmp_path, server, 5)
        path = write_prompts(tmp_path / "nightly.jsonl", QUESTIONS[10:12])  # ids p0, p1 again, other prompts
        data = recipe_data(tmp_path, server.base_url, 5, parent=a)
        data["prompts"]["path"] = str(path)
        with pytest.raises(InputError, match="prompt id 'p0' is already in the parent") as caught:
            run_recipe(parse_recipe(data), tmp_path / "store")
    assert "nightly.jsonl" in str(caught.value) and "new ids" in str(caught.value)


@pytest.mark.parametrize(
    "change, key",
    [
        ({"samples_per_prompt": 3}, "samples_per_prompt"),
        ({"filters": {"consistency": True, "min_margin": 0.0}}, "filters.consistency"),
        (
            {
                "policies": [
                    {
                        "name": "pol",
                        "backend": "openai",
                        "base_url": "URL",
                        "model": "det",
                        "params": {"temperature": 0.5, "max_tokens": 16},
                    }
                ]
            },
            "policies[0].params.temperature",
        ),
        ({"prompts": {"system": "Be brief."}}, "prompts.system"),
    ],
)
def test_a_parent_made_by_another_recipe_is_an_error_naming_what_differs(tmp_path, change, key):
    with DetServer() as server:
        a, _, _, _ = run(tmp_path, server, 5)
        data = recipe_data(tmp_path, server.base_url, 8, parent=a)
        for name, value in json.loads(json.dumps(change).replace("URL", server.base_url)).items():
            data[name] = {**data[name], **value} if name == "prompts" else value
        calls = server.calls
        with pytest.raises(RecipeError, match="another recipe") as caught:
            run_recipe(parse_recipe(data), tmp_path / "store")
        assert server.calls == calls
    assert key in str(caught.value) and a in str(caught.value) and "remove `parent:`" in str(caught.value)


def test_a_parent_not_in_the_store_is_an_error_naming_the_id_and_the_store(tmp_path):
    with DetServer() as server, pytest.raises(StoreError) as caught:
        run(tmp_path, server, 5, parent="inc-0123456789ab")
    assert "inc-0123456789ab" in str(caught.value) and str(tmp_path / "store") in str(caught.value)


def test_parent_must_be_a_version_id_or_latest():
    with pytest.raises(RecipeError, match="parent") as caught:
        parse_recipe({"name": "t", "policies": [{"name": "p"}], "parent": "../elsewhere"})
    assert "latest" in str(caught.value)


@pytest.mark.slow
@pytest.mark.usefixtures("shared_prefect")  # its child processes use the session's Prefect server
def test_cli_runs_a_child_then_says_nothing_to_do_and_refuses_bad_parents(tmp_path):
    store = tmp_path / "store"
    with DetServer() as server:
        a, _, _, _ = run(tmp_path, server, 6)
        child = write_recipe(tmp_path, recipe_data(tmp_path, server.base_url, 9, parent="latest"))
        made = run_cli("run", str(child), "--store", str(store), "--no-prefect", process=True)
        assert made.returncode == 0, made.stderr
        assert f"incremental on {a}: new 3 prompts" in made.stdout
        again = run_cli("run", str(child), "--store", str(store), "--no-prefect")
        assert again.returncode == 0 and "no new prompts since" in again.stdout and "nothing to do" in again.stdout, (
            again.stderr
        )
        assert len(list_versions(store)) == 2
        other = write_recipe(
            tmp_path, recipe_data(tmp_path, server.base_url, 9, parent=a, samples_per_prompt=3), "other.yaml"
        )
        assert_clean_failure(
            run_cli("run", str(other), "--store", str(store), "--no-prefect"), "parent", a, "samples_per_prompt"
        )
        missing = write_recipe(
            tmp_path, recipe_data(tmp_path, server.base_url, 9, parent="inc-0123456789ab"), "missing.yaml"
        )
        empty = tmp_path / "empty-store"
        assert_clean_failure(
            run_cli("run", str(missing), "--store", str(empty), "--no-prefect"),
            "inc-0123456789ab",
            str(empty),
            store=empty,
        )
    assert len(list_versions(store)) == 2


@pytest.mark.slow
@pytest.mark.usefixtures("shared_prefect")  # its child processes use the session's Prefect server
def test_a_prefect_flow_run_with_no_new_prompt_completes_and_says_so(tmp_path):
    """A nightly deployment's run that finds nothing new: the flow (its own ephemeral server) ends without a version, exit 0."""
    store = tmp_path / "store"
    with DetServer() as server:
        a, _, _, _ = run(tmp_path, server, 4)
        same = write_recipe(tmp_path, recipe_data(tmp_path, server.base_url, 4, parent="latest"))
        result = run_cli("run", str(same), "--store", str(store), timeout=300, process=True)
    assert result.returncode == 0, result.stderr
    assert f"no new prompts since {a}: nothing to do" in " ".join(result.stdout.split())
    assert [m["id"] for m in list_versions(store)] == [a]


def test_a_field_added_to_rlaif_since_the_parent_differs_only_when_set():
    from rlaif.pipeline.incremental import differences

    recipe = parse_recipe({"name": "t", "policies": [{"name": "p"}]})
    older = recipe.model_dump(mode="json")
    older.pop("samples_per_prompt")  # as if the parent predates the field
    assert differences(older, recipe) == {}
    assert differences(older, parse_recipe({"name": "t", "policies": [{"name": "p"}], "samples_per_prompt": 3})) == {
        "samples_per_prompt": [None, 3]
    }
    assert (
        differences({**recipe.model_dump(mode="json"), "prompts": {"path": "other.jsonl"}, "name": "u"}, recipe) == {}
    )  # which prompts: not compared
