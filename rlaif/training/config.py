"""Training settings: the fields rlaif itself reads (`TrainSettings`) plus, under `options`, any field
of the algorithm's own config class (TRL's SFTConfig, RewardConfig, DPOConfig, KTOConfig, RLOOConfig,
GRPOConfig; rlaif's PPOConfig and RRHFConfig), read from a YAML file strictly.

    # train.yaml for `rlaif train dpo --config train.yaml`
    max_steps: 200
    lora: true
    soft_labels: smoothing     # conservative DPO: label smoothing 1 - p_chosen per pair
    beta: 0.05                 # not a TrainSettings field: a field of trl.DPOConfig, passed through

A key that is neither is an error naming the file, the key and the valid fields.
"""

from __future__ import annotations

import dataclasses
import difflib
import importlib
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from rlaif.config.recipe_checks import read_yaml_file
from rlaif.core.cpu import default_threads
from rlaif.core.errors import RecipeError
from rlaif.training import ALGORITHMS

CONFIG_CLASSES = {
    "sft": "trl:SFTConfig",
    "rm": "trl:RewardConfig",
    "dpo": "trl:DPOConfig",
    "kto": "trl:KTOConfig",
    "rloo": "trl:RLOOConfig",
    "grpo": "trl:GRPOConfig",
    "ppo": "rlaif.training.ppo:PPOConfig",
    "rrhf": "rlaif.training.rrhf:RRHFConfig",
}
# Config fields rlaif sets itself (where the trainer writes, the run's own bookkeeping): not user options.
RESERVED_OPTIONS = ("output_dir",)
SOFT_LABELS = {"rm": ("cross_entropy",), "dpo": ("smoothing", "weighting")}
LLAMA_TARGET_MODULES = ["q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj"]
RUN_ONLY = ("threads",)  # settings that do not change what is trained: left out of the model id
# trl.DPOConfig fields that the soft-label DPO loss (rlaif.training.soft_labels) replaces, with the only
# value it honours: another value would be silently ignored, so it is an error.
SOFT_DPO_ONLY = {
    "loss_type": ["sigmoid"],
    "f_divergence_type": "reverse_kl",
    "ld_alpha": None,
    "use_weighting": False,
    "label_smoothing": 0.0,
}


class RewardSpec(BaseModel):
    """Where the reward of ppo / rloo / grpo comes from: a trained reward model or a judge recipe."""

    model_config = ConfigDict(extra="forbid")
    model: str | None = Field(
        None, description="A reward model: a store model id (trained with `rlaif train rm`) or a local folder."
    )
    judge: str | None = Field(
        None, description="A recipe YAML whose judge scores each completion (direct RLAIF, position-debiased)."
    )

    @model_validator(mode="after")
    def _exactly_one(self) -> RewardSpec:
        if (self.model is None) == (self.judge is None):
            raise ValueError("give exactly one of `model:` (a reward model) or `judge:` (a recipe file)")
        return self


