"""The judge stage of a run, for every judge type: which responses are judged, by whom (one
judge, a jury, a principle ensemble), and the candidate pairs, rankings and binary feedback
that come out. flows/ wraps `judge_stage` in a task; `rlaif eval-judge` uses `judge_pairwise_items`."""

from __future__ import annotations

import hashlib
from collections import Counter
from dataclasses import dataclass, field

from rlaif.calls.cache import CallCache, CallStats
from rlaif.core.errors import RecipeError
from rlaif.core.schema import Feedback, Generation, Judgment, Prompt, Ranking
from rlaif.judges import jury as juries
from rlaif.judges.common import judge_template, load_principles, resolve_path
from rlaif.judges.construct import Scored, construct_pairs, to_feedback, to_ranking
from rlaif.judges.listwise import judge_listwise
from rlaif.judges.pairwise import BiasTally, candidate_pairs, judge_pairs, remove_position_bias
from rlaif.judges.pointwise import judge_binary, judge_pointwise
from rlaif.quality.filters import pre_judge_reason, response_reason

Item = tuple[Prompt, Generation, Generation]
PER_RESPONSE = {"listwise": judge_listwise, "pointwise": judge_pointwise, "binary": judge_binary}


@dataclass
class JudgeOutcome:
    items: list[Item]  # every candidate pair, judged or dropped before judging
    judgments: dict[tuple[str, str], Judgment]  # (a_id, b_id) -> the (combined) judgment
    rankings: list[Ranking] = field(default_factory=list)
    feedback: list[Feedback] = field(default_factory=list)
    report: dict = field(default_factory=dict)  # the manifest's `judge` section, minus what the run adds
    responses_dropped: Counter = field(default_factory=Counter)
    table: list[Judgment] = field(default_factory=list)  # the judge's own judgments, for the `judgments` table
    reasons: list[str | None] = field(
        default_factory=list
    )  # per item: its pre-judge drop reason, decided once where the candidates are formed
    provenance: dict = field(
        default_factory=dict
    )  # the templates and principles judging read (sha256), recorded when it judged


def judge_pairwise_items(items: list[Item], spec, cache: CallCache, stats: CallStats) -> tuple[list[Judgment], dict]:
    """Pairwise judgments of (prompt, a, b) items by the judge, jury or ensemble; position bias removed.

    Returns the judgments (aligned with `items`) and a report: per-member position bias,
    inter-judge agreement, members.
    """
    members = juries.members_of(spec)
    per_member, betas, reports = [], [], []
    for member in members:
        judgments = judge_pairs(items, member.spec, cache, stats, member.principle_for)
        bias = remove_position_bias(judgments, member.spec.debias)
        per_member.append(judgments)
        betas.append(bias.beta if member.spec.debias else 0.0)
        reports.append({"member": member.label, "position_bias": bias.as_dict()})
    report = {"position_bias": reports[0]["position_bias"]}
    if len(members) == 1:
        return per_member[0], report
    combined = juries.combine_judgments(per_member, betas, [m.label for m in members], spec.jury_aggregate)
    report.update(members=reports, inter_judge_agreement=_round(juries.pairwise_agreement(per_member)))
    report["position_bias"] = _consistency_report(combined, reports)
    return combined, report


def _consistency_report(combined: list[Judgment], reports: list[dict]) -> dict:
    ok = [j for j in combined if j.consistent is not None]
    share = sum(j.consistent for j in ok) / len(ok) if ok else None
    raws = [
        r["position_bias"]["raw_consistency"] for r in reports if r["position_bias"]["raw_consistency"] is not None
    ]
    betas = [r["position_bias"]["beta"] for r in reports]
    return {
        "beta": _round(sum(betas) / len(betas)),
        "mean_p_first": None,
        "n": len(ok),
        "raw_consistency": _round(sum(raws) / len(raws)) if raws else None,
        "consistency": _round(share),
    }


def judge_stage(
    prompts: list[Prompt], generations: list[Generation], spec, filters, cache: CallCache, stats: CallStats
) -> JudgeOutcome:
    """Judge a run's responses with the recipe's judge; returns candidates, judgments, rankings, feedback."""
    provenance = judge_provenance(spec)  # the files as this judging reads them
    if spec.type == "pairwise":
        outcome = _pairwise_stage(prompts, generations, spec, filters, cache, stats)
    else:
        outcome = _per_response_stage(prompts, generations, spec, filters, cache, stats)
    outcome.provenance = provenance
    return outcome


