"""A self-contained HTML report of one dataset version: summary counts, calls, models and
templates, and inline-SVG plots (chosen vs rejected length, margin and soft-label histograms,
position consistency, drop reasons, per-policy win rates).

The page is the Jinja template `rlaif/publish/templates/report.html.j2`; this module computes what it
shows (tables of figures and the plots from rlaif.publish.plots). The page loads nothing from the network
(a Content-Security-Policy forbids it), escapes all dataset text (the template is autoescaped and
every value goes through `html.escape`), and is written atomically outside the version folder
(default `STORE/reports/<id>.html`), so it never touches a version's content or id.
"""

from __future__ import annotations

import functools
from collections import Counter
from html import escape
from importlib import resources
from pathlib import Path
from typing import Any

import jinja2
from markupsafe import Markup

from rlaif.calls.costs import cost_rows
from rlaif.core.errors import StoreError
from rlaif.core.figures import figure
from rlaif.core.gold import gold_label
from rlaif.publish import plots
from rlaif.publish.review_figures import review_rows
from rlaif.store.atomic import write_atomic
from rlaif.store.diff import mean, read_table_or_empty, text_of, version_stats
from rlaif.store.lineage import version_origin
from rlaif.store.versions import load_manifest, versions_dir

GOLD_FIGURES = (
    "n",
    "agreement",
    "agreement_ci95",
    "baseline_longer",
    "baseline_shorter",
    "kappa",
    "position_consistency",
    "position_consistency_debiased",
    "prefers_longer",
    "ece",
    "failures",
)
REPORT_TABLES = ("pairs", "judgments", "rankings", "feedback")
EXAMPLES = 5
EXAMPLE_CHARS = 400
TEMPLATES = Path(str(resources.files("rlaif.publish") / "templates"))


def default_report_path(store: str | Path, version_id: str) -> Path:
    return Path(store) / "reports" / f"{version_id}.html"


def policy_win_rates(pairs: list[dict]) -> dict[str, dict[str, Any]]:
    """Wins and losses per policy over kept pairs between two different policies.

    >>> policy_win_rates([{"chosen_policy": "a", "rejected_policy": "b"}, {"chosen_policy": "a", "rejected_policy": "a"}])
    {'a': {'wins': 1, 'losses': 0, 'win_rate': 1.0}, 'b': {'wins': 0, 'losses': 1, 'win_rate': 0.0}}
    """
    wins, losses = Counter(), Counter()
    for pair in pairs:
        if pair["chosen_policy"] != pair["rejected_policy"]:
            wins[pair["chosen_policy"]] += 1
            losses[pair["rejected_policy"]] += 1
    return {
        policy: {
            "wins": wins[policy],
            "losses": losses[policy],
            "win_rate": round(wins[policy] / (wins[policy] + losses[policy]), 4),
        }
        for policy in sorted(wins.keys() | losses.keys())
    }


def position_consistency(manifest: dict[str, Any], judgments: list[dict]) -> dict[str, Any] | None:
    """The judge's position-bias report from the manifest, or else rates computed from the judgments table."""
    bias = (manifest.get("judge") or {}).get("position_bias")
    if bias and bias.get("n"):
        return bias
    rows = [j for j in judgments if j.get("consistent") is not None and j.get("consistent_raw") is not None]
    if not rows:
        return None
    return {
        "raw_consistency": mean([float(j["consistent_raw"]) for j in rows]),
        "consistency": mean([float(j["consistent"]) for j in rows]),
        "mean_p_first": None,
        "beta": None,
        "n": len(rows),
    }


def _policy_names(manifest: dict[str, Any], pairs: list[dict]) -> list[str]:
    named = [p.get("name") for p in (manifest.get("models") or {}).get("policies", [])]
    used = [name for pair in pairs for name in (pair["chosen_policy"], pair["rejected_policy"])]
    return list(dict.fromkeys(name for name in [*named, *used] if name))


def win_rate_plot(manifest: dict[str, Any], pairs: list[dict]) -> str:
    title = "Per-policy win rate"
    policies = _policy_names(manifest, pairs)
    if len(policies) <= 1:
        only = policies[0] if policies else "unknown"
        return plots.no_data(title, f"single policy ({only}): no win rate between policies")
    rates = policy_win_rates(pairs)
    if not rates:
        return plots.no_data(title, "no kept pair compares two different policies")
    items = [(f"{name} ({r['wins']}-{r['losses']})", r["win_rate"]) for name, r in rates.items()]
    cross = sum(r["wins"] for r in rates.values())
    return plots.bars(
        items,
        title,
        max_value=1.0,
        value_fmt="{:.0%}",
        note=f"over {cross} kept pairs between different policies (wins-losses)",
    )


