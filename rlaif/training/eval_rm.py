"""A reward model's accuracy on human-labelled pairs: `rlaif eval-rm`.

The reward model scores the human-chosen and the human-rejected response of every gold pair
(`rlaif.core.gold`); it is right when it gives the chosen one the higher reward (an exact tie counts
half, as the judges' agreement does in rlaif.judges.evaluate). Beside the accuracy and its Wilson 95%
interval: the rule "pick the longer response" on the same rows (humans prefer the longer answer
often enough that a reward model must beat it to have learnt anything else), how often the
reward model itself picks the longer one, and - when the model is a trained model of the store -
the judge-quality figures of the dataset version it was trained on (its manifest's
`dataset.eval`), i.e. how well the judge that labelled its data agreed with humans. With
`judge=RECIPE` that judge is also evaluated on the same gold rows (through the request cache).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from rlaif.core.errors import BackendError
from rlaif.judges.evaluate import baseline_longer, baseline_shorter, length_side, prefers_longer
from rlaif.judges.stats import wilson_interval


def reward_model_path(model: str, store: str | Path) -> str:
    """The folder of a reward model (a store model id, a built-in alias or a folder); BackendError when it is none."""
    from rlaif.training.rewards import resolve_model_name, reward_head_problem

    path = resolve_model_name(model, store)
    if not (Path(path) / "config.json").is_file():
        raise BackendError(
            f"--model {model!r} is not a model folder, a built-in alias or a model id of the store {store} - `rlaif models list --store {store}` lists the trained models"
        )
    problem = reward_head_problem(path)
    if problem:
        raise BackendError(
            f"--model {model!r}: {problem} - give a reward model (`rlaif train rm --dataset ID --model M` makes one)"
        )
    return path


def rm_figures(chosen: list[float], rejected: list[float], sides: list[float]) -> dict[str, Any]:
    """Accuracy (ties half), its interval, the length baselines and the RM's own length preference.

    >>> f = rm_figures([1.0, 0.0, 2.0, 1.0], [0.0, 1.0, 1.0, 1.0], [1.0, 1.0, 0.0, 0.5])
    >>> f["accuracy"], f["baseline_longer"], f["prefers_longer"], f["n"]
    (0.625, 0.625, 0.3333, 4)
    """
    picks = [
        1.0 if c > r else 0.0 if c < r else 0.5 for c, r in zip(chosen, rejected)
    ]  # as p(chosen): pick_score's convention
    accuracy = sum(picks) / len(picks) if picks else None
    r4 = lambda x: None if x is None else round(x, 4)  # noqa: E731
    margins = [c - r for c, r in zip(chosen, rejected)]
    return {
        "n": len(picks),
        "accuracy": r4(accuracy),
        "accuracy_ci95": wilson_interval(accuracy, len(picks)),
        "baseline_longer": r4(baseline_longer(sides)),
        "baseline_shorter": r4(baseline_shorter(sides)),
        "prefers_longer": r4(prefers_longer(picks, sides)),
        "mean_margin": r4(sum(margins) / len(margins)) if margins else None,
    }


def trained_on(model: str, store: str | Path) -> dict[str, Any] | None:
    """The dataset version a store model was trained on and its judge's quality figures (None for other models)."""
    from rlaif.store.models import find_model, load_model_manifest

    if find_model(store, model) is None:
        return None
    manifest = load_model_manifest(store, model)
    dataset = manifest.get("dataset") or {}
    return {
        "algorithm": manifest.get("algorithm"),
        "base_model": manifest.get("base_model"),
        "dataset": dataset.get("id"),
        "judge_quality": dataset.get("eval"),
    }


def _scored(score, prompts: list, responses: list[str], advance, chunk: int) -> list[float]:
    """The scorer over the rows in chunks, moving the progress at each (a silent half-minute before)."""
    scores: list[float] = []
    for start in range(0, len(prompts), chunk):
        scores += score(prompts[start : start + chunk], responses[start : start + chunk])
        advance(len(prompts[start : start + chunk]))
    return scores


def evaluate_rm(
    model: str,
    gold_path: str | Path,
    store: str | Path,
    limit: int | None = None,
    judge_recipe=None,
    device: str = "cpu",
    batch_size: int = 8,
    max_length: int = 512,
    gold_format: str = "rlaif",
) -> dict[str, Any]:
    """Score the gold pairs with the reward model; return the figures (see the module docstring).
    `gold_format`: the gold file's shape (rlaif.core.gold_formats), recorded with the skipped rows."""
    from rlaif.core.progress import progress_bar
    from rlaif.judges.evaluate import load_gold_source
    from rlaif.training.rewards import reward_model_scorer

    gold, gold_lineage, _ = load_gold_source(gold_path, store, limit, gold_format)
    pairs = gold.pairs
    path = reward_model_path(model, store)
    score = reward_model_scorer(path, device=device, batch_size=batch_size, max_length=max_length)
    prompts = [pair.prompt for pair in pairs]
    with progress_bar(f"scoring the gold pairs with {model}", 2 * len(pairs)) as advance:
        chosen = _scored(score, prompts, [pair.chosen for pair in pairs], advance, 4 * batch_size)
        rejected = _scored(score, prompts, [pair.rejected for pair in pairs], advance, 4 * batch_size)
    result = {
        "model": model,
        **rm_figures(chosen, rejected, [length_side(p.chosen, p.rejected) for p in pairs]),
        "gold": gold_lineage,
        "limit": limit,
        "trained_on": trained_on(model, store),
        "judge": None,
        "rows": [
            {"row": p.row, "chosen": round(c, 4), "rejected": round(r, 4)} for p, c, r in zip(pairs, chosen, rejected)
        ],
    }
    if judge_recipe is not None:
        from rlaif.judges.evaluate import evaluate_judge

        figures = evaluate_judge(judge_recipe, gold_path, store, limit, gold_format=gold_format)
        keep = (
            "n",
            "agreement",
            "agreement_ci95",
            "baseline_longer",
            "prefers_longer",
            "position_consistency_debiased",
            "failures",
            "calls",
            "path",
        )
        result["judge"] = {
            "recipe": judge_recipe.name,
            "model": judge_recipe.judge.model,
            **{k: figures.get(k) for k in keep},
        }
    return result
