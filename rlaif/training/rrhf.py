"""RRHF (Yuan et al. 2023, "Rank Responses to align Human Feedback"): no reward model, no PPO.

For each prompt of a listwise ranking, the policy scores each response by its length-normalised
log-probability p_i = sum_t log pi(y_i,t | x, y_i,<t) / |y_i|^length_penalty. The loss is

    L = sum over pairs with score_i < score_j of max(0, p_i - p_j)   (ranking: better answers more likely)
      + sft_weight * cross-entropy of the best-scored response        (the SFT term)

averaged over the prompts of a batch. job.rows are 'listwise' export rows: {"prompt": messages,
"responses": [assistant message lists or strings], "scores": [...], "ranks": [...]}; the judge's
scores decide the order (higher is better; equal scores make no pair).
"""

from __future__ import annotations

import random
import time
from collections.abc import Sequence
from dataclasses import dataclass, field

import torch

from rlaif.training.job import TrainJob, completion_text
from rlaif.training.ppo_model import (
    autocast,
    config_from_settings,
    load_policy,
    load_tokenizer,
    prompt_text,
    save_policy,
    set_lora_dropout,
)


@dataclass
class RRHFConfig:
    """Settings of `rlaif train rrhf` (pass any of them under `options:` in the training YAML)."""

    learning_rate: float = field(default=2e-5, metadata={"help": "AdamW learning rate."})
    batch_size: int = field(
        default=1, metadata={"help": "Prompts (each with all its ranked responses) per optimizer step."}
    )
    max_steps: int = field(default=10, metadata={"help": "Optimizer steps to run."})
    max_length: int = field(
        default=512,
        metadata={
            "help": "Most prompt + response tokens; the prompt is cut from the left, then the response from the right."
        },
    )
    sft_weight: float = field(
        default=1.0,
        metadata={"help": "Weight of the cross-entropy term on the best-scored response (the paper uses 1)."},
    )
    length_penalty: float = field(
        default=1.0,
        metadata={"help": "p_i divides the summed log-probability by |y_i| ** length_penalty (1: mean per token)."},
    )
    max_responses: int = field(
        default=8, metadata={"help": "At most this many responses per prompt (the best and the rest in score order)."}
    )
    max_grad_norm: float = field(default=1.0, metadata={"help": "Gradients are clipped to this norm."})
    seed: int = field(default=0, metadata={"help": "Seed of the row order."})


