"""Soft vs hard labels for a reward model: RM accuracy on held-out human labels (docs/training.md).

1. Label: the response pairs of the shared human-labelled sets (--train, default PandaLM 894 +
   MT-Bench 200 = 1,094 pairs) are judged by the embedded judge of recipes/demo.yaml (smollm2-135m,
   prompts/pairwise_judge.j2, verdict-token probabilities, both orders, position-debiased) through
   `rlaif.judges.evaluate.evaluate_judge` and the store's request cache (a re-run makes no model call).
   Only the pairs' prompts and responses are used: `chosen` is the response the judge prefers
   after debiasing and `p_chosen` its debiased P(chosen better); the human label is not used for
   training (it gives the judge's own agreement with humans on these pairs, reported beside).
   The pairs are committed as a dataset version (`rlaif.store.versions.commit_tables`) whose
   `pairs` table has the columns of a pipeline version, so `rlaif train rm` reads it as any other.
2. Train: two reward models from smollm2-135m with `rlaif.training.driver.train` (`rlaif train rm`),
   identical (seed, steps, learning rate, batch, max_length) except `soft_labels: cross_entropy`.
3. Evaluate: `rlaif.training.eval_rm.evaluate_rm` (`rlaif eval-rm`) on --eval (default LLMEval2,
   199 pairs, not used in training): accuracy with a Wilson 95% interval, beside "pick the longer";
   with --judge-eval also the judge itself on the same rows (398 more judge calls).

Everything runs on CPU with one torch thread. The full study (the defaults):

    .venv/bin/python benchmarks/soft_vs_hard.py --write

A smaller variant (the first rows of each training file, e.g. 160 + 40 pairs):

    .venv/bin/python benchmarks/soft_vs_hard.py --train PANDALM:160 --train MTBENCH:40 --write

--write replaces the `soft-vs-hard` section of docs/benchmarks.md and prints the table for
docs/training.md; without it the section is printed.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import time
from pathlib import Path

os.environ.setdefault("OMP_NUM_THREADS", "1")
os.environ.setdefault("RLAIF_PROGRESS", "0")

import _common as common  # noqa: E402

DATA = Path("/work/shared/data") if Path("/work/shared/data").is_dir() else common.ROOT.parent / "shared" / "data"
SETS = {"PANDALM": "pandalm-human-sample", "MTBENCH": "mt-bench-human-sample", "LLMEVAL2": "llmeval2-human-sample"}
RECIPE = common.ROOT / "recipes" / "demo.yaml"


def gold_file(spec: str) -> tuple[Path, int | None]:
    """`NAME[:ROWS]` (NAME a key of SETS or a path) -> (file, row limit)."""
    name, _, rows = spec.partition(":")
    path = DATA / SETS[name] / "pairs.jsonl" if name in SETS else Path(name)
    return path, int(rows) if rows else None


def demo_recipe():
    """recipes/demo.yaml with its judge on one torch thread."""
    from rlaif.config.recipe import load_recipe

    recipe = load_recipe(RECIPE)
    return recipe.model_copy(update={"judge": recipe.judge.model_copy(update={"threads": 1})})


def judge_file(recipe, path: Path, limit: int | None, store: Path) -> tuple[dict, list[dict], list]:
    """The judge's figures on one gold file, its per-row outcomes and the gold pairs."""
    from rlaif.core.gold import load_gold
    from rlaif.judges.evaluate import evaluate_judge

    figures = evaluate_judge(recipe, path, store, limit)
    outcomes = json.loads(Path(figures["path"]).read_text())["outcomes"]
    return figures, outcomes, load_gold(path, limit)


