"""Secrets never reach a row, a card, a log or the Hub (rlaif/core/secrets.py).

A real HTTP server (stdlib, below) that quotes the caller's API key in the body of its errors, as
some providers do: a run against it, its report, its export and a push to the stand-in Hub
(tests/hub_server.py) must leave the key in no byte of any file. A recipe field that happens to
equal the key is kept as it is, and the version id does not depend on whether the key is set.
`rlaif datasets push` refuses (exit 2, naming the file and the column) a version in which a
secret scan finds a key, and uploads nothing.
"""

from __future__ import annotations

import json
import logging
import os
import secrets
import threading
from http.server import ThreadingHTTPServer
from pathlib import Path

import huggingface_hub.constants
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from rlaif.config.recipe import Recipe
from rlaif.core.schema import Generation, PreferencePair, Prompt
from rlaif.core.secrets import (
    error_text,
    manifest_secrets,
    public_recipe,
    scan_for_secrets,
    scrub_text,
    spec_secrets,
    strip_userinfo,
    userinfo_secrets,
)
from rlaif.store.versions import commit_tables, load_manifest, read_table, version_path
from tests.badinput import assert_clean_failure, run_cli
from tests.conftest import write_prompts
from tests.det_server import JsonHandler
from tests.hub_server import start_hub
from tests.lockfile import lower_bound

KEY_ENV = "RLAIF_TEST_SECRET_KEY"
HUB_TOKEN = f"hf_test_{secrets.token_hex(12)}"
REPO = "alice/prefs"
PROMPTS = ["Say hi. FAILGEN", "Name a colour. JUDGEFAIL", "What is 2+2? FLAKY", "Give a fruit.", "Name a planet."]


def random_key() -> str:
    """A fresh key, so that finding it anywhere means it leaked (not key-shaped on purpose: found by value)."""
    return f"plain{secrets.token_hex(10)}"


# -- a server that quotes the key in its errors ----------------------------------------------------


class KeyQuotingHandler(JsonHandler):
    """GET /v1/models: 200. POST /v1/chat/completions: a deterministic answer, except that a
    sampling request holding FAILGEN gets a 403, one holding FLAKY a 500 the first time (it is
    retried), a judge request (logprobs=true) holding JUDGEFAIL a 401, and any request holding
    STATUS401/STATUS403/STATUS500 that status: each with the caller's key (its Authorization header)
    quoted in the body, as some providers do."""

    def do_GET(self):  # noqa: N802
        self.send_json(
            200,
            {"object": "list", "data": [{"id": m, "object": "model", "owned_by": "test"} for m in self.server.models]},
        )

    def do_POST(self):  # noqa: N802
        body = self.read_json()
        key = self.headers.get("Authorization", "").removeprefix("Bearer ")
        content = body["messages"][-1]["content"]
        judge = bool(body.get("logprobs"))
        self.server.seen += 1
        forced = next((code for code in (401, 403, 500) if f"STATUS{code}" in content), None)
        if forced:
            self.server.quoted += 1
            return self.send_json(
                forced,
                {"error": {"message": f"the key {key} was refused ({forced})", "type": "invalid_request_error"}},
            )
        if not judge and "FAILGEN" in content:
            return self.send_json(
                403, {"error": {"message": f"the key {key} may not use this model", "type": "permission_error"}}
            )
        if not judge and "FLAKY" in content and (content, body["temperature"]) not in self.server.flaked:
            self.server.flaked.add((content, body["temperature"]))
            return self.send_json(
                500, {"error": {"message": f"upstream failure for the key {key}", "type": "server_error"}}
            )
        if judge and "JUDGEFAIL" in content:
            return self.send_json(
                401,
                {
                    "error": {
                        "message": f"Incorrect API key provided: {key}.",
                        "type": "invalid_request_error",
                        "code": "invalid_api_key",
                    }
                },
            )
        if judge:  # prefer the colder answer, whichever order it is shown in: consistent verdicts
            text = "Output (a)" if content.index("t=0.2") < content.index("t=0.9") else "Output (b)"
        else:
            text = f"t={body['temperature']}: an answer to {content}"
        self.send_json(
            200,
            {
                "id": "x",
                "object": "chat.completion",
                "created": 0,
                "model": body["model"],
                "choices": [
                    {
                        "index": 0,
                        "message": {"role": "assistant", "content": text},
                        "finish_reason": "stop",
                        "logprobs": None,
                    }
                ],
                "usage": {"prompt_tokens": 5, "completion_tokens": 5, "total_tokens": 10},
            },
        )


