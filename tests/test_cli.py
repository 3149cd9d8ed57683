"""Bad input: a clear error, exit code 2, nothing written to the store."""

import re

import pytest
import yaml

from tests.badinput import GOOD, assert_clean_failure, run_cli, write_recipe


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


def example_lines(command) -> list[str]:
    """The `rlaif ...` commands of a command's help after "Example:", a line ending in a backslash joined to the next."""
    text = (command.help or "").split("Example:", 1)
    if len(text) < 2:
        return []
    joined = re.sub(r"\\\n\s*", "", text[1])
    return [line.strip().split("  #")[0].strip() for line in joined.splitlines() if line.strip().startswith("rlaif ")]


def test_every_help_example_line_fits_80_columns():
    """Issue 26: a help example wider than the terminal wraps mid-command (the rest of it looks like another line);
    at 80 columns rich's help shows 76 characters of a line. Longer commands go on over backslash-ended lines."""
    wide = [
        (" ".join(path), line.strip())
        for path, command in commands()
        if "Example:" in (command.help or "")
        for line in (
            "Example:" + command.help.split("Example:", 1)[1]
        ).splitlines()  # an example on its line counts it
        if len(line.strip()) > 76
    ]
    assert wide == []


def commands() -> list[tuple[list[str], object]]:
    """Every command of `rlaif` with the words that reach it (["datasets", "list"], ...)."""
    import typer.main

    from rlaif.cli import app

    found, todo = [], [([], typer.main.get_command(app))]
    while todo:
        path, command = todo.pop()
        subcommands = getattr(command, "commands", None)
        if subcommands:
            todo += [([*path, name], sub) for name, sub in subcommands.items()]
        else:
            found.append((path, command))
    return found


def test_every_help_example_parses_and_its_ids_have_the_shape_real_ids_have():
    """Issue 26 item 5: an example that a user copies runs as far as the parser; a model id in it looks like
    the ids `rlaif train` makes (`<dataset name>-<algorithm>-<12 hex>`, e.g. demo-dpo-60f44a1e922d)."""
    import shlex

    from rlaif.core.names import is_version_id
    from rlaif.training import ALGORITHMS

    model_id = re.compile(rf"^[a-z0-9][a-z0-9._-]*-(?:{'|'.join(ALGORITHMS)})-[0-9a-f]{{12}}$")
    checked = 0
    for path, command in commands():
        for line in example_lines(command):
            words = shlex.split(line)[1:]
            assert words[: len(path)] == path, f"{line!r} is not an example of rlaif {' '.join(path)}"
            command.make_context(" ".join(path), words[len(path) :])  # click.UsageError when it does not parse
            checked += 1
            ids = [value for flag, value in zip(words, words[1:]) if flag == "--model" and is_version_id(value)]
            if path[:1] == ["models"] and len(words) > len(path) and is_version_id(words[len(path)]):
                ids.append(words[len(path)])  # models show|lineage|report ID
            for value in ids:
                assert model_id.match(value), f"{line!r}: {value} is not shaped like a model id"
    assert checked >= 25


def test_lists_name_their_store_keep_ids_whole_and_speak_json(tmp_path):
    """Issue 26 items 4 and 8: the store read and why; ids never cut, even at 60 columns; --json; a store
    that is not there is "no store at PATH", not an empty one."""
    import json

    from rlaif.store.versions import commit_tables

    store = tmp_path / "store"
    missing = run_cli("datasets", "list", "--store", str(store))
    assert_clean_failure(missing, f"no store at {store} (--store)", "rlaif run")
    shown = run_cli("datasets", "show", "demo-0123456789ab", "--store", str(store))
    assert_clean_failure(shown, f"no store at {store} (--store)")
    name = "a-long-dataset-name-for-a-narrow-terminal"
    version, _ = commit_tables(
        store,
        name,
        {"pairs": [{"prompt_id": "p0", "chosen": "a", "rejected": "b"}]},
        {"recipe": {"name": name}, "counts": {"prompts": 3, "in": 6, "kept": 1}},
    )
    listed = run_cli("datasets", "list", "--store", str(store), env={"COLUMNS": "60"})
    assert listed.returncode == 0 and f"store: {store} (--store)" in listed.stdout
    assert version in listed.stdout and "\u2026" not in listed.stdout  # whole, on one line; no cell cut
    as_json = json.loads(run_cli("datasets", "list", "--store", str(store), "--json").stdout)
    assert as_json["store"] == str(store) and [row["id"] for row in as_json["versions"]] == [version]
    # the walkthrough: a `prompts` column that showed the candidate pairs
    assert (as_json["versions"][0]["prompts"], as_json["versions"][0]["candidate_pairs"]) == (3, 6)
    # show, lineage and diff name the store on stderr (stdout stays clean JSON); show takes --json like every show
    for args in (["datasets", "show", version, "--json"], ["datasets", "lineage", version, "--json"]):
        result = run_cli(*args, "--store", str(store))
        assert result.returncode == 0 and f"store: {store} (--store)" in result.stderr, (args, result.stderr)
        json.loads(result.stdout)
    by_env = run_cli("datasets", "list", env={"RLAIF_STORE": str(store)})
    assert f"store: {store} ($RLAIF_STORE)" in by_env.stdout
    recipe = write_recipe(tmp_path, {**GOOD, "store": str(store)})
    by_recipe = run_cli("datasets", "list", "--recipe", str(recipe), env={"RLAIF_STORE": None})
    assert f"store: {store} (`store:` in {recipe})" in " ".join(by_recipe.stdout.split())
    models = json.loads(run_cli("models", "list", "--store", str(store), "--json").stdout)
    assert models == {"store": str(store), "models": []}
