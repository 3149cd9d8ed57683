"""The second distilabel shape of benchmarks/vs_peers.py, as distilabel's own docs write a one-model preference job;
runs under .venv-bench/bin/python. Prints one JSON line: {"seconds": ..., "rows": ..., "pairs": ...}.

The job: one `TextGeneration` with `num_generations=2` and `group_generations=True` (distilabel asks for both in one
request, `n=2`, so against a server that ignores `n` it sends one request per prompt and falls back as below), one
`UltraFeedback` rating task (one request rates both responses) and `FormatTextGenerationDPO`; every step at its default
`input_batch_size` (50), as the docs leave it. The request count comes from the server, not from this script.
"""

from __future__ import annotations

import argparse
import json
import time


def build(args):
    from distilabel.models import OpenAILLM
    from distilabel.pipeline import Pipeline
    from distilabel.steps import LoadDataFromDicts
    from distilabel.steps.formatting.dpo import FormatTextGenerationDPO
    from distilabel.steps.tasks import TextGeneration, UltraFeedback

    def llm(temperature: float):
        return OpenAILLM(
            model=args.model,
            base_url=args.base_url,
            api_key="EMPTY",
            max_retries=0,
            timeout=60,
            generation_kwargs={"max_new_tokens": 64, "temperature": temperature},
        )

    data = [{"instruction": f"Question {i}: name a colour."} for i in range(args.prompts)]
    with Pipeline(name="rlaif-bench-ultrafeedback", enable_metadata=False) as pipeline:
        load = LoadDataFromDicts(data=data)
        generate = TextGeneration(
            llm=llm(0.7),
            num_generations=args.generations,
            group_generations=True,
            output_mappings={"generation": "generations"},
        )
        rate = UltraFeedback(llm=llm(0.0), aspect="overall-rating")
        dpo = FormatTextGenerationDPO()
        load >> generate >> rate >> dpo
    return pipeline


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--base-url", required=True)
    parser.add_argument("--model", required=True)
    parser.add_argument("--prompts", type=int, default=1000)
    parser.add_argument("--generations", type=int, default=2)
    args = parser.parse_args()
    pipeline = build(args)
    start = time.perf_counter()
    distiset = pipeline.run(use_cache=False)
    seconds = time.perf_counter() - start
    rows = distiset["default"]["train"]
    pairs = sum(1 for row in rows if row.get("chosen") and row.get("rejected"))
    print(json.dumps({"seconds": seconds, "rows": len(rows), "pairs": pairs}))


if __name__ == "__main__":
    main()
