"""Recipes: small YAML run configurations, validated with pydantic (`extra="forbid"`).

Errors name the file, the key and the fix, e.g.
``recipes/demo.yaml: judge.backnd: unknown key - did you mean 'backend'?``
"""

from __future__ import annotations

import difflib
from pathlib import Path
from typing import Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from rlaif.errors import RecipeError

BACKENDS = ("transformers", "openai", "vllm")


class Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


class SamplingParams(Strict):
    temperature: float = Field(0.7, ge=0, description="Sampling temperature; 0 is greedy.")
    top_p: float = Field(1.0, gt=0, le=1, description="Nucleus sampling threshold.")
    max_tokens: int = Field(256, ge=1, description="Most new tokens per response; longer ones end with finish_reason 'length'.")
    seed: int = Field(0, description="Base seed; sample i of a prompt uses seed + i.")


class ModelSpec(Strict):
    backend: Literal["transformers", "openai", "vllm"] = Field("transformers", description="Which engine runs the model.")
    model: str = Field("smollm2-135m", description="Built-in alias, local path, or the model name the API expects.")
    base_url: str | None = Field(None, description="OpenAI-compatible endpoint (openai backend), e.g. http://127.0.0.1:8000/v1.")
    api_key_env: str = Field("OPENAI_API_KEY", description="Name of the environment variable holding the API key; the key itself is never stored.")
    max_concurrency: int = Field(64, ge=1, description="Requests in flight at once (openai backend).")
    timeout_s: float = Field(60.0, gt=0, description="Per-request timeout in seconds (openai backend).")
    max_retries: int = Field(4, ge=0, description="Retries per request, with exponential backoff and jitter; Retry-After is honoured.")
    batch_size: int = Field(8, ge=1, description="Prompts per forward pass (transformers backend).")
    threads: int | None = Field(
        None, ge=1, description="torch CPU threads (transformers backend); default: torch's own (all cores). Batched work here ran 1.7x faster on 2 threads than on 1."
    )
    dtype: Literal["float32", "bfloat16", "float16", "auto"] = Field("float32", description="Weights dtype for local engines.")


class PolicySpec(ModelSpec):
    name: str = Field("policy", description="Name recorded on every generation of this policy.")
    params: SamplingParams = Field(default_factory=SamplingParams)


class JudgeSpec(ModelSpec):
    template: str = Field("prompts/pairwise_judge.j2", description="Jinja judge template (path relative to the project or absolute).")
    mode: Literal["auto", "logprobs", "parse"] = Field(
        "auto", description="auto: verdict-token probabilities when the backend gives them, else the parsed answer."
    )
    debias: bool = Field(True, description="Estimate the judge's position bias over the run and remove it in logit space.")
    max_tokens: int = Field(8, ge=1, description="Tokens the judge may write in parse mode.")
    pairs: Literal["all", "first"] = Field("all", description="all: every pair of distinct responses of a prompt; first: only the first two.")


class PromptSource(Strict):
    path: str = Field("data/prompts.jsonl", description="JSON Lines file; each row has `prompt` (text) or `messages` (chat), and optionally `id`.")
    system: str | None = Field(None, description="System message put before every prompt.")
    limit: int | None = Field(None, ge=1, description="Use only the first N prompts.")


class FilterSpec(Strict):
    consistency: bool = Field(True, description="Drop judgments whose two orders disagree (after debiasing).")
    min_margin: float = Field(0.1, ge=0, le=1, description="Drop pairs with |2 p - 1| below this (ties and near-ties).")
    drop_truncated: bool = Field(True, description="Drop pairs with a response cut off by max_tokens (finish_reason 'length').")


class Recipe(Strict):
    name: str = Field(description="Dataset name; versions are named after it.")
    prompts: PromptSource = Field(default_factory=PromptSource)
    policies: list[PolicySpec] = Field(min_length=1, description="One or several policies sampling responses.")
    samples_per_prompt: int = Field(2, ge=1, le=16, description="Responses each policy samples per prompt.")
    judge: JudgeSpec = Field(default_factory=JudgeSpec)
    filters: FilterSpec = Field(default_factory=FilterSpec)
    store: str | None = Field(None, description="Store folder; the CLI's --store and RLAIF_STORE take precedence.")


def _describe(error: dict, data: dict) -> tuple[str, str, str]:
    """Turn one pydantic error into (key, problem, fix)."""
    loc = [str(part) for part in error["loc"]]
    key = ".".join(loc)
    if error["type"] == "extra_forbidden":
        parent = data
        for part in loc[:-1]:
            parent = parent[int(part)] if isinstance(parent, list) else parent.get(part, {})
        model = _model_at(loc[:-1])
        known = sorted(model.model_fields) if model else []
        close = difflib.get_close_matches(loc[-1], known, n=1)
        fix = f"did you mean '{close[0]}'?" if close else f"allowed keys: {', '.join(known)}"
        return key, "unknown key", fix
    if error["type"] == "missing":
        return key, "required key is missing", "add it (see recipes/demo.yaml for an example)"
    return key, error["msg"], f"got {error.get('input')!r}"


def _model_at(loc: list[str]) -> type[BaseModel] | None:
    model: type[BaseModel] | None = Recipe
    for part in loc:
        if part.isdigit() or model is None:
            continue
        annotation = model.model_fields[part].annotation if part in model.model_fields else None
        args = getattr(annotation, "__args__", ())
        candidates = [a for a in (annotation, *args) if isinstance(a, type) and issubclass(a, BaseModel)]
        model = candidates[0] if candidates else None
    return model


def parse_recipe(data: object, path: str = "<recipe>") -> Recipe:
    """Validate recipe data, raising RecipeError naming the file, key and fix."""
    if not isinstance(data, dict):
        raise RecipeError(path, "", "a recipe must be a YAML mapping", "start from recipes/demo.yaml")
    try:
        return Recipe.model_validate(data)
    except ValidationError as exc:
        key, problem, fix = _describe(exc.errors()[0], data)
        raise RecipeError(path, key, problem, fix) from None


def load_recipe(path: str | Path) -> Recipe:
    """Read and validate a recipe YAML file."""
    path = Path(path)
    if not path.is_file():
        raise RecipeError(str(path), "", "file not found", "check the path, e.g. recipes/demo.yaml")
    try:
        data = yaml.safe_load(path.read_text())
    except yaml.YAMLError as exc:
        raise RecipeError(str(path), "", f"not valid YAML ({exc})", "fix the syntax") from None
    return parse_recipe(data, str(path))
