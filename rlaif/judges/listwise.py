"""Listwise judge: the judge orders K responses (2 to 8), seen in several permutations.

Soft mode reads the probabilities of the best response's label right after the protocol's
prefix, "Output (" by default (under Plackett-Luce these are the strengths of the first choice);
parse mode reads a written ranking. The slot labels are the protocol's options (a-h by default).
Position bias is controlled twice: every prompt is judged in several orders whose results are
un-shuffled and combined, and, with `debias`, each slot's prior is divided out before combining.
The orders come in blocks of K cyclic rotations (original, reversed, then seeded shuffles), so a
whole block shows every response once in every slot: only then does a slot's first-choice rate
measure the slot and not the response that sits in it. The prior is PriDe's (Zheng et al.,
"Large Language Models Are Not Robust Multiple Choice Selectors", ICLR 2024, and its code): per
prompt, the softmax of each slot's mean log-probability over the balanced orders, where the
responses' strengths cancel (for K = 2, that prompt's logit shift); the mean over the run.
"""

from __future__ import annotations

import math
import random

from rlaif.backends.base import ScoreRequest, Scores
from rlaif.calls.cache import CallCache, CallStats
from rlaif.core.errors import RecipeError
from rlaif.core.schema import Generation, Prompt, content_hash
from rlaif.core.secrets import error_text, spec_secrets
from rlaif.judges.common import PrincipleFor, fixed_principle, instruction_text, judge_template, score_all
from rlaif.judges.construct import Scored
from rlaif.judges.parsers import PARSERS
from rlaif.judges.protocol import DEFAULTS, Protocol
from rlaif.judges.stats import borda, mean_tau, order_from_scores, pairwise_share, plackett_luce

LOG_FLOOR = 1e-10  # a slot probability of 0 counts as 1e-10 in the log (PriDe's floor)


def order_count(k: int, count: int | None, debias: bool) -> int:
    """Orders to judge k responses in: `count` (None: k), at most k!; with debias whole blocks of k.

    >>> order_count(3, None, True), order_count(3, 2, False), order_count(3, 7, True), order_count(2, 5, True), order_count(4, 1, True)
    (3, 2, 6, 2, 4)
    """
    n = k if count is None else count
    if debias:
        n = max(k, n - n % k)
    return min(n, math.factorial(k))


def permutations_of(k: int, count: int, key: str, seed: int) -> list[list[int]]:
    """The first `count` orders (at most k!) of k responses: the k cyclic rotations of the original
    order, then of the reversed one, then of seeded shuffles; every whole block of k is a Latin square.

    >>> permutations_of(3, 3, "p1", 0)
    [[0, 1, 2], [1, 2, 0], [2, 0, 1]]
    >>> permutations_of(2, 5, "p1", 0)  # only 2 distinct orders of 2 items
    [[0, 1], [1, 0]]
    """
    count = min(count, math.factorial(k))
    rng = random.Random(int(content_hash([key, seed], 8), 16))
    bases, orders, seen = [list(range(k)), list(range(k))[::-1]], [], set()
    while len(orders) < count:
        base = bases.pop(0) if bases else rng.sample(range(k), k)
        if tuple(base) in seen:
            continue  # a rotation of an earlier base: its whole block is there already
        block = [base[r:] + base[:r] for r in range(k)]
        seen.update(tuple(o) for o in block)
        orders.extend(block)
    return orders[:count]


def listwise_requests(
    template, prompt: Prompt, generations: list[Generation], order: list[int], spec, principle
) -> ScoreRequest:
    labels = template.protocol.options
    outputs = [
        {"label": labels[slot], "text": template.neutralize(generations[i].text or "")} for slot, i in enumerate(order)
    ]
    content = template.render_vars(instruction=instruction_text(prompt), outputs=outputs, principle=principle)
    return ScoreRequest(
        messages=(("user", content),),
        prefix=template.protocol.prefix,
        options=labels[: len(order)],
        max_tokens=max(spec.max_tokens, 8 * len(order)),
        want_probs=spec.mode != "parse",
    )


