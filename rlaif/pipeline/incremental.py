"""Incremental versions: a recipe's `parent:` (a version id, or `latest`) builds on that version.

The run reads the prompt file as usual but samples and judges only the prompts the parent does
not already hold, and commits a version whose tables are the parent's rows (read back from its
Parquet files batch by batch, unchanged) followed by the new ones, with `parents: [parent]`.

    check_parent(recipe, store)    preflight: the parent exists and was made by a compatible recipe
    new_prompts(run, limit)        the prompt file less what the parent holds (rlaif.pipeline.runner.prompt_chunks)
    with_parent(run, tables, m)    the parent's rows then the new ones, and the whole-version figures (rlaif.pipeline.runner.commit_run)

A prompt counts as held by the parent when its user turns equal one of the parent's prompts
(after the `dedup_prompts` normalisation) or, with `prompt_near_duplicate` on, are a near-duplicate
of one: so a prompt that the parent's run dropped as a duplicate is not judged now either. A new
prompt with the id of a parent prompt but other content is an error (ids must stay unique in the
version). `--limit N` / `prompts.limit` count new prompts. The new rows are debiased with this
run's own position-bias estimate (the parent's rows are never rewritten); the manifest states
the statistics of the new rows (`incremental`) and of the whole version (`counts`, `judge`).
"""

from __future__ import annotations

import weakref
from array import array
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pyarrow as pa
import pyarrow.parquet as pq

from rlaif.config.prompt_source import PromptSource
from rlaif.core.errors import InputError, RecipeError, RlaifError, StoreError
from rlaif.core.inputs import iter_prompts
from rlaif.core.schema import Prompt
from rlaif.core.secrets import public_recipe
from rlaif.judges.debias import PositionBias, agree, estimate_beta
from rlaif.quality.decontam import user_text
from rlaif.quality.dedup import NearDuplicateIndex
from rlaif.quality.text import squash
from rlaif.store.diff import changed_settings, flatten
from rlaif.store.prompt_sources import resolve_prompts
from rlaif.store.spill import RowSpill, conform
from rlaif.store.versions import BATCH_ROWS, hashed_recipe, list_versions, load_manifest, version_path

if TYPE_CHECKING:
    from rlaif.config.recipe import Recipe
    from rlaif.pipeline.run import Run

LATEST = "latest"
NOT_COMPARED = ("name", "parent") + tuple(
    f"prompts.{key}" for key in PromptSource.model_fields if key != "system"
)  # what a child recipe may change: which prompts (from any source), and its name


class NothingNew(RlaifError):
    """An incremental run found no prompt that its parent does not already hold: no version is made, exit 0."""

    exit_code = 0

    def __init__(self, parent: str, skipped: int, dropped: int = 0) -> None:
        self.parent = parent
        detail = f"{skipped} prompts of the file already in it" + (
            f", {dropped} new ones dropped by the prompt filters" if dropped else ""
        )
        super().__init__(f"no new prompts since {parent}: nothing to do ({detail}; no version made)")


# -- the parent ------------------------------------------------------------------------------------


def latest_version(store: str | Path, name: str) -> str | None:
    """The newest version named `name`: the newest of those no other version of that name builds on."""
    named = [m for m in list_versions(store) if m.get("name") == name and "broken" not in m]
    built_on = {parent for m in named for parent in m.get("parents") or []}
    tips = [m for m in named if m["id"] not in built_on] or named
    return tips[-1]["id"] if tips else None


def parent_id(recipe: Recipe, store: str | Path) -> str | None:
    """The version the recipe builds on (None: a version of its own, or `latest` with none yet)."""
    if recipe.parent is None:
        return None
    if recipe.parent == LATEST:
        return latest_version(store, recipe.name)
    try:
        version_path(store, recipe.parent)
    except StoreError as exc:
        raise StoreError(
            f"recipe {recipe.name!r}, `parent: {recipe.parent}`: {exc} - set `parent: latest` to build on the newest version "
            f"named {recipe.name!r}, or remove `parent:` to make a version of its own"
        ) from None
    return recipe.parent


def comparable(recipe_data: Any) -> dict:
    """The part of a dumped recipe that parent and child must share: the hashed recipe less `NOT_COMPARED`."""
    data = dict(hashed_recipe(public_recipe(recipe_data)) or {})
    for key in NOT_COMPARED:
        head, _, tail = key.partition(".")
        if not tail:
            data.pop(head, None)
        elif isinstance(data.get(head), dict):
            data[head] = {k: v for k, v in data[head].items() if k != tail}
    return data


