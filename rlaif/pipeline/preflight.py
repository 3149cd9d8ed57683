"""Checks before a run: everything that can be validated is, before Prefect starts or the store is written.

    check_run(recipe, store, limit, chunk_size) -> the chunk size
        the prompt file (every row), the chunk size, the judge's templates and principles, the
        decontamination file; each policy, the judge and every jury member: its backend installed,
        its local model (alias or folder; weights are never downloaded at run time) or its API key;
        the store path (a writable folder, or one that can be made); then every endpoint with one
        cheap request: GET {base_url}/models, else a 1-token chat completion when that is not a
        model list. An endpoint shared by several models is checked once; all are checked at once.

A failed check raises an RlaifError (the CLI prints it and exits 2) naming the policy or judge,
the URL and the HTTP status or network error. Answers that only say "busy" (429, 5xx) pass:
during a run such failures are retried and counted, not fatal.
"""

from __future__ import annotations

import importlib
import importlib.util
import os
import threading
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import urlsplit

from rlaif.config.recipe import ModelSpec, Recipe
from rlaif.core.errors import BackendError, StoreError
from rlaif.core.secrets import display_url

ENDPOINT_TIMEOUT_S = 5.0
TRANSIENT_STATUS = {408, 409, 425, 429, 500, 502, 503, 504}
STORE_FIX = "choose another --store (or $RLAIF_STORE, or the recipe's `store:`)"


@dataclass
class Endpoint:
    """One OpenAI-compatible endpoint to probe: model name -> labels of the specs that use it."""

    url: str
    key: str
    key_env: str
    models: dict[str, list[str]] = field(default_factory=dict)

    @property
    def labels(self) -> list[str]:
        return [label for labels in self.models.values() for label in labels]


def check_run(
    recipe: Recipe,
    store: str | Path,
    limit: int | None = None,
    chunk_size: int | None = None,
    preload: tuple[str, ...] = (),
    source: str = "<recipe>",
) -> int:
    """Validate a whole run without writing anything; returns the chunk size to use. `source`: the recipe's file,
    for messages.

    `preload`: modules the run will import (e.g. openai, the Prefect flow), imported while the
    endpoints answer their probe, so the wait for the network is not added to the imports'."""
    from rlaif.core.inputs import validate_prompts
    from rlaif.judges.stage import validate_judge
    from rlaif.pipeline.incremental import check_parent
    from rlaif.pipeline.run import chunk_size_setting
    from rlaif.store.prompt_sources import resolve_prompts

    most = limit or recipe.prompts.limit
    validate_prompts(resolve_prompts(recipe.prompts, store, most).file, recipe.prompts.system, most)
    size = chunk_size_setting(chunk_size, recipe.api_only())
    validate_judge(recipe.judge, recipe.samples_per_prompt * len(recipe.policies), source)
    if recipe.judge.gold:  # read (and converted) now, not after the run has paid for its calls
        from rlaif.judges.evaluate import load_gold_source

        load_gold_source(recipe.judge.gold, store, recipe.judge.gold_limit)
    if recipe.filters.decontaminate is not None:
        from rlaif.quality.decontam import read_eval_texts

        read_eval_texts(recipe.filters.decontaminate.path)
    endpoints = check_models(model_specs(recipe), store)
    check_store(Path(store))
    check_parent(recipe, store)  # `parent:` names a version of the store made by a compatible recipe
    importing = _import_in_background(preload) if endpoints and preload else None
    check_endpoints(endpoints)
    if importing is not None:
        importing.join()
    check_execution(recipe)
    return size


def check_execution(recipe: Recipe) -> None:
    """`execution:` engine ray: Ray installed, its cluster reachable, no run-wide budget (rlaif.pipeline.executors_ray); nothing for engine local."""
    if recipe.execution.engine == "ray":
        from rlaif.pipeline.executors_ray import preflight

        preflight(recipe)


def _import_in_background(modules: tuple[str, ...]) -> threading.Thread:
    """Import `modules` in a thread (a module that fails to import is left to the run to report)."""

    def load() -> None:
        for name in modules:
            try:
                importlib.import_module(name)
            except Exception:  # noqa: BLE001 - the run imports it again and reports the error there
                return

    thread = threading.Thread(target=load, name="rlaif-preload", daemon=True)
    thread.start()
    return thread


