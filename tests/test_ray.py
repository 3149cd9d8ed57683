"""Sharded runs on a real local Ray cluster (`execution: {engine: ray}`, rlaif/pipeline/executors_ray.py):
the same version id as the run in one process (the real tiny model, and llm-katan as policy and
judge), the shard request caches merged into the store's cache, and bad settings as clean errors."""

from __future__ import annotations

import sys

import pytest

from rlaif.calls.shard_cache import shard_folder
from rlaif.config.recipe import parse_recipe
from rlaif.core.errors import RecipeError
from rlaif.core.processes import free_port
from rlaif.pipeline.runner import run_recipe
from tests import servers
from tests.badinput import GOOD, assert_clean_failure, run_cli, write_recipe
from tests.conftest import write_prompts
from tests.servers import start_llm_katan

ray = pytest.importorskip("ray")
RAY = {"engine": "ray", "shards": 2}


@pytest.fixture(scope="module")
def cluster():
    """One local Ray instance with 2 worker slots for the module; every sharded run here joins it."""
    ray.init(num_cpus=2, include_dashboard=False, logging_level="WARNING")
    yield
    ray.shutdown()


# llm-katan's echo names the current time in each answer: its clock is frozen here (the real server
# otherwise), so that two runs get the same answers and the version ids can be compared.
FROZEN = (
    "import datetime, sys\n"
    "class Frozen(datetime.datetime):\n"
    "    @classmethod\n"
    "    def now(cls, tz=None):\n"
    "        return cls(2026, 1, 1, tzinfo=tz)\n"
    "datetime.datetime = Frozen\n"
    "from llm_katan.cli import main\n"
    "main()\n"
)


@pytest.fixture(scope="module")
def katan():
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(servers, "llm_katan_command", lambda: [sys.executable, "-c", FROZEN])
        with start_llm_katan("--max-concurrent", "64") as server:
            yield server


def katan_recipe(tmp_path, server, execution=None) -> object:
    prompts = write_prompts(tmp_path / "prompts.jsonl", [f"Question {i}: what is {i} times {i}?" for i in range(9)])
    endpoint = {"backend": "openai", "base_url": server.base_url, "model": server.model}
    return parse_recipe(
        {
            "name": "ray-api",
            "prompts": {"path": str(prompts)},
            # the echo names temperature and max_tokens: the two policies answer differently, so every pair is judged
            "policies": [
                {"name": n, **endpoint, "params": {"temperature": t, "max_tokens": 16, "seed": 1}}
                for n, t in (("a", 0.2), ("b", 0.9))
            ],
            "samples_per_prompt": 1,
            "judge": endpoint,  # no logprobs: verdicts parsed from the (echoed) text, or failures counted; deterministic either way
            "min_verdict_share": 0,  # an echo judge: commit its failures as judge_failed
            "filters": {"consistency": False, "min_margin": 0.0, "drop_truncated": False},
            **({"execution": execution} if execution else {}),
        }
    )


@pytest.mark.slow
def test_two_shards_of_the_real_model_give_the_single_process_version(tmp_path, cluster):
    prompts = write_prompts(tmp_path / "prompts.jsonl", ["Say hi.", "Name a colour."])
    data = {
        "name": "ray-real",
        "prompts": {"path": str(prompts)},
        # batch_size = samples_per_prompt: a batch is one prompt's samples in any chunking (the backend seeds per batch)
        "policies": [
            {
                "name": "smol",
                "model": "smollm2-135m",
                "threads": 1,
                "batch_size": 2,
                "params": {"temperature": 1.0, "max_tokens": 10, "seed": 5},
            }
        ],
        "samples_per_prompt": 2,
        "judge": {"model": "smollm2-135m", "threads": 1, "batch_size": 1},
        "filters": {"drop_truncated": False},  # judge every pair, so that both stages are compared
    }
    single, _, manifest, _ = run_recipe(parse_recipe(data), tmp_path / "one")
    sharded, created, sharded_manifest, run = run_recipe(parse_recipe({**data, "execution": RAY}), tmp_path / "ray")
    assert created and run.chunks == 2 and sharded == single
    assert sharded_manifest["calls"] == manifest["calls"] == {"live": 8, "cached": 0, "failed": 0}
    assert sharded_manifest["recipe"]["execution"]["engine"] == "ray"  # kept in the manifest, out of the id


@pytest.mark.slow
def test_two_shards_on_an_api_give_the_single_process_version(tmp_path, cluster, katan):
    single, _, manifest, _ = run_recipe(katan_recipe(tmp_path, katan), tmp_path / "one")
    sharded, _, sharded_manifest, run = run_recipe(katan_recipe(tmp_path, katan, RAY), tmp_path / "ray")
    assert run.chunks == 2 and sharded == single
    assert sharded_manifest["calls"] == manifest["calls"] and manifest["calls"]["live"] >= 9 * 2
    assert sharded_manifest["cost"]["tokens"] == manifest["cost"]["tokens"]  # the workers' token ledgers are the run's


