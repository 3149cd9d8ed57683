"""Pairwise judge: every pair is judged in both orders; the soft label comes from verdict-token
probabilities when the backend gives them, else from a strictly parsed answer. The template's
protocol says how: the assistant prefix, the verdict tokens [first shown, second shown] and the
parser (rlaif.judges.protocol)."""

from __future__ import annotations

from array import array
from itertools import combinations

from rlaif.backends.base import ScoreRequest, Scores
from rlaif.calls.cache import CallCache, CallStats
from rlaif.core.schema import Generation, Judgment, OrderVerdict, Prompt
from rlaif.core.secrets import error_text, spec_secrets
from rlaif.judges.common import (
    JudgeTemplate,
    PrincipleFor,
    fixed_principle,
    instruction_text,
    judge_template,
    load_template,
    score_all,
)
from rlaif.judges.debias import PositionBias, agree, debiased, estimate_beta
from rlaif.judges.parsers import PARSERS, soft_label
from rlaif.judges.protocol import DEFAULTS, Protocol

__all__ = [
    "JudgeTemplate",
    "load_template",
    "instruction_text",
    "judge_pairs",
    "remove_position_bias",
    "candidate_pairs",
    "BiasTally",
]


def candidate_pairs(generations: list[Generation], which: str = "all") -> list[tuple[Generation, Generation]]:
    """Pairs of responses to one prompt: every pair, or only the first two."""
    pairs = list(combinations(generations, 2))
    return pairs[:1] if which == "first" else pairs


def score_requests(
    template: JudgeTemplate, prompt: Prompt, a: Generation, b: Generation, spec, principle: str | None = None
) -> tuple[ScoreRequest, ScoreRequest]:
    """The (a, b) and (b, a) presentations of one pair."""
    instruction = instruction_text(prompt)

    def request(first: Generation, second: Generation) -> ScoreRequest:
        content = template.render(instruction, first.text or "", second.text or "", principle)
        return ScoreRequest(
            messages=(("user", content),),
            prefix=template.protocol.prefix,
            options=template.protocol.options,
            max_tokens=spec.max_tokens,
            want_probs=spec.mode != "parse",
        )

    return request(a, b), request(b, a)


def order_verdict(
    result: Scores | Exception,
    mode: str,
    secrets: tuple[str, ...] | list[str] = (),
    protocol: Protocol = DEFAULTS["pairwise"],
) -> OrderVerdict:
    """P(first shown is better) from one call: soft when probabilities exist, else parsed.

    `secrets`: known secrets of the judge (`spec_secrets`), scrubbed from a failed call's error.
    `protocol`: the template's verdict tokens (options[0] names the first shown) and parser.
    """
    if isinstance(result, Exception):
        return OrderVerdict(p_first=None, soft=False, raw="", error=error_text(result, secrets))
    first, second = protocol.options
    if mode != "parse":
        p_first, mass = soft_label(result.probs, first, second)
        if p_first is not None:
            raw = f"P({first})={result.probs.get(first, 0.0):.4f} P({second})={result.probs.get(second, 0.0):.4f} | {result.text}"
            return OrderVerdict(p_first=p_first, soft=True, raw=raw, prob_mass=mass)
        if mode == "logprobs":
            return OrderVerdict(
                p_first=None, soft=False, raw=result.text, error="no verdict-token probabilities (mode: logprobs)"
            )
    verdict = PARSERS[protocol.parser](result.text, protocol.options, protocol.prefix)
    if verdict is None:
        return OrderVerdict(p_first=None, soft=False, raw=result.text, error="unparseable judge answer")
    return OrderVerdict(p_first=1.0 if verdict == first else 0.0, soft=False, raw=result.text)


def combine(
    prompt_id: str,
    a: Generation,
    b: Generation,
    ab: OrderVerdict,
    ba: OrderVerdict,
    template: JudgeTemplate,
    model: str,
) -> Judgment:
    """A judgment from both orders; p_a_ba is P(a better) read from the (b, a) order."""
    error = ab.error or ba.error
    p_a_ba = None if ba.p_first is None else 1 - ba.p_first
    masses = [m for m in (ab.prob_mass, ba.prob_mass) if m is not None]
    return Judgment(
        prompt_id=prompt_id,
        a_id=a.id,
        b_id=b.id,
        p_a_ab=ab.p_first,
        p_a_ba=p_a_ba,
        soft=ab.soft and ba.soft,
        raw_ab=ab.raw,
        raw_ba=ba.raw,
        template=template.name,
        template_sha256=template.sha256,
        judge_model=model,
        prob_mass=sum(masses) / len(masses) if masses else None,
        error=error,
    )


