"""The HTML dataset report: structure, escaping, immutability of the version, zero-pair versions,
the CLI, a real headless-Chromium render, and the report task at the end of the Prefect flow."""

from __future__ import annotations

import base64
import hashlib
import json
import os
import re
import shutil
import subprocess
import sys
import time
from pathlib import Path

import pytest
import yaml
from typer.testing import CliRunner

from rlaif.cli import app
from rlaif.publish.report import default_report_path, write_report
from rlaif.store.versions import version_path
from tests.badinput import assert_clean_failure, run_cli
from tests.conftest import ROOT, write_prompts
from tests.test_diff import commit, pair

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
needs_chromium = pytest.mark.skipif(
    CHROMIUM is None, reason="Debian's chromium is not installed (apt-get install -y chromium; .ci/run installs it)"
)
EVIL = '<script>alert("x")</script> & "quotes"'
PLOT_COLORS = {"blue": (59, 111, 182), "orange": (224, 123, 57), "green": (63, 155, 90)}


@pytest.fixture
def version(tmp_path):
    """Two policies (alpha wins 3 of 4 cross-policy pairs), one within-policy pair, hostile text."""
    store = tmp_path / "store"
    ab, ba = ("alpha", "beta<b>"), ("beta<b>", "alpha")
    pairs = [
        pair("p1", 0, 0, 0.9, policies=ab, prompt_text=EVIL, chosen_text="a much longer answer " * 5),
        pair("p2", 0, 0, 0.7, policies=ab),
        pair("p3", 0, 0, 0.6, policies=ab, rejected_text=f"rejected {EVIL}"),
        pair("p4", 0, 0, 0.8, policies=ba),
        pair("p5", 0, 1, 0.65, policies=("alpha", "alpha")),
    ]
    return store, commit(store, pairs, policies=ab, dropped={"inconsistent": 3, "low_margin": 2, "truncated": 1})


def folder_digest(path: Path) -> dict[str, str]:
    return {p.name: hashlib.sha256(p.read_bytes()).hexdigest() for p in sorted(path.iterdir())}


def test_report_has_plots_escapes_text_and_leaves_the_version_alone(version):
    store, version_id = version
    before = folder_digest(version_path(store, version_id))
    path = write_report(store, version_id)
    assert path == default_report_path(store, version_id) == store / "reports" / f"{version_id}.html"
    html = path.read_text()
    assert html.count('<svg xmlns="http://www.w3.org/2000/svg" class="plot"') >= 6
    assert (
        "<script>alert" not in html
        and "&lt;script&gt;alert(&quot;x&quot;)&lt;/script&gt; &amp; &quot;quotes&quot;" in html
    )
    assert "beta<b>" not in html and "beta&lt;b&gt; (1-3)" in html and "alpha (3-1)" in html  # per-policy wins-losses
    assert "75%" in html and "25%" in html
    assert not re.search(r"""(src|href)\s*=\s*["']?(https?:)?//""", html), (
        "the report must load nothing from the network"
    )
    assert "default-src 'none'" in html
    assert "inconsistent" in html and "n = 9 pairs" in html and "logit shift +0.40" in html
    # the pairs' figures: 3 decimals in cells that never wrap mid-number (issue 26 item 10)
    figures = re.findall(r'<td class="num">(.*?)</td>', html)
    assert figures and all(re.fullmatch(r"-?\d\.\d{3}|n/a", f) for f in figures), figures
    assert ".ex td.num{white-space:nowrap" in html
    assert folder_digest(version_path(store, version_id)) == before
    assert [p.name for p in path.parent.iterdir()] == [path.name]  # no temporary file left behind


def test_zero_pair_version_reports_no_data_instead_of_failing(tmp_path):
    store = tmp_path / "store"
    version_id = commit(store, [], dropped={"inconsistent": 4})
    html = write_report(store, version_id, tmp_path / "out" / "r.html").read_text()
    assert html.count("<svg") >= 6
    assert html.count("no data: no rows to plot") == 3  # length, margin, soft label
    assert "single policy (pol): no win rate between policies" in html
    assert "No kept pairs" in html


