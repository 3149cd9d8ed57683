"""`rlaif datasets ...`: inspect, compare, report and export the dataset versions in the store (push and pull: rlaif.cli.hub)."""

from __future__ import annotations

from typing import Any, Optional

import typer
from rich.markup import escape
from rich.table import Table

from rlaif.cli.common import (
    RecipeStoreOption,
    StoreOption,
    console,
    emit,
    err,
    existing_store,
    fail,
    print_tree,
    read_store,
    store_of,
)
from rlaif.core.errors import RlaifError

app = typer.Typer(help="Inspect the dataset versions in the store.", no_args_is_help=True)


@app.command("list")
def datasets_list(
    store: Optional[str] = StoreOption,
    recipe: Optional[str] = RecipeStoreOption,
    as_json: bool = typer.Option(False, "--json", help="Print the versions as JSON: id, created, counts, calls."),
) -> None:
    """List dataset versions, oldest first, after the store read and why.

    Example: rlaif datasets list --store data/store
    """
    from rlaif.store.versions import list_versions

    where, why = existing_store(store, recipe)
    try:
        manifests = list_versions(where)
    except RlaifError as exc:  # a file where the store should be
        fail(exc)
    rows = [_version_row(manifest) for manifest in manifests]
    emit({"store": where, "versions": rows}, as_json, lambda data: [f"store: {where} ({why})", _versions_table(rows)])
    for row in rows:
        if "broken" in row:
            err.print(
                f"[bold red]broken:[/] {escape(row['id'])}: {escape(row['broken'])} - delete the folder and make the version again "
                "(`rlaif run` the recipe, or `rlaif datasets pull` it)",
                highlight=False,
                soft_wrap=True,
            )


def _version_row(manifest: dict[str, Any]) -> dict[str, Any]:
    if "broken" in manifest:
        return {"id": manifest["id"], "broken": manifest["broken"]}
    calls = manifest.get("calls") if isinstance(manifest.get("calls"), dict) else {}
    counts = manifest.get("counts") if isinstance(manifest.get("counts"), dict) else {}
    return {
        "id": manifest["id"],
        "created_at": manifest.get("created_at", ""),
        "kept": counts.get("kept"),
        "candidate_pairs": counts.get("in"),
        "prompts": counts.get("prompts"),
        "calls": {key: calls.get(key, 0) for key in ("live", "cached", "failed")},
    }


def _versions_table(rows: list[dict[str, Any]]) -> Table:
    """Ids are never cut (every other command takes them): their column is as wide as the longest."""
    table = Table(title=None)
    table.add_column("id", no_wrap=True, min_width=max((len(row["id"]) for row in rows), default=2))
    for name in ("created (UTC)", "prompts", "candidate pairs", "kept", "calls live/cached/failed"):
        table.add_column(name, overflow="fold")  # a narrow terminal folds a cell onto more lines, never cuts it
    shown = lambda value: "" if value is None else str(value)  # noqa: E731
    for row in rows:
        if "broken" in row:
            table.add_row(escape(row["id"]), "[red]broken[/]", "", "", "", "")
            continue
        calls = row["calls"]
        table.add_row(
            escape(row["id"]),
            str(row["created_at"])[:16].replace("T", " "),
            shown(row["prompts"]),
            shown(row["candidate_pairs"]),
            shown(row["kept"]),
            f"{calls['live']}/{calls['cached']}/{calls['failed']}",
        )
    return table


@app.command("show")
def datasets_show(
    version_id: str = typer.Argument(..., help="Version id (see `rlaif datasets list`)."),
    store: Optional[str] = StoreOption,
    recipe: Optional[str] = RecipeStoreOption,
    rows: int = typer.Option(0, "--rows", min=0, help="Also print the first N preference pairs."),
    as_json: bool = typer.Option(
        True, "--json", help="Print as JSON (the only form of show; accepted like every show's)."
    ),
) -> None:
    """Print a version's manifest (and optionally some rows) as JSON; the store read is named on stderr.

    Example: rlaif datasets show demo-0123456789ab --rows 2
    """
    from rlaif.store.versions import load_manifest, read_table

    where = read_store(store, recipe)
    try:
        manifest = load_manifest(where, version_id)
        if rows:
            manifest = {**manifest, "rows": read_table(where, version_id)[:rows]}
    except RlaifError as exc:
        fail(exc)
    emit(manifest)


