"""Juries and principle ensembles: several judges on the same items, combined.

A member is a judge spec (the recipe's judge with a member's model / template overrides) plus
the principle it judges under. `principles: {mode: ensemble}` is a jury of one model under
several principles; `jury:` lists models or templates; both together give every combination.
Soft labels are combined per presentation order (mean, or the share of members' votes), so
the combined judgment is checked for order consistency like a single judge's.
"""

from __future__ import annotations

from dataclasses import dataclass

from rlaif.core.schema import Judgment
from rlaif.judges.common import PrincipleFor, fixed_principle, load_principles, sampled_principle
from rlaif.judges.construct import Scored
from rlaif.judges.debias import agree, debiased
from rlaif.judges.stats import majority, mean_agreement


@dataclass
class Member:
    label: str
    spec: object  # rlaif.config.recipe.JudgeSpec with this member's overrides
    principle_for: PrincipleFor
    principle: str | None = None  # the fixed principle of an ensemble member


def members_of(spec) -> list[Member]:
    """The judges a recipe's judge section stands for (one, unless a jury or an ensemble)."""
    bases = [("judge", spec)]
    if spec.jury:
        labels = [
            member.name or f"{n + 1}: {member.model}" + (f" ({member.template})" if member.template else "")
            for n, member in enumerate(spec.jury)
        ]
        bases = list(zip(labels, spec.member_specs(), strict=True))
    if spec.principles is None:
        return [Member(label, s, fixed_principle(None)) for label, s in bases]
    texts = load_principles(spec.principles.path, spec.folder)
    if spec.principles.mode == "sample":
        return [Member(label, s, sampled_principle(texts, spec.principles.seed)) for label, s in bases]
    chosen = texts[: spec.principles.count]
    return [
        Member(f"{label} / principle {i + 1}" if len(chosen) > 1 else label, s, fixed_principle(p), p)
        for label, s in bases
        for i, p in enumerate(chosen)
    ]


def _orders(judgment: Judgment, beta: float) -> tuple[float, float] | None:
    """A member's debiased P(a better) from each order, or None when it failed."""
    if judgment.error or judgment.p_a_ab is None or judgment.p_a_ba is None:
        return None
    return debiased(judgment.p_a_ab, judgment.p_a_ba, beta) if judgment.soft else (judgment.p_a_ab, judgment.p_a_ba)


def combine_judgments(
    per_member: list[list[Judgment]], betas: list[float], labels: list[str], how: str
) -> list[Judgment]:
    """One judgment per item from the members' judgments of it (aligned lists)."""
    combined = []
    for group in zip(*per_member):
        orders = [o for o in (_orders(j, b) for j, b in zip(group, betas)) if o is not None]
        first = group[0]
        base = dict(
            prompt_id=first.prompt_id,
            a_id=first.a_id,
            b_id=first.b_id,
            soft=all(j.soft for j in group),
            raw_ab="; ".join(f"{label}: {j.p_a}" for label, j in zip(labels, group)),
            raw_ba="",
            template="+".join(dict.fromkeys(j.template for j in group)),
            template_sha256="+".join(dict.fromkeys(j.template_sha256 for j in group)),
            judge_model="jury(" + ",".join(dict.fromkeys(j.judge_model for j in group)) + ")",
        )
        if not orders:
            combined.append(
                Judgment(
                    p_a_ab=None,
                    p_a_ba=None,
                    error=next(j.error for j in group if j.error) or "every member failed",
                    **base,
                )
            )
            continue
        if how == "majority":
            ab, ba = majority([o[0] > 0.5 for o in orders]), majority([o[1] > 0.5 for o in orders])
        else:
            ab, ba = sum(o[0] for o in orders) / len(orders), sum(o[1] for o in orders) / len(orders)
        combined.append(
            Judgment(
                p_a_ab=ab, p_a_ba=ba, p_a=(ab + ba) / 2, consistent=agree(ab, ba), consistent_raw=agree(ab, ba), **base
            )
        )
    return combined


def winners(judgments: list[Judgment]) -> list[bool | None]:
    return [None if j.p_a is None or j.p_a == 0.5 else j.p_a > 0.5 for j in judgments]


def pairwise_agreement(per_member: list[list[Judgment]]) -> float | None:
    """Mean share of items on which two members name the same winner."""
    return mean_agreement([winners(js) for js in per_member])


def combine_scored(per_member: list[list[Scored]], how: str) -> list[Scored]:
    """Per prompt: mean scores and preferences (or vote shares), consistent where no member's permutations disagree."""
    combined = []
    for group in zip(*per_member):
        ok = [s for s in group if s.scores is not None]
        first = group[0]
        if not ok:
            combined.append(
                Scored(first.prompt, first.generations, None, error=first.error, raw=[r for s in group for r in s.raw])
            )
            continue
        k = len(first.generations)
        scores = [sum(s.scores[i] for s in ok) / len(ok) for i in range(k)]
        pref = [[0.5] * k for _ in range(k)]
        consistent = [[None] * k for _ in range(k)]
        for i in range(k):
            for j in range(k):
                if i != j:
                    values = [s.pref[i][j] for s in ok]
                    pref[i][j] = (
                        majority([v > 0.5 for v in values]) if how == "majority" else sum(values) / len(values)
                    )
                    flags = [s.consistent[i][j] for s in ok if s.consistent]
                    consistent[i][j] = all(flags) if flags else None
        detail = {"members": [s.scores for s in group]}
        combined.append(
            Scored(
                first.prompt,
                first.generations,
                scores,
                pref,
                consistent,
                detail=detail,
                raw=[r for s in group for r in s.raw],
            )
        )
    return combined


def scored_agreement(per_member: list[list[Scored]]) -> float | None:
    """Mean share of response pairs on which two members prefer the same response."""
    labels = []
    for member in per_member:
        row = []
        for s in member:
            k = len(s.generations)
            row += [
                None if s.scores is None or s.pref[i][j] == 0.5 else s.pref[i][j] > 0.5
                for i in range(k)
                for j in range(i + 1, k)
            ]
        labels.append(row)
    return mean_agreement(labels)
