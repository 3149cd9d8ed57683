"""PPO: the pure pieces on hand-computed numbers, then real steps on CPU. The real smollm2-135m where the
language is the point: the judge of the judge-as-reward run, and the policy whose value head learns returns
that depend on the prompt (the one PPO training of the real model); every other run on the tiny random llama
of tests/tiny_lm.py (`tiny_model`), where what is under test is the trainer's path, not the language."""

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
    rewards, kl = per_token_rewards(
        torch.tensor([2.0]), torch.tensor([[-1.0, -1.0, -9.0]]), torch.tensor([[-1.2, -0.9, 0.0]]), mask, kl_coef=0.5
    )
    assert rewards[0].tolist() == pytest.approx([-0.1, 2.0 + 0.05, 0.0])
    assert kl[0].tolist() == pytest.approx([0.2, -0.1, 0.0])
    advantages, _ = gae(rewards, torch.tensor([[0.0, 0.0, 7.0]]), mask, 1.0, 1.0)
    assert advantages[0].tolist() == pytest.approx([1.95, 2.05, 0.0])  # the padded value 7 is never bootstrapped


def test_clipped_losses():
    mask = torch.ones(1, 2)
    old = torch.zeros(1, 2)
    new = torch.log(
        torch.tensor([[0.5, 1.1]])
    )  # ratios 0.5 (clipped to 0.8 for A<0: the max takes the unclipped) and 1.1
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
    return types.SimpleNamespace(
        max_steps=2,
        learning_rate=None,
        batch_size=2,
        max_length=128,
        seed=0,
        lora=False,
        options={**OPTIONS, **options},
    )


@pytest.fixture(scope="module")
def model_path():
    torch.set_num_threads(1)  # DESIGN.md: 1 thread beat 2 on this 2-core machine
    from rlaif.weights.resolve import resolve_model

    return resolve_model("smollm2-135m")


@pytest.fixture(scope="module")
def reward_model(tiny_model, tmp_path_factory):
    """A reward model (a sequence classifier with a random score head) on the tiny llama."""
    from transformers import AutoModelForSequenceClassification, AutoTokenizer

    torch.manual_seed(0)
    folder = tmp_path_factory.mktemp("rm") / "rm"
    model = AutoModelForSequenceClassification.from_pretrained(tiny_model, num_labels=1)
    tokenizer = AutoTokenizer.from_pretrained(tiny_model)
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
    ids = tokenizer.apply_chat_template(
        PROMPT_ROWS[0]["prompt"], add_generation_prompt=True, return_tensors="pt", return_dict=True
    )
    generated = trained.generate(**ids, max_new_tokens=4, do_sample=False)
    assert generated.shape[1] > ids["input_ids"].shape[1]


def test_ppo_two_steps_with_a_reward_model(tiny_model, reward_model, tmp_path):
    from rlaif.training.rewards import reward_model_scorer

    final, logged = train(tiny_model, reward_model_scorer(str(reward_model), max_length=128), tmp_path / "out")
    assert_logged_and_saved(final, logged, tmp_path / "out", tiny_model)
    assert logged[0]["mean_reward"] != 0.0  # a reward model's logit, not a placeholder


@pytest.mark.slow
def test_ppo_two_steps_with_the_judge_as_the_reward(tiny_model, tmp_path):
    """The real smollm2-135m judge (the transformers backend) rates the tiny policy's responses: its ratings
    are the rewards. (A PPO run of the real smollm2-135m policy: the value-head test below.)"""
    from rlaif.training.rewards import judge_reward

    recipe = tmp_path / "judge.yaml"
    recipe.write_text(
        yaml.safe_dump(
            {
                "name": "ppo-judge",
                "policies": [{"name": "smollm2", "model": "smollm2-135m"}],
                "judge": {
                    "type": "pointwise",
                    "backend": "transformers",
                    "model": "smollm2-135m",
                    "aspects": ["helpfulness"],
                    "scale": 5,
                    "batch_size": 4,
                },
            }
        )
    )
    reward = judge_reward(recipe, tmp_path / "store")
    try:
        final, logged = train(tiny_model, reward, tmp_path / "out")
    finally:
        reward.close()
    assert_logged_and_saved(final, logged, tmp_path / "out", tiny_model)
    assert all(0.0 < m["mean_reward"] <= 1.0 for m in logged) and reward.counts["failed"] == 0
    assert reward.counts["judged"] == 4 and logged[-1]["reward_failed"] == 0.0


