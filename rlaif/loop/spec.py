"""The `iterate:` section of a loop recipe (`rlaif iterate RECIPE.yaml`), and the early-stop rule.

A loop recipe is an ordinary recipe (prompts, policies, judge, filters) plus one section:

    iterate:
      rounds: 2                      # default; `rlaif iterate --rounds N` overrides it
      algorithm: dpo                 # any of rlaif.training.ALGORITHMS
      policy: smollm2                # the policy each round's model replaces (default: the first)
      config: recipes/train/dpo.yaml # optional training YAML; `train:` keys override it
      train: {max_steps: 2}
      eval: {prompts: data/iterate_heldout.jsonl, limit: 8}
      early_stop: {rule: not_improving}

`rlaif run` does not read `iterate:`; this module parses it strictly (extra="forbid"; an error
names `iterate.<key>` in the file) and the rest of the file with the recipe's own parser.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from rlaif.config.recipe import Recipe, parse_recipe
from rlaif.config.recipe_checks import read_recipe_yaml
from rlaif.config.recipe_errors import describe
from rlaif.core.errors import InputError, RecipeError
from rlaif.training import ALGORITHMS

Algorithm = Literal[ALGORITHMS]  # type: ignore[valid-type]


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", allow_inf_nan=False)


class EvalSpec(_Strict):
    prompts: str = Field(
        description="Held-out prompts (JSON Lines, like the recipe's prompt file): NEW vs the previous policy is judged on them."
    )
    limit: int | None = Field(16, ge=1, description="Use only the first N held-out prompts (null: all).")
    max_tokens: int | None = Field(
        None, ge=1, description="Most tokens per evaluation answer (default: the policy's params.max_tokens)."
    )
    temperature: float | None = Field(
        None, ge=0, description="Sampling temperature of both policies (default: the policy's)."
    )
    seed: int = Field(0, description="Seed of the per-prompt coin that decides which answer is shown first.")


class EarlyStop(_Strict):
    rule: Literal["not_improving", "not_significant", "never"] = Field(
        "not_improving",
        description="not_improving: stop after round k >= 2 when its win rate over the previous policy is no higher than "
        "round k-1's (plus min_delta); not_significant: stop after any round whose win rate's 95% lower bound is below "
        "`threshold` (the new policy is not clearly better); never: run every round.",
    )
    min_delta: float = Field(
        0.0, ge=0, le=1, description="not_improving: the gain over the last round's win rate needed to go on."
    )
    threshold: float = Field(
        0.5, gt=0, lt=1, description="not_significant: the lowest acceptable Wilson 95% lower bound of the win rate."
    )


class IterateSpec(_Strict):
    rounds: int = Field(
        3, ge=1, le=100, description="Rounds to run (`--rounds N` overrides); a loop resumed with more rounds goes on."
    )
    algorithm: Algorithm = Field(
        "dpo", description=f"Training algorithm of each round: one of {', '.join(ALGORITHMS)}."
    )
    policy: str | None = Field(
        None, description="Name of the recipe's policy that each round's trained model replaces (default: the first)."
    )
    config: str | None = Field(
        None, description="Training settings YAML (as `rlaif train --config`); `train:` keys override it."
    )
    train: dict[str, Any] = Field(
        default_factory=dict,
        description="Training settings: rlaif's TrainSettings fields or fields of the algorithm's config class.",
    )
    eval: EvalSpec = Field(description="Held-out evaluation of each round's model against the policy it replaces.")
    early_stop: EarlyStop = Field(default_factory=EarlyStop, description="When the loop stops before `rounds`.")


def read_loop_file(path: str | Path) -> dict:
    """The YAML mapping of a loop recipe; RecipeError naming the file for what is not one."""
    data = read_recipe_yaml(path, "recipes/iterate.yaml")
    if not isinstance(data, dict):
        raise RecipeError(str(path), "", "a recipe must be a YAML mapping", "start from recipes/iterate.yaml")
    return data


def parse_iterate(data: object, path: str) -> IterateSpec:
    if not isinstance(data, dict):
        raise RecipeError(
            path,
            "iterate",
            "missing or not a mapping",
            "add an `iterate:` section with at least `eval: {prompts: FILE}` (see recipes/iterate.yaml)",
        )
    try:
        return IterateSpec.model_validate(data)
    except ValidationError as exc:
        key, problem, fix = describe(exc.errors()[0], IterateSpec, {})
        raise RecipeError(path, f"iterate.{key}", problem, fix) from None


def load_loop(path: str | Path, rounds: int | None = None) -> tuple[Recipe, IterateSpec]:
    """The recipe and its `iterate:` section, checked: the replaced policy exists, the held-out
    prompt file and the training config exist, the training settings are valid."""
    data = read_loop_file(path)
    spec = parse_iterate(data.pop("iterate", None), str(path))
    if rounds is not None:
        if rounds < 1:
            raise RecipeError("--rounds", "", f"must be at least 1, got {rounds}", "e.g. --rounds 2")
        spec = spec.model_copy(update={"rounds": rounds})
    recipe = parse_recipe(data, str(path), Path(path).parent)
    names = [policy.name for policy in recipe.policies]
    if spec.policy is not None and spec.policy not in names:
        raise RecipeError(
            str(path), "iterate.policy", f"no policy is named {spec.policy!r}", f"use one of: {', '.join(names)}"
        )
    if not Path(spec.eval.prompts).is_file():
        raise InputError(
            spec.eval.prompts, "held-out prompt file not found (iterate.eval.prompts)", fix=f"check the path in {path}"
        )
    if spec.config is not None and not Path(spec.config).is_file():
        problem = (
            "is a folder, not a training config file" if Path(spec.config).is_dir() else "no such training config file"
        )
        raise RecipeError(
            str(path), "iterate.config", f"{problem}: {spec.config}", "check the path, e.g. recipes/train/dpo.yaml"
        )
    train_settings(spec, str(path))
    return recipe, spec


def train_settings(spec: IterateSpec, path: str = "iterate.train"):
    """The round's TrainSettings: the config file, then `train:` (errors name the key)."""
    from rlaif.training.config import load_settings

    try:
        return load_settings(spec.algorithm, spec.config, **spec.train)
    except RecipeError as exc:
        if exc.key and exc.key.split(".")[0] not in spec.train:
            raise  # from the config file: the error names that file
        raise RecipeError(
            path, f"iterate.train.{exc.key}" if exc.key else "iterate.train", exc.problem, exc.fix
        ) from None


