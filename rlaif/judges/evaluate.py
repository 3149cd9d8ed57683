"""Judge quality on human labels: `rlaif eval-judge`.

Gold pairs (rlaif.core.gold) become judge items: which response is shown as `a` is drawn per row
from a fixed seed, so the judge cannot win by always naming one side. They are judged exactly as
a run judges (both orders, position bias estimated over the evaluated rows and removed), through
the store's request cache, so re-running an evaluation makes no model call.

Metrics are computed over the rows the judge did not fail on (`n`); failures are counted apart.
Conventions, the same in every metric:
- the judge's pick is its debiased both-order probability vs 0.5; exactly 0.5 is a tie and
  counts as half right (agreement, baselines, ECE) or as a third label "tie" (kappa);
- "longer" is by characters; a pair of equal length counts as half for the length baselines and
  is left out of `prefers_longer`.
"""

from __future__ import annotations

import random
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from rlaif.calls.cache import CallCache, CallStats
from rlaif.core.gold import GoldPair
from rlaif.core.inputs import file_sha256
from rlaif.core.schema import Generation, Judgment, Prompt, content_hash
from rlaif.judges.debias import PositionBias
from rlaif.judges.stats import cohen_kappa, expected_calibration_error, pick_score, wilson_interval
from rlaif.store.atomic import write_json_atomic


def _mean(values: Sequence[float]) -> float | None:
    return sum(values) / len(values) if values else None


def agreement(p_chosen: Sequence[float]) -> float | None:
    """Share of rows where the judge picks the human-chosen response (a tie counts half).

    `p_chosen` is the judge's probability that the human-chosen response is better.

    >>> agreement([0.9, 0.6, 0.5, 0.1])
    0.625
    >>> agreement([]) is None
    True
    """
    return _mean([pick_score(p) for p in p_chosen])


def length_side(chosen: str, rejected: str) -> float:
    """1 when chosen is the longer response (characters), 0 when shorter, 0.5 when equal.

    >>> length_side("long answer", "short"), length_side("x", "yy"), length_side("ab", "cd")
    (1.0, 0.0, 0.5)
    """
    return 1.0 if len(chosen) > len(rejected) else 0.0 if len(chosen) < len(rejected) else 0.5


def baseline_longer(chosen_longer: Sequence[float]) -> float | None:
    """Agreement of the rule "always pick the longer response" (equal length: a coin, half).

    `chosen_longer` holds `length_side(chosen, rejected)` per row.

    >>> baseline_longer([1.0, 1.0, 0.0, 0.5])
    0.625
    """
    return _mean(list(chosen_longer))


def baseline_shorter(chosen_longer: Sequence[float]) -> float | None:
    """Agreement of the rule "always pick the shorter response" (equal length: half).

    >>> baseline_shorter([1.0, 1.0, 0.0, 0.5])
    0.375
    """
    return _mean([1.0 - side for side in chosen_longer])


def prefers_longer(p_chosen: Sequence[float], chosen_longer: Sequence[float]) -> float | None:
    """Share of rows where the judge picks the longer response; rows of equal length are left
    out, a judge tie counts half.

    >>> prefers_longer([0.9, 0.9, 0.2, 0.5, 0.8], [1.0, 0.0, 0.0, 1.0, 0.5])
    0.625
    """
    scores = [
        pick_score(p) if side == 1.0 else 1 - pick_score(p) for p, side in zip(p_chosen, chosen_longer) if side != 0.5
    ]
    return _mean(scores)


def verdict_label(p_a: float) -> str:
    """The judge's label in A/B space: "a", "b", or "tie" for exactly 0.5.

    >>> verdict_label(0.51), verdict_label(0.49), verdict_label(0.5)
    ('a', 'b', 'tie')
    """
    return "a" if p_a > 0.5 else "b" if p_a < 0.5 else "tie"


def chosen_is_a(seed: int, row: int) -> bool:
    """Whether row `row`'s human-chosen response is shown as `a`: a fair coin fixed by (seed, row),
    so a row gets the same order whatever --limit is used.

    >>> chosen_is_a(0, 1) == chosen_is_a(0, 1)
    True
    >>> 400 < sum(chosen_is_a(0, r) for r in range(1000)) < 600
    True
    """
    return random.Random(f"rlaif-eval:{seed}:{row}").random() < 0.5


