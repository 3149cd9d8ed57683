"""The README says what the code does: its demo recipe is the shipped one, and it names every table of a version."""

from __future__ import annotations

import re

from rlaif.store.versions import TABLES
from tests.conftest import ROOT


def test_readme_recipe_example_is_the_shipped_demo():
    readme = (ROOT / "README.md").read_text()
    block = re.search(r"The demo, `recipes/demo.yaml`, as shipped:\n\n```yaml\n(.*?)```", readme, re.S)
    assert block, "the README must show recipes/demo.yaml as shipped"
    assert block[1] == (ROOT / "recipes/demo.yaml").read_text()


def test_readme_lists_every_table_of_a_version():
    readme = (ROOT / "README.md").read_text()
    section = readme[readme.index("## A dataset version") :]
    for table in TABLES:
        assert f"`{table}.parquet`" in section, table


def test_the_recipe_reference_is_current_and_covers_every_field():
    """Issue 26 item 9: docs/recipe.md is made from the pydantic models (`make docs`); this fails when a field
    changed and the file was not made again."""
    from rlaif.config.reference import SECTIONS, recipe_reference

    assert (ROOT / "docs/recipe.md").read_text() == recipe_reference(), "run `make docs` and commit docs/recipe.md"
    text = recipe_reference()
    for _, model, _ in SECTIONS:
        for name in model.model_fields:
            assert f"| `{name}` |" in text, name


def test_every_shipped_recipe_loads_and_the_reference_examples_are_shipped_recipes():
    from rlaif.config.recipe import load_recipe
    from rlaif.loop.spec import load_loop

    for path in sorted((ROOT / "recipes").glob("*.yaml")):
        load_loop(path) if "\niterate:" in path.read_text() else load_recipe(path)
    reference = (ROOT / "docs/recipe.md").read_text()
    shipped = (ROOT / "recipes/openai.yaml").read_text()
    example = re.search(r"\(`recipes/openai.yaml`\):\n\n```yaml\n(.*?)```", reference, re.S)[1]
    body = "".join(line for line in shipped.splitlines(keepends=True) if not line.startswith("#"))
    assert example == body


def test_examples_need_nothing_beside_the_checkout():
    """Issue 26 item 7: the recipes, the CLI's help and the user docs use files a fresh clone has; the shipped gold
    sample (data/gold-sample.jsonl, written by the project) is a valid gold file that "pick the longer" does not ace."""
    from rlaif.cli import app  # noqa: F401 - the help texts below
    from rlaif.core.gold import load_gold
    from tests.test_cli import commands

    for path in [*sorted((ROOT / "recipes").rglob("*.yaml")), ROOT / "docs/training.md", ROOT / "docs/operations.md"]:
        assert "../shared" not in path.read_text(), path
    for path in [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]:  # a command a user copies
        commands_in = [
            line
            for line in path.read_text().splitlines()
            if re.match(r"\s*(\$ )?(rlaif|make|\.venv/bin/rlaif) ", line)
        ]
        assert not [line for line in commands_in if "../shared" in line], path
    for _, command in commands():
        assert "../shared" not in (command.help or ""), command.name
        for param in command.params:
            assert "../shared" not in (getattr(param, "help", None) or ""), (command.name, param.name)
    for path in re.findall(r"(?<![\w/])(data/[\w.-]+\.jsonl)", (ROOT / "README.md").read_text()):
        assert (ROOT / path).exists(), path  # the data files the README's commands read
    pairs = load_gold(ROOT / "data/gold-sample.jsonl")
    assert len(pairs) == 40
    assert 15 <= sum(len(p.chosen) < len(p.rejected) for p in pairs) <= 25  # the longer one is not always better
