"""A dataset version made by the pipeline, for the training tests: a few prompts, three samples each, every
pair judged in both orders, the filters relaxed so that a judge at chance (the tiny random llama of
tests/tiny_lm.py, or the 135M smollm2) still leaves pairs to train on. Its pairs feed rm/dpo/kto, its best
responses sft, its prompts ppo/rloo/grpo and its judgments (as rankings) rrhf."""

from __future__ import annotations

from pathlib import Path

from tests.conftest import ROOT, write_prompts

PROMPTS = ["Say hi.", "Name a colour.", "What is 2 + 2?", "Name a fruit."]


def pipeline_version(store: Path, model: str = "smollm2-135m") -> str:
    """Run the pipeline in this process (`run_recipe`, the `--no-prefect` driver) with `model` (an alias or a
    local model folder) as the policy and the judge (the transformers backend, verdicts read from the
    next-token probabilities: any causal LM with smollm2's tokenizer gives one); returns the version id."""
    from rlaif.config.recipe import parse_recipe
    from rlaif.pipeline.runner import run_recipe

    prompts = write_prompts(store.parent / f"{store.name}-prompts.jsonl", PROMPTS)
    recipe = parse_recipe(
        {
            "name": "piped",
            "prompts": {"path": str(prompts)},
            "policies": [
                {"name": "smol", "model": model, "params": {"temperature": 1.0, "max_tokens": 12, "seed": 3}}
            ],
            "samples_per_prompt": 3,
            "judge": {"model": model, "template": str(ROOT / "rlaif/judges/prompts/pairwise_judge.j2")},
            "filters": {"drop_truncated": False, "consistency": False, "min_margin": 0.0},
        }
    )
    version_id, _, manifest, _ = run_recipe(recipe, store)
    assert manifest["counts"]["kept"] >= 2, manifest["counts"]
    return version_id