def differences(parent_recipe: Any, recipe: Recipe) -> dict[str, list]:
    """Settings that differ between the parent's recipe and this one (dotted key -> [parent's, this recipe's]).

    A field the parent's recipe lacks (added to rlaif since it was made) differs only when this recipe
    sets it to other than its default; a field this recipe lacks (no longer in rlaif) is not compared.
    """
    old, new = comparable(parent_recipe), comparable(recipe.model_dump(mode="json"))
    flat_old, flat_new = flatten(old), flatten(new)
    set_now = flatten(comparable(recipe.model_dump(mode="json", exclude_defaults=True)))
    return {
        key: values
        for key, values in changed_settings(old, new).items()
        if key in flat_new and (key in flat_old or key in set_now)
    }


def check_parent(recipe: Recipe, store: str | Path) -> str | None:
    """The parent's id once it is known to exist and to come from a compatible recipe (None: no parent)."""
    found = parent_id(recipe, store)
    if found is None:
        return None
    changed = differences(load_manifest(store, found).get("recipe"), recipe)
    if changed:
        shown = "; ".join(f"{key}: {old!r} -> {new!r}" for key, (old, new) in list(changed.items())[:6])
        more = f" (and {len(changed) - 6} more)" if len(changed) > 6 else ""
        raise RecipeError(
            f"recipe {recipe.name!r}",
            "parent",
            f"{found} was made by another recipe: {shown}{more}",
            "an incremental version only adds prompts (prompts may change, apart from prompts.system): change these settings back, "
            "or start a new dataset (remove `parent:`)",
        )
    return found


@dataclass
class Parent:
    """What a run needs of its parent: where it is, its manifest, and its prompts as ids and texts."""

    id: str
    folder: Path
    manifest: dict
    ids: set[str] = field(default_factory=set)
    texts: set[str] = field(default_factory=set)
    near: NearDuplicateIndex | None = None
    skipped: int = 0

    def holds(self, prompt: Prompt) -> bool:
        text = user_text(prompt.messages)
        return squash(text) in self.texts or (self.near is not None and self.near.find(text) is not None)


def load_parent(store: str | Path, version_id: str, filters: Any) -> Parent:
    """The parent's prompts (read batch by batch) as ids, normalised texts and, when on, a near-duplicate index."""
    folder = version_path(store, version_id)
    parent = Parent(version_id, folder, load_manifest(store, version_id))
    if filters.dedup_prompts and filters.prompt_near_duplicate is not None:
        spec = filters.minhash
        parent.near = NearDuplicateIndex(filters.prompt_near_duplicate, spec.shingle_chars, spec.num_perm, spec.seed)
    path = folder / "prompts.parquet"
    if not path.is_file() or "messages" not in pq.read_schema(path).names:
        raise StoreError(
            f"{path}: the parent {version_id} has no prompts table - it cannot be built on: remove `parent:` (a version of its own)"
        )
    for batch in pq.ParquetFile(path).iter_batches(batch_size=BATCH_ROWS, columns=["id", "messages"]):
        for row in batch.to_pylist():
            text = user_text(row["messages"])
            parent.ids.add(str(row["id"]))
            parent.texts.add(squash(text))
            if parent.near is not None:
                parent.near.add(row["id"], text)
    return parent


@dataclass
class _State:
    requested: str | None  # the recipe's `parent:`
    parent: Parent | None  # None: no parent (or `latest` with no version yet)


_STATES: weakref.WeakKeyDictionary = (
    weakref.WeakKeyDictionary()
)  # Run -> _State (a run's parent, found by its prompts step)


def new_prompts(run: Run, limit: int | None = None) -> Iterator[Prompt]:
    """The run's prompts (validated, as `iter_prompts`), less those its parent holds.

    When the prompts run out and none of them is left once the run has applied its prompt filters
    (it counts drops in `run.totals.prompts_dropped` as it goes), raises NothingNew.
    """
    spec, recipe = run.recipe.prompts, run.recipe
    found = check_parent(recipe, run.store)
    state = _State(recipe.parent, load_parent(run.store, found, recipe.filters) if found else None)
    _STATES[run] = state
    parent, most = state.parent, limit or spec.limit
    rows = most if parent is None or most is None else most + len(parent.ids)  # at most the parent's, then `most` new
    source = resolve_prompts(spec, run.store, rows)
    run.totals.prompt_file, run.totals.prompt_lineage = str(source.file), source.lineage
    if parent is None:
        yield from iter_prompts(source.file, spec.system, most)
        return
    new = 0
    for prompt in iter_prompts(source.file, spec.system):
        if parent.holds(prompt):
            parent.skipped += 1
            continue
        if prompt.id in parent.ids:
            raise InputError(
                spec.label(),
                f"prompt id {prompt.id!r} is already in the parent {parent.id} with other content",
                field="id",
                fix="an incremental run only adds prompts: give new prompts new ids (ids default to the row number: append rows at the end, "
                "or give each row an `id`), or start a new dataset (remove `parent:`)",
            )
        new += 1
        yield prompt
        if most is not None and new >= most:
            break
    dropped = sum(run.totals.prompts_dropped.values())
    if new - dropped <= 0:
        raise NothingNew(parent.id, parent.skipped, dropped)


