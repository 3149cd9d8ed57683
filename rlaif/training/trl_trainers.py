"""TRL's trainers on rlaif training rows: `run_sft`, `run_rm`, `run_dpo`, `run_kto`, `run_rloo`, `run_grpo`.

Each is `run(job: TrainJob) -> dict`: it builds the algorithm's TRL config from `job.settings`
(rlaif's common fields, then the device defaults, then the user's `options`), trains, reports each
logged step to `job.on_metrics` as plain floats, saves the weights (or the LoRA adapter) and the
tokenizer into `job.output_dir / "model"` (or `"adapter"`) and returns the final metrics.

rloo / grpo: TRL 1.16's RLOOConfig and GRPOConfig have no prompt limit, so rlaif applies its own
`max_length` there: each tokenized prompt keeps its last `max_length` tokens (left truncation, as
TRL's `max_prompt_length` did). A reward that is missing (None, NaN or infinite: the judge failed on
that completion) reaches TRL as None, which leaves it out of the group's baseline and gives it
advantage 0; the run's count of them is logged with every step as `reward_failed`. An optimizer step
without a single reward in its batch is skipped (`update_skipped`, `steps_skipped`), and completions
are sampled from softmax(logits / temperature), not reshaped by the model's generation_config
(`online_trainer`).
"""

from __future__ import annotations

import dataclasses
import math
from dataclasses import replace
from pathlib import Path
from typing import Any

from transformers import PrinterCallback, TrainerCallback

from rlaif.core.errors import RecipeError
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
# rlaif's settings by the TRL config field they set (the name an error gives the user).
SETTING_OF = {
    "max_steps": "max_steps",
    "per_device_train_batch_size": "batch_size",
    "seed": "seed",
    "max_length": "max_length",
    "learning_rate": "learning_rate",
}
# Settings that rlaif applies itself where the algorithm's TRL config has no such field.
APPLIED_BY_RLAIF = {"rloo": ("max_length",), "grpo": ("max_length",)}


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
    """Calls `on_metrics` once per logged training step; keeps the last one and the run's summary.
    `extra()` adds rlaif's own figures to every step (e.g. `reward_failed`)."""

    def __init__(self, on_metrics, extra=None) -> None:
        self.on_metrics, self.last, self.summary = on_metrics, {}, {}
        self.extra = extra or dict

    def on_log(self, args, state, control, logs=None, **kwargs):
        logs = dict(logs or {})
        if "train_runtime" in logs:
            self.summary = {key: float(logs[key]) for key in SUMMARY_KEYS if key in logs}
            return
        if any(key.startswith("eval_") for key in logs):
            return
        self.last = {**plain_metrics(logs, state.global_step), **self.extra()}
        self.on_metrics(dict(self.last))


def _not_applied(cls, key: str) -> RecipeError:
    setting = SETTING_OF.get(key, key)
    return RecipeError(
        "training settings",
        setting,
        f"{cls.__module__.split('.')[0]}.{cls.__name__} has no field {key!r}, so this setting would not apply",
        f"set the field of {cls.__name__} that does this under options (see its fields), or use the TRL version rlaif is tested with (1.16)",
    )


def build_config(job: TrainJob, **specific: Any):
    """The algorithm's TRL config: common settings < device defaults < `specific` < the user's options.

    A common setting or a `specific` field that the config class lacks is a RecipeError naming it,
    never dropped, unless rlaif applies it itself (`APPLIED_BY_RLAIF`: max_length of rloo / grpo).
    Device defaults the class lacks are left out (they are rlaif's, not the user's)."""
    cls = config_class(job.algorithm)
    names = {f.name for f in dataclasses.fields(cls)}
    s = job.settings
    common = {
        "max_steps": s.max_steps or -1,
        "per_device_train_batch_size": s.batch_size,
        "seed": s.seed,
        "max_length": s.max_length,
    }
    if s.learning_rate is not None:
        common["learning_rate"] = s.learning_rate
    wanted = {
        key: value
        for key, value in {**common, **specific}.items()
        if key not in APPLIED_BY_RLAIF.get(job.algorithm, ())
    }
    missing = [key for key in wanted if key not in names]
    if missing:
        raise _not_applied(cls, missing[0])
    kwargs = {**{key: value for key, value in device_defaults(job.device).items() if key in names}, **wanted}
    kwargs.update(s.options)
    try:
        return cls(output_dir=str(job.output_dir / "trainer"), **kwargs)
    except (TypeError, ValueError) as exc:
        raise RecipeError(
            "training settings",
            job.algorithm,
            f"{cls.__name__} refused the settings: {exc}",
            "fix the option named above",
        ) from exc


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


