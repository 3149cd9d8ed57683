"""Backends: one list of names, each backend's own cache identity and its own recipe options."""

from __future__ import annotations

import dataclasses
import subprocess
import sys
import typing

import pytest

from rlaif.backends import BACKENDS
from rlaif.backends.base import GenerateRequest
from rlaif.calls.cache import call_key
from rlaif.calls.engine import backend_identity
from rlaif.config.recipe import ModelSpec, PolicySpec, parse_recipe
from rlaif.core.errors import RecipeError
from tests.badinput import GOOD, assert_clean_failure, run_cli, write_recipe
from tests.conftest import ROOT

REQUEST = GenerateRequest(messages=(("user", "Name a colour."),), temperature=0.7, top_p=1.0, max_tokens=16, seed=3)


def test_the_recipe_schema_takes_its_backend_names_from_the_one_list():
    assert typing.get_args(ModelSpec.model_fields["backend"].annotation) == tuple(BACKENDS)


@pytest.mark.parametrize(
    "spec, key",
    [
        # keys written by rlaif before each backend stated its own identity: existing caches must still be found
        (
            PolicySpec(backend="openai", base_url="http://127.0.0.1:8000/v1", model="m"),
            "26705c86237415297cc2af2b437a4094ad26c7bd4ef506861025c9650aea180f",
        ),
        (PolicySpec(), "46676731f7bbb1f4ac04e022bd32876e701e9b930c6bdb82c5d571a59b754e9d"),
    ],
    ids=["openai", "transformers"],
)
def test_cache_keys_of_existing_caches_do_not_change(spec, key):
    assert call_key("generate", backend_identity(spec), dataclasses.asdict(REQUEST), "") == key


def test_identity_never_holds_the_key_and_names_the_endpoint_only_for_the_api_backend():
    api = backend_identity(
        PolicySpec(backend="openai", base_url="http://127.0.0.1:8000/v1", model="m", api_key_env="MY_KEY")
    )
    assert api == {"backend": "openai", "model": "m", "dtype": "float32", "base_url": "http://127.0.0.1:8000/v1"}
    assert backend_identity(PolicySpec(backend="vllm", model="m", dtype="bfloat16")) == {
        "backend": "vllm",
        "model": "m",
        "dtype": "bfloat16",
    }


def test_the_api_backend_identity_imports_no_torch():
    code = (
        "import sys\nfrom rlaif.config.recipe import PolicySpec\nfrom rlaif.calls.engine import backend_identity\n"
        "backend_identity(PolicySpec(backend='openai', base_url='http://127.0.0.1:9/v1', model='m'))\n"
        "print(sorted(m for m in ('torch', 'transformers', 'vllm') if m in sys.modules))"
    )
    out = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, timeout=60)
    assert out.returncode == 0 and out.stdout.strip() == "[]", out.stdout + out.stderr


def recipe_with(policy: dict | None = None, judge: dict | None = None) -> dict:
    return {**GOOD, "policies": [{**GOOD["policies"][0], **(policy or {})}], "judge": judge or {}}


@pytest.mark.parametrize(
    "recipe, key, backend",
    [
        (recipe_with({"base_url": "http://127.0.0.1:8000/v1"}), "policies.0.base_url", "transformers"),
        (recipe_with({"max_concurrency": 8}), "policies.0.max_concurrency", "transformers"),
        (
            recipe_with({"backend": "openai", "base_url": "http://127.0.0.1:8000/v1", "batch_size": 4}),
            "policies.0.batch_size",
            "openai",
        ),
        (
            recipe_with({"backend": "openai", "base_url": "http://127.0.0.1:8000/v1", "dtype": "float16"}),
            "policies.0.dtype",
            "openai",
        ),
        (recipe_with({"backend": "vllm", "threads": 2}), "policies.0.threads", "vllm"),
        (recipe_with(judge={"timeout_s": 5}), "judge.timeout_s", "transformers"),
        (
            recipe_with(judge={"jury": [{"model": "m2", "api_key_env": "K"}]}),
            "judge.jury.0.api_key_env",
            "transformers",
        ),
        (
            recipe_with(
                judge={
                    "backend": "openai",
                    "base_url": "http://127.0.0.1:8000/v1",
                    "jury": [{"backend": "transformers", "max_retries": 2}],
                }
            ),
            "judge.jury.0.max_retries",
            "transformers",
        ),
    ],
    ids=[
        "base_url",
        "max_concurrency",
        "batch_size",
        "dtype",
        "threads",
        "judge-timeout",
        "jury-inherits",
        "jury-own-backend",
    ],
)
def test_an_option_of_another_backend_is_a_recipe_error_naming_the_field(recipe, key, backend):
    with pytest.raises(RecipeError) as caught:
        parse_recipe(recipe, "r.yaml")
    message = str(caught.value)
    assert key in message and f"does not apply to the {backend} backend" in message, message


def test_options_of_the_chosen_backend_and_defaults_are_accepted():
    recipe = parse_recipe(
        recipe_with(
            {
                "backend": "openai",
                "base_url": "http://127.0.0.1:8000/v1",
                "max_concurrency": 8,
                "timeout_s": 5,
                "max_retries": 1,
                "api_key_env": "K",
            },
            {
                "batch_size": 4,
                "threads": 1,
                "dtype": "float32",
                "jury": [{"model": "m2", "batch_size": 2}, {"backend": "vllm", "model": "m3", "dtype": "float16"}],
            },
        )
    )
    assert recipe.policies[0].max_concurrency == 8 and recipe.judge.jury[1].dtype == "float16"


def test_the_cli_refuses_the_option_cleanly(tmp_path):
    path = write_recipe(
        tmp_path, recipe_with({"backend": "openai", "base_url": "http://127.0.0.1:9/v1", "batch_size": 4})
    )
    store = tmp_path / "store"
    result = run_cli("run", str(path), "--store", str(store), "--no-prefect")
    assert_clean_failure(result, str(path), "policies.0.batch_size", "openai backend", store=store)


def test_the_engine_table_names_every_engine_field_of_the_recipe_and_the_class_of_each_backend():
    """rlaif.config.engines is the one table: each option is a ModelSpec field, each ModelSpec field besides
    backend/model belongs to some engine, and each backend class reads its options from the table."""
    from rlaif.backends import backend_class
    from rlaif.config.engines import ENGINE_FIELDS, ENGINE_OPTIONS

    assert set(ENGINE_FIELDS) == set(ModelSpec.model_fields) - {"backend", "model"}
    assert set(ENGINE_OPTIONS) == set(BACKENDS)
    for name in BACKENDS:
        assert backend_class(name).options == ENGINE_OPTIONS[name], name
