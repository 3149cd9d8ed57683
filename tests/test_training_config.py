"""Training settings: strict YAML, TRL config fields passed through, device defaults, the model id key."""

from __future__ import annotations

import importlib.util

import pytest
import yaml

from rlaif.core.errors import RecipeError
from rlaif.training.config import device_defaults, load_settings, lora_config

pytest.importorskip("trl")


def write(tmp_path, data, name="train.yaml"):
    path = tmp_path / name
    path.write_text(data if isinstance(data, str) else yaml.safe_dump(data))
    return path


def test_yaml_fields_and_trl_options_are_split(tmp_path):
    path = write(
        tmp_path,
        {"max_steps": 3, "lora": True, "soft_labels": "smoothing", "beta": 0.05, "options": {"warmup_steps": 1}},
    )
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


def test_a_repeated_key_or_a_folder_is_an_error_naming_the_file(tmp_path):
    """Issue 25 item 8: YAML would keep the last of two `beta:` lines without a word; a folder is not 'not found'."""
    config = tmp_path / "train.yaml"
    config.write_text("beta: 0.1\nmax_steps: 2\nbeta: 0.5\n")
    with pytest.raises(RecipeError, match=r"train.yaml: beta: duplicate key \(lines 1 and 3\).*remove one of them"):
        load_settings("dpo", config)
    with pytest.raises(RecipeError, match=f"{tmp_path}: is a folder, not a training config file"):
        load_settings("dpo", tmp_path)


@pytest.mark.skipif(
    importlib.util.find_spec("rlaif.training.ppo") is None, reason="rlaif.training.ppo not written yet"
)
def test_ppo_fields_come_from_rlaif_ppo_config(tmp_path):
    import dataclasses

    from rlaif.training.config import TrainSettings
    from rlaif.training.ppo import PPOConfig

    field = next(
        f
        for f in dataclasses.fields(PPOConfig)
        if f.name not in TrainSettings.model_fields and f.default is not dataclasses.MISSING
    )
    assert load_settings("ppo", write(tmp_path, {field.name: field.default})).options == {field.name: field.default}
    with pytest.raises(RecipeError, match="rlaif.training.ppo.PPOConfig"):
        load_settings("ppo", write(tmp_path, {"no_such_ppo_field": 1}))


def test_device_defaults():
    cpu, cuda = device_defaults("cpu"), device_defaults("cuda")
    assert (cpu["bf16"], cpu["gradient_checkpointing"], cpu["report_to"], cpu["save_strategy"]) == (
        False,
        False,
        [],
        "no",
    )
    assert (cuda["bf16"], cuda["gradient_checkpointing"]) == (True, True)


def test_lora_config_targets_llama_projections():
    assert lora_config(load_settings("dpo")) is None
    config = lora_config(load_settings("dpo", lora=True, lora_r=4))
    assert config.r == 4 and {"q_proj", "v_proj", "down_proj"} <= set(config.target_modules)
    assert lora_config(load_settings("rm", lora=True), "SEQ_CLS").modules_to_save == ["score"]


def test_model_id_key_follows_the_settings_but_not_the_threads():
    from rlaif.store.models import model_id_for
    from rlaif.training.driver import default_name, model_key

    def model_id(**overrides):
        return model_id_for(
            default_name("demo-0123456789ab", "dpo"),
            model_key("demo-0123456789ab", "dpo", "smollm2-135m", load_settings("dpo", **overrides)),
        )

    assert model_id(max_steps=2).startswith("demo-dpo-")
    assert model_id(max_steps=2) == model_id(max_steps=2, threads=3)
    assert model_id(max_steps=2) != model_id(max_steps=3) != model_id(max_steps=2, beta=0.2)


# Ids at 4945219 (before issue 23 changed what some settings train): the unchanged ones must stay, the
# changed ones must move, or the store would report a model trained the old way as already trained.
IDS_BEFORE_ISSUE_23 = [
    ("dpo", {}, "demo-dpo-c02d79b79b6e", True),
    ("rm", {}, "demo-rm-d94a358c73a6", True),
    ("kto", {}, "demo-kto-0c1427402f44", True),
    ("rrhf", {}, "demo-rrhf-3a417a976ff3", True),
    ("dpo", {"soft_labels": "weighting"}, "demo-dpo-5bb7dbf70ff5", False),  # weights / mean weight of the set
    ("sft", {}, "demo-sft-5203552cdf8e", False),  # rows only from judgments that survived the filters
    ("ppo", {"reward": {"model": "m"}}, "demo-ppo-7c584b9d40cd", False),  # stop ids, critic lr, clipping, LoRA
    ("rloo", {"reward": {"model": "m"}}, "demo-rloo-c0a1e9013c24", False),  # failed reward missing, prompt limit
    ("grpo", {"reward": {"model": "m"}}, "demo-grpo-58837e7c4d62", False),
    ("rrhf", {"lora": True}, "demo-rrhf-8b717184098c", False),  # lora_target_modules and lora_dropout now apply
]