# -- the version: the parent's rows, then the new ones ------------------------------------------------


class ParentThen(RowSpill):
    """A table of the new version: the parent's rows (its Parquet file, batch by batch, as stored) then the run's spill."""

    def __init__(self, path: Path, spill: RowSpill) -> None:
        super().__init__(spill.folder, spill.name)
        self.path, self.spill = path, spill
        self.parent_schema = pq.read_schema(path) if path.is_file() else None
        if self.parent_schema is not None and not len(self.parent_schema):  # an empty table has no columns
            self.parent_schema = None
        self.parent_rows = pq.ParquetFile(path).metadata.num_rows if self.parent_schema is not None else 0
        self.columns, self.rows = spill.columns, spill.rows + self.parent_rows

    def schema(self) -> pa.Schema | None:
        schemas = [s for s in (self.parent_schema, self.spill.schema()) if s is not None]
        if not schemas:
            return None
        try:
            return pa.unify_schemas(schemas, promote_options="permissive")
        except (pa.ArrowException, TypeError) as exc:
            raise StoreError(
                f"table {self.name}: the new rows do not fit the parent's columns ({exc}) - start a new dataset (remove `parent:`)"
            ) from None

    def parent_tables(self, schema: pa.Schema | None = None) -> Iterator[pa.Table]:
        schema = schema or self.schema()
        if self.parent_schema is None or schema is None:
            return
        for batch in pq.ParquetFile(self.path).iter_batches(batch_size=BATCH_ROWS):
            if batch.num_rows:
                yield conform(pa.Table.from_batches([batch]), schema, self.name)

    def tables(self, schema: pa.Schema | None = None) -> Iterator[pa.Table]:
        schema = schema or self.schema()
        if schema is None:
            return
        yield from self.parent_tables(schema)
        yield from self.spill.tables(schema)


def with_parent(run: Run, tables: dict[str, RowSpill], manifest: dict) -> dict[str, RowSpill]:
    """The tables to commit: the parent's rows then the run's (unchanged tables when there is no parent).

    Fills the manifest: `parents`, `incremental` (the parent, the prompts skipped, the new rows'
    counts and judge statistics) and the whole version's `counts` and `judge` statistics.
    """
    state = _STATES.get(run)
    if state is None or state.requested is None:
        return tables
    if state.parent is None:
        manifest["incremental"] = {
            "parent": None,
            "note": f"parent: latest - no version named {run.recipe.name!r} in {run.store} yet: a full run",
        }
        return tables
    parent = state.parent
    merged = {name: ParentThen(parent.folder / f"{name}.parquet", spill) for name, spill in tables.items()}
    new_counts, new_judge = manifest["counts"], manifest["judge"]
    manifest["parents"] = [parent.id]
    manifest["incremental"] = {
        "parent": parent.id,
        "prompts_skipped": parent.skipped,
        "new_prompts": new_counts["prompts"],
        "new_pairs": new_counts["kept"],
        "new_counts": new_counts,
        "new_judge": {key: new_judge.get(key) for key in ("position_bias", "prefers_longer", "mean_prob_mass")},
    }
    manifest["counts"] = added(parent.manifest.get("counts") or {}, new_counts)
    manifest["judge"] = whole_judge(parent.manifest, manifest, merged.get("judgments"))
    return merged


def added(a: Any, b: Any) -> Any:
    """Counts of two versions added up (nested dicts key by key; what is not a number is b's).

    >>> added({"kept": 2, "dropped": {"x": 1}}, {"kept": 3, "dropped": {"x": 1, "y": 2}})
    {'kept': 5, 'dropped': {'x': 2, 'y': 2}}
    """
    if isinstance(a, dict) and isinstance(b, dict):
        return {key: added(a.get(key), b.get(key)) for key in dict.fromkeys([*a, *b])}
    if isinstance(a, (int, float)) and isinstance(b, (int, float)) and not isinstance(a, bool):
        return a + b
    return b if b is not None else a