def test_listwise_and_pointwise_tables_get_their_own_plots(tmp_path):
    from rlaif.store.versions import commit_tables
    from tests.test_diff import manifest

    store = tmp_path / "store"
    prompt = [{"role": "user", "content": EVIL}]
    rankings = [
        {
            "prompt_id": f"p{i}",
            "prompt": prompt,
            "response_ids": ["a", "b"],
            "responses": ["x", "y"],
            "policies": ["pol", "pol"],
            "scores": [0.7, 0.3],
            "ranks": [1, 2],
            "judge": "listwise",
            "agreement": tau,
        }
        for i, tau in enumerate([1.0, 0.5, -0.2])
    ]
    feedback = [
        {
            "prompt_id": "p0",
            "response_id": f"p0/pol/{i}",
            "prompt": prompt,
            "completion": [{"role": "assistant", "content": "ok"}],
            "policy": "pol",
            "score": score,
            "label": score is not None and score >= 3,
        }
        for i, score in enumerate([1.0, 4.0, 5.0, None])
    ]
    version_id, _ = commit_tables(store, "lp", {"rankings": rankings, "feedback": feedback}, manifest([]))
    html = write_report(store, version_id).read_text()
    assert html.count("<svg") == 8
    assert "Pointwise scores (feedback)" in html and "n = 3 scored; labels good 2, bad 2" in html
    assert "Ranking agreement" in html and "n = 3" in html and "rankings rows" in html


def test_cli_report_default_path_and_bad_out(version, tmp_path):
    store, version_id = version
    runner = CliRunner()
    result = runner.invoke(app, ["datasets", "report", version_id, "--store", str(store)], terminal_width=300)
    assert result.exit_code == 0, result.output
    assert (
        str(default_report_path(store, version_id)) in result.output
        and default_report_path(store, version_id).is_file()
    )
    folder = runner.invoke(app, ["datasets", "report", version_id, "--store", str(store), "--out", str(tmp_path)])
    assert folder.exit_code == 2 and "is a folder" in folder.output
    inside = runner.invoke(
        app,
        [
            "datasets",
            "report",
            version_id,
            "--store",
            str(store),
            "--out",
            str(version_path(store, version_id) / "r.html"),
        ],
    )
    assert inside.exit_code == 2 and "immutable" in inside.output
    assert "Example:" in runner.invoke(app, ["datasets", "report", "--help"]).output


def test_an_existing_out_file_is_replaced_only_with_force(version, tmp_path):
    """Issue 25 item 8: `--out` never overwrites a user's file silently; the default path (the version's own
    report, which a run writes) is rewritten as before."""
    store, version_id = version
    mine = tmp_path / "notes.html"
    mine.write_text("my notes")
    args = ["datasets", "report", version_id, "--store", str(store), "--out", str(mine)]
    refused = run_cli(*args)
    assert_clean_failure(refused, f"{mine} exists", "--force")
    assert mine.read_text() == "my notes"
    assert run_cli(*args, "--force").returncode == 0 and "<svg" in mine.read_text()
    again = ["datasets", "report", version_id, "--store", str(store)]
    assert run_cli(*again).returncode == 0 and run_cli(*again).returncode == 0  # its own report: rewritten


def chromium(tmp_path: Path, page: Path, *mode: str) -> subprocess.CompletedProcess:
    flags = [
        "--headless",
        "--no-sandbox",
        "--disable-gpu",
        "--disable-quic",
        "--no-first-run",
        "--disable-background-networking",
        "--disable-component-update",
        "--disable-sync",
        "--enable-logging=stderr",
        "--v=0",
        f"--user-data-dir={tmp_path / 'chromium-profile'}",
    ]
    return subprocess.run(
        [CHROMIUM, *flags, *mode, page.resolve().as_uri()], capture_output=True, text=True, timeout=120
    )


def render_problems(tmp_path: Path, page: Path) -> list[str]:
    """Load `page` in headless Chromium; list what went wrong (console messages, marker not set)."""
    dumped = chromium(tmp_path, page, "--dump-dom")
    problems = [
        line for line in dumped.stderr.splitlines() if ":CONSOLE" in line
    ]  # uncaught errors, CSP refusals, logs
    ready = re.search(r'data-report-ready="(\d+)"', dumped.stdout)
    if dumped.returncode != 0 or not ready:
        problems.append(f"page did not finish loading (rc {dumped.returncode})")
    elif int(ready[1]) != dumped.stdout.count("<svg"):
        problems.append(f"{ready[1]} plots ready, {dumped.stdout.count('<svg')} in the page")
    return problems


