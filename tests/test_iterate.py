"""The iterative RLAIF loop (`rlaif iterate`, rlaif/loop/iterate.py, flows/iterate.py).

Fast: the early-stop rule on made-up win rates; the loop driver with fake steps (what a re-run
skips, which policy each round samples from, early stop recorded in the state); bad `iterate:`
sections failing cleanly. Slow: the real loop of recipes/iterate.yaml (with the tiny random model as
its policy and judge, tests/tiny_lm.py) through `rlaif iterate`, killed (SIGKILL) during round 2 and re-run: round 2 finishes and round 1 is not retrained; then the
Prefect flow `rlaif-iterate` on the same store, posting its per-round artifacts.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import yaml

from rlaif.judges.stats import wilson_interval
from rlaif.loop.iterate import round_recipe, run_loop
from rlaif.loop.spec import EarlyStop, load_loop, stop_reason
from tests.badinput import ENV, assert_clean_failure, run_cli, write_recipe
from tests.conftest import ROOT

RECIPE = ROOT / "recipes" / "iterate.yaml"


def figures(rate: float | None, n: int = 8) -> dict:
    return {"win_rate": rate, "win_rate_ci95": wilson_interval(rate, n), "n": n}


@pytest.mark.parametrize(
    ("rule", "rates", "stops"),
    [
        (EarlyStop(), [0.9], False),  # round 1: nothing to compare with yet
        (EarlyStop(), [0.6, 0.7], False),  # improving
        (EarlyStop(), [0.7, 0.6], True),  # worse than last round
        (EarlyStop(), [0.6, 0.6], True),  # not better
        (EarlyStop(min_delta=0.05), [0.6, 0.63], True),  # better, but by less than min_delta
        (EarlyStop(min_delta=0.05), [0.6, 0.7], False),
        (EarlyStop(rule="not_significant"), [0.6], True),  # 8 prompts: lower bound 0.31 < 0.5
        (EarlyStop(rule="not_significant"), [1.0], False),  # 8 of 8: lower bound 0.68
        (EarlyStop(rule="never"), [0.7, 0.1], False),
        (EarlyStop(rule="never"), [None], True),  # nothing judged: no evidence to go on with
        (EarlyStop(), [0.6, None], True),
    ],
)
def test_stop_reason_on_made_up_win_rates(rule, rates, stops):
    reason = stop_reason(rule, [figures(rate) for rate in rates])
    assert (reason is not None) is stops, reason


class FakeSteps:
    """run_step with fake steps: versions and models are manifest-only folders; eval gives `rates` by round."""

    def __init__(self, store: Path, rates: list[float], fail_at: tuple[str, int] | None = None) -> None:
        self.store, self.rates, self.fail_at, self.calls = Path(store), rates, fail_at, []

    def __call__(self, kind, fn, path, store, *args):
        number = (
            args[0]
            if kind == "sample"
            else int(args[0].split("-")[1][1:])
            if kind == "train"
            else self.round_of(args[0])
        )
        self.calls.append((kind, number, args[-1]))
        if self.fail_at == (kind, number):
            raise KeyboardInterrupt("killed")
        if kind == "sample":
            version = f"fake-r{number}-{number:012x}"
            (self.store / "versions" / version).mkdir(parents=True)
            (self.store / "versions" / version / "manifest.json").write_text("{}")
            return {
                "version": version,
                "created": True,
                "kept": 4,
                "in": 4,
                "calls": {"live": 1, "cached": 0, "failed": 0},
            }
        if kind == "train":
            model = f"m-r{number}-{number:012x}"
            (self.store / "models" / model).mkdir(parents=True)
            (self.store / "models" / model / "manifest.json").write_text("{}")
            return {"model": model, "existed": False, "seconds": 0.1, "metrics": {}}
        return {"model": args[0], "baseline": args[1], **figures(self.rates[number - 1]), "outcomes": []}

    @staticmethod
    def round_of(model: str) -> int:
        return int(model.split("-")[1][1:])


@pytest.fixture
def in_root(monkeypatch):
    monkeypatch.chdir(ROOT)  # the recipe's paths are relative to the project


def test_a_rerun_skips_every_finished_step_and_samples_from_the_last_model(tmp_path, in_root):
    store, lines = tmp_path / "store", []
    first = FakeSteps(store, [0.6, 0.7], fail_at=("train", 2))
    with pytest.raises(KeyboardInterrupt):
        run_loop(RECIPE, store, 2, run_step=first, echo=lines.append)
    state = json.loads(next(store.glob("loops/*/state.json")).read_text())
    assert [r["finished_at"] is not None for r in state["rounds"]] == [True, False]
    assert state["rounds"][1]["version"] == "fake-r2-000000000002" and state["rounds"][1]["model"] is None

    again = FakeSteps(store, [0.6, 0.7])
    out = run_loop(RECIPE, store, 2, run_step=again, echo=lines.append)
    assert again.calls == [
        ("train", 2, "m-r1-000000000001"),
        ("eval", 2, "m-r1-000000000001"),
    ]  # round 1 and round 2's version: skipped
    assert first.calls[0] == ("sample", 1, "smollm2-135m") and first.calls[3] == ("sample", 2, "m-r1-000000000001")
    assert out["final_model"] == "m-r2-000000000002" and out["stopped"] is None
    assert any(line.startswith("round 1: done before") and "not retrained" in line for line in lines)
    assert any(line.startswith("round 2: win rate 0.7 (95% CI 0.37-0.90)") for line in lines), lines


def test_early_stop_is_recorded_and_a_longer_rerun_does_not_go_past_it(tmp_path, in_root):
    store, lines = tmp_path / "store", []
    steps = FakeSteps(store, [0.7, 0.6, 0.9])
    out = run_loop(RECIPE, store, 3, run_step=steps, echo=lines.append)
    assert out["stopped"]["round"] == 2 and "not above the last round's 0.7" in out["stopped"]["reason"]
    assert {number for _, number, _ in steps.calls} == {1, 2} and out["final_model"] == "m-r2-000000000002"
    assert any(line.startswith("stopped early after round 2") for line in lines)
    again = FakeSteps(store, [0.7, 0.6, 0.9])
    assert run_loop(RECIPE, store, 5, run_step=again, echo=lines.append)["stopped"]["round"] == 2
    assert again.calls == []


def test_round_recipe_replaces_only_the_named_policy(in_root):
    recipe, spec = load_loop(RECIPE)
    two = recipe.model_copy(
        update={"policies": [recipe.policies[0], recipe.policies[0].model_copy(update={"name": "other"})]}
    )
    changed = round_recipe(two, spec, 3, "m-r2-000000000002")
    assert changed.name == "iterate-r3"
    assert [(p.name, p.model) for p in changed.policies] == [
        ("smollm2", "m-r2-000000000002"),
        ("other", "smollm2-135m"),
    ]
    assert changed.judge == recipe.judge and changed.filters == recipe.filters


def _loop_recipe(**iterate) -> dict:
    data = yaml.safe_load(RECIPE.read_text())
    data["iterate"].update(iterate)
    return data


@pytest.mark.parametrize(
    ("change", "needles"),
    [
        ({"roundz": 2}, ["iterate.roundz", "unknown key", "rounds"]),
        ({"policy": "nobody"}, ["iterate.policy", "nobody", "smollm2"]),
        ({"algorithm": "dpoo"}, ["iterate.algorithm", "dpo"]),
        ({"eval": {"prompts": "no/such/heldout.jsonl"}}, ["no/such/heldout.jsonl", "iterate.eval.prompts"]),
        ({"train": {"max_steps": 2, "betaa": 0.1}}, ["iterate.train.betaa", "unknown field", "beta"]),
        ({"early_stop": {"rule": "sometimes"}}, ["iterate.early_stop.rule", "not_improving"]),
        ({"config": "no/such/train.yaml"}, ["iterate.config", "no such training config file: no/such/train.yaml"]),
        ({"config": "recipes"}, ["iterate.config", "is a folder, not a training config file: recipes"]),
    ],
)
def test_a_bad_iterate_section_fails_cleanly_before_anything_is_written(tmp_path, change, needles):
    recipe = write_recipe(tmp_path, _loop_recipe(**change))
    store = tmp_path / "store"
    result = run_cli("iterate", str(recipe), "--rounds", "1", "--no-prefect", "--store", str(store))
    assert_clean_failure(result, *needles, store=store)


def test_a_recipe_without_an_iterate_section_is_refused(tmp_path):
    data = yaml.safe_load(RECIPE.read_text())
    del data["iterate"]
    result = run_cli("iterate", str(write_recipe(tmp_path, data)), "--store", str(tmp_path / "store"))
    assert_clean_failure(result, "iterate", "recipes/iterate.yaml", store=tmp_path / "store")


# ---- the real loop, on the tiny model ---------------------------------------------------------------


def _state(store: Path) -> dict | None:
    found = list(store.glob("loops/*/state.json"))
    return json.loads(found[0].read_text()) if found else None


def _kill_in_round_2(recipe: Path, store: Path) -> float:
    """Start the loop, SIGKILL it as soon as its state shows round 2 started; seconds it ran."""
    started = time.perf_counter()
    command = [
        sys.executable,
        "-m",
        "rlaif.cli",
        "iterate",
        str(recipe),
        "--rounds",
        "2",
        "--no-prefect",
        "--store",
        str(store),
    ]
    child = subprocess.Popen(
        command, cwd=ROOT, env=ENV, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, start_new_session=True
    )
    try:
        while time.perf_counter() - started < 900:
            state = _state(store)
            if state and len(state["rounds"]) == 2:
                break
            assert child.poll() is None, child.stdout.read().decode()[-3000:]
            time.sleep(0.2)
        else:
            pytest.fail("round 2 never started")
        assert state["rounds"][0]["finished_at"] and state["rounds"][1]["finished_at"] is None
        os.kill(child.pid, signal.SIGKILL)
        child.wait(30)
    finally:
        if child.poll() is None:
            os.kill(child.pid, signal.SIGKILL)
        child.stdout.close()
    return time.perf_counter() - started


@pytest.fixture(scope="module")
def loop_recipe(tiny_model, tmp_path_factory) -> Path:
    """recipes/iterate.yaml as shipped, with the tiny random model (tests/tiny_lm.py) as its policy and judge:
    what these tests check (a kill, a resume that reuses round 1, the rounds' lineage, the flow's tasks) does
    not depend on what the model says, and its steps take a second where smollm2-135m's take minutes."""
    data = yaml.safe_load(RECIPE.read_text())
    data["policies"][0]["model"] = data["judge"]["model"] = tiny_model
    path = tmp_path_factory.mktemp("loop") / "iterate.yaml"
    path.write_text(yaml.safe_dump(data, sort_keys=False))
    return path


