"""The judge's soft labels in the RM and DPO losses: different from the hard losses on uncertain pairs,
exactly the hard losses when every label is 0 or 1 (fixed logits), and the same in a real trainer step (TRL's
real trainers on the tiny random llama of tests/tiny_lm.py: the losses and gradients are under test, not the
language)."""

from __future__ import annotations

import math

import pytest

torch = pytest.importorskip("torch")
pytest.importorskip("trl")
F = torch.nn.functional

from rlaif.training.soft_labels import (  # noqa: E402
    SoftLabelCollator,
    soft_dpo_loss,
    soft_rm_loss,
)


def hard_rm_loss(chosen: torch.Tensor, rejected: torch.Tensor) -> torch.Tensor:
    """TRL's RewardTrainer loss (no margin): -logsigmoid(r_c - r_r), averaged over pairs (the reference the soft loss must reduce to)."""
    return -F.logsigmoid(chosen - rejected).mean()


def hard_dpo_loss(delta: torch.Tensor, beta: float) -> torch.Tensor:
    """TRL's sigmoid DPO loss; delta = (log pi/ref of chosen) - (log pi/ref of rejected), per pair."""
    return -F.logsigmoid(beta * delta).mean()


CHOSEN = torch.tensor([1.5, -0.2, 0.3, 2.0])
REJECTED = torch.tensor([0.5, 0.4, 0.3, -1.0])
DELTA = torch.tensor([3.0, -1.0, 0.5, 0.0])
SOFT = torch.tensor([0.9, 0.6, 0.75, 0.55])
ONES, ZEROS = torch.ones(4), torch.zeros(4)


def test_soft_rm_loss_differs_from_hard_on_uncertain_pairs():
    assert not torch.isclose(soft_rm_loss(CHOSEN, REJECTED, SOFT), hard_rm_loss(CHOSEN, REJECTED))


def test_soft_rm_loss_is_the_hard_loss_when_labels_are_0_or_1():
    assert torch.equal(soft_rm_loss(CHOSEN, REJECTED, ONES), hard_rm_loss(CHOSEN, REJECTED))
    assert torch.equal(
        soft_rm_loss(CHOSEN, REJECTED, ZEROS), hard_rm_loss(REJECTED, CHOSEN)
    )  # p = 0: the swapped pair


def test_soft_rm_loss_is_minimal_where_the_model_matches_the_label():
    """The Bradley-Terry probability sigmoid(r_c - r_r) = p minimises the cross-entropy."""
    p = torch.tensor([0.8])
    best = torch.tensor([math.log(0.8 / 0.2)])
    at_best = soft_rm_loss(best, torch.zeros(1), p)
    assert at_best < soft_rm_loss(best + 0.5, torch.zeros(1), p) and at_best < soft_rm_loss(
        best - 0.5, torch.zeros(1), p
    )


@pytest.mark.parametrize("mode", ["smoothing", "weighting"])
def test_soft_dpo_loss_differs_from_hard_on_uncertain_pairs(mode):
    assert not torch.isclose(soft_dpo_loss(DELTA, 0.1, SOFT, mode), hard_dpo_loss(DELTA, 0.1))


@pytest.mark.parametrize("mode", ["smoothing", "weighting"])
def test_soft_dpo_loss_is_the_hard_loss_when_every_label_is_1(mode):
    assert torch.equal(soft_dpo_loss(DELTA, 0.1, ONES, mode), hard_dpo_loss(DELTA, 0.1))


def test_smoothing_with_label_0_is_the_hard_loss_of_the_swapped_pair():
    assert torch.equal(soft_dpo_loss(DELTA, 0.1, ZEROS, "smoothing"), hard_dpo_loss(-DELTA, 0.1))


def test_weighting_drops_pairs_the_judge_was_unsure_of():
    unsure = torch.tensor([1.0, 0.5, 0.5, 0.5])
    only_first = -torch.nn.functional.logsigmoid(0.1 * DELTA[0]) / 4
    assert soft_dpo_loss(DELTA, 0.1, unsure, "weighting").item() == pytest.approx(only_first.item(), rel=1e-6)
    with pytest.raises(ValueError, match="smoothing or weighting"):
        soft_dpo_loss(DELTA, 0.1, SOFT, "nope")


