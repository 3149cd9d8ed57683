"""Reward functions: the judge as the reward (scripted backend for the exact logic) and a reward
model scorer (real smollm2-135m with a fresh one-logit head) against a manual forward pass."""

from __future__ import annotations

import json
import math
import re

import pytest
import yaml

from rlaif.backends.base import Completion, Scores
from rlaif.core.errors import RecipeError
from rlaif.training.job import completion_text
from rlaif.training.rewards import judge_reward, reward_from_spec, reward_head_problem, reward_model_scorer
from tests.fakes import FakeBackend

PROMPTS = [[{"role": "user", "content": f"question {i}"}] for i in range(4)]
BIAS = 2.0  # the scripted judge's logit shift towards the response shown first


def sigmoid(x: float) -> float:
    return 1 / (1 + math.exp(-x))


def quality(text: str) -> int:
    return int(re.search(r"Q(\d)", text).group(1))


def biased_pairwise(request):
    """P(first shown wins) = sigmoid(q_first - q_second + BIAS); raises on an answer saying FAIL."""
    content = request.messages[0][1]
    first = re.search(r"# Output \(a\):\n(.*?)\n", content).group(1)
    second = re.search(r"# Output \(b\):\n(.*?)\n", content).group(1)
    if "FAIL" in first + second:
        raise RuntimeError("judge endpoint down")
    p = sigmoid(quality(first) - quality(second) + BIAS)
    return Scores(probs={"a": p, "b": 1 - p}, text="")


def recipe(tmp_path, judge: dict, name: str = "reward.yaml"):
    data = {
        "name": "reward",
        "policies": [{"name": "p", "model": "smollm2-135m", "params": {"max_tokens": 16}}],
        "judge": judge,
    }
    path = tmp_path / name
    path.write_text(yaml.safe_dump(data))
    return path


def assistant(text: str) -> list[dict]:
    return [{"role": "assistant", "content": text}]


def test_pairwise_judge_reward_removes_position_bias(use_backend, tmp_path):
    use_backend(FakeBackend(None, score=biased_pairwise))
    mine, theirs = ["Q3 a", "Q1 b", "Q2 c", "Q4 d"], ["Q1 x", "Q3 y", "Q2 z", "Q2 w"]
    reward = judge_reward(recipe(tmp_path, {"type": "pairwise"}), tmp_path / "store")
    rewards = reward(PROMPTS, [assistant(t) for t in mine], baseline=theirs)
    expected = [sigmoid(quality(a) - quality(b)) for a, b in zip(mine, theirs)]
    assert rewards == pytest.approx(
        expected, abs=1e-3
    )  # the +2 logit shift is gone (raw both-order mean would differ)
    raw_mean = (sigmoid(2 + 2.0) + sigmoid(2 - 2.0)) / 2
    assert abs(rewards[0] - raw_mean) > 0.05
    assert reward.position_bias["beta"] == pytest.approx(BIAS, abs=1e-3)
    swapped = judge_reward(recipe(tmp_path, {"type": "pairwise"}), tmp_path / "store")(PROMPTS, theirs, baseline=mine)
    assert [a + b for a, b in zip(rewards, swapped)] == pytest.approx([1.0] * 4, abs=1e-3)
    assert reward.counts == {"judged": 4, "failed": 0}


def test_judge_reward_counts_failed_judgments_and_caches_calls(use_backend, tmp_path):
    fake = use_backend(FakeBackend(None, score=biased_pairwise))
    reward = judge_reward(recipe(tmp_path, {"type": "pairwise"}), tmp_path / "store", failed_reward=0.0)
    completions = ["Q3 fine", "Q2 FAIL", "Q1 ok", "Q5 top"]
    rewards = reward(PROMPTS, completions, baseline=["Q2"] * 4)
    assert rewards[1] == 0.0 and reward.counts == {"judged": 3, "failed": 1}
    assert reward.stats.failed >= 1 and all(0 < r < 1 for i, r in enumerate(rewards) if i != 1)
    calls = fake.calls
    again = reward(PROMPTS, completions, baseline=["Q2"] * 4)
    assert again == rewards and reward.counts == {"judged": 6, "failed": 2}
    assert fake.calls - calls == 2  # only the failed pair's two orders are asked again (failures are never cached)


def test_a_failed_judgment_is_a_missing_reward_not_the_lowest_one(use_backend, tmp_path):
    """A failed judgment says nothing about the response: its reward is None (TRL leaves it out), not 0.0."""
    use_backend(FakeBackend(None, score=biased_pairwise))
    reward = judge_reward(recipe(tmp_path, {"type": "pairwise"}), tmp_path / "store")
    rewards = reward(PROMPTS, ["Q3 fine", "Q2 FAIL", "Q1 ok", "Q5 top"], baseline=["Q2"] * 4)
    assert rewards[1] is None and reward.counts == {"judged": 3, "failed": 1}
    assert all(isinstance(r, float) and 0 < r < 1 for i, r in enumerate(rewards) if i != 1)


