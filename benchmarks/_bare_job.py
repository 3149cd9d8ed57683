"""The bare-client side of benchmarks/vs_peers.py: the chat requests in a JSON Lines file (one
`chat.completions.create` body a line: those an rlaif run of the job made) sent from a plain
AsyncOpenAI worker pool at a given concurrency, in its own process (timed whole, like the other
sides). Prints one JSON line: {"seconds": ..., "requests": ..., "cpu": ...}.

    .venv/bin/python benchmarks/_bare_job.py --base-url http://127.0.0.1:8000/v1 --requests-file requests.jsonl
"""

from __future__ import annotations

import argparse
import asyncio
import json
import resource
import time


async def send(base_url: str, bodies: list[dict], concurrency: int) -> int:
    import openai

    client = openai.AsyncOpenAI(base_url=base_url, api_key="EMPTY", max_retries=0, timeout=60)
    queue = iter(bodies)
    done = 0

    async def worker() -> None:
        nonlocal done
        for body in queue:
            await client.chat.completions.create(**body)
            done += 1

    try:
        await asyncio.gather(*(worker() for _ in range(min(concurrency, len(bodies)))))
    finally:
        await client.close()
    return done


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--base-url", required=True)
    parser.add_argument("--requests-file", required=True, help="JSON Lines, one chat.completions.create body a line")
    parser.add_argument("--concurrency", type=int, default=64)
    args = parser.parse_args()
    start = time.perf_counter()
    with open(args.requests_file, encoding="utf-8") as lines:
        bodies = [json.loads(line) for line in lines]
    done = asyncio.run(send(args.base_url, bodies, args.concurrency))
    if done != len(bodies):
        raise SystemExit(f"bare client finished {done} of {len(bodies)}")
    usage = resource.getrusage(resource.RUSAGE_SELF)
    print(
        json.dumps(
            {"seconds": time.perf_counter() - start, "requests": done, "cpu_s": usage.ru_utime + usage.ru_stime}
        )
    )


if __name__ == "__main__":
    main()
