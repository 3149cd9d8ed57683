"""DPO training throughput: TRL's DPOTrainer on rlaif-made pairs, in tokens/s and pairs/s.

The pairs are made the way a run makes them: each prompt of data/prompts.jsonl (repeated past
100) is sampled twice through rlaif's `transformers` backend (`rlaif.pipeline.sampling.sample_policy`,
two policies at temperature 0.7 and 1.0), and the two responses become chosen and rejected in
the conversational format `rlaif datasets export --format dpo` writes. Which response is chosen
does not change the cost of a step, so no judge runs here (the judge is measured elsewhere).

Throughput counts the tokens of prompt+chosen and prompt+rejected (chat template applied,
truncated at --max-length as the trainer does) of the pairs trained on, over the timed steps
(the first --warmup steps are not timed). The reference model's forward pass is part of each
step, as in a default DPOTrainer run.

    python3 benchmarks/dpo_train.py --pairs 512 --batch-size 16 --max-length 512 --steps 40 --write   # on a GPU
    .venv/bin/python benchmarks/dpo_train.py --pairs 8 --batch-size 2 --max-length 128 --steps 3 --warmup 1 --sample-tokens 16   # smoke test on CPU
"""

from __future__ import annotations

import argparse
import json
import statistics
import tempfile
import time
from pathlib import Path

import _common as common

SYSTEM = "You are a helpful assistant. Answer in one or two short sentences."


