"""What a trainer function is given (`TrainJob`) and the reward function type the RL trainers share."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

# A reward function, in the shape TRL's GRPO/RLOO `reward_funcs` take: prompts (message lists) and
# completions (message lists with one assistant turn, or plain strings) in, one float per completion out.
Messages = list[dict]
RewardFn = Callable[..., list[float | None]]  # None: the reward is missing (a failed judgment)

# Called once per logged step with plain numbers: {"step": 1, "loss": ..., "reward_accuracy": ..., "kl": ..., "mean_reward": ...}
MetricsFn = Callable[[dict[str, Any]], None]


@dataclass
class TrainJob:
    """Everything one training run needs; a trainer writes the final weights (or the LoRA adapter)
    and the tokenizer into `output_dir` and returns its final metrics."""

    algorithm: str
    model_path: str  # a loadable local folder of the base model (aliases and store model ids already resolved)
    rows: list[dict]  # the training rows in the algorithm's format (rlaif.training.data)
    settings: Any  # the validated TrainSettings of this algorithm (rlaif.training.config)
    output_dir: Path
    on_metrics: MetricsFn = lambda metrics: None
    reward: RewardFn | None = None  # ppo / rloo / grpo: a reward model or the judge (rlaif.training.rewards)
    device: str = "cpu"
    extra: dict[str, Any] = field(default_factory=dict)


def completion_text(completion: Messages | str) -> str:
    """The text of a completion: a plain string, or the assistant turns of a message list.

    >>> completion_text("hi"), completion_text([{"role": "assistant", "content": "yo"}])
    ('hi', 'yo')
    """
    if isinstance(completion, str):
        return completion
    return "".join(m.get("content") or "" for m in completion if m.get("role", "assistant") == "assistant")
