"""Local engines: tokens/s of rlaif's generation stage against the raw engine called directly on
the same prompts, with the same batch size, max_new_tokens and greedy decoding. Each side runs in
its own fresh process (model loaded there), repeats alternate the order.

    .venv/bin/python benchmarks/local_engine.py --engine transformers --prompts 32 --batch-size 8 --max-tokens 64 --threads 1 --repeats 3 --write
    .venv/bin/python benchmarks/local_engine.py --engine vllm --prompts 100 --max-tokens 64 --repeats 3 --write   # sides run with .venv-vllm/bin/python
    python3 benchmarks/local_engine.py --engine transformers --python python3 --dtype bfloat16 --prompts 512 --batch-size 64 --max-tokens 256 --write   # on a GPU

On a GPU (torch.cuda available) both sides run there and the figures go to their own section
(`local-transformers-gpu`).

rlaif side: `generation_requests` + `run_generate` (request cache in a temp folder) + `to_generation`,
i.e. `rlaif.pipeline.sampling.sample_policy` with the model load timed apart. Raw side: transformers
`model.generate` on left-padded batches of the chat-templated prompts (file order), or vLLM
`LLM.chat` with all prompts at once. Generated tokens are counted the same way on both sides
(up to and including the first end-of-sequence token).
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import tempfile
import time
from pathlib import Path

import _common as common

SYSTEM = "You are a helpful assistant. Answer in one or two short sentences."
PYTHONS = {
    "transformers": common.ROOT / ".venv" / "bin" / "python",
    "vllm": common.ROOT / ".venv-vllm" / "bin" / "python",
}


def load_bench_prompts(n: int):
    from rlaif.core.inputs import load_prompts

    prompts = load_prompts(common.ROOT / "data" / "prompts.jsonl", SYSTEM)
    return (prompts * (n // len(prompts) + 1))[:n]  # repeat the 100-prompt set if more are asked


def raw_transformers(args, prompts) -> dict:
    start = time.perf_counter()  # load = imports + weights, as in the backend's load()
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    from rlaif.weights.resolve import resolve_model

    torch.set_num_threads(args.threads)
    path = resolve_model("smollm2-135m")
    tokenizer = AutoTokenizer.from_pretrained(path, padding_side="left")
    if tokenizer.pad_token is None:  # as the backend does
        tokenizer.pad_token = tokenizer.eos_token
    device = "cuda" if torch.cuda.is_available() else "cpu"  # as the backend does
    model = AutoModelForCausalLM.from_pretrained(path, dtype=getattr(torch, args.dtype)).to(device).eval()
    load_s = time.perf_counter() - start
    eos = {model.generation_config.eos_token_id, tokenizer.eos_token_id} - {None}
    eos = set().union(*[e if isinstance(e, list) else [e] for e in eos])
    tokens, start = 0, time.perf_counter()
    for first in range(0, len(prompts), args.batch_size):
        texts = [
            tokenizer.apply_chat_template(p.messages, tokenize=False, add_generation_prompt=True)
            for p in prompts[first : first + args.batch_size]
        ]
        batch = tokenizer(texts, return_tensors="pt", padding=True, add_special_tokens=False).to(device)
        with torch.inference_mode():
            out = model.generate(
                **batch, do_sample=False, max_new_tokens=args.max_tokens, pad_token_id=tokenizer.pad_token_id
            )
        for row in out[:, batch["input_ids"].shape[1] :].tolist():
            stop = next((i for i, t in enumerate(row) if t in eos), None)
            tokens += len(row) if stop is None else stop + 1
    return {"tokens": tokens, "gen_s": time.perf_counter() - start, "load_s": load_s, "device": device}


def raw_vllm(args, prompts) -> dict:
    start = time.perf_counter()  # load = imports + engine start, as in the backend's load()
    from vllm import LLM, SamplingParams
    from vllm.platforms import current_platform

    from rlaif.weights.resolve import resolve_model

    # the engine settings the backend uses (rlaif/backends/vllm_backend.py): eager on CPU, seed 0
    llm = LLM(
        model=resolve_model("smollm2-135m"),
        dtype=args.dtype,
        enable_prefix_caching=True,
        enforce_eager=current_platform.is_cpu(),
        seed=0,
    )
    load_s = time.perf_counter() - start
    params = SamplingParams(temperature=0.0, max_tokens=args.max_tokens, seed=0)
    start = time.perf_counter()
    outputs = llm.chat([p.messages for p in prompts], params, use_tqdm=False)
    gen_s = time.perf_counter() - start
    return {
        "tokens": sum(len(o.outputs[0].token_ids) for o in outputs),
        "gen_s": gen_s,
        "load_s": load_s,
        "device": "cpu",
    }


def pipeline_side(args, prompts) -> dict:
    from rlaif.backends import make_backend
    from rlaif.calls.cache import CallCache, CallStats
    from rlaif.calls.engine import run_generate
    from rlaif.config.recipe import PolicySpec
    from rlaif.pipeline.sampling import generation_requests, to_generation

    spec = PolicySpec(
        backend=args.engine,
        model="smollm2-135m",
        batch_size=args.batch_size,
        threads=args.threads,
        dtype=args.dtype,
        params={"temperature": 0.0, "max_tokens": args.max_tokens, "seed": 0},
    )
    stats = CallStats()
    with tempfile.TemporaryDirectory() as tmp:
        cache = CallCache(Path(tmp) / "cache.sqlite")
        t0 = time.perf_counter()
        requests = generation_requests(prompts, spec, 1)
        with make_backend(spec) as backend:
            t1 = time.perf_counter()
            backend.ensure_loaded()
            t2 = time.perf_counter()
            results = run_generate(backend, requests, cache, stats)
            generations = [to_generation(prompts[i], spec, 0, r, x) for i, (r, x) in enumerate(zip(requests, results))]
            t3 = time.perf_counter()  # before the engine shuts down (the raw side never times its shutdown either)
        cache.close()
    assert stats.failed == 0 and len(generations) == len(prompts), stats
    device = getattr(backend, "device", "cpu")
    return {
        "tokens": stats.completion_tokens,
        "gen_s": (t1 - t0) + (t3 - t2),
        "load_s": t2 - t1,
        "stage_s": t3 - t0,
        "device": device,
    }


def python_of(args) -> str:
    return args.python or str(PYTHONS[args.engine])


def run_side(args, side: str) -> dict:
    argv = [
        python_of(args),
        __file__,
        "--engine",
        args.engine,
        "--side",
        side,
        "--prompts",
        str(args.prompts),
        "--batch-size",
        str(args.batch_size),
        "--max-tokens",
        str(args.max_tokens),
        "--threads",
        str(args.threads),
        "--dtype",
        args.dtype,
    ]
    env = {
        **os.environ,
        "RLAIF_PROGRESS": "0",
        "VLLM_CPU_KVCACHE_SPACE": os.environ.get("VLLM_CPU_KVCACHE_SPACE", "1"),
    }
    done = subprocess.run(argv, capture_output=True, text=True, env=env, timeout=1200, cwd=common.ROOT)
    if done.returncode != 0:
        raise SystemExit(f"{side} side failed:\n{done.stderr[-3000:]}")
    lines = [line for line in done.stdout.splitlines() if line.startswith("{")]  # vLLM logs to stdout too
    return json.loads(lines[-1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--engine", choices=sorted(PYTHONS), default="transformers")
    parser.add_argument("--prompts", type=int, default=32, help="prompts from data/prompts.jsonl (repeated past 100)")
    parser.add_argument(
        "--batch-size", type=int, default=8, help="transformers: prompts per generate call, both sides"
    )
    parser.add_argument("--max-tokens", type=int, default=64)
    parser.add_argument(
        "--threads",
        type=int,
        default=1,
        help="torch threads, both sides (transformers); 1 held up best on the shared 2 cores",
    )
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument(
        "--dtype", choices=("float32", "bfloat16", "float16"), default="float32", help="weights dtype, both sides"
    )
    parser.add_argument(
        "--python", help="interpreter for the sides (default: .venv/bin/python, or .venv-vllm/bin/python for vllm)"
    )
    parser.add_argument("--side", choices=("raw", "pipeline"), help="internal: run one side in this process")
    parser.add_argument("--write", action="store_true", help="refresh this engine's section of docs/benchmarks.md")
    args = parser.parse_args()
    if args.side:
        prompts = load_bench_prompts(args.prompts)
        if args.side == "pipeline":
            result = pipeline_side(args, prompts)
        else:
            result = (raw_vllm if args.engine == "vllm" else raw_transformers)(args, prompts)
        print(json.dumps(result))
        return
    if not Path(python_of(args)).exists() and not args.python:
        raise SystemExit(
            f"{python_of(args)} not found - build the environment first (make install / make vllm-env) or pass --python"
        )
    load_before = common.load_average()
    runs: dict[str, list[dict]] = {"raw": [], "pipeline": []}
    for repeat in range(args.repeats):
        for side in ("raw", "pipeline") if repeat % 2 == 0 else ("pipeline", "raw"):
            runs[side].append(run_side(args, side))
            r = runs[side][-1]
            print(
                f"  repeat {repeat + 1} {side}: {r['tokens']} tokens in {r['gen_s']:.2f} s = {r['tokens'] / r['gen_s']:.1f} tok/s (load {r['load_s']:.2f} s)",
                flush=True,
            )
    report(args, runs, load_before)


def report(args, runs, load_before: str) -> None:
    rate = {side: common.median([r["tokens"] / r["gen_s"] for r in rs]) for side, rs in runs.items()}
    stage = common.median([r["tokens"] / r["stage_s"] for r in runs["pipeline"]])
    load = {side: common.median([r["load_s"] for r in rs]) for side, rs in runs.items()}
    share = rate["pipeline"] / rate["raw"]
    print(
        f"local-{args.engine}: raw {rate['raw']:.1f} tok/s, rlaif {rate['pipeline']:.1f} tok/s ({share:.0%}); with model load {stage:.1f} tok/s"
    )
    raw_how = (
        f"`model.generate` on batches of {args.batch_size} in file order, torch threads: {args.threads}"
        if args.engine == "transformers"
        else f"`LLM.chat` with all prompts at once, {args.dtype}, prefix caching on, eager mode on CPU, seed 0 (the backend's engine settings)"
    )
    rlaif_how = (
        f" (batch_size {args.batch_size}, threads {args.threads}); it sorts requests by length before batching"
        if args.engine == "transformers"
        else "; the backend hands all requests to the engine at once"
    )
    on_gpu = runs["raw"][0].get("device") == "cuda"
    device = f"GPU ({common.gpu_name()})" if on_gpu else "CPU"
    section = f"local-{args.engine}" + ("-gpu" if on_gpu else "")
    verdict = "met" if share >= 0.9 else f"missed by {0.9 - share:.0%} points"
    body = f"""## Local engine: {args.engine}{" on GPU" if on_gpu else ""}, rlaif generation stage vs the raw engine