# --- issue 23: rollouts end at every end-of-turn id and sample from softmax(logits / T) (item 2) ---


def test_rollout_stops_at_the_generation_configs_end_of_turn_id_and_ignores_its_sampling_settings(tiny_model):
    from transformers import AutoModelForCausalLM

    from rlaif.training.ppo import rollout, score_rollout
    from rlaif.training.ppo_model import load_tokenizer

    tokenizer, cfg = load_tokenizer(tiny_model), PPOConfig(max_new_tokens=8)
    policy = AutoModelForCausalLM.from_pretrained(tiny_model).eval()
    prompts = [row["prompt"] for row in PROMPT_ROWS]
    torch.manual_seed(1)
    plain = rollout(policy, tokenizer, prompts, cfg, "cpu")  # smollm2's generation config (the tiny's too): eos 2
    first = plain.responses[0].tolist()
    end_of_turn = first[2]  # a token the policy samples third, standing in for <|im_end|> / <|eot_id|>
    assert tokenizer.eos_token_id not in first[:3] and end_of_turn not in first[:2]
    # What a chat model's generation_config.json carries: an extra end-of-turn id and sampling settings
    # that would reshape softmax(logits / T) (each would change the first token sampled here).
    settings = {
        "eos_token_id": [tokenizer.eos_token_id, end_of_turn],
        "suppress_tokens": [first[0]],
        "repetition_penalty": 50.0,
        "min_new_tokens": 8,
        "top_k": 1,
    }
    for key, value in settings.items():
        setattr(policy.generation_config, key, value)
    torch.manual_seed(1)
    turn = rollout(policy, tokenizer, prompts, cfg, "cpu")
    stops = {tokenizer.eos_token_id, end_of_turn}
    for row, (sampled, mask, text) in enumerate(zip(turn.responses.tolist(), turn.mask.tolist(), turn.texts)):
        reference = plain.responses[row].tolist()
        length = next((i + 1 for i, token in enumerate(reference) if token in stops), len(reference))
        assert sampled[:length] == reference[:length], "the same draws as with a plain generation config"
        assert mask == [1.0] * length + [0.0] * (len(mask) - length), f"row {row}: the mask ends at the first stop id"
        kept = reference[: length - 1] if reference[length - 1] in stops else reference[:length]
        assert text == tokenizer.decode(kept, skip_special_tokens=True).strip()
    assert turn.mask[0].sum().item() == 3
    assert policy.generation_config.suppress_tokens == [first[0]], (
        "the model's own generation config is left as it was"
    )
    scored = []
    job = types.SimpleNamespace(
        reward=lambda prompts, completions, **_: (
            scored.extend(c[0]["content"] for c in completions) or [0.0] * len(prompts)
        )
    )
    score_rollout(job, PROMPT_ROWS, turn, "cpu")
    assert scored == turn.texts and scored[0] == tokenizer.decode(first[:2], skip_special_tokens=True).strip()


# --- the critic has its own learning rate; explained variance is reported (item 3) ---


def test_explained_variance_matches_a_hand_computation():
    from rlaif.training.ppo_core import explained_variance

    mask = torch.tensor([[1.0, 1.0, 1.0, 0.0]])
    returns, values = torch.tensor([[0.0, 2.0, 4.0, 99.0]]), torch.tensor([[0.0, 1.0, 2.0, -99.0]])
    assert explained_variance(values, returns, mask) == pytest.approx(1 - (2 / 3) / (8 / 3))
    assert explained_variance(returns, returns, mask) == pytest.approx(1.0)
    assert explained_variance(values, torch.ones(1, 4), mask) is None  # returns with no variance: unknown, not 0


