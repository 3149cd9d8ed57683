"""A self-contained HTML report of one trained model: a plot of each logged metric against the step
(from the model folder's `metrics.jsonl`) and the manifest's summary (base model, dataset version and
its judge-quality figures, algorithm, settings, final metrics, hardware, time, lineage).

The page is the Jinja template `rlaif/publish/templates/train_report.html.j2`, autoescaped, loading nothing
from the network. The driver writes it into the model folder right after the commit (`write_training_report(store,
model_id)`: the folder is keyed by the training settings, not by its content, so adding the report
changes no id); `rlaif models report ID [--out FILE]` writes it again, into the model folder or FILE.
"""

from __future__ import annotations

import json
import math
from html import escape
from pathlib import Path
from typing import Any

from markupsafe import Markup

from rlaif.core.errors import StoreError
from rlaif.core.figures import figure
from rlaif.core.gold import gold_label
from rlaif.publish import plots
from rlaif.publish.report import GOLD_FIGURES, report_template
from rlaif.store.atomic import write_atomic

REPORT_FILE = "report.html"
METRICS_FILE = "metrics.jsonl"
# the figures the issue names first, then any other logged number in name order
MAIN_METRICS = ("loss", "reward_accuracy", "kl", "mean_reward")
COLORS = {"loss": "blue", "reward_accuracy": "green", "kl": "orange", "mean_reward": "red"}
NOT_PLOTTED = {"step", "epoch"}


def read_metrics(folder: str | Path) -> tuple[list[dict[str, Any]], list[str]]:
    """The logged steps of `folder/metrics.jsonl` (objects with a numeric `step`) and a warning per line
    that is not one; ([], []) when there is no file (a model that logged nothing)."""
    path = Path(folder) / METRICS_FILE
    if not path.is_file():
        return [], []
    rows, warnings = [], []
    for number, line in enumerate(path.read_text(encoding="utf-8", errors="replace").splitlines(), 1):
        if not line.strip():
            continue
        try:
            row = json.loads(line)
        except json.JSONDecodeError as exc:
            warnings.append(f"{path}:{number}: not JSON ({exc.msg}) - line skipped")
            continue
        if not isinstance(row, dict) or not _number(row.get("step")):
            warnings.append(f"{path}:{number}: no numeric `step` - line skipped")
            continue
        rows.append(row)
    return rows, warnings


def _number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)


def metric_series(rows: list[dict[str, Any]]) -> dict[str, list[tuple[float, float]]]:
    """Each logged metric as (step, value) points, the main ones first.

    >>> metric_series([{"step": 1, "loss": 0.7, "zeta": 1}, {"step": 2, "loss": 0.6, "kl": 0.01, "note": "x"}])
    {'loss': [(1, 0.7), (2, 0.6)], 'kl': [(2, 0.01)], 'zeta': [(1, 1)]}
    """
    series: dict[str, list[tuple[float, float]]] = {}
    for row in rows:
        for key, value in row.items():
            if key not in NOT_PLOTTED and _number(value):
                series.setdefault(key, []).append((row["step"], value))
    order = [name for name in MAIN_METRICS if name in series] + sorted(set(series) - set(MAIN_METRICS))
    return {name: series[name] for name in order}


def metric_plots(rows: list[dict[str, Any]]) -> list[str]:
    """One line plot per logged metric (SVG strings); a "nothing logged" frame when there is none."""
    series = metric_series(rows)
    if not series:
        return [plots.no_data("Training metrics", "no data: no step was logged (metrics.jsonl)")]
    return [
        plots.line(points, name.replace("_", " "), "step", name, color=COLORS.get(name, "grey"))
        for name, points in series.items()
    ]


def flat(mapping: dict[str, Any] | None, prefix: str = "") -> list[tuple[str, Any]]:
    """Nested settings as (dotted key, value) rows.

    >>> flat({"lr": 1e-05, "options": {"beta": 0.1, "loss_type": ["sigmoid"]}, "reward": None})
    [('lr', 1e-05), ('options.beta', 0.1), ('options.loss_type', 'sigmoid'), ('reward', None)]
    """
    rows: list[tuple[str, Any]] = []
    for key, value in (mapping or {}).items():
        if isinstance(value, dict) and value:
            rows += flat(value, f"{prefix}{key}.")
        else:
            rows.append((f"{prefix}{key}", ", ".join(map(str, value)) if isinstance(value, (list, tuple)) else value))
    return rows


def _seconds(value: Any) -> str | None:
    """
    >>> _seconds(12.345), _seconds(4000), _seconds(None)
    ('12.3 s', '4000.0 s (66.7 min)', None)
    """
    if not _number(value):
        return None
    return f"{value:.1f} s" + (f" ({value / 60:.1f} min)" if value >= 600 else "")


def model_rows(manifest: dict[str, Any]) -> list[tuple[str, Any]]:
    return [
        ("id", manifest.get("id")),
        ("name", manifest.get("name")),
        ("algorithm", manifest.get("algorithm")),
        ("base model", manifest.get("base_model")),
        ("base model path", manifest.get("base_model_path")),
        ("weights", manifest.get("weights")),
        ("LoRA", manifest.get("lora")),
        ("steps", manifest.get("steps")),
        ("training time", _seconds(manifest.get("seconds"))),
        ("created", manifest.get("created_at")),
        ("parents", ", ".join(manifest.get("parents") or []) or "none"),
        ("package version", manifest.get("package_version")),
    ]


