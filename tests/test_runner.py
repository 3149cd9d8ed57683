"""One run driver (`rlaif.pipeline.runner.drive`) for every way of running: the order of the steps is the
library's alone; the library, `rlaif run --no-prefect` and the Prefect flow give the same version;
steps take and return plain values; API-only runs overlap their steps under one limit per endpoint."""

from __future__ import annotations

import asyncio
import re
import subprocess
from pathlib import Path

import pytest

from rlaif.pipeline.executors import InProcess
from rlaif.pipeline.run import Run, start_run
from rlaif.pipeline.runner import drive, run_recipe
from tests.badinput import run_cli, write_recipe
from tests.det_server import DetServer
from tests.test_chunked_run import fake_backends, recipe_for  # noqa: F401  (a fixture)

# `rlaif run` in a child process uses the session's Prefect server (tests/conftest.py: shared_prefect)

ROOT = Path(__file__).resolve().parents[1]


def test_the_chunk_by_policy_loop_is_written_in_one_place():
    """grep: only rlaif/pipeline/runner.py loops over the policies for the chunks; the flow states no loop."""
    found = subprocess.run(
        ["grep", "-rnE", r"range\(len\([^)]*policies\)\)|for policy_index in", "rlaif", "flows"],
        cwd=ROOT,
        capture_output=True,
        text=True,
    ).stdout
    files = {line.split(":")[0] for line in found.splitlines()}
    assert files == {"rlaif/pipeline/runner.py"}, found
    flow = (ROOT / "flows" / "pipeline.py").read_text()
    assert not re.search(r"range\(|for .* in .*(policies|chunks|waves)", flow), (
        "the flow must not re-state the order of the steps"
    )


class Recording(InProcess):
    """The in-process executor, recording each step when it starts and ends, and what it waits for."""

    def __init__(self) -> None:
        super().__init__()
        self.calls, self.events = [], []

    def submit(self, kind, fn, args, after=()):
        step = (kind, *args[1:])
        self.calls.append((step, [self.names[id(h)] for h in after] if after else [], args))

        def traced(*args):
            self.events.append(("start", step))
            value = fn(*args)
            self.events.append(("end", step))
            return value

        handle = super().submit(kind, traced, args, after)
        self.names[id(handle)] = step
        return handle

    def expect(self, steps):
        self.expected = steps

    names: dict = {}


def test_api_runs_sample_every_policy_at_once_and_judge_each_chunk_when_its_samples_are_in(tmp_path, fake_backends):  # noqa: F811
    steps = Recording()
    with start_run(recipe_for(tmp_path), tmp_path / "a", chunk_size=4) as run:
        assert run.api_only
        drive(run, steps)
    submitted = [(step, after) for step, after, _ in steps.calls]
    assert submitted == [
        (("prompts", None), []),
        (("sample", 0, 0), []),
        (("sample", 1, 0), []),
        (("judge", 0), [("sample", 0, 0), ("sample", 1, 0)]),
        (("sample", 0, 1), []),
        (("sample", 1, 1), []),
        (("judge", 1), [("sample", 0, 1), ("sample", 1, 1)]),
        (("sample", 0, 2), []),
        (("sample", 1, 2), []),
        (("judge", 2), [("sample", 0, 2), ("sample", 1, 2)]),
        (("finish",), []),
        (("commit",), []),
    ]
    assert steps.expected == len(steps.calls)  # the progress total the executor is told
    for step, after, _ in steps.calls:  # a step starts only after what it waits for has ended
        for before in after:
            assert steps.events.index(("end", before)) < steps.events.index(("start", step))


def test_local_runs_go_one_step_at_a_time_policy_major(tmp_path, fake_backends):  # noqa: F811
    steps = Recording()
    with start_run(recipe_for(tmp_path, engine={"backend": "transformers"}), tmp_path / "b", chunk_size=5) as run:
        assert not run.api_only
        drive(run, steps)
    order = [step for _, step in steps.events[::2]]
    assert order == [
        ("prompts", None),
        ("sample", 0, 0),
        ("sample", 0, 1),
        ("sample", 1, 0),
        ("sample", 1, 1),
        ("judge", 0),
        ("judge", 1),
        ("finish",),
        ("commit",),
    ]
    assert steps.expected == len(steps.calls)
    assert all(kind == ("start", "end")[i % 2] for i, (kind, _) in enumerate(steps.events))  # never two at once


def test_an_api_only_run_has_small_chunks_by_default_and_a_local_one_large(tmp_path, monkeypatch):
    monkeypatch.delenv("RLAIF_CHUNK_SIZE", raising=False)
    with start_run(recipe_for(tmp_path), tmp_path / "a") as run:
        assert run.chunk_size == 256
    with start_run(recipe_for(tmp_path, engine={"backend": "transformers"}), tmp_path / "b") as run:
        assert run.chunk_size == 5000