def consistency_plot(manifest: dict[str, Any], judgments: list[dict]) -> str:
    title = "Position consistency (same winner in both orders)"
    bias = position_consistency(manifest, judgments)
    items = [
        (label, bias[key])
        for label, key in (("raw (as judged)", "raw_consistency"), ("after debiasing", "consistency"))
        if bias and bias.get(key) is not None
    ]
    if not items:
        return plots.no_data(title, "no data: no pair was judged in both orders")
    note = f"n = {bias['n']} pairs"
    if bias.get("beta") is not None and bias.get("mean_p_first") is not None:
        note += f"; mean P(first wins) {bias['mean_p_first']:.2f}, logit shift {bias['beta']:+.2f}"
    return plots.bars(items, title, max_value=1.0, value_fmt="{:.0%}", colors=["orange", "green"], note=note)


def drops_plot(manifest: dict[str, Any]) -> str:
    title = "Kept and dropped pairs by reason"
    counts = manifest.get("counts") or {}
    if "kept" not in counts:
        return plots.no_data(title, "no data: the manifest has no counts")
    dropped = counts.get("dropped") or {}
    items = [("kept", counts["kept"]), *dropped.items()]
    note = f"{counts.get('in', '?')} candidate pairs, {sum(dropped.values())} dropped"
    return plots.bars(items, title, colors=["green"] + ["orange"] * len(dropped), note=note)


def pair_plots(manifest: dict[str, Any], pairs: list[dict], stats: dict[str, Any]) -> list[str]:
    """Length scatter, margin and soft-label histograms of the kept pairs."""
    lengths = [(len(text_of(p["rejected"])), len(text_of(p["chosen"]))) for p in pairs]
    longer = stats["prefers_longer"]
    length_note = (
        f"n = {len(pairs)}; chosen longer in {longer:.0%}; dashed: equal length" if longer is not None else ""
    )
    min_margin = ((manifest.get("recipe") or {}).get("filters") or {}).get("min_margin")
    margins = [p["margin"] for p in pairs if p.get("margin") is not None]
    soft = [p["p_chosen"] for p in pairs if p.get("p_chosen") is not None]
    soft_lo = 0.5 if all(value >= 0.5 for value in soft) else 0.0
    # zoom in on small values (a weak judge's labels sit near 0.5), never past the natural range
    margin_hi = min(1.0, plots.nice_max(max(margins, default=1.0)))
    soft_hi = min(1.0, soft_lo + plots.nice_max(max(soft, default=1.0) - soft_lo))
    margin_note = f"n = {len(margins)}" + (f"; min_margin filter {min_margin}" if min_margin is not None else "")
    return [
        plots.scatter(
            lengths, "Length: chosen vs rejected (characters)", "rejected length", "chosen length", note=length_note
        ),
        plots.histogram(
            margins, "Margin |2 p - 1| of kept pairs", "margin", hi=margin_hi, color="green", note=margin_note
        ),
        plots.histogram(
            soft, "Soft label p_chosen (debiased, both orders)", "p_chosen", lo=soft_lo, hi=soft_hi, color="blue"
        ),
    ]


def extra_plots(tables: dict[str, list[dict]]) -> list[str]:
    """Plots for listwise / pointwise tables, only when the version has such rows."""
    out = []
    scores = [row["score"] for row in tables.get("feedback", []) if row.get("score") is not None]
    if tables.get("feedback"):
        good = sum(1 for row in tables["feedback"] if row.get("label"))
        lo, hi = (min(scores), max(scores)) if scores else (0.0, 1.0)
        note = f"n = {len(scores)} scored; labels good {good}, bad {len(tables['feedback']) - good}"
        out.append(
            plots.histogram(
                scores,
                "Pointwise scores (feedback)",
                "score",
                lo=lo,
                hi=hi if hi > lo else lo + 1,
                color="orange",
                note=note,
            )
        )
    agreement = [row["agreement"] for row in tables.get("rankings", []) if row.get("agreement") is not None]
    if agreement:  # only a judge that ranks over several orders has one (not pairwise)
        out.append(
            plots.histogram(
                agreement,
                "Ranking agreement (Kendall tau between permutations)",
                "tau",
                lo=-1.0,
                hi=1.0,
                color="green",
            )
        )
    return out


def figures(manifest: dict[str, Any], tables: dict[str, list[dict]], stats: dict[str, Any]) -> list[str]:
    """Every plot of the report, as inline SVG strings."""
    return [
        *pair_plots(manifest, tables["pairs"], stats),
        consistency_plot(manifest, tables["judgments"]),
        drops_plot(manifest),
        win_rate_plot(manifest, tables["pairs"]),
        *extra_plots(tables),
    ]


def escaped(value: Any) -> Markup:
    """Every `{{ value }}` of the template: shown by `rlaif.core.figures.figure` and escaped, unless it is already markup
    (a plot, a macro's output)."""
    return value if isinstance(value, Markup) else Markup(escape(figure(value)))


