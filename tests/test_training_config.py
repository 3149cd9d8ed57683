"""Training settings: strict YAML, TRL config fields passed through, device defaults, the model id key."""

from __future__ import annotations

import importlib.util

import pytest
import yaml

from rlaif.errors import RecipeError
from rlaif.training.config import device_defaults, load_settings, lora_config

pytest.importorskip("trl")


def write(tmp_path, data, name="train.yaml"):
    path = tmp_path / name
    path.write_text(data if isinstance(data, str) else yaml.safe_dump(data))
    return path


def test_yaml_fields_and_trl_options_are_split(tmp_path):
    path = write(tmp_path, {"max_steps": 3, "lora": True, "soft_labels": "smoothing", "beta": 0.05, "options": {"warmup_steps": 1}})
    settings = load_settings("dpo", path)
    assert (settings.max_steps, settings.lora, settings.soft_labels) == (3, True, "smoothing")
    assert settings.options == {"warmup_steps": 1, "beta": 0.05}


def test_overrides_win_over_the_file_and_none_is_ignored(tmp_path):
    path = write(tmp_path, {"max_steps": 3, "batch_size": 4})
    settings = load_settings("sft", path, max_steps=7, lora=None)
    assert (settings.max_steps, settings.batch_size, settings.lora) == (7, 4, False)


@pytest.mark.parametrize(
    ("algorithm", "key", "needles"),
    [
        ("dpo", "betta", ["betta", "did you mean beta", "max_steps", "soft_labels", "trl.DPOConfig"]),
        ("sft", "beta", ["beta", "trl.SFTConfig"]),  # a DPO field is not an SFT field
        ("grpo", "num_generation", ["num_generation", "num_generations", "trl.GRPOConfig"]),
        ("rm", "output_dir", ["output_dir", "set by rlaif"]),
    ],
)
def test_an_unknown_field_names_the_file_the_field_and_the_valid_fields(tmp_path, algorithm, key, needles):
    path = write(tmp_path, {key: 1})
    with pytest.raises(RecipeError) as caught:
        load_settings(algorithm, path)
    message = str(caught.value)
    assert str(path) in message
    for needle in needles:
        assert needle in message, message


@pytest.mark.parametrize(
    ("data", "needles"),
    [
        ({"max_steps": "many"}, ["max_steps", "integer"]),
        ({"max_steps": 0}, ["max_steps", "greater than or equal to 1"]),
        ({"soft_labels": "cross_entropy"}, ["soft_labels", "dpo: smoothing, weighting"]),  # an rm mode on dpo
        ({"reward": {"model": "x"}}, ["reward applies to ppo"]),
        ({"algorithm": "sft"}, ["algorithm", "'sft'", "rlaif train sft"]),
        ("- a\n- b\n", ["a mapping of fields"]),
        ("max_steps: [1\n", ["not valid YAML"]),
    ],
)
def test_bad_values_are_errors_naming_the_field(tmp_path, data, needles):
    path = write(tmp_path, data)
    with pytest.raises(RecipeError) as caught:
        load_settings("dpo", path)
    for needle in [str(path), *needles]:
        assert needle in str(caught.value), str(caught.value)


def test_reward_needs_exactly_one_source(tmp_path):
    with pytest.raises(RecipeError, match="exactly one"):
        load_settings("grpo", write(tmp_path, {"reward": {"model": "a", "judge": "b.yaml"}}))
    assert load_settings("grpo", write(tmp_path, {"reward": {"judge": "r.yaml"}})).reward.judge == "r.yaml"


def test_unknown_algorithm_and_missing_file(tmp_path):
    with pytest.raises(RecipeError, match="use one of: sft, rm, dpo"):
        load_settings("ppo2")
    with pytest.raises(RecipeError, match="no such training config file"):
        load_settings("dpo", tmp_path / "missing.yaml")


@pytest.mark.skipif(importlib.util.find_spec("rlaif.training.ppo") is None, reason="rlaif.training.ppo not written yet")
def test_ppo_fields_come_from_rlaif_ppo_config(tmp_path):
    import dataclasses

    from rlaif.training.config import TrainSettings
    from rlaif.training.ppo import PPOConfig

    field = next(f for f in dataclasses.fields(PPOConfig) if f.name not in TrainSettings.model_fields and f.default is not dataclasses.MISSING)
    assert load_settings("ppo", write(tmp_path, {field.name: field.default})).options == {field.name: field.default}
    with pytest.raises(RecipeError, match="rlaif.training.ppo.PPOConfig"):
        load_settings("ppo", write(tmp_path, {"no_such_ppo_field": 1}))


def test_device_defaults():
    cpu, cuda = device_defaults("cpu"), device_defaults("cuda")
    assert (cpu["bf16"], cpu["gradient_checkpointing"], cpu["report_to"], cpu["save_strategy"]) == (False, False, [], "no")
    assert (cuda["bf16"], cuda["gradient_checkpointing"]) == (True, True)


def test_lora_config_targets_llama_projections():
    assert lora_config(load_settings("dpo")) is None
    config = lora_config(load_settings("dpo", lora=True, lora_r=4))
    assert config.r == 4 and {"q_proj", "v_proj", "down_proj"} <= set(config.target_modules)
    assert lora_config(load_settings("rm", lora=True), "SEQ_CLS").modules_to_save == ["score"]


def test_model_id_key_follows_the_settings_but_not_the_threads():
    from rlaif.store.model_store import model_id_for
    from rlaif.training.driver import default_name, model_key

    def model_id(**overrides):
        return model_id_for(default_name("demo-0123456789ab", "dpo"), model_key("demo-0123456789ab", "dpo", "smollm2-135m", load_settings("dpo", **overrides)))

    assert model_id(max_steps=2).startswith("demo-dpo-")
    assert model_id(max_steps=2) == model_id(max_steps=2, threads=3)
    assert model_id(max_steps=2) != model_id(max_steps=3) != model_id(max_steps=2, beta=0.2)