def test_value_learning_rate_is_its_own_and_documented():
    import dataclasses

    fields = {f.name: f for f in dataclasses.fields(PPOConfig)}
    assert (
        PPOConfig().value_learning_rate == 9e-6 and PPOConfig().learning_rate == 1e-6
    )  # OpenRLHF's critic / actor defaults
    assert "OpenRLHF" in fields["value_learning_rate"].metadata["help"]


@pytest.mark.slow
def test_the_value_head_learns_the_returns_of_a_fixed_reward(model_path, tmp_path):
    """On the real smollm2-135m: the returns differ by prompt, so the head must read the prompt from the hidden
    states, which a random llama's do not carry (measured on the tiny one: no rise in explained variance at a
    value_learning_rate from 1e-6 to 1e-2, down to -0.24 at 1e-2; hidden size 256: 0.002 at the default).
    3 steps, not 4: the third is the first the assertion needs, and each costs about 20 s of CPU."""

    def fixed(prompts, completions, prompt_id, **_):  # +1 for one prompt, -1 for the other, whatever the response
        return [1.0 if pid == "p0" else -1.0 for pid in prompt_id]

    # the default value_learning_rate; measured: 0.0, -0.0006, 0.014 (a 4th step: 0.020; the value head at the
    # policy's 1e-6: 0.0, -0.0001, 0.0016)
    _, logged = train(
        model_path, fixed, tmp_path / "out", max_steps=3, learning_rate=1e-6, ppo_epochs=4, mini_batch_size=2
    )
    explained = [m.get("explained_variance") for m in logged]
    assert explained[0] == pytest.approx(0.0, abs=1e-6), "step 1: the zero-initialised head predicts 0 everywhere"
    assert all(e > 0.0 for e in explained[2:]) and explained[-1] > 0.01, (
        f"the value head did not move toward the returns: {explained}"
    )


# --- hygiene: reward clipping / normalisation, a float32 value head under bf16 autocast (item 9) ---


def test_scores_are_normalised_then_clipped():
    from rlaif.training.ppo_core import RunningMoments, shape_scores

    shaped, clipped = shape_scores(torch.tensor([-30.0, 0.0, 5.0, 30.0]), 10.0, None)
    assert shaped.tolist() == [-10.0, 0.0, 5.0, 10.0] and clipped == 0.5
    unclipped, none = shape_scores(torch.tensor([-30.0, 30.0]), None, None)
    assert unclipped.tolist() == [-30.0, 30.0] and none == 0.0
    moments = RunningMoments()
    first, _ = shape_scores(torch.tensor([1.0, 3.0]), 10.0, moments)  # mean 2, unbiased std sqrt(2) (as TRL)
    assert first.tolist() == pytest.approx([-1 / math.sqrt(2), 1 / math.sqrt(2)])
    second, _ = shape_scores(torch.tensor([5.0]), 10.0, moments)  # running mean 3, unbiased variance 4 over 1, 3, 5
    assert second.tolist() == pytest.approx([1.0])
    assert (
        PPOConfig().reward_clip == 10.0 and PPOConfig().normalize_reward is False
    )  # OpenRLHF's default clip range (-10, 10)


@pytest.mark.parametrize(("key", "value"), [("reward_clip", 0.0), ("value_learning_rate", 0.0), ("reward_clip", -1.0)])
def test_bad_new_settings_are_errors_naming_the_key(key, value):
    from rlaif.core.errors import RecipeError

    with pytest.raises(RecipeError, match=f"options.{key}"):
        PPOConfig(**{key: value})


