"""The real thing: smollm2-135m as policy and judge, a real Prefect flow run from the CLI,
a re-run that makes no live call, and the version fed to TRL's DPOTrainer."""

from __future__ import annotations

import json
import re
import subprocess
import urllib.request
from pathlib import Path

import pytest
import yaml

from rlaif.store.versions import list_versions, load_manifest, read_table
from tests.badinput import run_cli
from tests.conftest import ROOT

pytestmark = pytest.mark.slow

RECIPE = {
    "name": "e2e",
    "prompts": {"path": str(ROOT / "data/prompts.jsonl"), "system": "Answer in one short sentence."},
    "policies": [
        {"name": "smol", "model": "smollm2-135m", "params": {"temperature": 1.0, "max_tokens": 24, "seed": 3}}
    ],
    "samples_per_prompt": 2,
    "judge": {"model": "smollm2-135m"},
    # permissive filters so that a 4-prompt run keeps rows for training; the demo keeps them strict
    "filters": {"consistency": False, "min_margin": 0.0, "drop_truncated": False},
}


def run(recipe: Path, store: Path) -> subprocess.CompletedProcess:
    """`rlaif run` on 4 prompts, in a child process as a user runs it (the model, the Prefect flow and its server)."""
    return run_cli("run", str(recipe), "--store", str(store), "--limit", "4", timeout=900, process=True)


def summary(result: subprocess.CompletedProcess) -> dict:
    assert result.returncode == 0, result.stdout + result.stderr
    calls = re.search(r"calls: live (\d+), cached (\d+), failed (\d+)", result.stdout)
    version = re.search(r"version: (\S+)", result.stdout)
    assert calls and version, result.stdout
    assert result.stdout.strip().splitlines()[-1].startswith("version: "), "the summary must end in the version id"
    return {"live": int(calls[1]), "cached": int(calls[2]), "failed": int(calls[3]), "version": version[1]}


@pytest.fixture(scope="module")
def demo_run(tmp_path_factory):
    folder = tmp_path_factory.mktemp("e2e")
    recipe = folder / "recipe.yaml"
    recipe.write_text(yaml.safe_dump(RECIPE))
    store = folder / "store"
    result = run(recipe, store)
    # issue 26 item 3: a link that opens (the local server that runs share serves the UI: tests/test_shared_server.py)
    link = re.search(r"View at (http://\S+)", result.stdout + result.stderr)
    assert link, result.stdout + result.stderr
    page = urllib.request.Request(link[1], headers={"Accept": "text/html"})  # as a browser asks
    with urllib.request.urlopen(page, timeout=10) as answer:
        assert answer.status == 200
    # output to a file, as with nohup or CI: no carriage-return bars of the Hugging Face libraries, no line broken at 80
    assert "\r" not in result.stdout + result.stderr, result.stderr[-2000:]
    # the progress artifact's updates go to the run's own server: none starts a temporary server of Prefect's (they
    # did, from threads without the flow's context: seconds each, and the updates landed on another server)
    assert "Starting temporary server" not in result.stdout + result.stderr, result.stderr[-3000:]
    assert re.search(r"^tokens: sampling .* not billed", result.stdout, re.M), result.stdout
    # the flow logs its summary for the UI; `rlaif run` prints it once, on stdout, not again through Prefect's console
    assert (result.stdout + result.stderr).count("\nversion: ") + result.stdout.startswith("version: ") == 1
    first = summary(result)
    return {"recipe": recipe, "store": store, "first": first}


def test_run_commits_a_version_with_a_full_manifest(demo_run):
    store, first = demo_run["store"], demo_run["first"]
    assert first["live"] == 4 * 2 + 4 * 2 and first["failed"] == 0  # 8 samples + 4 pairs x 2 orders
    manifest = load_manifest(store, first["version"])
    for key in (
        "id",
        "name",
        "created_at",
        "parents",
        "recipe",
        "models",
        "prompt_templates",
        "counts",
        "calls",
        "tokens",
        "package_version",
    ):
        assert key in manifest, key
    assert (
        manifest["prompt_templates"]["pairwise_judge.j2"]
        == __import__("hashlib").sha256((ROOT / "rlaif/judges/prompts/pairwise_judge.j2").read_bytes()).hexdigest()
    )
    counts = manifest["counts"]
    assert counts["in"] == 4 and counts["kept"] + sum(counts["dropped"].values()) == 4
    assert manifest["judge"]["position_bias"]["n"] > 0 and manifest["tokens"]["completion"] > 0
    judgments = read_table(store, first["version"], "judgments")
    assert all(j["soft"] and 0 < j["p_a_ab"] < 1 and j["prob_mass"] > 0.3 for j in judgments)
    generations = read_table(store, first["version"], "generations")
    assert len(generations) == 8 and all(g["finish_reason"] in ("stop", "length") for g in generations)


def test_rerun_makes_no_live_call_and_reports_the_same_version(demo_run):
    again = summary(run(demo_run["recipe"], demo_run["store"]))
    assert again["live"] == 0 and again["cached"] == demo_run["first"]["live"]
    assert again["version"] == demo_run["first"]["version"]
    assert len(list_versions(demo_run["store"])) == 1


def test_datasets_list_and_show(demo_run):
    store, version = str(demo_run["store"]), demo_run["first"]["version"]
    listed = run_cli("datasets", "list", "--store", store)
    assert listed.returncode == 0 and version in listed.stdout
    shown = run_cli("datasets", "show", version, "--store", store, "--rows", "1")
    assert shown.returncode == 0 and json.loads(shown.stdout)["id"] == version
    missing = run_cli("datasets", "show", "nope-123", "--store", store)
    assert missing.returncode == 2 and "no version 'nope-123'" in missing.stderr


def test_version_trains_with_trl_dpo_for_two_steps(demo_run, tmp_path):
    trl = pytest.importorskip("trl")
    from transformers import AutoModelForCausalLM, AutoTokenizer

    from rlaif.store.formats import preference_dataset
    from rlaif.weights.resolve import resolve_model

    dataset = preference_dataset(demo_run["store"], demo_run["first"]["version"])
    assert len(dataset) >= 1 and isinstance(dataset[0]["prompt"], list)
    path = resolve_model("smollm2-135m")
    tokenizer = AutoTokenizer.from_pretrained(path)
    model = AutoModelForCausalLM.from_pretrained(path)
    config = trl.DPOConfig(
        output_dir=str(tmp_path),
        max_steps=2,
        per_device_train_batch_size=1,
        bf16=False,
        report_to=[],
        logging_steps=1,
        save_strategy="no",
        max_length=256,
    )
    trainer = trl.DPOTrainer(model=model, args=config, train_dataset=dataset, processing_class=tokenizer)
    result = trainer.train()
    assert result.global_step == 2
    assert all(
        "loss" in entry for entry in trainer.state.log_history if "step" in entry and "train_runtime" not in entry
    )