def check_judge(recipe: Recipe, store: str | Path) -> None:
    """What `rlaif eval-judge` needs, checked before any model loads: the judge's templates, its
    models, keys and endpoints (each jury member's), and the store path."""
    from rlaif.judges.stage import validate_judge

    validate_judge(recipe.judge)
    endpoints = check_models(judge_specs(recipe), store)
    check_store(Path(store))
    check_endpoints(endpoints)


def model_specs(recipe: Recipe) -> list[tuple[str, ModelSpec]]:
    """(label, spec) of every policy, then `judge_specs`."""
    return [*((f"policy '{p.name}'", p) for p in recipe.policies), *judge_specs(recipe)]


def judge_specs(recipe: Recipe) -> list[tuple[str, ModelSpec]]:
    """(label, spec) of the judge or of each jury member (a member inherits the judge's settings it
    does not set, as in `rlaif.judges.jury.members_of`)."""
    judge = recipe.judge
    if not judge.jury:
        return [("judge", judge)]
    specs: list[tuple[str, ModelSpec]] = []
    for n, member in enumerate(judge.jury):
        update = member.model_dump(exclude_unset=True, exclude={"name", "template"})
        label = f"judge.jury.{n}" + (f" '{member.name}'" if member.name else "")
        specs.append((label, judge.model_copy(update={**update, "jury": []})))
    return specs


def check_models(specs: list[tuple[str, ModelSpec]], store: str | Path | None = None) -> list[Endpoint]:
    """Backends installed, local models present, keys set; returns the endpoints to probe."""
    endpoints: dict[tuple[str, str], Endpoint] = {}
    for label, spec in specs:
        try:
            endpoint = check_model(spec, store)
        except BackendError as exc:
            raise BackendError(f"{label} ({spec.backend} backend, model '{spec.model}'): {exc}") from None
        if endpoint is not None:
            known = endpoints.setdefault((endpoint.url, endpoint.key), endpoint)
            known.models.setdefault(spec.model, []).append(label)
    return list(endpoints.values())


def check_model(spec: ModelSpec, store: str | Path | None = None) -> Endpoint | None:
    """One model's settings; its endpoint when it is reached over HTTP. A trained model id is looked up in `store`."""
    from rlaif.backends import backend_class

    backend_class(spec.backend).check_installed(
        spec
    )  # vllm: vLLM imports here, or its environment exists (rlaif.backends.vllm_server)
    if spec.backend != "openai":
        from rlaif.weights.resolve import check_local_model

        check_local_model(spec.model, store)
        return None
    from rlaif.backends.endpoints import api_key, endpoint_url

    url = endpoint_url(spec)
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise BackendError(
            f"base_url '{display_url(url)}' is not an http(s) URL - use the API root, e.g. http://127.0.0.1:8000/v1"
        )
    return Endpoint(url.rstrip("/"), api_key(spec), spec.api_key_env)


def check_store(store: Path) -> None:
    """The store is a writable folder, or can be made as one; nothing is created here."""
    folder = store.absolute()
    existing = folder
    while not existing.exists() and not existing.is_symlink() and existing != existing.parent:
        existing = existing.parent
    if not existing.is_dir():
        raise StoreError(f"store {store}: {existing} is not a folder (a file is in the way) - {STORE_FIX}")
    if not os.access(existing, os.W_OK | os.X_OK):
        raise StoreError(
            f"store {store}: {existing} is not writable (read-only folder or file system) - {STORE_FIX}, or fix its permissions"
        )
    if existing != folder:
        return
    for name in (".runs", "versions", "reports"):
        inside = folder / name
        if inside.exists() and not (inside.is_dir() and os.access(inside, os.W_OK | os.X_OK)):
            raise StoreError(f"store {store}: {inside} is not a writable folder - remove it, or {STORE_FIX}")
    cache = folder / "cache.sqlite"
    if cache.exists() and not (cache.is_file() and os.access(cache, os.R_OK | os.W_OK)):
        raise StoreError(
            f"store {store}: the request cache {cache} is not a writable file - fix its permissions, or {STORE_FIX}"
        )


