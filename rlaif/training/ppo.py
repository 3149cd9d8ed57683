"""PPO (RLHF stage 3) in plain transformers + torch: TRL 1.16 has no PPOTrainer.

One step, as in Ouyang et al. 2022 / TRL's former PPOTrainer:
1. rollout: `batch_size` prompts (chat template, left-padded) are answered by sampling from the
   policy (`temperature`, at most `max_new_tokens`); a response ends at its first EOS token;
2. score: the reward function (a reward model or the judge, rlaif.training.rewards) gives one
   score per response;
3. with no gradient: the policy's token log-probabilities and values (a value head: one linear
   layer on the last hidden state) and the frozen reference's log-probabilities (a copy of the
   starting policy; with LoRA the policy with its adapters switched off);
4. per-token reward: -kl_coef * (log p - log p_ref) on every response token, plus the score on
   the last one; advantages by GAE (`gamma`, `lam`), whitened when `whiten_advantages`;
5. `ppo_epochs` passes over shuffled minibatches of `mini_batch_size` responses: clipped
   policy loss (`clip_range`) + vf_coef * clipped value loss (`clip_range_value`), AdamW,
   gradients clipped to `max_grad_norm`.
`job.on_metrics` gets per step: step, loss, policy_loss, value_loss, kl (mean over responses of the
summed per-token log p - log p_ref), mean_reward (mean score), non_score_reward, clipfrac,
value_clipfrac, approx_kl, response_length, learning_rate, seconds (and reward_failed with a judge).
The policy (without the value head) and the tokenizer are saved to output_dir/model (LoRA: /adapter).
"""

from __future__ import annotations

import random
import time
from dataclasses import dataclass, field

import torch

from rlaif.training.job import TrainJob
from rlaif.training.ppo_core import gae, masked_mean, per_token_rewards, policy_loss, response_mask, token_logprobs, value_loss, whiten
from rlaif.training.ppo_model import ValueHead, autocast, config_from_settings, frozen_reference, load_policy, load_tokenizer, prompt_text, save_policy


@dataclass
class PPOConfig:
    """Settings of `rlaif train ppo` (pass any of them under `options:` in the training YAML)."""

    learning_rate: float = field(default=1e-6, metadata={"help": "AdamW learning rate of the policy and the value head."})
    batch_size: int = field(default=4, metadata={"help": "Prompts (responses) per rollout, i.e. per PPO step."})
    mini_batch_size: int = field(default=2, metadata={"help": "Responses per gradient step inside a PPO epoch."})
    ppo_epochs: int = field(default=2, metadata={"help": "Passes over each rollout batch."})
    max_steps: int = field(default=10, metadata={"help": "PPO steps (rollout + update) to run."})
    max_new_tokens: int = field(default=48, metadata={"help": "Most tokens per sampled response."})
    max_length: int = field(default=512, metadata={"help": "Most prompt + response tokens; prompts are cut from the left to fit."})
    temperature: float = field(default=0.9, metadata={"help": "Sampling temperature of rollouts (log-probabilities are taken at the same temperature)."})
    kl_coef: float = field(default=0.05, metadata={"help": "Weight of the per-token KL penalty against the reference policy."})
    gamma: float = field(default=1.0, metadata={"help": "Discount factor of GAE."})
    lam: float = field(default=0.95, metadata={"help": "Lambda of GAE (bias/variance trade-off of the advantages)."})
    clip_range: float = field(default=0.2, metadata={"help": "Clip range of the policy ratio."})
    clip_range_value: float = field(default=0.2, metadata={"help": "Clip range of the value function around the rollout's values."})
    vf_coef: float = field(default=0.1, metadata={"help": "Weight of the value loss in the total loss."})
    whiten_advantages: bool = field(default=True, metadata={"help": "Normalise the advantages of each rollout to zero mean and unit variance."})
    max_grad_norm: float = field(default=1.0, metadata={"help": "Gradients are clipped to this norm."})
    seed: int = field(default=0, metadata={"help": "Seed of prompt order and sampling."})


@dataclass
class Rollout:
    query: torch.Tensor  # B x Q prompt ids, left-padded
    query_mask: torch.Tensor
    responses: torch.Tensor  # B x T sampled ids
    mask: torch.Tensor  # B x T, 1 on response tokens
    texts: list[str]