@pytest.mark.parametrize(("algorithm", "overrides", "before", "same"), IDS_BEFORE_ISSUE_23, ids=lambda v: str(v))
def test_a_model_id_moves_exactly_where_what_is_trained_changed(algorithm, overrides, before, same):
    from rlaif.store.models import model_id_for
    from rlaif.training.driver import default_name, model_key

    now = model_id_for(
        default_name("demo-0123456789ab", algorithm),
        model_key("demo-0123456789ab", algorithm, "smollm2-135m", load_settings(algorithm, **overrides)),
    )
    assert (now == before) is same, now


# ---------------------------------------------------------------- issue 23, item 5: no setting is dropped


def job_for(algorithm: str, tmp_path, **overrides):
    from rlaif.training.job import TrainJob

    return TrainJob(algorithm, "unused", [], load_settings(algorithm, **overrides), tmp_path)


def test_build_config_refuses_a_field_the_config_class_lacks(tmp_path):
    """build_config used to drop such keys without a word (max_prompt_length of rloo / grpo in TRL 1.16)."""
    from rlaif.training.trl_trainers import build_config

    with pytest.raises(RecipeError) as caught:
        build_config(job_for("grpo", tmp_path, num_generations=2), max_prompt_length=64)
    assert (
        caught.value.key == "max_prompt_length"
        and "GRPOConfig has no field 'max_prompt_length'" in str(caught.value)
        and caught.value.fix
    )


def test_a_common_setting_the_trl_config_lacks_is_an_error_naming_it(tmp_path, monkeypatch):
    """A TRL whose DPOConfig had no max_length would train without the user's length limit: an error instead."""
    import dataclasses

    from rlaif.training import trl_trainers

    fields = ["output_dir", "max_steps", "per_device_train_batch_size", "seed", "learning_rate", "bf16", "report_to"]
    without = dataclasses.make_dataclass("DPOConfig", [(name, object, None) for name in fields])  # no max_length
    monkeypatch.setattr(trl_trainers, "config_class", lambda algorithm: without)
    with pytest.raises(RecipeError) as caught:
        trl_trainers.build_config(job_for("dpo", tmp_path, max_length=128))
    assert caught.value.key == "max_length" and "no field 'max_length'" in str(caught.value)


@pytest.mark.parametrize("algorithm", ["rloo", "grpo"])
def test_rloo_and_grpo_configs_take_every_common_setting_and_rlaif_keeps_the_prompt_limit(algorithm, tmp_path):
    from rlaif.training.trl_trainers import APPLIED_BY_RLAIF, build_config

    config = build_config(
        job_for(
            algorithm,
            tmp_path,
            max_steps=3,
            batch_size=4,
            seed=7,
            learning_rate=1e-4,
            max_length=99,
            num_generations=2,
        )
    )
    assert (config.max_steps, config.per_device_train_batch_size, config.seed, config.learning_rate) == (3, 4, 7, 1e-4)
    assert not hasattr(config, "max_prompt_length") and APPLIED_BY_RLAIF[algorithm] == ("max_length",)


@pytest.mark.parametrize(
    ("options", "key"),
    [
        ({"use_weighting": True}, "use_weighting"),
        ({"loss_type": ["hinge"]}, "loss_type"),
        ({"loss_type": "ipo"}, "loss_type"),
        ({"f_divergence_type": "js_divergence"}, "f_divergence_type"),
        ({"ld_alpha": 0.5}, "ld_alpha"),
        ({"label_smoothing": 0.1}, "label_smoothing"),
    ],
)
@pytest.mark.parametrize("mode", ["smoothing", "weighting"])
def test_a_dpo_option_the_soft_label_loss_would_ignore_is_an_error(tmp_path, options, key, mode):
    path = write(tmp_path, {"soft_labels": mode, **options})
    with pytest.raises(RecipeError) as caught:
        load_settings("dpo", path)
    assert caught.value.key == key and str(path) in str(caught.value) and "soft_labels" in caught.value.fix
    assert (
        load_settings("dpo", write(tmp_path, options, "hard.yaml")).options == options
    )  # hard labels: TRL applies them


def test_soft_labels_take_the_options_they_apply(tmp_path):
    options = {
        "loss_type": ["sigmoid"],
        "loss_weights": [2.0],
        "f_divergence_type": "reverse_kl",
        "use_weighting": False,
        "router_aux_loss_coef": 0.01,
    }
    assert load_settings("dpo", write(tmp_path, {"soft_labels": "weighting", **options})).options == options