def make_trainer(job: TrainJob, trainer_cls, model, config, tokenizer, extra_metrics=None, **kwargs: Any):
    """(trainer, its metrics callback) on job.rows; extra keyword arguments go to the trainer."""
    callback = MetricsCallback(job.on_metrics, extra_metrics)
    trainer = trainer_cls(
        model=model,
        args=config,
        train_dataset=_dataset(job.rows),
        processing_class=tokenizer,
        callbacks=[callback],
        **kwargs,
    )
    trainer.remove_callback(PrinterCallback)  # metrics go to job.on_metrics (and the progress bar), not stdout
    return trainer, callback


def _run(job: TrainJob, trainer_cls, model, config, **kwargs: Any) -> dict:
    tokenizer = kwargs.pop("tokenizer")
    trainer, callback = make_trainer(job, trainer_cls, model, config, tokenizer, **kwargs)
    return fit_and_save(job, trainer, tokenizer, callback)


def run_sft(job: TrainJob) -> dict:
    """Supervised fine-tuning on the best response per prompt (distillation of the judged outputs)."""
    from trl import SFTTrainer

    return _run(
        job,
        SFTTrainer,
        load_causal_lm(job),
        build_config(job),
        tokenizer=load_tokenizer(job.model_path),
        peft_config=lora_config(job.settings),
    )


def new_reward_model(path, dtype):
    """A causal LM as a one-output sequence classifier to train: its new `score` head starts from random weights
    and its language-model head is dropped, as expected, said in one line instead of transformers' load report."""
    import sys

    from transformers import AutoModelForSequenceClassification
    from transformers.utils import logging as hf_logging

    before = hf_logging.get_verbosity()
    hf_logging.set_verbosity_error()
    try:
        model = AutoModelForSequenceClassification.from_pretrained(path, num_labels=1, dtype=dtype)
    finally:
        hf_logging.set_verbosity(before)
    print(
        "rm: a new one-output score head starts from random weights (and the language-model head is left out), "
        "as a reward model's training expects",
        file=sys.stderr,
    )
    return model


def run_rm(job: TrainJob) -> dict:
    """A reward model: a sequence classifier with one output trained on the pairs (soft labels optional)."""
    from trl import RewardTrainer

    from rlaif.training.soft_labels import SoftRewardTrainer

    tokenizer = load_tokenizer(job.model_path)
    model = new_reward_model(job.model_path, _dtype(job.device))
    model.config.pad_token_id = tokenizer.pad_token_id
    soft = job.settings.soft_labels == "cross_entropy"
    if not soft:  # hard labels: Bradley-Terry, -log s(r_c - r_r); TRL would add the rows' `margin` (2p - 1, the soft label again)
        job = replace(job, rows=[{key: value for key, value in row.items() if key != "margin"} for row in job.rows])
    trainer_cls = SoftRewardTrainer if soft else RewardTrainer
    return _run(
        job,
        trainer_cls,
        model,
        build_config(job),
        tokenizer=tokenizer,
        peft_config=lora_config(job.settings, "SEQ_CLS"),
    )


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

    return _run(
        job,
        KTOTrainer,
        load_causal_lm(job),
        build_config(job),
        tokenizer=load_tokenizer(job.model_path),
        peft_config=lora_config(job.settings),
    )