def dataset_rows(dataset: dict[str, Any] | None) -> list[tuple[str, Any]]:
    """The dataset version trained on, its counts and the judge's figures on human-labelled gold pairs."""
    dataset = dataset or {}
    rows = [("version", dataset.get("id")), ("name", dataset.get("name"))]
    counts = dataset.get("counts") or {}
    rows += [(f"count {key}", value) for key, value in counts.items() if not isinstance(value, dict)]
    quality = dataset.get("eval")
    if not isinstance(quality, dict):
        return rows + [("judge quality", "not measured (the recipe's judge had no `gold:` pairs)")]
    rows += [("judge WARNING", warning) for warning in quality.get("warnings") or []]
    rows += [(f"judge {key}", quality.get(key)) for key in GOLD_FIGURES if key in quality]
    return rows + [("judge gold set", gold_label(quality.get("gold") or {}))]


def summary_tables(manifest: dict[str, Any]) -> list[tuple[str, list[tuple[str, Any]]]]:
    """(title, rows) of each summary table of the report."""
    tables = [
        ("Model", model_rows(manifest)),
        ("Dataset version and judge quality", dataset_rows(manifest.get("dataset"))),
        ("Final metrics", flat(manifest.get("metrics")) or [("metrics", "none recorded")]),
        ("Settings", flat(manifest.get("settings")) or [("settings", "none recorded")]),
        ("Hardware", flat(manifest.get("hardware")) or [("hardware", "not recorded")]),
    ]
    if manifest.get("reward"):
        tables.append(("Reward", flat(manifest["reward"])))
    return tables


def render_training_report(manifest: dict[str, Any], rows: list[dict[str, Any]], warnings: list[str] = ()) -> str:
    """The whole HTML page for a model's manifest and its logged steps."""
    return report_template("train_report.html.j2").render(
        model_id=manifest.get("id"),
        algorithm=manifest.get("algorithm"),
        dataset_id=(manifest.get("dataset") or {}).get("id"),
        base_model=manifest.get("base_model"),
        created_at=manifest.get("created_at"),
        warnings=list(warnings),
        logged_steps=len(rows),
        plots=[Markup(svg) for svg in metric_plots(rows)],  # rlaif.publish.plots escapes their text
        summary=summary_tables(manifest),
    )


def write_folder_report(
    folder: str | Path, manifest: dict[str, Any] | None = None, out: str | Path | None = None
) -> Path:
    """Render the report of the model in `folder` (its metrics.jsonl; `manifest`, else folder/manifest.json)
    and write it atomically to `out` (default folder/report.html)."""
    folder = Path(folder)
    if manifest is None:
        manifest = _manifest_file(folder)
    path = Path(out) if out else folder / REPORT_FILE
    if path.is_dir():
        raise StoreError(
            f"{path} is a folder - give a file name for the report, e.g. {path / (str(manifest.get('id')) + '.html')}"
        )
    rows, warnings = read_metrics(folder)
    try:
        write_atomic(path, render_training_report(manifest, rows, warnings))
    except OSError as exc:
        raise StoreError(
            f"could not write the training report to {path}: {exc} - check that the folder is writable or pass --out"
        ) from None
    return path


def _manifest_file(folder: Path) -> dict[str, Any]:
    path = folder / "manifest.json"
    try:
        manifest = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, json.JSONDecodeError) as exc:
        raise StoreError(
            f"{path}: cannot read the model manifest ({exc}) - is {folder} a model folder of the store?"
        ) from None
    if not isinstance(manifest, dict):
        raise StoreError(f"{path}: the model manifest is not a JSON object")
    return manifest


def write_training_report(store: str | Path, model_id: str, out: str | Path | None = None) -> Path:
    """Write the report of the store's model `model_id` to `out` (default STORE/models/<id>/report.html);
    StoreError naming the id and the known models when there is no such model."""
    from rlaif.store.models import load_model_manifest, model_path

    return write_folder_report(model_path(store, model_id), load_model_manifest(store, model_id), out=out)


def _md(value: Any) -> str:
    return escape(figure(value)).replace("|", "\\|")


def training_markdown(manifest: dict[str, Any], report: Path | None = None, steps: list[dict[str, Any]] = ()) -> str:
    """Key figures of a trained model and a plot per logged metric (`steps`: metrics.jsonl) as Markdown, for the
    Prefect summary artifact (the UI shows the plots; a `file://` link to the HTML report would not open there)."""
    dataset = manifest.get("dataset") or {}
    rows = [
        ("model", manifest.get("id")),
        ("algorithm", manifest.get("algorithm")),
        ("base model", manifest.get("base_model")),
        ("dataset version", dataset.get("id")),
        ("weights", manifest.get("weights")),
        ("steps", manifest.get("steps")),
        ("training time", _seconds(manifest.get("seconds"))),
    ]
    quality = dataset.get("eval") if isinstance(dataset.get("eval"), dict) else {}
    rows += [
        (f"judge {key}", quality[key]) for key in ("agreement", "kappa", "position_consistency") if key in quality
    ]
    rows += [(f"final {key}", value) for key, value in flat(manifest.get("metrics"))]
    table = "\n".join(f"| {_md(key)} | {_md(value)} |" for key, value in rows)
    images = "\n\n".join(plots.markdown_image(svg) for svg in metric_plots(steps)) if steps else ""
    tail = f"\n\n### Plots\n\n{images}" if images else ""
    if report:
        tail += f"\n\nHTML report with plots: `{_md(report)}` on the machine that ran this flow"
    return f"## Trained model: {_md(manifest.get('id'))}\n\n| figure | value |\n|---|---|\n{table}{tail}\n"