@pytest.fixture
def key_server():
    server = ThreadingHTTPServer(("127.0.0.1", 0), KeyQuotingHandler)
    server.daemon_threads = True
    server.models, server.seen, server.flaked, server.quoted = ["m"], 0, set(), 0
    thread = threading.Thread(target=server.serve_forever, args=(0.05,), daemon=True)
    thread.start()
    server.base_url = f"http://127.0.0.1:{server.server_address[1]}/v1"
    yield server
    server.shutdown()
    server.server_close()


@pytest.fixture
def hub(tmp_path, monkeypatch):
    monkeypatch.setenv("HF_TOKEN", HUB_TOKEN)
    monkeypatch.setenv("HF_HOME", str(tmp_path / "hf-home"))
    for offline in ("HF_HUB_OFFLINE", "HF_DATASETS_OFFLINE"):
        monkeypatch.delenv(offline, raising=False)
    monkeypatch.setattr(huggingface_hub.constants, "HF_HUB_OFFLINE", False)
    server = start_hub(tmp_path / "hub", {HUB_TOKEN: ["alice"]})
    yield server
    server.stop()


def recipe_dict(base_url: str, prompts: Path, model: str = "m") -> dict:
    spec = {
        "backend": "openai",
        "base_url": base_url,
        "model": model,
        "api_key_env": KEY_ENV,
        "max_retries": 1,
        "timeout_s": 10,
    }
    return {
        "name": "keyed",
        "prompts": {"path": str(prompts)},
        "policies": [
            {**spec, "name": "cold", "params": {"temperature": 0.2, "max_tokens": 16}},
            {**spec, "name": "hot", "params": {"temperature": 0.9, "max_tokens": 16}},
        ],
        "samples_per_prompt": 1,
        "judge": {**spec, "template": "prompts/pairwise_judge.j2"},
    }


def files_holding(needle: str, *folders: Path) -> list[str]:
    """Every file under the folders whose bytes contain `needle` (SQLite, Parquet, JSON, HTML...)."""
    return [
        str(p)
        for folder in folders
        for p in Path(folder).rglob("*")
        if p.is_file() and needle.encode() in p.read_bytes()
    ]


# -- the end-to-end acceptance: run, report, export, push ------------------------------------------


def test_a_run_against_a_key_quoting_server_leaks_the_key_nowhere(tmp_path, key_server, hub, monkeypatch, caplog):
    from rlaif.pipeline.runner import run_recipe
    from rlaif.publish.export import export_version
    from rlaif.publish.hub import push_version
    from rlaif.publish.report import write_report

    key = random_key()
    monkeypatch.setenv(KEY_ENV, key)
    caplog.set_level(logging.DEBUG)
    store = tmp_path / "store"
    recipe = Recipe.model_validate(recipe_dict(key_server.base_url, write_prompts(tmp_path / "p.jsonl", PROMPTS)))
    version_id, created, manifest, _ = run_recipe(recipe, store)
    write_report(store, version_id)
    export = export_version(store, version_id, "dpo", tmp_path / "export")
    result = push_version(store, version_id, REPO, endpoint=hub.url)

    # the failures really happened, quoted the key, and were recorded scrubbed
    failed_gens = [g for g in read_table(store, version_id, "generations") if g["error"]]
    failed_judgments = [j for j in read_table(store, version_id, "judgments") if j["error"]]
    assert len(failed_gens) == 2 and all(
        "PermissionDeniedError" in g["error"] and "***" in g["error"] for g in failed_gens
    )
    assert (
        len(failed_judgments) == 1
        and "AuthenticationError" in failed_judgments[0]["error"]
        and "***" in failed_judgments[0]["error"]
    )
    assert manifest["counts"]["kept"] == 3 and result.pushed
    assert any(r.getMessage().startswith("Retrying request") for r in caplog.records), (
        "the client's retry was not logged"
    )

    # ... and the key is in no byte of any file: store (cache.sqlite, versions, reports), export, Hub
    assert (store / "cache.sqlite").is_file() and list((store / "reports").glob("*.html"))
    assert files_holding(key, store, export, tmp_path / "hub") == []
    assert not [r.getMessage() for r in caplog.records if key in r.getMessage()]