def _per_response_stage(prompts, generations, spec, filters, cache, stats) -> JudgeOutcome:
    groups, dropped = [], Counter()
    for prompt, gens in by_prompt(prompts, generations):
        kept = [g for g in gens if not _counted_reason(g, filters, dropped)]
        groups.append((prompt, _distinct(kept, dropped)))
    judged = [(p, g) for p, g in groups if len(g) >= 2 or spec.type != "listwise"]
    scored, report = _per_response(judged, spec, cache, stats)
    return _outcome(scored, spec, report, dropped, lambda a, b: pre_judge_reason(a, b, filters))


def _counted_reason(generation: Generation, filters, dropped: Counter) -> str | None:
    """The response's pre-judge reason (rlaif.quality.filters.response_reason), counted in `dropped`."""
    reason = response_reason(generation, filters)
    if reason:
        dropped[reason] += 1
    return reason


def response_drops(grouped: list[tuple[Prompt, list[Generation]]], filters) -> Counter:
    """Responses no judge sees, by reason (a pairwise judge drops their pairs; counts.responses_dropped)."""
    dropped: Counter = Counter()
    for _, gens in grouped:
        for g in gens:
            _counted_reason(g, filters, dropped)
    return dropped


def _per_response(groups, spec, cache, stats) -> tuple[list[Scored], dict]:
    members = juries.members_of(spec)
    runs = [PER_RESPONSE[spec.type](groups, m.spec, cache, stats, m.principle_for) for m in members]
    if len(runs) == 1:
        return runs[0]
    per_member = [scored for scored, _ in runs]
    report = dict(runs[0][1])
    report.update(members=[{"member": m.label, **r} for m, (_, r) in zip(members, runs)])
    report["inter_judge_agreement"] = _round(juries.scored_agreement(per_member))
    return juries.combine_scored(per_member, spec.jury_aggregate), report


def _outcome(scored: list[Scored], spec, report: dict, dropped: Counter, reason_of) -> JudgeOutcome:
    """Candidate pairs built from per-response scores; `reason_of(a, b)` gives each one's pre-judge reason."""
    template = judge_template(juries.members_of(spec)[0].spec)
    items, judgments = construct_pairs(
        scored, spec.pairs, spec.seed, spec.type, template.name, template.sha256, spec.model
    )
    reasons = [reason_of(a, b) for _, a, b in items]
    rankings = [to_ranking(s, spec.type) for s in scored if len(s.generations) >= 2 or s.error]
    threshold = report.get("threshold")
    feedback = [f for s in scored for f in to_feedback(s, threshold)] if spec.type in ("pointwise", "binary") else []
    return JudgeOutcome(
        items, judgments, rankings, feedback, report, dropped, table=list(judgments.values()), reasons=reasons
    )


def _pairwise_stage(prompts, generations, spec, filters, cache, stats) -> JudgeOutcome:
    grouped = by_prompt(prompts, generations)
    items, reasons = pairwise_items(grouped, spec, filters)
    judgments, report = judge_pairwise_items(worth_judging(items, reasons), spec, cache, stats)
    outcome = pairwise_outcome(grouped, items, reasons, judgments, spec, report)
    outcome.responses_dropped = response_drops(grouped, filters)
    return outcome


def pairwise_items(
    grouped: list[tuple[Prompt, list[Generation]]], spec, filters
) -> tuple[list[Item], list[str | None]]:
    """Every candidate pair of a pairwise judge and its pre-judge reason (rlaif.quality.filters.pre_judge_reason), decided here once."""
    which = "all" if spec.pairs in ("best_vs_worst", "best_vs_random") else spec.pairs
    items = [(p, a, b) for p, gens in grouped for a, b in candidate_pairs(gens, which)]
    return items, [pre_judge_reason(a, b, filters) for _, a, b in items]


def worth_judging(items: list[Item], reasons: list[str | None]) -> list[Item]:
    """The candidates without a pre-judge reason: those a judge call is paid for."""
    return [item for item, reason in zip(items, reasons) if reason is None]


