"""The pure parts of PPO: token log-probabilities, per-token rewards, GAE and the clipped losses.

Shapes: B sequences x T response tokens; `mask` is 1 on response tokens (up to and including the
first end-of-sequence token) and 0 on padding.
"""

from __future__ import annotations

import torch


def masked_mean(values: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """
    >>> masked_mean(torch.tensor([[1.0, 3.0, 100.0]]), torch.tensor([[1.0, 1.0, 0.0]])).item()
    2.0
    """
    return (values * mask).sum() / mask.sum().clamp(min=1)


def masked_var(values: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """Variance over the masked entries (divided by their count, as `whiten` uses it).

    >>> masked_var(torch.tensor([[1.0, 3.0, 100.0]]), torch.tensor([[1.0, 1.0, 0.0]])).item()
    1.0
    """
    return masked_mean((values - masked_mean(values, mask)) ** 2, mask)


def explained_variance(values: torch.Tensor, returns: torch.Tensor, mask: torch.Tensor) -> float | None:
    """1 - Var(returns - values) / Var(returns) over the response tokens: 1 when the value function
    predicts the returns, 0 when it explains none of their spread, below 0 when it adds to it.
    None when the returns have no variance (the ratio is undefined there, not 0).

    >>> explained_variance(torch.tensor([[0.0, 1.0, 2.0]]), torch.tensor([[0.0, 2.0, 4.0]]), torch.ones(1, 3))
    0.75
    """
    spread = float(masked_var(returns, mask))
    if spread <= 1e-12:
        return None
    return 1.0 - float(masked_var(returns - values, mask)) / spread


class RunningMoments:
    """Running mean and variance of every score seen so far (Chan et al.'s parallel update), as TRL's
    former PPOTrainer `use_score_scaling` keeps them (trl/trainer/utils.py, v0.11): `var` is the
    population variance, the standard deviation returned is the unbiased one, sqrt(var * n / (n - 1))."""

    def __init__(self) -> None:
        self.count, self.mean, self.var = 0, 0.0, 0.0

    def update(self, values: torch.Tensor) -> tuple[float, float]:
        """Adds a batch; returns the (mean, unbiased standard deviation) over everything seen; the
        standard deviation of a single value is 0 (TRL's would be 0/0).

        >>> [round(x, 4) for x in RunningMoments().update(torch.tensor([0.0, 1.0, 2.0, 3.0]))]
        [1.5, 1.291]
        """
        n, batch_mean = values.numel(), float(values.float().mean())
        batch_var = float(values.float().var(unbiased=False))
        total = self.count + n
        delta = batch_mean - self.mean
        self.var = (self.var * self.count + batch_var * n + delta**2 * self.count * n / total) / total
        self.mean, self.count = self.mean + delta * n / total, total
        return self.mean, (self.var * total / (total - 1)) ** 0.5 if total > 1 else 0.0


def shape_scores(
    scores: torch.Tensor, clip: float | None, moments: RunningMoments | None
) -> tuple[torch.Tensor, float]:
    """The scores PPO optimises: standardised by the running moments (when given), then clipped to
    [-clip, clip] (when set), before the KL penalty is added (OpenRLHF's `compute_reward` order).
    Returns (scores, share of scores the clip changed).

    >>> shape_scores(torch.tensor([-12.0, 3.0]), 10.0, None)
    (tensor([-10.,   3.]), 0.5)
    """
    if moments is not None:
        mean, std = moments.update(scores)
        scores = (scores - mean) / (std + torch.finfo(torch.float32).eps)
    if clip is None:
        return scores, 0.0
    clipped = scores.clamp(-clip, clip)
    return clipped, float((clipped != scores).float().mean())


def whiten(values: torch.Tensor, mask: torch.Tensor, shift_mean: bool = True) -> torch.Tensor:
    """Normalise to unit variance (and zero mean) over the masked entries."""
    mean = masked_mean(values, mask)
    var = masked_mean((values - mean) ** 2, mask)
    out = (values - mean) * torch.rsqrt(var + 1e-8)
    return (out if shift_mean else out + mean) * mask


def token_logprobs(logits: torch.Tensor, tokens: torch.Tensor, temperature: float = 1.0) -> torch.Tensor:
    """log p(token) under logits / temperature (the distribution the tokens were sampled from).

    >>> lp = token_logprobs(torch.zeros(1, 2, 4), torch.tensor([[0, 3]]))
    >>> [round(x, 4) for x in lp[0].tolist()]
    [-1.3863, -1.3863]
    """
    logprobs = torch.log_softmax(logits.float() / temperature, dim=-1)
    return torch.gather(logprobs, 2, tokens.unsqueeze(-1)).squeeze(-1)


KL_CLAMP = 10.0  # OpenRLHF's compute_approx_kl clamps the per-token log-ratio to [-10, 10]


def per_token_rewards(
    score: torch.Tensor, logprobs: torch.Tensor, ref_logprobs: torch.Tensor, mask: torch.Tensor, kl_coef: float
) -> tuple[torch.Tensor, torch.Tensor]:
    """Rewards per token: -kl_coef * (log p - log p_ref) on every response token, the log-ratio
    clamped to [-KL_CLAMP, KL_CLAMP] as OpenRLHF's compute_approx_kl does (one token the reference
    finds nearly impossible would otherwise outweigh the score), plus the sequence's score on its last
    response token. Returns (rewards, clamped kl per token).

    >>> r, kl = per_token_rewards(torch.tensor([1.0]), torch.tensor([[-1.0, -2.0, 0.0]]),
    ...                           torch.tensor([[-1.5, -2.0, 0.0]]), torch.tensor([[1.0, 1.0, 0.0]]), 0.1)
    >>> [round(x, 4) + 0.0 for x in r[0].tolist()], [round(x, 4) for x in kl[0].tolist()]
    ([-0.05, 1.0, 0.0], [0.5, 0.0, 0.0])
    """
    kl = (logprobs - ref_logprobs).clamp(-KL_CLAMP, KL_CLAMP) * mask
    rewards = -kl_coef * kl
    last = (mask.sum(dim=1).long() - 1).clamp(min=0)
    rewards[torch.arange(len(score)), last] += score
    return rewards * mask, kl


def gae(
    rewards: torch.Tensor, values: torch.Tensor, mask: torch.Tensor, gamma: float, lam: float
) -> tuple[torch.Tensor, torch.Tensor]:
    """Generalised advantage estimation over the response tokens; returns (advantages, returns).

    delta_t = r_t + gamma * V_{t+1} - V_t (V past the last token is 0),
    A_t = delta_t + gamma * lam * A_{t+1}, returns = A + V.

    >>> adv, ret = gae(torch.tensor([[0.0, 1.0]]), torch.tensor([[0.5, 0.5]]), torch.ones(1, 2), 1.0, 1.0)
    >>> adv.tolist(), ret.tolist()
    ([[0.5, 0.5]], [[1.0, 1.0]])
    """
    values = values * mask
    advantages = torch.zeros_like(rewards)
    last = torch.zeros(rewards.shape[0], device=rewards.device)
    for t in reversed(range(rewards.shape[1])):
        next_value = values[:, t + 1] if t + 1 < rewards.shape[1] else torch.zeros_like(last)
        delta = rewards[:, t] + gamma * next_value - values[:, t]
        last = (delta + gamma * lam * last) * mask[:, t]
        advantages[:, t] = last
    return advantages, advantages + values


def policy_loss(
    new_logprobs: torch.Tensor,
    old_logprobs: torch.Tensor,
    advantages: torch.Tensor,
    mask: torch.Tensor,
    clip_range: float,
) -> tuple[torch.Tensor, torch.Tensor]:
    """Clipped surrogate: mean of max(-A r, -A clip(r, 1-eps, 1+eps)), r = exp(new - old);
    returns (loss, share of tokens clipped).

    >>> loss, clipped = policy_loss(torch.log(torch.tensor([[1.5]])), torch.zeros(1, 1), torch.ones(1, 1), torch.ones(1, 1), 0.2)
    >>> round(loss.item(), 4), clipped.item()
    (-1.2, 1.0)
    """
    ratio = torch.exp(new_logprobs - old_logprobs)
    unclipped = -advantages * ratio
    clipped = -advantages * torch.clamp(ratio, 1 - clip_range, 1 + clip_range)
    loss = masked_mean(torch.max(unclipped, clipped), mask)
    return loss, masked_mean((clipped > unclipped).float(), mask)


def value_loss(
    new_values: torch.Tensor,
    old_values: torch.Tensor,
    returns: torch.Tensor,
    mask: torch.Tensor,
    clip_range_value: float,
) -> tuple[torch.Tensor, torch.Tensor]:
    """0.5 * mean of max((V - R)^2, (V_clipped - R)^2), V_clipped = V_old + clip(V - V_old, +-eps);
    returns (loss, share of tokens where the clipped term was larger).

    >>> loss, _ = value_loss(torch.tensor([[2.0]]), torch.tensor([[0.0]]), torch.tensor([[0.0]]), torch.ones(1, 1), 0.5)
    >>> loss.item()
    2.0
    """
    clipped_values = old_values + torch.clamp(new_values - old_values, -clip_range_value, clip_range_value)
    plain, clipped = (new_values - returns) ** 2, (clipped_values - returns) ** 2
    return 0.5 * masked_mean(torch.max(plain, clipped), mask), masked_mean((clipped > plain).float(), mask)


def response_mask(responses: torch.Tensor, eos_token_id: int | list[int]) -> torch.Tensor:
    """1 on each response's tokens up to and including its first end-of-sequence token.

    >>> response_mask(torch.tensor([[5, 2, 2, 2], [5, 6, 7, 8]]), 2).tolist()
    [[1.0, 1.0, 0.0, 0.0], [1.0, 1.0, 1.0, 1.0]]
    """
    eos = torch.tensor(eos_token_id if isinstance(eos_token_id, list) else [eos_token_id], device=responses.device)
    is_eos = torch.isin(responses, eos).long()
    before = torch.cumsum(is_eos, dim=1) - is_eos  # end-of-sequence tokens strictly before t
    return (before == 0).float()
