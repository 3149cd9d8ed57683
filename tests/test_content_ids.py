"""Version ids hash content only: the same recipe with the same outputs gets the same id in any
store, whatever the run's timings; the timings go to the manifest's `run` section."""

from __future__ import annotations

import json

import pyarrow.parquet as pq
import pytest

from rlaif.config.recipe import parse_recipe
from rlaif.pipeline.runner import run_recipe
from rlaif.store.versions import load_manifest, versions_dir
from tests.conftest import ROOT, write_prompts
from tests.det_server import DetServer


def api_recipe(tmp_path, base_url: str) -> object:
    prompts = write_prompts(tmp_path / "prompts.jsonl", [f"Question number {i}: what is {i} + {i}?" for i in range(6)])
    endpoint = {"backend": "openai", "base_url": base_url, "model": "det"}
    return parse_recipe(
        {
            "name": "ids",
            "prompts": {"path": str(prompts)},
            "policies": [
                {"name": n, **endpoint, "params": {"temperature": t, "max_tokens": 16}}
                for n, t in (("cold", 0.1), ("hot", 0.9))
            ],
            "samples_per_prompt": 1,
            "judge": endpoint,
            "filters": {"consistency": False, "min_margin": 0.0},
        }
    )


def test_two_fresh_stores_give_the_same_id_and_timings_stay_out_of_the_rows(tmp_path):
    with DetServer() as server:
        recipe = api_recipe(tmp_path, server.base_url)
        first, created_a, manifest, _ = run_recipe(recipe, tmp_path / "a")
        second, created_b, _, _ = run_recipe(recipe, tmp_path / "b")
    assert created_a and created_b and first == second
    columns = pq.read_schema(versions_dir(tmp_path / "a") / first / "generations.parquet").names
    assert "latency_s" not in columns and "text" in columns
    run = load_manifest(tmp_path / "a", first)["run"]
    assert manifest["calls"]["live"] == 6 * 2 + 6 * 2
    assert run["wall_s"] > 0 and run["live_latency_s"] > 0 and run["mean_live_latency_s"] > 0


@pytest.mark.slow
def test_real_model_into_two_fresh_stores_gives_the_same_id(tmp_path):
    prompts = write_prompts(tmp_path / "prompts.jsonl", ["Say hi.", "Name a colour."])
    recipe = parse_recipe(
        {
            "name": "ids-real",
            "prompts": {"path": str(prompts)},
            "policies": [
                {"name": "smol", "model": "smollm2-135m", "params": {"temperature": 1.0, "max_tokens": 12, "seed": 5}}
            ],
            "samples_per_prompt": 2,
            "judge": {"model": "smollm2-135m", "template": str(ROOT / "rlaif/judges/prompts/pairwise_judge.j2")},
            "filters": {"drop_truncated": False},  # judge every pair, so that both stages are compared
        }
    )
    first, _, _, _ = run_recipe(recipe, tmp_path / "a")
    second, created, _, _ = run_recipe(recipe, tmp_path / "b")
    assert created and first == second
    manifest = json.loads((versions_dir(tmp_path / "b") / second / "manifest.json").read_text())
    assert manifest["calls"]["live"] == 2 * 2 + 2 * 2 and manifest["run"]["live_latency_s"] > 0


@pytest.mark.slow
def test_torch_threads_change_speed_not_the_id(tmp_path):
    """`threads` (torch's CPU threads) is how fast, not what: 1 and 2 threads give the same generations and id."""
    prompts = write_prompts(tmp_path / "prompts.jsonl", ["Say hi.", "Name a colour."])

    def with_threads(threads: int):
        model = {"model": "smollm2-135m", "threads": threads}
        return parse_recipe(
            {
                "name": "ids-threads",
                "prompts": {"path": str(prompts)},
                "policies": [{"name": "smol", **model, "params": {"temperature": 1.0, "max_tokens": 12, "seed": 5}}],
                "samples_per_prompt": 2,
                "judge": {**model, "template": str(ROOT / "rlaif/judges/prompts/pairwise_judge.j2")},
                "filters": {"drop_truncated": False},
            }
        )

    one, _, _, _ = run_recipe(with_threads(1), tmp_path / "a")
    two, created, manifest, _ = run_recipe(with_threads(2), tmp_path / "b")
    assert created and manifest["calls"]["live"] == 2 * 2 + 2 * 2  # the second store computed every call anew
    assert one == two and manifest["recipe"]["judge"]["threads"] == 2  # recorded, left out of the id


def test_delivery_settings_stay_out_of_the_id_and_outputs_settings_stay_in(tmp_path):
    """Retry passes, allow_incomplete, the store folder and an endpoint's concurrency / timeout /
    client retries change how calls are delivered, not what they return: same id. A sampling
    parameter is content: another id."""
    with DetServer() as server:
        recipe = api_recipe(tmp_path, server.base_url)
        delivered = recipe.model_copy(
            update={
                "retries": recipe.retries.model_copy(update={"passes": 7}),
                "allow_incomplete": True,
                "store": str(tmp_path / "elsewhere"),
                "judge": recipe.judge.model_copy(update={"max_concurrency": 3, "timeout_s": 5.0, "max_retries": 0}),
            }
        )
        hotter = recipe.model_copy(
            update={
                "policies": [
                    recipe.policies[0],
                    recipe.policies[1].model_copy(
                        update={"params": recipe.policies[1].params.model_copy(update={"temperature": 0.8})}
                    ),
                ]
            }
        )
        base, _, _, _ = run_recipe(recipe, tmp_path / "a")
        same, _, manifest, _ = run_recipe(delivered, tmp_path / "b")
        other, _, _, _ = run_recipe(hotter, tmp_path / "c")
    assert same == base and other != base
    assert manifest["recipe"]["retries"]["passes"] == 7  # still recorded, only left out of the hash
