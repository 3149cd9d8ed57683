"""The store of trained models (rlaif.store.models): commit, find, list, show, lineage; atomic
commits (a concurrent identical commit keeps one, a half-written folder is never a model), bad ids,
damaged manifests, the model card, `rlaif models ...`, and model ids as `model:` (resolution, preflight,
`rlaif datasets lineage` of a version made with a trained model). No model is loaded here: the weights
are a config.json stand-in (tests/test_model_policy.py uses real weights)."""

from __future__ import annotations

import json
import multiprocessing
import os
from functools import partial
from pathlib import Path

import pytest
from typer.testing import CliRunner

from rlaif.cli import app
from rlaif.core.errors import BackendError, StoreError
from rlaif.judges.measure import quality_warnings
from rlaif.publish.model_card import render_model_card
from rlaif.store import models as ms
from rlaif.store.lineage import lineage, model_lineage
from rlaif.store.versions import commit_tables
from rlaif.weights.resolve import weights_path
from tests.badinput import assert_clean_failure, run_cli, write_recipe
from tests.test_export import MANIFEST, pairwise_tables

FIGURES = {
    "n": 40,
    "agreement": 0.55,
    "baseline_longer": 0.69,
    "position_consistency": 0.1,
    "position_consistency_debiased": 0.3,
}
EVAL = {
    **FIGURES,
    "warnings": quality_warnings(FIGURES),
}  # as a run stores its judge measurement (rlaif.judges.measure.measure_judge)


def dataset(store: Path, manifest: dict | None = None) -> str:
    return commit_tables(store, "crafted", pairwise_tables(), {**MANIFEST, "eval": EVAL, **(manifest or {})})[0]


def model_manifest(version_id: str, **extra) -> dict:
    return {
        "algorithm": "dpo",
        "base_model": "smollm2-135m",
        "base_model_path": "/cache/smollm2-135m",
        "dataset": {"id": version_id, "name": "crafted", "counts": MANIFEST["counts"], "eval": EVAL},
        "parents": [version_id],
        "settings": {"max_steps": 2, "learning_rate": 5e-6, "beta": 0.1},
        "reward": None,
        "metrics": {"loss": 0.6931, "reward_accuracy": 0.5},
        "steps": 2,
        "seconds": 6.5,
        "hardware": {"device": "cpu", "gpu": None, "cpu_count": 2, "torch": "2.13.0"},
        **extra,
    }


def workdir_with_weights(store: Path, model_id: str, kind: str = "model") -> Path:
    work = ms.new_model_workdir(store, model_id)
    (work / kind).mkdir()
    (work / kind / ("config.json" if kind == "model" else "adapter_config.json")).write_text("{}")
    (work / "metrics.jsonl").write_text('{"step": 1, "loss": 0.7}\n')
    return work


def committed(store: Path, version_id: str | None = None, name: str = "dpo-crafted") -> tuple[str, Path]:
    version_id = version_id or dataset(store)
    model_id = ms.model_id_for(name, {"dataset": version_id, "algorithm": "dpo"})
    return model_id, ms.commit_model(
        store,
        model_id,
        workdir_with_weights(store, model_id),
        model_manifest(version_id),
        card=partial(render_model_card, store=store),
    )


def entries(store: Path) -> list[str]:
    return sorted(p.name for p in ms.models_dir(store).iterdir())


def test_commit_then_find_list_load_and_weights(tmp_path):
    store = tmp_path / "store"
    version_id = dataset(store)
    model_id, path = committed(store, version_id)
    assert path == ms.models_dir(store) / model_id and ms.find_model(store, model_id) == path
    assert entries(store) == [model_id]  # no temporary folder or lock left
    assert sorted(p.name for p in path.iterdir()) == ["README.md", "manifest.json", "metrics.jsonl", "model"]
    manifest = ms.load_model_manifest(store, model_id)
    assert (manifest["id"], manifest["kind"], manifest["name"], manifest["weights"], manifest["lora"]) == (
        model_id,
        "model",
        "dpo-crafted",
        "model",
        False,
    )
    assert manifest["dataset"]["id"] == version_id and manifest["parents"] == [version_id]
    assert [m["id"] for m in ms.list_models(store)] == [model_id]
    assert weights_path(store, model_id) == str(path / "model")
    assert (
        ms.model_id_for("dpo-crafted", {"algorithm": "dpo", "dataset": version_id}) == model_id
    )  # key order does not matter
    assert ms.find_model(store, "dpo-crafted-000000000000") is None


def test_a_second_commit_of_the_same_model_keeps_the_first(tmp_path):
    store = tmp_path / "store"
    version_id = dataset(store)
    model_id, path = committed(store, version_id)
    first = path.joinpath("manifest.json").read_text()
    again = ms.commit_model(
        store,
        model_id,
        workdir_with_weights(store, model_id),
        model_manifest(version_id, steps=99),
        card=partial(render_model_card, store=store),
    )
    assert again == path and path.joinpath("manifest.json").read_text() == first
    assert entries(store) == [model_id]