@needs_chromium
def test_headless_chromium_renders_the_report(version, tmp_path):
    pil = pytest.importorskip("PIL.Image")
    store, version_id = version
    page = write_report(store, version_id)
    assert render_problems(tmp_path, page) == []
    shot = tmp_path / "shot.png"
    result = chromium(tmp_path, page, f"--screenshot={shot}", "--window-size=1000,2200")
    assert result.returncode == 0 and shot.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n", result.stderr[-2000:]
    image = pil.open(shot).convert("RGB")
    assert image.size == (1000, 2200)
    colors = image.getcolors(maxcolors=image.size[0] * image.size[1])
    non_white = sum(n for n, rgb in colors if min(rgb) < 235)
    assert non_white > 0.03 * image.size[0] * image.size[1], "the screenshot is (nearly) blank"
    for name, target in PLOT_COLORS.items():  # bars, dots and histograms were painted
        painted = sum(n for n, rgb in colors if max(abs(c - t) for c, t in zip(rgb, target)) <= 12)
        assert painted > 300, f"no {name} plot pixels in the screenshot"


def axis_labels(dom: str) -> list[tuple[str, str, list[str]]]:
    """(plot title, axis, its tick labels in order) for every plot of a DOM that Chromium rendered."""
    found = []
    for svg in re.findall(r'<svg [^>]*class="plot".*?</svg>', dom, flags=re.S):
        title = re.search(r"<title>(.*?)</title>", svg).group(1)
        for axis, anchor in (("y", "end"), ("x", "middle")):
            labels = re.findall(rf'<text [^>]*text-anchor="{anchor}" class="tick">(.*?)</text>', svg)
            found.append((title, axis, labels))
    return found


@needs_chromium
def test_no_axis_of_either_report_repeats_a_label_in_chromium(version, tmp_path):
    """Issue 26 item 10: axes read "0 0 0 0 0" (a learning rate), "0.001 0.001 0 0" and "-0" (small rewards),
    steps ticked at 1.75. The pages as Chromium renders them: no axis repeats a label, steps are whole."""
    from rlaif.training.report import write_folder_report
    from tests.test_train_report import model_folder

    store, version_id = version
    small = [
        {
            "step": n,
            "loss": 0.6931 - n * 1e-4,
            "mean_reward": (0.001, 0.0012, 0.0009, -0.0003)[n % 4],
            "kl": n * 1e-6,
            "reward_accuracy": 0.5,
            "learning_rate": 1e-5 * (1 - (n - 1) / 8),
            "epoch": n / 8,
        }
        for n in range(1, 8)
    ]
    pages = [write_report(store, version_id), write_folder_report(model_folder(tmp_path, small))]
    for page in pages:
        dom = chromium(tmp_path, page, "--dump-dom")
        assert dom.returncode == 0, dom.stderr[-2000:]
        axes = axis_labels(dom.stdout)
        assert len([labels for _, _, labels in axes if labels]) >= 4, axes
        for title, axis, labels in axes:
            assert len(set(labels)) == len(labels) and "-0" not in labels, (page.name, title, axis, labels)
            if page.name == "report.html" and axis == "x":  # training steps
                assert all(float(label).is_integer() for label in labels), (title, labels)


ARTIFACT_SCRIPT = """
import sys
from prefect.artifacts import create_markdown_artifact
from rlaif.publish.report import report_markdown, write_report
store, version_id = sys.argv[1], sys.argv[2]
print(create_markdown_artifact(markdown=report_markdown(store, version_id, write_report(store, version_id)), key="probe"))
"""


def wait_for_health(url: str, server: subprocess.Popen, log: Path) -> None:
    import urllib.request

    for _ in range(240):
        assert server.poll() is None, log.read_text()[-3000:]
        try:
            with urllib.request.urlopen(url, timeout=2):
                return
        except OSError:
            time.sleep(0.5)
    raise AssertionError(f"no Prefect server at {url} after 2 minutes: {log.read_text()[-3000:]}")


