"""The training report: a plot per logged metric against the step, the manifest summary, escaping,
bad metrics lines, and the store entry point (`write_training_report`, `rlaif models report`)."""

from __future__ import annotations

import json
import re
from functools import partial
from pathlib import Path

import pytest

from rlaif.core.errors import StoreError
from rlaif.publish import plots
from rlaif.publish.model_card import render_model_card
from rlaif.training.report import metric_series, read_metrics, training_markdown, write_folder_report

EVIL = '<script>alert("x")</script>'
STEPS = [
    {
        "step": 1,
        "loss": 0.69,
        "reward_accuracy": 0.5,
        "kl": 0.0,
        "mean_reward": -0.2,
        "learning_rate": 1e-5,
        "epoch": 0.1,
    },
    {
        "step": 2,
        "loss": 0.61,
        "reward_accuracy": 0.75,
        "kl": 0.02,
        "mean_reward": 0.1,
        "learning_rate": 1e-5,
        "epoch": 0.2,
    },
    {
        "step": 3,
        "loss": 0.52,
        "reward_accuracy": 1.0,
        "kl": 0.05,
        "mean_reward": 0.4,
        "learning_rate": 5e-6,
        "epoch": 0.3,
    },
]


def manifest(model_id: str = "tiny-dpo-0123456789ab") -> dict:
    return {
        "id": model_id,
        "name": f"tiny {EVIL}",
        "kind": "model",
        "created_at": "2026-01-01T00:00:00Z",
        "algorithm": "dpo",
        "base_model": "smollm2-135m",
        "base_model_path": "/cache/smollm2-135m",
        "dataset": {
            "id": "crafted-aaaaaaaaaaaa",
            "name": "crafted",
            "counts": {"in": 9, "kept": 4, "dropped": {"inconsistent": 5}},
            "eval": {
                "n": 100,
                "agreement": 0.613,
                "kappa": 0.21,
                "warnings": ["judge close to chance"],
                "gold": {"path": "gold.jsonl"},
            },
        },
        "parents": ["crafted-aaaaaaaaaaaa"],
        "settings": {"max_steps": 3, "learning_rate": 1e-5, "options": {"beta": 0.1}},
        "reward": None,
        "lora": False,
        "weights": "model",
        "metrics": {"loss": 0.52, "reward_accuracy": 1.0},
        "steps": 3,
        "seconds": 12.5,
        "hardware": {
            "device": "cpu",
            "gpu": None,
            "cpu_count": 2,
            "torch": "2.13.0",
            "transformers": "5.19",
            "trl": "1.16",
        },
        "package_version": "0.1.0",
    }


def model_folder(root: Path, steps: list[dict] | None = STEPS, extra_lines: tuple[str, ...] = ()) -> Path:
    folder = root / "tiny-dpo-0123456789ab"
    (folder / "model").mkdir(parents=True)
    (folder / "model" / "config.json").write_text("{}")
    (folder / "manifest.json").write_text(json.dumps(manifest()))
    if steps is not None:
        (folder / "metrics.jsonl").write_text(
            "".join(json.dumps(row) + "\n" for row in steps) + "".join(line + "\n" for line in extra_lines)
        )
    return folder


def svgs(html: str) -> list[str]:
    return re.findall(r'<svg xmlns="http://www.w3.org/2000/svg" class="plot".*?</svg>', html, flags=re.S)


def test_report_plots_each_metric_against_the_step_and_summarises_the_manifest(tmp_path):
    folder = model_folder(tmp_path)
    path = write_folder_report(folder)
    assert path == folder / "report.html"
    html = path.read_text()
    titles = [re.search(r"<title>(.*?)</title>", svg).group(1) for svg in svgs(html)]
    assert titles == [
        "loss",
        "reward accuracy",
        "kl",
        "mean reward",
        "learning rate",
    ]  # main metrics first; epoch not plotted
    loss = svgs(html)[0]
    ys = [float(y) for y in re.findall(r'<circle cx="[\d.]+" cy="([\d.]+)"', loss)]
    assert len(ys) == 3 and ys[0] < ys[1] < ys[2]  # the loss falls, so its points go down the page
    for figure in (
        "crafted-aaaaaaaaaaaa",
        "smollm2-135m",
        "0.613",
        "judge close to chance",
        "options.beta",
        "2.13.0",
        "12.5 s",
        "3 logged steps",
    ):
        assert figure in html, figure
    assert "<script>alert" not in html and "tiny &lt;script&gt;alert(&quot;x&quot;)&lt;/script&gt;" in html
    assert not re.search(r"""(src|href)\s*=\s*["']?(https?:)?//""", html), (
        "the report must load nothing from the network"
    )


