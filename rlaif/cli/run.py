"""`rlaif run`: validate everything, then run a recipe end to end (as a Prefect flow, or in this process) and commit a version."""

from __future__ import annotations

import importlib.util
import os
from pathlib import Path
from typing import Optional

import typer
from rich.markup import escape

from rlaif.cli.common import StoreOption, console, emit, err, fail, folded_table, summary_off_prefect_console
from rlaif.core.errors import RlaifError


def run(
    recipe: str = typer.Argument(..., help="Recipe YAML file, e.g. recipes/demo.yaml."),
    store: Optional[str] = StoreOption,
    limit: Optional[int] = typer.Option(None, "--limit", min=1, help="Use only the first N prompts."),
    chunk_size: Optional[int] = typer.Option(
        None,
        "--chunk-size",
        min=1,
        help="Prompts per chunk: memory is bounded by a chunk; the version does not depend on it (default: $RLAIF_CHUNK_SIZE or 5000).",
    ),
    no_prefect: bool = typer.Option(
        False,
        "--no-prefect",
        help="Run in this process without Prefect: the same steps, summary and version id (automatic when Prefect is not installed).",
    ),
    dry_run: bool = typer.Option(
        False,
        "--dry-run",
        help="Estimate calls, tokens and cost (from `prices:`) without calling a model or writing anything; the request cache counts as paid.",
    ),
    as_json: bool = typer.Option(False, "--json", help="With --dry-run: the estimate as JSON."),
    ray: Optional[str] = typer.Option(
        None,
        "--ray",
        help="Shard the run on a Ray cluster: auto, HOST:6379, ray://HOST:10001, or local (a Ray of its own); recipe `execution:` (docs/scale.md).",
    ),
    shards: Optional[int] = typer.Option(
        None,
        "--shards",
        min=1,
        help="Shard workers on Ray (implies --ray; default 2); the version does not depend on it.",
    ),
) -> None:
    """Run a recipe end to end as a Prefect flow and commit a dataset version.

    Everything is checked first (recipe, prompt file, templates, models, API keys, each endpoint
    with one cheap request, the store path): a problem exits 2 and writes nothing.

    Example: rlaif run recipes/demo.yaml --limit 10
    """
    from rlaif.config.recipe import load_recipe
    from rlaif.config.settings import store_path
    from rlaif.pipeline.execution import with_execution
    from rlaif.pipeline.preflight import check_run

    try:  # validate everything before starting Prefect, so bad input writes nothing
        parsed = with_execution(load_recipe(recipe), ray, shards)  # --ray / --shards: rlaif/pipeline/execution.py
        where = store_path(parsed, store)
        if dry_run:  # no model call, nothing written (rlaif/pipeline/dry_run.py)
            return print_dry_run(parsed, where, limit, as_json)
        if not no_prefect and importlib.util.find_spec("prefect") is None:
            err.print(
                "note: Prefect is not installed: running in this process (as with --no-prefect)", highlight=False
            )
            no_prefect = True
        own_server = not os.environ.get("PREFECT_API_URL") and os.environ.get("RLAIF_PREFECT_SERVER") == "run"
        flow = (
            () if no_prefect or own_server else ("rlaif.flows.pipeline",)
        )  # imported while the endpoints answer their probe; a server of the run's own starts during that import instead
        chunk_size = check_run(
            parsed, where, limit, chunk_size, preload=("openai", *flow), source=recipe
        )  # engine ray too: Ray installed, its cluster reachable
        if no_prefect:
            lines = _run_in_process(parsed, where, limit, chunk_size)
        else:
            from rlaif.flows.server import prefect_api

            with prefect_api():  # PREFECT_API_URL, else the local server that runs share (flows/shared_server.py)
                from rlaif.flows.pipeline import rlaif_run

                summary_off_prefect_console()
                result = rlaif_run(
                    recipe_path=recipe,
                    store=str(where),
                    limit=limit,
                    chunk_size=chunk_size,
                    execution=parsed.execution.model_dump(exclude_unset=True),
                )
            lines = result["lines"]
    except RlaifError as exc:
        fail(exc)
    for line in lines:
        console.print(line, highlight=False, soft_wrap=True, markup=False)


def _run_in_process(parsed, store, limit: Optional[int], chunk_size: int) -> list[str]:
    """The run driver (`rlaif.pipeline.runner.drive`, through `run_recipe`) in this process, without Prefect; its summary, as the flow gives it."""
    from rlaif.pipeline.runner import run_recipe
    from rlaif.pipeline.summary import summary_lines
    from rlaif.publish.report import write_report

    version_id, created, manifest, state = run_recipe(parsed, store, limit, chunk_size)
    lines = summary_lines(version_id, created, manifest, state.stats)
    try:  # the version is committed: a report that cannot be written is a note, not a failure
        lines.insert(-1, f"report: {write_report(state.store, version_id)}")
    except (RlaifError, OSError) as exc:
        err.print(f"note: no report for {version_id}: {exc}", highlight=False, markup=False)
    return lines


def print_dry_run(recipe, store, limit: int | None, as_json: bool) -> None:
    """`rlaif run --dry-run`: the checks that cost nothing (prompt file, templates, backends installed, local models
    present, API keys set, the store path; no endpoint is probed), then the estimate as a table or JSON."""
    from rlaif.core.inputs import validate_prompts
    from rlaif.judges.stage import validate_judge
    from rlaif.pipeline.dry_run import dry_run, estimate_lines
    from rlaif.pipeline.preflight import check_models, check_store, model_specs
    from rlaif.store.prompt_sources import resolve_prompts

    most = limit or recipe.prompts.limit
    validate_prompts(resolve_prompts(recipe.prompts, store, most).file, recipe.prompts.system, most)
    validate_judge(recipe.judge)
    check_models(model_specs(recipe), store)  # the endpoints it returns are not asked anything
    check_store(Path(store))
    estimate = dry_run(recipe, store, limit)
    if as_json:
        return emit(estimate)
    header, rows, notes = estimate_lines(estimate)
    table = folded_table(header, f"dry run of {recipe.name}: nothing was called or written")
    for row in rows:
        table.add_row(*(escape(cell) for cell in row))
    console.print(table)
    for note in notes:
        console.print(f"note: {note}", highlight=False, soft_wrap=True, markup=False)
