"""torch CPU threads for the transformers backend: the demo job (6 prompts, 3 samples each, the 135M
judge on every pair in both orders) timed as a user times it, a whole `rlaif run --no-prefect`
process with a fresh store, for each thread count, on an idle machine and with busy loops
(`yes > /dev/null`) taking half the cores, as when the machine is shared. Settings alternate
within each repeat. What `threads` unset gives is the run's default (rlaif.backends.transformers_backend).

    .venv/bin/python benchmarks/cpu_threads.py --prompts 6 --repeats 1 --write
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import tempfile
import time
from contextlib import contextmanager
from pathlib import Path

import _common as common
import yaml

RLAIF = common.ROOT / ".venv" / "bin" / "rlaif"


def recipe(folder: Path, prompts: int, threads: int | None) -> Path:
    """recipes/demo.yaml on its first `prompts` prompts, with `threads` on both models (None: unset)."""
    data = yaml.safe_load((common.ROOT / "recipes" / "demo.yaml").read_text())
    lines = (common.ROOT / "data" / "prompts.jsonl").read_text().splitlines()[:prompts]
    (folder / "prompts.jsonl").write_text("\n".join(lines) + "\n")
    data["prompts"]["path"] = str(folder / "prompts.jsonl")
    for spec in [*data["policies"], data["judge"]]:
        spec.pop("threads", None)
        if threads:
            spec["threads"] = threads
    path = folder / f"threads-{threads}.yaml"
    path.write_text(yaml.safe_dump(data))
    return path


@contextmanager
def busy_loops(count: int):
    loops = [subprocess.Popen(["yes"], stdout=subprocess.DEVNULL) for _ in range(count)]
    try:
        yield
    finally:
        for loop in loops:
            loop.kill()
            loop.wait()


def timed_run(recipe_path: Path, folder: Path) -> float:
    store = Path(tempfile.mkdtemp(dir=folder))
    started = time.perf_counter()
    subprocess.run(
        [str(RLAIF), "run", str(recipe_path), "--no-prefect", "--store", str(store)],
        check=True,
        capture_output=True,
        env={**os.environ, "HF_HUB_OFFLINE": "1"},
    )
    return time.perf_counter() - started


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--prompts", type=int, default=6)
    parser.add_argument("--repeats", type=int, default=1)
    parser.add_argument("--write", action="store_true")
    args = parser.parse_args()
    cores = os.cpu_count() or 1
    settings = list(dict.fromkeys([None, 1, max(1, cores - 1), cores]))
    loads = {"idle": 0, f"{max(1, cores // 2)} busy loop(s)": max(1, cores // 2)}
    times: dict[tuple[str, str], list[float]] = {}
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        recipes = {threads: recipe(folder, args.prompts, threads) for threads in settings}
        subprocess.run(  # weights converted and cached once, before any timing
            [str(RLAIF), "run", str(recipes[1]), "--no-prefect", "--store", str(folder / "warm")],
            check=True,
            capture_output=True,
        )
        for _ in range(args.repeats):
            for load, loops in loads.items():
                with busy_loops(loops):
                    for threads in settings:
                        key = (load, "unset (the default)" if threads is None else str(threads))
                        times.setdefault(key, []).append(timed_run(recipes[threads], folder))
                        print(key, f"{times[key][-1]:.1f} s", flush=True)
    fastest = min(common.median(v) for v in times.values())
    rows = "\n".join(
        f"| {load} | {threads} | {common.fmt_runs(runs)} | {common.median(runs) / fastest:.2f}x |"
        for (load, threads), runs in times.items()
    )
    body = (
        f"## CPU threads of the transformers backend (`benchmarks/cpu_threads.py`)\n\n"
        f"{common.machine()}; {common.today()}; `{common.command_line()}`\n\n"
        f"Whole `rlaif run --no-prefect` processes on the demo recipe's first {args.prompts} prompts (fresh store each).\n\n"
        "| load | threads | seconds | vs the fastest |\n|---|---|---|---|\n" + rows + "\n\n"
        f"Raw: `{json.dumps({f'{k[0]} / {k[1]}': v for k, v in times.items()})}`\n"
    )
    common.publish("cpu-threads", body, args.write)


if __name__ == "__main__":
    main()