@functools.cache
def report_template(name: str = "report.html.j2") -> jinja2.Template:
    """A report template of publish/templates, autoescaped, every value shown by `escaped` (the dataset and training reports)."""
    env = jinja2.Environment(
        loader=jinja2.FileSystemLoader(TEMPLATES),
        autoescape=True,
        finalize=escaped,
        undefined=jinja2.StrictUndefined,
        keep_trailing_newline=True,
    )
    return env.get_template(name)


#: what each of a manifest's `counts` is, as the report's counts table names it
COUNT_NAMES = {
    "prompts": "prompts",
    "generations": "responses sampled",
    "in": "candidate pairs (pairs of responses formed before judging)",
    "kept": "kept preference pairs",
    "prompts_with_pair": "prompts with a kept pair",
    "judgments": "judgments",
}
#: the manifest's counts that are drops by reason, and how the table names them
DROP_COUNTS = {
    "prompts_dropped": "prompts dropped before sampling",
    "responses_dropped": "responses not judged",
    "dropped": "candidate pairs dropped",
}


def count_table_rows(counts: dict[str, Any]) -> list[tuple[str, Any]]:
    """The counts table: named figures, and each drop reason on a row of its own (no raw dicts).

    >>> count_table_rows({"in": 4, "kept": 1, "dropped": {"low_margin": 3, "identical": 0}, "responses_dropped": {"truncated": 2}})
    [('candidate pairs (pairs of responses formed before judging)', 4), ('kept preference pairs', 1), ('responses not judged: truncated', 2), ('candidate pairs dropped: low_margin', 3)]
    """
    rows = [
        (COUNT_NAMES.get(key, key.replace("_", " ")), value)
        for key, value in counts.items()
        if not isinstance(value, dict)
    ]
    for key, label in DROP_COUNTS.items():
        rows += [(f"{label}: {reason}", n) for reason, n in (counts.get(key) or {}).items() if n]
    rows += [
        (key.replace("_", " "), value)
        for key, value in counts.items()
        if isinstance(value, dict) and key not in DROP_COUNTS
        for value in [", ".join(f"{k} {v}" for k, v in value.items())]
    ]
    return rows


def summary_tables(
    manifest: dict[str, Any], tables: dict[str, list[dict]], stats: dict[str, Any]
) -> list[tuple[str, list[tuple[str, Any]]]]:
    """(title, rows) of each summary table: counts, label statistics, calls, models, sources."""
    counts, calls, tokens = manifest.get("counts") or {}, manifest.get("calls") or {}, manifest.get("tokens") or {}
    origin = version_origin(manifest)
    count_rows = count_table_rows(counts)
    count_rows += [  # a table's size, unless the counts already name it (the walkthrough saw "rankings 100" twice)
        (f"{table} rows", len(tables[table]))
        for table in ("rankings", "feedback")
        if tables.get(table) and table not in counts
    ]
    models = origin["models"]
    model_rows = [
        (f"policy {p.get('name')}", f"{p.get('model')} ({p.get('backend')})") for p in models.get("policies", [])
    ]
    judge = models.get("judge") or {}
    model_rows.append(("judge", f"{judge.get('model')} ({judge.get('backend')})" if judge else None))
    model_rows += [(f"template {name}", sha) for name, sha in origin["prompt_templates"].items()]
    prompts = origin["prompts"] or {}
    source_rows = [
        ("recipe", f"{origin['recipe']['name']} (sha256 {origin['recipe']['sha256']})"),
        ("prompt file", prompts.get("path", "not recorded (version made before prompt lineage)")),
        ("prompt file sha256", prompts.get("sha256")),
        ("prompt rows used", prompts.get("rows")),
        ("parents", ", ".join(manifest.get("parents") or []) or "none"),
        ("package version", manifest.get("package_version")),
    ]
    usage_rows = [
        *(("calls " + key, value) for key, value in calls.items()),
        *(("tokens " + key, value) for key, value in tokens.items()),
        *cost_rows(manifest.get("cost")),
    ]
    return [
        ("Counts", count_rows),
        ("Label statistics", list(stats.items())),
        ("Model calls", usage_rows),
        ("Models and templates", model_rows),
        ("Sources", source_rows),
        *gold_table(manifest),
        *([("Human review", review_rows(manifest))] if review_rows(manifest) else []),
    ]


