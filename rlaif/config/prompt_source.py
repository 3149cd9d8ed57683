"""The recipe's `prompts:` section: where the prompts come from (a local file, a Hugging Face Hub dataset or an
earlier version of the store), which column holds them, and which rows are used (rlaif.store.prompt_sources reads it)."""

from __future__ import annotations

import re
from typing import Any, ClassVar, Literal, Union

from pydantic import BaseModel, ConfigDict, Field, model_serializer, model_validator
from pydantic_core import PydanticCustomError

from rlaif.core.gold_formats import FORMATS as GOLD_FORMATS

DEFAULT_PATH = "data/prompts.jsonl"
SOURCES = ("path", "hub", "version")
HUB_ONLY = ("split", "config", "revision")
REPO_ID = re.compile(r"^[A-Za-z0-9][\w.-]*/[\w.-]+$")
# fields added after `path`, `system` and `limit`: left out of the recipe's dump while they keep their default, so
# the version ids of recipes that do not use them stay what they were
ADDED = (
    "format",
    "hub",
    "split",
    "config",
    "revision",
    "version",
    "column",
    "messages_column",
    "id_column",
    "drop_last_assistant",
    "shuffle",
    "where",
)
Scalar = Union[str, int, float, bool]


def _problem(key: str, problem: str, fix: str) -> PydanticCustomError:
    return PydanticCustomError("recipe_value", "{problem}", {"key": key, "problem": problem, "fix": fix})


class ShuffleSpec(BaseModel):
    """`prompts.shuffle`: a deterministic shuffle before `limit`."""

    model_config = ConfigDict(extra="forbid")
    seed: int = Field(description="Seed of the shuffle: the same seed picks the same prompts in the same order.")
    buffer: int = Field(
        10_000,
        ge=1,
        description="A Hub dataset read as a stream (when `limit` is set): the shuffle buffer, in rows; each prompt is "
        "drawn from the next `buffer` rows of the stream (datasets' IterableDataset.shuffle). Files, versions and "
        "Hub datasets read whole are shuffled as a whole and ignore it.",
    )


class PromptSource(BaseModel):
    """The recipe's `prompts:`: exactly one of `path`, `hub` or `version`, then the columns and the selection."""

    model_config = ConfigDict(extra="forbid", allow_inf_nan=False)
    path: str | None = Field(
        DEFAULT_PATH,
        description="A local file: JSON Lines (each row has `prompt` (text) or `messages` (chat), and optionally `id`), "
        "Parquet, CSV, or a folder of Parquet files.",
    )
    format: Literal["jsonl", "parquet", "csv"] | None = Field(
        None, description="The format of `path`; null: from its extension (.jsonl/.json, .parquet or a folder, .csv)."
    )
    hub: str | None = Field(
        None,
        description="A Hugging Face Hub dataset, ORG/NAME, read with datasets.load_dataset (HF_TOKEN for private sets, "
        "HF_ENDPOINT for a mirror, HF_HUB_OFFLINE=1 from the cache).",
    )
    split: str | None = Field(None, description="With `hub`: the split to read; null: train.")
    config: str | None = Field(
        None, description="With `hub`: the dataset's configuration (subset); null: its default."
    )
    revision: str | None = Field(
        None,
        description="With `hub`: a branch, tag or commit; null: main. A branch or tag is resolved to its commit once at "
        "the start of the run, and the commit is what the version records and hashes.",
    )
    version: str | None = Field(None, description="The prompts of an earlier dataset version in the store (its id).")
    column: str | None = Field(
        None,
        description="The column holding the prompt text (or chat); null: `messages` where a row has it, else `prompt`.",
    )
    messages_column: str | None = Field(
        None,
        description="The column holding the prompt as a chat: a list of {role, content} (as UltraChat stores it).",
    )
    id_column: str | None = Field(
        None,
        description="The column holding each prompt's id; null: `id` where a row has it, else the row number (JSON Lines) "
        "or a hash of the prompt's content (other sources).",
    )
    drop_last_assistant: bool = Field(
        False,
        description="Cut a chat that ends with the assistant's turn(s) at its last user turn (sets that store whole conversations).",
    )
    system: str | None = Field(None, description="System message put before every prompt.")
    limit: int | None = Field(
        None,
        ge=1,
        description="Use only the first N prompts (a Hub dataset is then read as a stream, not downloaded whole).",
    )
    shuffle: ShuffleSpec | None = Field(None, description="Shuffle the rows (deterministically) before `limit`.")
    where: dict[str, Union[Scalar, list[Scalar]]] | None = Field(
        None,
        description="Keep only rows whose column equals a value (or one of a list), e.g. {language: en}; every "
        "condition must hold.",
    )

    @model_validator(mode="after")
    def _one_source(self):
        given = [name for name in SOURCES if getattr(self, name) is not None and name in self.model_fields_set]
        if len(given) > 1:
            raise _problem(
                given[1],
                f"prompts takes exactly one source, got {' and '.join(given)}",
                "keep one of path, hub and version",
            )
        if self.hub is not None or self.version is not None:
            self.path = None
        if self.path is None and self.hub is None and self.version is None:
            raise _problem("path", "prompts has no source", "set path (a file), hub (ORG/NAME) or version (an id)")
        self._check_fields()
        return self

    def _check_fields(self) -> None:
        if self.hub is not None and not REPO_ID.match(self.hub):
            raise _problem(
                "hub",
                f"{self.hub!r} is not a Hub dataset id",
                "write it as ORG/NAME, e.g. HuggingFaceH4/ultrachat_200k",
            )
        for name in HUB_ONLY:
            if getattr(self, name) is not None and self.hub is None:
                raise _problem(name, f"{name} applies to a Hub dataset only", f"remove {name}, or set hub: ORG/NAME")
        if self.format is not None and self.path is None:
            raise _problem("format", "format applies to a local file only", "remove format")
        if self.column is not None and self.messages_column is not None:
            raise _problem(
                "messages_column", "set column or messages_column, not both", "column: text; messages_column: a chat"
            )

    @model_serializer(mode="wrap")
    def _dump(self, handler) -> dict[str, Any]:
        data = handler(self)
        for name in ADDED:
            if data.get(name) == type(self).model_fields[name].default:
                data.pop(name, None)
        if data.get("path") is None:
            data.pop("path", None)
        return data

    def file_format(self) -> str | None:
        """The file's format (`format:`; null: from the extension)."""
        return self.format

    def split_setting(self) -> str:
        """Where a wrong split or config is fixed."""
        return "prompts.split and prompts.config in the recipe"

    def label(self) -> str:
        """How messages name the source."""
        return self.path or (f"{self.hub} (Hub dataset)" if self.hub else f"version {self.version}")

    def kind(self) -> str:
        """`path`, `hub` or `version`."""
        return next(name for name in SOURCES if getattr(self, name) is not None)