def gold_items(pairs: list[GoldPair], seed: int) -> tuple[list[tuple[Prompt, Generation, Generation]], list[bool]]:
    """Judge items for gold pairs and, per item, whether `a` is the human-chosen response."""
    items, flags = [], []
    for pair in pairs:
        prompt = Prompt(id=f"gold-{pair.row}", messages=pair.prompt, source=pair.source)
        first_chosen = chosen_is_a(seed, pair.row)
        texts = (pair.chosen, pair.rejected) if first_chosen else (pair.rejected, pair.chosen)
        a, b = (Generation(prompt.id, "gold", "human", index, text, "stop") for index, text in enumerate(texts))
        items.append((prompt, a, b))
        flags.append(first_chosen)
    return items, flags


def judge_items(
    items: list[tuple[Prompt, Generation, Generation]], spec, cache: CallCache, stats: CallStats
) -> tuple[list[Judgment], PositionBias]:
    """Judge gold items exactly as a run does (any judge type, jury, principles, chain-of-thought).

    The one place the judge is called. Per-response judges (listwise, pointwise, binary) see each
    gold pair as a prompt with two responses; their position consistency is the listwise
    permutations' agreement (None for pointwise and binary, which see one response at a time).
    """
    from rlaif.config.recipe import FilterSpec
    from rlaif.judges.stage import judge_pairwise_items, judge_stage

    if spec.type == "pairwise":
        judgments, report = judge_pairwise_items(items, spec, cache, stats)
        return judgments, PositionBias(**report["position_bias"])
    permissive = FilterSpec(drop_truncated=False, response_near_duplicate=None, judge_address=False)
    prompts = [prompt for prompt, _, _ in items]
    generations = [g for _, a, b in items for g in (a, b)]
    outcome = judge_stage(prompts, generations, spec.model_copy(update={"pairs": "first"}), permissive, cache, stats)
    judgments = [outcome.judgments.get((a.id, b.id)) or _unjudged(prompt, a, b, spec) for prompt, a, b in items]
    checked = [j.consistent_raw for j in judgments if j.error is None and j.consistent_raw is not None]
    share = sum(checked) / len(checked) if checked else None
    return judgments, PositionBias(
        beta=0.0, mean_p_first=None, raw_consistency=share, consistency=share, n=len(checked)
    )


def _unjudged(prompt: Prompt, a: Generation, b: Generation, spec) -> Judgment:
    return Judgment(
        prompt_id=prompt.id,
        a_id=a.id,
        b_id=b.id,
        p_a_ab=None,
        p_a_ba=None,
        soft=False,
        raw_ab="",
        raw_ba="",
        template=spec.template_path,
        template_sha256="",
        judge_model=spec.model,
        error="response not judged (empty or identical)",
    )


@dataclass
class RowOutcome:
    """One evaluated gold row, as written to the evaluation file."""

    row: int
    chosen_is_a: bool
    chosen_longer: float  # length_side(chosen, rejected)
    p_a_ab: float | None
    p_a_ba: float | None
    p_chosen: float | None  # debiased, both orders averaged; None when the judge failed
    consistent_raw: bool | None
    consistent: bool | None
    prob_mass: float | None
    error: str | None


def row_outcomes(pairs: list[GoldPair], flags: list[bool], judgments: list[Judgment]) -> list[RowOutcome]:
    """Put each judgment back in the human's terms (p of the human-chosen response)."""
    outcomes = []
    for pair, flag, j in zip(pairs, flags, judgments):
        failed = j.error is not None or j.p_a is None
        p_chosen = None if failed else (j.p_a if flag else 1 - j.p_a)
        error = (j.error or "no probability") if failed else None
        outcomes.append(
            RowOutcome(
                pair.row,
                flag,
                length_side(pair.chosen, pair.rejected),
                j.p_a_ab,
                j.p_a_ba,
                p_chosen,
                j.consistent_raw,
                j.consistent,
                j.prob_mass,
                error,
            )
        )
    return outcomes


def _r(value: float | None) -> float | None:
    return None if value is None else round(value, 4)


