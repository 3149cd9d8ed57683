import pytest

from rlaif.config.recipe import load_recipe, parse_recipe
from rlaif.core.errors import RecipeError

BASE = {"name": "t", "policies": [{"name": "p", "model": "smollm2-135m"}]}


def test_demo_recipe_is_valid():
    recipe = load_recipe("recipes/demo.yaml")
    assert recipe.judge.debias and recipe.filters.consistency and recipe.filters.drop_truncated
    assert recipe.filters.min_margin > 0


def test_unknown_key_names_file_key_and_suggests_fix():
    with pytest.raises(RecipeError) as info:
        parse_recipe({**BASE, "judge": {"backnd": "openai"}}, "r.yaml")
    message = str(info.value)
    assert "r.yaml: judge.backnd: unknown key" in message and "did you mean 'backend'" in message


def test_unknown_key_in_list_item():
    with pytest.raises(RecipeError, match=r"policies.0.temprature: unknown key"):
        parse_recipe({**BASE, "policies": [{"temprature": 1}]}, "r.yaml")


def test_bad_value_and_missing_key():
    with pytest.raises(RecipeError, match=r"judge.backend: .*got 'gpt'"):
        parse_recipe({**BASE, "judge": {"backend": "gpt"}})
    with pytest.raises(RecipeError, match=r"name: required key is missing"):
        parse_recipe({"policies": BASE["policies"]})


def test_missing_file_and_bad_yaml(tmp_path):
    with pytest.raises(RecipeError, match="file not found"):
        load_recipe(tmp_path / "nope.yaml")
    bad = tmp_path / "bad.yaml"
    bad.write_text("name: [unclosed\n")
    with pytest.raises(RecipeError, match="not valid YAML"):
        load_recipe(bad)