def judged_pair(pair, outcome: dict, tag: str, judge_model: str, template_sha: str) -> tuple[dict, bool] | None:
    """A `pairs` row labelled by the judge alone (chosen = the response it prefers after debiasing),
    and whether that is the human-chosen one (for the report only: it is not in the row)."""
    p = outcome["p_chosen"]  # P(human-chosen better), debiased
    if outcome["error"] is not None or p is None:
        return None
    judge_takes_human = p > 0.5 or (p == 0.5 and outcome["chosen_is_a"])  # a tie: the side shown first (a fair coin)
    chosen, rejected = (pair.chosen, pair.rejected) if judge_takes_human else (pair.rejected, pair.chosen)
    p_judge = p if judge_takes_human else 1 - p
    chosen_is_a = outcome["chosen_is_a"] == judge_takes_human
    raw_ab = outcome["p_a_ab"] if chosen_is_a else 1 - outcome["p_a_ab"]
    raw_ba = outcome["p_a_ba"] if chosen_is_a else 1 - outcome["p_a_ba"]
    pid = f"{tag}-{pair.row}"
    return {
        "prompt": pair.prompt,
        "chosen": [{"role": "assistant", "content": chosen}],
        "rejected": [{"role": "assistant", "content": rejected}],
        "prompt_id": pid,
        "chosen_id": f"{pid}/{tag}/{0 if chosen_is_a else 1}",
        "rejected_id": f"{pid}/{tag}/{1 if chosen_is_a else 0}",
        "chosen_policy": tag,
        "rejected_policy": tag,
        "p_chosen": round(p_judge, 6),
        "margin": round(2 * p_judge - 1, 6),
        "p_chosen_raw_ab": raw_ab,
        "p_chosen_raw_ba": raw_ba,
        "judge_model": judge_model,
        "judge_template_sha256": template_sha,
    }, judge_takes_human


def agreement_block(files: list[dict], pairs: list[dict], agrees: list[bool]) -> dict:
    """The judge's agreement with the human labels over all training pairs (the version's `eval`)."""
    from rlaif.judges.stats import wilson_interval

    n = len(pairs)
    share = sum(0.5 if p["p_chosen"] == 0.5 else float(a) for p, a in zip(pairs, agrees)) / n
    keep = (
        "n",
        "agreement",
        "agreement_ci95",
        "baseline_longer",
        "prefers_longer",
        "position_consistency_debiased",
        "failures",
        "calls",
    )
    return {
        "n": n,
        "agreement": round(share, 4),
        "agreement_ci95": wilson_interval(share, n),
        "gold": {
            "path": " + ".join(f["gold"]["path"] for f in files),
            "rows": sum(f["gold"]["rows"] for f in files),
            "files": [
                {"path": f["gold"]["path"], "sha256": f["gold"]["sha256"], "rows": f["gold"]["rows"]} for f in files
            ],
        },
        "per_file": [{k: f.get(k) for k in keep} | {"path": f["gold"]["path"]} for f in files],
    }


def make_version(args, store: Path) -> tuple[str, dict]:
    """Judge the training files and commit the judge-labelled pairs as a version; (id, eval block)."""
    from rlaif.store.versions import commit_tables

    recipe, files, rows, prompts, agrees = demo_recipe(), [], [], [], []
    for spec in args.train:
        path, limit = gold_file(spec)
        started = time.perf_counter()
        figures, outcomes, gold = judge_file(recipe, path, limit, store)
        print(
            f"judged {path.parent.name}: {len(gold)} pairs in {time.perf_counter() - started:.0f} s, calls {figures['calls']}, "
            f"agreement with humans {figures['agreement']} {figures['agreement_ci95']}",
            flush=True,
        )
        files.append(figures)
        sha = next(iter(figures["judge_templates"].values()), "")
        tag = path.parent.name.split("-")[0]
        for pair, outcome in zip(gold, outcomes):
            judged = judged_pair(pair, outcome, tag, recipe.judge.model, sha)
            if judged is not None:
                row = judged[0]
                rows.append(row)
                agrees.append(judged[1])
                prompts.append({"id": row["prompt_id"], "messages": pair.prompt, "source": str(path)})
    quality = agreement_block(files, rows, agrees)
    manifest = {
        "recipe": {"name": "soft-vs-hard", "judge": recipe.judge.model_dump(mode="json")},
        "inputs": {"gold_pairs": quality["gold"]},
        "models": {"judge": {"backend": recipe.judge.backend, "model": recipe.judge.model}},
        "counts": {"prompts": len(prompts), "in": sum(f["gold"]["rows"] for f in files), "kept": len(rows)},
        "judge": {"type": "pairwise", "debias": True, "position_bias": [f["position_bias"] for f in files]},
        "eval": {k: quality[k] for k in ("n", "agreement", "agreement_ci95", "gold")},
        "note": "responses from the shared human-labelled sets; labels (chosen, p_chosen) from the judge only",
    }
    version_id, _ = commit_tables(store, "soft-vs-hard", {"pairs": rows, "prompts": prompts}, manifest)
    return version_id, quality | {
        "pairs": len(rows),
        "within_max_length": pairs_within(rows, args.max_length),
        "mean_p_chosen": round(sum(r["p_chosen"] for r in rows) / len(rows), 4),
    }


