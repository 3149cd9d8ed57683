"""A run that cannot work stops before it starts: exit 2, a message naming the model and the URL /
path, no traceback, nothing written (rlaif/pipeline/preflight.py). And `--no-prefect` runs the same driver."""

from __future__ import annotations

import os
import re
import shutil
import socket
import subprocess
import sys
import threading
from http.server import ThreadingHTTPServer
from pathlib import Path

import pytest

from rlaif.config.recipe import parse_recipe
from rlaif.core.errors import BackendError
from rlaif.pipeline.preflight import check_run
from tests.badinput import assert_clean_failure, cli_env, run_cli, write_recipe
from tests.conftest import ROOT, write_prompts
from tests.det_server import JsonHandler
from tests.servers import start_llm_katan

# `rlaif run` in a child process uses the session's Prefect server (tests/conftest.py: shared_prefect). The bad
# inputs run in this process (tests/badinput.py: run_cli); the runs that get past the checks, in a child process.


@pytest.fixture(scope="module")
def katan():
    with start_llm_katan() as server:
        yield server


def closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def endpoint(url: str, model: str = "katan-echo") -> dict:
    return {"backend": "openai", "base_url": url, "model": model}


def recipe_for(folder: Path, policy: dict, judge: dict, n: int = 1) -> dict:
    prompts = write_prompts(folder / "prompts.jsonl", [f"Name colour number {i}." for i in range(n)])
    return {
        "name": "t",
        "prompts": {"path": str(prompts)},
        "policies": [{"name": "p", **policy, "params": {"max_tokens": 8}}],
        "samples_per_prompt": 2,
        "judge": judge,
        "min_verdict_share": 0,  # the echo server's answers give no verdict
    }


BAD_URLS = {
    "refused": (lambda katan: f"http://127.0.0.1:{closed_port()}/v1", "Connection refused"),
    "ftp": (lambda katan: "ftp://127.0.0.1:21/v1", "is not an http(s) URL"),
    "no-v1": (lambda katan: katan.root_url, "HTTP 404"),  # llm-katan's root: every call would be a 404
}


@pytest.mark.parametrize("fault", BAD_URLS)
def test_bad_policy_endpoint_stops_the_run(tmp_path, katan, fault):
    make_url, needle = BAD_URLS[fault]
    url = make_url(katan)
    recipe = write_recipe(tmp_path, recipe_for(tmp_path, endpoint(url), endpoint(katan.base_url)))
    store = tmp_path / "store"
    served = katan.requests_served()
    result = run_cli("run", str(recipe), "--store", str(store))
    assert_clean_failure(result, "policy 'p'", url.rstrip("/"), needle, store=store)
    assert (
        katan.requests_served() == served
    )  # stopped before it started: the good judge endpoint answered no completion


@pytest.mark.parametrize("role, who", [("judge", "judge:"), ("jury", "judge.jury.1:")])
def test_bad_judge_endpoint_names_the_judge(tmp_path, katan, role, who):
    bad = endpoint(katan.root_url)
    judge = bad if role == "judge" else {**endpoint(katan.base_url), "jury": [{}, {"base_url": katan.root_url}]}
    recipe = write_recipe(tmp_path, recipe_for(tmp_path, endpoint(katan.base_url), judge))
    store = tmp_path / "store"
    served = katan.requests_served()
    result = run_cli("run", str(recipe), "--store", str(store))
    assert_clean_failure(result, who, katan.root_url, "HTTP 404", "/v1", store=store)
    assert "policy 'p'" not in result.stderr
    assert katan.requests_served() == served  # no response was sampled from the good policy endpoint