@pytest.mark.slow
def test_api_sampling_and_a_local_judge_run_on_workers_of_their_own_stage(
    tmp_path, cluster, katan, monkeypatch, tiny_model
):
    """Per-stage resources: the API policies' steps go to CPU-only workers, the local judge's to the local-engine
    workers. The local judge is the tiny random model (tests/tiny_lm.py): where a step runs does not depend on
    what the model says, and the real 135M's judging of the server's long answers took minutes here."""
    from rlaif.pipeline import executors_ray

    seen = []
    started = executors_ray.start_workers
    monkeypatch.setattr(executors_ray, "start_workers", lambda *args: seen.append(args[3]) or started(*args))
    local_judge = {"model": tiny_model, "threads": 1, "batch_size": 1}
    recipe = katan_recipe(tmp_path, katan).model_dump(mode="json", exclude_unset=True) | {"judge": local_judge}
    single, _, manifest, _ = run_recipe(parse_recipe(recipe), tmp_path / "one")
    sharded, _, sharded_manifest, run = run_recipe(
        parse_recipe({**recipe, "execution": {**RAY, "num_cpus": 0.5}}), tmp_path / "ray"
    )
    assert seen == [["api", "local"]]
    assert run.chunks == 2 and sharded == single and sharded_manifest["calls"] == manifest["calls"]


def test_each_step_goes_to_the_workers_of_its_stage():
    from rlaif.pipeline.executors_ray import step_group

    recipe = parse_recipe(
        {
            **GOOD,
            "policies": [
                {"name": "api", "backend": "openai", "base_url": "http://127.0.0.1:1/v1", "model": "m"},
                {"name": "local", "model": "smollm2-135m"},
            ],
        }
    )
    assert [step_group(recipe, "sample", i) for i in (0, 1)] == ["api", "local"]
    assert step_group(recipe, "judge") == "local"  # the default judge: the built-in model


@pytest.mark.slow
def test_shard_caches_are_merged_so_a_second_run_makes_no_live_call(tmp_path, cluster, katan):
    from rlaif.calls.cache import CallCache

    recipe, store = katan_recipe(tmp_path, katan, {**RAY, "shards": 3, "num_cpus": 0.5}), tmp_path / "store"
    first, _, manifest, run = run_recipe(recipe, store)
    live = manifest["calls"]["live"]
    assert run.chunks == 3 and live >= 9 * 2
    assert list(shard_folder(store).glob("*")) == []  # merged into cache.sqlite, then removed
    cache = CallCache(store / "cache.sqlite")
    assert len(cache) == live
    cache.close()
    second, created, again, _ = run_recipe(recipe, store)
    assert (second, created) == (first, False)
    assert again["calls"] == {"live": 0, "cached": live, "failed": manifest["calls"]["failed"]}


@pytest.mark.slow
def test_a_failed_shard_stops_the_run_cleanly_and_keeps_its_finished_calls(tmp_path, cluster):
    from rlaif.calls.cache import CallCache
    from rlaif.core.errors import RunIncomplete

    with start_llm_katan("--error-rate", "0.4", "--max-concurrent", "64") as flaky:
        data = katan_recipe(tmp_path, flaky, RAY).model_dump(mode="json", exclude_unset=True)
        for spec in (*data["policies"], data["judge"]):
            spec["max_retries"] = 0  # no client retries: the failures stay
        with pytest.raises(RunIncomplete) as caught:
            run_recipe(parse_recipe({**data, "retries": {"passes": 1}}), tmp_path / "store")
    assert "still failed with transient errors" in str(caught.value) and "Traceback" not in str(caught.value)
    assert list(shard_folder(tmp_path / "store").glob("*")) == []  # merged on the way out: a re-run resumes from them
    cache = CallCache(tmp_path / "store" / "cache.sqlite")
    assert len(cache) > 0
    cache.close()


@pytest.mark.parametrize(
    ("execution", "needle"),
    [
        ({"engine": "spark"}, "execution.engine"),
        ({"engine": "ray", "shards": 0}, "execution.shards"),
        ({"engine": "ray", "shard": 2}, "execution.shard"),
        ({"shards": 2}, "engine: ray"),
        ({"engine": "ray", "num_gpus": -1}, "execution.num_gpus"),
    ],
)
def test_bad_execution_settings_are_recipe_errors(execution, needle):
    with pytest.raises(RecipeError) as caught:
        parse_recipe({**GOOD, "execution": execution}, "r.yaml")
    assert needle in str(caught.value) and str(caught.value).startswith("r.yaml: execution")


def test_execution_is_a_delivery_setting_out_of_the_version_id():
    from rlaif.store.versions import hashed_recipe

    local, sharded = (parse_recipe({**GOOD, **extra}).model_dump(mode="json") for extra in ({}, {"execution": RAY}))
    assert local != sharded and hashed_recipe(local) == hashed_recipe(sharded)


@pytest.mark.slow
def test_cli_errors_for_an_unreachable_cluster_and_a_bad_setting(tmp_path):
    recipe, store = write_recipe(tmp_path, GOOD), tmp_path / "store"
    address = f"127.0.0.1:{free_port()}"
    # in a process: the check imports Ray and connects to the address
    result = run_cli(
        "run", str(recipe), "--store", str(store), "--no-prefect", "--ray", address, timeout=120, process=True
    )
    assert_clean_failure(result, f"cannot reach the Ray cluster at '{address}'", "ray start --head", store=store)
    budgeted = write_recipe(tmp_path, {**GOOD, "budget": {"max_tokens": 100}, "execution": RAY}, "budgeted.yaml")
    assert_clean_failure(
        run_cli("run", str(budgeted), "--store", str(store), "--no-prefect"), "budget", "engine: local", store=store
    )
    bad = write_recipe(tmp_path, {**GOOD, "execution": {"engine": "ray", "shards": "many"}}, "bad.yaml")
    assert_clean_failure(run_cli("run", str(bad), "--store", str(store)), "bad.yaml: execution.shards", store=store)