def _commit_in_child(store: str, model_id: str, version_id: str, barrier) -> None:
    work = workdir_with_weights(Path(store), model_id)
    barrier.wait()
    ms.commit_model(
        store,
        model_id,
        work,
        model_manifest(version_id, pid=os.getpid()),
        card=partial(render_model_card, store=store),
    )


def test_concurrent_identical_commits_keep_one(tmp_path):
    store = tmp_path / "store"
    version_id = dataset(store)
    model_id = ms.model_id_for("dpo-crafted", {"dataset": version_id})
    ctx = multiprocessing.get_context("fork")
    barrier = ctx.Barrier(3)
    children = [
        ctx.Process(target=_commit_in_child, args=(str(store), model_id, version_id, barrier)) for _ in range(3)
    ]
    for child in children:
        child.start()
    for child in children:
        child.join(60)
    assert [child.exitcode for child in children] == [0, 0, 0]
    assert entries(store) == [model_id]
    assert ms.load_model_manifest(store, model_id)["pid"] in {child.pid for child in children}


def _abandon(store: str, model_id: str) -> None:
    workdir_with_weights(Path(store), model_id)
    os._exit(0)  # killed half-way: the folder stays, its lock dies with the process


def test_a_half_written_model_is_never_visible_and_an_abandoned_one_is_removed(tmp_path):
    store = tmp_path / "store"
    version_id = dataset(store)
    live = workdir_with_weights(store, "dpo-crafted-0123456789ab")  # still being written by this process
    assert ms.list_models(store) == [] and ms.find_model(store, "dpo-crafted-0123456789ab") is None
    child = multiprocessing.get_context("fork").Process(target=_abandon, args=(str(store), "dpo-crafted-ba9876543210"))
    child.start()
    child.join(60)
    assert len([p for p in entries(store) if not p.endswith(".lock")]) == 2
    assert ms.remove_abandoned_models(store) and live.is_dir()  # the dead one goes, the live one stays
    ms.commit_model(
        store,
        "dpo-crafted-0123456789ab",
        live,
        model_manifest(version_id),
        card=partial(render_model_card, store=store),
    )
    assert entries(store) == ["dpo-crafted-0123456789ab"]


def test_commit_without_weights_or_with_a_secret_commits_nothing(tmp_path, monkeypatch):
    store = tmp_path / "store"
    version_id = dataset(store)
    work = ms.new_model_workdir(store, "dpo-crafted-0123456789ab")
    with pytest.raises(StoreError, match=r"no weights to commit.*save_pretrained"):
        ms.commit_model(
            store,
            "dpo-crafted-0123456789ab",
            work,
            model_manifest(version_id),
            card=partial(render_model_card, store=store),
        )
    token = "hf_" + "a1" * 17
    monkeypatch.setenv("HF_TOKEN", token)
    work = workdir_with_weights(store, "dpo-crafted-0123456789ab")
    with pytest.raises(StoreError, match=r"field `settings.hub_token` holds a known secret"):
        ms.commit_model(
            store,
            "dpo-crafted-0123456789ab",
            work,
            model_manifest(version_id, settings={"hub_token": token}),
            card=partial(render_model_card, store=store),
        )
    assert entries(store) == []


BAD_IDS = ["nope", "../escape-0123456789ab", "a/b-0123456789ab", "x-0123456789AB", "", "-x-0123456789ab"]


@pytest.mark.parametrize("bad", BAD_IDS)
def test_bad_model_ids_are_store_errors(tmp_path, bad):
    store = tmp_path / "store"
    with pytest.raises(StoreError, match=r"is not a model id.*rlaif models list"):
        ms.load_model_manifest(store, bad)
    with pytest.raises(StoreError, match="is not a model id"):
        ms.new_model_workdir(store, bad)
    assert ms.find_model(store, bad) is None and not store.exists()


DAMAGES = {
    "not json": ("{not json", "not valid JSON"),
    "a list": ("[1, 2]", "a JSON array, not an object"),
    "another id": ('{"id": "other-0123456789ab"}', "is 'other-0123456789ab', not the folder's name"),
    "not utf-8": (b"\xff\xfe{}", "not UTF-8"),
}


def damage(store: Path, model_id: str, content: str | bytes | None) -> Path:
    path = ms.models_dir(store) / model_id / "manifest.json"
    if content is None:
        path.unlink()
    elif isinstance(content, bytes):
        path.write_bytes(content)
    else:
        path.write_text(content)
    return path