def make_pairs(args) -> tuple[list[dict], float]:
    """Sample two responses per prompt with the rlaif transformers backend; returns rows and seconds."""
    from rlaif.calls.cache import CallCache, CallStats
    from rlaif.config.recipe import PolicySpec
    from rlaif.core.inputs import load_prompts
    from rlaif.pipeline.sampling import sample_policy

    prompts = load_prompts(common.ROOT / "data" / "prompts.jsonl", SYSTEM)
    prompts = (prompts * (args.pairs // len(prompts) + 1))[: args.pairs]
    start = time.perf_counter()
    samples = []
    with tempfile.TemporaryDirectory() as tmp:
        cache, stats = CallCache(Path(tmp) / "cache.sqlite"), CallStats()
        for temperature in (0.7, 1.0):
            spec = PolicySpec(
                name=f"t{temperature}",
                backend="transformers",
                model=args.model,
                batch_size=args.sample_batch_size,
                dtype=args.dtype,
                params={"temperature": temperature, "max_tokens": args.sample_tokens, "seed": 0},
            )
            samples.append(sample_policy(prompts, spec, 1, cache, stats))
        cache.close()
    rows = [
        {
            "prompt": p.messages,
            "chosen": [{"role": "assistant", "content": a.text}],
            "rejected": [{"role": "assistant", "content": b.text}],
        }
        for p, a, b in zip(prompts, *samples)
        if a.text and b.text
    ]
    return rows, time.perf_counter() - start


def pair_tokens(rows: list[dict], tokenizer, max_length: int) -> float:
    """Mean tokens per pair: prompt+chosen plus prompt+rejected, each cut at max_length."""
    counts = []
    for row in rows:
        total = 0
        for side in ("chosen", "rejected"):
            ids = tokenizer.apply_chat_template(row["prompt"] + row[side], tokenize=True)
            ids = ids["input_ids"] if isinstance(ids, dict) or hasattr(ids, "keys") else ids
            total += min(len(ids), max_length)
        counts.append(total)
    return statistics.fmean(counts)


def train(args, rows: list[dict]) -> dict:
    import datasets
    import torch
    import trl
    from transformers import AutoModelForCausalLM, AutoTokenizer, TrainerCallback

    from rlaif.weights.resolve import resolve_model

    path = resolve_model(args.model)
    tokenizer = AutoTokenizer.from_pretrained(path)
    cuda = torch.cuda.is_available()
    model = AutoModelForCausalLM.from_pretrained(path, dtype=getattr(torch, args.dtype))
    step_times: list[float] = []

    class StepClock(TrainerCallback):
        def on_step_end(self, _args, state, control, **kwargs):
            if cuda:
                torch.cuda.synchronize()
            step_times.append(time.perf_counter())

    config = trl.DPOConfig(
        output_dir=tempfile.mkdtemp(prefix="dpo-bench-"),
        per_device_train_batch_size=args.batch_size,
        max_length=args.max_length,
        max_steps=args.steps,
        learning_rate=5e-7,
        bf16=cuda and args.dtype == "bfloat16",
        report_to=[],
        save_strategy="no",
        logging_steps=5,
        gradient_checkpointing=False,
        disable_tqdm=True,
        dataloader_pin_memory=cuda,
        use_cpu=not cuda,
    )
    trainer = trl.DPOTrainer(
        model=model,
        args=config,
        train_dataset=datasets.Dataset.from_list(rows),
        processing_class=tokenizer,
        callbacks=[StepClock()],
    )
    if cuda:
        torch.cuda.reset_peak_memory_stats()
    started = time.perf_counter()
    trainer.train()
    timed = step_times[args.warmup :]
    seconds = timed[-1] - step_times[args.warmup - 1] if args.warmup else timed[-1] - started
    steps = len(timed)
    mean_tokens = pair_tokens(rows, tokenizer, args.max_length)
    losses = [entry["loss"] for entry in trainer.state.log_history if "loss" in entry]
    return {
        "device": "cuda" if cuda else "cpu",
        "steps_timed": steps,
        "seconds": seconds,
        "pairs_per_s": steps * args.batch_size / seconds,
        "tokens_per_pair": mean_tokens,
        "tokens_per_s": steps * args.batch_size * mean_tokens / seconds,
        "peak_gpu_mib": torch.cuda.max_memory_allocated() / 2**20 if cuda else None,
        "first_loss": losses[0] if losses else None,
        "last_loss": losses[-1] if losses else None,
        "trl": trl.__version__,
        "torch": torch.__version__,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", default="smollm2-135m", help="built-in alias, local folder or Hub id")
    parser.add_argument(
        "--pairs", type=int, default=512, help="prompts sampled into pairs (data/prompts.jsonl, repeated)"
    )
    parser.add_argument("--sample-tokens", type=int, default=128, help="max_tokens of each sampled response")
    parser.add_argument("--sample-batch-size", type=int, default=64)
    parser.add_argument("--batch-size", type=int, default=16, help="pairs per training step")
    parser.add_argument("--max-length", type=int, default=512)
    parser.add_argument("--steps", type=int, default=40)
    parser.add_argument("--warmup", type=int, default=5, help="first steps not timed")
    parser.add_argument(
        "--dtype",
        choices=("float32", "bfloat16"),
        default="bfloat16",
        help="weights dtype (bf16 mixed precision on a GPU)",
    )
    parser.add_argument("--write", action="store_true", help="refresh the dpo-train section of docs/benchmarks.md")
    args = parser.parse_args()
    rows, sample_s = make_pairs(args)
    result = train(args, rows)
    result.update(pairs=len(rows), sample_s=sample_s)
    print(json.dumps(result))
    report(args, result)


def report(args, r: dict) -> None:
    device = f"GPU ({common.gpu_name()})" if r["device"] == "cuda" else "CPU"
    peak = f"{r['peak_gpu_mib']:.0f} MiB" if r["peak_gpu_mib"] is not None else "n/a (CPU)"
    body = f"""## DPO training throughput (TRL DPOTrainer on rlaif-sampled pairs)

- Date: {common.today()}; machine: {common.machine()}; device: {device}; TRL {r["trl"]}, torch {r["torch"]}
- Command: `{common.command_line()}`
- Pairs: {r["pairs"]} prompts of data/prompts.jsonl, two responses each sampled through rlaif's `transformers` backend ({args.sample_tokens} tokens at most; took {r["sample_s"]:.1f} s), conversational DPO format.
- Training: smollm2-135m, {args.dtype}, batch {args.batch_size} pairs, max_length {args.max_length}, reference model forward each step (TRL default); {r["steps_timed"]} steps timed after {args.warmup} warm-up steps.

| device | pairs/s | tokens/s | tokens per pair (chosen + rejected) | peak GPU memory | loss first -> last |
|---|---|---|---|---|---|
| {device} | {r["pairs_per_s"]:.1f} | {r["tokens_per_s"]:,.0f} | {r["tokens_per_pair"]:.0f} | {peak} | {r["first_loss"]} -> {r["last_loss"]} |
"""
    name = "dpo-train-gpu" if r["device"] == "cuda" else "dpo-train-cpu"
    common.publish(name, body, args.write)


if __name__ == "__main__":
    main()