@pytest.mark.slow
@needs_chromium
def test_the_prefect_ui_shows_the_report_artifact_s_plots(version, tmp_path):
    """Issue 26 item 3: the artifact's plots, as `make server`'s UI renders them in Chromium (a file:// link did not open)."""
    from rlaif.core.processes import free_port

    store, version_id = version
    port = free_port()
    env = {
        **os.environ,
        "PREFECT_HOME": str(tmp_path / "prefect"),
        "PREFECT_API_URL": f"http://127.0.0.1:{port}/api",
        "PREFECT_SERVER_ANALYTICS_ENABLED": "false",
        "DO_NOT_TRACK": "1",
    }
    prefect = Path(sys.executable).parent / "prefect"
    with open(tmp_path / "server.log", "wb") as log:
        server = subprocess.Popen(
            [prefect, "server", "start", "--host", "127.0.0.1", "--port", str(port)], env=env, stdout=log, stderr=log
        )
    try:
        wait_for_health(f"http://127.0.0.1:{port}/api/health", server, tmp_path / "server.log")
        posted = subprocess.run(
            [sys.executable, "-c", ARTIFACT_SCRIPT, str(store), version_id],
            env=env,
            cwd=ROOT,
            capture_output=True,
            text=True,
            timeout=180,  # the client waits for the server to answer
        )
        assert posted.returncode == 0, posted.stderr[-3000:]
        artifact = posted.stdout.strip().splitlines()[-1]
        page = f"http://127.0.0.1:{port}/artifacts/artifact/{artifact}"
        dom = subprocess.run(
            [
                CHROMIUM,
                "--headless",
                "--no-sandbox",
                "--disable-gpu",
                "--virtual-time-budget=30000",
                "--dump-dom",
                page,
            ],
            capture_output=True,
            text=True,
            timeout=180,
        )
    finally:
        server.terminate()
        server.wait(timeout=60)
    plots_in_report = write_report(store, version_id).read_text().count('class="plot"')
    assert version_id in dom.stdout and dom.stdout.count('<img src="data:image/svg+xml;base64,') == plots_in_report, (
        dom.stdout[-3000:]
    )


@needs_chromium
def test_render_check_catches_a_script_error(version, tmp_path):
    store, version_id = version
    broken = tmp_path / "broken.html"
    broken.write_text(
        write_report(store, version_id).read_text().replace("<script>", "<script>undefinedFunction();", 1)
    )
    problems = render_problems(tmp_path, broken)
    assert any("undefinedFunction" in line for line in problems) and any("did not finish" in line for line in problems)


# Runs in a child process, so that Prefect's ephemeral server starts and stops there (in-process,
# it stops at interpreter exit, after pytest has closed the streams its log handler writes to).
FLOW_SCRIPT = """
import json, sys
from prefect.client.orchestration import get_client
from prefect.client.schemas.filters import ArtifactFilter, ArtifactFilterKey
from rlaif.backends import BACKENDS
BACKENDS["transformers"] = "tests.fakes:FakeBackend"  # the scripted fake in place of the real model
from rlaif.flows.pipeline import rlaif_run
result = rlaif_run(recipe_path=sys.argv[1], store=sys.argv[2])
from prefect.logging.handlers import APILogWorker
APILogWorker.drain_all(timeout=30)  # the flow run's logs, sent
keys = ["rlaif-dataset-report", "rlaif-dataset-report-html"]  # the second no longer posted: a file:// link
with get_client(sync_client=True) as client:
    artifacts = client.read_artifacts(artifact_filter=ArtifactFilter(key=ArtifactFilterKey(any_=keys)))
    progress = client.read_artifacts(artifact_filter=ArtifactFilter(key=ArtifactFilterKey(any_=["rlaif-run-progress"])))
    logs = [log.message for log in client.read_logs(limit=200)]
mine = {a.key: str(a.data) for a in artifacts if result["version_id"] in str(a.data)}  # the database outlives runs
out = {"result": result, "artifacts": mine, "progress": [a.data for a in progress], "logs": logs}
print(json.dumps(out, default=str))
"""


