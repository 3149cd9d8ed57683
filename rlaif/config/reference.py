"""docs/recipe.md, the recipe reference, made from the pydantic models themselves: every field of every
section, its type, default and description (`python -m rlaif.config.reference > docs/recipe.md`, or
`make docs`; tests/test_docs.py checks the file is current)."""

from __future__ import annotations

import types
import typing
from typing import Any

from pydantic import BaseModel
from pydantic_core import PydanticUndefined

from rlaif.config.engines import ENGINE_OPTIONS
from rlaif.config.prompt_source import GoldSource, ShuffleSpec
from rlaif.config.recipe import (
    BinaryJudge,
    DecontaminateSpec,
    FilterSpec,
    JuryMember,
    ListwiseJudge,
    MinHashSpec,
    PairwiseJudge,
    PointwiseJudge,
    PolicySpec,
    PrinciplesSpec,
    PromptSource,
    Recipe,
    RetrySpec,
    SamplingParams,
)
from rlaif.config.sections import BudgetSpec, ExecutionSpec, PriceSpec

INTRO = """# Recipe reference

A recipe is a YAML file; `rlaif run RECIPE` runs it. Every field below, with its type, its default and
what it does. A field that is not listed is an error naming it (`extra="forbid"`), and so is an engine
field set for a backend that does not read it (the `backend` column). This file is made from the
pydantic models in `rlaif/config/` (`make docs`); a test checks it is current.

A minimal recipe (the embedded model samples and judges, no network):

```yaml
name: my-prefs
prompts: {path: data/prompts.jsonl}
policies:
  - {name: smol, model: smollm2-135m}
```

Two policies on an OpenAI-compatible endpoint and a judge on another (`recipes/openai.yaml`):

```yaml
name: api-prefs
prompts: {path: data/prompts.jsonl}
policies:
  - {name: cold, backend: openai, base_url: "http://127.0.0.1:8000/v1", model: my-model, params: {temperature: 0.2}}
  - {name: hot, backend: openai, base_url: "http://127.0.0.1:8000/v1", model: my-model, params: {temperature: 0.9}}
samples_per_prompt: 1   # per policy: 2 policies x 1 sample = 2 responses per prompt
judge: {backend: openai, base_url: "https://api.openai.com/v1", model: gpt-4o-mini, api_key_env: OPENAI_API_KEY}
```
"""

#: (heading, model, what the section is) in the order of the reference
SECTIONS: list[tuple[str, type[BaseModel], str]] = [
    ("The recipe", Recipe, "the top level of the file"),
    ("`prompts:`", PromptSource, "where the prompts come from: a file, a Hub dataset or a version (docs/prompts.md)"),
    ("`prompts.shuffle:`", ShuffleSpec, "a deterministic shuffle before `limit`"),
    ("`policies:` (each one)", PolicySpec, "a model that samples responses; a list of one or more"),
    ("`policies[].params:` and `judge` sampling", SamplingParams, "how a policy samples"),
    ("`judge:` with `type: pairwise` (the default)", PairwiseJudge, "compares two responses, in both orders"),
    ("`judge:` with `type: listwise`", ListwiseJudge, "ranks all of a prompt's responses at once"),
    ("`judge:` with `type: pointwise`", PointwiseJudge, "rates each response on a scale"),
    ("`judge:` with `type: binary`", BinaryJudge, "says whether each response is good"),
    ("`judge.jury:` (each member)", JuryMember, "a judge model of a jury; unset fields come from the judge"),
    ("`judge.principles:`", PrinciplesSpec, "a constitution the judge is given"),
    (
        "`judge.gold:` (as a source)",
        GoldSource,
        "human-labelled pairs from a file or a Hub dataset, in any of the public formats",
    ),
    ("`filters:`", FilterSpec, "what is dropped, before and after judging"),
    ("`filters.minhash:`", MinHashSpec, "near-duplicate detection"),
    ("`filters.decontaminate:`", DecontaminateSpec, "overlap with evaluation sets"),
    ("`retries:`", RetrySpec, "passes over calls that failed with a transient error"),
    ("`prices:` (each model)", PriceSpec, "what a model's tokens cost, for `cost` and `budget`"),
    ("`budget:`", BudgetSpec, "the run's spending cap"),
    ("`execution:`", ExecutionSpec, "in this process, or sharded on Ray"),
]


def type_text(annotation: Any) -> str:
    """A field's type as a reader writes it.

    >>> type_text(int | None), type_text(typing.Literal["a", "b"]), type_text(list[str])
    ('integer or null', 'one of: a, b', 'list of text')
    """
    origin, args = typing.get_origin(annotation), typing.get_args(annotation)
    if origin is typing.Literal:
        return "one of: " + ", ".join(str(a) for a in args)
    if origin in (typing.Union, types.UnionType):
        parts = [type_text(a) for a in args if a is not type(None)]
        return " or ".join(parts) + (" or null" if type(None) in args else "")
    if origin is typing.Annotated:
        return type_text(args[0])
    if origin in (list, tuple):
        return f"list of {type_text(args[0])}" if args else "list"
    if origin is dict:
        return f"map of {type_text(args[0])} to {type_text(args[1])}"
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        heading = next((h for h, model, _ in SECTIONS if model is annotation), None)
        return f"section: {heading}" if heading else "section"
    names = {int: "integer", float: "number", str: "text", bool: "true or false"}
    return names.get(annotation, getattr(annotation, "__name__", str(annotation)))


def default_text(field: Any) -> str:
    if field.default_factory is not None:
        made = field.default_factory()
        return "(see its section)" if isinstance(made, BaseModel) else f"`{made!r}`"
    if field.default is PydanticUndefined:
        return "required"
    value = field.default
    return "`null`" if value is None else f"`{str(value).lower() if isinstance(value, bool) else value}`"


def backends_of(name: str) -> str:
    """The backends that read an engine field ('' for a field every backend reads)."""
    readers = [backend for backend, options in ENGINE_OPTIONS.items() if name in options]
    return ", ".join(readers)


def section_table(model: type[BaseModel]) -> list[str]:
    rows = ["| field | type | default | backend | what it does |", "|---|---|---|---|---|"]
    for name, field in model.model_fields.items():
        description = " ".join((field.description or "See its section.").split()).replace("|", "\\|")
        rows.append(
            f"| `{name}` | {type_text(field.annotation)} | {default_text(field)} | {backends_of(name)} | {description} |"
        )
    return rows


def recipe_reference() -> str:
    lines = [INTRO.rstrip("\n")]
    for heading, model, what in SECTIONS:
        lines += ["", f"## {heading}", "", f"{what[0].upper()}{what[1:]}.", "", *section_table(model)]
    return "\n".join(lines) + "\n"


if __name__ == "__main__":
    print(recipe_reference(), end="")
