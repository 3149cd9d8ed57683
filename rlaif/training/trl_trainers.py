"""TRL's trainers on rlaif training rows: `run_sft`, `run_rm`, `run_dpo`, `run_kto`, `run_rloo`, `run_grpo`.

Each is `run(job: TrainJob) -> dict`: it builds the algorithm's TRL config from `job.settings`
(rlaif's common fields, then the device defaults, then the user's `options`), trains, reports each
logged step to `job.on_metrics` as plain floats, saves the weights (or the LoRA adapter) and the
tokenizer into `job.output_dir / "model"` (or `"adapter"`) and returns the final metrics.
"""

from __future__ import annotations

import dataclasses
import math
from dataclasses import replace
from pathlib import Path
from typing import Any

from transformers import PrinterCallback, TrainerCallback

from rlaif.errors import RecipeError
from rlaif.training.config import config_class, device_defaults, lora_config
from rlaif.training.job import TrainJob

# Names TRL logs -> the names rlaif reports (metrics.jsonl, Prefect artifacts, the training report).
METRIC_NAMES = {
    "rewards/accuracies": "reward_accuracy",  # dpo
    "accuracy": "reward_accuracy",  # rm
    "rewards/margins": "reward_margin",
    "margin": "reward_margin",
    "reward": "mean_reward",  # rloo / grpo
    "mean_reward": "mean_reward",  # rm
    "kl": "kl",
}
SUMMARY_KEYS = ("train_runtime", "train_loss", "train_samples_per_second", "train_steps_per_second")


def plain_metrics(logs: dict[str, Any], step: int) -> dict[str, float | int]:
    """One logged step as {"step", "loss", "reward_accuracy", "kl", "mean_reward", ...}: plain floats."""
    out: dict[str, float | int] = {"step": int(step)}
    for key, value in logs.items():
        if isinstance(value, bool) or not isinstance(value, (int, float)) or key in SUMMARY_KEYS:
            continue
        name = METRIC_NAMES.get(key, key.replace("/", "_"))
        out.setdefault(name, float(value))
    return out


class MetricsCallback(TrainerCallback):
    """Calls `on_metrics` once per logged training step; keeps the last one and the run's summary."""

    def __init__(self, on_metrics) -> None:
        self.on_metrics, self.last, self.summary = on_metrics, {}, {}

    def on_log(self, args, state, control, logs=None, **kwargs):
        logs = dict(logs or {})
        if "train_runtime" in logs:
            self.summary = {key: float(logs[key]) for key in SUMMARY_KEYS if key in logs}
            return
        if any(key.startswith("eval_") for key in logs):
            return
        self.last = plain_metrics(logs, state.global_step)
        self.on_metrics(dict(self.last))


def build_config(job: TrainJob, **specific: Any):
    """The algorithm's TRL config: common settings < device defaults < `specific` < the user's options."""
    cls = config_class(job.algorithm)
    names = {f.name for f in dataclasses.fields(cls)}
    s = job.settings
    common = {"max_steps": s.max_steps or -1, "per_device_train_batch_size": s.batch_size, "seed": s.seed, "max_length": s.max_length}
    if s.learning_rate is not None:
        common["learning_rate"] = s.learning_rate
    kwargs = {**common, **device_defaults(job.device), **specific}
    kwargs = {key: value for key, value in kwargs.items() if key in names}
    kwargs.update(s.options)
    try:
        return cls(output_dir=str(job.output_dir / "trainer"), **kwargs)
    except (TypeError, ValueError) as exc:
        raise RecipeError("training settings", job.algorithm, f"{cls.__name__} refused the settings: {exc}", "fix the option named above") from exc


def load_tokenizer(path: str):
    from transformers import AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(path)
    if tokenizer.pad_token is None:
        tokenizer.pad_token = tokenizer.eos_token
    return tokenizer


def _dtype(device: str):
    import torch

    return torch.bfloat16 if device.startswith("cuda") else torch.float32


def load_causal_lm(job: TrainJob):
    from transformers import AutoModelForCausalLM

    return AutoModelForCausalLM.from_pretrained(job.model_path, dtype=_dtype(job.device))


def _dataset(rows: list[dict]):
    from datasets import Dataset

    return Dataset.from_list(rows)


def fit_and_save(job: TrainJob, trainer, tokenizer, callback: MetricsCallback) -> dict:
    """Train, save weights (or adapter) + tokenizer, and return the final metrics."""
    trainer.train()
    folder = Path(job.output_dir) / ("adapter" if job.settings.lora else "model")
    trainer.save_model(str(folder))
    tokenizer.save_pretrained(str(folder))
    metrics = {key: value for key, value in callback.last.items() if key != "step"}
    metrics.update(callback.summary)
    metrics["steps"] = int(trainer.state.global_step)
    return {key: value for key, value in metrics.items() if not (isinstance(value, float) and math.isnan(value))}


