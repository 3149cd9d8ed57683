"""The distilabel side of benchmarks/vs_peers.py; runs under .venv-bench/bin/python (distilabel
is never an rlaif dependency). Prints one JSON line: {"seconds": ..., "rows": ..., "requests": ...}.

The job: per prompt, 2 responses (two TextGeneration steps, since llm-katan ignores n>1, so
`num_generations=2` would make one request) grouped into `generations`, then one pairwise judgment
(PrometheusEval, mode="relative"), all through OpenAILLM at the given base_url.
"""

from __future__ import annotations

import argparse
import json
import time


def build(args):
    from distilabel.models import OpenAILLM
    from distilabel.pipeline import Pipeline
    from distilabel.steps import GroupColumns, LoadDataFromDicts
    from distilabel.steps.tasks import PrometheusEval, TextGeneration

    def llm():
        return OpenAILLM(
            model=args.model,
            base_url=args.base_url,
            api_key="EMPTY",
            max_retries=0,
            timeout=60,
            generation_kwargs={"max_new_tokens": 64, "temperature": 0.7},
        )

    data = [{"instruction": f"Question {i}: name a colour."} for i in range(args.prompts)]
    with Pipeline(name="rlaif-bench", enable_metadata=False) as pipeline:
        load = LoadDataFromDicts(data=data, batch_size=args.batch)
        generators = [TextGeneration(name=f"generate_{i}", llm=llm(), input_batch_size=args.batch) for i in range(2)]
        group = GroupColumns(
            columns=["generation", "model_name"],
            output_columns=["generations", "model_names"],
            input_batch_size=args.batch,
        )
        judge = PrometheusEval(
            name="judge",
            llm=llm(),
            mode="relative",
            rubric="helpfulness",
            reference=False,
            input_batch_size=args.batch,
        )
        load >> generators >> group >> judge
    return pipeline


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--base-url", required=True)
    parser.add_argument("--model", required=True)
    parser.add_argument("--prompts", type=int, default=1000)
    parser.add_argument("--batch", type=int, default=64, help="input_batch_size of every step (its concurrency)")
    args = parser.parse_args()
    pipeline = build(args)
    start = time.perf_counter()
    distiset = pipeline.run(use_cache=False)
    seconds = time.perf_counter() - start
    rows = distiset["default"]["train"]
    judged = sum(1 for row in rows if row.get("generations") and len(row["generations"]) == 2)
    print(json.dumps({"seconds": seconds, "rows": len(rows), "judged_rows": judged, "requests": 3 * args.prompts}))


if __name__ == "__main__":
    main()
