"""RRHF: the loss on hand-computed numbers from fixed logits, then 2 real steps of smollm2-135m on a
listwise version of the store."""

from __future__ import annotations

import dataclasses
import math
import types

import pytest
import torch

from rlaif.training.job import TrainJob
from rlaif.training.rrhf import RRHFConfig, best_index, rrhf_loss, run, sequence_logps


def test_loss_on_fixed_logits_equals_the_hand_computation():
    # vocabulary of 2; three one-token responses after a one-token prompt; logits at the prompt position
    # give P(token 0) = sigmoid(z0 - z1)
    logits = torch.zeros(3, 2, 2)
    logits[0, 0] = torch.tensor([2.0, 0.0])  # response 0 is token 0: log p = log sigmoid(2)
    logits[1, 0] = torch.tensor([0.0, 0.0])  # response 1 is token 1: log p = log 0.5
    logits[2, 0] = torch.tensor([0.0, 1.0])  # response 2 is token 1: log p = log sigmoid(1)
    labels = torch.tensor([[-100, 0], [-100, 1], [-100, 1]])
    logps, nll = sequence_logps(logits, labels)
    p = [math.log(1 / (1 + math.exp(-2))), math.log(0.5), math.log(1 / (1 + math.exp(-1)))]
    assert logps.tolist() == pytest.approx(p) and nll.tolist() == pytest.approx([-x for x in p])
    scores = [0.1, 0.8, 0.5]  # response 1 is best; 0 < 2 < 1
    total, rank, sft = rrhf_loss(logps, scores, nll[best_index(scores)], sft_weight=0.5)
    hand_rank = max(0.0, p[0] - p[1]) + max(0.0, p[0] - p[2]) + max(0.0, p[2] - p[1])
    assert rank.item() == pytest.approx(hand_rank) and hand_rank > 0
    assert sft.item() == pytest.approx(-p[1]) and total.item() == pytest.approx(hand_rank + 0.5 * -p[1])


def test_ties_make_no_pair_and_a_ranking_already_right_costs_nothing():
    _, rank, _ = rrhf_loss(torch.tensor([-1.0, -3.0]), [0.5, 0.5], torch.tensor(0.0))
    assert rank.item() == 0.0
    total, rank, _ = rrhf_loss(torch.tensor([-1.0, -2.0, -3.0]), [3.0, 2.0, 1.0], torch.tensor(0.7))
    assert rank.item() == 0.0 and total.item() == pytest.approx(0.7)


def test_length_penalty_divides_the_summed_log_probability():
    logits = torch.zeros(1, 3, 4)
    labels = torch.tensor([[-100, 1, 2]])
    summed, _ = sequence_logps(logits, labels, length_penalty=0.0)
    assert summed.item() == pytest.approx(2 * -math.log(4))


def test_rrhf_config_fields_have_help_texts():
    assert all(f.metadata.get("help") for f in dataclasses.fields(RRHFConfig))


@pytest.mark.slow
def test_rrhf_two_steps_on_a_listwise_version_changes_the_parameters(tmp_path):
    from transformers import AutoModelForCausalLM, AutoTokenizer

    from rlaif.store.formats import format_rows
    from rlaif.store.versions import commit_tables
    from rlaif.weights.resolve import resolve_model
    from tests.test_export import MANIFEST, ranked_tables

    torch.set_num_threads(1)
    store = tmp_path / "store"
    version = commit_tables(store, "ranked", ranked_tables(), {**MANIFEST, "judge": {"type": "listwise"}})[0]
    rows = format_rows(store, version, "listwise")
    assert rows and all(len(r["responses"]) == len(r["scores"]) >= 2 for r in rows)
    model_path = resolve_model("smollm2-135m")
    settings = types.SimpleNamespace(
        max_steps=2, learning_rate=1e-4, batch_size=1, max_length=64, seed=0, lora=False, options={}
    )
    logged = []
    final = run(TrainJob("rrhf", model_path, rows, settings, tmp_path / "out", on_metrics=logged.append))
    assert [m["step"] for m in logged] == [1, 2] and final["steps"] == 2
    assert all(math.isfinite(m["loss"]) and m["sft_loss"] > 0 for m in logged)
    trained = AutoModelForCausalLM.from_pretrained(tmp_path / "out" / "model")
    base = AutoModelForCausalLM.from_pretrained(model_path)
    assert any(not torch.equal(p, q) for p, q in zip(trained.parameters(), base.parameters()))
    tokenizer = AutoTokenizer.from_pretrained(tmp_path / "out" / "model")
    ids = tokenizer.apply_chat_template(
        rows[0]["prompt"], add_generation_prompt=True, return_tensors="pt", return_dict=True
    )
    assert trained.generate(**ids, max_new_tokens=4, do_sample=False).shape[1] > ids["input_ids"].shape[1]


def test_rrhf_lora_applies_target_modules_and_dropout(tmp_path, monkeypatch):
    """Issue 23, item 5: `lora_target_modules` and `lora_dropout` count toward the model id, so they take
    effect: the adapter wraps only the named modules, and its dropout is active in the training forward
    passes while the base model stays in eval mode."""
    import json

    from rlaif.training import rrhf
    from rlaif.training.config import load_settings
    from tests.tiny_lm import tiny_causal_lm

    seen = []
    original = rrhf.prompt_loss

    def recording(policy, *args, **kwargs):
        dropouts = [module for name, module in policy.named_modules() if ".lora_dropout." in name]
        seen.append(
            (
                len(dropouts),
                all(isinstance(m, torch.nn.Dropout) and m.p == 0.2 and m.training for m in dropouts),
                policy.get_base_model().training,
            )
        )
        return original(policy, *args, **kwargs)

    monkeypatch.setattr(rrhf, "prompt_loss", recording)
    settings = load_settings(
        "rrhf",
        lora=True,
        lora_r=4,
        lora_target_modules=["q_proj", "v_proj"],
        lora_dropout=0.2,
        max_steps=1,
        max_length=32,
        batch_size=1,
    )
    row = {
        "prompt": [{"role": "user", "content": "Say hi."}],
        "responses": ["Hello!", "No."],
        "scores": [0.9, 0.1],
        "ranks": [1, 2],
    }
    rrhf.run(TrainJob("rrhf", tiny_causal_lm(tmp_path / "tiny"), [row], settings, tmp_path / "out"))
    saved = json.loads((tmp_path / "out" / "adapter" / "adapter_config.json").read_text())
    assert set(saved["target_modules"]) == {"q_proj", "v_proj"} and saved["lora_dropout"] == 0.2 and saved["r"] == 4
    assert seen == [
        (2, True, False)
    ]  # q_proj and v_proj of the one layer; LoRA dropout on, the base model in eval mode
