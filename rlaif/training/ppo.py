"""PPO (RLHF stage 3) in plain transformers + torch: TRL 1.16 has no PPOTrainer.

One step, as in Ouyang et al. 2022 / TRL's former PPOTrainer:
1. rollout: `batch_size` prompts (chat template, left-padded) are answered by sampling from
   softmax(logits / `temperature`), at most `max_new_tokens`, the distribution the PPO ratio and the
   KL assume: no top-k/top-p/min-p, repetition penalty or other setting of the model's
   generation_config reshapes it. A response ends at its first stop id: the tokenizer's EOS or any
   EOS id of the model's generation_config (end-of-turn tokens such as <|im_end|>, <|eot_id|>);
   the response mask ends there and the reward sees the text before it;
2. score: the reward function (a reward model or the judge, rlaif.training.rewards) gives one
   score per response; standardised by running moments when `normalize_reward`, then clipped to
   +-`reward_clip` (OpenRLHF's default 10). A missing score (None, or NaN / inf: the judge failed on
   that response) is no score, not the lowest: the response is left out of the running moments, the
   clip share, mean_reward, GAE, whitening and every loss (its rows of the loss mask are 0), and
   counted in `reward_failed`. A rollout with no score at all makes no update (AdamW's weight decay
   would move the weights even with zero gradients), and the minibatches hold scored rows only;
3. with no gradient: the policy's token log-probabilities and values (a value head: one linear
   layer on the last hidden state) and the frozen reference's log-probabilities (a copy of the
   starting policy; with LoRA the policy with its adapters switched off);
4. per-token reward: -kl_coef * (log p - log p_ref) on every response token, the log-ratio clamped to
   [-10, 10] (OpenRLHF's compute_approx_kl), plus the score on the last one; advantages by GAE
   (`gamma`, `lam`), whitened when `whiten_advantages`;
5. `ppo_epochs` passes over shuffled minibatches of `mini_batch_size` scored responses: clipped
   policy loss (`clip_range`) + vf_coef * clipped value loss (`clip_range_value`), AdamW with the
   policy at `learning_rate` and the value head at `value_learning_rate`, gradients clipped to
   `max_grad_norm`. The policy runs in eval mode throughout (no dropout: rollout and update
   log-probabilities agree), except LoRA's own dropout (`lora_dropout`), which is on in the
   update's forward passes only, as OpenRLHF trains in train mode and makes experience in eval mode.
`job.on_metrics` gets per step: step, loss, policy_loss, value_loss, kl (mean over responses of the
summed per-token log p - log p_ref, unclamped), mean_reward (mean raw score of the scored responses),
reward_clipped (share of the scored responses' scores the clip changed), non_score_reward (the KL
penalty optimised, log-ratios clamped, summed per scored response, averaged), clipfrac,
value_clipfrac, approx_kl, explained_variance (of the rollout's values for the returns; absent on a
step whose returns have no variance), response_length, learning_rate, value_learning_rate, seconds,
reward_failed (missing scores in the run so far, as rloo / grpo count them), update_skipped (1.0 on a
step whose rollout had no score: it has no loss, kl or mean_reward) and steps_skipped (such steps so far).
The policy (without the value head) and the tokenizer are saved to output_dir/model (LoRA: /adapter).
"""

from __future__ import annotations

import random
import time
from dataclasses import dataclass, field

import torch

from rlaif.core.errors import RecipeError
from rlaif.training.job import TrainJob
from rlaif.training.ppo_core import (
    RunningMoments,
    explained_variance,
    gae,
    masked_mean,
    per_token_rewards,
    policy_loss,
    response_mask,
    shape_scores,
    token_logprobs,
    value_loss,
    whiten,
)
from rlaif.training.ppo_model import (
    ValueHead,
    autocast,
    config_from_settings,
    frozen_reference,
    load_policy,
    load_tokenizer,
    lora_dropout_on,
    only_generation_config,
    prompt_text,
    save_policy,
)


