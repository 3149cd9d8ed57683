"""Prompt-level filters, run before any sampling so that no call is spent on a dropped prompt."""

from __future__ import annotations

from rlaif.core.schema import Prompt
from rlaif.quality.decontam import EvalIndex, build_eval_index, user_text
from rlaif.quality.dedup import NearDuplicateIndex
from rlaif.quality.text import squash

PROMPT_DROP_REASONS = ("contaminated", "duplicate", "near_duplicate")


class PromptChecker:
    """The prompt filters as a stream: `reason(prompt)` for each prompt in order (state kept between calls).

    The reason is one of PROMPT_DROP_REASONS or None; checks run in that order and compare only
    user turns. Duplicates are judged against the prompts kept so far, so the first of a group is kept.
    """

    def __init__(self, spec, eval_index: EvalIndex | None = None) -> None:
        if eval_index is None and spec.decontaminate is not None:
            eval_index = build_eval_index(
                spec.decontaminate, spec.minhash.shingle_chars, spec.minhash.num_perm, spec.minhash.seed
            )
        self.spec, self.eval_index, self.near = spec, eval_index, None
        if spec.dedup_prompts and spec.prompt_near_duplicate is not None:
            self.near = NearDuplicateIndex(
                spec.prompt_near_duplicate, spec.minhash.shingle_chars, spec.minhash.num_perm, spec.minhash.seed
            )
        self.seen: set[str] = set()

    def reason(self, prompt: Prompt) -> str | None:
        text = user_text(prompt.messages)
        reason = None
        if self.eval_index is not None and self.eval_index.contaminated(text):
            reason = "contaminated"
        elif self.spec.dedup_prompts and squash(text) in self.seen:
            reason = "duplicate"
        elif self.near is not None and self.near.find(text) is not None:
            reason = "near_duplicate"
        if reason is None and self.spec.dedup_prompts:
            self.seen.add(squash(text))
            if self.near is not None:
                self.near.add(prompt.id, text)
        return reason