def test_a_model_that_logged_nothing_gets_a_report_that_says_so(tmp_path):
    html = write_folder_report(model_folder(tmp_path, steps=None)).read_text()
    assert len(svgs(html)) == 1 and "no step was logged" in html and "0 logged steps" in html


def test_unreadable_metrics_lines_are_skipped_and_named(tmp_path):
    folder = model_folder(tmp_path, extra_lines=("{not json", '{"loss": 1.0}', "[1, 2]"))
    rows, warnings = read_metrics(folder)
    assert [row["step"] for row in rows] == [1, 2, 3]
    assert [w.split(": ")[0] for w in warnings] == [f"{folder / 'metrics.jsonl'}:{n}" for n in (4, 5, 6)]
    html = write_folder_report(folder).read_text()
    assert f"{folder / 'metrics.jsonl'}:4: not JSON" in html


def test_metric_series_ignores_non_numbers_and_non_finite_values():
    rows = [{"step": 1, "loss": float("nan"), "kl": True, "note": "x"}, {"step": 2, "loss": 0.5, "kl": 0.1}]
    assert metric_series(rows) == {"loss": [(2, 0.5)], "kl": [(2, 0.1)]}


def test_line_plot_spans_negative_values_and_escapes_its_labels():
    svg = plots.line([(1, -2.0), (2, 1.0)], f"mean {EVIL}", "step", "r")
    assert "<script>" not in svg and "&lt;script&gt;" in svg
    ticks = [float(t) for t in re.findall(r'text-anchor="end" class="tick">([-\d.]+)<', svg)]
    assert min(ticks) < -2.0 and max(ticks) > 1.0
    assert "no data" in plots.line([], "empty", "step", "y")


def test_report_out_path_that_is_a_folder_is_refused(tmp_path):
    folder = model_folder(tmp_path)
    with pytest.raises(StoreError, match="is a folder - give a file name"):
        write_folder_report(folder, out=tmp_path)
    out = write_folder_report(folder, out=tmp_path / "elsewhere" / "r.html")
    assert out.is_file() and not (folder / "report.html").exists()


def test_broken_manifest_names_the_file(tmp_path):
    folder = model_folder(tmp_path)
    (folder / "manifest.json").write_text("{oops")
    with pytest.raises(StoreError, match=re.escape(str(folder / "manifest.json"))):
        write_folder_report(folder)


def test_markdown_summary_has_the_key_figures(tmp_path):
    text = training_markdown(manifest(), tmp_path / "report.html")
    for row in (
        "| model | tiny-dpo-0123456789ab |",
        "| dataset version | crafted-aaaaaaaaaaaa |",
        "| judge agreement | 0.613 |",
        "| final loss | 0.52 |",
    ):
        assert row in text
    assert str(tmp_path / "report.html") in text and "data:image" not in text
    with_plots = training_markdown(manifest(), None, STEPS)
    assert with_plots.count("](data:image/svg+xml;base64,") == 5  # loss, reward accuracy, kl, mean reward, lr


def committed_model(store: Path) -> str:
    """A hand-made model committed through the store's own commit (fake weights, real manifest and metrics)."""
    from rlaif.store.models import commit_model, model_id_for, new_model_workdir

    model_id = model_id_for("tiny", {"k": 1})
    work = new_model_workdir(store, model_id)
    (work / "model").mkdir()
    (work / "model" / "config.json").write_text("{}")
    (work / "metrics.jsonl").write_text("".join(json.dumps(row) + "\n" for row in STEPS))
    body = {
        k: v
        for k, v in manifest().items()
        if k not in ("id", "name", "kind", "created_at", "package_version", "weights")
    }
    commit_model(store, model_id, work, body, card=partial(render_model_card, store=store))
    return model_id