def rollout(policy, tokenizer, prompts: list[list[dict]], cfg: PPOConfig, device: str) -> Rollout:
    tokenizer.padding_side, tokenizer.truncation_side = "left", "left"
    texts = [prompt_text(tokenizer, p) for p in prompts]
    enc = tokenizer(texts, return_tensors="pt", padding=True, truncation=True, max_length=max(cfg.max_length - cfg.max_new_tokens, 8), add_special_tokens=False).to(device)
    with torch.no_grad(), autocast(device):
        out = policy.generate(
            **enc, do_sample=True, temperature=cfg.temperature, top_k=0, top_p=1.0, max_new_tokens=cfg.max_new_tokens,
            pad_token_id=tokenizer.pad_token_id, eos_token_id=tokenizer.eos_token_id,
        )
    responses = out[:, enc["input_ids"].shape[1] :]
    mask = response_mask(responses, tokenizer.eos_token_id)
    decoded = [tokenizer.decode(r[m.bool()], skip_special_tokens=True).strip() for r, m in zip(responses, mask)]
    return Rollout(enc["input_ids"], enc["attention_mask"], responses, mask, decoded)


def forward(model, batch: Rollout, index, temperature: float, value_head: ValueHead | None = None):
    """Token log-probabilities of the responses (and values, with a value head) for rows `index`."""
    query, responses = batch.query[index], batch.responses[index]
    ids = torch.cat([query, responses], dim=1)
    attention = torch.cat([batch.query_mask[index], batch.mask[index].long()], dim=1)
    positions = (attention.cumsum(dim=1) - 1).clamp(min=0)
    out = model(input_ids=ids, attention_mask=attention, position_ids=positions, output_hidden_states=value_head is not None)
    start = query.shape[1] - 1
    logprobs = token_logprobs(out.logits[:, start:-1], responses, temperature)
    values = value_head(out.hidden_states[-1][:, start:-1]) if value_head is not None else None
    return logprobs, values


def reference_logprobs(policy, reference, batch: Rollout, temperature: float) -> torch.Tensor:
    everything = slice(None)
    if reference is not None:
        return forward(reference, batch, everything, temperature)[0]
    with policy.disable_adapter():  # LoRA: the base weights are the reference
        return forward(policy, batch, everything, temperature)[0]


def ppo_update(policy, value_head, optimizer, batch: Rollout, old: dict, cfg: PPOConfig, device: str) -> dict:
    """`ppo_epochs` passes of clipped policy + value losses over shuffled minibatches."""
    sums = {"loss": 0.0, "policy_loss": 0.0, "value_loss": 0.0, "clipfrac": 0.0, "value_clipfrac": 0.0, "approx_kl": 0.0}
    n, updates = len(batch.texts), 0
    params = [p for p in policy.parameters() if p.requires_grad] + list(value_head.parameters())
    for _ in range(cfg.ppo_epochs):
        order = torch.randperm(n)
        for start in range(0, n, cfg.mini_batch_size):
            index = order[start : start + cfg.mini_batch_size].to(device)
            mask = batch.mask[index]
            with autocast(device):
                logprobs, values = forward(policy, batch, index, cfg.temperature, value_head)
            pl, clipfrac = policy_loss(logprobs, old["logprobs"][index], old["advantages"][index], mask, cfg.clip_range)
            vl, vclip = value_loss(values, old["values"][index], old["returns"][index], mask, cfg.clip_range_value)
            loss = pl + cfg.vf_coef * vl
            optimizer.zero_grad()
            loss.backward()
            torch.nn.utils.clip_grad_norm_(params, cfg.max_grad_norm)
            optimizer.step()
            approx_kl = 0.5 * masked_mean((logprobs.detach() - old["logprobs"][index]) ** 2, mask)
            for key, value in zip(sums, (loss, pl, vl, clipfrac, vclip, approx_kl)):
                sums[key] += float(value.detach()) if isinstance(value, torch.Tensor) else float(value)
            updates += 1
    return {key: value / max(updates, 1) for key, value in sums.items()}


