"""Judged win rate of a new policy over an old one on held-out prompts: `rlaif eval-policy`.

Both policies answer every prompt once (the judge recipe's first policy gives the engine settings
and sampling parameters: backend, batch size, temperature, max_tokens, seed; flags override them),
then the recipe's judge compares each pair exactly as a run does (`rlaif.judges.evaluate.judge_items`):
both orders, the position bias estimated over the evaluation and removed. Which policy is shown
as `a` is a fair coin per prompt fixed by the seed. Every model call goes through the store's
request cache, so a re-run pays nothing twice.

Counting: a comparison the judge favours for NEW is a win, for OLD a loss, exactly 0.5 a tie
(half a win); two identical responses are a tie without a judge call. A failed sample or a failed
judgment is counted under `failed` and left out of the win rate. The judge's own quality on human
labels (its recipe's `judge.gold`) is reported beside the win rate, since a win rate from a
judge that does not beat "pick the longer response" says little.
"""

from __future__ import annotations

import random
from pathlib import Path
from typing import Any

from rlaif.calls.cache import CallCache, CallStats
from rlaif.core.schema import Generation, Judgment, Prompt
from rlaif.judges.evaluate import judge_items
from rlaif.judges.stats import pick_score, wilson_interval

QUALITY_UNKNOWN = "judge quality unknown: add judge.gold (human-labelled pairs) to the judge recipe"


def new_is_a(seed: int, index: int) -> bool:
    """Whether prompt `index` shows the new policy's response as `a` (a coin fixed by seed and index).

    >>> new_is_a(0, 3) == new_is_a(0, 3)
    True
    >>> 400 < sum(new_is_a(0, i) for i in range(1000)) < 600
    True
    """
    return random.Random(f"rlaif-eval-policy:{seed}:{index}").random() < 0.5


def local_model(name: str, store: str | Path) -> str:
    """A store model id as its weights folder (other names as given: aliases and folders resolve in the backend)."""
    from rlaif.store.models import find_model
    from rlaif.weights.resolve import weights_path

    return weights_path(store, name) if find_model(store, name) is not None else name


def policy_spec(recipe, name: str, model: str, store: str | Path, overrides: dict[str, Any]):
    """The recipe's first policy with another model, name and sampling parameters."""
    base = recipe.policies[0]
    params = base.params.model_copy(update={k: v for k, v in overrides.items() if v is not None})
    where = model if base.backend == "openai" else local_model(model, store)
    return base.model_copy(update={"name": name, "model": where, "params": params})


def pair_items(
    prompts: list[Prompt], new: list[Generation], old: list[Generation], seed: int
) -> tuple[list, list[dict]]:
    """Judge items for the pairs that need a judge, and one outcome per prompt (filled in later)."""
    items, outcomes = [], []
    for index, (prompt, a_new, b_old) in enumerate(zip(prompts, new, old)):
        flag = new_is_a(seed, index)
        outcome = {"prompt_id": prompt.id, "new_is_a": flag, "p_new": None, "error": None, "item": None}
        if a_new.error or b_old.error or a_new.text is None or b_old.text is None:
            outcome["error"] = "sampling failed: " + (a_new.error or b_old.error or "no text")
        elif a_new.text.strip() == b_old.text.strip():
            outcome["p_new"], outcome["identical"] = 0.5, True
        else:
            outcome["item"] = len(items)
            items.append((prompt, a_new, b_old) if flag else (prompt, b_old, a_new))
        outcomes.append(outcome)
    return items, outcomes


def settle(outcomes: list[dict], judgments: list[Judgment]) -> list[dict]:
    """Each outcome's P(new better) from its judgment (None and an error when the judge failed)."""
    for outcome in outcomes:
        index = outcome.pop("item")
        if index is None:
            continue
        j = judgments[index]
        if j.error is not None or j.p_a is None:
            outcome["error"] = "judgment failed: " + (j.error or "no probability")
        else:
            outcome["p_new"] = j.p_a if outcome["new_is_a"] else 1 - j.p_a
    return outcomes