def pairs_within(rows: list[dict], max_length: int) -> int:
    """How many pairs RewardTrainer keeps: it drops a pair whose chosen or rejected (chat template
    applied) is over max_length tokens."""
    from transformers import AutoTokenizer

    from rlaif.weights.resolve import resolve_model

    tokenizer = AutoTokenizer.from_pretrained(resolve_model("smollm2-135m"))
    size = lambda row, side: len(
        tokenizer.apply_chat_template([*row["prompt"], *row[side]], tokenize=True)["input_ids"]
    )  # noqa: E731
    return sum(size(row, "chosen") <= max_length and size(row, "rejected") <= max_length for row in rows)


def train_both(args, store: Path, version_id: str, pairs: int) -> dict[str, dict]:
    """The hard-label and the soft-label reward model, identical otherwise."""
    from rlaif.training.config import load_settings
    from rlaif.training.driver import train

    steps = args.steps or math.ceil(pairs / args.batch_size)
    common_settings = {
        "max_steps": steps,
        "learning_rate": args.lr,
        "batch_size": args.batch_size,
        "max_length": args.max_length,
        "seed": args.seed,
        "threads": 1,
    }
    results = {}
    for label, soft in (("hard", None), ("soft", "cross_entropy")):
        settings = load_settings("rm", name=f"soft-vs-hard-{label}", soft_labels=soft, **common_settings)
        result = train(store, version_id, "rm", "smollm2-135m", settings, progress=False, device="cpu")
        print(
            f"{label}: {result.model_id} {'(existing)' if result.existed else f'trained in {result.seconds:.0f} s'}",
            flush=True,
        )
        results[label] = {
            "model": result.model_id,
            "seconds": round(result.seconds, 1),
            "existed": result.existed,
            "steps": steps,
            "final_loss": result.metrics.get("train_loss", result.metrics.get("loss")),
        }
    return results


def evaluate_both(args, store: Path, models: dict[str, dict]) -> dict:
    from rlaif.training.eval_rm import evaluate_rm

    path, limit = gold_file(args.eval)
    out = {}
    for index, (label, info) in enumerate(models.items()):
        judge = demo_recipe() if args.judge_eval and index == 0 else None
        started = time.perf_counter()
        out[label] = evaluate_rm(
            info["model"], path, store, limit=limit, judge_recipe=judge, max_length=args.eval_max_length
        )
        print(
            f"eval {label}: accuracy {out[label]['accuracy']} {out[label]['accuracy_ci95']} in {time.perf_counter() - started:.0f} s",
            flush=True,
        )
    return out


def fmt_share(value, ci) -> str:
    return "-" if value is None else f"{value:.3f} [{ci[0]:.3f}, {ci[1]:.3f}]"


