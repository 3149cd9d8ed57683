"""The GPU benchmark plan: on whatever device is there (CUDA if available, else CPU), in one run,
(a) tokens/s and peak memory of each of the 8 trainers (`rlaif train ALG`, one process each, as
benchmarks/train_cpu.py runs them) on one fixed small configuration, (b) pairs/s of the
`transformers` backend judging both orders (rlaif.judges.stage.judge_pairwise_items), and (c)
tokens/s of rlaif's generation stage against raw `model.generate` (benchmarks/local_engine.py's two sides).

A lent GPU machine runs it through benchmarks/gpu_plan.sh with the bundle of `make gpu-bundle`
(docs/benchmarks.md, "GPU plan"); here it runs as is (the default config is the GPU's, --quick is the CPU's).

- Trainer tokens/s: the tokens (attention mask) of every forward pass of the trained model that builds
  gradients (the policy or reward model being trained; not the frozen reference, not sampling), from the end
  of the first logged step to the end of the last, over that time (ppo/rloo/grpo: the time includes
  sampling and the reward). Peak memory: torch.cuda.max_memory_allocated of the process, or its peak RSS on CPU.
- Judging: the built-in judges that are on the machine (smollm2-135m always; qwen2.5-coder-1.5b only
  where `make judges` put it there), each pair judged in both orders, after a one-batch warm-up; model load timed apart.

    bash benchmarks/gpu_plan.sh                                       # on the GPU machine (the bundle carried)
    .venv/bin/python benchmarks/gpu_plan.py --quick --write           # here, on CPU (its own dataset version)
    .venv/bin/python benchmarks/gpu_plan.py --quick --only judge,dpo  # some parts (ppo/rloo/grpo bring rm)
    .venv/bin/python benchmarks/gpu_plan.py --apply gpu-plan.md       # publish the GPU run's section here
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import _common as common
from _gpu_report import report

ALGORITHMS = ("rm", "sft", "dpo", "kto", "ppo", "rloo", "grpo", "rrhf")  # rm first: ppo/rloo/grpo use it as reward
ONLINE = ("ppo", "rloo", "grpo")
JUDGES = ("smollm2-135m", "qwen2.5-coder-1.5b")
CONFIGS = {
    "gpu": {
        "train": {"steps": 8, "batch_size": 8, "max_length": 256, "seed": 0},
        "online": {"num_generations": 4, "max_completion_length": 64},
        "ppo": {"mini_batch_size": 8, "ppo_epochs": 1, "max_new_tokens": 64},
        "judge": {"pairs": 256, "batch_size": 32},
        "generate": {"prompts": 256, "batch_size": 64, "max_tokens": 64, "repeats": 2},
        "dtype": "bfloat16",
        "threads": None,
    },
    "quick": {
        "train": {"steps": 3, "batch_size": 2, "max_length": 256, "seed": 0},
        "online": {"num_generations": 2, "max_completion_length": 32},
        "ppo": {"mini_batch_size": 2, "ppo_epochs": 1, "max_new_tokens": 32},
        "judge": {"pairs": 16, "batch_size": 8},
        "generate": {"prompts": 16, "batch_size": 8, "max_tokens": 32, "repeats": 1},
        "dtype": "float32",
        "threads": 1,
    },
}


def peak_memory_mib() -> tuple[float, str]:
    """This process's peak: CUDA memory allocated by torch where CUDA is in use, else resident memory."""
    import torch

    if torch.cuda.is_available():
        return torch.cuda.max_memory_allocated() / 2**20, "GPU allocated"
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, "RSS"


def count_training_tokens(record: dict) -> None:
    """Record (time, tokens) of each outermost forward of a Hugging Face model with trainable weights while
    gradients are on, and the time each logged step ends (rlaif.training.driver.StepRecorder)."""
    import torch
    import transformers

    from rlaif.training import driver

    original_call, depth, trained = transformers.PreTrainedModel.__call__, [0], {}

    def counted(self, *args, **kwargs):  # not `self.training`: rlaif's ppo and rrhf train in eval mode (no dropout)
        if id(self) not in trained:  # a frozen reference has no parameter that requires grad
            trained[id(self)] = any(p.requires_grad for p in self.parameters())
        if depth[0] == 0 and trained[id(self)] and torch.is_grad_enabled():
            ids, mask = kwargs.get("input_ids", args[0] if args else None), kwargs.get("attention_mask")
            if isinstance(ids, torch.Tensor):
                size = mask.sum() if isinstance(mask, torch.Tensor) and mask.dim() == 2 else ids.numel()
                record["forwards"].append((time.perf_counter(), size))
        depth[0] += 1
        try:
            return original_call(self, *args, **kwargs)
        finally:
            depth[0] -= 1

    original_step = driver.StepRecorder.__call__

    def stepped(self, metrics):
        if torch.cuda.is_available():
            torch.cuda.synchronize()
        record["steps"].append(time.perf_counter())
        return original_step(self, metrics)

    transformers.PreTrainedModel.__call__ = counted
    driver.StepRecorder.__call__ = stepped


