"""The shipped listwise and pointwise recipes, run for real (smollm2-135m) on a few prompts:
the listwise version's pairs train in TRL's DPOTrainer (a step of the tiny random llama of tests/tiny_lm.py,
with smollm2's tokenizer and chat template: the rows' format is under test, not the model), the pointwise
version exports KTO rows."""

from __future__ import annotations

import pytest
import yaml

from rlaif.publish.export import export_version
from rlaif.store.formats import format_dataset
from rlaif.store.versions import load_manifest, read_table
from tests.badinput import run_cli
from tests.conftest import ROOT
from tests.test_e2e import summary

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


def run(recipe: str, store) -> dict:
    """`rlaif run RECIPE --limit 3` in a child process, as a user runs it; its summary. One torch thread, as
    `make test`'s workers give every child (tests/conftest.py): on this busy 2-core machine the two threads
    torch takes by default spun against each other (the listwise run: 252 s of CPU with 2, 66 s with 1)."""
    args = ("run", recipe, "--store", str(store), "--limit", "3")
    return summary(run_cli(*args, env={"OMP_NUM_THREADS": "1"}, timeout=900, process=True))


def test_listwise_recipe_version_trains_with_dpo(tmp_path, tiny_model):
    trl = pytest.importorskip("trl")
    from transformers import AutoModelForCausalLM, AutoTokenizer

    recipe = recipe_copy("listwise.yaml", tmp_path, consistency=False, min_margin=0.0, drop_truncated=False)
    result = run(recipe, tmp_path / "store")
    store, version = tmp_path / "store", result["version"]
    manifest = load_manifest(store, version)
    assert manifest["judge"]["type"] == "listwise" and manifest["judge"]["permutations"] == 4
    rankings = read_table(store, version, "rankings")
    assert len(rankings) == 3 and all(len(r["responses"]) >= 2 and r["agreement"] is not None for r in rankings)
    assert manifest["counts"]["kept"] >= 1
    dataset = format_dataset(store, version, "dpo")
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
        model=AutoModelForCausalLM.from_pretrained(tiny_model),
        args=config,
        train_dataset=dataset,
        processing_class=AutoTokenizer.from_pretrained(tiny_model),
    )
    assert trainer.train().global_step == 1


def test_pointwise_recipe_exports_kto(tmp_path):
    recipe = recipe_copy("pointwise.yaml", tmp_path)
    result = run(recipe, tmp_path / "store")
    store, version = tmp_path / "store", result["version"]
    feedback = read_table(store, version, "feedback")
    assert feedback and all(1 <= row["score"] <= 5 for row in feedback)
    out = export_version(store, version, "kto", tmp_path / "kto")
    rows = format_dataset(store, version, "kto")
    assert (out / "README.md").is_file() and len(rows) == len(feedback)
    assert set(rows.column_names) >= {"prompt", "completion", "label"}