def report(args, quality: dict, models: dict, evals: dict, minutes: float, load_before: str) -> str:
    import torch
    import transformers
    import trl

    hard, soft = evals["hard"], evals["soft"]
    judge = hard.get("judge")
    judge_row = (
        f"| the judge itself (smollm2-135m, both orders, debiased) | {fmt_share(judge['agreement'], judge['agreement_ci95'])} |\n"
        if judge
        else ""
    )
    per_file = "; ".join(
        f"{Path(f['path']).parent.name} {fmt_share(f['agreement'], f['agreement_ci95'])} (pick the longer {f['baseline_longer']})"
        for f in quality["per_file"]
    )
    return f"""## Soft vs hard labels: reward-model accuracy on held-out human labels (`benchmarks/soft_vs_hard.py`)

- Date: {common.today()}; machine: {common.machine()} (load average before: {load_before}); torch {torch.__version__}, transformers {transformers.__version__}, TRL {trl.__version__}; 1 torch thread, float32, CPU
- Command: `{common.command_line()}` ({minutes:.0f} min in all)
- Version: {quality["pairs"]} pairs whose prompts and responses come from the shared human-labelled sets ({", ".join(args.train)}); only the labels come from the judge
  (recipes/demo.yaml's smollm2-135m, both orders, position-debiased): chosen = the response it prefers, p_chosen = its debiased P(chosen better), mean {quality["mean_p_chosen"]}.
- The judge's agreement with the human labels on these {quality["n"]} pairs: {fmt_share(quality["agreement"], quality["agreement_ci95"])} ({per_file}): near chance.
- Both RMs: `rlaif train rm` from smollm2-135m ({quality["within_max_length"]} of the {quality["pairs"]} pairs fit max_length; RewardTrainer drops the others), {models["hard"]["steps"]} steps, batch {args.batch_size}, learning rate {args.lr}, max_length {args.max_length}, seed {args.seed};
  hard = TRL's RewardTrainer (with the version's `margin` column, 2p - 1), soft = `soft_labels: cross_entropy`. Training time {models["hard"]["seconds"]} s and {models["soft"]["seconds"]} s.
- Evaluated with `rlaif eval-rm` (rlaif.training.eval_rm, max_length {args.eval_max_length}) on {hard["gold"]["path"]} ({hard["n"]} pairs, not used in training).

| on {Path(hard["gold"]["path"]).parent.name} ({hard["n"]} pairs) | accuracy [Wilson 95%] |
|---|---|
| RM, hard labels (`{models["hard"]["model"]}`) | {fmt_share(hard["accuracy"], hard["accuracy_ci95"])} |
| RM, soft labels, cross-entropy (`{models["soft"]["model"]}`) | {fmt_share(soft["accuracy"], soft["accuracy_ci95"])} |
{judge_row}| pick the longer response | {hard["baseline_longer"]:.3f} |

RM picks the longer response: hard {hard["prefers_longer"]}, soft {soft["prefers_longer"]}; mean reward margin (chosen - rejected): hard {hard["mean_margin"]}, soft {soft["mean_margin"]}.
"""


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument(
        "--train",
        action="append",
        help=f"NAME[:ROWS] of a training gold file (NAME one of {', '.join(SETS)} or a path); default PANDALM and MTBENCH, all rows.",
    )
    parser.add_argument(
        "--eval",
        default="LLMEVAL2",
        help="NAME[:ROWS] of the held-out gold file the RMs are evaluated on (default LLMEVAL2, 199 pairs).",
    )
    parser.add_argument(
        "--store",
        type=Path,
        default=common.ROOT / ".cache" / "soft-vs-hard" / "store",
        help="Store for the cache, the version and the models (a re-run reuses all three).",
    )
    parser.add_argument(
        "--steps", type=int, default=0, help="Training steps of each RM (default: one epoch, pairs / batch)."
    )
    parser.add_argument("--batch-size", type=int, default=4)
    parser.add_argument("--lr", type=float, default=1e-5)
    parser.add_argument(
        "--max-length", type=int, default=320, help="Training max_length (tokens of prompt + response)."
    )
    parser.add_argument("--eval-max-length", type=int, default=512)
    parser.add_argument("--seed", type=int, default=42)
    parser.add_argument(
        "--judge-eval", action="store_true", help="Also judge the eval pairs with the judge (2 calls per pair)."
    )
    parser.add_argument("--write", action="store_true", help="Refresh the soft-vs-hard section of docs/benchmarks.md.")
    args = parser.parse_args()
    args.train = args.train or ["PANDALM", "MTBENCH"]
    return args


def main() -> None:
    import torch

    torch.set_num_threads(1)
    args = parse_args()
    load_before, started = common.load_average(), time.perf_counter()
    version_id, quality = make_version(args, args.store)
    print(
        f"version {version_id}: {quality['pairs']} pairs, judge agreement with humans {quality['agreement']} {quality['agreement_ci95']}",
        flush=True,
    )
    models = train_both(args, args.store, version_id, quality["pairs"])
    evals = evaluate_both(args, args.store, models)
    body = report(args, quality, models, evals, (time.perf_counter() - started) / 60, load_before)
    (args.store.parent / "result.json").write_text(
        json.dumps(
            {
                "version": version_id,
                "quality": quality,
                "models": models,
                "evals": {k: {x: y for x, y in v.items() if x != "rows"} for k, v in evals.items()},
            },
            indent=2,
            default=str,
        )
    )
    common.publish("soft-vs-hard", body, args.write)


if __name__ == "__main__":
    main()