def child_train(spec: dict) -> dict:
    """One `rlaif train` in this process (the CLI's own command), with the counters on."""
    started = time.perf_counter()
    import torch

    from rlaif.cli import app
    from rlaif.training import driver

    record: dict = {"forwards": [], "steps": [], "result": None}
    count_training_tokens(record)
    train = driver.train

    def kept(*args, **kwargs):
        record["result"] = train(*args, **kwargs)
        return record["result"]

    driver.train = kept
    code = app(args=spec["argv"], standalone_mode=False)  # a user error: its message on stderr, the code returned
    if code:
        raise SystemExit(code)
    result, steps = record["result"], record["steps"]
    if result is None or len(steps) < 2:
        raise SystemExit(f"trained no model or logged fewer than 2 steps ({len(steps)})")
    window = steps[-1] - steps[0]
    tokens = sum(int(n) for t, n in record["forwards"] if steps[0] < t <= steps[-1])
    peak, kind = peak_memory_mib()
    return {
        "model": result.model_id,
        "steps_logged": len(steps),
        "steps_timed": len(steps) - 1,
        "tokens": tokens,
        "seconds": window,
        "tokens_per_s": tokens / window,
        "s_per_step": window / (len(steps) - 1),
        "train_s": result.seconds,
        "process_s": time.perf_counter() - started,
        "peak_mib": peak,
        "peak_kind": kind,
        "device": torch.cuda.get_device_name(0) if torch.cuda.is_available() else "cpu",
    }


def judge_items(store: str, dataset: str, n: int):
    """n (prompt, chosen, rejected) items from the version's pairs (repeated past its size), each its own prompt id."""
    from rlaif.core.schema import Generation, Prompt
    from rlaif.store.versions import read_table

    rows = read_table(store, dataset, "pairs")
    items = []
    for i in range(n):
        row = rows[i % len(rows)]
        pid = f"j{i}"
        texts = [row[side][-1]["content"] for side in ("chosen", "rejected")]
        items.append(
            (
                Prompt(id=pid, messages=list(row["prompt"])),
                *(Generation(pid, "smol", "m", k, t, "stop") for k, t in enumerate(texts)),
            )
        )
    return items


