"""The judge's soft labels in the losses ("distilled RLAIF", Lee et al. 2023).

Each kept pair carries `p_chosen`, the judge's position-debiased P(chosen is better). With hard
labels every pair counts as certain (p = 1); with soft labels:

- reward model, `cross_entropy`: the Bradley-Terry cross-entropy against p instead of 1:
  ``-(p * logsigmoid(r_c - r_r) + (1 - p) * logsigmoid(r_r - r_c))``;
- DPO, `smoothing` (conservative DPO): per-pair label smoothing eps = 1 - p:
  ``-((1 - eps) * logsigmoid(beta * d) + eps * logsigmoid(-beta * d))``;
- DPO, `weighting`: the DPO loss of each pair weighted by its confidence |2p - 1|, divided by the
  mean confidence of the training pairs (the sum of the weights over the data, per pair), so that
  the loss keeps the scale of the hard loss (and the learning rate its meaning) however unsure the
  judge is on average. Not per batch: at batch size 1 (or 2) dividing by the batch's own weights
  would cancel them, giving an unsure pair the full weight of a certain one. TRL's `use_weighting`
  (WPO, Zhou et al. 2024) likewise takes the plain mean of its weighted losses; it is a different
  weight (the policy's own probability of the pair) and is refused with soft labels.

When every p is 1 each soft loss equals the hard one exactly (and p = 0 is the hard loss of the
swapped pair). The losses are plain functions; `SoftRewardTrainer` and `SoftDPOTrainer` are TRL's
trainers with the per-pair `p_chosen` column kept through the collator and the loss swapped.
"""

from __future__ import annotations

from typing import Any

import torch
import torch.nn.functional as F
from trl import DPOTrainer, RewardTrainer

SOFT_COLUMN = "p_chosen"


def soft_rm_loss(chosen: torch.Tensor, rejected: torch.Tensor, p_chosen: torch.Tensor) -> torch.Tensor:
    """Cross-entropy of the Bradley-Terry P(chosen > rejected) against the judge's p_chosen."""
    delta = chosen - rejected
    p = p_chosen.to(delta.dtype)
    return -(p * F.logsigmoid(delta) + (1 - p) * F.logsigmoid(-delta)).mean()


def soft_dpo_loss(
    delta: torch.Tensor, beta: float, p_chosen: torch.Tensor, mode: str = "smoothing", mean_weight: float = 1.0
) -> torch.Tensor:
    """DPO with per-pair label smoothing eps = 1 - p (`smoothing`) or confidence weights |2p - 1|
    divided by `mean_weight`, the mean weight over the training pairs (`weighting`)."""
    p = p_chosen.to(delta.dtype)
    if mode == "smoothing":
        eps = 1 - p
        return -((1 - eps) * F.logsigmoid(beta * delta) + eps * F.logsigmoid(-beta * delta)).mean()
    if mode == "weighting":
        return ((2 * p - 1).abs() * -F.logsigmoid(beta * delta)).mean() / mean_weight
    raise ValueError(f"unknown soft-label DPO mode {mode!r} (smoothing or weighting)")


def mean_confidence(p_chosen: Any) -> float:
    """The mean weight |2p - 1| over the training pairs (what `weighting` divides by).

    >>> mean_confidence([0.9, 0.6, 0.1])
    0.6
    """
    p = torch.as_tensor(list(p_chosen), dtype=torch.float64)
    weight = float((2 * p - 1).abs().mean()) if len(p) else 0.0
    if weight <= 0:
        raise ValueError(
            "soft_labels weighting: every pair has p_chosen 0.5, so every weight |2p - 1| is 0 and nothing is learnt - use soft_labels: smoothing"
        )
    return round(weight, 12)


class SoftLabelCollator:
    """Wraps a trainer's collator: takes `p_chosen` out of each example and adds it as a float tensor."""

    def __init__(self, inner: Any) -> None:
        self.inner = inner

    def __call__(self, examples: list[dict[str, Any]]) -> dict[str, Any]:
        labels = torch.tensor([float(example[SOFT_COLUMN]) for example in examples], dtype=torch.float32)
        batch = self.inner([{k: v for k, v in example.items() if k != SOFT_COLUMN} for example in examples])
        batch[SOFT_COLUMN] = labels
        return batch


def _keep_soft_column(trainer: Any) -> None:
    if SOFT_COLUMN not in trainer._signature_columns:
        trainer._signature_columns = [*trainer._signature_columns, SOFT_COLUMN]


