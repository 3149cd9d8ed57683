"""Listwise judge: the judge orders K responses (2 to 8), seen in several permutations.

Soft mode reads the probabilities of the best response's label right after the protocol's
prefix, "Output (" by default (under Plackett-Luce these are the strengths of the first choice);
parse mode reads a written ranking. The slot labels are the protocol's options (a-h by default).
Position bias is controlled twice: every prompt is judged in several orders (original, reversed,
then seeded shuffles) whose results are un-shuffled and combined, and, with `debias`, each
slot's measured first-choice rate over the run is divided out before combining.
"""

from __future__ import annotations

import random

from rlaif.backends.base import ScoreRequest, Scores
from rlaif.cache import CallCache, CallStats
from rlaif.errors import RecipeError
from rlaif.judges.aggregate import borda, mean_tau, order_from_scores, pairwise_share, plackett_luce
from rlaif.judges.common import PrincipleFor, fixed_principle, instruction_text, judge_template, score_all
from rlaif.judges.construct import Scored
from rlaif.judges.parsers import PARSERS
from rlaif.judges.protocol import DEFAULTS, Protocol
from rlaif.schema import Generation, Prompt, content_hash
from rlaif.secrets import error_text, spec_secrets


def permutations_of(k: int, count: int, key: str, seed: int) -> list[list[int]]:
    """Orders to show k responses in: original, reversed, then distinct seeded shuffles.

    >>> permutations_of(3, 2, "p1", 0)
    [[0, 1, 2], [2, 1, 0]]
    >>> len(permutations_of(2, 5, "p1", 0))  # only 2 distinct orders of 2 items
    2
    """
    orders = [list(range(k)), list(range(k))[::-1]]
    rng = random.Random(int(content_hash([key, seed], 8), 16))
    limit = 1
    for n in range(2, k + 1):
        limit *= n
    while len({tuple(o) for o in orders}) < min(count, limit):
        shuffled = list(range(k))
        rng.shuffle(shuffled)
        orders.append(shuffled)
    unique = list(dict.fromkeys(tuple(o) for o in orders))
    return [list(o) for o in unique[: min(count, limit)]]


def listwise_requests(template, prompt: Prompt, generations: list[Generation], order: list[int], spec, principle) -> ScoreRequest:
    labels = template.protocol.options
    outputs = [{"label": labels[slot], "text": template.neutralize(generations[i].text or "")} for slot, i in enumerate(order)]
    content = template.render_vars(instruction=instruction_text(prompt), outputs=outputs, principle=principle)
    return ScoreRequest(
        messages=(("user", content),),
        prefix=template.protocol.prefix,
        options=labels[: len(order)],
        max_tokens=max(spec.max_tokens, 8 * len(order)),
        want_probs=spec.mode != "parse",
    )


def slot_probs(
    result: Scores | Exception, k: int, mode: str, secrets: tuple[str, ...] | list[str] = (), protocol: Protocol = DEFAULTS["listwise"]
) -> tuple[list[float] | None, list[int] | None, str | None]:
    """(first-choice probability per slot, parsed ranking of slots, error) for one permutation."""
    if isinstance(result, Exception):
        return None, None, error_text(result, secrets)
    labels = protocol.options[:k]
    if mode != "parse" and result.probs:
        mass = sum(result.probs.get(label, 0.0) for label in labels)
        if mass > 0:
            return [result.probs.get(label, 0.0) / mass for label in labels], None, None
    if mode == "logprobs":
        return None, None, "no verdict-token probabilities (mode: logprobs)"
    ranking = PARSERS[protocol.parser](result.text, labels, protocol.prefix)
    if ranking is None:
        return None, None, "unparseable ranking"
    return None, [labels.index(label) for label in ranking], None


def slot_prior(all_probs: list[list[float]], k: int) -> list[float]:
    """Mean first-choice probability of each slot over the run (1/k each for an unbiased judge).

    >>> slot_prior([[0.7, 0.3], [0.5, 0.5]], 2)
    [0.6, 0.4]
    """
    rows = [p for p in all_probs if len(p) == k]
    if not rows:
        return [1.0 / k] * k
    return [sum(row[s] for row in rows) / len(rows) for s in range(k)]