class GoldSource(BaseModel):
    """Human-labelled pairs from a file or a Hub dataset, in our schema or a public set's own (`format`)."""

    model_config = ConfigDict(extra="forbid", allow_inf_nan=False)
    path: str | None = Field(
        None,
        description="A local file: JSON Lines, Parquet or CSV (from its extension), or a folder of Parquet files.",
    )
    hub: str | None = Field(None, description="A Hugging Face Hub dataset, ORG/NAME (read whole, then cached).")
    split: str | None = Field(None, description="With `hub`: the split to read; null: train.")
    config: str | None = Field(
        None, description="With `hub`: the dataset's configuration (subset); null: its default."
    )
    revision: str | None = Field(
        None,
        description="With `hub`: a branch, tag or commit; null: main (resolved to its commit, which is recorded).",
    )
    format: Literal[tuple(GOLD_FORMATS)] = Field(  # type: ignore[valid-type]
        "rlaif",
        description="The rows' shape: rlaif (prompt, chosen, rejected) or a public set's own (docs/judges.md: "
        + ", ".join(GOLD_FORMATS)
        + "); rows without a preference (ties, no majority) are skipped and counted.",
    )

    @model_validator(mode="after")
    def _one_source(self):
        given = [name for name in ("path", "hub") if getattr(self, name) is not None]
        if len(given) != 1:
            raise _problem(
                "path",
                "gold takes exactly one of path and hub",
                "e.g. gold: {hub: allenai/reward-bench, split: filtered, format: reward-bench}",
            )
        if self.hub is not None and not REPO_ID.match(self.hub):
            raise _problem("hub", f"{self.hub!r} is not a Hub dataset id", "write it as ORG/NAME")
        for name in HUB_ONLY:
            if getattr(self, name) is not None and self.hub is None:
                raise _problem(name, f"{name} applies to a Hub dataset only", f"remove {name}, or set hub: ORG/NAME")
        return self

    # what the row reader (rlaif.store.prompt_sources) asks of a source; a gold set is read whole, as it is
    version: ClassVar[None] = None
    column: ClassVar[None] = None
    messages_column: ClassVar[None] = None
    id_column: ClassVar[None] = None
    shuffle: ClassVar[None] = None
    where: ClassVar[None] = None
    drop_last_assistant: ClassVar[bool] = False

    def file_format(self) -> str | None:
        """The file's format: from its extension."""
        return None

    def split_setting(self) -> str:
        """Where a wrong split or config is fixed."""
        return "--gold-split and --gold-config (or judge.gold's split and config in a recipe)"

    def kind(self) -> str:
        return "path" if self.path is not None else "hub"

    def label(self) -> str:
        return self.path or f"{self.hub} (Hub dataset)"

    @classmethod
    def of(
        cls, value: str | GoldSource, format: str = "rlaif", split: str | None = None, config: str | None = None
    ) -> GoldSource:
        """A `--gold` argument (a file, or hub:ORG/NAME[@REVISION]) or a recipe's `judge.gold` as a source.

        >>> GoldSource.of("hub:allenai/reward-bench@main", "reward-bench", "filtered").model_dump(exclude_none=True)
        {'hub': 'allenai/reward-bench', 'split': 'filtered', 'revision': 'main', 'format': 'reward-bench'}
        >>> GoldSource.of("data/gold-sample.jsonl").path
        'data/gold-sample.jsonl'
        """
        if isinstance(value, GoldSource):
            return value
        if value.startswith("hub:"):
            repo, _, revision = value[4:].partition("@")
            return cls(hub=repo, revision=revision or None, split=split, config=config, format=format)
        return cls(path=value, format=format)