@app.command("report")
def datasets_report(
    version_id: str = typer.Argument(..., help="Version id (see `rlaif datasets list`)."),
    out: Optional[str] = typer.Option(None, "--out", help="HTML file to write (default: STORE/reports/<id>.html)."),
    force: bool = typer.Option(False, "--force", help="Replace the --out file if it exists."),
    store: Optional[str] = StoreOption,
    recipe: Optional[str] = RecipeStoreOption,
) -> None:
    """Write a self-contained HTML report of a version: counts, calls, models, templates and plots
    (chosen vs rejected length, margin and soft-label histograms, position consistency, drop
    reasons, per-policy win rates). It loads nothing from the network.

    Example: rlaif datasets report demo-0123456789ab --out demo-report.html
    """
    from rlaif.publish.report import write_report

    try:
        path = write_report(store_of(store, recipe), version_id, out, force)
    except RlaifError as exc:
        fail(exc)
    console.print(f"report: {path}", highlight=False, soft_wrap=True, markup=False)


@app.command("diff")
def datasets_diff(
    a: str = typer.Argument(..., help="The older version id."),
    b: str = typer.Argument(..., help="The newer version id."),
    as_json: bool = typer.Option(False, "--json", help="Print the whole diff as JSON (every row key)."),
    limit: int = typer.Option(
        10, "--limit", min=0, help="Row keys listed per kind (added, removed, changed) in the table view."
    ),
    store: Optional[str] = StoreOption,
    recipe: Optional[str] = RecipeStoreOption,
) -> None:
    """Show what changed from version A to version B: preference rows added, removed and changed
    (a pair whose winner flipped, or whose p_chosen / margin moved), counts and drops by reason,
    label statistics, and changed recipe settings.

    Example: rlaif datasets diff demo-0123456789ab demo-ba9876543210 --json
    """
    from rlaif.store.diff import diff_versions

    try:
        result = diff_versions(read_store(store, recipe), a, b)
    except RlaifError as exc:
        fail(exc)
    emit(result, as_json, lambda data: diff_tables(data, limit))


@app.command("lineage")
def datasets_lineage(
    version_id: str = typer.Argument(..., help="Version id (see `rlaif datasets list`)."),
    as_json: bool = typer.Option(False, "--json", help="Print the lineage tree as JSON."),
    store: Optional[str] = StoreOption,
    recipe: Optional[str] = RecipeStoreOption,
) -> None:
    """Show where a version came from: its parents (recursively; a parent missing from the store
    is reported), and for each version the recipe (name, sha256), the prompt file (path, sha256,
    rows), the models and the judge templates with their sha256.

    Example: rlaif datasets lineage demo-0123456789ab --json
    """
    from rlaif.store.lineage import as_tree, lineage

    try:
        tree = lineage(read_store(store, recipe), version_id)
    except RlaifError as exc:
        fail(exc)
    print_tree(tree, as_json, as_tree)


@app.command("export")
def datasets_export(
    version_id: str = typer.Argument(..., help="Version id (see `rlaif datasets list`)."),
    fmt: str = typer.Option(
        ...,
        "--format",
        help="dpo | rm | kto | sft | prompts | listwise (the TRL trainer it is for), openrlhf-pairs (OpenRLHF) or verl-rl (verl).",
    ),
    out: str = typer.Option(
        ..., "--out", help="Folder to write (new, empty, or an earlier rlaif export, which is replaced)."
    ),
    style: str = typer.Option(
        "conversational", "--style", help="conversational (message lists) or standard (plain text)."
    ),
    license: Optional[str] = typer.Option(
        None, "--license", help="License for the card (default: the recipe's, else 'other')."
    ),
    evaluation: Optional[str] = typer.Option(
        None, "--eval", help="An `rlaif eval-judge` result (STORE/evals/*.json) to report in the card."
    ),
    store: Optional[str] = StoreOption,
    recipe: Optional[str] = RecipeStoreOption,
) -> None:
    """Export a version as data/train-00000-of-00001.parquet plus a dataset card (README.md),
    loadable with `datasets.load_dataset(OUT)` and ready for the TRL trainer of the format.

    Example:

        rlaif datasets export demo-0123456789ab --format dpo --out exports/demo-dpo
    """
    import pyarrow.parquet as pq

    from rlaif.publish.export import DATA_FILE, export_version, load_evaluation

    try:
        result = load_evaluation(evaluation) if evaluation else None
        path = export_version(
            store_of(store, recipe), version_id, fmt, out, style=style, license=license, evaluation=result
        )
    except RlaifError as exc:
        fail(exc)
    rows = pq.read_metadata(path / DATA_FILE).num_rows
    console.print(
        f"exported {rows} {fmt} rows ({style}) of {version_id} to {path}",
        highlight=False,
        soft_wrap=True,
        markup=False,
    )