class TrainSettings(BaseModel):
    """What `rlaif train` reads; everything else goes to the algorithm's config class via `options`."""

    model_config = ConfigDict(extra="forbid")

    algorithm: Literal["sft", "rm", "dpo", "kto", "ppo", "rloo", "grpo", "rrhf"] = Field(
        description="The training algorithm."
    )
    name: str | None = Field(
        None, description="Name of the trained model (its id is NAME-<12 hex>); default: <dataset name>-<algorithm>."
    )
    max_steps: int | None = Field(
        None, ge=1, description="Optimizer steps; unset: num_train_epochs of the config (TRL's default)."
    )
    lora: bool = Field(
        False, description="Train a LoRA adapter (peft) instead of all weights; the store keeps the adapter."
    )
    lora_r: int = Field(16, ge=1, description="LoRA rank.")
    lora_alpha: int = Field(32, ge=1, description="LoRA alpha (scaling = alpha / r).")
    lora_dropout: float = Field(0.05, ge=0, lt=1, description="LoRA dropout.")
    lora_target_modules: list[str] | str = Field(
        default_factory=lambda: list(LLAMA_TARGET_MODULES),
        description="Modules LoRA wraps: the attention and MLP projections of llama-like models, or 'all-linear'.",
    )
    learning_rate: float | None = Field(
        None, gt=0, description="Peak learning rate; unset: the config class's default."
    )
    batch_size: int = Field(2, ge=1, description="Per-device train batch size (per_device_train_batch_size).")
    max_length: int = Field(
        512,
        ge=8,
        description="Longest tokenized sequence (prompt + completion) kept; rloo/grpo: the prompt limit, applied by rlaif (each prompt keeps its last max_length tokens).",
    )
    seed: int = Field(42, description="Random seed of the trainer.")
    soft_labels: Literal["cross_entropy", "smoothing", "weighting"] | None = Field(
        None,
        description=(
            "The judge's soft labels in the loss: rm 'cross_entropy' (against each pair's debiased p_chosen); "
            "dpo 'smoothing' (conservative DPO, label smoothing 1 - p_chosen per pair) or 'weighting' (pairs weighted by |2p-1| "
            "divided by the mean weight of the training pairs, not per batch: a batch's own sum would cancel the weights at small batch sizes)."
        ),
    )
    reward: RewardSpec | None = Field(
        None, description="ppo / rloo / grpo: {model: ID_OR_PATH} or {judge: RECIPE.yaml}."
    )
    threads: int | None = Field(
        None, ge=1, description="torch threads on CPU; unset: half the CPU cores (at least 1)."
    )
    options: dict[str, Any] = Field(
        default_factory=dict, description="Fields of the algorithm's config class, passed through."
    )

    @model_validator(mode="after")
    def _fits_algorithm(self) -> TrainSettings:
        if self.soft_labels is not None and self.soft_labels not in SOFT_LABELS.get(self.algorithm, ()):
            allowed = "; ".join(f"{alg}: {', '.join(values)}" for alg, values in SOFT_LABELS.items())
            raise ValueError(f"soft_labels {self.soft_labels!r} does not apply to {self.algorithm} ({allowed})")
        if self.reward is not None and self.algorithm not in ("ppo", "rloo", "grpo"):
            raise ValueError(f"reward applies to ppo, rloo and grpo, not {self.algorithm}")
        return self

    def key(self) -> dict[str, Any]:
        """The settings that decide what is trained (part of the model id)."""
        return self.model_dump(mode="json", exclude=set(RUN_ONLY))


def config_class(algorithm: str) -> type:
    """The algorithm's config class (imported on first use: TRL is an optional extra)."""
    module, _, attr = CONFIG_CLASSES[algorithm].partition(":")
    try:
        return getattr(importlib.import_module(module), attr)
    except ImportError as exc:
        from rlaif.core.errors import BackendError

        raise BackendError(f"training needs {module.split('.')[0]} ({exc}) - pip install 'rlaif[train]'") from exc


def config_fields(algorithm: str) -> list[str]:
    """Field names of the algorithm's config class that a user may set."""
    return [f.name for f in dataclasses.fields(config_class(algorithm)) if f.init and f.name not in RESERVED_OPTIONS]


def _unknown_key(path: str, key: str, algorithm: str, fields: list[str]) -> RecipeError:
    ours = [name for name in TrainSettings.model_fields if name not in ("algorithm", "options")]
    close = difflib.get_close_matches(key, ours + fields, n=3)
    hint = f"did you mean {', '.join(close)}? " if close else ""
    where = CONFIG_CLASSES[algorithm].replace(":", ".")
    return RecipeError(
        path,
        key,
        f"unknown field for `rlaif train {algorithm}`",
        f"{hint}valid fields: {', '.join(ours)}, or any field of {where}",
    )


def split_options(raw: dict[str, Any], algorithm: str, path: str) -> dict[str, Any]:
    """TrainSettings fields stay at the top; other keys must be fields of the config class (-> options)."""
    if str(raw.get("algorithm", algorithm)) != algorithm:
        raise RecipeError(
            path,
            "algorithm",
            f"the file is for {raw['algorithm']!r}, not {algorithm!r}",
            f"run `rlaif train {raw['algorithm']}` or drop the key",
        )
    fields = config_fields(algorithm)
    settings = {key: value for key, value in raw.items() if key in TrainSettings.model_fields and key != "options"}
    options = dict(raw.get("options") or {})
    for key, value in raw.items():
        if key not in TrainSettings.model_fields:
            options[key] = value
    for key in options:
        if key in RESERVED_OPTIONS:
            raise RecipeError(path, key, "is set by rlaif (the model goes into the store)", "drop the key")
        if key not in fields:
            raise _unknown_key(path, key, algorithm, fields)
    return {**settings, "algorithm": algorithm, "options": options}