class SoftRewardTrainer(RewardTrainer):
    """RewardTrainer whose loss is the cross-entropy against each pair's p_chosen (its margin is not used)."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.data_collator = SoftLabelCollator(self.data_collator)

    def _set_signature_columns_if_needed(self) -> None:
        super()._set_signature_columns_if_needed()
        _keep_soft_column(self)

    def compute_loss(self, model, inputs, return_outputs=False, num_items_in_batch=None):
        p_chosen = inputs.pop(SOFT_COLUMN)
        inputs.pop("margin", None)  # margin = 2p - 1 restates p; the soft loss uses p itself
        _, outputs = super().compute_loss(model, inputs, return_outputs=True)  # TRL's forward pass and metrics
        chosen, rejected = torch.chunk(outputs.logits.squeeze(-1), chunks=2)
        loss = soft_rm_loss(chosen, rejected, p_chosen)
        if self.args.center_rewards_coefficient is not None:
            loss = loss + self.args.center_rewards_coefficient * torch.mean((chosen + rejected) ** 2)
        return (loss, outputs) if return_outputs else loss


class SoftDPOTrainer(DPOTrainer):
    """DPOTrainer (sigmoid loss, reverse KL) with the soft-label loss of `soft_mode` per pair; like
    TRL's loss it is scaled by `loss_weights` and adds the MoE router's auxiliary loss. Settings it
    cannot honour (another loss_type or f-divergence, ld_alpha, use_weighting, a global
    label_smoothing: the soft labels are the per-pair smoothing) are a ValueError naming them."""

    def __init__(self, *args: Any, soft_mode: str = "smoothing", **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        ignored = {
            "loss_type": self.loss_types != ["sigmoid"],
            "f_divergence_type": self.f_divergence_type != "reverse_kl",
            "ld_alpha": self.ld_alpha is not None,
            "use_weighting": bool(self.use_weighting),
            "label_smoothing": self.label_smoothing != 0.0,
        }
        if any(ignored.values()):
            raise ValueError(
                f"soft labels apply to the standard DPO loss, and would ignore {', '.join(key for key, bad in ignored.items() if bad)}: "
                "loss_type sigmoid, f_divergence_type reverse_kl, no ld_alpha, no use_weighting (TRL's WPO weights), "
                "label_smoothing 0 (the soft labels are the per-pair smoothing) - drop those options or the soft labels"
            )
        self.soft_mode = soft_mode
        self.mean_weight = mean_confidence(self.train_dataset[SOFT_COLUMN]) if soft_mode == "weighting" else 1.0
        self.data_collator = SoftLabelCollator(self.data_collator)

    def _set_signature_columns_if_needed(self) -> None:
        super()._set_signature_columns_if_needed()
        _keep_soft_column(self)

    def _sequence_logps(self, model: Any, model_kwargs: dict, labels: torch.Tensor, seq_len: int) -> torch.Tensor:
        return model(**model_kwargs, labels=labels, fused_lm_head=True).log_probs[:, -seq_len:].sum(dim=1)

    def _policy_logps(
        self, model: Any, model_kwargs: dict, labels: torch.Tensor, seq_len: int
    ) -> tuple[torch.Tensor, torch.Tensor | None]:
        """Summed log-probabilities of the policy, and its MoE load-balancing loss (None unless enabled)."""
        router = {"output_router_logits": True} if self.aux_loss_enabled else {}
        outputs = model(**model_kwargs, **router, labels=labels, fused_lm_head=True)
        return outputs.log_probs[:, -seq_len:].sum(dim=1), outputs.aux_loss if self.aux_loss_enabled else None

    def _reference_logps(self, inputs: dict, model_kwargs: dict, labels: torch.Tensor, seq_len: int) -> torch.Tensor:
        from accelerate.utils import is_peft_model
        from trl.models.utils import disable_gradient_checkpointing
        from trl.trainer.utils import use_adapter

        if self.precompute_ref_logps:
            return torch.cat([inputs["ref_chosen_logps"], inputs["ref_rejected_logps"]])
        with torch.no_grad(), disable_gradient_checkpointing(self.model, self.args.gradient_checkpointing_kwargs):
            if is_peft_model(self.model) and self.ref_model is None:
                unwrapped = self.accelerator.unwrap_model(self.model)
                with use_adapter(unwrapped, adapter_name="ref" if "ref" in unwrapped.peft_config else None):
                    return self._sequence_logps(self.model, model_kwargs, labels, seq_len)
            return self._sequence_logps(self.ref_model, model_kwargs, labels, seq_len)

    def _compute_loss(self, model, inputs, return_outputs):
        mode = "train" if self.model.training else "eval"
        p_chosen = inputs.pop(SOFT_COLUMN)
        completion_mask = inputs["completion_mask"]
        model_kwargs = {
            k: v for k, v in inputs.items() if k not in {"completion_mask", "ref_chosen_logps", "ref_rejected_logps"}
        }
        model_kwargs["use_cache"] = False
        labels = inputs["input_ids"].masked_fill(completion_mask == 0, -100)
        seq_len = completion_mask.size(1) - 1
        logps, aux_loss = self._policy_logps(model, model_kwargs, labels, seq_len)
        ref_logps = self._reference_logps(inputs, model_kwargs, labels, seq_len)
        chosen_ratio, rejected_ratio = (logps - ref_logps).chunk(2, dim=0)
        loss = (
            soft_dpo_loss(chosen_ratio - rejected_ratio, self.beta, p_chosen, self.soft_mode, self.mean_weight)
            * self.loss_weights[0]
        )
        if aux_loss is not None:
            loss = loss + self.router_aux_loss_coef * aux_loss
            self._metrics[mode]["aux_loss"].append(
                self.accelerator.gather_for_metrics(aux_loss.detach()).mean().item()
            )
        self._log_rewards(mode, self.beta * chosen_ratio.detach(), self.beta * rejected_ratio.detach())
        if return_outputs:
            return loss, None
        return loss

    def _log_rewards(self, mode: str, chosen: torch.Tensor, rejected: torch.Tensor) -> None:
        gather = self.accelerator.gather
        self._metrics[mode]["rewards/chosen"].append(gather(chosen).mean().item())
        self._metrics[mode]["rewards/rejected"].append(gather(rejected).mean().item())
        self._metrics[mode]["rewards/accuracies"].append(gather((chosen > rejected).float()).mean().item())
        self._metrics[mode]["rewards/margins"].append(gather(chosen - rejected).mean().item())