def test_the_value_head_runs_in_float32_under_bf16_autocast():
    from rlaif.training.ppo_model import ValueHead

    torch.manual_seed(0)
    head = ValueHead(16)
    torch.nn.init.normal_(head.linear.weight)
    hidden = torch.randn(2, 3, 16).bfloat16()
    with torch.autocast("cpu", dtype=torch.bfloat16):
        under = head(hidden)
    assert under.dtype == torch.float32
    assert torch.equal(under, head(hidden))  # the same numbers as outside autocast: a float32 matmul


# --- with --lora, lora_target_modules and lora_dropout take effect (item 5, PPO) ---


def test_ppo_lora_uses_the_target_modules_and_the_dropout(tiny_model, tmp_path, monkeypatch):
    import json

    import rlaif.training.ppo as ppo

    modes, load = [], ppo.load_policy

    def spied(*args, **kwargs):  # records whether each LoRA dropout is active when it runs
        policy, lora = load(*args, **kwargs)
        for name, module in policy.named_modules():
            if name.endswith("lora_dropout.default"):
                module.register_forward_pre_hook(lambda m, _: modes.append(m.training))
        return policy, lora

    monkeypatch.setattr(ppo, "load_policy", spied)
    lora = settings(max_steps=1)
    lora.__dict__.update(lora=True, lora_r=4, lora_alpha=8, lora_dropout=0.3, lora_target_modules=["q_proj", "v_proj"])
    job = TrainJob(
        "ppo",
        tiny_model,
        PROMPT_ROWS,
        lora,
        tmp_path / "out",
        on_metrics=lambda m: None,
        reward=lambda prompts, completions, **_: [1.0] * len(prompts),
    )
    run(job)
    config = json.loads((tmp_path / "out" / "adapter" / "adapter_config.json").read_text())
    assert set(config["target_modules"]) == {"q_proj", "v_proj"} and config["lora_dropout"] == 0.3
    assert modes and True in modes and False in modes, (
        "dropout on in the update only (rollout and old log-probs without it)"
    )


@pytest.mark.parametrize(
    ("options", "clipped"), [({}, 1.0), ({"normalize_reward": True}, 0.0), ({"reward_clip": None}, 0.0)]
)
def test_a_real_step_clips_or_normalises_the_scores(tiny_model, tmp_path, options, clipped):
    def big(prompts, completions, prompt_id, **_):  # beyond OpenRLHF's clip range (-10, 10)
        return [50.0 if pid == "p0" else -50.0 for pid in prompt_id]

    _, logged = train(tiny_model, big, tmp_path / "out", max_steps=1, max_new_tokens=4, **options)
    assert logged[0]["reward_clipped"] == clipped and logged[0]["mean_reward"] == 0.0  # the raw mean


# --- a failed judgment is a missing reward: masked out of the PPO loss, counted as reward_failed (item 4) ---

# Prompts of equal token length, each answered by a fixed response: the judge fails on MARK and rates
# the rest by their R digit; the marked responses are the longest, so they set the batch's padding.
ANSWERS = {
    "Answer number 1.": "R5 MARK: a long answer that runs on and on about rivers",
    "Answer number 2.": "R2 plain",
    "Answer number 3.": "R4 plain and short",
    "Answer number 4.": "R1 MARK, long again: rivers, lakes, seas and oceans",
}
MARKED_ROWS = [
    {"prompt": [{"role": "user", "content": question}], "prompt_id": f"q{i}"} for i, question in enumerate(ANSWERS, 1)
]
UNMARKED_ROWS = [row for row in MARKED_ROWS if "MARK" not in ANSWERS[row["prompt"][0]["content"]]]


