"""Per-response judges: a pointwise rubric (UltraFeedback style) and binary good/bad (KTO style).

Pointwise: each response is rated 1..scale on every aspect; with verdict-token probabilities
the rating is the expected score (two-digit "10" read in a second step: P(10) = P("1") P("0" | "1")),
else the written rating is parsed. The response's score is the mean over aspects, and
P(i beats j) = sigmoid(score_i - score_j) (one rating point ~ 0.73).

Binary: the judge answers "(yes)" or "(no)" (the protocol's options: [yes, no]); the score is P(yes). The label cut is `threshold`,
else (with debias) the run's median P(yes), because a small judge says "yes" to almost anything.
A single response has no position, so no order bias arises here; the yes-bias is reported.
Both read their prefix and parser from the template's protocol (rlaif.judges.protocol).
"""

from __future__ import annotations

import statistics
from dataclasses import replace

from rlaif.backends.base import ScoreRequest, Scores
from rlaif.calls.cache import CallCache, CallStats
from rlaif.core.schema import Generation, Prompt
from rlaif.core.secrets import error_text, spec_secrets
from rlaif.judges.common import PrincipleFor, fixed_principle, instruction_text, judge_template, score_all
from rlaif.judges.construct import Scored
from rlaif.judges.parsers import PARSERS
from rlaif.judges.protocol import DEFAULTS, Protocol
from rlaif.judges.stats import bradley_terry, expected_score

DIGITS = tuple(str(d) for d in range(1, 10))


def rating_request(template, prompt: Prompt, generation: Generation, aspect: str, spec, principle) -> ScoreRequest:
    content = template.render_vars(
        instruction=instruction_text(prompt),
        response=template.neutralize(generation.text or ""),
        aspect=aspect,
        scale=spec.scale,
        principle=principle,
    )
    options = DIGITS[: spec.scale] if spec.scale < 10 else DIGITS
    return ScoreRequest(
        messages=(("user", content),),
        prefix=template.protocol.prefix,
        options=options,
        max_tokens=spec.max_tokens,
        want_probs=spec.mode != "parse",
    )


def rating_of(
    first: Scores | Exception, ten: Scores | Exception | None, spec, protocol: Protocol = DEFAULTS["pointwise"]
) -> tuple[float | None, str | None]:
    """The expected (soft) or parsed rating of one response on one aspect, or an error."""
    if isinstance(first, Exception):
        return None, error_text(first, spec_secrets(spec))
    if spec.mode != "parse" and first.probs and sum(first.probs.values()) > 0:
        probs = dict(first.probs)
        if spec.scale == 10 and ten is not None and not isinstance(ten, Exception) and ten.probs:
            q = min(max(ten.probs.get("0", 0.0), 0.0), 1.0)
            probs["10"], probs["1"] = probs["1"] * q, probs["1"] * (1 - q)
        return expected_score(probs)[0], None
    if spec.mode == "logprobs":
        return None, "no verdict-token probabilities (mode: logprobs)"
    text = first.text[len(protocol.prefix) :] if first.text.startswith(protocol.prefix) else first.text
    value = PARSERS[protocol.parser](text, spec.scale, protocol.prefix)
    return (float(value), None) if value is not None else (None, "unparseable rating")


def judge_pointwise(
    groups: list[tuple[Prompt, list[Generation]]],
    spec,
    cache: CallCache,
    stats: CallStats,
    principle_for: PrincipleFor = fixed_principle(None),
) -> tuple[list[Scored], dict]:
    """Rate every response on every aspect; returns per-prompt scores and a report."""
    template = judge_template(spec)
    cells = [(p, g, aspect) for p, gens in groups for g in gens for aspect in spec.aspects]
    requests = [
        rating_request(template, p, g, aspect, spec, principle_for(f"{g.id}|{aspect}")) for p, g, aspect in cells
    ]
    if spec.scale == 10 and spec.mode != "parse":  # P("0" | "Rating: 1") splits "1" from "10"
        requests += [replace(r, prefix=template.protocol.prefix + "1", options=("0",)) for r in requests]
    results = score_all(spec, requests, cache, stats, template.sha256, label="judging (pointwise ratings)")
    n = len(cells)
    ratings = {}
    for index, (_p, g, aspect) in enumerate(cells):
        ten = results[n + index] if len(results) > n else None
        ratings[(g.id, aspect)] = (*rating_of(results[index], ten, spec, template.protocol), _text(results[index]))
    scored = []
    for prompt, gens in groups:
        per = {g.id: {a: ratings[(g.id, a)] for a in spec.aspects} for g in gens}
        errors = [err for g in gens for (_, err, _) in per[g.id].values() if err]
        if errors:
            scored.append(
                Scored(prompt, gens, scores=None, error=errors[0], detail={"ratings": _detail(per)}, raw=_raws(per))
            )
            continue
        scores = [sum(v for v, _, _ in per[g.id].values()) / len(spec.aspects) for g in gens]
        pref = [
            [bradley_terry(si, sj) if i != j else 0.5 for j, sj in enumerate(scores)] for i, si in enumerate(scores)
        ]
        scored.append(Scored(prompt, gens, scores, pref, detail={"ratings": _detail(per)}, raw=_raws(per)))
    ok = [s for entry in scored if entry.scores for s in entry.scores]
    report = {
        "type": "pointwise",
        "aspects": list(spec.aspects),
        "scale": spec.scale,
        "mean_score": _round(statistics.fmean(ok)) if ok else None,
    }
    report["threshold"] = spec.threshold if spec.threshold is not None else (spec.scale + 1) / 2
    return scored, report