def test_steps_take_the_run_and_plain_values_and_the_id_is_the_library_s(tmp_path, fake_backends):  # noqa: F811
    steps = Recording()
    recipe = recipe_for(tmp_path)
    with start_run(recipe, tmp_path / "a", chunk_size=4) as run:
        version_id, created, _ = drive(run, steps)
    assert {step[0] for step, _, _ in steps.calls} == {"prompts", "sample", "judge", "finish", "commit"}
    for step, _, (first, *rest) in steps.calls:
        assert isinstance(first, Run) and all(isinstance(value, (int, type(None))) for value in rest), step
    assert created and version_id == run_recipe(recipe, tmp_path / "b", chunk_size=100)[0]
    assert not run.work.exists()  # the run's folder is gone with it


def test_backends_of_one_endpoint_share_its_limit(monkeypatch):
    """Two backends on one base URL running at once never have more than max_concurrency requests in flight."""
    from rlaif.backends import BackendPool, make_backend
    from rlaif.backends.base import Completion, GenerateRequest
    from rlaif.backends.openai_compat import OpenAIBackend
    from rlaif.config.recipe import PolicySpec
    from tests.fakes import collect

    now = {"in_flight": 0, "most": 0}

    async def slow(self, client, request):
        now["in_flight"] += 1
        now["most"] = max(now["most"], now["in_flight"])
        await asyncio.sleep(0.01)
        now["in_flight"] -= 1
        return Completion(text="x", finish_reason="stop")

    monkeypatch.setattr(OpenAIBackend, "_generate_one", slow)
    specs = [
        PolicySpec(backend="openai", model=m, base_url="http://127.0.0.1:9/v1", max_concurrency=5) for m in ("a", "b")
    ]
    pool = BackendPool()
    backends = [pool.get(make_backend, spec) for spec in specs]
    requests = [
        GenerateRequest(messages=(("user", f"q{i}"),), temperature=0, top_p=1, max_tokens=4, seed=i) for i in range(40)
    ]
    try:
        steps = InProcess()
        results = [
            h.result()
            for h in [steps.submit("sample", lambda b=b: collect(b.generate, requests), ()) for b in backends]
        ]
        steps.close()
    finally:
        pool.close()
    assert all(len(r) == 40 and all(c.text == "x" for c in r) for r in results)
    assert now["most"] == 5  # the limit is reached, and shared: alone each backend would run 5


def det_recipe(folder: Path, base_url: str) -> Path:
    prompts = folder / "prompts.jsonl"
    prompts.write_text(
        "".join(
            f'{{"id": "q{i}", "prompt": "Question {i}: why is {i * 7919 % 1009} interesting?"}}\n' for i in range(9)
        )
    )
    server = {"backend": "openai", "model": "det", "base_url": base_url, "max_concurrency": 8}
    return write_recipe(
        folder,
        {
            "name": "driver",
            "prompts": {"path": str(prompts)},
            "samples_per_prompt": 1,
            "policies": [
                {**server, "name": n, "params": {"temperature": t, "max_tokens": 32}}
                for n, t in (("cold", 0.3), ("hot", 1.0))
            ],
            "judge": {**server, "type": "pairwise"},
        },
    )


def version_of(result: subprocess.CompletedProcess) -> str:
    assert result.returncode == 0, result.stderr
    return result.stdout.strip().splitlines()[-1].split()[-1]


@pytest.mark.slow
@pytest.mark.usefixtures("shared_prefect")  # its child processes use the session's Prefect server
def test_flow_no_prefect_and_library_give_the_same_version(tmp_path):
    """The same driver in three executors: the library, `rlaif run --no-prefect`, the Prefect flow."""
    from rlaif.config.recipe import load_recipe

    with DetServer() as server:
        recipe = det_recipe(tmp_path, server.base_url)
        library = run_recipe(load_recipe(str(recipe)), tmp_path / "lib", chunk_size=4)[0]
        argv = ("run", str(recipe), "--store")  # real runs (the driver, its threads and the flow): in a process
        plain = version_of(run_cli(*argv, str(tmp_path / "plain"), "--no-prefect", "--chunk-size", "3", process=True))
        flow = version_of(run_cli(*argv, str(tmp_path / "flow"), timeout=300, process=True))
    assert library == plain == flow, (library, plain, flow)


@pytest.mark.slow
@pytest.mark.usefixtures("shared_prefect")  # its child processes use the session's Prefect server
def test_the_demo_recipe_gives_one_version_in_every_executor(tmp_path):
    """recipes/demo.yaml (the real 135M model, transformers: one model at a time) on 2 prompts."""
    from rlaif.config.recipe import load_recipe

    demo = str(ROOT / "recipes" / "demo.yaml")
    library = run_recipe(load_recipe(demo), tmp_path / "lib", limit=2)[0]
    plain = version_of(
        run_cli(
            "run", demo, "--store", str(tmp_path / "plain"), "--limit", "2", "--no-prefect", timeout=600, process=True
        )
    )
    flow = version_of(
        run_cli("run", demo, "--store", str(tmp_path / "flow"), "--limit", "2", timeout=600, process=True)
    )
    assert library == plain == flow, (library, plain, flow)