@pytest.fixture
def fixed_answers(monkeypatch):
    """PPO's rollout replaced by ANSWERS (prompts tokenized as the real rollout does, each answer ended
    by EOS and right-padded); records what every PPO update got. Returns the list of records."""
    import rlaif.training.ppo as ppo
    from rlaif.training.ppo_model import prompt_text

    def fake_rollout(policy, tokenizer, prompts, cfg, device):
        tokenizer.padding_side = "left"
        enc = tokenizer(
            [prompt_text(tokenizer, p) for p in prompts], return_tensors="pt", padding=True, add_special_tokens=False
        )
        stops = ppo.stop_ids(policy, tokenizer)
        ids = [
            tokenizer(ANSWERS[p[-1]["content"]], add_special_tokens=False)["input_ids"] + [tokenizer.eos_token_id]
            for p in prompts
        ]
        width = max(map(len, ids))
        responses = torch.tensor([row + [tokenizer.pad_token_id] * (width - len(row)) for row in ids])
        mask = response_mask(responses, stops)
        return ppo.Rollout(
            enc["input_ids"],
            enc["attention_mask"],
            responses,
            mask,
            ppo.response_texts(tokenizer, responses, mask, stops),
        )

    updates, update = [], ppo.ppo_update

    def recorded(policy, value_head, optimizer, batch, old, *args, **kwargs):
        updates.append(
            {
                "texts": list(batch.texts),
                **{key: value.clone() for key, value in old.items() if isinstance(value, torch.Tensor)},
            }
        )
        return update(policy, value_head, optimizer, batch, old, *args, **kwargs)

    monkeypatch.setattr(ppo, "rollout", fake_rollout)
    monkeypatch.setattr(ppo, "ppo_update", recorded)
    return updates


def marker_judge_reward(tmp_path, use_backend):
    from rlaif.training.rewards import judge_reward
    from tests.fakes import FakeBackend, marker_judge

    use_backend(FakeBackend(None, score=marker_judge(r"\bR(\d)\b")))
    recipe = tmp_path / "judge.yaml"
    recipe.write_text(
        yaml.safe_dump(
            {
                "name": "marker",
                "policies": [{"name": "p", "model": "smollm2-135m"}],
                "judge": {"type": "pointwise", "aspects": ["helpfulness"], "scale": 5},
            }
        )
    )
    return judge_reward(recipe, tmp_path / "store")


def one_ppo_step(model_path, rows, reward, out, **options):
    """One PPO step (run) over `rows` as one batch and one minibatch; returns (final metrics, logged)."""
    logged: list[dict] = []
    options = {
        **OPTIONS,
        "batch_size": len(rows),
        "mini_batch_size": len(rows),
        "ppo_epochs": 2,
        "learning_rate": 1e-3,
        "value_learning_rate": 1e-2,
        **options,
    }
    job = TrainJob(
        "ppo",
        model_path,
        rows,
        types.SimpleNamespace(lora=False, options=options, max_steps=1),
        out,
        on_metrics=logged.append,
        reward=reward,
    )
    return run(job), logged


def by_text(update: dict, key: str) -> dict[str, torch.Tensor]:
    return dict(zip(update["texts"], update[key]))