def judge_binary(
    groups: list[tuple[Prompt, list[Generation]]],
    spec,
    cache: CallCache,
    stats: CallStats,
    principle_for: PrincipleFor = fixed_principle(None),
) -> tuple[list[Scored], dict]:
    """P(yes) per response; returns per-prompt scores and a report with the label threshold."""
    template = judge_template(spec)
    protocol = template.protocol
    cells = [(p, g) for p, gens in groups for g in gens]
    requests = [
        ScoreRequest(
            messages=(
                (
                    "user",
                    template.render_vars(
                        instruction=instruction_text(p),
                        response=template.neutralize(g.text or ""),
                        principle=principle_for(g.id),
                    ),
                ),
            ),
            prefix=protocol.prefix,
            options=protocol.options,
            max_tokens=spec.max_tokens,
            want_probs=spec.mode != "parse",
        )
        for p, g in cells
    ]
    results = score_all(spec, requests, cache, stats, template.sha256, label="judging (yes/no)")
    secrets = spec_secrets(spec)
    p_yes = {g.id: yes_probability(r, spec.mode, secrets, protocol) for (_, g), r in zip(cells, results)}
    scored = []
    for prompt, gens in groups:
        values = [p_yes[g.id] for g in gens]
        raws = [_text(results[i]) for i, (_, g) in enumerate(cells) if g.id in {x.id for x in gens}]
        error = next((err for _, err in values if err), None)
        if error:
            scored.append(Scored(prompt, gens, scores=None, error=error, raw=raws))
            continue
        scores = [v for v, _ in values]
        pref = [
            [bradley_terry(si, sj, 0.25) if i != j else 0.5 for j, sj in enumerate(scores)]
            for i, si in enumerate(scores)
        ]
        scored.append(Scored(prompt, gens, scores, pref, raw=raws))
    ok = [s for entry in scored if entry.scores for s in entry.scores]
    threshold = (
        spec.threshold if spec.threshold is not None else (statistics.median(ok) if spec.debias and ok else 0.5)
    )
    report = {
        "type": "binary",
        "mean_p_yes": _round(statistics.fmean(ok)) if ok else None,
        "threshold": _round(threshold),
    }
    return scored, report


def yes_probability(
    result: Scores | Exception,
    mode: str,
    secrets: tuple[str, ...] | list[str] = (),
    protocol: Protocol = DEFAULTS["binary"],
) -> tuple[float | None, str | None]:
    """P(the protocol's first option, "yes") renormalised over its two options, or the parsed answer."""
    if isinstance(result, Exception):
        return None, error_text(result, secrets)
    yes, no = protocol.options
    if mode != "parse" and result.probs:
        mass = result.probs.get(yes, 0.0) + result.probs.get(no, 0.0)
        if mass > 0:
            return result.probs.get(yes, 0.0) / mass, None
    if mode == "logprobs":
        return None, "no verdict-token probabilities (mode: logprobs)"
    verdict = PARSERS[protocol.parser](result.text, protocol.options, protocol.prefix)
    if isinstance(verdict, str):  # the verdict parser names the option
        verdict = verdict == yes
    return (None, "unparseable yes/no answer") if verdict is None else (1.0 if verdict else 0.0, None)


def _text(result) -> str:
    return "" if isinstance(result, Exception) else result.text


def _round(x: float) -> float:
    return round(x, 4)


def _detail(per: dict) -> dict:
    return {gid: {aspect: v for aspect, (v, _, _) in aspects.items()} for gid, aspects in per.items()}


def _raws(per: dict) -> list[str]:
    return [f"{gid}/{aspect}: {raw}" for gid, aspects in per.items() for aspect, (_, _, raw) in aspects.items()]