@pytest.fixture(scope="module")
def killed_and_resumed(loop_recipe, tmp_path_factory):
    """The loop killed during round 2, then re-run to the end (shared by the slow tests below)."""
    store = tmp_path_factory.mktemp("iterate") / "store"
    killed_after = _kill_in_round_2(loop_recipe, store)
    round_1 = _state(store)["rounds"][0]
    folder = store / "models" / round_1["model"]
    before = (folder.stat().st_ino, (folder / "manifest.json").stat().st_mtime_ns)
    started = time.perf_counter()
    resumed = run_cli(
        "iterate", str(loop_recipe), "--rounds", "2", "--no-prefect", "--store", str(store), timeout=900, process=True
    )
    seconds = time.perf_counter() - started
    print(f"\nkilled in round 2 after {killed_after:.1f} s; the re-run took {seconds:.1f} s")
    return {
        "store": store,
        "recipe": loop_recipe,
        "resumed": resumed,
        "round_1": round_1,
        "before": before,
        "folder": folder,
    }


@pytest.mark.slow
def test_killed_in_round_2_the_rerun_finishes_without_retraining_round_1(killed_and_resumed):
    out = killed_and_resumed
    resumed, store, folder = out["resumed"], out["store"], out["folder"]
    assert resumed.returncode == 0, resumed.stderr[-3000:]
    lines = resumed.stdout.splitlines()
    assert any(
        line.startswith(
            f"round 1: done before (version {out['round_1']['version']}, model {out['round_1']['model']}: reused, not retrained"
        )
        for line in lines
    ), lines
    for number in (1, 2):  # each round's win rate with its interval
        assert any(
            line.startswith(f"round {number}: win rate ") and "(95% CI " in line and "held-out prompts" in line
            for line in lines
        ), lines
    assert not any(line.startswith("round 1: model") for line in lines)  # no train step of round 1 at all
    assert (folder.stat().st_ino, (folder / "manifest.json").stat().st_mtime_ns) == out["before"]
    models = sorted(p.name for p in (store / "models").iterdir() if not p.name.startswith("."))
    state = _state(store)
    assert [r["model"] for r in state["rounds"]] == models or sorted(r["model"] for r in state["rounds"]) == models
    assert len(models) == 2 and all(r["finished_at"] for r in state["rounds"])
    assert state["rounds"][1]["policy"] == out["round_1"]["model"]  # round 2 sampled from round 1's model
    assert state["rounds"][1]["eval"]["baseline"] == out["round_1"]["model"]
    lineage = run_cli("datasets", "lineage", state["rounds"][1]["version"], "--json", "--store", str(store))
    assert (
        out["round_1"]["model"] in lineage.stdout and out["round_1"]["version"] in lineage.stdout
    )  # version 2 -> model 1 -> version 1