@pytest.mark.slow
def test_the_cli_run_and_push_leak_the_key_nowhere(tmp_path, key_server, hub):
    """The same through `rlaif run` (Prefect, its own PREFECT_HOME) and `rlaif datasets push`."""
    key = random_key()
    store = tmp_path / "store"
    recipe = tmp_path / "recipe.json"
    recipe.write_text(json.dumps(recipe_dict(key_server.base_url, write_prompts(tmp_path / "p.jsonl", PROMPTS))))
    env = {
        KEY_ENV: key,
        "HF_TOKEN": HUB_TOKEN,
        "HF_ENDPOINT": hub.url,
        "PREFECT_HOME": str(tmp_path / "prefect"),
        "HF_HOME": str(tmp_path / "hf"),
    }
    ran = run_cli("run", str(recipe), "--store", str(store), env=env, timeout=300, process=True)
    assert ran.returncode == 0, ran.stdout + ran.stderr
    version_id = ran.stdout.strip().splitlines()[-1].split("version: ")[1].split()[0]
    pushed = run_cli("datasets", "push", version_id, "--repo", REPO, "--store", str(store), env=env, process=True)
    assert pushed.returncode == 0, pushed.stdout + pushed.stderr
    assert hub.repo(REPO)["tags"].get(version_id) and list((store / "reports").glob("*.html"))
    assert [g["error"].count("***") for g in read_table(store, version_id, "generations") if g["error"]] == [
        1,
        1,
    ]  # the key was quoted
    for out in (ran, pushed):
        assert key not in out.stdout + out.stderr
    assert files_holding(key, store, tmp_path / "hub", tmp_path / "prefect") == []


def test_a_recipe_field_equal_to_the_key_is_kept_and_the_id_does_not_depend_on_the_key(
    tmp_path, key_server, monkeypatch
):
    from rlaif.pipeline.runner import run_recipe

    key = random_key()
    key_server.models = [key]
    prompts = write_prompts(tmp_path / "p.jsonl", ["Say hi.", "Give a fruit."])
    recipe = Recipe.model_validate(recipe_dict(key_server.base_url, prompts, model=key))  # a model named like the key
    monkeypatch.delenv(KEY_ENV, raising=False)  # a local server takes no key
    without, *_ = run_recipe(recipe, tmp_path / "a")
    monkeypatch.setenv(KEY_ENV, key)
    with_key, _, manifest, _ = run_recipe(recipe, tmp_path / "b")
    assert with_key == without
    assert manifest["recipe"]["judge"]["model"] == key and manifest["models"]["policies"][0]["model"] == key
    assert load_manifest(tmp_path / "b", with_key)["recipe"]["policies"][1]["model"] == key


# -- push refuses a version that holds a key -------------------------------------------------------


def make_version(store: Path, name: str = "clean", error: str | None = None) -> str:
    """A small pairwise version made by hand; `error`: the error of the last generation (as recorded)."""
    prompts = [Prompt(f"p{i}", [{"role": "user", "content": f"Question {i}?"}], "test") for i in range(3)]
    gens = [
        Generation(
            prompt_id=p.id,
            policy=policy,
            model="m",
            sample_index=0,
            text=f"answer {policy} to {p.id}",
            finish_reason="stop",
            params={"temperature": 0.8},
            seed=0,
        )
        for p in prompts
        for policy in ("smol", "big")
    ]
    if error:
        gens.append(
            Generation(
                prompt_id="p0",
                policy="smol",
                model="m",
                sample_index=1,
                text=None,
                finish_reason=None,
                params={"temperature": 0.8},
                seed=1,
                error=error,
            )
        )
    pairs = [
        PreferencePair(
            prompt=p.messages,
            chosen=[{"role": "assistant", "content": f"answer smol to {p.id}"}],
            rejected=[{"role": "assistant", "content": f"answer big to {p.id}"}],
            prompt_id=p.id,
            chosen_id=f"{p.id}/smol/0",
            rejected_id=f"{p.id}/big/0",
            chosen_policy="smol",
            rejected_policy="big",
            p_chosen=0.75,
            margin=0.5,
            p_chosen_raw_ab=0.8,
            p_chosen_raw_ba=0.7,
            judge_model="judge",
            judge_template_sha256="ab" * 32,
        )
        for p in prompts
    ]
    manifest = {
        "recipe": {"name": name, "judge": {"model": "judge"}},
        "counts": {"in": 3, "kept": 3},
        "calls": {"live": 0, "cached": 0, "failed": 0},
    }
    return commit_tables(store, name, {"prompts": prompts, "generations": gens, "pairs": pairs}, manifest)[0]


