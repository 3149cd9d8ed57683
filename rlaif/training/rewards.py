"""Reward functions for the RL trainers (PPO here, RLOO and GRPO through TRL): a trained reward
model, or the recipe's judge itself ("direct RLAIF", Lee et al. 2023).

Every reward function has TRL's `reward_funcs` shape:

    reward(prompts: list[list[dict]], completions: list[list[dict]] | list[str], **kwargs) -> list[float | None]

None is a missing reward (the judge failed on that completion): TRL's GRPO and RLOO leave it out of
the baseline and give it advantage 0; it is never scored as 0. `prompts` are message lists; `completions` are message lists holding the assistant turn (TRL's
conversational form) or plain strings. Extra dataset columns arrive as keyword lists (TRL passes
them so); the judge reward reads `baseline` from them.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from rlaif.core.errors import RecipeError
from rlaif.training.job import Messages, RewardFn, completion_text

SETTINGS = "training settings"


def resolve_model_name(name: str, store: str | Path | None = None) -> str:
    """A loadable path for a built-in alias, a model id of the store or a folder."""
    from rlaif.weights.resolve import resolve_model

    return resolve_model(name, store=store)


def reward_head_problem(path: str | Path) -> str | None:
    """Why the model folder `path` is not a reward model (a ...ForSequenceClassification model with one label),
    or None: a causal language model loaded as one gets a new, random score head, whose rewards mean nothing."""
    try:
        config = json.loads((Path(path) / "config.json").read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        return f"its config.json cannot be read ({exc})"
    architectures = config.get("architectures") or []
    if not any(str(name).endswith("ForSequenceClassification") for name in architectures):
        kind = ", ".join(map(str, architectures)) or "a model that names no architecture"
        return f"it is {kind}, not a reward model (...ForSequenceClassification): its score head would be random"
    labels = len(config.get("id2label") or {}) or config.get("num_labels", 1)
    if labels != 1:
        return f"its classification head has {labels} labels, a reward model has one"
    return None


def reward_model_scorer(path: str, device: str = "cpu", batch_size: int = 8, max_length: int = 512) -> RewardFn:
    """A reward model (AutoModelForSequenceClassification, num_labels=1) as a reward function.

    Each prompt + completion is rendered with the tokenizer's chat template (the completion as the
    assistant turn), cut to `max_length` tokens from the left (the end of the answer is kept),
    scored in batches of `batch_size` without gradients; the reward is the model's single logit.
    """
    import torch
    from transformers import AutoModelForSequenceClassification, AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(path)
    if tokenizer.pad_token is None:
        tokenizer.pad_token = tokenizer.eos_token
    tokenizer.truncation_side = "left"
    model = AutoModelForSequenceClassification.from_pretrained(path, num_labels=1).to(device).eval()
    if model.config.pad_token_id is None:
        model.config.pad_token_id = tokenizer.pad_token_id

    def reward_model(prompts: Sequence[Messages], completions: Sequence[Messages | str], **kwargs: Any) -> list[float]:
        texts = [
            tokenizer.apply_chat_template(
                [*prompt, {"role": "assistant", "content": completion_text(c)}], tokenize=False
            )
            for prompt, c in zip(prompts, completions, strict=True)
        ]
        scores: list[float] = []
        for start in range(0, len(texts), batch_size):
            batch = tokenizer(
                texts[start : start + batch_size],
                return_tensors="pt",
                padding=True,
                truncation=True,
                max_length=max_length,
                add_special_tokens=False,
            ).to(device)
            with torch.no_grad():
                scores.extend(model(**batch).logits[:, 0].float().tolist())
        return scores

    reward_model.__name__ = "reward_model"  # TRL names each reward function's metrics after it
    return reward_model


def judge_reward(
    recipe_path: str | Path,
    store: str | Path,
    baseline_model: str | None = None,
    failed_reward: float | None = None,
    baseline_tokens: int = 128,
) -> RewardFn:
    """The recipe's judge as the reward (direct RLAIF); a failed judgment's reward is `failed_reward`
    (default None: missing, not zero); see `rlaif.training.rewards_judge.JudgeReward`."""
    from rlaif.config.recipe import load_recipe
    from rlaif.training.rewards_judge import JudgeReward

    recipe = load_recipe(recipe_path)
    return JudgeReward(
        recipe,
        Path(store),
        baseline_model=baseline_model,
        failed_reward=failed_reward,
        baseline_tokens=baseline_tokens,
    )


def reward_from_spec(spec: dict, store: str | Path, device: str = "cpu", **kwargs: Any) -> RewardFn:
    """The reward a training config names: {"model": ID_OR_PATH} (a reward model: a store model id,
    a built-in alias or a folder) or {"judge": RECIPE.yaml} (that recipe's judge). `kwargs` go to
    `judge_reward` (baseline_model, failed_reward) or `reward_model_scorer` (batch_size, max_length)."""
    keys = set(spec or {})
    if keys == {"model"}:
        path = resolve_model_name(str(spec["model"]), store)
        if not (Path(path) / "config.json").is_file():
            raise RecipeError(
                SETTINGS,
                "reward.model",
                f"{spec['model']!r} is not a model folder, a built-in alias or a model id of the store {store}",
                "give a trained reward model (rlaif models list)",
            )
        problem = reward_head_problem(path)
        if problem:
            raise RecipeError(
                SETTINGS,
                "reward.model",
                f"{spec['model']!r}: {problem}",
                "train one with `rlaif train rm` and give its id",
            )
        return reward_model_scorer(path, device=device, **kwargs)
    if keys == {"judge"}:
        if not Path(str(spec["judge"])).is_file():
            raise RecipeError(
                SETTINGS,
                "reward.judge",
                f"recipe file {spec['judge']!r} not found",
                "give the path of a recipe YAML whose judge: gives the reward",
            )
        return judge_reward(spec["judge"], store, **kwargs)
    got = ", ".join(sorted(keys)) or "nothing"
    raise RecipeError(
        SETTINGS,
        "reward",
        f"expected exactly one of 'model' (a reward model) or 'judge' (a recipe YAML), got {got}",
        "e.g. reward: {model: MODEL_ID}",
    )