def diff_tables(result: dict[str, Any], limit: int = 10) -> list:
    """The diff as rich renderables for the terminal: a header, then tables of rows, counts and stats, the review blocks,
    changed settings, example keys."""
    from rlaif.publish.review_figures import review_rows

    rows = result["rows"]
    summary = Table("rows", "count", title="preference rows")
    for name in ("added", "removed", "changed"):
        summary.add_row(name, str(len(rows[name])))
    summary.add_row("unchanged", str(rows["unchanged"]))
    numbers = Table("count / stat", "a", "b", "delta", title="counts and stats")
    shown = lambda x: "-" if x is None else f"{x:g}" if isinstance(x, (int, float)) else str(x)  # noqa: E731
    for name, value in [*result["counts"].items(), *result["stats"].items()]:
        if value["a"] != value["b"] or "." not in name:
            numbers.add_row(
                name, shown(value["a"]), shown(value["b"]), "-" if value["delta"] is None else f"{value['delta']:+g}"
            )
    header = f"[bold]{escape(result['a'])}[/] -> [bold]{escape(result['b'])}[/]"
    reviewed = (result.get("review") or {}).get("b")
    if result["a"] in result["parents"]["b"] and reviewed:
        header += f" ({escape(result['b'])} is the human review of {escape(result['a'])}: rows flipped, dropped or rescued by people)"
    elif result["a"] in result["parents"]["b"]:
        header += f" ({escape(result['b'])} builds on {escape(result['a'])}: the rows added are the new prompts' rows)"
    tables = [header, summary, numbers]
    for side in ("a", "b"):
        figures = review_rows({"review": (result.get("review") or {}).get(side), "parents": result["parents"][side]})
        if figures:
            review_table = Table("human review", "value", title=f"review block of {escape(result[side])}")
            for label, value in figures:
                review_table.add_row(escape(str(label)), escape(str(value)))
            tables.append(review_table)
    by_table = result.get("tables") or {}
    if by_table:
        counts = Table("table", "a", "b", "added", "removed", title="rows by table")
        for name, value in by_table.items():
            counts.add_row(
                name, str(value["a"]), str(value["b"]), str(len(value["added"])), str(len(value["removed"]))
            )
        tables.append(counts)
    settings = {
        **{f"recipe.{k}": v for k, v in result["recipe"].items()},
        **{f"template {k}": v for k, v in result["prompt_templates"].items()},
    }
    if settings:
        changed = Table("setting", "a", "b", title="changed settings")
        for key, (old, new) in settings.items():
            changed.add_row(key, str(old), str(new))
        tables.append(changed)
    examples = [(name, key) for name in ("added", "removed") for key in rows[name][:limit]]
    examples += [
        (f"prompt {name}", key)
        for name in ("added", "removed")
        for key in (by_table.get("prompts") or {}).get(name, [])[:limit]
    ]
    examples += [("changed", f"{c['key']} ({', '.join(c['fields'])})") for c in rows["changed"][:limit]]
    if examples:
        listing = Table(
            "", "row (prompt | response | response)", title=f"rows (first {limit} of each kind; --json for all)"
        )
        for name, key in examples:
            listing.add_row(name, key)
        tables.append(listing)
    return tables