@dataclass
class PPOConfig:
    """Settings of `rlaif train ppo` (pass any of them under `options:` in the training YAML)."""

    learning_rate: float = field(
        default=1e-6, metadata={"help": "AdamW learning rate of the policy (the value head has value_learning_rate)."}
    )
    value_learning_rate: float = field(
        default=9e-6,
        metadata={
            "help": "AdamW learning rate of the value head, in its own parameter group. Default 9e-6: OpenRLHF's critic "
            "learning rate, 9x its actor's 1e-6 (openrlhf/cli/train_ppo_ray.py). At the policy's rate the zero-initialised "
            "head barely moves, and GAE falls back to whitened Monte-Carlo returns; watch explained_variance in the metrics."
        },
    )
    batch_size: int = field(default=4, metadata={"help": "Prompts (responses) per rollout, i.e. per PPO step."})
    mini_batch_size: int = field(default=2, metadata={"help": "Responses per gradient step inside a PPO epoch."})
    ppo_epochs: int = field(default=2, metadata={"help": "Passes over each rollout batch."})
    max_steps: int = field(default=10, metadata={"help": "PPO steps (rollout + update) to run."})
    max_new_tokens: int = field(default=48, metadata={"help": "Most tokens per sampled response."})
    max_length: int = field(
        default=512, metadata={"help": "Most prompt + response tokens; prompts are cut from the left to fit."}
    )
    temperature: float = field(
        default=0.9,
        metadata={"help": "Sampling temperature of rollouts (log-probabilities are taken at the same temperature)."},
    )
    kl_coef: float = field(
        default=0.05, metadata={"help": "Weight of the per-token KL penalty against the reference policy."}
    )
    gamma: float = field(default=1.0, metadata={"help": "Discount factor of GAE."})
    lam: float = field(default=0.95, metadata={"help": "Lambda of GAE (bias/variance trade-off of the advantages)."})
    clip_range: float = field(default=0.2, metadata={"help": "Clip range of the policy ratio."})
    clip_range_value: float = field(
        default=0.2, metadata={"help": "Clip range of the value function around the rollout's values."}
    )
    vf_coef: float = field(default=0.1, metadata={"help": "Weight of the value loss in the total loss."})
    whiten_advantages: bool = field(
        default=True, metadata={"help": "Normalise the advantages of each rollout to zero mean and unit variance."}
    )
    normalize_reward: bool = field(
        default=False,
        metadata={
            "help": "Standardise the scores by the running mean and standard deviation of every score so far, before "
            "reward_clip (TRL's former PPOTrainer use_score_scaling + use_score_norm). OpenRLHF's reward.normalize_enable uses "
            "a mean/std stored with its reward model instead; rlaif's reward models store none."
        },
    )
    reward_clip: float | None = field(
        default=10.0,
        metadata={
            "help": "Scores are clipped to [-reward_clip, reward_clip] before the per-token KL penalty is added. Default 10: "
            "OpenRLHF's reward.clip_range (-10, 10); a judge's rewards lie in [0, 1] and are never clipped. null: no clipping."
        },
    )
    max_grad_norm: float = field(default=1.0, metadata={"help": "Gradients are clipped to this norm."})
    seed: int = field(default=0, metadata={"help": "Seed of prompt order and sampling."})

    def __post_init__(self) -> None:
        if not self.value_learning_rate > 0:
            raise RecipeError(
                "training settings",
                "options.value_learning_rate",
                f"must be > 0, not {self.value_learning_rate}",
                "OpenRLHF's default is 9e-6",
            )
        if self.reward_clip is not None and not self.reward_clip > 0:
            raise RecipeError(
                "training settings",
                "options.reward_clip",
                f"must be > 0, not {self.reward_clip}",
                "use null for no clipping (the default is 10)",
            )


@dataclass
class Rollout:
    query: torch.Tensor  # B x Q prompt ids, left-padded
    query_mask: torch.Tensor
    responses: torch.Tensor  # B x T sampled ids
    mask: torch.Tensor  # B x T, 1 on response tokens
    texts: list[str]


def stop_ids(policy, tokenizer) -> list[int]:
    """The tokenizer's EOS and every EOS id of the model's generation config (end-of-turn tokens),
    as TRL's GRPOTrainer and rlaif's transformers backend stop."""
    configured = policy.generation_config.eos_token_id
    ids = [tokenizer.eos_token_id, *(configured if isinstance(configured, list) else [configured])]
    return list(dict.fromkeys(i for i in ids if i is not None))


def sampling_config(cfg: PPOConfig, stops: list[int], tokenizer):
    """Ancestral sampling from softmax(logits / temperature): every setting that would reshape the
    distribution is set to its neutral value (used with only_generation_config, so nothing is filled
    in from the model's own generation_config)."""
    from transformers import GenerationConfig

    return GenerationConfig(
        do_sample=True,
        temperature=cfg.temperature,
        top_k=0,
        top_p=1.0,
        min_p=None,
        typical_p=1.0,
        epsilon_cutoff=0.0,
        eta_cutoff=0.0,
        repetition_penalty=1.0,
        encoder_repetition_penalty=1.0,
        no_repeat_ngram_size=0,
        min_length=0,
        min_new_tokens=None,
        num_beams=1,
        renormalize_logits=False,
        max_new_tokens=cfg.max_new_tokens,
        eos_token_id=stops,
        pad_token_id=tokenizer.pad_token_id,
        bos_token_id=tokenizer.bos_token_id,
    )