def replaced_index(recipe: Recipe, spec: IterateSpec) -> int:
    """Index of the policy each round's model replaces."""
    if spec.policy is None:
        return 0
    return [policy.name for policy in recipe.policies].index(spec.policy)


def stop_reason(rule: EarlyStop, history: list[dict]) -> str | None:
    """Why the loop stops after the latest round (its eval figures last in `history`), or None.

    >>> stop_reason(EarlyStop(), [{"win_rate": 0.7, "win_rate_ci95": [0.4, 0.9]}]) is None
    True
    >>> stop_reason(EarlyStop(), [{"win_rate": 0.7}, {"win_rate": 0.6, "win_rate_ci95": [0.3, 0.8]}])
    "win rate 0.6 is not above the last round's 0.7"
    """
    latest = history[-1]
    rate = latest.get("win_rate")
    if rate is None:
        return "no comparison was judged (every evaluation sample or judgment failed)"
    if rule.rule == "not_significant":
        low = (latest.get("win_rate_ci95") or [None])[0]
        if low is None or low < rule.threshold:
            return (
                f"the win rate's 95% lower bound {low} is below {rule.threshold}: the new policy is not clearly better"
            )
    if rule.rule == "not_improving" and len(history) >= 2:
        last = history[-2].get("win_rate")
        if last is not None and rate <= last + rule.min_delta:
            gain = f" + {rule.min_delta}" if rule.min_delta else ""
            return f"win rate {rate} is not above the last round's {last}{gain}"
    return None
