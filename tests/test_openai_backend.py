"""The openai backend against a real llm-katan echo server (tests/servers.py): the retry policy
call by call, and a whole `rlaif run` through the CLI against a server that fails 30% of requests.

Note on the echo server: its reply is "[echo] model=... time=<ISO, 1 s resolution> ...
temperature=<t>\\nUser: <prompt>"; the seed is ignored. Two samples of one policy are therefore
usually byte-identical (and dropped as `identical` before judging), so the end-to-end recipe uses
two policies that differ in temperature, one sample each: every prompt gets exactly one candidate
pair whose responses differ, so every pair reaches the judge. The judge's answer starts with
"[echo]", which is unparseable, so every judged pair is dropped as `judge_failed` - counted, not lost.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import time
from pathlib import Path

import openai
import pytest
import yaml

from rlaif.backends.base import GenerateRequest
from rlaif.backends.openai_compat import OpenAIBackend
from rlaif.config.recipe import PolicySpec
from rlaif.store.versions import list_versions, load_manifest, read_table
from tests.conftest import ROOT
from tests.servers import start_llm_katan

# `rlaif run` in a child process uses the session's Prefect server (tests/conftest.py: shared_prefect)

SECRET = "sk-test-SECRET123"
N_PROMPTS = 30
POLICIES = (("cold", 0.2), ("hot", 0.9))


# -- helpers ------------------------------------------------------------------------------------


def access_log_count(server, status: int) -> int:
    """Chat-completion requests the server answered with `status` (uvicorn's access log)."""
    return len(re.findall(rf'"POST /v1/chat/completions HTTP/1\.1" {status} ', server.output()))


def request(text: str, seed: int = 0) -> GenerateRequest:
    return GenerateRequest(
        messages=GenerateRequest.pack([{"role": "user", "content": text}]),
        temperature=0.5,
        top_p=1.0,
        max_tokens=16,
        seed=seed,
    )


def generate(spec: PolicySpec, requests: list[GenerateRequest]) -> list:
    """Run OpenAIBackend.generate; every index must be reported exactly once."""
    results: dict[int, object] = {}

    def on_result(index, result):
        assert index not in results, f"request {index} reported twice"
        results[index] = result

    backend = OpenAIBackend(spec)
    backend.load()
    backend.generate(requests, on_result)
    assert sorted(results) == list(range(len(requests)))
    return [results[i] for i in range(len(requests))]


def spec_for(server, **overrides) -> PolicySpec:
    return PolicySpec(backend="openai", base_url=server.base_url, model=server.model, **overrides)


def rlaif_cli(*args: str, env_extra: dict | None = None, timeout: float = 300) -> subprocess.CompletedProcess:
    env = {
        **os.environ,
        "RLAIF_PROGRESS": "0",
        "PREFECT_SERVER_ANALYTICS_ENABLED": "false",
        "DO_NOT_TRACK": "1",
        **(env_extra or {}),
    }
    return subprocess.run(
        [sys.executable, "-m", "rlaif.cli", *args], cwd=ROOT, env=env, capture_output=True, text=True, timeout=timeout
    )


def summary(result: subprocess.CompletedProcess) -> dict:
    assert result.returncode == 0, result.stdout + result.stderr
    calls = re.search(r"calls: live (\d+), cached (\d+), failed (\d+)", result.stdout)
    version = re.search(r"version: (\S+)", result.stdout)
    assert calls and version, result.stdout
    return {"live": int(calls[1]), "cached": int(calls[2]), "failed": int(calls[3]), "version": version[1]}


def write_recipe(folder: Path, base_url: str, model: str, n_prompts: int, name: str, **policy_extra) -> Path:
    prompts = folder / "prompts.jsonl"
    prompts.write_text(
        "".join(
            json.dumps({"id": f"q{i:03d}", "prompt": f"Question number {i}: name a colour."}) + "\n"
            for i in range(n_prompts)
        )
    )
    endpoint = {"backend": "openai", "base_url": base_url, "model": model}
    recipe = {
        "name": name,
        "prompts": {"path": str(prompts)},
        "policies": [
            {
                "name": policy,
                **endpoint,
                **policy_extra,
                "params": {"temperature": temperature, "max_tokens": 32, "seed": 7},
            }
            for policy, temperature in POLICIES
        ],
        "samples_per_prompt": 1,
        "judge": {
            **endpoint,
            **{k: v for k, v in policy_extra.items() if k == "max_retries"},
            "template": "prompts/pairwise_judge.j2",
        },
        "min_verdict_share": 0,  # the echo server's answers give no verdict: the run commits them as judge_failed
    }
    path = folder / "recipe.yaml"
    path.write_text(yaml.safe_dump(recipe))
    return path


# -- the client's own retries, against a scripted endpoint ----------------------------------------

CHAT_OK = {
    "id": "c",
    "object": "chat.completion",
    "created": 0,
    "model": "m",
    "choices": [{"index": 0, "message": {"role": "assistant", "content": "hi"}, "finish_reason": "stop"}],
    "usage": {"prompt_tokens": 1, "completion_tokens": 1, "total_tokens": 2},
}


REAL_ASYNC_OPENAI = openai.AsyncOpenAI


def scripted_endpoint(monkeypatch, answers: list[tuple[int, dict]]) -> list[float]:
    """OpenAIBackend's client talks to a scripted endpoint: attempt i gets answers[i] (status, headers), later ones 200.

    Returns the attempt times. Only the transport is replaced: retries, backoff and Retry-After are the client's own.
    """
    import httpx2  # the openai client's HTTP library

    attempts: list[float] = []

    def handler(request):
        attempts.append(time.perf_counter())
        if len(attempts) <= len(answers):
            status, headers = answers[len(attempts) - 1]
            return httpx2.Response(
                status, headers=headers, json={"error": {"message": "scripted failure", "type": "test"}}
            )
        return httpx2.Response(200, json=CHAT_OK)

    real = REAL_ASYNC_OPENAI
    monkeypatch.setattr(
        openai,
        "AsyncOpenAI",
        lambda **kw: real(**kw, http_client=openai.DefaultAsyncHttpxClient(transport=httpx2.MockTransport(handler))),
    )
    return attempts


@pytest.fixture
def retry_waits(monkeypatch) -> list[float]:
    """The wait the openai client chose before each retry (its own `_calculate_retry_timeout`), recorded: a retry
    policy checked by what it decided, not by timing the wall clock (which a busy machine stretches)."""
    from openai._base_client import BaseClient

    waits: list[float] = []
    real = BaseClient._calculate_retry_timeout

    def recorded(self, *args, **kwargs):
        waits.append(real(self, *args, **kwargs))
        return waits[-1]

    monkeypatch.setattr(BaseClient, "_calculate_retry_timeout", recorded)
    return waits


def one_generation(max_retries: int):
    return generate(
        PolicySpec(backend="openai", base_url="http://127.0.0.1:9/v1", model="m", max_retries=max_retries),
        [request("q")],
    )[0]


@pytest.mark.parametrize(
    "headers, low, high",
    [
        ({"retry-after": "0.6"}, 0.6, 0.6),
        ({"retry-after-ms": "250", "retry-after": "9"}, 0.25, 0.25),
        ({"retry-after": "soon"}, 0.375, 0.5),
    ],
    ids=["seconds", "milliseconds-first", "malformed-falls-back-to-backoff"],
)
def test_a_rate_limited_request_waits_what_retry_after_asks_then_succeeds(
    monkeypatch, retry_waits, headers, low, high
):
    attempts = scripted_endpoint(monkeypatch, [(429, headers)])
    result = one_generation(max_retries=1)
    assert result.text == "hi" and len(attempts) == 2
    assert len(retry_waits) == 1 and low <= retry_waits[0] <= high, (
        retry_waits
    )  # malformed: the first backoff, 0.5 s less jitter
    assert attempts[1] - attempts[0] >= low  # and it was waited for (a sleep never ends early)


def test_a_retry_after_beyond_the_cap_is_not_waited_for(monkeypatch, retry_waits):
    """Over 2 minutes the client does not retry (the run's next pass takes the call, rlaif.calls.engine)."""
    attempts = scripted_endpoint(monkeypatch, [(429, {"retry-after": "600"})])
    result = one_generation(max_retries=3)
    assert isinstance(result, openai.RateLimitError) and len(attempts) == 1 and retry_waits == []


def test_transient_errors_are_retried_max_retries_times_and_a_400_never(monkeypatch):
    attempts = scripted_endpoint(monkeypatch, [(500, {})] * 9)
    result = one_generation(max_retries=2)
    assert isinstance(result, openai.InternalServerError) and len(attempts) == 3
    attempts = scripted_endpoint(monkeypatch, [(400, {})])
    result = one_generation(max_retries=3)
    assert isinstance(result, openai.BadRequestError) and len(attempts) == 1


def backend_run(coro):
    from rlaif.backends.openai_compat import run_async

    return run_async(coro)


# -- the retry policy against the real server ---------------------------------------------------


def test_rate_limited_requests_fail_after_exactly_max_retries_plus_one_attempts(retry_waits):
    # llm-katan's --rate-limit-after 0 means "disabled"; with 1, request 1 succeeds and all later ones get 429
    with start_llm_katan("--rate-limit-after", "1") as server:
        openai.OpenAI(base_url=server.base_url, api_key="x", max_retries=0).chat.completions.create(
            model=server.model, messages=[{"role": "user", "content": "prime"}]
        )
        results = generate(spec_for(server, max_retries=2, max_concurrency=4), [request(f"r{i}") for i in range(3)])
        assert all(isinstance(r, openai.RateLimitError) and r.status_code == 429 for r in results), results
        assert access_log_count(server, 429) == 3 * 3  # 1 attempt + 2 retries, per request
        assert server.requests_served() == 1  # only the priming request
        assert len(retry_waits) == 3 * 2 and max(retry_waits) <= 1.0, (
            retry_waits
        )  # two backoffs per request: at most 0.5 s, then 1 s
        assert sorted(retry_waits)[2] <= 0.5 and sum(retry_waits) <= 3 * (0.5 + 1.0), retry_waits


def test_server_errors_are_retried_until_success():
    with start_llm_katan("--error-rate", "0.3") as server:
        results = generate(
            spec_for(server, max_retries=10, max_concurrency=8), [request(f"r{i}", seed=i) for i in range(20)]
        )
        failed = [r for r in results if isinstance(r, Exception)]
        assert not failed, failed
        assert all(r.text.startswith("[echo]") and r.text.endswith(f"User: r{i}") for i, r in enumerate(results))
        assert server.requests_served() == 20  # no request answered twice
        assert access_log_count(server, 200) == 20
        assert access_log_count(server, 500) >= 1  # P(no error in >= 20 tries at p=0.3) < 1e-3


def test_non_retryable_error_is_tried_once(monkeypatch, retry_waits):
    monkeypatch.setenv("RLAIF_TEST_WRONG_KEY", "wrong-key")
    with start_llm_katan("--validate-keys", "--api-keys", "openai=right-key") as server:
        spec = spec_for(server, max_retries=5, api_key_env="RLAIF_TEST_WRONG_KEY")
        results = generate(spec, [request("a"), request("b")])
        assert all(isinstance(r, openai.AuthenticationError) for r in results)
        assert access_log_count(server, 401) == 2 and retry_waits == []  # no retry of a 401, and no wait for one


def test_concurrency_is_bounded():
    with start_llm_katan("--latency-ms", "200") as server:
        requests = [request(f"r{i}", seed=i) for i in range(8)]
        start = time.perf_counter()
        generate(spec_for(server, max_concurrency=2), requests)
        serial = time.perf_counter() - start
        start = time.perf_counter()
        generate(spec_for(server, max_concurrency=8), requests)
        parallel = time.perf_counter() - start
        assert serial >= 4 * 0.2  # 8 requests, 2 at a time, 0.2 s each
        assert parallel < serial / 2
        assert server.requests_served() == 16


# -- a whole run through the CLI against a failing server --------------------------------------


@pytest.fixture(scope="module")
def flaky_run(tmp_path_factory):
    folder = tmp_path_factory.mktemp("openai-e2e")
    # --validate-keys makes the server reject any key but SECRET: a passing run proves the key was read and sent
    with start_llm_katan(
        "--error-rate", "0.3", "--max-concurrent", "64", "--validate-keys", "--api-keys", f"openai={SECRET}"
    ) as server:
        recipe = write_recipe(folder, server.base_url, server.model, N_PROMPTS, "flaky", max_retries=6)
        store = folder / "store"
        env = {"OPENAI_API_KEY": SECRET}
        first_out = rlaif_cli("run", str(recipe), "--store", str(store), env_extra=env)
        first = summary(first_out)
        served_first = server.requests_served()
        errors_first, ok_first = access_log_count(server, 500), access_log_count(server, 200)
        second_out = rlaif_cli("run", str(recipe), "--store", str(store), env_extra=env)
        second = summary(second_out)
        served_second = server.requests_served()
        yield {
            "store": store,
            "first": first,
            "second": second,
            "outputs": [first_out, second_out],
            "served_first": served_first,
            "served_second": served_second,
            "errors_first": errors_first,
            "ok_first": ok_first,
            "unauthorized": access_log_count(server, 401),
        }


@pytest.mark.slow
@pytest.mark.usefixtures("shared_prefect")  # its child processes use the session's Prefect server
def test_flaky_server_run_accounts_for_every_prompt(flaky_run):
    store, first = flaky_run["store"], flaky_run["first"]
    versions = list_versions(store)
    assert [v["id"] for v in versions] == [first["version"]]
    manifest = load_manifest(store, first["version"])
    generations = read_table(store, first["version"], "generations")
    judgments = read_table(store, first["version"], "judgments")

    # every (prompt, policy, sample) exactly once, none lost
    expected_ids = {(f"q{i:03d}", policy, 0) for i in range(N_PROMPTS) for policy, _ in POLICIES}
    ids = [(g["prompt_id"], g["policy"], g["sample_index"]) for g in generations]
    assert len(ids) == len(expected_ids) == 2 * N_PROMPTS and set(ids) == expected_ids
    gen_failed = [g for g in generations if g["error"]]
    assert all(g["text"] is None and "InternalServerError" in g["error"] for g in gen_failed)
    assert all(g["text"].startswith("[echo]") for g in generations if not g["error"])
    prompts_gen_failed = {g["prompt_id"] for g in gen_failed}

    # every candidate pair ends in exactly one place
    counts = manifest["counts"]
    assert counts["prompts"] == N_PROMPTS and counts["generations"] == 2 * N_PROMPTS
    assert counts["in"] == N_PROMPTS == counts["kept"] + sum(counts["dropped"].values())
    assert counts["kept"] == 0 and read_table(store, first["version"], "pairs") == []
    assert counts["dropped"]["generation_failed"] == len(prompts_gen_failed)
    assert counts["dropped"]["judge_failed"] == N_PROMPTS - len(
        prompts_gen_failed
    )  # the echo judge never gives a verdict
    assert counts["judgments"] == len(judgments) == N_PROMPTS - len(prompts_gen_failed)
    assert all(j["error"] for j in judgments)
    assert {j["prompt_id"] for j in judgments} == {f"q{i:03d}" for i in range(N_PROMPTS)} - prompts_gen_failed

    # every call either succeeded once or failed after all retries; no success was paid twice
    calls = manifest["calls"]
    assert calls == {"live": first["live"], "cached": first["cached"], "failed": first["failed"]}
    assert calls["cached"] == 0
    assert calls["live"] + calls["failed"] == 2 * N_PROMPTS + 2 * len(judgments)
    assert calls["live"] == flaky_run["served_first"] == flaky_run["ok_first"]
    assert calls["failed"] <= 2  # P(7 straight 500s) = 0.3**7 ~ 2e-4 per call
    assert flaky_run["unauthorized"] == 0

    # the server really failed requests and the client retried them: ~30% of all attempts were 500s
    errors, attempts = flaky_run["errors_first"], flaky_run["errors_first"] + flaky_run["ok_first"]
    assert errors >= 7 * calls["failed"]
    assert 0.15 <= errors / attempts <= 0.45, (errors, attempts)


@pytest.mark.slow
@pytest.mark.usefixtures("shared_prefect")  # its child processes use the session's Prefect server
def test_rerun_makes_no_live_call(flaky_run):
    first, second = flaky_run["first"], flaky_run["second"]
    assert flaky_run["served_second"] - flaky_run["served_first"] == second["live"]
    if first["failed"] == 0:
        assert "calls: live 0, " in flaky_run["outputs"][1].stdout
        assert second == {"live": 0, "cached": first["live"], "failed": 0, "version": first["version"]}
        assert len(list_versions(flaky_run["store"])) == 1
    else:  # failures are never cached, so exactly those calls are tried again
        assert second["live"] + second["failed"] == first["failed"] and second["cached"] == first["live"]


@pytest.mark.slow
@pytest.mark.usefixtures("shared_prefect")  # its child processes use the session's Prefect server
def test_api_key_never_reaches_the_store_or_the_output(flaky_run):
    store: Path = flaky_run["store"]
    files = [p for p in store.rglob("*") if p.is_file()]
    assert any(p.name == "cache.sqlite" for p in files) and any(p.suffix == ".parquet" for p in files)
    leaks = [str(p) for p in files if SECRET.encode() in p.read_bytes()]
    assert not leaks, f"API key found in {leaks}"
    for out in flaky_run["outputs"]:
        assert SECRET not in out.stdout and SECRET not in out.stderr
    manifest = load_manifest(store, flaky_run["first"]["version"])
    assert (
        manifest["recipe"]["policies"][0]["api_key_env"] == "OPENAI_API_KEY"
    )  # the name is recorded, never the value