def test_a_judge_failing_on_marked_responses_leaves_them_out_of_the_ppo_loss(
    tiny_model, fixed_answers, use_backend, tmp_path
):
    """Item 4 of issue 23: the judge fails on every response with a marker. Those responses get advantage
    0 and no share of the loss: the step's losses, advantages and updated weights are those of a step
    on the unmarked responses alone, and the failures are counted as reward_failed."""
    from transformers import AutoModelForCausalLM

    reward = marker_judge_reward(tmp_path, use_backend)
    marked, marked_log = one_ppo_step(tiny_model, MARKED_ROWS, reward, tmp_path / "marked")
    alone, _ = one_ppo_step(tiny_model, UNMARKED_ROWS, reward, tmp_path / "alone")
    with_marks, without = fixed_answers

    for text, advantage in by_text(with_marks, "advantages").items():
        if "MARK" in text:
            assert not advantage.any(), f"{text!r}: a failed judgment moved its response's advantage"
            assert not by_text(with_marks, "returns")[text].any()
        else:  # whitened over the judged responses only: the same as without the marked ones (there, less padding)
            alone_advantage = by_text(without, "advantages")[text]
            width = int(by_text(without, "loss_mask")[text].sum())
            assert advantage[:width].tolist() == pytest.approx(alone_advantage[:width].tolist(), abs=1e-5)
            assert not advantage[width:].any() and not alone_advantage[width:].any()
    for key in ("loss", "policy_loss", "value_loss", "approx_kl", "clipfrac", "value_clipfrac"):
        assert marked[key] == pytest.approx(alone[key], rel=1e-4, abs=1e-7), key
    assert marked["policy_loss"] != 0.0  # the second epoch's ratio is not 1: the comparison has teeth
    assert (
        marked["mean_reward"] == alone["mean_reward"] == pytest.approx(((2 - 1) / 4 + (4 - 1) / 4) / 2)
    )  # R2 and R4 only
    assert marked_log[0]["reward_failed"] == marked["reward_failed"] == 2.0 and alone["reward_failed"] == 0.0
    assert reward.counts == {"judged": 4, "failed": 2}
    weights = [
        AutoModelForCausalLM.from_pretrained(tmp_path / name / "model").state_dict() for name in ("marked", "alone")
    ]
    base = AutoModelForCausalLM.from_pretrained(tiny_model).state_dict()
    assert any(not torch.equal(weights[0][key], base[key]) for key in base), "the step changed no weight"
    for key, value in weights[0].items():
        assert torch.allclose(value, weights[1][key], atol=1e-6), f"{key}: the marked responses changed the update"


def test_a_rollout_with_no_scored_response_makes_no_update(tiny_model, fixed_answers, tmp_path):
    """Item 4 of issue 23: every reward missing: no update at all (AdamW's weight decay would move the
    weights even with zero gradients); the step says so and counts the failures."""
    from transformers import AutoModelForCausalLM

    def nothing(prompts, completions, **_):
        return [None] * len(prompts)

    final, logged = one_ppo_step(tiny_model, MARKED_ROWS, nothing, tmp_path / "out", max_steps=2)
    assert fixed_answers == [], "PPO updated on a rollout without a single reward"
    assert [m["update_skipped"] for m in logged] == [1.0, 1.0] and [m["reward_failed"] for m in logged] == [4.0, 8.0]
    assert all("mean_reward" not in m and "loss" not in m for m in logged)  # no reward, no loss: absent, not 0
    trained = AutoModelForCausalLM.from_pretrained(tmp_path / "out" / "model").state_dict()
    base = AutoModelForCausalLM.from_pretrained(tiny_model).state_dict()
    assert all(torch.equal(value, base[key]) for key, value in trained.items()), "weights moved without a reward"
    assert final["update_skipped"] == 1.0 and final["reward_failed"] == 8.0


@pytest.mark.parametrize(
    ("options", "expected"),
    [({"reward_clip": 10.0}, {"reward_clipped": 0.5}), ({"normalize_reward": True}, {"count": 2, "mean": 27.5})],
)
def test_missing_rewards_never_reach_the_running_moments_or_the_clip_share(
    tiny_model, fixed_answers, tmp_path, monkeypatch, options, expected
):
    """Item 4 of issue 23: normalisation and clipping see the scored rewards only (a NaN in the running
    moments would poison every later step; a missing reward is not a clipped one)."""
    import rlaif.training.ppo as ppo

    seen, shape = [], ppo.shape_scores

    def spied(scores, clip, moments):
        seen.append((scores.clone(), moments))
        return shape(scores, clip, moments)

    monkeypatch.setattr(ppo, "shape_scores", spied)

    def big(prompts, completions, **_):  # 50 and 5 for the unmarked responses, missing for the marked
        texts = [c[0]["content"] for c in completions]
        return [None if "MARK" in t else (50.0 if "R2" in t else 5.0) for t in texts]

    final, _ = one_ppo_step(tiny_model, MARKED_ROWS, big, tmp_path / "out", **options)
    [(scores, moments)] = seen
    assert sorted(scores.tolist()) == [5.0, 50.0], "only the scored rewards are shaped"
    if "reward_clipped" in expected:
        assert final["reward_clipped"] == expected["reward_clipped"]  # 1 of the 2 scored, not 1 of 4
    else:
        assert (moments.count, moments.mean) == (expected["count"], expected["mean"])
    assert final["mean_reward"] == 27.5 and final["reward_failed"] == 2.0