def _weighted(a: float | None, weight_a: int, b: float | None, weight_b: int) -> float | None:
    """
    >>> _weighted(0.5, 1, 1.0, 3), _weighted(None, 4, 0.2, 1)
    (0.875, 0.2)
    """
    parts = [(value, weight) for value, weight in ((a, weight_a), (b, weight_b)) if value is not None and weight]
    total = sum(weight for _, weight in parts)
    return round(sum(value * weight for value, weight in parts) / total, 4) if total else None


def whole_judge(parent_manifest: dict, manifest: dict, judgments: ParentThen | None) -> dict:
    """The judge section for the whole version: the pairwise position bias over every judgment of
    the parent and the run, the length preference and probability mass weighted by rows."""
    judge = dict(manifest["judge"])
    old_judge, old_counts, new_counts = (
        parent_manifest.get("judge") or {},
        parent_manifest.get("counts") or {},
        manifest["incremental"]["new_counts"],
    )
    judge["prefers_longer"] = _weighted(
        old_judge.get("prefers_longer"), old_counts.get("kept", 0), judge.get("prefers_longer"), new_counts["kept"]
    )
    judge["mean_prob_mass"] = _weighted(
        old_judge.get("mean_prob_mass"),
        old_counts.get("judgments", 0),
        judge.get("mean_prob_mass"),
        new_counts["judgments"],
    )
    if judge.get("type", "pairwise") == "pairwise" and judge.get("position_bias") and judgments is not None:
        judge["position_bias"] = pooled_bias(judgments, bool(judge.get("debias", True)))
        judge["scope"] = "whole version (the new rows alone: incremental.new_judge)"
    else:
        judge["scope"] = "new rows only (this judge type's statistics are not pooled)"
    return judge


JUDGMENT_COLUMNS = ("p_a_ab", "p_a_ba", "soft", "consistent", "error")


def pooled_bias(judgments: ParentThen, debias: bool = True) -> dict:
    """The position-bias report over every judgment of the version (parent's and new), as
    `BiasTally.report` gives it for one run; each row's `consistent` is as its own run decided it."""
    ab, ba, p_first = array("d"), array("d"), array("d")
    raw = consistent = 0
    schema = judgments.schema()
    if schema is None or not set(JUDGMENT_COLUMNS) <= set(schema.names):
        return PositionBias(beta=0.0, mean_p_first=None, raw_consistency=None, consistency=None, n=0).as_dict()
    for table in judgments.tables(schema):
        for row in table.select(list(JUDGMENT_COLUMNS)).to_pylist():
            if row["error"] is not None or row["p_a_ab"] is None or row["p_a_ba"] is None:
                continue
            if row["soft"]:
                ab.append(row["p_a_ab"])
                ba.append(row["p_a_ba"])
            p_first.append((row["p_a_ab"] + 1 - row["p_a_ba"]) / 2)
            raw += agree(row["p_a_ab"], row["p_a_ba"])
            consistent += bool(row["consistent"])
    ok = len(p_first)
    return PositionBias(
        beta=estimate_beta(list(ab), list(ba)) if debias else 0.0,
        mean_p_first=sum(p_first) / ok if ok else None,
        raw_consistency=raw / ok if ok else None,
        consistency=consistent / ok if ok else None,
        n=len(ab),
    ).as_dict()


def summary_line(manifest: dict[str, Any]) -> str | None:
    """The summary's line on an incremental version: the new rows and the whole version (None when there is no parent)."""
    inc = manifest.get("incremental")
    if not isinstance(inc, dict):
        return None
    if inc.get("parent") is None:
        return str(inc.get("note"))
    new_bias, bias = (
        (inc.get("new_judge") or {}).get("position_bias") or {},
        (manifest.get("judge") or {}).get("position_bias") or {},
    )
    fmt = lambda x: "n/a" if x is None else f"{x:.2f}"  # noqa: E731
    counts = manifest["counts"]
    line = (
        f"incremental on {inc['parent']}: new {inc['new_prompts']} prompts, {inc['new_pairs']} pairs ({inc['prompts_skipped']} prompts already in the parent skipped); "
        f"whole version {counts['prompts']} prompts, {counts['kept']} pairs"
    )
    if new_bias or bias:
        line += (
            f"; position bias logit shift new {fmt(new_bias.get('beta'))} (n={new_bias.get('n')}), whole {fmt(bias.get('beta'))} (n={bias.get('n')}); "
            f"debiased consistency new {fmt(new_bias.get('consistency'))}, whole {fmt(bias.get('consistency'))}"
        )
    return line