def check_endpoints(endpoints: list[Endpoint]) -> None:
    """One cheap request per endpoint, all at once (about 5 s at most); every problem is reported."""
    if not endpoints:
        return
    with ThreadPoolExecutor(max_workers=min(8, len(endpoints))) as pool:
        problems = [p for p in pool.map(probe, endpoints) if p]
    if problems:
        raise BackendError("\n".join(problems))


def probe(endpoint: Endpoint) -> str | None:
    """None when the endpoint answers like an OpenAI-compatible API for each of its models, else what is wrong.

    GET /models, then a 1-token chat completion for each model that it does not list (or for
    every model, when it gives no model list): a server may list no models, or serve any name.
    """
    import httpx2 as httpx  # the openai client's HTTP library: imported once for the probe and the run

    headers = {"Authorization": f"Bearer {endpoint.key}"}
    problems = []
    try:
        with httpx.Client(timeout=ENDPOINT_TIMEOUT_S, follow_redirects=True, headers=headers) as client:
            listed = client.get(f"{endpoint.url}/models")
            if listed.status_code in TRANSIENT_STATUS:
                return None  # busy, not wrong: the run retries and counts such failures
            if listed.status_code in (401, 403):
                return _refused(endpoint, endpoint.labels, "GET /models", listed)
            served = _served(listed)
            for model, labels in endpoint.models.items():
                if served is None or model not in served:
                    problems.append(_try_model(client, endpoint, model, labels, listed, served))
    except httpx.HTTPError as exc:
        reason = f"{type(exc).__name__}: {exc}" if str(exc) else type(exc).__name__
        return f"{' and '.join(endpoint.labels)}: cannot reach {display_url(endpoint.url)} ({reason}) - check base_url and that the server is running"
    return "\n".join(p for p in problems if p) or None


def _try_model(
    client, endpoint: Endpoint, model: str, labels: list[str], listed, served: list[str] | None
) -> str | None:
    """One 1-token chat completion with `model`; None when it works (or the server is only busy)."""
    chat = client.post(
        f"{endpoint.url}/chat/completions",
        json={"model": model, "messages": [{"role": "user", "content": "Hi"}], "max_tokens": 1},
    )
    if _answers(chat, "choices") or chat.status_code in TRANSIENT_STATUS | {400, 422}:
        return None  # 400/422: the API is there; a request it refuses fails (and is counted) in the run
    who, url = " and ".join(labels), display_url(endpoint.url)
    if chat.status_code in (401, 403):
        return _refused(endpoint, labels, "POST /chat/completions", chat)
    if served is not None:
        listing = ", ".join(served[:10]) + (", ..." if len(served) > 10 else "")
        return f"{who}: model '{model}' is not served at {url} (POST /chat/completions: {_status(chat)}) - it serves: {listing or 'no model'}; fix `model:`"
    hint = (
        f" - did you mean {url}/v1?"
        if not url.endswith("/v1")
        else f" - check base_url, and that model '{model}' is served there"
    )
    return (
        f"{who}: {url} does not answer as an OpenAI-compatible API (GET /models: {_status(listed)}, "
        f"POST /chat/completions: {_status(chat)}); base_url must be the API root, which usually ends in /v1{hint}"
    )


def _refused(endpoint: Endpoint, labels: list[str], asked: str, response) -> str:
    has_key = bool(os.environ.get(endpoint.key_env))
    key = (
        f"the API key in ${endpoint.key_env}"
        if has_key
        else f"a request without a key (${endpoint.key_env} is not set)"
    )
    return f"{' and '.join(labels)}: {display_url(endpoint.url)} refused {key} ({asked}: {_status(response)}) - set {endpoint.key_env} to a valid key"


def _served(response) -> list[str] | None:
    """The model ids of an OpenAI model list, or None when the answer is not one."""
    if not _answers(response, "data") or not isinstance(response.json()["data"], list):
        return None
    return [str(item.get("id")) for item in response.json()["data"] if isinstance(item, dict)]


def _answers(response, field: str) -> bool:
    """A 2xx JSON object holding `field` (a model list's `data`, a completion's `choices`)."""
    if not response.is_success:
        return False
    try:
        body = response.json()
    except ValueError:
        return False
    return isinstance(body, dict) and field in body


def _status(response) -> str:
    if response.is_success:
        return f"HTTP {response.status_code}, not the expected JSON"
    return f"HTTP {response.status_code} {response.reason_phrase}".rstrip()