def test_refused_key_is_named(tmp_path):
    with start_llm_katan("--validate-keys", "--api-keys", "openai=right-key") as server:
        recipe = write_recipe(
            tmp_path,
            recipe_for(
                tmp_path, {**endpoint(server.base_url), "api_key_env": "RLAIF_TEST_KEY"}, endpoint(server.base_url)
            ),
        )
        store = tmp_path / "store"
        result = run_cli(
            "run",
            str(recipe),
            "--store",
            str(store),
            env={"RLAIF_TEST_KEY": "wrong-key", "OPENAI_API_KEY": "right-key"},
        )
    assert_clean_failure(result, "policy 'p'", "refused the API key in $RLAIF_TEST_KEY", "HTTP 401", store=store)
    assert "wrong-key" not in result.stderr and "judge" not in result.stderr


def test_missing_key_for_a_remote_url(tmp_path):
    recipe = write_recipe(
        tmp_path, recipe_for(tmp_path, endpoint("https://api.example.invalid/v1", "gpt-x"), {"model": "smollm2-135m"})
    )
    store = tmp_path / "store"
    unset = {"OPENAI_API_KEY": None, "OPENAI_BASE_URL": None}
    result = run_cli("run", str(recipe), "--store", str(store), env=unset, timeout=60)
    assert_clean_failure(
        result, "policy 'p'", "no API key", "https://api.example.invalid/v1", "OPENAI_API_KEY", store=store
    )


@pytest.mark.parametrize("url", ["https://api.example.invalid/v1", "http://127.0.0.1:9/v1"])
def test_an_endpoint_in_an_error_is_printed_with_its_query_values_masked(tmp_path, url):
    """Issue 25 item 8: a query value may be a secret under any name: errors print every one masked."""
    base = f"{url}?api-version=2024-02-01&tenant=acme-7Hq2"
    recipe = write_recipe(tmp_path, recipe_for(tmp_path, endpoint(base, "gpt-x"), {"model": "smollm2-135m"}))
    store = tmp_path / "store"
    result = run_cli("run", str(recipe), "--store", str(store), env={"OPENAI_API_KEY": None, "OPENAI_BASE_URL": None})
    assert_clean_failure(result, "policy 'p'", f"{url}?api-version=***&tenant=***", store=store)
    assert "2024-02-01" not in result.stderr and "acme-7Hq2" not in result.stderr


@pytest.mark.parametrize("model", ["smollm2-1b", "/no/such/model/folder"])
@pytest.mark.parametrize("where", ["policy", "judge"])
def test_unknown_local_model_lists_the_aliases(tmp_path, model, where):
    policy, judge = {"model": "smollm2-135m"}, {"model": "smollm2-135m"}
    (policy if where == "policy" else judge)["model"] = model
    recipe = write_recipe(tmp_path, recipe_for(tmp_path, policy, judge))
    store = tmp_path / "store"
    result = run_cli("run", str(recipe), "--store", str(store))
    who = "policy 'p'" if where == "policy" else "judge"
    assert_clean_failure(
        result, who, f"'{model}'", "built-in aliases: smollm2-135m", "not downloaded at run time", store=store
    )


def test_store_is_a_file(tmp_path):
    recipe = write_recipe(tmp_path, recipe_for(tmp_path, {"model": "smollm2-135m"}, {"model": "smollm2-135m"}))
    blocker = tmp_path / "store.txt"
    blocker.write_text("not a folder")
    for store in (blocker, blocker / "inside"):
        result = run_cli("run", str(recipe), "--store", str(store))
        assert_clean_failure(result, str(blocker), "is not a folder", "--store")
        assert blocker.read_text() == "not a folder"


def test_store_runs_folder_is_a_file(tmp_path):
    recipe = write_recipe(tmp_path, recipe_for(tmp_path, {"model": "smollm2-135m"}, {"model": "smollm2-135m"}))
    store = tmp_path / "store"
    store.mkdir()
    (store / ".runs").write_text("")
    result = run_cli("run", str(recipe), "--store", str(store))
    assert_clean_failure(result, str(store / ".runs"), "not a writable folder")
    assert sorted(p.name for p in store.iterdir()) == [".runs"]