def _run(job: TrainJob, trainer_cls, model, config, **kwargs: Any) -> dict:
    tokenizer = kwargs.pop("tokenizer")
    callback = MetricsCallback(job.on_metrics)
    trainer = trainer_cls(
        model=model, args=config, train_dataset=_dataset(job.rows), processing_class=tokenizer, callbacks=[callback], **kwargs
    )
    trainer.remove_callback(PrinterCallback)  # metrics go to job.on_metrics (and the progress bar), not stdout
    return fit_and_save(job, trainer, tokenizer, callback)


def run_sft(job: TrainJob) -> dict:
    """Supervised fine-tuning on the best response per prompt (distillation of the judged outputs)."""
    from trl import SFTTrainer

    return _run(job, SFTTrainer, load_causal_lm(job), build_config(job), tokenizer=load_tokenizer(job.model_path), peft_config=lora_config(job.settings))


def run_rm(job: TrainJob) -> dict:
    """A reward model: a sequence classifier with one output trained on the pairs (soft labels optional)."""
    from transformers import AutoModelForSequenceClassification
    from trl import RewardTrainer

    from rlaif.training.soft_labels import SoftRewardTrainer

    tokenizer = load_tokenizer(job.model_path)
    model = AutoModelForSequenceClassification.from_pretrained(job.model_path, num_labels=1, dtype=_dtype(job.device))
    model.config.pad_token_id = tokenizer.pad_token_id
    soft = job.settings.soft_labels == "cross_entropy"
    if not soft:  # hard labels: Bradley-Terry, -log s(r_c - r_r); TRL would add the rows' `margin` (2p - 1, the soft label again)
        job = replace(job, rows=[{key: value for key, value in row.items() if key != "margin"} for row in job.rows])
    trainer_cls = SoftRewardTrainer if soft else RewardTrainer
    return _run(job, trainer_cls, model, build_config(job), tokenizer=tokenizer, peft_config=lora_config(job.settings, "SEQ_CLS"))


def run_dpo(job: TrainJob) -> dict:
    """DPO on the pairs; soft labels: per-pair label smoothing (conservative DPO) or confidence weights."""
    from trl import DPOTrainer

    from rlaif.training.soft_labels import SoftDPOTrainer

    extra: dict[str, Any] = {"tokenizer": load_tokenizer(job.model_path), "peft_config": lora_config(job.settings)}
    trainer_cls = DPOTrainer
    if job.settings.soft_labels in ("smoothing", "weighting"):
        trainer_cls, extra["soft_mode"] = SoftDPOTrainer, job.settings.soft_labels
    return _run(job, trainer_cls, load_causal_lm(job), build_config(job), **extra)


def run_kto(job: TrainJob) -> dict:
    """KTO on unpaired good / bad completions (the feedback table, else the pairs unpaired)."""
    from trl import KTOTrainer

    return _run(job, KTOTrainer, load_causal_lm(job), build_config(job), tokenizer=load_tokenizer(job.model_path), peft_config=lora_config(job.settings))


def reward_function(job: TrainJob):
    """`job.reward` in the shape TRL's reward_funcs take, returning plain floats."""
    if job.reward is None:
        raise RecipeError("training settings", "reward", f"{job.algorithm} needs a reward", "set reward: {model: RM_ID} or reward: {judge: RECIPE.yaml}")
    reward = job.reward

    def rlaif_reward(prompts, completions, **kwargs):
        return [float(value) for value in reward(prompts=prompts, completions=completions, **kwargs)]

    return rlaif_reward


def _run_online(job: TrainJob, trainer_name: str) -> dict:
    import trl

    tokenizer = load_tokenizer(job.model_path)
    config = build_config(job, max_prompt_length=job.settings.max_length)
    return _run(
        job, getattr(trl, trainer_name), load_causal_lm(job), config,
        tokenizer=tokenizer, reward_funcs=reward_function(job), peft_config=lora_config(job.settings),
    )


def run_rloo(job: TrainJob) -> dict:
    """RLOO on the prompts, rewarded by `job.reward` (a reward model or the judge)."""
    return _run_online(job, "RLOOTrainer")


def run_grpo(job: TrainJob) -> dict:
    """GRPO on the prompts, rewarded by `job.reward` (a reward model or the judge)."""
    return _run_online(job, "GRPOTrainer")