@pytest.mark.parametrize("case", sorted(DAMAGES))
def test_a_damaged_manifest_names_the_file_and_the_fix(tmp_path, case):
    store = tmp_path / "store"
    model_id, _ = committed(store)
    path = damage(store, model_id, DAMAGES[case][0])
    with pytest.raises(StoreError) as caught:
        ms.load_model_manifest(store, model_id)
    assert (
        str(path) in str(caught.value)
        and DAMAGES[case][1] in str(caught.value)
        and "delete its folder" in str(caught.value)
    )
    assert ms.list_models(store)[0]["id"] == model_id and DAMAGES[case][1] in ms.list_models(store)[0]["broken"]


def test_a_missing_manifest_is_a_damaged_model(tmp_path):
    store = tmp_path / "store"
    model_id, _ = committed(store)
    path = damage(store, model_id, None)
    with pytest.raises(StoreError, match=r"manifest.json: missing - the model is damaged"):
        ms.load_model_manifest(store, model_id)
    assert str(path) in str(ms.list_models(store)[0]["broken"])


def test_card_names_the_dataset_version_judge_figures_and_warning(tmp_path):
    store = tmp_path / "store"
    version_id = dataset(store)
    model_id, path = committed(store, version_id)
    card = (path / "README.md").read_text()
    assert card.startswith("---\n") and "base_model: HuggingFaceTB/SmolLM2-135M-Instruct" in card
    for text in (
        model_id,
        f"dataset version `{version_id}`",
        "| agreement with the human label | 0.55 |",
        "| agreement of the rule 'the longer one wins' | 0.69 |",
        "| order consistency, position bias removed | 0.3 |",
        'the judge does not beat "pick the longer response"',
        "beta: 0.1",
        "| loss | 0.6931 |",
        "| device | cpu |",
        "| training time (s) | 6.5 |",
        "prompts: data/prompts.jsonl",
        "`dpo` training of `smollm2-135m`",
    ):
        assert text in card, text
    from huggingface_hub import ModelCard

    assert ModelCard.load(path / "README.md").data.rlaif["dataset_version"] == version_id


def test_card_without_judge_evaluation_says_so(tmp_path):
    store = tmp_path / "store"
    version_id = dataset(store, {"eval": None})
    model_id = ms.model_id_for("rm-crafted", {"dataset": version_id})
    manifest = model_manifest(version_id, algorithm="rm", dataset={"id": version_id, "eval": None})
    card = (
        ms.commit_model(
            store,
            model_id,
            workdir_with_weights(store, model_id, "adapter"),
            manifest,
            card=partial(render_model_card, store=store),
        )
        / "README.md"
    ).read_text()
    assert "No human-agreement evaluation was recorded" in card and "Warning" not in card
    assert "library_name: peft" in card and "pipeline_tag: text-classification" in card


def test_model_lineage_reaches_the_dataset_version_its_prompts_and_judge(tmp_path):
    store = tmp_path / "store"
    parent = dataset(store, {"recipe": {**MANIFEST["recipe"], "name": "base"}})
    version_id = dataset(store, {"parents": [parent]})
    model_id, _ = committed(store, version_id)
    tree = model_lineage(store, model_id)
    assert (tree["kind"], tree["id"], tree["algorithm"], tree["dataset"]) == ("model", model_id, "dpo", version_id)
    (data,) = tree["parents"]
    assert (
        data["id"] == version_id
        and data["models"]["judge"]["model"] == "smollm2-135m"
        and data["prompts"]["path"] == "data/prompts.jsonl"
    )
    assert [p["id"] for p in data["parents"]] == [parent]


def test_dataset_lineage_shows_a_trained_policy_and_through_it_its_dataset(tmp_path):
    store = tmp_path / "store"
    trained_on = dataset(store)
    model_id, _ = committed(store, trained_on)
    models = {
        "policies": [{"name": "next", "backend": "transformers", "model": model_id}],
        "judge": {"backend": "transformers", "model": model_id},
    }
    made = dataset(store, {"models": models, "recipe": {**MANIFEST["recipe"], "name": "round2"}})
    tree = lineage(store, made)
    assert [(p["kind"], p["id"], p["role"]) for p in tree["parents"]] == [
        ("model", model_id, "policy 'next'"),
        ("model", model_id, "judge"),
    ]
    assert tree["parents"][0]["parents"][0]["id"] == trained_on and tree["parents"][1]["shown_above"] is True
    shown = CliRunner().invoke(app, ["datasets", "lineage", made, "--store", str(store)], terminal_width=200)
    assert shown.exit_code == 0, shown.output
    for text in (made, f"model {model_id} (policy 'next')", f"trained on {trained_on}", trained_on):
        assert text in shown.output, text


