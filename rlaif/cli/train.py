"""`rlaif train ALGORITHM --dataset ID --model M`: a dataset version in, a versioned model in the store out."""

from __future__ import annotations

from typing import Optional

import typer

from rlaif.cli.common import StoreOption, console, err, fail, store_of, summary_off_prefect_console
from rlaif.core.errors import RlaifError
from rlaif.training import ALGORITHMS

EXAMPLE = """Train a model on a dataset version; the model lands in STORE/models/<id>/ (weights or a LoRA
adapter, a model card, a manifest with its lineage) and its id is printed. Running it again with the
same settings reports the existing model instead of training again.

Algorithms: sft (the best response per prompt), rm (reward model), dpo, kto, ppo, rloo, grpo
(ppo/rloo/grpo need `reward: {model: RM_ID}` or `reward: {judge: RECIPE.yaml}` in --config), rrhf.

Example:

    rlaif train dpo --dataset demo-0123456789ab --model smollm2-135m

    rlaif train grpo --dataset demo-0123456789ab --model smollm2-135m \\
        --config recipes/train/grpo.yaml
"""


def train(
    algorithm: str = typer.Argument(..., help=f"One of: {', '.join(ALGORITHMS)}."),
    dataset: str = typer.Option(..., "--dataset", help="The dataset version id to train on (`rlaif datasets list`)."),
    model: str = typer.Option(
        ..., "--model", help="Base model: a built-in alias (smollm2-135m), a local folder or a model id of the store."
    ),
    max_steps: Optional[int] = typer.Option(
        None, "--max-steps", help="Optimizer steps (default: the config, else TRL's epochs)."
    ),
    lora: bool = typer.Option(False, "--lora", help="Train a LoRA adapter (peft) instead of all weights."),
    config: Optional[str] = typer.Option(
        None, "--config", help="Training settings YAML: rlaif's fields and any field of the algorithm's TRL config."
    ),
    name: Optional[str] = typer.Option(
        None, "--name", help="Model name (its id is NAME-<12 hex>); default <dataset name>-<algorithm>."
    ),
    store: Optional[str] = StoreOption,
    prefect: bool = typer.Option(
        False,
        "--prefect/--no-prefect",
        help="Run as the Prefect flow `rlaif-train` (flows/train.py: per-step metrics, summary and report as artifacts); the local Prefect server that runs share unless PREFECT_API_URL is set (`rlaif server status`).",
    ),
) -> None:
    """Train SFT / reward model / DPO / KTO / PPO / RLOO / GRPO / RRHF on a dataset version."""
    from rlaif.training.config import load_settings
    from rlaif.training.driver import train as run_training

    where = store_of(store)
    try:
        settings = load_settings(algorithm, config, max_steps=max_steps, lora=lora or None, name=name)
        if prefect:  # the settings are valid: only now start Prefect
            result = _train_in_flow(
                where, dataset, algorithm, model, config, {"max_steps": max_steps, "lora": lora or None, "name": name}
            )
        else:
            result = run_training(where, dataset, algorithm, model, settings, progress=True)
    except RlaifError as exc:
        fail(exc)
    if result.existed:
        console.print(f"already trained: {result.model_id}", highlight=False)
        err.print(f"(same dataset, algorithm, base model and settings: {result.path})", highlight=False)
        return
    shown = ", ".join(
        f"{key} {value:.4g}"
        for key, value in result.metrics.items()
        if key in ("loss", "reward_accuracy", "kl", "mean_reward") and isinstance(value, float)
    )
    err.print(
        f"trained {algorithm} in {result.seconds:.1f} s, {result.metrics.get('steps', 0)} steps{': ' + shown if shown else ''}",
        highlight=False,
    )
    console.print(result.model_id, highlight=False)


def _train_in_flow(store: str, dataset: str, algorithm: str, model: str, config: Optional[str], overrides: dict):
    """The same training as the Prefect flow `rlaif-train`, with the Prefect API `rlaif run` uses (flows/server.py)."""
    from pathlib import Path

    from rlaif.flows.server import prefect_api
    from rlaif.training.driver import TrainResult

    with prefect_api():
        from rlaif.flows.train import rlaif_train

        summary_off_prefect_console()
        out = rlaif_train(
            store=store, dataset_id=dataset, algorithm=algorithm, model=model, config_path=config, overrides=overrides
        )
    return TrainResult(out["model_id"], Path(out["path"]), out["existed"], out["metrics"], out["seconds"])
