"""The shipped training recipes (recipes/train/ALG.yaml) and the accelerate config (recipes/accelerate/):
each validates strictly, builds its algorithm's config class, is documented, and a misspelt field in
it is an error naming the file, the field and the valid fields. The 2-process CPU training is slow."""

from __future__ import annotations

import dataclasses
import os
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from rlaif.core.errors import RecipeError
from rlaif.training import ALGORITHMS
from rlaif.training.config import CONFIG_CLASSES, config_class, device_defaults, load_settings
from tests.conftest import ROOT

RECIPES = ROOT / "recipes" / "train"
ACCELERATE = ROOT / "recipes" / "accelerate"
ONLINE = ("ppo", "rloo", "grpo")
MISSPELT = {
    "sft": "packin",
    "rm": "center_reward_coefficient",
    "dpo": "betta",
    "kto": "desirable_weigth",
    "ppo": "kl_coeff",
    "rloo": "num_generation",
    "grpo": "num_generation",
    "rrhf": "sft_weigth",
}


@pytest.mark.parametrize("algorithm", ALGORITHMS)
def test_recipe_validates_and_builds_the_algorithms_config(algorithm, tmp_path):
    path = RECIPES / f"{algorithm}.yaml"
    settings = load_settings(algorithm, path)
    assert settings.algorithm == algorithm and settings.max_steps and settings.options, (
        "a recipe sets the steps and some of the config class's own fields"
    )
    cls = config_class(algorithm)
    if CONFIG_CLASSES[algorithm].startswith("trl:"):  # the TRL config accepts the values, not only the names
        config = cls(
            output_dir=str(tmp_path), **{**device_defaults("cpu"), "max_steps": settings.max_steps, **settings.options}
        )
    else:
        config = cls(**settings.options)
    for key, value in settings.options.items():
        assert getattr(config, key) == value, key
    if algorithm in ONLINE:
        assert settings.reward is not None and (ROOT / settings.reward.judge).is_file(), (
            "an RL recipe names a reward that exists"
        )
    assert f"rlaif train {algorithm} --dataset ID" in path.read_text(), "the recipe says how to run it"


@pytest.mark.parametrize("algorithm", ALGORITHMS)
def test_a_misspelt_field_names_the_file_the_field_and_the_valid_ones(algorithm, tmp_path):
    raw = yaml.safe_load((RECIPES / f"{algorithm}.yaml").read_text())
    raw[MISSPELT[algorithm]] = 1
    path = tmp_path / f"{algorithm}.yaml"
    path.write_text(yaml.safe_dump(raw))
    with pytest.raises(RecipeError) as caught:
        load_settings(algorithm, path)
    message = str(caught.value)
    assert (
        str(path) in message
        and MISSPELT[algorithm] in message
        and "valid fields" in message
        and CONFIG_CLASSES[algorithm].split(":")[1] in message
    )


def test_every_recipe_is_named_in_the_docs():
    docs = (ROOT / "docs" / "training.md").read_text()
    for algorithm in ALGORITHMS:
        assert f"recipes/train/{algorithm}.yaml" in docs, algorithm
    assert "recipes/accelerate/multi_gpu.yaml" in docs


def test_accelerate_multi_gpu_config_loads():
    from accelerate.commands.config.config_args import load_config_from_file

    config = load_config_from_file(str(ACCELERATE / "multi_gpu.yaml"))
    assert (
        config.distributed_type.value == "MULTI_GPU"
        and config.use_cpu is False
        and config.num_processes == 2
        and config.mixed_precision == "bf16"
    )
    fields = {f.name for f in dataclasses.fields(type(config))}
    assert set(yaml.safe_load((ACCELERATE / "multi_gpu.yaml").read_text())) <= fields, "no key accelerate ignores"


def launch(store: Path, dataset_id: str, model: str, *extra: str) -> subprocess.CompletedProcess:
    """`torchrun --standalone --nproc_per_node 2 -m rlaif.cli train dpo ...`: the launcher `accelerate launch
    --multi_gpu` runs (torch.distributed.run), here on CPU with gloo. (`accelerate launch` itself starts
    several CPU processes only through mpirun, which this machine does not have.)"""
    env = {
        **os.environ,
        "RLAIF_PROGRESS": "0",
        "OMP_NUM_THREADS": "1",
        "PREFECT_SERVER_ANALYTICS_ENABLED": "false",
        "DO_NOT_TRACK": "1",
    }
    argv = [
        sys.executable,
        "-m",
        "torch.distributed.run",
        "--standalone",
        "--nproc_per_node",
        "2",
        "-m",
        "rlaif.cli",
        "train",
        "dpo",
        "--dataset",
        dataset_id,
        "--model",
        model,
        "--max-steps",
        "1",
        "--store",
        str(store),
        *extra,
    ]
    return subprocess.run(argv, cwd=ROOT, env=env, capture_output=True, text=True, timeout=900)


@pytest.mark.slow
def test_two_cpu_processes_train_one_step_and_only_one_model_is_committed(tmp_path, tiny_model):
    """Data parallel on CPU (DDP, gloo): both processes train, only rank 0 commits; no work folder is left.
    The tiny random llama (a local model folder as --model): the processes and the commit are under test."""
    from rlaif.store.models import list_models
    from rlaif.store.versions import commit_tables
    from tests.test_export import MANIFEST, pairwise_tables

    store = tmp_path / "store"
    dataset_id = commit_tables(store, "crafted", pairwise_tables(), MANIFEST)[0]
    result = launch(store, dataset_id, tiny_model)
    assert result.returncode == 0, (result.stdout + result.stderr)[-4000:]
    models = list_models(store)
    assert len(models) == 1 and models[0]["steps"] == 1 and "broken" not in models[0]
    assert not [p.name for p in (store / "models").iterdir() if p.name.startswith(".tmp-") and p.is_dir()], (
        "a work folder was left behind"
    )
    assert result.stdout.count(models[0]["id"]) == 2  # each rank prints the id of the one model
    assert result.stderr.count("trained dpo in") == 2, "two processes trained"