def test_cli_list_show_lineage(tmp_path):
    store = tmp_path / "store"
    assert_clean_failure(run_cli("models", "list", "--store", str(store)), f"no store at {store} (--store)")
    store.mkdir()
    assert "no trained models in" in run_cli("models", "list", "--store", str(store)).stdout
    version_id = dataset(store)
    model_id, _ = committed(store, version_id)
    listed = run_cli("models", "list", "--store", str(store), env={"COLUMNS": "80"})
    assert (
        listed.returncode == 0
        and model_id in listed.stdout
        and version_id in listed.stdout
        and "0.6931" in listed.stdout
        and "\u2026" not in listed.stdout  # at 80 columns no cell is cut (the walkthrough saw `algo…`, `demo…`)
    )
    shown = run_cli("models", "show", model_id, "--store", str(store), env={"COLUMNS": "250"})
    for text in (
        version_id,
        "judge agreement with humans",
        "0.55",
        "'pick the longer' baseline",
        "0.69",
        "setting beta",
        "metric loss",
    ):
        assert text in shown.stdout, text
    as_json = json.loads(run_cli("models", "show", model_id, "--json", "--store", str(store)).stdout)
    assert as_json["id"] == model_id and as_json["dataset"]["eval"] == EVAL
    tree = run_cli("models", "lineage", model_id, "--store", str(store), env={"COLUMNS": "250"})
    for text in (f"model {model_id}", f"trained on {version_id}", "prompts: data/prompts.jsonl", "judge smollm2-135m"):
        assert text in tree.stdout, text
    assert (
        json.loads(run_cli("models", "lineage", model_id, "--json", "--store", str(store)).stdout)["parents"][0]["id"]
        == version_id
    )
    for command in ("list", "show", "lineage"):
        helped = run_cli("models", command, "--help")
        assert helped.returncode == 0 and "Example: rlaif models" in " ".join(helped.stdout.split())


@pytest.mark.parametrize("command", ["show", "lineage"])
@pytest.mark.parametrize("bad", ["nope", "../x-0123456789ab", "dpo-crafted-0123456789ab"])
def test_cli_unknown_or_bad_id_fails_cleanly(tmp_path, command, bad):
    store = tmp_path / "store"
    store.mkdir()
    result = run_cli("models", command, bad, "--store", str(store))
    assert_clean_failure(result, repr(bad), str(store), store=store)


def test_cli_damaged_manifest_fails_cleanly(tmp_path):
    store = tmp_path / "store"
    model_id, _ = committed(store)
    path = damage(store, model_id, "{oops")
    result = run_cli("models", "show", model_id, "--store", str(store))
    assert_clean_failure(result, str(path), "not valid JSON", "delete its folder")


def test_model_ids_resolve_in_the_given_store(tmp_path, monkeypatch):
    from rlaif.weights.resolve import check_local_model, resolve_model

    store = tmp_path / "store"
    model_id, path = committed(store)
    assert resolve_model(model_id, store) == str(path / "model")
    check_local_model(model_id, store)
    monkeypatch.setenv("RLAIF_STORE", str(store))
    assert resolve_model(model_id) == str(path / "model")  # no store given: the default store
    other = tmp_path / "other"
    with pytest.raises(BackendError) as caught:
        check_local_model(model_id, other)
    assert (
        model_id in str(caught.value) and str(other) in str(caught.value) and "rlaif models list" in str(caught.value)
    )
    with pytest.raises(BackendError, match=model_id):
        resolve_model(model_id, other)


def test_run_with_an_unknown_model_id_fails_in_preflight(tmp_path):
    store = tmp_path / "store"
    prompts = tmp_path / "p.jsonl"
    prompts.write_text('{"prompt": "hi"}\n')
    recipe = write_recipe(
        tmp_path,
        {
            "name": "t",
            "prompts": {"path": str(prompts)},
            "policies": [{"name": "p", "model": "dpo-gone-0123456789ab"}],
        },
    )
    result = run_cli("run", str(recipe), "--store", str(store), "--no-prefect")
    assert_clean_failure(result, "policy 'p'", "dpo-gone-0123456789ab", str(store), "rlaif models list", store=store)


def test_an_empty_trainer_folder_is_not_committed(tmp_path):
    """A new user found an empty `trainer/` (TRL's output_dir) in every model folder, which no doc mentions."""
    store = tmp_path / "store"
    version_id = dataset(store)
    model_id = ms.model_id_for("dpo-crafted", {"dataset": version_id, "algorithm": "dpo"})
    work = workdir_with_weights(store, model_id)
    (work / "trainer").mkdir()
    path = ms.commit_model(
        store, model_id, work, model_manifest(version_id), card=partial(render_model_card, store=store)
    )
    assert sorted(p.name for p in path.iterdir()) == ["README.md", "manifest.json", "metrics.jsonl", "model"]