def win_figures(outcomes: list[dict]) -> dict[str, Any]:
    """Wins, losses, ties, win rate (ties half) with its Wilson 95% interval, over the judged prompts.

    >>> f = win_figures([{"p_new": 0.9}, {"p_new": 0.2}, {"p_new": 0.5}, {"p_new": None, "error": "x"}])
    >>> f["wins"], f["losses"], f["ties"], f["win_rate"], f["n"], f["failed"]
    (1, 1, 1, 0.5, 3, 1)
    """
    judged = [o for o in outcomes if o.get("error") is None and o.get("p_new") is not None]
    picks = [pick_score(o["p_new"]) for o in judged]
    rate = sum(picks) / len(picks) if picks else None
    return {
        "n": len(judged),
        "wins": picks.count(1.0),
        "losses": picks.count(0.0),
        "ties": picks.count(0.5),
        "identical": sum(1 for o in judged if o.get("identical")),
        "win_rate": None if rate is None else round(rate, 4),
        "win_rate_ci95": wilson_interval(rate, len(picks)),
        "mean_p_new": round(sum(o["p_new"] for o in judged) / len(judged), 4) if judged else None,
        "failed": len(outcomes) - len(judged),
        "failures": sorted({o["error"] for o in outcomes if o.get("error")})[:5],
    }


def judge_quality(recipe, store: str | Path) -> tuple[dict | None, str | None]:
    """(the judge's figures on its gold pairs, or None; a note when there are none)."""
    if not recipe.judge.gold:
        return None, QUALITY_UNKNOWN
    from rlaif.judges.measure import measure_judge

    return measure_judge(recipe, store), None


def evaluate_policy(
    model: str,
    baseline: str,
    prompts_path: str | Path,
    recipe,
    store: str | Path,
    limit: int | None = None,
    seed: int = 0,
    temperature: float | None = None,
    baseline_temperature: float | None = None,
    max_tokens: int | None = None,
) -> dict[str, Any]:
    """Sample `model` (NEW) and `baseline` (OLD) on the prompts, judge each pair, return the figures."""
    from rlaif.core.inputs import file_sha256, load_prompts
    from rlaif.pipeline.sampling import sample_policy

    store = Path(store)
    prompts = load_prompts(prompts_path, recipe.prompts.system, limit)
    new_spec = policy_spec(recipe, "new", model, store, {"temperature": temperature, "max_tokens": max_tokens})
    old_temperature = temperature if baseline_temperature is None else baseline_temperature
    old_spec = policy_spec(
        recipe, "baseline", baseline, store, {"temperature": old_temperature, "max_tokens": max_tokens}
    )
    stats, cache = CallStats(), CallCache(store / "cache.sqlite")
    try:
        new = sample_policy(prompts, new_spec, 1, cache, stats)
        old = sample_policy(prompts, old_spec, 1, cache, stats)
        items, outcomes = pair_items(prompts, new, old, seed)
        judgments, bias = judge_items(items, recipe.judge, cache, stats) if items else ([], None)
    finally:
        cache.close()
    outcomes = settle(outcomes, judgments)
    quality, note = judge_quality(recipe, store)
    return {
        "model": model,
        "baseline": baseline,
        **win_figures(outcomes),
        "prompts": {"path": str(prompts_path), "sha256": file_sha256(Path(prompts_path)), "rows": len(prompts)},
        "sampling": {"model": new_spec.params.model_dump(), "baseline": old_spec.params.model_dump()},
        "judge": {
            "recipe": recipe.name,
            "type": recipe.judge.type,
            "model": recipe.judge.model,
            "debias": recipe.judge.debias,
        },
        "position_bias": bias.as_dict() if bias is not None else None,
        "judge_quality": quality,
        "judge_quality_note": note,
        "calls": {"live": stats.live, "cached": stats.cached, "failed": stats.failed},
        "seed": seed,
        "outcomes": outcomes,
    }