- Date: {common.today()}; machine: {common.machine()} (load before: {load_before})
- Command: `{common.command_line()}`
- Device: {device}.
- Model: smollm2-135m (SmolLM2-135M-Instruct, {args.dtype}), {args.prompts} prompts of data/prompts.jsonl with a one-line system prompt, greedy, max_new_tokens {args.max_tokens}.
- Raw: {raw_how}. rlaif: the `{args.engine}` backend through `run_generate` with a request cache in a temp folder{rlaif_how}.
- Each side in a fresh process, {args.repeats} repeats, order alternating; model load (imports + weights) timed apart.

| | tokens/s (median) | runs (tok/s) | tokens | model load (s) |
|---|---|---|---|---|
| raw {args.engine} | {rate["raw"]:.1f} | {common.fmt_runs([r["tokens"] / r["gen_s"] for r in runs["raw"]])} | {runs["raw"][0]["tokens"]} | {load["raw"]:.2f} |
| rlaif `{args.engine}` backend | {rate["pipeline"]:.1f} | {common.fmt_runs([r["tokens"] / r["gen_s"] for r in runs["pipeline"]])} | {runs["pipeline"][0]["tokens"]} | {load["pipeline"]:.2f} |

rlaif at **{share:.0%} of the raw engine's tokens/s** (target >= 90%: **{verdict}**). Counting the model load in the stage: {stage:.1f} tok/s.
"""
    common.publish(section, body, args.write)


if __name__ == "__main__":
    main()