def test_store_model_report_goes_into_the_model_folder(tmp_path):
    from rlaif.store.models import find_model
    from rlaif.training.report import write_training_report

    store = tmp_path / "store"
    model_id = committed_model(store)
    path = write_training_report(store, model_id)
    assert path == find_model(store, model_id) / "report.html"
    html = path.read_text()
    assert f"Model {model_id}" in html and len(svgs(html)) == 5 and "crafted-aaaaaaaaaaaa" in html


def test_unknown_model_is_a_store_error_naming_it(tmp_path):
    from rlaif.training.report import write_training_report

    store = tmp_path / "store"
    committed_model(store)
    with pytest.raises(StoreError, match=r"no model 'nope-0123456789ab'.*known models: tiny-"):
        write_training_report(store, "nope-0123456789ab")


def test_models_report_command_writes_the_report(tmp_path):
    from tests.badinput import run_cli

    store = tmp_path / "store"
    model_id = committed_model(store)
    result = run_cli("models", "report", model_id, "--store", str(store), "--out", str(tmp_path / "r.html"))
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == str(tmp_path / "r.html") and len(svgs((tmp_path / "r.html").read_text())) == 5


@pytest.mark.parametrize(
    "args, needles",
    [
        (("nope-0123456789ab",), ("no model 'nope-0123456789ab'", "known models: tiny-")),
        (("{model}", "--out", "{tmp}"), ("is a folder - give a file name",)),
    ],
    ids=["unknown-id", "out-is-a-folder"],
)
def test_models_report_bad_input_fails_cleanly(tmp_path, args, needles):
    from tests.badinput import assert_clean_failure, run_cli

    store = tmp_path / "store"
    model_id = committed_model(store)
    before = sorted(p.name for p in (store / "models" / model_id).iterdir())
    result = run_cli(
        "models", "report", *(a.format(model=model_id, tmp=tmp_path) for a in args), "--store", str(store)
    )
    assert_clean_failure(result, *needles)
    assert sorted(p.name for p in (store / "models" / model_id).iterdir()) == before  # nothing written


@pytest.mark.slow
def test_long_y_labels_stay_inside_the_plot_and_off_its_title_in_chromium(tmp_path):
    """The walkthrough: "logps rejected" ticks (-74.0383, ...) and "rewards rejected" ticks (1.595e-05) ran off the
    picture's left edge (losing their minus sign) and over the rotated axis title. Measured in Chromium."""
    import shutil

    playwright = pytest.importorskip("playwright.sync_api")
    chromium = shutil.which("chromium") or shutil.which("chromium-browser")
    if chromium is None:
        pytest.skip("needs Chromium: apt-get install chromium")
    steps = [
        {
            "step": n,
            "loss": 0.69,
            "logps/rejected": -74.0383 + n * 0.0113,
            "rewards/rejected": (1.595e-5, -2.232e-5)[n % 2],
        }
        for n in range(1, 6)
    ]
    page_path = write_folder_report(model_folder(tmp_path, steps))
    with playwright.sync_playwright() as driver:
        browser = driver.chromium.launch(executable_path=chromium, args=["--no-sandbox"])
        page = browser.new_page()
        page.goto(page_path.resolve().as_uri())
        boxes = page.evaluate(
            """() => [...document.querySelectorAll('svg.plot')].map(svg => {
                const left = svg.getBoundingClientRect().left;
                const title = svg.querySelector('text.label[transform]');
                const t = title ? title.getBoundingClientRect() : null;
                return {
                    name: svg.querySelector('title').textContent,
                    ticks: [...svg.querySelectorAll('text.tick[text-anchor="end"]')].map(e => {
                        const r = e.getBoundingClientRect(); return [r.left - left, r.right - left, e.textContent];
                    }),
                    titleRight: t ? t.right - left : 0,
                };
            })"""
        )
        browser.close()
    assert len(boxes) >= 3
    for plot in boxes:
        for start, _, text in plot["ticks"]:
            assert start >= plot["titleRight"] and start >= 0, (plot["name"], text, start, plot["titleRight"])
