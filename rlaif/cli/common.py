"""What every `rlaif` command shares: the consoles, the --store/--recipe options, the store a command
works on, and how a user error ends a command (exit code and a message saying how to fix it)."""

from __future__ import annotations

import functools
import json
import sys
from collections.abc import Callable, Iterable
from typing import Any, Optional

import typer
from rich.console import Console
from rich.markup import escape
from rich.table import Table

from rlaif.core.errors import RlaifError

# soft_wrap: a line longer than the terminal (or than 80 columns in a file) is not broken in two
console = Console(soft_wrap=True)
err = Console(stderr=True, soft_wrap=True)

StoreOption = typer.Option(
    None, "--store", help="Store folder (default: $RLAIF_STORE, then the recipe's `store:`, then data/store)."
)
RecipeStoreOption = typer.Option(
    None,
    "--recipe",
    help="A recipe whose `store:` names the store (used when neither --store nor $RLAIF_STORE is set).",
)


def store_of(store: Optional[str], recipe: Optional[str] = None) -> str:
    """The store of a command without a recipe argument (rlaif.config.recipe.recipe_file_store: the one resolver of every command)."""
    from rlaif.config.recipe import recipe_file_store

    try:
        return str(recipe_file_store(recipe, store))
    except RlaifError as exc:
        fail(exc)


def store_reason(store: Optional[str], recipe: Optional[str] = None) -> str:
    """Why the command reads the store it reads: the flag, the variable, the recipe's `store:`, or the default."""
    import os

    from rlaif.config.settings import STORE_ENV

    if store:
        return "--store"
    if os.environ.get(STORE_ENV):
        return f"${STORE_ENV}"
    if recipe:
        from rlaif.config.recipe import load_recipe

        try:
            if load_recipe(recipe).store:
                return f"`store:` in {recipe}"
        except RlaifError as exc:
            fail(exc)
    return "the default; --store, $RLAIF_STORE or --recipe choose another"


def existing_store(store: Optional[str], recipe: Optional[str] = None) -> tuple[str, str]:
    """The store a listing or show command reads and why (`store_reason`); a folder that is not there ends the
    command (exit 2) saying so, instead of reading as an empty store."""
    from pathlib import Path

    from rlaif.core.errors import StoreError

    where, why = store_of(store, recipe), store_reason(store, recipe)
    if not Path(where).exists():
        fail(
            StoreError(
                f"no store at {where} ({why}) - check the path, or make one with `rlaif run RECIPE` (it writes the store)"
            )
        )
    return where, why


def folded_table(header: Iterable[str], title: str) -> Table:
    """A table whose cells a narrow terminal folds onto more lines, never cuts."""
    table = Table(title=title)
    for name in header:
        table.add_column(name, overflow="fold")
    return table


def read_store(store: Optional[str], recipe: Optional[str] = None) -> str:
    """The store a show, lineage or diff command reads (`existing_store`), named with why on stderr, so that the
    JSON on stdout stays clean: "store: data/store (default)"."""
    where, why = existing_store(store, recipe)
    err.print(f"store: {where} ({why})", highlight=False, markup=False, soft_wrap=True)
    return where


def fail(exc: RlaifError) -> None:
    """End the command on a user error: its message on stderr, its exit code (0 when it is not a failure)."""
    if (
        exc.exit_code == 0
    ):  # not a failure: e.g. an incremental run with no new prompt (rlaif.pipeline.incremental.NothingNew)
        console.print(str(exc), highlight=False, soft_wrap=True, markup=False)
        raise typer.Exit(0)
    err.print(f"[bold red]error:[/] {escape(str(exc))}", highlight=False, soft_wrap=True)
    raise typer.Exit(exc.exit_code)


def emit(data: Any, as_json: bool = True, render: Callable[[Any], Iterable[Any]] | None = None) -> None:
    """A command's result: JSON on stdout (`--json`, or when it has no other form), else what `render`
    makes of it (rich tables, trees or text), printed in turn."""
    if as_json or render is None:
        sys.stdout.write(json.dumps(data, indent=2, ensure_ascii=False) + "\n")
        return
    for renderable in render(data):
        console.print(renderable, highlight=False, soft_wrap=True)


def print_tree(tree: dict, as_json: bool, as_tree) -> None:
    """A lineage as JSON, or as a rich tree (`as_tree` builds it)."""
    emit(tree, as_json, lambda data: [as_tree(data)])


def sigterm_stops(command: Callable) -> Callable:
    """The command with SIGTERM ending it as Ctrl-C does (rlaif.core.processes.sigterm_exits): a run stops
    sending, keeps what came back and exits 143, instead of dying where it stands."""

    @functools.wraps(command)
    def stoppable(*args, **kwargs):
        from rlaif.core.processes import sigterm_exits

        with sigterm_exits():
            return command(*args, **kwargs)

    return stoppable


def summary_off_prefect_console() -> None:
    """A flow logs its summary (the UI and a worker's output show it); `rlaif run` and `rlaif train --prefect` print
    it themselves, once, on stdout, so Prefect's console handler leaves that record out."""
    import logging

    from prefect.logging.handlers import PrefectConsoleHandler

    from rlaif.flows.server import SUMMARY_RECORD

    for handler in logging.getLogger().handlers:
        if isinstance(handler, PrefectConsoleHandler):
            handler.addFilter(lambda record: not getattr(record, SUMMARY_RECORD, False))