FLOW_SCRIPT = """
import json, sys
from rlaif.flows.server import prefect_api
with prefect_api():
    from prefect.client.orchestration import get_client
    from prefect.client.schemas.filters import FlowRunFilter, FlowRunFilterId
    from rlaif.flows.iterate import rlaif_iterate
    state = rlaif_iterate(recipe_path=sys.argv[1], store=sys.argv[2], rounds=2, return_state=True)
    with get_client(sync_client=True) as client:
        found = client.read_artifacts(flow_run_filter=FlowRunFilter(id=FlowRunFilterId(any_=[state.state_details.flow_run_id])))
        tasks = client.read_task_runs(flow_run_filter=FlowRunFilter(id=FlowRunFilterId(any_=[state.state_details.flow_run_id])))
    result = state.result()
print(json.dumps({"final": result["final_model"], "artifacts": {a.key: a.data for a in found if a.key}, "tasks": sorted(t.name for t in tasks)}, default=str))
"""


@pytest.mark.slow
def test_the_prefect_flow_reruns_a_lost_step_as_a_task_and_posts_each_round(killed_and_resumed):
    store = killed_and_resumed["store"]
    state_file = next(store.glob("loops/*/state.json"))
    state = json.loads(state_file.read_text())
    state["rounds"][1]["eval"] = state["rounds"][1]["finished_at"] = None  # as if killed before round 2's evaluation
    state_file.write_text(json.dumps(state))
    env = {**ENV}
    env.pop("PREFECT_API_URL", None)
    child = subprocess.run(
        [sys.executable, "-c", FLOW_SCRIPT, str(killed_and_resumed["recipe"]), str(store)],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=900,
    )
    assert child.returncode == 0, child.stderr[-3000:]
    out = json.loads(child.stdout.strip().splitlines()[-1])
    assert out["final"] == state["rounds"][1]["model"]
    assert [name.split("-")[:2] for name in out["tasks"]] == [["iterate", "eval"]]  # only the lost step ran
    assert {"rlaif-iterate-round-1", "rlaif-iterate-round-2", "rlaif-iterate-rounds"} <= set(out["artifacts"])
    assert (
        "win rate" in out["artifacts"]["rlaif-iterate-round-2"]
        and "95% CI" in out["artifacts"]["rlaif-iterate-round-2"]
    )
    assert json.loads(state_file.read_text())["rounds"][1]["eval"]["win_rate"] is not None
    lines = (child.stdout + child.stderr).splitlines()
    said = [line for line in lines if "round 2: win rate" in line and not line.startswith("{")]  # not the JSON result
    assert len(said) == 1, said  # issue 26 item 11: once, not twice (a print besides the flow run's log)