def test_the_collator_carries_p_chosen_beside_the_inner_batch():
    seen = []
    collate = SoftLabelCollator(lambda examples: seen.extend(examples) or {"n": len(examples)})
    batch = collate([{"chosen_ids": [1], "p_chosen": 0.75}, {"chosen_ids": [2], "p_chosen": 1}])
    assert batch["n"] == 2 and torch.equal(batch["p_chosen"], torch.tensor([0.75, 1.0]))
    assert seen == [{"chosen_ids": [1]}, {"chosen_ids": [2]}]


# ---------------------------------------------------------------- one real trainer step each (tiny models)

PROMPTS = [[{"role": "user", "content": "Say hi."}], [{"role": "user", "content": "Name a colour."}]]
ANSWERS = [("Hello there!", "No."), ("Blue.", "I will not say.")]


def pairs(p: float) -> list[dict]:
    return [
        {
            "prompt": prompt,
            "chosen": [{"role": "assistant", "content": good}],
            "rejected": [{"role": "assistant", "content": bad}],
            "p_chosen": p,
        }
        for prompt, (good, bad) in zip(PROMPTS, ANSWERS)
    ]


@pytest.fixture(scope="module")
def tiny(tmp_path_factory):
    from tests.tiny_lm import tiny_causal_lm

    torch.set_num_threads(1)
    return tiny_causal_lm(tmp_path_factory.mktemp("tiny") / "llama")


def first_step(trainer_cls, model_path, tmp_path, rows, config_options: dict | None = None, **kwargs) -> dict:
    """Loss and gradient norm of one step from the same start (same seed, same reward head)."""
    import trl
    from datasets import Dataset
    from transformers import AutoModelForCausalLM, AutoModelForSequenceClassification, AutoTokenizer, set_seed

    set_seed(0)
    tokenizer = AutoTokenizer.from_pretrained(model_path)
    is_rm = issubclass(trainer_cls, trl.RewardTrainer)
    if is_rm:
        model = AutoModelForSequenceClassification.from_pretrained(model_path, num_labels=1)
        model.config.pad_token_id = tokenizer.pad_token_id
    else:
        model = AutoModelForCausalLM.from_pretrained(model_path)
    config_cls = trl.RewardConfig if is_rm else trl.DPOConfig
    config = config_cls(
        output_dir=str(tmp_path / "run"),
        max_steps=1,
        per_device_train_batch_size=2,
        max_length=64,
        logging_steps=1,
        seed=0,
        bf16=False,
        report_to=[],
        save_strategy="no",
        disable_tqdm=True,
        dataloader_pin_memory=False,
        gradient_checkpointing=False,
        **(config_options or {}),
    )
    trainer = trainer_cls(
        model=model, args=config, train_dataset=Dataset.from_list(rows), processing_class=tokenizer, **kwargs
    )
    trainer.train()
    return next(entry for entry in trainer.state.log_history if "loss" in entry)


def test_soft_reward_trainer_step_matches_hard_at_p_1_and_differs_at_p_0_7(tmp_path):
    """A tiny model with weights of std 0.2 (0.02 is the default): its rewards of the chosen and the rejected
    responses differ enough to tell the losses apart (hard 0.654, soft at p = 0.7 0.686; with std 0.02 the
    difference is 1.07e-3 of the loss, at the edge of the check's 1e-3)."""
    from trl import RewardTrainer

    from rlaif.training.soft_labels import SoftRewardTrainer
    from tests.tiny_lm import tiny_causal_lm

    spread = tiny_causal_lm(tmp_path / "spread", initializer_range=0.2)
    hard = first_step(
        RewardTrainer, spread, tmp_path, [{k: v for k, v in row.items() if k != "p_chosen"} for row in pairs(1.0)]
    )
    soft_certain = first_step(SoftRewardTrainer, spread, tmp_path, pairs(1.0))
    soft = first_step(SoftRewardTrainer, spread, tmp_path, pairs(0.7))
    assert soft_certain["loss"] == pytest.approx(hard["loss"], rel=1e-5)
    assert soft_certain["grad_norm"] == pytest.approx(hard["grad_norm"], rel=1e-4)
    assert soft["loss"] != pytest.approx(hard["loss"], rel=1e-3)


