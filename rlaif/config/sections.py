"""Recipe sections that other layers read on their own: `prices:`, `budget:` and `execution:` (the
config layer: the calls layer prices and caps calls with them, the pipeline runs where they say)."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator
from pydantic_core import PydanticCustomError


class PriceSpec(BaseModel):
    """The price of one model, in USD per million tokens (the recipe's `prices: {model: ...}`)."""

    model_config = ConfigDict(extra="forbid", allow_inf_nan=False)
    prompt_per_mtok: float = Field(ge=0, description="USD per million prompt (input) tokens.")
    completion_per_mtok: float = Field(ge=0, description="USD per million completion (output) tokens.")


class BudgetSpec(BaseModel):
    """The recipe's `budget:`; at least one of the two caps."""

    model_config = ConfigDict(extra="forbid", allow_inf_nan=False)
    max_usd: float | None = Field(
        None,
        gt=0,
        description="Most USD the run's live calls may cost (from `prices:`; every API model needs a price).",
    )
    max_tokens: int | None = Field(
        None, ge=1, description="Most prompt + completion tokens the run's live calls may use."
    )

    @model_validator(mode="after")
    def _one_cap(self):
        if self.max_usd is None and self.max_tokens is None:
            raise PydanticCustomError(
                "recipe_value",
                "{problem}",
                {
                    "key": "max_usd",
                    "problem": "a budget needs max_usd or max_tokens",
                    "fix": "e.g. budget: {max_usd: 5}",
                },
            )
        return self


class ExecutionSpec(BaseModel):
    """The recipe's `execution:`: which engine runs the steps, and how many shard workers."""

    model_config = ConfigDict(extra="forbid", allow_inf_nan=False)
    engine: Literal["local", "ray"] = Field(
        "local",
        description="`local`: every step in this process (or as Prefect tasks); `ray`: sampling and judging of each chunk on a Ray actor (docs/scale.md).",
    )
    address: str | None = Field(
        None,
        description="Ray cluster to join (engine ray): `auto` (the cluster `ray start` made on this node), `HOST:6379` or `ray://HOST:10001`; "
        "null: $RAY_ADDRESS when set, else a local Ray instance started for the run and stopped with it.",
    )
    shards: int = Field(
        2,
        ge=1,
        le=4096,
        description="Shard workers (Ray actors), each with its own backends; chunk k goes to shard k % shards (engine ray).",
    )
    num_cpus: float = Field(1.0, gt=0, description="CPUs each shard worker reserves on the cluster (engine ray).")
    num_gpus: float | None = Field(
        None,
        ge=0,
        description="GPUs each shard worker reserves (engine ray); null: when the run has a local engine and the cluster has GPUs, "
        "the largest `tensor_parallel_size` of its local models (1 by default), else 0.",
    )

    @model_validator(mode="after")
    def _ray_only(self):
        if self.engine == "local" and (self.address is not None or "shards" in self.model_fields_set):
            key = "address" if self.address is not None else "shards"
            raise PydanticCustomError(
                "recipe_value",
                "{problem}",
                {
                    "key": key,
                    "problem": f"`{key}` applies to engine: ray, but engine is local",
                    "fix": "set engine: ray (execution: {engine: ray, shards: 2}), or remove it",
                },
            )
        return self
