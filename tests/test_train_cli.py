"""`rlaif train` as a user runs it: the model id printed, 'already trained' on a re-run, and each bad
input a clean exit 2 naming what is wrong, with no traceback and nothing written."""

from __future__ import annotations

import json

import pytest
import yaml

from rlaif.store.versions import commit_tables
from tests.badinput import assert_clean_failure, run_cli
from tests.test_export import MANIFEST, pairwise_tables


@pytest.fixture(scope="module")
def version(tmp_path_factory):
    store = tmp_path_factory.mktemp("cli-train")
    return store, commit_tables(store, "crafted", pairwise_tables(), MANIFEST)[0]


def models_written(store) -> list[str]:
    folder = store / "models"
    return sorted(p.name for p in folder.iterdir()) if folder.exists() else []


def test_help_shows_the_algorithms_and_an_example():
    result = run_cli("train", "--help")
    assert result.returncode == 0
    for needle in ("sft", "grpo", "rrhf", "--dataset", "--lora", "--config", "rlaif train dpo --dataset"):
        assert needle in result.stdout


SLOW = pytest.mark.slow  # each run imports trl (to know the config fields): 5-20 s


@pytest.mark.parametrize(
    ("args", "config", "needles"),
    [
        (["nope"], None, ["unknown training algorithm 'nope'", "sft, rm, dpo"]),
        pytest.param(["dpo", "--dataset", "crafted-000000000000"], None, ["crafted-000000000000"], marks=SLOW),
        pytest.param(["dpo", "--dataset", "not-an-id"], None, ["not-an-id", "not a version id"], marks=SLOW),
        pytest.param(
            ["dpo"],
            {"betta": 0.1},
            ["train.yaml", "betta", "did you mean beta", "max_steps", "trl.DPOConfig"],
            marks=SLOW,
        ),
        pytest.param(["sft"], {"soft_labels": "smoothing"}, ["train.yaml", "soft_labels"], marks=SLOW),
        pytest.param(["grpo"], {"max_steps": 1}, ["reward", "reward: {model: RM_MODEL_ID}"], marks=SLOW),
        pytest.param(["dpo", "--model", "/no/such/model"], None, ["/no/such/model"], marks=SLOW),
    ],
    ids=["algorithm", "missing-version", "bad-id", "yaml-field", "soft-labels", "no-reward", "bad-model"],
)
def test_bad_inputs_exit_2_naming_the_problem(version, tmp_path, args, config, needles):
    store, version_id = version
    extra = list(args[1:])
    if "--dataset" not in extra:
        extra += ["--dataset", version_id]
    if "--model" not in extra:
        extra += ["--model", "smollm2-135m"]
    if config is not None:
        path = tmp_path / "train.yaml"
        path.write_text(yaml.safe_dump(config))
        extra += ["--config", str(path)]
    before = models_written(store)
    result = run_cli("train", args[0], *extra, "--store", str(store))
    assert_clean_failure(result, *needles)
    assert [name for name in models_written(store) if not name.startswith(".")] == [
        name for name in before if not name.startswith(".")
    ]


@pytest.mark.slow
def test_trl_missing_says_how_to_install(version, tmp_path):
    """Without trl on the path (a stub package that fails to import) the message names the extra."""
    store, version_id = version
    stub = tmp_path / "stub"
    (stub / "trl").mkdir(parents=True)
    (stub / "trl" / "__init__.py").write_text("raise ImportError('trl is not installed')\n")
    result = run_cli(
        "train",
        "dpo",
        "--dataset",
        version_id,
        "--model",
        "smollm2-135m",
        "--store",
        str(store),
        env={"PYTHONPATH": str(stub)},
        process=True,  # PYTHONPATH is read as the interpreter starts
    )
    assert_clean_failure(result, "pip install 'rlaif[train]'")


@pytest.mark.slow
def test_trains_a_lora_adapter_prints_the_id_then_reports_it_as_existing(version):
    store, version_id = version
    args = (
        "train",
        "sft",
        "--dataset",
        version_id,
        "--model",
        "smollm2-135m",
        "--max-steps",
        "1",
        "--lora",
        "--store",
        str(store),
    )
    first = run_cli(*args, timeout=600, process=True)
    assert first.returncode == 0, first.stderr
    model_id = first.stdout.strip().splitlines()[-1]
    assert model_id.startswith("crafted-sft-") and "Traceback" not in first.stderr
    folder = store / "models" / model_id
    assert (folder / "adapter" / "adapter_config.json").is_file() and not (folder / "model").exists()
    manifest = json.loads((folder / "manifest.json").read_text())
    assert manifest["lora"] is True and manifest["weights"] == "adapter" and manifest["settings"]["max_steps"] == 1
    second = run_cli(*args, timeout=600, process=True)
    assert second.returncode == 0 and f"already trained: {model_id}" in second.stdout