def rrhf_loss(
    logps: torch.Tensor, scores: Sequence[float], best_nll: torch.Tensor, sft_weight: float = 1.0
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """(total, ranking, sft) for one prompt: `logps` are the responses' length-normalised
    log-probabilities, `scores` the judge's scores, `best_nll` the mean token NLL of the best one.

    >>> total, rank, sft = rrhf_loss(torch.tensor([-1.0, -2.0, -0.5]), [0.2, 0.9, 0.5], torch.tensor(1.5))
    >>> rank.item(), total.item()  # pairs (0<1): max(0, -1+2)=1; (0<2): 0; (2<1): max(0, -0.5+2)=1.5
    (2.5, 4.0)
    """
    s = torch.as_tensor(list(scores), dtype=logps.dtype, device=logps.device)
    worse = s.unsqueeze(1) < s.unsqueeze(0)  # worse[i, j]: response i scored below response j
    diff = logps.unsqueeze(1) - logps.unsqueeze(0)  # diff[i, j] = p_i - p_j
    rank = torch.clamp(diff, min=0)[worse].sum()
    return rank + sft_weight * best_nll, rank, best_nll


def best_index(scores: Sequence[float]) -> int:
    """The best-scored response (the first one on a tie).

    >>> best_index([0.3, 0.9, 0.9])
    1
    """
    return max(range(len(scores)), key=lambda i: (scores[i], -i))


def encode(
    tokenizer, prompt: list[dict], responses: list, max_length: int
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """(input_ids, attention_mask, labels) for one prompt's responses, right-padded; labels are
    -100 except on each response's own tokens (the chat template's assistant turn)."""
    head = prompt_text(tokenizer, prompt)
    prompt_ids = tokenizer(head, add_special_tokens=False)["input_ids"][-max(max_length // 2, 1) :]
    rows = []
    for response in responses:
        full = tokenizer.apply_chat_template(
            [*prompt, {"role": "assistant", "content": completion_text(response)}], tokenize=False
        )
        tail = full[len(head) :] if full.startswith(head) else completion_text(response) + (tokenizer.eos_token or "")
        answer = tokenizer(tail, add_special_tokens=False)["input_ids"][: max(max_length - len(prompt_ids), 1)]
        rows.append((prompt_ids + answer, [-100] * len(prompt_ids) + answer))
    width = max(len(ids) for ids, _ in rows)
    pad = tokenizer.pad_token_id
    ids = torch.tensor([i + [pad] * (width - len(i)) for i, _ in rows])
    attention = torch.tensor([[1] * len(i) + [0] * (width - len(i)) for i, _ in rows])
    labels = torch.tensor([lab + [-100] * (width - len(lab)) for _, lab in rows])
    return ids, attention, labels


def sequence_logps(
    logits: torch.Tensor, labels: torch.Tensor, length_penalty: float = 1.0
) -> tuple[torch.Tensor, torch.Tensor]:
    """Per sequence: (summed label log-probability / length ** length_penalty, mean token NLL).

    >>> logits = torch.zeros(1, 3, 4)  # uniform over 4 tokens: log p = -log 4 per token
    >>> lp, nll = sequence_logps(logits, torch.tensor([[-100, 1, 2]]))
    >>> round(lp.item(), 4), round(nll.item(), 4)
    (-1.3863, 1.3863)
    """
    logits, labels = logits[:, :-1].float(), labels[:, 1:]
    mask = (labels != -100).float()
    logprobs = torch.gather(torch.log_softmax(logits, dim=-1), 2, labels.clamp(min=0).unsqueeze(-1)).squeeze(-1) * mask
    lengths = mask.sum(dim=1).clamp(min=1)
    return logprobs.sum(dim=1) / lengths**length_penalty, -logprobs.sum(dim=1) / lengths


def prompt_loss(
    policy, tokenizer, row: dict, cfg: RRHFConfig, device: str
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    order = sorted(range(len(row["scores"])), key=lambda i: -row["scores"][i])[: cfg.max_responses]
    responses, scores = [row["responses"][i] for i in order], [float(row["scores"][i]) for i in order]
    ids, attention, labels = (t.to(device) for t in encode(tokenizer, row["prompt"], responses, cfg.max_length))
    with autocast(device):
        logits = policy(input_ids=ids, attention_mask=attention).logits
    logps, nll = sequence_logps(logits, labels, cfg.length_penalty)
    return rrhf_loss(logps, scores, nll[best_index(scores)], cfg.sft_weight)


def run(job: TrainJob) -> dict:
    """Train with RRHF on job.rows ('listwise' rows); returns the final metrics."""
    rows = [
        r for r in job.rows if len(r.get("responses") or []) >= 1 and len(r["responses"]) == len(r.get("scores") or [])
    ]
    if not rows:
        raise ValueError("RRHF got no ranked prompts (listwise rows with responses and scores)")
    cfg = config_from_settings(RRHFConfig, job.settings)
    torch.manual_seed(cfg.seed)
    tokenizer = load_tokenizer(job.model_path)
    policy, lora = load_policy(
        job.model_path, job.settings, job.device
    )  # LoRA: the settings' lora_r, lora_alpha, lora_dropout, lora_target_modules
    policy.eval()  # the base model's own dropout off
    set_lora_dropout(policy, True)  # the adapters' lora_dropout on (a setting of the model id); no-op without LoRA
    params = [p for p in policy.parameters() if p.requires_grad]
    optimizer = torch.optim.AdamW(params, lr=cfg.learning_rate)
    rng, metrics = random.Random(cfg.seed), {}
    for step in range(1, cfg.max_steps + 1):
        started = time.perf_counter()
        batch = rng.sample(rows, min(cfg.batch_size, len(rows)))
        losses = [prompt_loss(policy, tokenizer, row, cfg, job.device) for row in batch]
        loss = torch.stack([total for total, _, _ in losses]).mean()
        optimizer.zero_grad()
        loss.backward()
        torch.nn.utils.clip_grad_norm_(params, cfg.max_grad_norm)
        optimizer.step()
        metrics = {
            "step": step,
            "loss": float(loss.detach()),
            "rank_loss": sum(float(r.detach()) for _, r, _ in losses) / len(losses),
            "sft_loss": sum(float(s.detach()) for _, _, s in losses) / len(losses),
            "learning_rate": cfg.learning_rate,
            "seconds": time.perf_counter() - started,
        }
        job.on_metrics(dict(metrics))
    save_policy(policy, tokenizer, job.output_dir, lora)
    return {**metrics, "steps": cfg.max_steps}
