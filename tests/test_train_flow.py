"""The Prefect training flow `rlaif-train`, run for real: 2 DPO steps of smollm2-135m on CPU on a committed
version, per-step metrics posted as artifacts (table, progress, summary, report link), the same settings
again finding the model, and a bad config failing the flow before any training."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest

from rlaif.flows.train import metrics_table
from rlaif.store.versions import commit_tables
from tests.conftest import ROOT
from tests.test_export import MANIFEST, pairwise_tables

# In a child process, so that the flow's Prefect server (flows/server.py: prefect_api, as `rlaif run`
# uses it) starts and stops there. Artifacts are read back per flow run: the database outlives runs.
FLOW_SCRIPT = """
import json, sys
from rlaif.flows.server import prefect_api
with prefect_api():
    from prefect.client.orchestration import get_client
    from prefect.client.schemas.filters import FlowRunFilter, FlowRunFilterId, LogFilter, LogFilterFlowRunId
    from prefect.logging.handlers import APILogWorker
    from rlaif.flows.train import rlaif_train
    from rlaif.core.errors import RlaifError
    store, dataset_id = sys.argv[1], sys.argv[2]
    overrides = {"max_steps": 2, "batch_size": 2, "max_length": 64, "threads": 1}
    def run(**extra):
        state = rlaif_train(store=store, dataset_id=dataset_id, algorithm="dpo", model="smollm2-135m", progress=False, return_state=True, **extra)
        APILogWorker.drain_all(timeout=30)
        run_id = state.state_details.flow_run_id
        with get_client(sync_client=True) as client:
            found = client.read_artifacts(flow_run_filter=FlowRunFilter(id=FlowRunFilterId(any_=[run_id])))
            logs = [log.message for log in client.read_logs(log_filter=LogFilter(flow_run_id=LogFilterFlowRunId(any_=[run_id])))]
        arts = {a.key: a.data for a in found if a.key}
        try:
            return {"result": state.result(), "artifacts": arts, "logs": logs}
        except RlaifError as exc:
            return {"error": f"{type(exc).__name__}: {exc}", "state": state.type.value, "artifacts": arts}
    out = {"first": run(overrides=overrides), "again": run(overrides=overrides), "bad": run(overrides={**overrides, "betaa": 0.2})}
print(json.dumps(out, default=str))
"""


@pytest.fixture
def version(tmp_path):
    store = tmp_path / "store"
    return store, commit_tables(store, "crafted", pairwise_tables(), MANIFEST)[0]


@pytest.mark.slow
def test_flow_trains_posts_per_step_metrics_and_finds_the_model_again(version):
    store, dataset_id = version
    env = {**os.environ, "RLAIF_PROGRESS": "0", "PREFECT_SERVER_ANALYTICS_ENABLED": "false", "DO_NOT_TRACK": "1"}
    env.pop("PREFECT_API_URL", None)
    child = subprocess.run(
        [sys.executable, "-c", FLOW_SCRIPT, str(store), dataset_id],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert child.returncode == 0, child.stderr[-3000:]
    out = json.loads(child.stdout.strip().splitlines()[-1])

    first, arts = out["first"]["result"], out["first"]["artifacts"]
    model_id = first["model_id"]
    assert first["existed"] is False and (store / "models" / model_id / "manifest.json").is_file()
    table = json.loads(arts["rlaif-train-metrics"])
    assert [row["step"] for row in table] == [1, 2]
    assert all(isinstance(row["loss"], float) and isinstance(row["reward_accuracy"], float) for row in table)
    logged = [json.loads(line) for line in (store / "models" / model_id / "metrics.jsonl").read_text().splitlines()]
    assert [row["loss"] for row in table] == [row["loss"] for row in logged]  # the table is the model's own log
    assert float(arts["rlaif-train-progress"]) == 100.0
    assert (
        f"| model | {model_id} |" in arts["rlaif-train-summary"]
        and f"| dataset version | {dataset_id} |" in arts["rlaif-train-summary"]
    )
    report = store / "models" / model_id / "report.html"
    assert first["report"] == str(report) and str(report) in arts["rlaif-train-summary"]
    assert "rlaif-train-report" not in arts  # a file:// link does not open from the UI (issue 26 item 3)
    assert arts["rlaif-train-summary"].count("](data:image/svg+xml;base64,") >= 2  # the plots, shown by the UI
    assert report.read_text().count('class="plot"') >= 2  # loss and reward accuracy against the step

    assert any(
        log.startswith("trained: dpo on") and log.endswith(f"model: {model_id}") for log in out["first"]["logs"]
    )
    again = out["again"]["result"]
    assert again["existed"] is True and again["model_id"] == model_id  # nothing trained the second time
    assert any(log.startswith("already trained") and model_id in log for log in out["again"]["logs"]), out["again"][
        "logs"
    ]
    assert [row["step"] for row in json.loads(out["again"]["artifacts"]["rlaif-train-metrics"])] == [1, 2]

    bad = out["bad"]
    assert (
        bad["state"] == "FAILED"
        and bad["error"].startswith("RecipeError")
        and "betaa" in bad["error"]
        and "beta" in bad["error"]
    )
    assert "rlaif-train-metrics" not in bad["artifacts"]
    assert sorted(p.name for p in (store / "models").iterdir() if not p.name.startswith(".")) == [model_id]


def test_metrics_table_puts_the_usual_columns_first_and_fills_gaps():
    rows = [{"step": 1, "loss": 0.7, "grad_norm": 3.0}, {"step": 2, "loss": 0.6, "kl": 0.01}]
    assert metrics_table(rows) == [
        {"step": 1, "loss": 0.7, "kl": None, "grad_norm": 3.0},
        {"step": 2, "loss": 0.6, "kl": 0.01, "grad_norm": None},
    ]


@pytest.mark.slow
def test_rlaif_train_prefect_runs_the_flow_and_prints_the_model_id(version):
    from tests.badinput import run_cli

    store, dataset_id = version
    result = run_cli(
        "train",
        "dpo",
        "--dataset",
        dataset_id,
        "--model",
        "smollm2-135m",
        "--max-steps",
        "1",
        "--store",
        str(store),
        "--prefect",
        env={"PREFECT_API_URL": None},  # the flow's own Prefect server
        timeout=600,
        process=True,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    model_id = result.stdout.strip().splitlines()[-1]
    folder = store / "models" / model_id
    assert (folder / "manifest.json").is_file() and (
        folder / "report.html"
    ).is_file()  # the flow's artifacts task wrote the report
    assert json.loads((folder / "manifest.json").read_text())["steps"] == 1


@pytest.mark.slow  # imports trl to know the config fields (about 10 s)
def test_rlaif_train_prefect_with_a_bad_config_fails_before_prefect_starts(version, tmp_path):
    from tests.badinput import assert_clean_failure, run_cli, write_recipe

    store, dataset_id = version
    config = write_recipe(tmp_path, {"max_steps": 1, "betta": 0.2}, "train.yaml")
    result = run_cli(
        "train",
        "dpo",
        "--dataset",
        dataset_id,
        "--model",
        "smollm2-135m",
        "--config",
        str(config),
        "--store",
        str(store),
        "--prefect",
    )
    assert_clean_failure(result, str(config), "betta", "did you mean beta", "valid fields")
    assert not (store / "models").exists() and "Prefect" not in result.stderr