def test_store_in_a_read_only_folder(tmp_path):
    recipe = write_recipe(tmp_path, recipe_for(tmp_path, {"model": "smollm2-135m"}, {"model": "smollm2-135m"}))
    folder = tmp_path / "ro"
    folder.mkdir()
    result = read_only_run(folder, "run", str(recipe), "--store", str(folder / "store"))
    assert_clean_failure(result, str(folder), "is not writable")
    assert not any(folder.iterdir())


def read_only_run(folder: Path, *args: str) -> subprocess.CompletedProcess:
    """`rlaif ARGS` with `folder` read-only: chmod, or as root (who may write anywhere) a read-only
    tmpfs mounted over it in a private mount namespace (gone when the command ends)."""
    if os.geteuid() != 0:
        folder.chmod(0o555)
        try:
            return run_cli(*args)
        finally:
            folder.chmod(0o755)
    if not shutil.which("unshare") or subprocess.run(["unshare", "-m", "true"], capture_output=True).returncode:
        pytest.skip("running as root without mount namespaces: no way to make a read-only folder")
    script = 'mount -t tmpfs -o ro tmpfs "$1" && shift && exec "$@"'
    argv = ["unshare", "-m", "sh", "-c", script, "sh", str(folder), sys.executable, "-m", "rlaif.cli", *args]
    return subprocess.run(argv, cwd=ROOT, capture_output=True, text=True, timeout=120, env=cli_env())


# -- in-process checks: what passes, and each endpoint once ---------------------------------------


def models_requests(server) -> int:
    return len(re.findall(r'"GET /v1/models HTTP/1\.1" 200', server.output()))


def test_shared_endpoint_is_checked_once_and_loopback_needs_no_key(tmp_path, katan, monkeypatch):
    monkeypatch.delenv("OPENAI_API_KEY", raising=False)
    good = endpoint(katan.base_url)
    recipe = parse_recipe(
        recipe_for(tmp_path, good, {**good, "jury": [{}, {"template": "prompts/pairwise_judge.j2"}]})
    )
    before = models_requests(katan)
    assert (
        check_run(recipe, tmp_path / "store") == 256
    )  # every model an API: small chunks (rlaif.pipeline.run.API_CHUNK_SIZE)
    assert models_requests(katan) == before + 1  # policy, judge and two jury members share one endpoint
    assert not (tmp_path / "store").exists()


class StandIn(JsonHandler):
    """A strict server: chat completions only for model 'served' (else 404, as vllm serve does);
    its model list when the server's `listing` is on (404 otherwise, as some proxies do)."""

    def do_GET(self):  # noqa: N802
        listing = self.server.listing and self.path == "/v1/models"
        self.send_json(
            200 if listing else 404,
            {"object": "list", "data": [{"id": "served"}]} if listing else {"detail": "Not Found"},
        )

    def do_POST(self):  # noqa: N802
        body = self.read_json()
        found = self.path == "/v1/chat/completions" and body["model"] == "served"
        self.server.chats += 1
        self.send_json(
            200 if found else 404,
            {"choices": [{"message": {"content": "x"}}]} if found else {"error": {"message": "no such model"}},
        )


@pytest.fixture(params=[True, False], ids=["listing", "no-listing"])
def stand_in(request):
    server = ThreadingHTTPServer(("127.0.0.1", 0), StandIn)
    server.listing, server.chats = request.param, 0
    threading.Thread(target=server.serve_forever, daemon=True).start()
    server.url = f"http://127.0.0.1:{server.server_address[1]}"
    yield server
    server.shutdown()
    server.server_close()


def test_a_served_model_passes_with_or_without_a_model_list(tmp_path, stand_in):
    check_run(
        parse_recipe(recipe_for(tmp_path, endpoint(f"{stand_in.url}/v1", "served"), {"model": "smollm2-135m"})),
        tmp_path / "store",
    )
    assert stand_in.chats == (0 if stand_in.listing else 1)  # a listed model needs no chat call