def response_texts(tokenizer, responses: torch.Tensor, mask: torch.Tensor, stops: list[int]) -> list[str]:
    """What the reward sees: each response's tokens before its stop id."""
    texts = []
    for row, length in zip(responses.tolist(), mask.sum(dim=1).long().tolist()):
        kept = row[:length]
        kept = kept[:-1] if kept and kept[-1] in stops else kept
        texts.append(tokenizer.decode(kept, skip_special_tokens=True).strip())
    return texts


def rollout(policy, tokenizer, prompts: list[list[dict]], cfg: PPOConfig, device: str) -> Rollout:
    tokenizer.padding_side, tokenizer.truncation_side = "left", "left"
    texts = [prompt_text(tokenizer, p) for p in prompts]
    enc = tokenizer(
        texts,
        return_tensors="pt",
        padding=True,
        truncation=True,
        max_length=max(cfg.max_length - cfg.max_new_tokens, 8),
        add_special_tokens=False,
    ).to(device)
    stops = stop_ids(policy, tokenizer)
    config = sampling_config(cfg, stops, tokenizer)
    with torch.no_grad(), autocast(device), only_generation_config(policy, config):
        out = policy.generate(**enc, generation_config=config)
    responses = out[:, enc["input_ids"].shape[1] :]
    mask = response_mask(responses, stops)
    return Rollout(
        enc["input_ids"], enc["attention_mask"], responses, mask, response_texts(tokenizer, responses, mask, stops)
    )


def forward(model, batch: Rollout, index, temperature: float, value_head: ValueHead | None = None):
    """Token log-probabilities of the responses (and values, with a value head) for rows `index`."""
    query, responses = batch.query[index], batch.responses[index]
    ids = torch.cat([query, responses], dim=1)
    attention = torch.cat([batch.query_mask[index], batch.mask[index].long()], dim=1)
    positions = (attention.cumsum(dim=1) - 1).clamp(min=0)
    out = model(
        input_ids=ids, attention_mask=attention, position_ids=positions, output_hidden_states=value_head is not None
    )
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
    """`ppo_epochs` passes of clipped policy + value losses over shuffled minibatches of the scored rows.

    Only the scored rows are shuffled and split (the same draws as a rollout of those rows alone): an
    unscored row never takes a minibatch place, so failed judgments change neither the number of
    optimizer steps nor which scored rows share one."""
    sums = {
        "loss": 0.0,
        "policy_loss": 0.0,
        "value_loss": 0.0,
        "clipfrac": 0.0,
        "value_clipfrac": 0.0,
        "approx_kl": 0.0,
    }
    rows, updates = torch.nonzero(old["loss_mask"].any(dim=1)).squeeze(1).cpu(), 0
    params = [p for p in policy.parameters() if p.requires_grad] + list(value_head.parameters())
    for _ in range(cfg.ppo_epochs):
        order = rows[torch.randperm(len(rows))]
        for start in range(0, len(rows), cfg.mini_batch_size):
            index = order[start : start + cfg.mini_batch_size].to(device)
            mask = old["loss_mask"][index]
            with autocast(device), lora_dropout_on(policy):
                logprobs, values = forward(policy, batch, index, cfg.temperature, value_head)
            pl, clipfrac = policy_loss(
                logprobs, old["logprobs"][index], old["advantages"][index], mask, cfg.clip_range
            )
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
    """The reward function's score per response, NaN where it is missing (None); other row columns
    are passed by keyword (as TRL does)."""
    columns = {key: [row.get(key) for row in rows] for key in rows[0] if key != "prompt"}
    completions = [[{"role": "assistant", "content": text}] for text in batch.texts]
    scores = job.reward([row["prompt"] for row in rows], completions, **columns)
    if len(scores) != len(rows):
        raise ValueError(f"the reward function gave {len(scores)} scores for {len(rows)} responses")
    return torch.tensor([float("nan") if s is None else float(s) for s in scores], dtype=torch.float32, device=device)