def combine_permutations(
    k: int, orders: list[list[int]], probs: list[list[float] | None], rankings: list[list[int] | None], aggregate: str
) -> tuple[list[float], list[list[float]], list[list[bool]], list[list[int]]]:
    """Scores, pref matrix, consistency matrix and per-permutation rankings (response indices)."""
    strengths, ranked = [], []
    for order, p, slots in zip(orders, probs, rankings):
        if p is not None:
            q = [0.0] * k
            for slot, index in enumerate(order):
                q[index] = p[slot]
            strengths.append(q)
            ranked.append(order_from_scores(q))
        elif slots is not None:
            ranked.append([order[slot] for slot in slots])
    if strengths and aggregate == "plackett-luce":
        scores = [sum(q[i] for q in strengths) / len(strengths) for i in range(k)]
    else:
        scores = plackett_luce(ranked, k) if aggregate == "plackett-luce" else borda(ranked, k)
    pref = [[0.5] * k for _ in range(k)]
    consistent = [[True] * k for _ in range(k)]
    for i in range(k):
        for j in range(k):
            if i == j:
                continue
            if strengths:
                pref[i][j] = sum(q[i] / (q[i] + q[j]) if q[i] + q[j] > 0 else 0.5 for q in strengths) / len(strengths)
            else:
                pref[i][j] = pairwise_share(ranked, i, j)
            above = {r.index(i) < r.index(j) for r in ranked}
            consistent[i][j] = len(above) == 1
    return scores, pref, consistent, ranked


def _debias(probs: list[list[float] | None], k: int) -> tuple[list[list[float] | None], list[float]]:
    prior = slot_prior([p for p in probs if p is not None], k)
    fixed = []
    for p in probs:
        if p is None:
            fixed.append(None)
            continue
        raw = [p[s] / prior[s] if prior[s] > 0 else p[s] for s in range(k)]
        total = sum(raw)
        fixed.append([x / total for x in raw] if total > 0 else p)
    return fixed, prior


def judge_listwise(
    groups: list[tuple[Prompt, list[Generation]]],
    spec,
    cache: CallCache,
    stats: CallStats,
    principle_for: PrincipleFor = fixed_principle(None),
) -> tuple[list[Scored], dict]:
    """Rank each prompt's responses over `spec.permutations` orders; returns per-prompt results and a bias report."""
    template = judge_template(spec)
    most = len(template.protocol.options)
    requests, plan = [], []
    for prompt, generations in groups:
        if len(generations) > most:
            raise RecipeError("<recipe>", "samples_per_prompt", f"a listwise judge with {most} slot labels ranks at most {most} responses, got {len(generations)}", "lower samples_per_prompt or the number of policies")
        orders = permutations_of(len(generations), spec.permutations, prompt.id, spec.seed) if len(generations) >= 2 else []
        principle = principle_for(prompt.id)
        plan.append((prompt, generations, orders, len(requests)))
        requests.extend(listwise_requests(template, prompt, generations, order, spec, principle) for order in orders)
    results = score_all(spec, requests, cache, stats, template.sha256, label="judging (listwise permutations)")
    parsed, secrets = {}, spec_secrets(spec)
    for prompt, generations, orders, start in plan:
        parsed[prompt.id] = [slot_probs(results[start + n], len(generations), spec.mode, secrets, template.protocol) for n in range(len(orders))]
    report: dict = {"type": "listwise", "permutations": spec.permutations, "aggregate": spec.aggregate}
    if spec.debias:
        for k in {len(g) for _, g, _, _ in plan if len(g) >= 2}:
            keys = [p.id for p, g, _, _ in plan if len(g) == k]
            fixed, prior = _debias([probs for key in keys for probs, _, _ in parsed[key]], k)
            report[f"first_choice_by_slot_k{k}"] = [round(x, 4) for x in prior]
            flat = iter(fixed)
            for key in keys:
                parsed[key] = [(next(flat), slots, error) for _, slots, error in parsed[key]]
    scored = [_scored(prompt, generations, orders, parsed[prompt.id], results, start, spec) for prompt, generations, orders, start in plan]
    taus = [s.agreement for s in scored if s.agreement is not None]
    report["mean_kendall_tau"] = round(sum(taus) / len(taus), 4) if taus else None
    return scored, report


def _scored(prompt, generations, orders, parsed, results, start, spec) -> Scored:
    raw = [r.text if not isinstance(r, Exception) else "" for r in results[start : start + len(orders)]]
    ok = [(o, p, s) for o, (p, s, e) in zip(orders, parsed) if e is None]
    errors = [e for _, _, e in parsed if e]
    if len(generations) < 2:
        return Scored(prompt, generations, scores=[1.0] * len(generations), raw=raw)
    if not ok:
        return Scored(prompt, generations, scores=None, error=errors[0] if errors else "no permutation judged", raw=raw)
    orders_ok, probs_ok, slots_ok = zip(*ok)
    scores, pref, consistent, ranked = combine_permutations(len(generations), list(orders_ok), list(probs_ok), list(slots_ok), spec.aggregate)
    detail = {"orders": list(orders_ok), "rankings": ranked, "failed_permutations": len(errors)}
    return Scored(prompt, generations, scores, pref, consistent, agreement=mean_tau(ranked), detail=detail, raw=raw)