@pytest.mark.parametrize("mode", ["smoothing", "weighting"])
def test_soft_dpo_trainer_step_matches_hard_at_p_1_and_differs_at_p_0_7(tiny, tmp_path, mode):
    """At the first step policy == reference, so every DPO loss is log 2; the gradient carries the label."""
    from trl import DPOTrainer

    from rlaif.training.soft_labels import SoftDPOTrainer

    hard = first_step(DPOTrainer, tiny, tmp_path, pairs(1.0))
    soft_certain = first_step(SoftDPOTrainer, tiny, tmp_path, pairs(1.0), soft_mode=mode)
    soft = first_step(SoftDPOTrainer, tiny, tmp_path, pairs(0.7), soft_mode=mode)
    assert soft_certain["loss"] == pytest.approx(hard["loss"], rel=1e-5)
    assert soft_certain["grad_norm"] == pytest.approx(hard["grad_norm"], rel=1e-4)
    # smoothing eps = 0.3 scales the first gradient by 1 - 2 eps = 0.4; weighting's |2p - 1| = 0.4 is divided
    # by the mean weight of the training pairs (0.4 here, every pair alike), so equal weights change nothing
    assert soft["grad_norm"] == pytest.approx((0.4 if mode == "smoothing" else 1.0) * hard["grad_norm"], rel=1e-3)
    assert soft_certain["rewards/accuracies"] == hard["rewards/accuracies"]


# ---------------------------------------------------------------- issue 23, item 5: every DPO setting applies or is refused (tiny models)


def test_weighting_divides_by_the_mean_weight_of_the_training_pairs(tiny, tmp_path):
    """Weights |2p - 1| = 0.8 and 0.2 (mean 0.5) become 1.6 and 0.4: the loss keeps the hard loss's scale
    (log 2 at the first step, where policy == reference) instead of shrinking with the judge's doubt."""
    from trl import DPOTrainer

    from rlaif.training.soft_labels import SoftDPOTrainer

    mixed = [{**row, "p_chosen": p} for row, p in zip(pairs(1.0), (0.9, 0.6))]
    hard = first_step(DPOTrainer, tiny, tmp_path, pairs(1.0))
    weighted = first_step(SoftDPOTrainer, tiny, tmp_path, mixed, soft_mode="weighting")
    assert hard["loss"] == pytest.approx(math.log(2), rel=1e-4)
    assert weighted["loss"] == pytest.approx(hard["loss"], rel=1e-4)


def test_soft_dpo_applies_loss_weights(tiny, tmp_path):
    from rlaif.training.soft_labels import SoftDPOTrainer

    once = first_step(SoftDPOTrainer, tiny, tmp_path, pairs(0.8), soft_mode="smoothing")
    twice = first_step(
        SoftDPOTrainer, tiny, tmp_path, pairs(0.8), config_options={"loss_weights": [2.0]}, soft_mode="smoothing"
    )
    assert twice["loss"] == pytest.approx(2 * once["loss"], rel=1e-5)


def test_soft_dpo_adds_the_moe_router_auxiliary_loss(tmp_path):
    """A Mixtral-style MoE: TRL's DPO adds router_aux_loss_coef * the load-balancing loss; so does the soft loss."""
    from rlaif.training.soft_labels import SoftDPOTrainer
    from tests.tiny_lm import tiny_causal_lm

    moe = tiny_causal_lm(tmp_path / "moe", moe=True)
    without = first_step(
        SoftDPOTrainer, moe, tmp_path, pairs(0.8), config_options={"router_aux_loss_coef": 0.0}, soft_mode="smoothing"
    )
    with_aux = first_step(
        SoftDPOTrainer, moe, tmp_path, pairs(0.8), config_options={"router_aux_loss_coef": 0.5}, soft_mode="smoothing"
    )
    assert with_aux["aux_loss"] > 0 and "aux_loss" not in without
    assert with_aux["loss"] == pytest.approx(without["loss"] + 0.5 * with_aux["aux_loss"], rel=1e-4)


def test_soft_dpo_refuses_wpo_weighting_it_would_ignore(tiny, tmp_path):
    from rlaif.training.soft_labels import SoftDPOTrainer

    with pytest.raises(ValueError, match="use_weighting"):
        first_step(
            SoftDPOTrainer, tiny, tmp_path, pairs(0.8), config_options={"use_weighting": True}, soft_mode="weighting"
        )


def test_soft_dpo_refuses_a_label_smoothing_it_would_ignore(tiny, tmp_path):
    """A global label_smoothing has no place in the soft loss (the soft labels are the per-pair smoothing):
    a DPOConfig that reaches SoftDPOTrainer with one is refused by the trainer itself, not only by
    rlaif's YAML check."""
    from rlaif.training.soft_labels import SoftDPOTrainer

    for mode in ("smoothing", "weighting"):
        with pytest.raises(ValueError, match="label_smoothing"):
            first_step(
                SoftDPOTrainer, tiny, tmp_path, pairs(0.8), config_options={"label_smoothing": 0.2}, soft_mode=mode
            )