def score_rollout(job: TrainJob, rows: list[dict], batch: Rollout, device: str) -> torch.Tensor:
    """The reward function's score per response; other row columns are passed by keyword (as TRL does)."""
    columns = {key: [row.get(key) for row in rows] for key in rows[0] if key != "prompt"}
    completions = [[{"role": "assistant", "content": text}] for text in batch.texts]
    scores = job.reward([row["prompt"] for row in rows], completions, **columns)
    if len(scores) != len(rows):
        raise ValueError(f"the reward function gave {len(scores)} scores for {len(rows)} responses")
    return torch.tensor(scores, dtype=torch.float32, device=device)


def ppo_step(job: TrainJob, rows: list[dict], models: dict, cfg: PPOConfig) -> dict:
    """One rollout + update; returns the step's metrics."""
    policy, value_head, tokenizer, device = models["policy"], models["value_head"], models["tokenizer"], job.device
    batch = rollout(policy, tokenizer, [row["prompt"] for row in rows], cfg, device)
    everything = slice(None)
    with torch.no_grad(), autocast(device):
        logprobs, values = forward(policy, batch, everything, cfg.temperature, value_head)
        ref = reference_logprobs(policy, models["reference"], batch, cfg.temperature)
    scores = score_rollout(job, rows, batch, device)
    rewards, kl = per_token_rewards(scores, logprobs.float(), ref.float(), batch.mask, cfg.kl_coef)
    advantages, returns = gae(rewards, values.float(), batch.mask, cfg.gamma, cfg.lam)
    if cfg.whiten_advantages:
        advantages = whiten(advantages, batch.mask)
    old = {"logprobs": logprobs.float(), "values": values.float(), "advantages": advantages, "returns": returns}
    losses = ppo_update(policy, value_head, models["optimizer"], batch, old, cfg, device)
    return {
        **losses,
        "kl": float(kl.sum(dim=1).mean()),
        "mean_reward": float(scores.mean()),
        "non_score_reward": float((-cfg.kl_coef * kl).sum(dim=1).mean()),
        "response_length": float(batch.mask.sum(dim=1).mean()),
    }


def batches(rows: list[dict], size: int, seed: int):
    """Endless batches of `size` rows, reshuffled each pass (seeded)."""
    rng, order = random.Random(seed), []
    while True:
        if len(order) < size:
            fresh = list(range(len(rows)))
            rng.shuffle(fresh)
            order += fresh
        yield [rows[i] for i in order[:size]]
        order = order[size:]


def run(job: TrainJob) -> dict:
    """Train with PPO on job.rows ('prompts' rows) against job.reward; returns the final metrics."""
    if job.reward is None:
        raise ValueError("PPO needs a reward: set reward: {model: ID} or reward: {judge: RECIPE.yaml} in the training settings")
    if not job.rows:
        raise ValueError("PPO got no prompts to train on")
    cfg = config_from_settings(PPOConfig, job.settings)
    torch.manual_seed(cfg.seed)
    tokenizer = load_tokenizer(job.model_path)
    policy, lora = load_policy(job.model_path, job.settings, job.device)
    policy.eval()  # no dropout: rollout and update log-probabilities agree
    value_head = ValueHead(policy.config.hidden_size).to(job.device)
    params = [p for p in policy.parameters() if p.requires_grad] + list(value_head.parameters())
    models = {
        "policy": policy, "value_head": value_head, "tokenizer": tokenizer, "reference": frozen_reference(policy, lora),
        "optimizer": torch.optim.AdamW(params, lr=cfg.learning_rate),
    }
    metrics: dict = {}
    feed = batches(job.rows, cfg.batch_size, cfg.seed)
    for step in range(1, cfg.max_steps + 1):
        started = time.perf_counter()
        metrics = {"step": step, **ppo_step(job, next(feed), models, cfg), "learning_rate": cfg.learning_rate}
        counts = getattr(job.reward, "counts", None)
        if isinstance(counts, dict) and "failed" in counts:
            metrics["reward_failed"] = float(counts["failed"])
        metrics["seconds"] = time.perf_counter() - started
        job.on_metrics(dict(metrics))
    save_policy(policy, tokenizer, job.output_dir, lora)
    return {**metrics, "steps": cfg.max_steps}
