"""Seconds per training step of each trainer on CPU, through the user-facing command, whole processes.

For each algorithm, `rlaif train ALG --dataset ID --model smollm2-135m --max-steps N --config C --store S`
runs as a subprocess, once with N = --short and once with N = --long steps (each run a new model: its
`name:` differs). The per-step time is the difference of the two wall times over the difference of
the steps; what is left of the short run is the fixed cost (Python and torch imports, loading the
model and the reference model, building the rows, saving and committing the model).

The dataset is a committed version of --pairs synthetic pairs over data/prompts.jsonl, with responses
of about --words words, so that the token counts are those of short real answers (the labels do not
change the cost of a step). ppo / rloo / grpo are rewarded by a reward model trained first
(`rlaif train rm`, its id as `reward: {model: ID}`): the judge as the reward costs the judge's calls on top.

    .venv/bin/python benchmarks/train_cpu.py --write                       # all 8, N = 2 and 6
    .venv/bin/python benchmarks/train_cpu.py --algorithms dpo,sft --short 1 --long 3   # a small version
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import _common as common
import yaml

ALGORITHMS = ("sft", "rm", "dpo", "kto", "ppo", "rloo", "grpo", "rrhf")
ONLINE = ("ppo", "rloo", "grpo")
# Small CPU settings (batch 2, max_length 256) and the algorithm's own fields that set the work per step.
COMMON = {"batch_size": 2, "max_length": 256, "threads": 1, "seed": 0}
OWN = {
    "rloo": {"num_generations": 2, "max_completion_length": 32},
    "grpo": {"num_generations": 2, "max_completion_length": 32},
    "ppo": {"mini_batch_size": 2, "ppo_epochs": 1, "max_new_tokens": 32},
}
WORDS = "the answer is short clear and kind so that a reader can follow each step of it without".split()


def make_version(store: Path, pairs: int, words: int) -> str:
    """A committed version of `pairs` synthetic pairs (prompts of data/prompts.jsonl, responses of about `words` words)."""
    from rlaif.store.versions import commit_tables
    from tests.test_export import MANIFEST

    lines = [
        json.loads(line) for line in (common.ROOT / "data" / "prompts.jsonl").read_text().splitlines() if line.strip()
    ]
    prompts, generations, rows, judgments = [], [], [], []
    for i in range(pairs):
        src = lines[i % len(lines)]
        pid, messages = f"b{i}", [{"role": "user", "content": src.get("prompt") or src.get("text") or str(src)}]
        prompts.append({"id": pid, "messages": messages, "source": "bench"})
        texts = [" ".join(WORDS[(i + k + j) % len(WORDS)] for j in range(words - 7 * k)) for k in (0, 1)]
        for k, text in enumerate(texts):
            generations.append(
                {
                    "prompt_id": pid,
                    "policy": "smol",
                    "model": "m",
                    "sample_index": k,
                    "text": text,
                    "finish_reason": "stop",
                }
            )
        a, b = f"{pid}/smol/0", f"{pid}/smol/1"
        p = 0.6 + 0.3 * (i % 3) / 2
        judgments.append(
            {"prompt_id": pid, "a_id": a, "b_id": b, "p_a_ab": p, "p_a_ba": p, "soft": True, "p_a": p, "error": None}
        )
        rows.append(
            {
                "prompt": messages,
                "chosen": [{"role": "assistant", "content": texts[0]}],
                "rejected": [{"role": "assistant", "content": texts[1]}],
                "prompt_id": pid,
                "chosen_id": a,
                "rejected_id": b,
                "chosen_policy": "smol",
                "rejected_policy": "smol",
                "p_chosen": p,
                "margin": round(2 * p - 1, 6),
                "p_chosen_raw_ab": p,
                "p_chosen_raw_ba": p,
                "judge_model": "smollm2-135m",
                "judge_template_sha256": "cd" * 32,
            }
        )
    tables = {"pairs": rows, "judgments": judgments, "generations": generations, "prompts": prompts}
    return commit_tables(store, "bench", tables, MANIFEST)[0]


def train(
    store: Path, dataset: str, algorithm: str, steps: int, tag: str, reward: str | None, work: Path
) -> tuple[float, str]:
    """Wall seconds of one `rlaif train` process and the model id it printed."""
    config = {**COMMON, **OWN.get(algorithm, {}), "name": f"bench-{algorithm}-{tag}"}
    if reward:
        config["reward"] = {"model": reward}
    path = work / f"{algorithm}-{tag}.yaml"
    path.write_text(yaml.safe_dump(config))
    argv = [
        sys.executable,
        "-m",
        "rlaif.cli",
        "train",
        algorithm,
        "--dataset",
        dataset,
        "--model",
        "smollm2-135m",
        "--max-steps",
        str(steps),
        "--config",
        str(path),
        "--store",
        str(store),
    ]
    env = {**os.environ, "RLAIF_PROGRESS": "0", "OMP_NUM_THREADS": "1", "TOKENIZERS_PARALLELISM": "false"}
    started = time.perf_counter()
    done = subprocess.run(argv, cwd=common.ROOT, env=env, capture_output=True, text=True)
    seconds = time.perf_counter() - started
    if done.returncode != 0:
        raise RuntimeError(
            f"`rlaif {' '.join(argv[3:])}` failed ({done.returncode}): {done.stderr.strip().splitlines()[-1] if done.stderr.strip() else ''}"
        )
    return seconds, done.stdout.strip().splitlines()[-1]


def measure(args, store: Path, dataset: str, work: Path) -> dict[str, dict]:
    results, reward = {}, None
    order = sorted(args.algorithms, key=lambda a: a != "rm")  # the reward model first: the RL trainers use it
    for algorithm in order:
        if algorithm in ONLINE and reward is None:
            _, reward = train(store, dataset, "rm", args.short, "reward", None, work)
        try:
            short, model_id = train(
                store, dataset, algorithm, args.short, f"s{args.short}", reward if algorithm in ONLINE else None, work
            )
            long, _ = train(
                store, dataset, algorithm, args.long, f"s{args.long}", reward if algorithm in ONLINE else None, work
            )
        except RuntimeError as exc:  # one trainer failing leaves the others' figures
            print(f"{algorithm}: {exc}", flush=True)
            results[algorithm] = {"error": str(exc)}
            continue
        per_step = (long - short) / (args.long - args.short)
        results[algorithm] = {
            "short": short,
            "long": long,
            "per_step": per_step,
            "fixed": short - args.short * per_step,
            "model": model_id,
        }
        print(
            f"{algorithm}: {args.short} steps {short:.1f} s, {args.long} steps {long:.1f} s -> {per_step:.2f} s/step, fixed {results[algorithm]['fixed']:.1f} s",
            flush=True,
        )
        if algorithm == "rm" and reward is None:
            reward = model_id
    return results


def report(args, results: dict[str, dict], load_before: str) -> str:
    import torch
    import transformers
    import trl

    rows = "\n".join(
        f"| {alg} | failed: {r['error']} | | | |"
        if "error" in r
        else f"| {alg} | {r['per_step']:.2f} | {r['fixed']:.1f} | {r['short']:.1f} | {r['long']:.1f} |"
        for alg, r in results.items()
    )
    return f"""## Training on CPU: seconds per step of each trainer (`rlaif train`, whole processes)

