"""Bad input: a clear error, exit code 2, nothing written to the store."""

import pytest
import yaml

from tests.badinput import GOOD, assert_clean_failure, run_cli


@pytest.mark.parametrize(
    "recipe, prompt_rows, expected",
    [
        ({**GOOD, "polices": []}, None, "polices: unknown key - did you mean 'policies'?"),
        ({**GOOD, "prompts": {"path": "missing.jsonl"}}, None, "missing.jsonl: prompt file not found"),
        (GOOD, '{"prompt": "fine"}\n{"prompt": 3}\n', "row 2, field 'prompt'"),
        (
            {**GOOD, "judge": {"template": "nope.j2"}},
            '{"prompt": "fine"}\n',
            "nope.j2: judge.template: template file not found",
        ),
    ],
)
def test_bad_input_exits_2_and_writes_nothing(tmp_path, recipe, prompt_rows, expected):
    if prompt_rows is not None:
        (tmp_path / "prompts.jsonl").write_text(prompt_rows)
        recipe = {**recipe, "prompts": {"path": str(tmp_path / "prompts.jsonl")}}
    path = tmp_path / "recipe.yaml"
    path.write_text(yaml.safe_dump(recipe))
    store = tmp_path / "store"
    result = run_cli("run", str(path), "--store", str(store))
    assert result.returncode == 2, result.stderr
    assert expected in " ".join(result.stderr.split()), result.stderr
    assert not store.exists()


def test_missing_recipe_file(tmp_path):
    result = run_cli("run", str(tmp_path / "none.yaml"), "--store", str(tmp_path / "s"))
    assert result.returncode == 2 and "file not found" in result.stderr


def test_a_folder_given_as_the_recipe_is_named_as_a_folder(tmp_path):
    """Issue 25 item 8: a folder where a file is expected is not 'not found'."""
    result = run_cli("run", str(tmp_path), "--store", str(tmp_path / "s"))
    assert_clean_failure(result, f"{tmp_path}: is a folder, not a recipe file", "check the path")


def test_every_command_has_help_with_an_example():
    for args in (["run"], ["datasets", "list"], ["datasets", "show"]):
        result = run_cli(*args, "--help")
        assert result.returncode == 0 and "Example:" in result.stdout
