"""One resolver of the store path for every command: --store, $RLAIF_STORE, the recipe's `store:`, data/store."""

from __future__ import annotations

import pytest

from rlaif.config.recipe import parse_recipe, recipe_file_store
from rlaif.config.settings import store_path
from rlaif.store.versions import commit_tables
from tests.badinput import GOOD, assert_clean_failure, run_cli, write_recipe

WITH_STORE = {**GOOD, "store": "from-recipe"}


def test_the_flag_then_the_environment_then_the_recipe_then_the_default(monkeypatch):
    recipe = parse_recipe(WITH_STORE)
    monkeypatch.delenv("RLAIF_STORE", raising=False)
    assert str(store_path(recipe, None)) == "from-recipe"
    assert str(store_path(parse_recipe(GOOD), None)) == "data/store" == str(store_path(None, None))
    monkeypatch.setenv("RLAIF_STORE", "from-env")
    assert str(store_path(recipe, None)) == "from-env"
    assert str(store_path(recipe, "from-flag")) == "from-flag"


def test_a_recipe_file_is_read_only_when_its_store_decides(tmp_path, monkeypatch):
    monkeypatch.delenv("RLAIF_STORE", raising=False)
    path = write_recipe(tmp_path, WITH_STORE)
    assert str(recipe_file_store(path, None)) == "from-recipe"
    assert str(recipe_file_store(tmp_path / "missing.yaml", "flag")) == "flag"  # never opened
    monkeypatch.setenv("RLAIF_STORE", "from-env")
    assert str(recipe_file_store(tmp_path / "missing.yaml")) == "from-env"


@pytest.fixture
def two_stores(tmp_path):
    recipe_store, env_store = tmp_path / "recipe-store", tmp_path / "env-store"
    in_recipe = commit_tables(recipe_store, "inrecipe", {"pairs": [{"a": 1}]}, {"recipe": {}})[0]
    in_env = commit_tables(env_store, "inenv", {"pairs": [{"a": 2}]}, {"recipe": {}})[0]
    recipe = write_recipe(tmp_path, {**GOOD, "store": str(recipe_store)})
    return recipe, env_store, in_recipe, in_env


def test_datasets_commands_honour_the_recipes_store(two_stores):
    recipe, env_store, in_recipe, in_env = two_stores
    env = {"RLAIF_STORE": "", "COLUMNS": "200"}  # an empty variable counts as unset
    listed = run_cli("datasets", "list", "--recipe", str(recipe), env=env)
    assert listed.returncode == 0 and in_recipe in listed.stdout and in_env not in listed.stdout, (
        listed.stdout + listed.stderr
    )
    shown = run_cli("datasets", "show", in_recipe, "--recipe", str(recipe), env=env)
    assert shown.returncode == 0 and f'"id": "{in_recipe}"' in shown.stdout, shown.stderr


def test_the_environment_and_the_flag_win_over_the_recipe_in_datasets_commands(two_stores):
    recipe, env_store, in_recipe, in_env = two_stores
    by_env = run_cli(
        "datasets", "list", "--recipe", str(recipe), env={"RLAIF_STORE": str(env_store), "COLUMNS": "200"}
    )
    assert in_env in by_env.stdout and in_recipe not in by_env.stdout
    by_flag = run_cli("datasets", "list", "--recipe", str(recipe), "--store", str(env_store), env={"COLUMNS": "200"})
    assert in_env in by_flag.stdout and in_recipe not in by_flag.stdout


@pytest.mark.parametrize(
    "content, needle", [(None, "file not found"), ("name: [", "not valid YAML")], ids=["missing", "bad-yaml"]
)
def test_a_bad_recipe_for_the_store_is_a_clean_error_naming_it(tmp_path, content, needle):
    path = tmp_path / "r.yaml"
    if content is not None:
        path.write_text(content)
    env = {"RLAIF_STORE": ""}
    assert_clean_failure(run_cli("datasets", "list", "--recipe", str(path), env=env), str(path), needle)


def test_help_names_the_recipe_option():
    result = run_cli("datasets", "list", "--help")
    assert result.returncode == 0 and "--recipe" in result.stdout and "RLAIF_STORE" in result.stdout