def judge_metrics(outcomes: list[RowOutcome], bias: PositionBias) -> dict[str, Any]:
    """All the figures of an evaluation, over the rows the judge did not fail on."""
    ok = [o for o in outcomes if o.error is None]
    p = [o.p_chosen for o in ok]
    sides = [o.chosen_longer for o in ok]
    human = ["a" if o.chosen_is_a else "b" for o in ok]
    judge = [verdict_label(o.p_chosen if o.chosen_is_a else 1 - o.p_chosen) for o in ok]
    longer = [verdict_label(s if o.chosen_is_a else 1 - s) for o, s in zip(ok, sides)]
    masses = [o.prob_mass for o in ok if o.prob_mass is not None]
    return {
        "n": len(ok),
        "agreement": _r(agreement(p)),
        "agreement_ci95": wilson_interval(agreement(p), len(p)),
        "position_consistency": _r(_mean([float(o.consistent_raw) for o in ok if o.consistent_raw is not None])),
        "position_consistency_debiased": _r(_mean([float(o.consistent) for o in ok if o.consistent is not None])),
        "prefers_longer": _r(prefers_longer(p, sides)),
        "kappa": _r(cohen_kappa(judge, human)),
        "ece": _r(expected_calibration_error(p)),
        "failures": len(outcomes) - len(ok),
        "baseline_longer": _r(baseline_longer(sides)),
        "baseline_shorter": _r(baseline_shorter(sides)),
        "kappa_baseline_longer": _r(cohen_kappa(longer, human)),
        "mean_p_chosen": _r(_mean(p)),
        "mean_prob_mass": _r(_mean(masses)),
        "position_bias": bias.as_dict(),
    }


def _slug(text: str) -> str:
    """
    >>> _slug("mt bench/pairs")
    'mt-bench-pairs'
    """
    return "".join(c if c.isalnum() or c in "._-" else "-" for c in text).strip("-") or "gold"


def eval_path(store: Path, recipe_name: str, gold_path: Path, key: dict[str, Any]) -> Path:
    """STORE/evals/<recipe>-<gold folder>-<gold stem>-<12 hex of what determines the result>.json"""
    label = _slug(f"{gold_path.resolve().parent.name}-{gold_path.stem}")
    return store / "evals" / f"{_slug(recipe_name)}-{label}-{content_hash(key, 12)}.json"


def load_gold_source(gold, store: str | Path, limit: int | None = None, gold_format: str = "rlaif"):
    """The pairs of a gold set (a file, `hub:ORG/NAME[@REV]`, or a recipe's `judge.gold` source), converted from its
    format; returns (GoldSet, its lineage: where the rows came from and their sha256, a path that names it)."""
    from rlaif.config.prompt_source import GoldSource
    from rlaif.core.gold import load_gold_counted
    from rlaif.store.prompt_sources import resolve_rows

    source = GoldSource.of(str(gold) if isinstance(gold, Path) else gold, gold_format)
    found = resolve_rows(source, store)
    pairs = load_gold_counted(found.file, limit, source.format)
    lineage = {**found.lineage, "sha256": file_sha256(found.file), **pairs.lineage()}
    return pairs, lineage, Path(source.path or source.hub)


