"""Where a run's steps execute: the recipe's `execution:` (a delivery setting: it never changes the version id).

    execution: {engine: ray, address: auto, shards: 4}

`engine: local` (the default) runs every step in this process (`rlaif.pipeline.executors.InProcess`, or
Prefect tasks); `engine: ray` sends sampling and phase-1 judging of each chunk of prompts to one of
`shards` Ray actors (rlaif/pipeline/executors_ray.py; docs/scale.md). `rlaif run --ray ADDRESS --shards N`
sets the same from the command line.
"""

from __future__ import annotations

import math
from pathlib import Path

from pydantic import ValidationError

from rlaif.config.sections import ExecutionSpec


def with_execution(recipe, ray_address: str | None = None, shards: int | None = None):
    """`recipe` with the CLI's `--ray ADDRESS` / `--shards N` applied (either turns engine ray on); the same recipe without them."""
    if ray_address is None and shards is None:
        return recipe
    from rlaif.core.errors import RecipeError

    current = recipe.execution.model_dump(exclude_unset=True)
    data = {
        **current,
        "engine": "ray",
        **({"address": ray_address} if ray_address is not None else {}),
        **({"shards": shards} if shards is not None else {}),
    }
    if data.get("address") in ("", "local"):
        data["address"] = None  # --ray local: a Ray instance of the run's own
    try:
        return recipe.model_copy(update={"execution": ExecutionSpec.model_validate(data)})
    except ValidationError as exc:
        raise RecipeError(
            "--ray/--shards", "", exc.errors()[0]["msg"], "e.g. rlaif run R.yaml --ray auto --shards 4"
        ) from None


def count_prompts(path: str | Path, limit: int | None = None) -> int:
    """Non-empty lines of a prompt file (a JSONL row each), at most `limit`: an upper bound of the run's prompts, read fast."""
    lines = 0
    with open(path, "rb") as handle:
        for line in handle:
            lines += bool(line.strip())
            if limit and lines >= limit:
                break
    return lines


def shard_chunk_size(chunk_size: int, prompts: int, shards: int, align: int = 1) -> int:
    """The chunk size of a sharded run: about an equal share of the prompts, so that every shard has a chunk,
    rounded up to a multiple of `align` (see `batch_alignment`); never above the run's own chunk size.

    >>> shard_chunk_size(5000, 10, 2), shard_chunk_size(3, 10, 2), shard_chunk_size(5000, 1, 4), shard_chunk_size(5000, 10, 2, 4)
    (5, 3, 1, 8)
    """
    share = math.ceil(math.ceil(prompts / shards) / align) * align
    return max(1, min(chunk_size, share))


def batch_alignment(recipe) -> int:
    """Prompts per chunk that keep every local policy's batches whole: a transformers policy seeds each batch from
    its requests, so a chunk boundary inside a batch would change sampled text (and the version id).

    >>> from types import SimpleNamespace as S
    >>> batch_alignment(S(samples_per_prompt=2, policies=[S(backend="transformers", batch_size=8), S(backend="openai", batch_size=8)]))
    4
    """
    align = 1
    for policy in recipe.policies:
        if policy.backend == "transformers":
            batch = policy.batch_size
            align = math.lcm(align, batch // math.gcd(batch, recipe.samples_per_prompt))
    return align