def read_yaml(config_path: str | Path) -> dict[str, Any]:
    path = Path(config_path)
    raw = read_yaml_file(
        path, "training config file", "no such training config file", "check the path given to --config"
    )
    raw = {} if raw is None else raw
    if not isinstance(raw, dict):
        raise RecipeError(
            str(path),
            "",
            f"a training config is a mapping of fields, not {type(raw).__name__}",
            "write `field: value` lines",
        )
    return raw


def load_settings(algorithm: str, config_path: str | Path | None = None, **overrides: Any) -> TrainSettings:
    """Settings for `algorithm` from an optional YAML file, then `overrides` (None values are ignored)."""
    where = str(config_path) if config_path else "training settings"
    if algorithm not in ALGORITHMS:
        raise RecipeError(
            where, "algorithm", f"unknown training algorithm {algorithm!r}", f"use one of: {', '.join(ALGORITHMS)}"
        )
    raw = read_yaml(config_path) if config_path else {}
    raw.update({key: value for key, value in overrides.items() if value is not None})
    merged = split_options(raw, algorithm, where)
    try:
        settings = TrainSettings.model_validate(merged)
    except ValidationError as exc:
        first = exc.errors()[0]
        key = ".".join(str(part) for part in first["loc"]) or "settings"
        raise RecipeError(
            where, key, first["msg"], f"see `rlaif train {algorithm} --help` and docs/training.md"
        ) from exc
    check_soft_dpo_options(settings, where)
    return settings


def check_soft_dpo_options(settings: TrainSettings, where: str = "training settings") -> None:
    """RecipeError for a DPO option that soft labels would ignore (`SOFT_DPO_ONLY`).

    The soft-label loss is the standard DPO loss (sigmoid, reverse KL) per pair; TRL's other losses,
    f-divergences, LD-DPO's ld_alpha, WPO's use_weighting and a global label_smoothing do not apply to it.
    It does apply `loss_weights` (a scale) and the MoE router's auxiliary loss (`router_aux_loss_coef`)."""
    if settings.algorithm != "dpo" or settings.soft_labels is None:
        return
    for key, honoured in SOFT_DPO_ONLY.items():
        if key not in settings.options:
            continue
        value = settings.options[key]
        if (value if key != "loss_type" or isinstance(value, list) else [value]) != honoured:
            raise RecipeError(
                where,
                key,
                f"{value!r} would be ignored: soft_labels {settings.soft_labels!r} trains its own loss (standard sigmoid DPO, reverse KL, per-pair labels)",
                f"drop {key} (only {honoured!r} applies with soft labels), or drop soft_labels to train TRL's loss with it",
            )


def torch_threads(settings: TrainSettings) -> int:
    """Threads for torch on CPU: the setting, else half the cores (1 thread beat 2 on a 2-core box)."""
    return settings.threads or default_threads()


def device_defaults(device: str) -> dict[str, Any]:
    """Config fields that are right on each device (a user's options override them).

    CPU: float32, no bf16 (8-19x slower there), no gradient checkpointing. CUDA: bf16 and gradient
    checkpointing. Both: no reporting integrations, no checkpoints (the store keeps the final model).
    """
    common = {"report_to": [], "save_strategy": "no", "logging_steps": 1, "disable_tqdm": True}
    if device.startswith("cuda"):
        return {**common, "bf16": True, "gradient_checkpointing": True}
    return {
        **common,
        "bf16": False,
        "fp16": False,
        "gradient_checkpointing": False,
        "dataloader_pin_memory": False,
        "use_cpu": True,
    }


def lora_config(settings: TrainSettings, task_type: str = "CAUSAL_LM"):
    """The peft LoraConfig of `settings` (None unless settings.lora)."""
    if not settings.lora:
        return None
    from peft import LoraConfig

    extra = {"modules_to_save": ["score"]} if task_type == "SEQ_CLS" else {}
    return LoraConfig(
        r=settings.lora_r,
        lora_alpha=settings.lora_alpha,
        lora_dropout=settings.lora_dropout,
        target_modules=settings.lora_target_modules,
        task_type=task_type,
        **extra,
    )
