"""The shipped listwise and pointwise recipes, run for real (smollm2-135m) on a few prompts:
the listwise version's pairs train in TRL's DPOTrainer, the pointwise version exports KTO rows."""

from __future__ import annotations

import pytest
import yaml

from rlaif.publish.export import export_version
from rlaif.store.formats import format_dataset
from rlaif.store.versions import load_manifest, read_table
from tests.conftest import ROOT
from tests.test_e2e import rlaif, summary

# `rlaif run` in a child process uses the session's Prefect server (tests/conftest.py: shared_prefect)
pytestmark = [pytest.mark.slow, pytest.mark.usefixtures("shared_prefect")]


def recipe_copy(name: str, folder, **filters) -> str:
    """The shipped recipe with absolute paths; `filters` loosened only where a 3-prompt run needs rows."""
    data = yaml.safe_load((ROOT / "recipes" / name).read_text())
    data["prompts"]["path"] = str(ROOT / data["prompts"]["path"])
    data["filters"].update(filters)
    path = folder / name
    path.write_text(yaml.safe_dump(data))
    return str(path)


def test_listwise_recipe_version_trains_with_dpo(tmp_path):
    trl = pytest.importorskip("trl")
    from transformers import AutoModelForCausalLM, AutoTokenizer

    from rlaif.weights.resolve import resolve_model

    recipe = recipe_copy("listwise.yaml", tmp_path, consistency=False, min_margin=0.0, drop_truncated=False)
    result = summary(rlaif("run", recipe, "--store", str(tmp_path / "store"), "--limit", "3"))
    store, version = tmp_path / "store", result["version"]
    manifest = load_manifest(store, version)
    assert manifest["judge"]["type"] == "listwise" and manifest["judge"]["permutations"] == 4
    rankings = read_table(store, version, "rankings")
    assert len(rankings) == 3 and all(len(r["responses"]) >= 2 and r["agreement"] is not None for r in rankings)
    assert manifest["counts"]["kept"] >= 1
    dataset = format_dataset(store, version, "dpo")
    path = resolve_model("smollm2-135m")
    config = trl.DPOConfig(
        output_dir=str(tmp_path / "out"),
        max_steps=1,
        per_device_train_batch_size=1,
        bf16=False,
        report_to=[],
        save_strategy="no",
        max_length=256,
    )
    trainer = trl.DPOTrainer(
        model=AutoModelForCausalLM.from_pretrained(path),
        args=config,
        train_dataset=dataset,
        processing_class=AutoTokenizer.from_pretrained(path),
    )
    assert trainer.train().global_step == 1


def test_pointwise_recipe_exports_kto(tmp_path):
    recipe = recipe_copy("pointwise.yaml", tmp_path)
    result = summary(rlaif("run", recipe, "--store", str(tmp_path / "store"), "--limit", "3"))
    store, version = tmp_path / "store", result["version"]
    feedback = read_table(store, version, "feedback")
    assert feedback and all(1 <= row["score"] <= 5 for row in feedback)
    out = export_version(store, version, "kto", tmp_path / "kto")
    rows = format_dataset(store, version, "kto")
    assert (out / "README.md").is_file() and len(rows) == len(feedback)
    assert set(rows.column_names) >= {"prompt", "completion", "label"}