@pytest.mark.slow
def test_flow_writes_the_report_and_posts_it_as_artifacts(tmp_path):
    """A real Prefect flow run (ephemeral server) with the scripted fake backend in place of transformers."""
    prompts = write_prompts(tmp_path / "prompts.jsonl", ["Say hi.", "Name a colour."])
    recipe, store = tmp_path / "recipe.yaml", tmp_path / "store"
    recipe.write_text(
        yaml.safe_dump(
            {
                "name": "flowrep",
                "prompts": {"path": str(prompts)},
                "policies": [{"name": "fake"}],
                "samples_per_prompt": 2,
            }
        )
    )
    # a Prefect home of its own: in a shared one, older runs' artifacts under the same keys can fill the page read back
    env = {
        **os.environ,
        "RLAIF_PROGRESS": "0",
        "PREFECT_SERVER_ANALYTICS_ENABLED": "false",
        "DO_NOT_TRACK": "1",
        "PREFECT_HOME": str(tmp_path / "prefect"),
    }
    child = subprocess.run(
        [sys.executable, "-c", FLOW_SCRIPT, str(recipe), str(store)],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert child.returncode == 0, child.stderr[-3000:]
    out = json.loads(child.stdout.strip().splitlines()[-1])
    version_id = out["result"]["version_id"]
    report = default_report_path(store, version_id)
    assert out["result"]["lines"][-1] == f"version: {version_id}" and out["result"]["lines"][-2] == f"report: {report}"
    assert report.read_text().count("<svg") >= 6
    artifacts = out["artifacts"]
    assert (
        version_id in artifacts["rlaif-dataset-report"] and "| kept pairs | 0 |" in artifacts["rlaif-dataset-report"]
    )
    assert "rlaif-dataset-report-html" not in artifacts and str(report) in artifacts["rlaif-dataset-report"]
    images = re.findall(r"\]\(data:image/svg\+xml;base64,([A-Za-z0-9+/=]+)\)", artifacts["rlaif-dataset-report"])
    assert len(images) >= 6 and all(base64.b64decode(i).startswith(b"<svg") for i in images)  # the plots, inline
    # issue 26 item 2: the run's progress in the UI, and its summary (ending in the version id) in the flow run's log
    assert out["progress"] == [100.0], out["progress"]
    summaries = [log for log in out["logs"] if log.endswith(f"version: {version_id}")]
    assert len(summaries) == 1 and "calls: live" in summaries[0], out["logs"]


def test_the_template_escapes_every_manifest_value_and_shows_every_figure():
    from rlaif.publish.report import TEMPLATES, render_report
    from tests.test_diff import manifest

    assert (TEMPLATES / "report.html.j2").is_file()
    pairs = [pair("p1", 0, 1, 0.9), pair("p2", 0, 1, 0.6)]
    hostile = {
        **manifest(pairs, policies=(EVIL,), dropped={"inconsistent": 3}),
        "id": "t-0123456789ab",
        "name": EVIL,
        "created_at": None,
    }
    html = render_report(hostile, {"pairs": pairs})
    assert "<script>alert" not in html
    escaped = "&lt;script&gt;alert(&quot;x&quot;)&lt;/script&gt; &amp; &quot;quotes&quot;"
    assert f"created - &middot; name {escaped}" in html  # the page header
    assert f"<td>policy {escaped}</td><td>{escaped}-model (openai)</td>" in html  # a summary table
    for row in (
        "<td>kept preference pairs</td><td>2</td>",
        "<td>candidate pairs dropped: inconsistent</td><td>3</td>",
        "<td>candidate pairs (pairs of responses formed before judging)</td>",  # issue 26 item 10: no bare "in" row
        "<td>calls live</td><td>10</td>",
        "<td>tokens completion</td><td>50</td>",
    ):
        assert row in html
    assert "<td>{" not in html  # no raw dict in a table cell
    assert html.count('<svg xmlns="http://www.w3.org/2000/svg" class="plot"') == 6 and "<h2>First 5 pairs</h2>" in html
    assert '<td class="num">0.900</td><td class="num">0.800</td>' in html  # an example's p_chosen and margin


def test_counts_name_each_figure_once_and_no_python_repr_reaches_a_table():
    """The first-hour walkthrough: "rankings 100" and "rankings rows 100" on one report; True, False and {} in cards."""
    from rlaif.core.figures import figure
    from rlaif.publish.report import summary_tables

    manifest = {"counts": {"in": 3, "kept": 1, "rankings": 3}, "recipe": {"name": "t"}}
    tables = {"pairs": [], "rankings": [{}] * 3, "feedback": [], "judgments": []}
    counts = dict(summary_tables(manifest, tables, {}))["Counts"]
    assert [label for label, _ in counts if "ranking" in label] == ["rankings"]
    assert (figure(True), figure(False), figure({}), figure([])) == ("yes", "no", "none", "none")
