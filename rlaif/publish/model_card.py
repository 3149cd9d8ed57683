"""The model card (README.md of `STORE/models/<id>/`), generated from the model's manifest with
huggingface_hub's card API, like the dataset card (rlaif.publish.dataset_card): the front matter is a
`ModelCardData`, the text the Jinja template `rlaif/publish/templates/model_card.md.j2`.

It shows the base model, the dataset version the model was trained on with its judge-quality
figures (the dataset manifest's `eval` block: agreement with human labels, the "pick the longer"
baseline, order consistency, with the dataset card's warnings), the algorithm and its settings,
the final metrics, the hardware, the time and the lineage. The manifest holds no secret (settings
are plain values, rlaif.core.secrets); the text is scrubbed again of the Hub tokens and key-like strings.
"""

from __future__ import annotations

import io
from importlib import resources
from pathlib import Path
from typing import Any

import yaml
from huggingface_hub import ModelCard, ModelCardData

from rlaif.core.secrets import TOKEN_VARIABLES, environment_secrets, scrub_text
from rlaif.publish.dataset_card import eval_rows, flat_rows, table_rows

TEMPLATE = Path(str(resources.files("rlaif.publish") / "templates" / "model_card.md.j2"))
HUB_IDS = {"smollm2-135m": "HuggingFaceTB/SmolLM2-135M-Instruct"}  # built-in aliases -> their Hub model
PIPELINES = {"rm": "text-classification"}  # every other algorithm trains a causal LM policy


def hub_base_model(base: str | None) -> str | None:
    """The Hub id of the base model when there is one (front matter `base_model`), else None.

    >>> hub_base_model("smollm2-135m"), hub_base_model("Qwen/Qwen2.5-0.5B"), hub_base_model("/models/mine")
    ('HuggingFaceTB/SmolLM2-135M-Instruct', 'Qwen/Qwen2.5-0.5B', None)
    """
    if not base:
        return None
    if base in HUB_IDS:
        return HUB_IDS[base]
    if base.count("/") == 1 and not base.startswith((".", "/", "~")) and not Path(base).exists():
        return base
    return None


def card_data(manifest: dict[str, Any]) -> ModelCardData:
    dataset = manifest.get("dataset") or {}
    algorithm = str(manifest.get("algorithm") or "unknown")
    return ModelCardData(
        base_model=hub_base_model(manifest.get("base_model")),
        library_name="peft" if manifest.get("weights") == "adapter" else "transformers",
        pipeline_tag=PIPELINES.get(algorithm, "text-generation"),
        tags=["rlaif", "trl", algorithm, *(["lora"] if manifest.get("lora") else [])],
        rlaif={
            "model": manifest["id"],
            "dataset_version": dataset.get("id"),
            "algorithm": algorithm,
            "package_version": manifest.get("package_version"),
        },
    )


def judge_quality_context(dataset: dict[str, Any]) -> list[dict[str, Any]]:
    """Each `rlaif eval-judge` result of the dataset version: its figures and its warnings."""
    evaluations = dataset.get("eval")
    if isinstance(evaluations, dict):
        evaluations = [evaluations]
    shown = []
    for item in evaluations or []:
        if isinstance(item, dict):
            warnings = list(item.get("warnings") or [])  # measured and stored with the version (rlaif.judges.measure)
            shown.append({"rows": table_rows(eval_rows(item)), "warnings": warnings})
    return shown


def hardware_rows(manifest: dict[str, Any]) -> list[tuple[str, Any]]:
    rows = list((manifest.get("hardware") or {}).items())
    seconds = manifest.get("seconds")
    rows += [
        ("training time (s)", round(float(seconds), 1) if isinstance(seconds, (int, float)) else None),
        ("steps", manifest.get("steps")),
    ]
    return rows


def lineage_rows(manifest: dict[str, Any]) -> list[tuple[str, Any]]:
    dataset = manifest.get("dataset") or {}
    return [
        ("model", f"`{manifest['id']}`"),
        ("created", manifest.get("created_at")),
        ("trained on dataset version", f"`{dataset.get('id')}`"),
        ("parents", ", ".join(f"`{p}`" for p in manifest.get("parents") or []) or "none"),
        ("base model", manifest.get("base_model")),
        ("rlaif version", manifest.get("package_version")),
    ]


def card_context(manifest: dict[str, Any], dataset_lineage: str = "") -> dict[str, Any]:
    """Every variable of the template besides `card_data`."""
    dataset = manifest.get("dataset") or {}
    counts = {k: v for k, v in (dataset.get("counts") or {}).items() if not isinstance(v, dict)}
    return {
        "model_id": manifest["id"],
        "algorithm": manifest.get("algorithm"),
        "base_model": manifest.get("base_model"),
        "weights": manifest.get("weights"),
        "dataset_id": dataset.get("id"),
        "dataset_rows": table_rows(list(counts.items())),
        "evaluations": judge_quality_context(dataset),
        "settings_yaml": yaml.safe_dump(manifest.get("settings") or {}, sort_keys=False, allow_unicode=True),
        "reward_rows": table_rows(flat_rows(manifest.get("reward") or {})),
        "metric_rows": table_rows(flat_rows(manifest.get("metrics") or {})),
        "hardware_rows": table_rows(hardware_rows(manifest)),
        "lineage_rows": table_rows(lineage_rows(manifest)),
        "dataset_lineage": dataset_lineage,
    }


def _dataset_lineage(store: str | Path | None, manifest: dict[str, Any]) -> str:
    """The dataset version's lineage tree as plain text ('' when the version is not in the store)."""
    dataset_id = (manifest.get("dataset") or {}).get("id")
    if store is None or not dataset_id:
        return ""
    from rich.console import Console

    from rlaif.core.errors import StoreError
    from rlaif.store.lineage import as_tree, lineage

    try:
        tree = as_tree(lineage(store, dataset_id))
    except StoreError:
        return ""
    console = Console(width=110, record=True, color_system=None, file=io.StringIO())
    console.print(tree)
    return console.export_text()


def render_model_card(manifest: dict[str, Any], store: str | Path | None = None) -> str:
    """The README.md of a model from its (full) manifest; `store` adds the dataset version's lineage tree."""
    context = card_context(manifest, _dataset_lineage(store, manifest))
    card = str(ModelCard.from_template(card_data(manifest), template_path=str(TEMPLATE), **context))
    return scrub_text(card if card.endswith("\n") else card + "\n", environment_secrets(TOKEN_VARIABLES))
