"""A trained model of the store used as `model:` in a recipe, with the real smollm2-135m weights:
a full model (the base with one weight changed) as the policy and the judge of `rlaif run`, whose new
version's lineage shows the model and the dataset version it was trained on; and a LoRA adapter
model, merged into its base once, that loads and generates."""

from __future__ import annotations

import json
import os
from functools import partial
from pathlib import Path

import pytest

from rlaif.publish.model_card import render_model_card
from rlaif.store import models as ms
from rlaif.store.versions import commit_tables, load_manifest, read_table
from rlaif.weights.resolve import weights_path
from tests.badinput import run_cli, write_recipe
from tests.conftest import ROOT
from tests.test_export import MANIFEST, pairwise_tables

pytestmark = pytest.mark.slow
torch = pytest.importorskip("torch")
transformers = pytest.importorskip("transformers")


@pytest.fixture(scope="module")
def base_path() -> str:
    from rlaif.weights.resolve import resolve_model

    return resolve_model("smollm2-135m")


@pytest.fixture(scope="module")
def store(tmp_path_factory) -> Path:
    return tmp_path_factory.mktemp("models") / "store"


def manifest_for(version_id: str, base_path: str, **extra) -> dict:
    return {
        "algorithm": "sft",
        "base_model": "smollm2-135m",
        "base_model_path": base_path,
        "dataset": {"id": version_id, "name": "crafted", "counts": MANIFEST["counts"], "eval": None},
        "parents": [version_id],
        "settings": {"max_steps": 1},
        "reward": None,
        "metrics": {"loss": 1.0},
        "steps": 1,
        "seconds": 1.0,
        "hardware": {"device": "cpu"},
        **extra,
    }


def changed_model(store: Path, base_path: str) -> tuple[str, str]:
    """(model id, dataset version id): the base with one LayerNorm weight nudged, committed as a model of a real version."""
    version_id = commit_tables(store, "crafted", pairwise_tables(), MANIFEST)[0]
    model_id = ms.model_id_for("sft-crafted", {"dataset": version_id, "test": "nudged"})
    work = ms.new_model_workdir(store, model_id)
    model = transformers.AutoModelForCausalLM.from_pretrained(base_path, dtype=torch.float32)
    with torch.no_grad():
        model.model.norm.weight.add_(1e-3)
    model.save_pretrained(str(work / "model"))
    transformers.AutoTokenizer.from_pretrained(base_path).save_pretrained(str(work / "model"))
    ms.commit_model(
        store, model_id, work, manifest_for(version_id, base_path), card=partial(render_model_card, store=store)
    )
    return model_id, version_id


def test_a_trained_model_samples_and_judges_in_rlaif_run_and_shows_in_lineage(store, base_path, tmp_path):
    model_id, trained_on = changed_model(store, base_path)
    prompts = tmp_path / "prompts.jsonl"
    prompts.write_text("".join(json.dumps({"prompt": p}) + "\n" for p in ("Name a colour.", "Say hello.")))
    spec = {"backend": "transformers", "model": model_id, "batch_size": 4, "threads": 1}
    recipe = write_recipe(
        tmp_path,
        {
            "name": "round2",
            "prompts": {"path": str(prompts)},
            "policies": [{"name": "trained", **spec, "params": {"temperature": 0.8, "max_tokens": 8, "seed": 0}}],
            "samples_per_prompt": 2,
            "judge": {**spec, "template": str(ROOT / "rlaif" / "judges" / "prompts" / "pairwise_judge.j2")},
            "filters": {"consistency": False, "min_margin": 0.0, "drop_truncated": False},
        },
    )
    result = run_cli("run", str(recipe), "--store", str(store), "--no-prefect", timeout=600, process=True)
    assert result.returncode == 0, result.stderr
    made = [m["id"] for m in _versions(store) if m["name"] == "round2"]
    assert len(made) == 1 and made[0] in result.stdout
    generations = read_table(store, made[0], "generations")
    assert len(generations) == 4 and all(g["text"] and g["error"] is None for g in generations)
    assert load_manifest(store, made[0])["models"]["policies"][0]["model"] == model_id
    assert read_table(store, made[0], "judgments")  # the model judged too
    shown = run_cli("datasets", "lineage", made[0], "--store", str(store), env={"COLUMNS": "250"})
    assert shown.returncode == 0, shown.stderr
    for text in (
        made[0],
        f"model {model_id} (policy 'trained')",
        f"trained on {trained_on}",
        "prompts: data/prompts.jsonl",
    ):
        assert text in shown.stdout, text
    tree = json.loads(run_cli("datasets", "lineage", made[0], "--store", str(store), "--json").stdout)
    assert tree["parents"][0]["id"] == model_id and tree["parents"][0]["parents"][0]["id"] == trained_on


def _versions(store: Path) -> list[dict]:
    from rlaif.store.versions import list_versions

    return list_versions(store)


def test_a_lora_adapter_model_resolves_to_merged_weights_that_load(store, base_path, tmp_path, monkeypatch):
    peft = pytest.importorskip("peft")
    cache = tmp_path / "cache"
    (cache / "models").mkdir(parents=True)
    os.symlink(base_path, cache / "models" / "smollm2-135m")  # the converted base, without converting again
    monkeypatch.setenv("RLAIF_CACHE", str(cache))
    version_id = commit_tables(store, "crafted", pairwise_tables(), MANIFEST)[0]
    model_id = ms.model_id_for("dpo-lora", {"dataset": version_id})
    work = ms.new_model_workdir(store, model_id)
    base = transformers.AutoModelForCausalLM.from_pretrained(base_path, dtype=torch.float32)
    lora = peft.LoraConfig(
        r=4, lora_alpha=8, target_modules=["q_proj", "v_proj"], task_type="CAUSAL_LM", init_lora_weights=False
    )
    peft.get_peft_model(base, lora).save_pretrained(str(work / "adapter"))
    transformers.AutoTokenizer.from_pretrained(base_path).save_pretrained(str(work / "adapter"))
    ms.commit_model(
        store,
        model_id,
        work,
        manifest_for(version_id, base_path, algorithm="dpo", lora=True),
        card=partial(render_model_card, store=store),
    )

    merged = weights_path(store, model_id)
    assert Path(merged).parent == cache / "merged" and (Path(merged) / "config.json").is_file()
    marker = Path(merged) / ".rlaif-merged"
    stamp = marker.stat().st_mtime_ns
    assert weights_path(store, model_id) == merged and marker.stat().st_mtime_ns == stamp  # merged once
    from rlaif.weights.resolve import check_local_model, resolve_model

    check_local_model(model_id, store)
    assert resolve_model(model_id, store) == merged
    model = transformers.AutoModelForCausalLM.from_pretrained(merged, dtype=torch.float32)
    original = transformers.AutoModelForCausalLM.from_pretrained(base_path, dtype=torch.float32)
    q = "model.layers.0.self_attn.q_proj.weight"
    assert not torch.equal(model.state_dict()[q], original.state_dict()[q])  # the adapter is in the weights
    assert not any("lora" in key for key in model.state_dict())
    tokenizer = transformers.AutoTokenizer.from_pretrained(merged)
    inputs = tokenizer.apply_chat_template(
        [{"role": "user", "content": "Say hi."}], add_generation_prompt=True, return_tensors="pt", return_dict=True
    )
    with torch.inference_mode():
        out = model.generate(**inputs, max_new_tokens=5, do_sample=False)
    assert out.shape[1] > inputs["input_ids"].shape[1]