def gold_table(manifest: dict[str, Any]) -> list[tuple[str, list[tuple[str, Any]]]]:
    """The judge's figures on the recipe's gold pairs (`judge.gold`), warnings first; [] without them."""
    quality = manifest.get("eval")
    if not isinstance(quality, dict):
        return []
    rows = [("WARNING", warning) for warning in quality.get("warnings") or []]
    rows += [(key, quality.get(key)) for key in GOLD_FIGURES if key in quality]
    gold = quality.get("gold") or {}
    rows += [("gold set", gold_label(gold)), ("gold rows sha256", gold.get("sha256"))]
    return [("Judge on human-labelled gold pairs", rows)]


def _clip(text: str) -> str:
    return text if len(text) <= EXAMPLE_CHARS else text[:EXAMPLE_CHARS] + " ..."


def example_rows(pairs: list[dict]) -> list[tuple[Any, ...]]:
    """The first pairs as (prompt, chosen, rejected, p_chosen, margin), texts clipped, figures to 3 decimals."""
    return [
        (
            _clip(text_of(p["prompt"])),
            _clip(text_of(p["chosen"])),
            _clip(text_of(p["rejected"])),
            _figure(p.get("p_chosen")),
            _figure(p.get("margin")),
        )
        for p in pairs[:EXAMPLES]
    ]


def _figure(value: Any) -> str:
    """A probability or margin with 3 decimals (a cell of its own that never wraps); "n/a" where a row has none.

    >>> _figure(0.5153846153846154), _figure(None)
    ('0.515', 'n/a')
    """
    return f"{value:.3f}" if isinstance(value, (int, float)) else "n/a"


def render_report(manifest: dict[str, Any], tables: dict[str, list[dict]]) -> str:
    """The whole HTML page for a version's manifest and tables (pairs, judgments, rankings, feedback)."""
    tables = {name: tables.get(name, []) for name in REPORT_TABLES}
    stats = version_stats(manifest, tables["pairs"])
    return report_template().render(
        version_id=manifest.get("id"),
        created_at=manifest.get("created_at"),
        name=manifest.get("name"),
        summary=summary_tables(manifest, tables, stats),
        plots=[Markup(svg) for svg in figures(manifest, tables, stats)],  # rlaif.publish.plots escapes their text
        examples_shown=EXAMPLES,
        examples=example_rows(tables["pairs"]),
    )


def write_report(store: str | Path, version_id: str, out: str | Path | None = None, force: bool = False) -> Path:
    """Render the report of `version_id` and write it to `out` (default STORE/reports/<id>.html, which is the
    version's own and rewritten); an existing `out` file is replaced only with `force`."""
    manifest = load_manifest(store, version_id)
    path = Path(out) if out else default_report_path(store, version_id)
    if path.is_dir():
        raise StoreError(f"{path} is a folder - give a file name for the report, e.g. {path / (version_id + '.html')}")
    if out and (path.exists() or path.is_symlink()) and not force:
        raise StoreError(f"{path} exists - pass --force to replace it, or choose another --out")
    if versions_dir(store).resolve() in path.resolve().parents:
        raise StoreError(
            f"{path}: versions are immutable, so the report cannot go inside {versions_dir(store)} - write it elsewhere (default {default_report_path(store, version_id)})"
        )
    tables = {name: read_table_or_empty(store, version_id, name) for name in REPORT_TABLES}
    try:
        write_atomic(path, render_report(manifest, tables))
    except OSError as exc:
        raise StoreError(
            f"could not write the report to {path}: {exc} - check that the folder is writable or pass --out"
        ) from None
    return path


def _md(value: Any) -> str:
    return escape(figure(value)).replace("|", "\\|")


def report_markdown(store: str | Path, version_id: str, path: Path) -> str:
    """Key figures and plots of a version as Markdown for a Prefect artifact: the UI shows both (each plot an SVG
    image in a data URI: no script runs in an image, nothing is fetched). A `file://` link would not open from the
    UI, so the HTML report is named by its path on the machine that ran the flow, with the command that writes it
    anywhere."""
    manifest = load_manifest(store, version_id)
    tables = {name: read_table_or_empty(store, version_id, name) for name in REPORT_TABLES}
    stats = version_stats(manifest, tables["pairs"])
    counts = manifest.get("counts") or {}
    rows = [("kept pairs", counts.get("kept")), ("candidate pairs", counts.get("in"))]
    rows += [(f"dropped: {reason}", n) for reason, n in (counts.get("dropped") or {}).items() if n]
    rows += list(stats.items())
    table = "\n".join(f"| {_md(key)} | {_md(value)} |" for key, value in rows)
    images = "\n\n".join(plots.markdown_image(svg) for svg in figures(manifest, tables, stats))
    return (
        f"## Dataset report: {_md(version_id)}\n\n| figure | value |\n|---|---|\n{table}\n\n### Plots\n\n{images}\n\n"
        f"HTML report with plots: `{_md(path)}` on the machine that ran this flow "
        f"(`rlaif datasets report {_md(version_id)} --out FILE` writes it anywhere the store is).\n"
    )