def pairwise_outcome(
    grouped, items: list[Item], reasons: list[str | None], judgments: list[Judgment], spec, report: dict
) -> JudgeOutcome:
    """Candidates, rankings and the judgments table from debiased pairwise judgments (of a run or a chunk)."""
    by_key = {(j.a_id, j.b_id): j for j in judgments}
    scored = [_scored_from_pairs(p, gens, by_key) for p, gens in grouped]
    rankings = [to_ranking(s, "pairwise") for s in scored if len(s.generations) >= 2]
    if spec.pairs not in ("best_vs_worst", "best_vs_random"):
        return JudgeOutcome(
            items, by_key, rankings, [], {"type": "pairwise", **report}, table=judgments, reasons=reasons
        )
    known = {(a.id, b.id): reason for (_, a, b), reason in zip(items, reasons)}
    outcome = _outcome(
        scored,
        spec,
        {"type": "pairwise", **report},
        Counter(),
        lambda a, b: known.get((a.id, b.id), known.get((b.id, a.id))),
    )
    outcome.rankings, outcome.table = rankings, judgments
    return outcome


def chunkable(spec) -> bool:
    """Whether a run can judge chunk by chunk: one pairwise judge (no jury or principle ensemble).

    Other judge types, juries and ensembles run in one piece (the whole run in memory).
    """
    return spec.type == "pairwise" and len(juries.members_of(spec)) == 1


def judge_raw_chunk(
    grouped: list[tuple[Prompt, list[Generation]]], spec, filters, cache: CallCache, stats: CallStats
) -> list[Judgment]:
    """Phase 1 of chunked judging: the raw both-order judgments of one chunk (not debiased yet)."""
    member = juries.members_of(spec)[0]
    return judge_pairs(
        worth_judging(*pairwise_items(grouped, spec, filters)), member.spec, cache, stats, member.principle_for
    )


def finish_chunk(
    grouped: list[tuple[Prompt, list[Generation]]], raw: list[Judgment], spec, filters, tally: BiasTally, beta: float
) -> JudgeOutcome:
    """Phase 2 of chunked judging: one chunk's raw judgments debiased with the run's beta, then
    candidates and rankings (the run's position-bias report is added by the caller)."""
    items, reasons = pairwise_items(
        grouped, spec, filters
    )  # phase 2 is its own step: the chunk's candidates are formed again
    tally.apply(raw, beta)
    outcome = pairwise_outcome(grouped, items, reasons, raw, spec, {})
    outcome.responses_dropped = response_drops(grouped, filters)
    # the templates as phase 1 judged with them (each judgment carries its template's sha256)
    outcome.provenance = {
        "prompt_templates": {j.template: j.template_sha256 for j in raw},
        "principles": principles_record(spec),
    }
    return outcome


def _scored_from_pairs(prompt: Prompt, gens: list[Generation], by_key: dict) -> Scored:
    """Mean P(win) per response over its judged pairs (the pairwise judge's own ranking)."""
    k = len(gens)
    pref = [[0.5] * k for _ in range(k)]
    consistent = [[None] * k for _ in range(k)]
    for i in range(k):
        for j in range(k):
            found = by_key.get((gens[i].id, gens[j].id))
            if found and found.p_a is not None:
                pref[i][j], pref[j][i] = found.p_a, 1 - found.p_a
                consistent[i][j] = consistent[j][i] = found.consistent
    judged = [[pref[i][j] for j in range(k) if j != i and consistent[i][j] is not None] for i in range(k)]
    if k >= 2 and not any(judged):
        return Scored(prompt, gens, None, error="no judged pair")
    scores = [sum(row) / len(row) if row else 0.0 for row in judged]
    return Scored(prompt, gens, scores, pref, consistent)


def by_prompt(prompts: list[Prompt], generations: list[Generation]) -> list[tuple[Prompt, list[Generation]]]:
    grouped: dict[str, list[Generation]] = {p.id: [] for p in prompts}
    for g in generations:
        grouped[g.prompt_id].append(g)
    return [(p, grouped[p.id]) for p in prompts]


def _distinct(gens: list[Generation], dropped: Counter) -> list[Generation]:
    """Identical responses to the same prompt are judged once (the first is kept)."""
    seen, kept = set(), []
    for g in gens:
        key = (g.text or "").strip()
        if key in seen:
            dropped["identical"] += 1
        else:
            seen.add(key)
            kept.append(g)
    return kept


def _round(x: float | None) -> float | None:
    return None if x is None else round(x, 4)


def judge_templates(spec) -> dict[str, str]:
    """Every template a judge (or its jury) uses: file name -> sha256."""
    found = {}
    for member in juries.members_of(spec):
        template = judge_template(member.spec)
        found[template.name] = template.sha256
    return found