def evaluate_judge(
    recipe,
    gold_path,
    store: str | Path,
    limit: int | None = None,
    seed: int = 0,
    ledger=None,
    gold_format: str = "rlaif",
) -> dict[str, Any]:
    """Judge a gold file with the recipe's judge; return the figures and write them to the store.

    The result (figures, lineage, and per-row outcomes) is saved under `STORE/evals/` (see
    `eval_path`); the returned dict holds everything but the per-row outcomes, plus `path`.
    `gold_format` names the file's shape (rlaif.core.gold_formats); the `gold` block records it and
    the rows skipped by reason (ties, no majority, ...).
    """
    from datetime import datetime, timezone

    from rlaif import __version__
    from rlaif.core.secrets import public_recipe, redact, secrets_of

    store = Path(store)
    gold, gold_lineage, gold_path = load_gold_source(gold_path, store, limit, gold_format)
    pairs = gold.pairs
    items, flags = gold_items(pairs, seed)
    stats, cache = (
        CallStats(ledger=ledger, stage="gold"),
        CallCache(store / "cache.sqlite"),
    )  # ledger: a run's cost and budget (rlaif.calls.costs)
    from rlaif.backends import pooled

    try:
        with pooled(store):  # a judge `model:` that is a trained model id resolves in this store
            judgments, bias = judge_items(items, recipe.judge, cache, stats)
    finally:
        cache.close()
    outcomes = row_outcomes(pairs, flags, judgments)
    lineage = {
        "recipe": recipe.name,
        "judge": public_recipe(recipe.judge.model_dump(mode="json")),  # a URL without its userinfo
        "judge_templates": {j.template: j.template_sha256 for j in judgments},
        "gold": gold_lineage,
        "seed": seed,
        "limit": limit,
    }
    key = {
        "judge": lineage["judge"],
        "templates": lineage["judge_templates"],
        "gold": lineage["gold"]["sha256"],
        "seed": seed,
        "limit": limit,
    }
    if gold.format != "rlaif":  # the same file read another way is another evaluation (rlaif's keys stay as they were)
        key["gold_format"] = gold.format
    path = eval_path(store, recipe.name, gold_path, key)
    result = {
        **judge_metrics(outcomes, bias),
        "calls": {"live": stats.live, "cached": stats.cached, "failed": stats.failed},
        "metrics_over": "the n rows the judge did not fail on",
        **lineage,
        "created_at": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        "package_version": __version__,
    }
    secrets = secrets_of(recipe)  # the outcomes' error text came from outside: scrub it (the rest is rlaif's own)
    write_json_atomic(path, {**result, "outcomes": [redact(o.__dict__, secrets) for o in outcomes]})
    return {**result, "path": str(path)}


def comparison_rows(result: dict[str, Any]) -> list[tuple[str, str, str, str]]:
    """(metric, judge, always longer, always shorter) rows for the CLI table.

    >>> comparison_rows({"agreement": 0.5, "baseline_longer": 0.7, "baseline_shorter": 0.3})[0]
    ('agreement with humans', '0.50', '0.70', '0.30')
    """
    f = lambda x: "-" if x is None else f"{x:.2f}"  # noqa: E731
    longer, shorter = result.get("baseline_longer"), result.get("baseline_shorter")
    return [
        ("agreement with humans", f(result.get("agreement")), f(longer), f(shorter)),
        ("agreement, 95% interval", "-".join(f(x) for x in result.get("agreement_ci95") or [None]), "", ""),
        ("Cohen's kappa (A/B labels)", f(result.get("kappa")), f(result.get("kappa_baseline_longer")), "-"),
        ("picks the longer response", f(result.get("prefers_longer")), "1.00", "0.00"),
        ("order-consistent (raw)", f(result.get("position_consistency")), "1.00", "1.00"),
        ("order-consistent (debiased)", f(result.get("position_consistency_debiased")), "1.00", "1.00"),
        ("calibration error (ECE)", f(result.get("ece")), "-", "-"),
        ("mean P(verdict tokens)", f(result.get("mean_prob_mass")), "-", "-"),
    ]


def leaderboard_rows(results: list[dict[str, Any]], labels: list[str]) -> tuple[list[str], list[list[str]]]:
    """(header, rows) of judges side by side, best agreement first, then the two length rules.

    >>> header, rows = leaderboard_rows([{"agreement": 0.5, "baseline_longer": 0.7, "baseline_shorter": 0.3}, {"agreement": 0.6}], ["x", "y"])
    >>> header, rows[0]
    (['metric', 'y', 'x', 'always longer', 'always shorter'], ['agreement with humans', '0.60', '0.50', '0.70', '0.30'])
    """
    order = sorted(range(len(results)), key=lambda i: -(results[i].get("agreement") or 0.0))
    columns = [comparison_rows(results[i]) for i in order]
    baselines = comparison_rows(results[0])
    rows = [
        [metric, *(column[n][1] for column in columns), longer, shorter]
        for n, (metric, _, longer, shorter) in enumerate(baselines)
    ]
    return ["metric", *(labels[i] for i in order), "always longer", "always shorter"], rows
