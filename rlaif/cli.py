"""The `rlaif` command line (typer). Every user error exits with code 2 and a message saying how to fix it."""

from __future__ import annotations

import atexit
import gc
import importlib.util
import json
import os
import sys
from typing import Optional

import typer
from rich.console import Console
from rich.markup import escape
from rich.table import Table

from rlaif.core.errors import RlaifError

# Registered before Prefect is imported, so it runs after every other exit handler (Prefect's flush of
# its logs and events included): the objects left are the OS's to free. The interpreter's last
# garbage collection of Prefect's, pydantic's and pyarrow's objects would add 0.5 s to every command.
atexit.register(gc.freeze)

app = typer.Typer(help="AI-feedback preference datasets: sample, judge (position-debiased), filter, version.", no_args_is_help=True)
datasets_app = typer.Typer(help="Inspect the dataset versions in the store.", no_args_is_help=True)
app.add_typer(datasets_app, name="datasets")
console = Console()
err = Console(stderr=True)

StoreOption = typer.Option(None, "--store", help="Store folder (default: $RLAIF_STORE, then the recipe's `store:`, then data/store).")
RecipeStoreOption = typer.Option(
    None, "--recipe", help="A recipe whose `store:` names the store (used when neither --store nor $RLAIF_STORE is set)."
)


def _store(store: Optional[str], recipe: Optional[str] = None) -> str:
    """The store of a `datasets` command (rlaif.config.settings.store_path: the one resolver of every command)."""
    from rlaif.config.recipe import recipe_file_store

    try:
        return str(recipe_file_store(recipe, store))
    except RlaifError as exc:
        _fail(exc)


def _fail(exc: RlaifError) -> None:
    if exc.exit_code == 0:  # not a failure: e.g. an incremental run with no new prompt (rlaif.pipeline.incremental.NothingNew)
        console.print(str(exc), highlight=False, soft_wrap=True, markup=False)
        raise typer.Exit(0)
    err.print(f"[bold red]error:[/] {escape(str(exc))}", highlight=False, soft_wrap=True)
    raise typer.Exit(exc.exit_code)


