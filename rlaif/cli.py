"""The `rlaif` command line (typer). Every user error exits with code 2 and a message saying how to fix it."""

from __future__ import annotations

import json
import os
import sys
from typing import Optional

import typer
from rich.console import Console
from rich.markup import escape
from rich.table import Table

from rlaif.errors import RlaifError

app = typer.Typer(help="AI-feedback preference datasets: sample, judge (position-debiased), filter, version.", no_args_is_help=True)
datasets_app = typer.Typer(help="Inspect the dataset versions in the store.", no_args_is_help=True)
app.add_typer(datasets_app, name="datasets")
console = Console()
err = Console(stderr=True)

StoreOption = typer.Option(None, "--store", help="Store folder (default: $RLAIF_STORE or data/store).")


def _store(store: Optional[str]) -> str:
    return store or os.environ.get("RLAIF_STORE") or "data/store"


def _fail(exc: RlaifError) -> None:
    err.print(f"[bold red]error:[/] {escape(str(exc))}", highlight=False, soft_wrap=True)
    raise typer.Exit(exc.exit_code)


@app.command()
def run(
    recipe: str = typer.Argument(..., help="Recipe YAML file, e.g. recipes/demo.yaml."),
    store: Optional[str] = StoreOption,
    limit: Optional[int] = typer.Option(None, "--limit", min=1, help="Use only the first N prompts."),
) -> None:
    """Run a recipe end to end as a Prefect flow and commit a dataset version.

    Example: rlaif run recipes/demo.yaml --limit 10
    """
    from rlaif.inputs import load_prompts
    from rlaif.pipeline import store_path
    from rlaif.recipe import load_recipe

    try:  # validate everything cheap before starting Prefect, so bad input writes nothing
        parsed = load_recipe(recipe)
        load_prompts(parsed.prompts.path, parsed.prompts.system, limit or parsed.prompts.limit)
        from rlaif.judges.pairwise import load_template

        load_template(parsed.judge.template)
        from flows.pipeline import rlaif_run

        result = rlaif_run(recipe_path=recipe, store=str(store_path(parsed, store)), limit=limit)
    except RlaifError as exc:
        _fail(exc)
    for line in result["lines"]:
        console.print(line, highlight=False, soft_wrap=True, markup=False)


@datasets_app.command("list")
def datasets_list(store: Optional[str] = StoreOption) -> None:
    """List dataset versions, oldest first.

    Example: rlaif datasets list --store data/store
    """
    from rlaif.store.versions import list_versions

    table = Table("id", "created", "kept", "in", "calls (live/cached/failed)")
    for manifest in list_versions(_store(store)):
        calls = manifest.get("calls", {})
        counts = manifest.get("counts", {})
        table.add_row(
            manifest["id"],
            manifest.get("created_at", ""),
            str(counts.get("kept", "")),
            str(counts.get("in", "")),
            f"{calls.get('live', 0)}/{calls.get('cached', 0)}/{calls.get('failed', 0)}",
        )
    console.print(table)


@datasets_app.command("show")
def datasets_show(
    version_id: str = typer.Argument(..., help="Version id (see `rlaif datasets list`)."),
    store: Optional[str] = StoreOption,
    rows: int = typer.Option(0, "--rows", min=0, help="Also print the first N preference pairs."),
) -> None:
    """Print a version's manifest (and optionally some rows) as JSON.

    Example: rlaif datasets show demo-0123456789ab --rows 2
    """
    from rlaif.store.versions import load_manifest, read_table

    try:
        manifest = load_manifest(_store(store), version_id)
        if rows:
            manifest = {**manifest, "rows": read_table(_store(store), version_id)[:rows]}
    except RlaifError as exc:
        _fail(exc)
    sys.stdout.write(json.dumps(manifest, indent=2, ensure_ascii=False) + "\n")


if __name__ == "__main__":
    app()