# --- review of issue 23's fixes against OpenRLHF / TRL ---


def missing_on_marks(prompts, completions, **_):
    """None for every marked response, else its R digit."""
    import re

    texts = [c[0]["content"] for c in completions]
    return [None if "MARK" in t else float(re.search(r"\bR(\d)\b", t).group(1)) for t in texts]


@pytest.mark.parametrize("seed", [0, 1, 2, 3])
def test_unscored_rows_change_neither_the_minibatches_nor_the_number_of_optimizer_steps(
    seed, tiny_model, fixed_answers, tmp_path, monkeypatch
):
    """Minibatches are drawn from the scored rows only (the same draws as a rollout of those rows alone):
    beside an unscored row a scored one does not get an AdamW step of its own, so failed judgments change
    neither how many optimizer steps a rollout takes nor where they lead."""
    from transformers import AutoModelForCausalLM

    steps: list[int] = []
    step = torch.optim.AdamW.step

    def counted(self, *args, **kwargs):
        steps.append(1)
        return step(self, *args, **kwargs)

    monkeypatch.setattr(torch.optim.AdamW, "step", counted)
    options = {"mini_batch_size": 2, "ppo_epochs": 2, "seed": seed}
    one_ppo_step(tiny_model, MARKED_ROWS, missing_on_marks, tmp_path / "marked", **options)
    marked_steps, steps[:] = len(steps), []
    one_ppo_step(tiny_model, UNMARKED_ROWS, missing_on_marks, tmp_path / "alone", **options)
    assert marked_steps == len(steps) == 2, (
        f"optimizer steps with the unscored rows: {marked_steps}, without them: {len(steps)}"
    )
    weights = [
        AutoModelForCausalLM.from_pretrained(tmp_path / name / "model").state_dict() for name in ("marked", "alone")
    ]
    for key, value in weights[0].items():
        assert torch.allclose(value, weights[1][key], atol=1e-6), f"{key}: the unscored rows changed the update"


def test_running_moments_give_the_unbiased_std_as_trl_does():
    """TRL's former PPOTrainer RunningMoments (trl/trainer/utils.py, v0.11): std = sqrt(var * n / (n - 1))."""
    from rlaif.training.ppo_core import RunningMoments

    mean, std = RunningMoments().update(torch.tensor([0.0, 1.0, 2.0, 3.0]))
    assert mean == 1.5 and std == pytest.approx(1.2910, abs=1e-4)
    moments = RunningMoments()
    moments.update(torch.tensor([0.0, 1.0]))
    assert moments.update(torch.tensor([2.0, 3.0])) == pytest.approx(
        (1.5, math.sqrt(5 / 3))
    )  # the same over two batches
    assert RunningMoments().update(torch.tensor([4.0])) == (4.0, 0.0)  # one value: no spread yet (TRL: 0/0)


def test_the_kl_penalty_clamps_each_log_ratio_to_plus_minus_10_as_openrlhf():
    """OpenRLHF's compute_approx_kl clamps the per-token log-ratio to [-10, 10] before the penalty."""
    mask = torch.tensor([[1.0, 1.0, 1.0, 0.0]])
    logprobs, ref = torch.tensor([[-0.5, -30.0, -1.0, -50.0]]), torch.tensor([[-40.0, -1.0, -1.5, 0.0]])
    rewards, kl = per_token_rewards(torch.tensor([1.0]), logprobs, ref, mask, kl_coef=0.1)
    assert kl[0].tolist() == pytest.approx([10.0, -10.0, 0.5, 0.0])  # log-ratios 39.5, -29, 0.5 (padding: 0)
    assert rewards[0].tolist() == pytest.approx([-1.0, 1.0, 1.0 - 0.05, 0.0])
