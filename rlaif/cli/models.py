"""`rlaif models list | show ID | lineage ID`: the trained models in the store (rlaif.store.models)."""

from __future__ import annotations

import json
from typing import Any, Optional

import typer
from rich.table import Table

from rlaif.cli.common import (
    RecipeStoreOption,
    StoreOption,
    console,
    emit,
    existing_store,
    fail,
    print_tree,
    read_store,
    store_of,
)
from rlaif.core.errors import RlaifError
from rlaif.core.figures import figure

app = typer.Typer(help="Inspect the trained models in the store (STORE/models).", no_args_is_help=True)


@app.command("list")
def models_list(
    store: Optional[str] = StoreOption,
    recipe: Optional[str] = RecipeStoreOption,
    as_json: bool = typer.Option(False, "--json", help="Print the models as JSON: each one's manifest."),
) -> None:
    """List the trained models in the store, oldest first: id, algorithm, base model, dataset version,
    steps, final loss, weights (full model or LoRA adapter) and when it was made, after the store read and why.

    Example: rlaif models list --store data/store
    """
    from rlaif.store.models import list_models

    where, why = existing_store(store, recipe)
    try:
        models = list_models(where)
    except RlaifError as exc:
        fail(exc)
    if not models and not as_json:
        console.print(
            f"no trained models in {where} ({why}) - train one with `rlaif train dpo --dataset ID --model smollm2-135m`",
            highlight=False,
            markup=False,
            soft_wrap=True,
        )
        return
    emit({"store": where, "models": models}, as_json, lambda data: [f"store: {where} ({why})", _models_table(models)])


def _models_table(models: list[dict[str, Any]]) -> Table:
    """Ids (the model's and its dataset's) are never cut: every other command takes them. The base model, weights
    and creation time are in `rlaif models show ID` and --json, so the table fits 80 columns."""
    table = Table()
    table.add_column("id", no_wrap=True, min_width=max((len(m["id"]) for m in models), default=2))
    table.add_column("algorithm", overflow="fold")
    table.add_column(
        "dataset",
        no_wrap=True,
        min_width=max((len(str((m.get("dataset") or {}).get("id"))) for m in models), default=7),
    )
    for name in ("steps", "loss"):
        table.add_column(name, overflow="fold")
    for m in models:
        if "broken" in m:
            table.add_row(m["id"], "[red]damaged[/]", m["broken"], "", "")
            continue
        table.add_row(
            m["id"],
            str(m.get("algorithm")),
            str((m.get("dataset") or {}).get("id")),
            figure(m.get("steps")),
            figure((m.get("metrics") or {}).get("loss")),
        )
    return table


def summary_rows(manifest: dict[str, Any]) -> list[tuple[str, str]]:
    """The manifest's key facts as (field, value) rows for `rlaif models show`."""
    dataset = manifest.get("dataset") or {}
    evaluation = dataset.get("eval") if isinstance(dataset.get("eval"), dict) else {}
    rows = [
        ("id", manifest.get("id")),
        ("algorithm", manifest.get("algorithm")),
        ("base model", manifest.get("base_model")),
        ("weights", f"{manifest.get('weights')}" + (" (LoRA)" if manifest.get("lora") else "")),
        ("dataset version", dataset.get("id")),
        ("created", manifest.get("created_at")),
        ("steps", manifest.get("steps")),
        ("seconds", manifest.get("seconds")),
        ("judge agreement with humans", evaluation.get("agreement")),
        ("'pick the longer' baseline", evaluation.get("baseline_longer")),
        (
            "judge order consistency",
            evaluation.get("position_consistency_debiased", evaluation.get("position_consistency")),
        ),
    ]
    rows += [(f"metric {k}", v) for k, v in (manifest.get("metrics") or {}).items()]
    rows += [
        (f"setting {k}", json.dumps(v) if isinstance(v, (dict, list)) else v)
        for k, v in (manifest.get("settings") or {}).items()
    ]
    rows += [(f"hardware {k}", v) for k, v in (manifest.get("hardware") or {}).items()]
    return [(k, figure(v)) for k, v in rows]


@app.command("show")
def models_show(
    model_id: str = typer.Argument(..., help="Model id (see `rlaif models list`)."),
    as_json: bool = typer.Option(False, "--json", help="Print the whole manifest as JSON."),
    store: Optional[str] = StoreOption,
    recipe: Optional[str] = RecipeStoreOption,
) -> None:
    """Show a trained model's manifest: algorithm, base model, dataset version and its judge-quality
    figures, final metrics, settings, hardware and time (`--json`: the whole manifest).

    Example: rlaif models show demo-dpo-0123456789ab --json
    """
    from rlaif.store.models import load_model_manifest, model_path

    where = read_store(store, recipe)
    try:
        manifest = load_model_manifest(where, model_id)
    except RlaifError as exc:
        fail(exc)
    emit(manifest, as_json, lambda data: [_summary_table(data, str(model_path(where, model_id)))])


def _summary_table(manifest: dict[str, Any], title: str) -> Table:
    table = Table("field", "value", title=title)
    for key, value in summary_rows(manifest):
        table.add_row(key, value)
    return table


@app.command("lineage")
def models_lineage(
    model_id: str = typer.Argument(..., help="Model id (see `rlaif models list`)."),
    as_json: bool = typer.Option(False, "--json", help="Print the lineage tree as JSON."),
    store: Optional[str] = StoreOption,
    recipe: Optional[str] = RecipeStoreOption,
) -> None:
    """Show where a model came from: the dataset version it was trained on and that version's
    lineage (its parents, prompt file, policies, judge and templates), and a base model of the store.

    Example: rlaif models lineage demo-dpo-0123456789ab
    """
    from rlaif.store.lineage import as_tree, model_lineage

    try:
        tree = model_lineage(read_store(store, recipe), model_id)
    except RlaifError as exc:
        fail(exc)
    print_tree(tree, as_json, as_tree)


@app.command("report")
def models_report(
    model_id: str = typer.Argument(..., help="Model id (see `rlaif models list`)."),
    out: Optional[str] = typer.Option(
        None, "--out", help="Write the report here instead of STORE/models/<id>/report.html."
    ),
    store: Optional[str] = StoreOption,
    recipe: Optional[str] = RecipeStoreOption,
) -> None:
    """Write a model's HTML training report: a plot of each logged metric against the step, and the
    base model, dataset version and its judge quality, settings, final metrics, hardware and time.

    Example: rlaif models report demo-dpo-0123456789ab --out dpo.html
    """
    from rlaif.training.report import write_training_report

    try:
        path = write_training_report(store_of(store, recipe), model_id, out)
    except RlaifError as exc:
        fail(exc)
    console.print(str(path), highlight=False, markup=False, soft_wrap=True)
