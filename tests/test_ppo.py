"""PPO: the pure pieces on hand-computed numbers, then 2 real steps of smollm2-135m on CPU, once
with a reward model and once with the judge as the reward."""

from __future__ import annotations

import math
import types

import pytest
import torch
import yaml

from rlaif.training.job import TrainJob
from rlaif.training.ppo import PPOConfig, batches, run
from rlaif.training.ppo_core import gae, per_token_rewards, policy_loss, response_mask, value_loss, whiten

PROMPT_ROWS = [
    {"prompt": [{"role": "user", "content": "Say hi."}], "prompt_id": "p0"},
    {"prompt": [{"role": "user", "content": "Name a colour."}], "prompt_id": "p1"},
]
OPTIONS = {"max_new_tokens": 8, "mini_batch_size": 1, "ppo_epochs": 1, "learning_rate": 1e-4}


def test_gae_matches_a_hand_computation():
    rewards = torch.tensor([[0.0, 0.0, 1.0]])
    values = torch.tensor([[0.2, 0.4, 0.6]])
    advantages, returns = gae(rewards, values, torch.ones(1, 3), gamma=0.9, lam=0.5)
    d2 = 1.0 - 0.6
    d1 = 0.0 + 0.9 * 0.6 - 0.4
    d0 = 0.0 + 0.9 * 0.4 - 0.2
    a2, a1 = d2, d1 + 0.45 * d2
    expected = [d0 + 0.45 * a1, a1, a2]
    assert advantages[0].tolist() == pytest.approx(expected)
    assert returns[0].tolist() == pytest.approx([a + v for a, v in zip(expected, [0.2, 0.4, 0.6])])


def test_gae_ignores_padding_and_the_score_lands_on_the_last_response_token():
    mask = torch.tensor([[1.0, 1.0, 0.0]])
    rewards, kl = per_token_rewards(torch.tensor([2.0]), torch.tensor([[-1.0, -1.0, -9.0]]), torch.tensor([[-1.2, -0.9, 0.0]]), mask, kl_coef=0.5)
    assert rewards[0].tolist() == pytest.approx([-0.1, 2.0 + 0.05, 0.0])
    assert kl[0].tolist() == pytest.approx([0.2, -0.1, 0.0])
    advantages, _ = gae(rewards, torch.tensor([[0.0, 0.0, 7.0]]), mask, 1.0, 1.0)
    assert advantages[0].tolist() == pytest.approx([1.95, 2.05, 0.0])  # the padded value 7 is never bootstrapped


def test_clipped_losses():
    mask = torch.ones(1, 2)
    old = torch.zeros(1, 2)
    new = torch.log(torch.tensor([[0.5, 1.1]]))  # ratios 0.5 (clipped to 0.8 for A<0: the max takes the unclipped) and 1.1
    loss, clipfrac = policy_loss(new, old, torch.tensor([[-1.0, 1.0]]), mask, 0.2)
    assert loss.item() == pytest.approx((0.8 * 1.0 + -1.1) / 2)  # max(0.5, 0.8)=0.8 for A=-1; max(-1.1, -1.1) for A=1
    assert clipfrac.item() == pytest.approx(0.5)
    vl, _ = value_loss(torch.tensor([[1.0, 0.1]]), torch.zeros(1, 2), torch.tensor([[0.0, 0.0]]), mask, 0.5)
    assert vl.item() == pytest.approx(0.5 * (max(1.0, 0.25) + 0.01) / 2)


def test_whiten_and_response_mask():
    values = whiten(torch.tensor([[1.0, 2.0, 3.0, 50.0]]), torch.tensor([[1.0, 1.0, 1.0, 0.0]]))
    assert values[0, :3].mean().item() == pytest.approx(0.0, abs=1e-6) and values[0, 3].item() == 0.0
    assert response_mask(torch.tensor([[7, 7, 0, 0]]), [0, 9]).tolist() == [[1.0, 1.0, 1.0, 0.0]]


def test_batches_cycle_through_every_row_before_repeating():
    feed = batches([{"i": i} for i in range(3)], 2, seed=1)
    first = [row["i"] for _ in range(3) for row in next(feed)]
    assert sorted(first[:3]) == [0, 1, 2] and len(first) == 6