def ppo_step(job: TrainJob, rows: list[dict], models: dict, cfg: PPOConfig) -> dict:
    """One rollout + update; returns the step's metrics."""
    policy, value_head, tokenizer, device = models["policy"], models["value_head"], models["tokenizer"], job.device
    counts = models["counts"]
    batch = rollout(policy, tokenizer, [row["prompt"] for row in rows], cfg, device)
    scores = score_rollout(job, rows, batch, device)
    scored = torch.isfinite(scores)  # a missing score (None -> NaN, or inf) is no score, not the lowest
    counts["failed"] += int((~scored).sum())
    counts["scored"] += int(scored.sum())
    length = float(batch.mask.sum(dim=1).mean())
    if not scored.any():
        counts["skipped"] += 1
        return {
            "response_length": length,
            "reward_failed": float(counts["failed"]),
            "update_skipped": 1.0,
            "steps_skipped": float(counts["skipped"]),
        }
    loss_mask = batch.mask * scored.unsqueeze(1).to(
        batch.mask.dtype
    )  # the unscored rows take no part in GAE, whitening or the losses
    everything = slice(None)
    with torch.no_grad(), autocast(device):
        logprobs, values = forward(policy, batch, everything, cfg.temperature, value_head)
        ref = reference_logprobs(policy, models["reference"], batch, cfg.temperature)
    logprobs, values, ref = logprobs.float(), values.float(), ref.float()
    shaped = torch.zeros_like(scores)  # the running moments and the clip see the scored values only
    shaped[scored], clipped = shape_scores(scores[scored], cfg.reward_clip, models["moments"])
    rewards, penalised = per_token_rewards(shaped, logprobs, ref, loss_mask, cfg.kl_coef)
    advantages, returns = gae(rewards, values, loss_mask, cfg.gamma, cfg.lam)
    explained = explained_variance(values, returns, loss_mask)
    if cfg.whiten_advantages:
        advantages = whiten(advantages, loss_mask)
    old = {
        "logprobs": logprobs,
        "values": values,
        "advantages": advantages,
        "returns": returns,
        "loss_mask": loss_mask,
    }
    losses = ppo_update(policy, value_head, models["optimizer"], batch, old, cfg, device)
    kl = (logprobs - ref) * batch.mask  # the policy's distance from the reference: every response, scored or not
    return {
        **losses,
        "kl": float(kl.sum(dim=1).mean()),
        "mean_reward": float(scores[scored].mean()),
        "reward_clipped": clipped,
        "non_score_reward": float(
            (-cfg.kl_coef * penalised).sum(dim=1)[scored].mean()
        ),  # the KL penalty optimised: scored rows only
        **({} if explained is None else {"explained_variance": explained}),
        "response_length": length,
        "reward_failed": float(counts["failed"]),
        "update_skipped": 0.0,
        "steps_skipped": float(counts["skipped"]),
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
        raise ValueError(
            "PPO needs a reward: set reward: {model: ID} or reward: {judge: RECIPE.yaml} in the training settings"
        )
    if not job.rows:
        raise ValueError("PPO got no prompts to train on")
    cfg = config_from_settings(PPOConfig, job.settings)
    torch.manual_seed(cfg.seed)
    tokenizer = load_tokenizer(job.model_path)
    policy, lora = load_policy(job.model_path, job.settings, job.device)
    policy.eval()  # no dropout: rollout and update log-probabilities agree
    value_head = ValueHead(policy.config.hidden_size).to(job.device)
    groups = [
        {"params": [p for p in policy.parameters() if p.requires_grad], "lr": cfg.learning_rate},
        {"params": list(value_head.parameters()), "lr": cfg.value_learning_rate},
    ]
    models = {
        "policy": policy,
        "value_head": value_head,
        "tokenizer": tokenizer,
        "reference": frozen_reference(policy, lora),
        "optimizer": torch.optim.AdamW(groups),
        "moments": RunningMoments() if cfg.normalize_reward else None,
        "counts": {"scored": 0, "failed": 0, "skipped": 0},
    }
    metrics: dict = {}
    feed = batches(job.rows, cfg.batch_size, cfg.seed)
    for step in range(1, cfg.max_steps + 1):
        started = time.perf_counter()
        metrics = {
            "step": step,
            **ppo_step(job, next(feed), models, cfg),
            "learning_rate": cfg.learning_rate,
            "value_learning_rate": cfg.value_learning_rate,
        }
        metrics["seconds"] = time.perf_counter() - started
        job.on_metrics(dict(metrics))
    save_policy(policy, tokenizer, job.output_dir, lora)
    return {**metrics, "steps": cfg.max_steps}