def pre_fix_version(store: Path, planted: str) -> str:
    """A version as rlaif made it before the fix: a failed generation whose error quotes the key."""
    return make_version(
        store, "prefix", error=f"AuthenticationError: Error code: 401 - Incorrect API key provided: {planted}"
    )


def plant_in_table(store: Path, table: str, column: str, planted: str) -> str:
    """A copy of a clean version with `planted` written into one cell of one table (the id is kept)."""
    version_id = make_version(store, name="copied")
    path = version_path(store, version_id) / f"{table}.parquet"
    data = pq.read_table(path)
    values = data.column(column).to_pylist()
    values[-1] = (
        json.loads(json.dumps(values[-1]).replace("Question", f"Question {planted}", 1))
        if not isinstance(values[-1], str)
        else f"{values[-1]} {planted}"
    )
    pq.write_table(
        data.set_column(
            data.schema.get_field_index(column), column, pa.array(values, type=data.schema.field(column).type)
        ),
        path,
    )
    return version_id


def plant_in_manifest(store: Path, planted: str) -> str:
    version_id = make_version(store, name="manifested")
    path = version_path(store, version_id) / "manifest.json"
    manifest = json.loads(path.read_text())
    manifest["recipe"]["judge"]["base_url"] = f"http://user:{planted}@example.com/v1"
    path.write_text(json.dumps(manifest, indent=2))
    return version_id


PLANTS = {
    "pre-fix error column (sk- key)": (
        lambda store, key: pre_fix_version(store, "sk-proj-" + secrets.token_hex(16)),
        "generations.parquet",
        "column 'error', row 6",
    ),
    "known key value in a nested column": (
        lambda store, key: plant_in_table(store, "pairs", "prompt", key),
        "pairs.parquet",
        "column 'prompt', row 2",
    ),
    "bearer token in a copied version's table": (
        lambda store, key: plant_in_table(store, "prompts", "messages", "Bearer " + secrets.token_hex(12)),
        "prompts.parquet",
        "column 'messages', row 2",
    ),
    "URL credentials in the manifest": (
        lambda store, key: plant_in_manifest(store, "pw" + secrets.token_hex(6)),
        "manifest.json",
        "line ",
    ),
}


@pytest.mark.parametrize("plant", list(PLANTS), ids=list(PLANTS))
def test_push_refuses_a_version_holding_a_key_and_uploads_nothing(tmp_path, hub, plant):
    key = random_key()
    make, file_name, where = PLANTS[plant]
    store = tmp_path / "store"
    version_id = make(store, key)
    env = {"HF_TOKEN": HUB_TOKEN, "HF_ENDPOINT": hub.url, "OPENAI_API_KEY": key, "HF_HOME": str(tmp_path / "hf")}
    # in a process: huggingface_hub reads HF_ENDPOINT at import, and the stand-in must be the Hub asked
    result = run_cli("datasets", "push", version_id, "--repo", REPO, "--store", str(store), env=env, process=True)
    assert_clean_failure(result, f"refusing to push {version_id}", file_name, where, "nothing was uploaded")
    assert key not in result.stderr
    assert hub.requests == [] and not (tmp_path / "hub" / "datasets").exists()


def test_push_of_a_clean_version_passes_the_scan(tmp_path, hub):
    from rlaif.publish.hub import push_version

    store = tmp_path / "store"
    version_id = make_version(store)
    assert push_version(store, version_id, REPO, endpoint=hub.url).pushed


# -- the pieces -------------------------------------------------------------------------------------