def principles_record(spec) -> dict | None:
    """The principles a judge works under, as the manifest records them (settings, sha256, texts)."""
    if spec.principles is None:
        return None
    path = resolve_path(spec.principles.path, spec.folder)
    return {
        **spec.principles.model_dump(),
        "sha256": hashlib.sha256(path.read_bytes()).hexdigest(),
        "texts": load_principles(spec.principles.path, spec.folder),
    }


def judge_provenance(spec) -> dict:
    """What a judge reads from files, hashed when it judges: its templates (name -> sha256) and principles."""
    return {"prompt_templates": judge_templates(spec), "principles": principles_record(spec)}


def validate_judge(spec, responses: int | None = None, path: str = "<recipe>") -> None:
    """Fail early (RecipeError naming the key) on a missing template, a bad protocol block or a missing principles
    file, and, given the `responses` each prompt will have, on a listwise template with fewer slot labels."""
    judge_templates(spec)
    if spec.type != "listwise" or responses is None:
        return
    for member in juries.members_of(spec):
        template = judge_template(member.spec)
        most = len(template.protocol.options)
        if responses > most:
            raise RecipeError(
                path,
                "samples_per_prompt",
                f"the listwise judge's template {template.name} has {most} slot labels, so it ranks at most {most} "
                f"responses, and each prompt will have {responses} (samples_per_prompt x policies)",
                "lower samples_per_prompt or the number of policies, or use a template with more labels",
            )


def judge_section(spec, outcome: JudgeOutcome | dict, provenance: dict | None = None) -> dict:
    """The manifest's `judge` entry: what judged, how, and the bias / agreement it measured.

    `outcome` is the judge outcome or its report (a chunked run keeps only the report);
    `provenance` (default: the outcome's) is what judging recorded of its files: never re-read here.
    """
    report = outcome if isinstance(outcome, dict) else outcome.report
    provenance = provenance if provenance is not None else ({} if isinstance(outcome, dict) else outcome.provenance)
    members = juries.members_of(spec)
    section = {
        "type": spec.type,
        "mode": spec.mode,
        "debias": spec.debias,
        "chain_of_thought": spec.chain_of_thought,
        "pairs": spec.pairs,
        **report,
    }
    section.setdefault("position_bias", None)
    if provenance.get("principles") is not None:
        section["principles"] = provenance["principles"]
    if len(members) > 1:
        section["jury"] = {
            "aggregate": spec.jury_aggregate,
            "members": [
                {
                    "label": m.label,
                    "backend": m.spec.backend,
                    "model": m.spec.model,
                    "template": m.spec.template_path,
                    "principle": m.principle,
                }
                for m in members
            ],
        }
    return section


def judge_summary(judge: dict) -> str:
    """One summary line on what the judge measured about itself."""
    fmt = lambda x: "n/a" if x is None else f"{x:.2f}"  # noqa: E731
    kind = judge.get("type", "pairwise")
    bias = judge.get("position_bias") or {}
    if kind == "pairwise":
        line = (
            f"judge position bias: mean P(first wins) {fmt(bias.get('mean_p_first'))}, logit shift {fmt(bias.get('beta'))}, "
            f"order consistency raw {fmt(bias.get('raw_consistency'))} -> debiased {fmt(bias.get('consistency'))} (n={bias.get('n')})"
        )
    elif kind == "listwise":
        slots = "; ".join(
            f"{key[len('first_choice_by_slot_') :]} {value}"
            for key, value in judge.items()
            if key.startswith("first_choice_by_slot_")
        )
        line = (
            f"judge (listwise, {judge.get('permutations')} permutations, {judge.get('aggregate')}): first-choice rate by slot "
            f"{slots or 'n/a'}; mean Kendall tau between permutations {fmt(judge.get('mean_kendall_tau'))}"
        )
    elif kind == "pointwise":
        line = f"judge (pointwise, 1-{judge.get('scale')} on {', '.join(judge.get('aspects', []))}): mean score {fmt(judge.get('mean_score'))}, good if >= {fmt(judge.get('threshold'))}"
    else:
        line = f"judge (binary yes/no): mean P(yes) {fmt(judge.get('mean_p_yes'))}, good if P(yes) >= {fmt(judge.get('threshold'))}"
    if judge.get("inter_judge_agreement") is not None:
        line += (
            f"; jury of {len(judge.get('members', []))}, inter-judge agreement {fmt(judge['inter_judge_agreement'])}"
        )
    return line