def test_judge_reward_baseline_defaults_to_the_greedy_response_of_the_recipe_policy(
    use_backend, monkeypatch, tmp_path
):
    from rlaif.pipeline import sampling

    seen = []

    def generate(request):
        seen.append(request)
        return Completion(text="Q2 greedy baseline", finish_reason="stop")

    policy_backend = FakeBackend(None, gen=generate)
    monkeypatch.setattr(sampling, "make_backend", lambda spec: setattr(policy_backend, "spec", spec) or policy_backend)
    use_backend(FakeBackend(None, score=biased_pairwise))
    # another model than the judge's (one engine setting shares one loaded backend)
    reward = judge_reward(recipe(tmp_path, {"type": "pairwise"}), tmp_path / "store", baseline_model="baseline-model")
    rewards = reward([PROMPTS[0], PROMPTS[0], PROMPTS[1]], ["Q4", "Q2", "Q1"])
    assert rewards == pytest.approx([sigmoid(2), 0.5, sigmoid(-1)], abs=1e-3)
    assert len(seen) == 2 and all(
        r.temperature == 0.0 and r.max_tokens == 128 for r in seen
    )  # once per distinct prompt, greedy
    assert policy_backend.spec.model == "baseline-model"


def test_pointwise_and_binary_judge_rewards_are_normalised(use_backend, tmp_path):
    use_backend(
        FakeBackend(None, score=lambda r: Scores(probs={d: (1.0 if d == "4" else 0.0) for d in r.options}, text=""))
    )
    pointwise = judge_reward(
        recipe(tmp_path, {"type": "pointwise", "aspects": ["helpfulness"], "scale": 5}), tmp_path / "store"
    )
    assert pointwise(PROMPTS[:2], ["a", "b"]) == pytest.approx([0.75, 0.75])
    use_backend(FakeBackend(None, score=lambda r: Scores(probs={"yes": 0.3, "no": 0.1}, text="")))
    binary = judge_reward(recipe(tmp_path, {"type": "binary"}, "binary.yaml"), tmp_path / "store")
    assert binary(PROMPTS[:1], ["a"]) == pytest.approx([0.75])


@pytest.mark.parametrize(
    ("spec", "key"),
    [
        ({}, "reward"),
        ({"model": "m", "judge": "j.yaml"}, "reward"),
        ({"model": "/no/such/reward-model"}, "reward.model"),
        ({"judge": "no-such-recipe.yaml"}, "reward.judge"),
    ],
)
def test_reward_from_spec_errors_name_the_key(spec, key, tmp_path):
    with pytest.raises(RecipeError) as caught:
        reward_from_spec(spec, tmp_path / "store")
    assert caught.value.key == key and caught.value.fix


@pytest.mark.parametrize(
    ("config", "problem"),
    [
        ({"architectures": ["LlamaForCausalLM"]}, "it is LlamaForCausalLM, not a reward model"),
        ({}, "names no architecture, not a reward model"),
        ({"architectures": ["LlamaForSequenceClassification"], "id2label": {"0": "a", "1": "b"}}, "has 2 labels"),
        ({"architectures": ["LlamaForSequenceClassification"], "id2label": {"0": "LABEL_0"}}, None),
    ],
)
def test_only_a_one_label_classification_model_is_a_reward_model(tmp_path, config, problem):
    """Issue 25 item 8: a causal LM as a reward model gets a new random head: refused, for eval-rm and `reward:`."""
    (tmp_path / "config.json").write_text(json.dumps(config))
    found = reward_head_problem(tmp_path)
    assert (found is None) if problem is None else (problem in found), found
    if problem is not None:
        with pytest.raises(RecipeError, match="not a reward model|labels") as caught:
            reward_from_spec({"model": str(tmp_path)}, tmp_path / "store")
        assert caught.value.key == "reward.model" and "rlaif train rm" in caught.value.fix


def test_completion_text_reads_both_shapes():
    assert completion_text([{"role": "assistant", "content": "a"}, {"role": "assistant", "content": "b"}]) == "ab"


@pytest.mark.slow
def test_reward_model_scorer_matches_a_manual_forward_pass(tmp_path):
    import torch
    from transformers import AutoModelForSequenceClassification, AutoTokenizer

    from rlaif.weights.resolve import resolve_model

    torch.manual_seed(0)
    base = resolve_model("smollm2-135m")
    model = AutoModelForSequenceClassification.from_pretrained(base, num_labels=1)
    tokenizer = AutoTokenizer.from_pretrained(base)
    model.config.pad_token_id = tokenizer.pad_token_id
    model.save_pretrained(tmp_path / "rm")
    tokenizer.save_pretrained(tmp_path / "rm")
    completions = ["Paris.", "It is Berlin, a city in Germany that is not the capital of France."]
    prompts = [[{"role": "user", "content": "Capital of France?"}]] * 2
    scores = reward_model_scorer(str(tmp_path / "rm"), batch_size=2)(prompts, [assistant(c) for c in completions])
    model.eval()
    for prompt, completion, score in zip(prompts, completions, scores):
        text = tokenizer.apply_chat_template([*prompt, {"role": "assistant", "content": completion}], tokenize=False)
        ids = tokenizer(text, return_tensors="pt", add_special_tokens=False)
        with torch.no_grad():
            assert model(**ids).logits[0, 0].item() == pytest.approx(score, abs=1e-4)
    assert scores[0] != pytest.approx(scores[1])
    via_spec = reward_from_spec({"model": str(tmp_path / "rm")}, tmp_path / "store")
    assert via_spec(prompts, completions) == pytest.approx(scores, abs=1e-4)