@pytest.mark.parametrize("header_seen", [True, False], ids=["header-in-exception", "no-header-in-exception"])
@pytest.mark.parametrize("status", [401, 403, 500])
def test_a_failed_call_to_a_real_server_is_scrubbed_by_the_key_the_recipe_names(
    tmp_path, key_server, monkeypatch, status, header_seen
):
    """The server quotes the key in its 401/403/500 body. Whether the client's exception still carries the
    request's Authorization header (some openai releases keep a request without it) must not matter: the key
    is known from `api_key_env`. `no-header-in-exception` makes the header invisible to the scrubber."""
    import rlaif.core.secrets
    from rlaif.backends.base import GenerateRequest
    from rlaif.backends.openai_compat import OpenAIBackend
    from rlaif.calls.cache import CallCache, CallStats
    from rlaif.calls.engine import RetryBudget, run_generate
    from rlaif.config.recipe import PolicySpec
    from rlaif.core.errors import RunIncomplete

    key = random_key()  # not key-shaped: only its origin (the variable the recipe names) identifies it
    monkeypatch.setenv(KEY_ENV, key)
    if not header_seen:
        monkeypatch.setattr(rlaif.core.secrets, "exception_secrets", lambda exc: [])
    spec = PolicySpec(
        name="p",
        backend="openai",
        base_url=key_server.base_url,
        model="m",
        api_key_env=KEY_ENV,
        max_retries=0,
        timeout_s=10,
    )
    backend = OpenAIBackend(spec)
    stats = CallStats(retry=RetryBudget(passes=1, budget=0, backoff_s=0))
    request = GenerateRequest(
        messages=(("user", f"Say hi. STATUS{status}"),), temperature=0.2, top_p=1.0, max_tokens=8, seed=0
    )
    raised = None
    try:
        [result] = run_generate(backend, [request], CallCache(tmp_path / "cache.sqlite"), stats, label="sampling p")
    except RunIncomplete as exc:  # 500 is transient: the run stops once its retries are spent
        raised = exc
    assert (raised is not None) == (status == 500)
    assert key_server.quoted == 1  # the server did quote the key the request carried
    texts = [stats.last_error] + ([str(raised)] if raised else [error_text(result, spec_secrets(spec))])
    for text in texts:
        assert key not in text and "***" in text and f"Error code: {status}" in text, text