def is_missing(value: Any) -> bool:
    """A reward that is not there: None, or any value that is not a finite number (NaN is how the
    reward endpoint marks a failed judgment; an infinite reward would reach TRL as a score, and RLOO's
    leave-one-out baseline would give the rest of its group advantages of -3.4e38, GRPO would zero it).

    >>> is_missing(None), is_missing(float("nan")), is_missing(float("-inf")), is_missing(0.0)
    (True, True, True, False)
    """
    return value is None or not math.isfinite(float(value))


def reward_function(job: TrainJob):
    """`job.reward` in the shape TRL's reward_funcs take: plain floats, and None where the reward is
    missing (TRL leaves it out of the baseline, advantage 0). Its `counts` hold {"scored", "failed"}."""
    if job.reward is None:
        raise RecipeError(
            "training settings",
            "reward",
            f"{job.algorithm} needs a reward",
            "set reward: {model: RM_ID} or reward: {judge: RECIPE.yaml}",
        )
    reward = job.reward
    counts = {"scored": 0, "failed": 0}

    def rlaif_reward(prompts, completions, **kwargs):
        values = [
            None if is_missing(value) else float(value)
            for value in reward(prompts=prompts, completions=completions, **kwargs)
        ]
        failed = sum(value is None for value in values)
        counts["failed"] += failed
        counts["scored"] += len(values) - failed
        return values

    rlaif_reward.counts = counts
    return rlaif_reward


def left_truncate(prompt_ids: list, limit: int) -> list[list[int]]:
    """Each prompt's last `limit` token ids (the end of the conversation and the generation prompt).

    >>> left_truncate([[1, 2, 3], [4]], 2)
    [[2, 3], [4]]
    """
    return [list(ids)[-limit:] for ids in prompt_ids]


def _per_token(value: Any, prompt_ids: list) -> bool:
    """Whether a tokenizer output field has one entry per prompt token (e.g. token_type_ids)."""
    return (
        isinstance(value, list)
        and len(value) == len(prompt_ids)
        and all(len(v) == len(ids) for v, ids in zip(value, prompt_ids))
    )


SCORED = "rlaif_scored"  # per completion: whether any reward function scored it (carried through TRL's batch splits)


