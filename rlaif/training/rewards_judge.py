"""The recipe's judge as a reward function ("direct RLAIF"), through the project's judge machinery,
request cache and backends (a re-run of the same rollouts makes no model call).

What the reward is, per judge type:
- pairwise: P(completion beats a baseline), judged in both orders and position-debiased: the raw
  both-order judgments feed one `BiasTally` kept over the whole training, so the judge's
  position shift (beta, logit space) is estimated over every judgment so far and removed before
  the two orders are averaged (a jury or principle ensemble is debiased per call instead).
  The baseline of a sample is `baseline=[...]` passed in by keyword (a reference response per
  prompt, e.g. a dataset column), else the greedy response (temperature 0) of `baseline_model`
  (default: the recipe's first policy, which made the data the policy is trained from), made once
  per prompt through the request cache.
- listwise: the same P(completion beats the baseline), from the judge's permutations of the two.
- pointwise: the mean rating normalised to [0, 1]: (score - 1) / (scale - 1).
- binary: P(yes).
A failed judgment (a failed call, an unreadable verdict) is a value: that sample's reward is
missing, `None` (`failed_reward`, default None), and it is counted in `counts["failed"]`. A missing
reward is not the lowest one: failures go with traits of the response (too long for the judge's
context, odd formatting), and a 0.0 would push the policy away from those traits whatever their
quality. TRL's GRPO and RLOO (1.16) leave a None out of the group's baseline and give that sample
advantage 0; the reward endpoint (`rlaif serve-reward`) passes `failed_reward=nan` and flags it.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

from rlaif.backends import BackendPool, using
from rlaif.calls.cache import CallCache, CallStats
from rlaif.core.schema import Generation, Judgment, Prompt, content_hash
from rlaif.judges import jury as juries
from rlaif.judges.pairwise import BiasTally, judge_pairs
from rlaif.judges.stage import PER_RESPONSE, judge_pairwise_items
from rlaif.training.job import completion_text


def _prompt(messages: list[dict]) -> Prompt:
    return Prompt(id=f"reward-{content_hash(messages, 12)}", messages=list(messages))


def _generation(prompt: Prompt, policy: str, index: int, text: str) -> Generation:
    return Generation(
        prompt_id=prompt.id, policy=policy, model="-", sample_index=index, text=text, finish_reason="stop"
    )


class JudgeReward:
    """A callable reward function over a recipe's judge; `counts` holds {"judged", "failed"} and
    `stats` the model calls (live / cached / failed). Call `close()` to release the judge model."""

    __name__ = "judge_reward"  # TRL names each reward function's metrics after it

    def __init__(
        self,
        recipe,
        store: Path,
        baseline_model: str | None = None,
        failed_reward: float | None = None,
        baseline_tokens: int = 128,
    ) -> None:
        self.spec = recipe.judge
        self.baseline_policy = recipe.policies[0].model_copy(
            update={
                "name": "baseline",
                "params": recipe.policies[0].params.model_copy(
                    update={"temperature": 0.0, "max_tokens": baseline_tokens}
                ),
            }
        )
        if baseline_model is not None:
            self.baseline_policy = self.baseline_policy.model_copy(update={"model": baseline_model})
        self.failed_reward = failed_reward
        self.cache = CallCache(Path(store) / "cache.sqlite")
        self.stats = CallStats()
        self.pool = BackendPool()  # the judge (and baseline) model stays loaded between calls
        self.tally = BiasTally()
        self.counts = {"judged": 0, "failed": 0}

    def __call__(self, prompts: Sequence[list[dict]], completions: Sequence[Any], **kwargs: Any) -> list[float | None]:
        texts = [completion_text(c) for c in completions]
        items = [_prompt(p) for p in prompts]
        with using(self.pool):
            if self.spec.type in ("pointwise", "binary"):
                rewards = self._per_response(items, texts)
            else:
                baselines = self._baselines(items, kwargs.get("baseline"))
                rewards = self._against(items, texts, baselines)
        failed = sum(r is None for r in rewards)
        self.counts["judged"] += len(rewards) - failed
        self.counts["failed"] += failed
        return [self.failed_reward if r is None else float(r) for r in rewards]

    def _baselines(self, prompts: list[Prompt], given: Sequence[Any] | None) -> list[str | None]:
        if given is not None:
            return [completion_text(b) for b in given]
        from rlaif.pipeline.sampling import sample_policy

        unique = list({p.id: p for p in prompts}.values())
        made = sample_policy(unique, self.baseline_policy, 1, self.cache, self.stats, label=" (reward baseline)")
        by_id = {g.prompt_id: (None if g.error else g.text or "") for g in made}
        return [by_id[p.id] for p in prompts]

    def _against(self, prompts: list[Prompt], texts: list[str], baselines: list[str | None]) -> list[float | None]:
        """P(completion beats its baseline) per sample; None where the judge (or the baseline) failed."""
        ok = [i for i, b in enumerate(baselines) if b is not None]
        pairs = [
            (
                prompts[i],
                _generation(prompts[i], "policy", i, texts[i]),
                _generation(prompts[i], "baseline", i, baselines[i]),
            )
            for i in ok
        ]
        rewards: list[float | None] = [None] * len(texts)
        if self.spec.type == "listwise":
            scored, _ = PER_RESPONSE["listwise"]([(p, [a, b]) for p, a, b in pairs], self.spec, self.cache, self.stats)
            for i, s in zip(ok, scored):
                rewards[i] = None if s.scores is None else s.pref[0][1]
            return rewards
        for i, j in zip(ok, self._pairwise(pairs)):
            rewards[i] = None if j.error is not None or j.p_a is None else j.p_a
        return rewards

    def _pairwise(self, pairs: list[tuple[Prompt, Generation, Generation]]) -> list[Judgment]:
        members = juries.members_of(self.spec)
        if len(members) > 1:
            return judge_pairwise_items(pairs, self.spec, self.cache, self.stats)[0]
        member = members[0]
        judgments = judge_pairs(pairs, member.spec, self.cache, self.stats, member.principle_for)
        self.tally.add(judgments)
        self.tally.apply(judgments, self.tally.beta(self.spec.debias))
        return judgments

    def _per_response(self, prompts: list[Prompt], texts: list[str]) -> list[float | None]:
        groups = [(p, [_generation(p, "policy", i, t)]) for i, (p, t) in enumerate(zip(prompts, texts))]
        members = juries.members_of(self.spec)
        runs = [
            PER_RESPONSE[self.spec.type](groups, m.spec, self.cache, self.stats, m.principle_for)[0] for m in members
        ]
        scored = runs[0] if len(runs) == 1 else juries.combine_scored(runs, self.spec.jury_aggregate)
        if self.spec.type == "binary":
            return [None if s.scores is None else s.scores[0] for s in scored]
        scale = self.spec.scale
        return [None if s.scores is None else (s.scores[0] - 1) / (scale - 1) for s in scored]

    @property
    def position_bias(self) -> dict:
        """The judge's position bias measured over every pairwise judgment so far."""
        return self.tally.report(self.tally.beta(self.spec.debias)).as_dict()

    def close(self) -> None:
        self.pool.close()
        self.cache.close()