def slot_probs(
    result: Scores | Exception,
    k: int,
    mode: str,
    secrets: tuple[str, ...] | list[str] = (),
    protocol: Protocol = DEFAULTS["listwise"],
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


def slot_prior(designs: list[list[list[float]]], k: int) -> list[float] | None:
    """Each slot's first-choice prior from prompts judged in balanced orders, as PriDe computes it
    (debias_pride.py): per prompt, the softmax of each slot's mean log-probability over its orders
    (the responses' strengths cancel); over the prompts, the mean of those priors. None: no such prompt.

    >>> [round(x, 4) for x in slot_prior([[[0.6, 0.4], [0.8, 0.2]]], 2)]  # one prompt: its logit shift 0.896
    [0.7101, 0.2899]
    >>> slot_prior([[[0.2, 0.6, 0.2], [0.6, 0.2, 0.2], [0.2, 0.2, 0.6]]], 3) == [1 / 3] * 3  # no slot bias
    True
    """
    if not designs:
        return None
    priors = [_prompt_prior(rows, k) for rows in designs]
    return [sum(prior[s] for prior in priors) / len(priors) for s in range(k)]


def _prompt_prior(rows: list[list[float]], k: int) -> list[float]:
    means = [sum(math.log(max(row[s], LOG_FLOOR)) for row in rows) / len(rows) for s in range(k)]
    top = max(means)
    weights = [math.exp(m - top) for m in means]
    return [w / sum(weights) for w in weights]


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


def _debias(
    designs: list[list[list[float] | None]], k: int
) -> tuple[list[list[list[float] | None]], list[float] | None]:
    """Each prompt's per-order slot probabilities divided by the slot prior (from the prompts whose
    balanced orders all have probabilities) and renormalised; unchanged when there is no prior."""
    prior = slot_prior(
        [rows for rows in designs if rows and len(rows) % k == 0 and all(r is not None for r in rows)], k
    )
    if prior is None:
        return designs, None
    return [[None if p is None else _divided(p, prior) for p in rows] for rows in designs], prior


def _divided(p: list[float], prior: list[float]) -> list[float]:
    raw = [x / q for x, q in zip(p, prior)]
    total = sum(raw)
    return [x / total for x in raw] if total > 0 else p


def _debias_run(plan: list, parsed: dict) -> dict:
    """Divide each K's slot prior out of the prompts with K responses (`parsed`, in place); the priors, for the report."""
    priors = {}
    for k in sorted({len(g) for _, g, _, _ in plan if len(g) >= 2}):
        keys = [p.id for p, g, _, _ in plan if len(g) == k]
        fixed, prior = _debias([[probs for probs, _, _ in parsed[key]] for key in keys], k)
        priors[f"first_choice_by_slot_k{k}"] = None if prior is None else [round(x, 4) for x in prior]
        for key, rows in zip(keys, fixed):
            parsed[key] = [(p, slots, error) for p, (_, slots, error) in zip(rows, parsed[key])]
    return priors


def judge_listwise(
    groups: list[tuple[Prompt, list[Generation]]],
    spec,
    cache: CallCache,
    stats: CallStats,
    principle_for: PrincipleFor = fixed_principle(None),
) -> tuple[list[Scored], dict]:
    """Rank each prompt's responses over its orders (`order_count`); returns per-prompt results and a bias report."""
    template = judge_template(spec)
    most = len(template.protocol.options)
    requests, plan = [], []
    for prompt, generations in groups:
        if len(generations) > most:
            raise RecipeError(
                "<recipe>",
                "samples_per_prompt",
                f"a listwise judge with {most} slot labels ranks at most {most} responses, got {len(generations)}",
                "lower samples_per_prompt or the number of policies",
            )
        count = order_count(len(generations), spec.permutations, spec.debias)
        orders = permutations_of(len(generations), count, prompt.id, spec.seed) if len(generations) >= 2 else []
        principle = principle_for(prompt.id)
        plan.append((prompt, generations, orders, len(requests)))
        requests.extend(listwise_requests(template, prompt, generations, order, spec, principle) for order in orders)
    results = score_all(spec, requests, cache, stats, template.sha256, label="judging (listwise permutations)")
    parsed, secrets = {}, spec_secrets(spec)
    for prompt, generations, orders, start in plan:
        parsed[prompt.id] = [
            slot_probs(results[start + n], len(generations), spec.mode, secrets, template.protocol)
            for n in range(len(orders))
        ]
    largest = max((len(g) for _, g, _, _ in plan), default=0)
    orders_used = order_count(largest, spec.permutations, spec.debias) if largest >= 2 else spec.permutations
    report: dict = {"type": "listwise", "permutations": orders_used, "aggregate": spec.aggregate}
    if spec.debias:
        report.update(_debias_run(plan, parsed))
    scored = [
        _scored(prompt, generations, orders, parsed[prompt.id], results, start, spec)
        for prompt, generations, orders, start in plan
    ]
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
        return Scored(
            prompt, generations, scores=None, error=errors[0] if errors else "no permutation judged", raw=raw
        )
    orders_ok, probs_ok, slots_ok = zip(*ok)
    scores, pref, consistent, ranked = combine_permutations(
        len(generations), list(orders_ok), list(probs_ok), list(slots_ok), spec.aggregate
    )
    detail = {"orders": list(orders_ok), "rankings": ranked, "failed_permutations": len(errors)}
    return Scored(prompt, generations, scores, pref, consistent, agreement=mean_tau(ranked), detail=detail, raw=raw)