def test_ppo_config_fields_have_help_texts():
    import dataclasses

    assert all(f.metadata.get("help") for f in dataclasses.fields(PPOConfig))


def settings(**options):
    return types.SimpleNamespace(max_steps=2, learning_rate=None, batch_size=2, max_length=128, seed=0, lora=False, options={**OPTIONS, **options})


@pytest.fixture(scope="module")
def model_path():
    torch.set_num_threads(1)  # DESIGN.md: 1 thread beat 2 on this 2-core machine
    from rlaif.models import resolve_model

    return resolve_model("smollm2-135m")


@pytest.fixture(scope="module")
def reward_model(model_path, tmp_path_factory):
    from transformers import AutoModelForSequenceClassification, AutoTokenizer

    torch.manual_seed(0)
    folder = tmp_path_factory.mktemp("rm") / "rm"
    model = AutoModelForSequenceClassification.from_pretrained(model_path, num_labels=1)
    tokenizer = AutoTokenizer.from_pretrained(model_path)
    model.config.pad_token_id = tokenizer.pad_token_id
    model.save_pretrained(folder)
    tokenizer.save_pretrained(folder)
    return folder


def train(model_path, reward, out, **options):
    logged = []
    job = TrainJob("ppo", model_path, PROMPT_ROWS, settings(**options), out, on_metrics=logged.append, reward=reward)
    final = run(job)
    return final, logged


def assert_logged_and_saved(final, logged, out, model_path):
    from transformers import AutoModelForCausalLM, AutoTokenizer

    assert [m["step"] for m in logged] == [1, 2] and final["steps"] == 2
    for metrics in logged:
        assert {"loss", "policy_loss", "value_loss", "kl", "mean_reward"} <= set(metrics)
        assert all(math.isfinite(metrics[key]) for key in ("loss", "kl", "mean_reward", "value_loss"))
    assert logged[0]["kl"] == pytest.approx(0.0, abs=1e-4)  # step 1 samples from the reference itself
    trained = AutoModelForCausalLM.from_pretrained(out / "model")
    base = AutoModelForCausalLM.from_pretrained(model_path)
    changed = [n for (n, p), q in zip(trained.named_parameters(), base.parameters()) if not torch.equal(p, q)]
    assert changed, "PPO changed no parameter"
    assert not any("value" in n for n in trained.state_dict()), "the value head is not part of the saved policy"
    tokenizer = AutoTokenizer.from_pretrained(out / "model")
    ids = tokenizer.apply_chat_template(PROMPT_ROWS[0]["prompt"], add_generation_prompt=True, return_tensors="pt", return_dict=True)
    generated = trained.generate(**ids, max_new_tokens=4, do_sample=False)
    assert generated.shape[1] > ids["input_ids"].shape[1]


@pytest.mark.slow
def test_ppo_two_steps_with_a_reward_model(model_path, reward_model, tmp_path):
    from rlaif.training.rewards import reward_model_scorer

    final, logged = train(model_path, reward_model_scorer(str(reward_model), max_length=128), tmp_path / "out")
    assert_logged_and_saved(final, logged, tmp_path / "out", model_path)
    assert logged[0]["mean_reward"] != 0.0  # a reward model's logit, not a placeholder


@pytest.mark.slow
def test_ppo_two_steps_with_the_judge_as_the_reward(model_path, tmp_path):
    from rlaif.training.rewards import judge_reward

    recipe = tmp_path / "judge.yaml"
    recipe.write_text(yaml.safe_dump({
        "name": "ppo-judge",
        "policies": [{"name": "smollm2", "model": "smollm2-135m"}],
        "judge": {"type": "pointwise", "backend": "transformers", "model": "smollm2-135m", "aspects": ["helpfulness"], "scale": 5, "batch_size": 4},
    }))
    reward = judge_reward(recipe, tmp_path / "store")
    try:
        final, logged = train(model_path, reward, tmp_path / "out")
    finally:
        reward.close()
    assert_logged_and_saved(final, logged, tmp_path / "out", model_path)
    assert all(0.0 < m["mean_reward"] <= 1.0 for m in logged) and reward.counts["failed"] == 0
    assert reward.counts["judged"] == 4 and logged[-1]["reward_failed"] == 0.0