def judge_pairs(
    items: list[tuple[Prompt, Generation, Generation]],
    spec,
    cache: CallCache,
    stats: CallStats,
    principle_for: PrincipleFor = fixed_principle(None),
) -> list[Judgment]:
    """Judge each (prompt, a, b) in both orders; failures come back as Judgment(error=...)."""
    template = judge_template(spec)
    requests: list[ScoreRequest] = []
    for prompt, a, b in items:
        requests.extend(score_requests(template, prompt, a, b, spec, principle_for(f"{a.id}|{b.id}")))
    results = score_all(spec, requests, cache, stats, template.sha256, label="judging (both orders)")
    judgments, secrets = [], spec_secrets(spec)
    for index, (prompt, a, b) in enumerate(items):
        ab = order_verdict(results[2 * index], spec.mode, secrets, template.protocol)
        ba = order_verdict(results[2 * index + 1], spec.mode, secrets, template.protocol)
        judgments.append(combine(prompt.id, a, b, ab, ba, template, spec.model))
    return judgments


class BiasTally:
    """What a run's position-bias estimate needs from its raw judgments, kept as compact numbers.

    Fed chunk by chunk (`add`), it gives the run's beta over ALL judgments; `apply` then debiases
    each chunk's judgments with it, and `report` summarizes the run exactly as
    `remove_position_bias` does for one list.
    """

    def __init__(self) -> None:
        self.ab, self.ba = array("d"), array("d")  # soft-labelled usable judgments
        self.p_first = array("d")  # raw mean P(first shown wins), per usable judgment
        self.raw_agree = 0
        self.consistent = 0
        self.ok = 0

    def add(self, judgments: list[Judgment]) -> None:
        for j in _usable(judgments):
            if j.soft:
                self.ab.append(j.p_a_ab)
                self.ba.append(j.p_a_ba)
            self.p_first.append((j.p_a_ab + 1 - j.p_a_ba) / 2)
            self.raw_agree += agree(j.p_a_ab, j.p_a_ba)
            self.ok += 1

    def beta(self, debias: bool = True) -> float:
        return estimate_beta(self.ab, self.ba) if debias else 0.0

    def apply(self, judgments: list[Judgment], beta: float) -> None:
        """Fill p_a / consistent / consistent_raw on each usable judgment (soft labels debiased by beta)."""
        for j in _usable(judgments):
            q_ab, q_ba = debiased(j.p_a_ab, j.p_a_ba, beta) if j.soft else (j.p_a_ab, j.p_a_ba)
            j.p_a = (q_ab + q_ba) / 2
            j.consistent = agree(q_ab, q_ba)
            j.consistent_raw = agree(j.p_a_ab, j.p_a_ba)
            self.consistent += j.consistent

    def report(self, beta: float) -> PositionBias:
        """The run's position bias (after every chunk was applied)."""
        ok = self.ok or None
        return PositionBias(
            beta=beta,
            mean_p_first=sum(self.p_first) / len(self.p_first) if self.p_first else None,
            raw_consistency=self.raw_agree / ok if ok else None,
            consistency=self.consistent / ok if ok else None,
            n=len(self.ab),
        )


def _usable(judgments: list[Judgment]) -> list[Judgment]:
    return [j for j in judgments if j.error is None and j.p_a_ab is not None and j.p_a_ba is not None]


def remove_position_bias(judgments: list[Judgment], debias: bool = True) -> PositionBias:
    """Estimate the run's position bias and fill in p_a / consistent on every judgment.

    Soft labels are debiased in logit space (when `debias`); hard (parsed) labels are only
    checked for agreement between the two orders. (A chunked run does the same with a
    `BiasTally` fed chunk by chunk.)
    """
    tally = BiasTally()
    tally.add(judgments)
    beta = tally.beta(debias)
    tally.apply(judgments, beta)
    return tally.report(beta)
