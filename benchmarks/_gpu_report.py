"""The section benchmarks/gpu_plan.py writes into docs/benchmarks.md (`gpu-plan`): device, settings and the three tables."""

from __future__ import annotations

import json

import _common as common


def device_line() -> tuple[str, bool]:
    import torch

    if torch.cuda.is_available():
        return f"GPU: {torch.cuda.get_device_name(0)}", True
    return "CPU (no CUDA device): **CPU, not the GPU figures**", False


def trainer_rows(results: dict) -> str:
    rows = []
    for alg, r in results.items():
        if "error" in r:
            rows.append(f"| {alg} | {r['error']} | | | | | |")
            continue
        rows.append(
            f"| {alg} | {r['tokens_per_s']:,.0f} | {r['s_per_step']:.2f} | {r['tokens'] / r['steps_timed']:,.0f} | "
            f"{r['steps_timed']} | {r['peak_mib']:,.0f} ({r['peak_kind']}) | {r['process_s']:.1f} |"
        )
    return "\n".join(rows)


def judge_rows(results: dict) -> str:
    rows = []
    for model, r in results.items():
        if "error" in r:
            rows.append(f"| {model} | not measured: {r['error']} | | | | | |")
            continue
        rows.append(
            f"| {model} | {r['pairs_per_s']:.2f} | {r['requests_per_s']:.2f} | {r['prompt_tokens_per_s']:,.0f} | "
            f"{r['load_s']:.1f} | {r['peak_mib']:,.0f} ({r['peak_kind']}) | {r['failed']} |"
        )
    return "\n".join(rows)


def generation_lines(runs: dict) -> str:
    if not runs.get("raw") or not runs.get("pipeline"):
        return f"Not measured: {runs.get('error', 'no runs')}."
    rate = {s: common.median([r["tokens"] / r["gen_s"] for r in runs[s]]) for s in ("raw", "pipeline")}
    load = {s: common.median([r["load_s"] for r in runs[s]]) for s in ("raw", "pipeline")}
    return f"""| | tokens/s (median) | runs (tok/s) | tokens | model load (s) |
|---|---|---|---|---|
| raw `model.generate` | {rate["raw"]:,.1f} | {common.fmt_runs([r["tokens"] / r["gen_s"] for r in runs["raw"]])} | {runs["raw"][0]["tokens"]} | {load["raw"]:.1f} |
| rlaif `transformers` backend | {rate["pipeline"]:,.1f} | {common.fmt_runs([r["tokens"] / r["gen_s"] for r in runs["pipeline"]])} | {runs["pipeline"][0]["tokens"]} | {load["pipeline"]:.1f} |

rlaif's generation stage at **{rate["pipeline"] / rate["raw"]:.0%} of raw `generate`'s tokens/s**."""


def big_judge_note(judges: dict) -> str:
    """Why the 1.5B judge has no figure, where it has none."""
    if "error" not in judges.get("qwen2.5-coder-1.5b", {"error": ""}):
        return ""
    return (
        "The built-in 1.5B judge (qwen2.5-coder-1.5b: a 1.04 GiB GGUF in 22 part packages, 6.7 GB converted) does not\n"
        "travel to a lent machine within a session's device time (19 calls of under 60 MiB back to back before this one),\n"
        "so its figure needs a machine that has its weights (`make judges`, or `make judges FROM=hub` where the Hugging Face\n"
        "Hub is reachable): the 135M judge above is the one that travels."
    )


def report(args, cfg: dict, results: dict) -> str:
    import torch
    import transformers
    import trl

    device, on_gpu = device_line()
    title = device.split(":")[1].strip() if on_gpu else "CPU proof run, CPU, not the GPU figures"
    t, gen, judge = cfg["train"], cfg["generate"], cfg["judge"]
    return f"""## GPU plan: the 8 trainers, judging and generation on one device: {title}

- Date: {common.today()}; machine: {common.machine()}; device: {device}
- torch {torch.__version__}, transformers {transformers.__version__}, TRL {trl.__version__}
- Command: `{args.command_line}`; config `{"quick" if args.quick else "gpu"}`; the whole plan took {results["total_s"]:.0f} s
  (smollm2-135m converted from its GGUF first: {results["convert_s"]:.1f} s; each trainer and judge in its own process).
- Data: dataset version `{args.dataset}` (`make gpu-bundle`'s: synthetic pairs over data/prompts.jsonl, responses of about 60 words).

### Trainers (`rlaif train ALG --model smollm2-135m --max-steps {t["steps"]}`)
Settings: batch_size {t["batch_size"]}, max_length {t["max_length"]}, {"rlaif's CUDA defaults (bf16, gradient checkpointing)" if on_gpu else "float32, 1 torch thread"};
rloo/grpo {json.dumps(cfg["online"])}; ppo {json.dumps(cfg["ppo"])}; ppo/rloo/grpo rewarded by the `rm` model trained just before.
Tokens/s: tokens (attention mask) of the trained model's gradient-building forward passes from the end of step 1 to the end
of the last step, over that time (ppo/rloo/grpo: the time includes sampling and the reward model). Peak: the process's.

| trainer | tokens/s | s / step | tokens / step | steps timed | peak memory, MiB | process s |
|---|---|---|---|---|---|---|
{trainer_rows(results["train"])}

### Judging (`transformers` backend, pairwise, both orders, position bias removed)
{judge["pairs"]} pairs of the version (= {2 * judge["pairs"]} judge calls), batch_size {judge["batch_size"]}, {cfg["dtype"]}; after a one-batch warm-up, model load apart.

| judge | pairs/s | calls/s | prompt tokens/s | model load s | peak memory, MiB | pairs failed |
|---|---|---|---|---|---|---|
{judge_rows(results["judge"])}

{big_judge_note(results["judge"])}

### Generation (benchmarks/local_engine.py's two sides)
{gen["prompts"]} prompts of data/prompts.jsonl, greedy, max_new_tokens {gen["max_tokens"]}, batch {gen["batch_size"]}, {cfg["dtype"]}, {gen["repeats"]} repeat(s), each side a fresh process.

{generation_lines(results["generate"])}
"""