def online_trainer(trainer_cls):
    """TRL's RLOOTrainer / GRPOTrainer with three corrections (rlaif's `rloo` / `grpo`):

    - prompts keep their last `max_prompt_length` tokens (and any per-token field beside them); a
      prompt with images is never cut (an error instead);
    - sampling is from softmax(logits / temperature): while TRL generates with its generation config
      (built from its temperature, top_p, top_k, min_p, repetition_penalty and the user's
      `generation_kwargs`, which win), the model's own generation_config is set aside, since
      transformers fills every field TRL leaves None (min_p, no_repeat_ngram_size, suppress_tokens,
      ...) from it. vLLM generation is not covered (TRL passes its sampling settings to vLLM);
    - an optimizer step whose micro-batches hold no completion with a reward is skipped (no
      optimizer.step(): AdamW's momentum and weight decay would move the weights with zero
      gradients), as rlaif's PPO skips a rollout without a score. The learning-rate schedule still
      advances; `step_counts` ({"last": 0/1, "skipped": n}) records it for the metrics."""

    class Online(trainer_cls):
        def __init__(self, *args: Any, max_prompt_length: int, step_counts: dict | None = None, **kwargs: Any) -> None:
            self.step_counts = step_counts if step_counts is not None else {"last": 0, "skipped": 0}
            self._scored_rows, self._window = None, {"seen": False, "scored": False}
            self._guarded_optimizer = None
            super().__init__(*args, **kwargs)
            self.max_prompt_length = max_prompt_length

        def _generate_single_turn(self, *args: Any, **kwargs: Any):
            config = getattr(self, "generation_config", None)
            if config is None or self.use_vllm:
                return super()._generate_single_turn(*args, **kwargs)
            from rlaif.training.ppo_model import only_generation_config

            with only_generation_config(self.accelerator.unwrap_model(self.model), config):
                return super()._generate_single_turn(*args, **kwargs)

        def _calculate_rewards(self, *args: Any, **kwargs: Any):
            rewards_per_func = super()._calculate_rewards(*args, **kwargs)  # every process's completions
            self._scored_rows = ~rewards_per_func.isnan().all(dim=1)
            return rewards_per_func

        def _generate_and_score_completions(self, inputs: Any) -> dict:
            output = super()._generate_and_score_completions(inputs)
            local, scored = len(output["completion_ids"]), self._scored_rows
            start = self.accelerator.process_index * local
            if scored is not None and len(scored) >= start + local:
                output[SCORED] = scored[start : start + local].to(output["completion_ids"].device)
            return output

        def _prepare_inputs(self, generation_batch: Any) -> dict:
            inputs = super()._prepare_inputs(generation_batch)
            if not isinstance(inputs, dict) or SCORED not in inputs:
                return inputs
            if self.model.training:
                self._window["seen"] = True
                self._window["scored"] = self._window["scored"] or bool(inputs[SCORED].any())
            return {
                key: value for key, value in inputs.items() if key != SCORED
            }  # a copy: TRL reuses its buffered batches

        def _skip_optimizer_step(self) -> bool:
            """Whether no micro-batch since the last optimizer step (on any process) held a scored completion."""
            import torch

            window, self._window = self._window, {"seen": False, "scored": False}
            flags = torch.tensor([float(window["seen"]), float(window["scored"])], device=self.accelerator.device)
            seen, scored = self.accelerator.reduce(flags, reduction="sum").tolist()
            skip = seen > 0 and scored == 0  # nothing seen (another path of TRL): never skip
            self.step_counts["last"] = int(skip)
            self.step_counts["skipped"] += int(skip)
            return skip

        def create_optimizer(self, *args: Any, **kwargs: Any):
            optimizer = super().create_optimizer(*args, **kwargs)
            if optimizer is not None and self._guarded_optimizer is not optimizer:
                import types

                step, trainer = optimizer.step, self

                def guarded_step(opt, *step_args: Any, **step_kwargs: Any):
                    if trainer._skip_optimizer_step():
                        return None
                    return step(*step_args, **step_kwargs)

                optimizer.step = types.MethodType(
                    guarded_step, optimizer
                )  # a bound method, as torch's LR schedulers wrap it
                self._guarded_optimizer = optimizer
            return optimizer

        def _tokenize_prompts(self, prompts: list):
            prompt_ids, images, fields = super()._tokenize_prompts(prompts)
            limit = self.max_prompt_length
            if all(len(ids) <= limit for ids in prompt_ids):
                return prompt_ids, images, fields
            if images is not None:
                raise RecipeError(
                    "training settings",
                    "max_length",
                    f"a prompt with images is longer than {limit} tokens, and cutting it would split its image tokens",
                    "raise max_length",
                )
            fields = {
                key: left_truncate(value, limit) if _per_token(value, prompt_ids) else value
                for key, value in fields.items()
            }
            return left_truncate(prompt_ids, limit), images, fields

    Online.__name__ = Online.__qualname__ = trainer_cls.__name__
    return Online


def _run_online(job: TrainJob, trainer_name: str) -> dict:
    import trl

    tokenizer = load_tokenizer(job.model_path)
    reward = reward_function(job)
    steps = {"last": 0, "skipped": 0}
    return _run(
        job,
        online_trainer(getattr(trl, trainer_name)),
        load_causal_lm(job),
        build_config(job),
        tokenizer=tokenizer,
        reward_funcs=reward,
        peft_config=lora_config(job.settings),
        max_prompt_length=job.settings.max_length,
        step_counts=steps,
        extra_metrics=lambda: {
            "reward_failed": float(reward.counts["failed"]),
            "update_skipped": float(steps["last"]),
            "steps_skipped": float(steps["skipped"]),
        },
    )


def run_rloo(job: TrainJob) -> dict:
    """RLOO on the prompts, rewarded by `job.reward` (a reward model or the judge)."""
    return _run_online(job, "RLOOTrainer")


def run_grpo(job: TrainJob) -> dict:
    """GRPO on the prompts, rewarded by `job.reward` (a reward model or the judge)."""
    return _run_online(job, "GRPOTrainer")