def child_judge(spec: dict) -> dict:
    """Pairs/s of one judge through the transformers backend, both orders, in this process."""
    import torch

    from rlaif.backends import BackendPool, make_backend, using
    from rlaif.calls.cache import CallCache, CallStats
    from rlaif.config.recipe import PairwiseJudge
    from rlaif.judges.stage import judge_pairwise_items

    cuda = torch.cuda.is_available()
    judge = PairwiseJudge(
        backend="transformers",
        model=spec["model"],
        batch_size=spec["batch_size"],
        dtype=spec["dtype"],
        threads=spec["threads"],
    )
    items = judge_items(spec["store"], spec["dataset"], spec["pairs"])
    warm = [
        (p.__class__(id=f"w{p.id}", messages=p.messages), a, b) for p, a, b in items[: max(1, spec["batch_size"] // 2)]
    ]
    pool = BackendPool(None)
    with tempfile.TemporaryDirectory() as tmp, using(pool):
        start = time.perf_counter()
        pool.get(make_backend, judge).ensure_loaded()
        load_s = time.perf_counter() - start
        judge_pairwise_items(
            warm, judge, CallCache(Path(tmp) / "warm.sqlite"), CallStats()
        )  # one batch: kernels, allocator
        cache, stats = CallCache(Path(tmp) / "cache.sqlite"), CallStats()
        start = time.perf_counter()
        judgments, report = judge_pairwise_items(items, judge, cache, stats)
        if cuda:
            torch.cuda.synchronize()
        seconds = time.perf_counter() - start
        cache.close()
    pool.close()
    peak, kind = peak_memory_mib()
    bias = report.get("position_bias", {})
    return {
        "pairs": len(items),
        "seconds": seconds,
        "pairs_per_s": len(items) / seconds,
        "requests_per_s": 2 * len(items) / seconds,
        "prompt_tokens_per_s": stats.prompt_tokens / seconds,
        "failed": sum(j.error is not None for j in judgments),
        "raw_consistency": bias.get("raw_consistency"),
        "load_s": load_s,
        "peak_mib": peak,
        "peak_kind": kind,
    }


def run_child(kind: str, spec: dict, timeout: float) -> dict:
    """A fresh process of this script for one measurement; its last stdout line is the result."""
    env = {**os.environ, "RLAIF_PROGRESS": "0", "TOKENIZERS_PARALLELISM": "false"}
    if spec.get("threads"):
        env["OMP_NUM_THREADS"] = str(spec["threads"])
    argv = [sys.executable, __file__, "--child", kind, "--spec", json.dumps(spec)]
    try:
        done = subprocess.run(argv, cwd=common.ROOT, env=env, capture_output=True, text=True, timeout=timeout)
    except subprocess.TimeoutExpired:
        return {"error": f"stopped after {timeout:.0f} s (the plan's time budget)"}
    lines = [line for line in done.stdout.splitlines() if line.startswith("{")]
    if done.returncode != 0 or not lines:
        tail = [line for line in done.stderr.splitlines() if line.strip() and "it/s]" not in line][-3:]
        print("\n".join(tail), file=sys.stderr, flush=True)  # the log keeps the reason; the table its last line
        return {"error": f"exit {done.returncode}: {(tail or ['no output'])[-1].strip()[:300]}"}
    return json.loads(lines[-1])


def train_spec(args, cfg: dict, algorithm: str, reward: str | None, work: Path) -> dict:
    import yaml

    settings = {k: v for k, v in cfg["train"].items() if k != "steps"}
    settings.update(cfg["ppo"] if algorithm == "ppo" else cfg["online"] if algorithm in ONLINE else {})
    settings["name"] = f"plan-{algorithm}-{int(time.time())}"  # a new model every run, never "already trained"
    if cfg["threads"]:
        settings["threads"] = cfg["threads"]
    if reward:
        settings["reward"] = {"model": reward}
    path = work / f"{algorithm}.yaml"
    path.write_text(yaml.safe_dump(settings))
    argv = [
        "train",
        algorithm,
        "--dataset",
        args.dataset,
        "--model",
        "smollm2-135m",
        "--max-steps",
        str(cfg["train"]["steps"]),
    ]
    return {"argv": [*argv, "--config", str(path), "--store", args.store], "threads": cfg["threads"]}


class Clock:
    """The plan's time budget: what is left for the next measurement, or None when it is spent."""

    def __init__(self, budget_s: float) -> None:
        self.start, self.budget_s = time.perf_counter(), budget_s

    def left(self) -> float | None:
        remaining = self.budget_s - (time.perf_counter() - self.start)
        return remaining if remaining > 20 else None


def measure_trainers(args, cfg: dict, clock: Clock, work: Path) -> dict:
    results, reward = {}, None
    wanted = [a for a in ALGORITHMS if a in args.only or (a == "rm" and set(ONLINE) & args.only)]
    for algorithm in wanted:
        left = clock.left()
        if left is None:
            results[algorithm] = {"error": "skipped: the plan's time budget was spent"}
            continue
        if algorithm in ONLINE and reward is None:
            results[algorithm] = {"error": "skipped: no reward model (rm failed)"}
            continue
        spec = train_spec(args, cfg, algorithm, reward if algorithm in ONLINE else None, work)
        results[algorithm] = r = run_child("train", spec, left)
        if algorithm == "rm" and "model" in r:
            reward = r["model"]
        shown = (
            r.get("error")
            or f"{r['tokens_per_s']:,.0f} tok/s, {r['s_per_step']:.2f} s/step, peak {r['peak_mib']:,.0f} MiB {r['peak_kind']}"
        )
        print(f"train {algorithm}: {shown}", flush=True)
    return results


def measure_judges(args, cfg: dict, clock: Clock) -> dict:
    from rlaif.core.errors import BackendError
    from rlaif.weights.resolve import check_local_model

    results = {}
    for model in JUDGES:
        try:
            check_local_model(model)
        except BackendError:
            results[model] = {
                "error": "weights not on this machine (make judges; FROM=hub where the Hub is reachable)"
            }
            continue
        left = clock.left()
        spec = {**cfg["judge"], "model": model, "dtype": cfg["dtype"], "threads": cfg["threads"]}
        spec.update(store=args.store, dataset=args.dataset)
        results[model] = r = run_child("judge", spec, left) if left else {"error": "skipped: time budget spent"}
        shown = r.get("error") or f"{r['pairs_per_s']:.2f} pairs/s, load {r['load_s']:.1f} s"
        print(f"judge {model}: {shown}", flush=True)
    return results


def measure_generation(cfg: dict, clock: Clock) -> dict:
    """local_engine.py's raw and rlaif sides, each a fresh process, order alternating per repeat."""
    import local_engine

    gen = cfg["generate"]
    ns = argparse.Namespace(
        engine="transformers",
        prompts=gen["prompts"],
        batch_size=gen["batch_size"],
        max_tokens=gen["max_tokens"],
        threads=cfg["threads"] or 1,
        dtype=cfg["dtype"],
        python=sys.executable,
    )
    runs: dict[str, list] = {"raw": [], "pipeline": []}
    for repeat in range(gen["repeats"]):
        for side in ("raw", "pipeline") if repeat % 2 == 0 else ("pipeline", "raw"):
            if clock.left() is None:
                return {**runs, "error": "stopped: time budget spent"}
            runs[side].append(local_engine.run_side(ns, side))
            r = runs[side][-1]
            print(f"generate {side}: {r['tokens'] / r['gen_s']:.1f} tok/s (load {r['load_s']:.1f} s)", flush=True)
    return runs


def convert_model() -> float:
    """The built-in smollm2-135m converted (GGUF -> safetensors) before any timing; seconds it took."""
    from rlaif.weights.resolve import resolve_model

    start = time.perf_counter()
    resolve_model("smollm2-135m")
    return time.perf_counter() - start


def plan(args) -> None:
    cfg = CONFIGS["quick" if args.quick else "gpu"]
    clock = Clock(args.budget_s or (1800 if args.quick else 480))
    with tempfile.TemporaryDirectory(prefix="rlaif-gpu-plan-") as tmp:
        if not args.store:
            import train_cpu

            args.store = str(Path(tmp) / "store")
            args.dataset = train_cpu.make_version(Path(args.store), 64, 60)
        results = {"convert_s": convert_model()}
        print(f"smollm2-135m ready ({results['convert_s']:.1f} s)", flush=True)
        results["judge"] = measure_judges(args, cfg, clock) if "judge" in args.only else {}
        results["train"] = measure_trainers(args, cfg, clock, Path(tmp))
        results["generate"] = (
            measure_generation(cfg, clock) if "generate" in args.only else {"error": "not run (--only)"}
        )
    results["total_s"] = time.perf_counter() - clock.start
    body = report(args, cfg, results)
    if args.out:
        out = Path(args.out)
        out.mkdir(parents=True, exist_ok=True)
        (out / "gpu-plan.md").write_text(body)
        (out / "gpu-plan.json").write_text(json.dumps(results, indent=1, default=str))
    common.publish("gpu-plan", body, args.write)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true", help="the small CPU config (the default is the GPU's)")
    parser.add_argument("--store", help="store holding --dataset (default: a new version in a temp store)")
    parser.add_argument("--dataset", help="dataset version id in --store")
    parser.add_argument("--out", help="also write gpu-plan.md and gpu-plan.json here")
    parser.add_argument(
        "--budget-s", type=float, help="start nothing new after this many seconds (default: 480; --quick: 1800)"
    )
    parser.add_argument(
        "--only",
        default=",".join(("judge", *ALGORITHMS, "generate")),
        help="comma-separated parts to run: judge, generate and trainer names (ppo/rloo/grpo bring rm); default all",
    )
    parser.add_argument("--write", action="store_true", help="refresh the gpu-plan section of docs/benchmarks.md")
    parser.add_argument("--apply", metavar="FILE", help="publish a gpu-plan.md made elsewhere (the GPU run's)")
    parser.add_argument("--child", choices=("train", "judge"), help=argparse.SUPPRESS)
    parser.add_argument("--spec", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        print(json.dumps((child_train if args.child == "train" else child_judge)(json.loads(args.spec))), flush=True)
    elif args.apply:
        common.publish("gpu-plan", Path(args.apply).read_text(), True)
    else:
        if bool(args.store) != bool(args.dataset):
            raise SystemExit("--store and --dataset go together")
        args.command_line = os.environ.get("RLAIF_PLAN_COMMAND") or common.command_line()
        args.only = set(args.only.split(","))
        plan(args)


if __name__ == "__main__":
    main()