@app.command()
def run(
    recipe: str = typer.Argument(..., help="Recipe YAML file, e.g. recipes/demo.yaml."),
    store: Optional[str] = StoreOption,
    limit: Optional[int] = typer.Option(None, "--limit", min=1, help="Use only the first N prompts."),
    chunk_size: Optional[int] = typer.Option(
        None, "--chunk-size", min=1, help="Prompts per chunk: memory is bounded by a chunk; the version does not depend on it (default: $RLAIF_CHUNK_SIZE or 5000)."
    ),
    no_prefect: bool = typer.Option(
        False, "--no-prefect", help="Run in this process without Prefect: the same steps, summary and version id (automatic when Prefect is not installed)."
    ),
    dry_run: bool = typer.Option(
        False, "--dry-run", help="Estimate calls, tokens and cost (from `prices:`) without calling a model or writing anything; the request cache counts as paid."
    ),
    as_json: bool = typer.Option(False, "--json", help="With --dry-run: the estimate as JSON."),
    ray: Optional[str] = typer.Option(None, "--ray", help="Shard the run on a Ray cluster: auto, HOST:6379, ray://HOST:10001, or local (a Ray of its own); recipe `execution:` (docs/scale.md)."),
    shards: Optional[int] = typer.Option(None, "--shards", min=1, help="Shard workers on Ray (implies --ray; default 2); the version does not depend on it."),
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
            from rlaif.pipeline.dry_run import print_dry_run

            return print_dry_run(parsed, where, limit, as_json, console)
        if not no_prefect and importlib.util.find_spec("prefect") is None:
            err.print("note: Prefect is not installed: running in this process (as with --no-prefect)", highlight=False)
            no_prefect = True
        flow = () if no_prefect or not os.environ.get("PREFECT_API_URL") else ("flows.pipeline",)  # without a server, its start overlaps the flow's import
        chunk_size = check_run(parsed, where, limit, chunk_size, preload=("openai", *flow))  # engine ray too: Ray installed, its cluster reachable
        if no_prefect:
            lines = _run_in_process(parsed, where, limit, chunk_size)
        else:
            from flows.server import prefect_api

            with prefect_api():  # the run's own Prefect server, stopped with it even on SIGTERM/SIGKILL (flows/server.py)
                from flows.pipeline import rlaif_run

                result = rlaif_run(recipe_path=recipe, store=str(where), limit=limit, chunk_size=chunk_size, execution=parsed.execution.model_dump(exclude_unset=True))
            lines = result["lines"]
    except RlaifError as exc:
        _fail(exc)
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


@datasets_app.command("list")
def datasets_list(store: Optional[str] = StoreOption, recipe: Optional[str] = RecipeStoreOption) -> None:
    """List dataset versions, oldest first.

    Example: rlaif datasets list --store data/store
    """
    from rlaif.store.versions import list_versions

    table = Table("id", "created", "kept", "in", "calls (live/cached/failed)")
    broken = []
    for manifest in list_versions(_store(store, recipe)):
        if "broken" in manifest:
            broken.append(manifest)
            table.add_row(escape(manifest["id"]), "[red]broken[/]", "", "", "")
            continue
        calls = manifest.get("calls") if isinstance(manifest.get("calls"), dict) else {}
        counts = manifest.get("counts") if isinstance(manifest.get("counts"), dict) else {}
        table.add_row(
            manifest["id"],
            manifest.get("created_at", ""),
            str(counts.get("kept", "")),
            str(counts.get("in", "")),
            f"{calls.get('live', 0)}/{calls.get('cached', 0)}/{calls.get('failed', 0)}",
        )
    console.print(table)
    for manifest in broken:
        err.print(
            f"[bold red]broken:[/] {escape(manifest['id'])}: {escape(manifest['broken'])} - delete the folder and make the version again "
            "(`rlaif run` the recipe, or `rlaif datasets pull` it)",
            highlight=False, soft_wrap=True,
        )


@datasets_app.command("show")
def datasets_show(
    version_id: str = typer.Argument(..., help="Version id (see `rlaif datasets list`)."),
    store: Optional[str] = StoreOption,
    recipe: Optional[str] = RecipeStoreOption,
    rows: int = typer.Option(0, "--rows", min=0, help="Also print the first N preference pairs."),
) -> None:
    """Print a version's manifest (and optionally some rows) as JSON.

    Example: rlaif datasets show demo-0123456789ab --rows 2
    """
    from rlaif.store.versions import load_manifest, read_table

    try:
        manifest = load_manifest(_store(store, recipe), version_id)
        if rows:
            manifest = {**manifest, "rows": read_table(_store(store, recipe), version_id)[:rows]}
    except RlaifError as exc:
        _fail(exc)
    sys.stdout.write(json.dumps(manifest, indent=2, ensure_ascii=False) + "\n")


@datasets_app.command("report")
def datasets_report(
    version_id: str = typer.Argument(..., help="Version id (see `rlaif datasets list`)."),
    out: Optional[str] = typer.Option(None, "--out", help="HTML file to write (default: STORE/reports/<id>.html)."),
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
        path = write_report(_store(store, recipe), version_id, out)
    except RlaifError as exc:
        _fail(exc)
    console.print(f"report: {path}", highlight=False, soft_wrap=True, markup=False)


@datasets_app.command("diff")
def datasets_diff(
    a: str = typer.Argument(..., help="The older version id."),
    b: str = typer.Argument(..., help="The newer version id."),
    as_json: bool = typer.Option(False, "--json", help="Print the whole diff as JSON (every row key)."),
    limit: int = typer.Option(10, "--limit", min=0, help="Row keys listed per kind (added, removed, changed) in the table view."),
    store: Optional[str] = StoreOption,
    recipe: Optional[str] = RecipeStoreOption,
) -> None:
    """Show what changed from version A to version B: preference rows added, removed and changed
    (a pair whose winner flipped, or whose p_chosen / margin moved), counts and drops by reason,
    label statistics, and changed recipe settings.

    Example: rlaif datasets diff demo-0123456789ab demo-ba9876543210 --json
    """
    from rlaif.store.diff import diff_tables, diff_versions

    try:
        result = diff_versions(_store(store, recipe), a, b)
    except RlaifError as exc:
        _fail(exc)
    if as_json:
        sys.stdout.write(json.dumps(result, indent=2, ensure_ascii=False) + "\n")
        return
    for table in diff_tables(result, limit):
        console.print(table)


@datasets_app.command("lineage")
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
        tree = lineage(_store(store, recipe), version_id)
    except RlaifError as exc:
        _fail(exc)
    print_tree(tree, as_json, as_tree)


def print_tree(tree: dict, as_json: bool, as_tree) -> None:
    """A lineage as JSON, or as a rich tree (`as_tree` builds it)."""
    if as_json:
        sys.stdout.write(json.dumps(tree, indent=2, ensure_ascii=False) + "\n")
        return
    console.print(as_tree(tree), highlight=False, soft_wrap=True)


@datasets_app.command("export")
def datasets_export(
    version_id: str = typer.Argument(..., help="Version id (see `rlaif datasets list`)."),
    fmt: str = typer.Option(
        ..., "--format", help="dpo | rm | kto | sft | prompts | listwise (the TRL trainer it is for), openrlhf-pairs (OpenRLHF) or verl-rl (verl)."
    ),
    out: str = typer.Option(..., "--out", help="Folder to write (new, empty, or an earlier rlaif export, which is replaced)."),
    style: str = typer.Option("conversational", "--style", help="conversational (message lists) or standard (plain text)."),
    license: Optional[str] = typer.Option(None, "--license", help="License for the card (default: the recipe's, else 'other')."),
    evaluation: Optional[str] = typer.Option(None, "--eval", help="An `rlaif eval-judge` result (STORE/evals/*.json) to report in the card."),
    store: Optional[str] = StoreOption,
    recipe: Optional[str] = RecipeStoreOption,
) -> None:
    """Export a version as data/train-00000-of-00001.parquet plus a dataset card (README.md),
    loadable with `datasets.load_dataset(OUT)` and ready for the TRL trainer of the format.

    Example: rlaif datasets export demo-0123456789ab --format dpo --out exports/demo-dpo
    """
    import pyarrow.parquet as pq

    from rlaif.publish.export import DATA_FILE, export_version, load_evaluation

    try:
        result = load_evaluation(evaluation) if evaluation else None
        path = export_version(_store(store, recipe), version_id, fmt, out, style=style, license=license, evaluation=result)
    except RlaifError as exc:
        _fail(exc)
    rows = pq.read_metadata(path / DATA_FILE).num_rows
    console.print(f"exported {rows} {fmt} rows ({style}) of {version_id} to {path}", highlight=False, soft_wrap=True, markup=False)


@app.command("eval-judge")
def eval_judge(
    recipes: list[str] = typer.Argument(..., help="Recipe YAML file(s) whose judges are evaluated side by side, e.g. recipes/demo.yaml recipes/listwise.yaml."),
    gold: str = typer.Option(..., "--gold", help="JSON Lines of human-labelled pairs: `prompt` (messages), `chosen`, `rejected`."),
    limit: Optional[int] = typer.Option(None, "--limit", min=1, help="Use only the first N gold rows."),
    seed: int = typer.Option(0, "--seed", help="Seed of the per-row A/B order (which response is shown first)."),
    as_json: bool = typer.Option(False, "--json", help="Print only the JSON result on stdout (a list for several recipes; progress goes to stderr)."),
    store: Optional[str] = StoreOption,
) -> None:
    """Measure judges against human labels: agreement (95% interval), kappa, position consistency,
    length preference and calibration, beside the 'always longer' / 'always shorter' rules. With
    several recipes, a small leaderboard: one column per judge, best agreement first. Calls go
    through the store's request cache; each result is also saved under STORE/evals/.

    Example: rlaif eval-judge recipes/demo.yaml recipes/listwise.yaml --gold ../shared/data/mt-bench-human-sample/pairs.jsonl --limit 50
    """
    from rlaif.config.recipe import load_recipe
    from rlaif.config.settings import store_path
    from rlaif.core.gold import load_gold
    from rlaif.judges.evaluate import evaluate_judge, leaderboard_rows
    from rlaif.pipeline.preflight import check_judge

    try:
        parsed = [load_recipe(path) for path in recipes]  # every recipe and the gold file checked before any model loads
        load_gold(gold, limit)
        for recipe in parsed:
            check_judge(recipe, store_path(recipe, store))
        results = [evaluate_judge(recipe, gold, store_path(recipe, store), limit, seed) for recipe in parsed]
    except RlaifError as exc:
        _fail(exc)
    if as_json:
        sys.stdout.write(json.dumps(results[0] if len(results) == 1 else results, indent=2, ensure_ascii=False) + "\n")
        return
    labels = [f"{path} ({recipe.judge.type}, {recipe.judge.model})" for path, recipe in zip(recipes, parsed)]
    header, rows = leaderboard_rows(results, labels)
    table = Table(*header, title=f"judges on {gold}" + (f" (first {limit} rows)" if limit else ""))
    for row in rows:
        table.add_row(*row)
    console.print(table)
    for label, result in zip(labels, results):
        calls = result["calls"]
        console.print(
            f"{label}: n {result['n']} rows judged, {result['failures']} failed (metrics exclude them); "
            f"calls: live {calls['live']}, cached {calls['cached']}, failed {calls['failed']}; saved: {result['path']}",
            highlight=False, soft_wrap=True, markup=False,
        )


def _register_commands() -> None:
    """Training, trained models, their evaluation and the Hub live in their own modules (rlaif/cli_train.py,
    rlaif/cli_models.py, rlaif/cli_eval.py, rlaif/cli_hub.py, ...), which import this one for its options and helpers."""
    from rlaif import cli_eval, cli_hub, cli_iterate, cli_models, cli_ops, cli_train

    for module in (cli_train, cli_models, cli_eval, cli_ops, cli_iterate):
        module.register(app)
    cli_hub.register(datasets_app)


if __name__ == "__main__":
    # `python -m rlaif.cli`: run the app of the imported module `rlaif.cli`, the one the command modules register on
    from rlaif.cli import app as registered_app

    registered_app()
else:
    _register_commands()