@pytest.mark.slow
def test_scrubbing_holds_with_the_oldest_openai_and_httpx_pyproject_allows(tmp_path):
    """The run-level and call-level secret tests again, in a subprocess whose openai and httpx are the oldest
    releases pyproject.toml admits (installed from the index into a folder put first on the path)."""
    import subprocess
    import sys

    from tests.conftest import ROOT

    openai_version, httpx_version = lower_bound("openai"), lower_bound("httpx")
    target = tmp_path / "oldest"
    pins = [f"openai=={openai_version}", f"httpx=={httpx_version}.*", "httpcore==1.*", "distro"]
    installed = subprocess.run(
        [sys.executable, "-m", "pip", "install", "-q", "--no-deps", "--target", str(target), *pins],
        capture_output=True,
        text=True,
        timeout=300,
    )
    if installed.returncode != 0:
        pytest.skip(f"could not install {pins} from the package index: {installed.stderr[-500:]}")
    env = {**os.environ, "PYTHONPATH": str(target), "RLAIF_PROGRESS": "0"}
    versions = subprocess.run(
        [sys.executable, "-c", "import openai, httpx; print(openai.__version__, httpx.__version__)"],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    from packaging.version import Version

    found = versions.stdout.split()
    assert Version(found[0]) == Version(openai_version) and found[1].startswith(httpx_version), versions
    selected = "real_server_is_scrubbed or (leaks_the_key_nowhere and not cli)"
    ran = subprocess.run(
        [
            sys.executable,
            "-m",
            "pytest",
            "-q",
            "-p",
            "no:cacheprovider",
            "-p",
            "no:xdist",
            "tests/test_secrets.py",
            "-k",
            selected,
        ],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert ran.returncode == 0 and "7 passed" in ran.stdout, ran.stdout[-4000:] + ran.stderr[-2000:]


def test_error_text_scrubs_the_spec_key_and_url_credentials(monkeypatch):
    from rlaif.config.recipe import PolicySpec

    key, password = random_key(), random_key()
    monkeypatch.setenv(KEY_ENV, key)
    spec = PolicySpec(backend="openai", base_url="http://127.0.0.1:9/v1", api_key_env=KEY_ENV).model_copy(
        update={"base_url": f"http://me:{password}@h/v1"}
    )
    text = error_text(RuntimeError(f"failed with {key} at http://me:{password}@h/v1"), spec_secrets(spec))
    assert key not in text and password not in text and text == "RuntimeError: failed with *** at http://***@h/v1"


def test_manifest_records_a_url_without_userinfo_and_never_rewrites_by_value(tmp_path, monkeypatch):
    from rlaif.calls.cache import CallStats
    from rlaif.pipeline.manifest import RunTotals, manifest_of

    key = random_key()
    monkeypatch.setenv(KEY_ENV, key)
    recipe = Recipe.model_validate(
        recipe_dict("http://127.0.0.1:9/v1", write_prompts(tmp_path / "p.jsonl", ["Hi."]), model=key)
    )
    leaky = recipe.model_copy(
        update={"judge": recipe.judge.model_copy(update={"base_url": f"http://u:{key}@127.0.0.1:9/v1"})}
    )
    manifest = manifest_of(leaky, RunTotals(), {}, CallStats())
    assert manifest["recipe"]["judge"]["base_url"] == "http://127.0.0.1:9/v1"
    assert manifest["recipe"]["judge"]["model"] == key  # a field equal to the key is the user's, not a leak
    assert public_recipe({"a": [{"base_url": "https://x:y@h/v1", "model": "x:y"}]}) == {
        "a": [{"base_url": "https://h/v1", "model": "x:y"}]
    }


@pytest.mark.parametrize(
    "text",
    [
        "sk-proj-0123456789abcdefghij",
        "hf_" + "aBcDeFgHiJ" * 4,
        "Authorization: Bearer eyJ0eXAi.1234567890abc",
        "postgres://admin:hunter2@db:5432/x",
    ],
)
def test_key_like_strings_are_scrubbed_and_found(tmp_path, text):
    assert scrub_text(f"error: {text}!", []).count("***") == 1
    (tmp_path / "f.txt").write_text(f"ok\nleak {text}\n")
    assert [f.where for f in scan_for_secrets(tmp_path)] == ["line 2"]


@pytest.mark.parametrize(
    "text",
    [
        "a task-based skill",
        "Bearer authentication is a scheme",
        "hf_hub_download",
        "see http://127.0.0.1:8000/v1",
        "ssh://git@github.com/x",
        "sk-learn",
    ],
)
def test_ordinary_text_is_neither_scrubbed_nor_found(tmp_path, text):
    assert scrub_text(text, []) == text
    (tmp_path / "f.txt").write_text(text)
    assert scan_for_secrets(tmp_path) == []


def test_known_secrets_come_from_the_places_that_hold_them(monkeypatch):
    monkeypatch.setenv(KEY_ENV, "value-of-the-key")
    monkeypatch.setenv("HF_TOKEN", "hub-token-value")
    manifest = {
        "recipe": {
            "policies": [{"api_key_env": KEY_ENV}],
            "judge": {"api_key_env": "UNSET_VAR_X", "jury": [{"base_url": "http://a:b-secret@h"}]},
        }
    }
    found = manifest_secrets(manifest)
    assert {"value-of-the-key", "hub-token-value", "a:b-secret", "b-secret"} <= set(found)
    assert userinfo_secrets("http://h:80/v1") == [] and strip_userinfo("http://h:80/v1") == "http://h:80/v1"
    assert os.environ.get("UNSET_VAR_X") is None


def test_error_text_of_an_httpx_error_without_a_request_is_the_message():
    """httpx raises RuntimeError for the `.request` of an exception made without one (a timeout inside a client
    library); the scrubber reads around it instead of failing the call that only wanted its error text."""
    import httpx

    try:
        raise RuntimeError("wrapper") from httpx.ReadTimeout("timed out")
    except RuntimeError as exc:
        assert error_text(exc) == "RuntimeError: wrapper"
    assert error_text(httpx.ReadTimeout("timed out sk-proj-0123456789abcdefghij")) == "ReadTimeout: timed out ***"