- Date: {common.today()}; machine: {common.machine()} (load average before: {load_before}); torch {torch.__version__}, transformers {transformers.__version__}, TRL {trl.__version__}
- Command: `{common.command_line()}`
- Each figure is one `rlaif train ALG --dataset ID --model smollm2-135m --max-steps N --config C` process, N = {args.short} and N = {args.long};
  seconds per step = the difference of the two wall times / {args.long - args.short}; fixed = the rest of the N = {args.short} run
  (imports, loading the policy and the reference, rows, saving and committing).
- Data: {args.pairs} synthetic pairs over data/prompts.jsonl, responses of about {args.words} words; settings {json.dumps(COMMON)}, float32, 1 torch thread;
  rloo/grpo {json.dumps(OWN["grpo"])}, ppo {json.dumps(OWN["ppo"])}; ppo/rloo/grpo rewarded by an `rlaif train rm` model.

| trainer | s / step | fixed s | wall s, N = {args.short} | wall s, N = {args.long} |
|---|---|---|---|---|
{rows}
"""


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--algorithms", default=",".join(ALGORITHMS), help="Comma-separated trainers to time.")
    parser.add_argument("--short", type=int, default=2)
    parser.add_argument("--long", type=int, default=6)
    parser.add_argument("--pairs", type=int, default=32)
    parser.add_argument("--words", type=int, default=60)
    parser.add_argument("--write", action="store_true", help="Refresh the section of docs/benchmarks.md.")
    args = parser.parse_args()
    args.algorithms = [a for a in args.algorithms.split(",") if a]
    if args.long <= args.short:
        raise SystemExit("--long must be more steps than --short")
    load_before = common.load_average()
    with tempfile.TemporaryDirectory(prefix="rlaif-train-bench-") as tmp:
        store, work = Path(tmp) / "store", Path(tmp)
        dataset = make_version(store, args.pairs, args.words)
        results = measure(args, store, dataset, work)
    common.publish("train-cpu", report(args, results, load_before), args.write)


if __name__ == "__main__":
    main()