def test_a_model_the_endpoint_does_not_serve_is_named(tmp_path, stand_in):
    url = f"{stand_in.url}/v1"
    recipe = parse_recipe(recipe_for(tmp_path, endpoint(url, "served"), endpoint(url, "typo")))
    with pytest.raises(BackendError) as failure:
        check_run(recipe, tmp_path / "store")
    message = str(failure.value)
    assert message.startswith("judge: ") and "policy" not in message and "HTTP 404" in message
    if stand_in.listing:
        assert (
            f"model 'typo' is not served at {url} (POST /chat/completions: HTTP 404 Not Found) - it serves: served"
            in message
        )
    else:
        assert "that model 'typo' is served there" in message


def test_a_url_without_v1_is_refused_with_the_likely_fix(tmp_path, stand_in):
    recipe = parse_recipe(recipe_for(tmp_path, endpoint(stand_in.url, "served"), {"model": "smollm2-135m"}))
    with pytest.raises(
        BackendError,
        match=r"GET /models: HTTP 404 Not Found, POST /chat/completions: HTTP 404 Not Found.*did you mean http://127\.0\.0\.1:\d+/v1\?",
    ):
        check_run(recipe, tmp_path / "store")
    assert not (tmp_path / "store").exists()


# -- --no-prefect: the same driver, summary and version ----------------------------------------------


@pytest.fixture(scope="module")
def in_process(tmp_path_factory, katan):
    folder = tmp_path_factory.mktemp("no-prefect")
    recipe = write_recipe(folder, recipe_for(folder, endpoint(katan.base_url), endpoint(katan.base_url), n=3))
    result = run_cli("run", str(recipe), "--store", str(folder / "a"), "--no-prefect", process=True)
    assert result.returncode == 0, result.stderr
    live = int(re.search(r"calls: live (\d+),", result.stdout)[1])
    return {"folder": folder, "recipe": recipe, "result": result, "version": version_of(result), "live": live}


def version_of(result: subprocess.CompletedProcess) -> str:
    last = result.stdout.strip().splitlines()[-1]
    assert last.startswith("version: "), result.stdout
    return last.split()[1]


def with_cache_of(folder: Path, name: str) -> Path:
    """A fresh store holding only the first run's request cache (the echo server's answers carry
    the time, so the same calls, not new live ones, are what makes the same content)."""
    store = folder / name
    store.mkdir()
    shutil.copy(folder / "a" / "cache.sqlite", store / "cache.sqlite")
    return store


def test_no_prefect_prints_the_summary(in_process):
    out = in_process["result"].stdout
    assert in_process["live"] >= 6 and "cached 0, failed 0" in out  # 3 prompts x 2 samples, then what is judged
    assert re.search(r"report: .*\.html", out) and "Traceback" not in in_process["result"].stderr


def test_without_prefect_installed_runs_in_process(in_process):
    store = with_cache_of(in_process["folder"], "b")
    code = "import sys; sys.modules['prefect'] = None; sys.argv[0] = 'rlaif'; from rlaif.cli import app; app()"
    result = subprocess.run(
        [sys.executable, "-c", code, "run", str(in_process["recipe"]), "--store", str(store)],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=120,
        env=cli_env(),
    )
    assert result.returncode == 0, result.stderr
    assert "Prefect is not installed: running in this process" in result.stderr and "Traceback" not in result.stderr
    assert version_of(result) == in_process["version"]
    assert f"calls: live 0, cached {in_process['live']}, failed 0" in result.stdout


@pytest.mark.slow
@pytest.mark.usefixtures("shared_prefect")  # its child processes use the session's Prefect server
def test_prefect_path_gives_the_same_version(in_process):
    store = with_cache_of(in_process["folder"], "c")
    result = run_cli("run", str(in_process["recipe"]), "--store", str(store), process=True)
    assert result.returncode == 0, result.stderr
    assert version_of(result) == in_process["version"]
    strip = lambda out: [line for line in out.splitlines() if not line.startswith(("calls:", "cost:", "report:"))]  # noqa: E731 - what this run paid differs
    assert strip(result.stdout) == strip(in_process["result"].stdout)
