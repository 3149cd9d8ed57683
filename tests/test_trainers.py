"""Each export format, loaded the way a user would (`datasets.load_dataset` on the exported folder),
trains for one step in the TRL 1.16 trainer it is for, with the real smollm2-135m on CPU."""

from __future__ import annotations

import math

import pytest

from rlaif.publish.export import DATA_FILE, export_version
from rlaif.store.versions import commit_tables
from tests.test_export import MANIFEST, pairwise_tables

pytestmark = pytest.mark.slow
trl = pytest.importorskip("trl")
datasets = pytest.importorskip("datasets")

CPU = {
    "max_steps": 1,
    "bf16": False,
    "report_to": [],
    "save_strategy": "no",
    "logging_steps": 1,
    "gradient_checkpointing": False,
    "disable_tqdm": True,
    "dataloader_pin_memory": False,
}


@pytest.fixture(scope="module")
def version(tmp_path_factory):
    store = tmp_path_factory.mktemp("trainers")
    return store, commit_tables(store, "crafted", pairwise_tables(), MANIFEST)[0]


@pytest.fixture(scope="module")
def model_path():
    from rlaif.weights.resolve import resolve_model

    return resolve_model("smollm2-135m")


@pytest.fixture(scope="module")
def tokenizer(model_path):
    from transformers import AutoTokenizer

    return AutoTokenizer.from_pretrained(model_path)


def exported(version, fmt: str, tmp_path, style: str = "conversational"):
    """Export, then load as a user would: the folder (README configs) or its Parquet file."""
    store, version_id = version
    out = export_version(store, version_id, fmt, tmp_path / fmt, style=style)
    by_folder = datasets.load_dataset(str(out), split="train", cache_dir=str(tmp_path / "cache"))
    by_file = datasets.load_dataset(
        "parquet", data_files=str(out / DATA_FILE), split="train", cache_dir=str(tmp_path / "cache")
    )
    assert by_folder.to_list() == by_file.to_list()
    return by_folder


def causal_lm(model_path):
    from transformers import AutoModelForCausalLM

    return AutoModelForCausalLM.from_pretrained(model_path)


def trained_one_step(trainer) -> dict:
    result = trainer.train()
    assert result.global_step == 1
    logged = [entry for entry in trainer.state.log_history if "loss" in entry]
    assert logged and math.isfinite(logged[0]["loss"]), trainer.state.log_history
    return logged[0]


# One trainer run per format; the two styles alternate so that each is trained on by several trainers.


def test_dpo_export_trains_with_dpo_trainer(version, model_path, tokenizer, tmp_path):
    dataset = exported(version, "dpo", tmp_path)
    assert isinstance(dataset[0]["prompt"], list) and "p_chosen" in dataset.column_names
    config = trl.DPOConfig(output_dir=str(tmp_path / "run"), per_device_train_batch_size=2, max_length=64, **CPU)
    trainer = trl.DPOTrainer(
        model=causal_lm(model_path), args=config, train_dataset=dataset, processing_class=tokenizer
    )
    trained_one_step(trainer)


def test_rm_export_trains_with_reward_trainer_using_the_margin(version, model_path, tokenizer, tmp_path):
    from transformers import AutoModelForSequenceClassification

    dataset = exported(version, "rm", tmp_path, "standard")
    assert dataset[0]["prompt"].endswith("Assistant:") and dataset[0]["chosen"] == " Hello!"
    model = AutoModelForSequenceClassification.from_pretrained(model_path, num_labels=1)
    model.config.pad_token_id = tokenizer.pad_token_id
    config = trl.RewardConfig(output_dir=str(tmp_path / "run"), per_device_train_batch_size=2, max_length=64, **CPU)
    trainer = trl.RewardTrainer(model=model, args=config, train_dataset=dataset, processing_class=tokenizer)
    assert "margin" in trainer.train_dataset.column_names  # RewardTrainer subtracts it in its loss
    trained_one_step(trainer)


def test_kto_export_trains_with_kto_trainer(version, model_path, tokenizer, tmp_path):
    dataset = exported(version, "kto", tmp_path)
    assert dataset["label"] == [True, False] * 3
    # KTO estimates its KL term within a batch: batch size > 1, sequential order (its default)
    config = trl.KTOConfig(output_dir=str(tmp_path / "run"), per_device_train_batch_size=2, max_length=64, **CPU)
    trainer = trl.KTOTrainer(
        model=causal_lm(model_path), args=config, train_dataset=dataset, processing_class=tokenizer
    )
    trained_one_step(trainer)


def test_sft_export_trains_with_sft_trainer(version, model_path, tokenizer, tmp_path):
    dataset = exported(version, "sft", tmp_path, "standard")
    assert dataset["response_id"] == ["p0/big/0", "p1/smol/0"] and dataset["completion"] == [
        " Greetings, friend.",
        " Blue.",
    ]
    config = trl.SFTConfig(output_dir=str(tmp_path / "run"), per_device_train_batch_size=2, max_length=64, **CPU)
    trainer = trl.SFTTrainer(
        model=causal_lm(model_path), args=config, train_dataset=dataset, processing_class=tokenizer
    )
    trained_one_step(trainer)


def test_prompts_export_trains_with_grpo_trainer(version, model_path, tokenizer, tmp_path):
    dataset = exported(version, "prompts", tmp_path)
    seen_ids: list[str] = []

    def brevity(completions, prompt_id, **kwargs):
        """A reward that prefers short answers; the export's prompt_id column arrives as a keyword."""
        seen_ids.extend(prompt_id)
        return [-float(len(completion[0]["content"])) for completion in completions]

    config = trl.GRPOConfig(
        output_dir=str(tmp_path / "run"),
        per_device_train_batch_size=2,
        num_generations=2,
        max_completion_length=8,
        **CPU,
    )
    trainer = trl.GRPOTrainer(
        model=causal_lm(model_path),
        reward_funcs=brevity,
        args=config,
        train_dataset=dataset,
        processing_class=tokenizer,
    )
    trainer.train()
    assert trainer.state.global_step == 1
    assert seen_ids and set(seen_ids) <= {"p0", "p1", "p2"}
