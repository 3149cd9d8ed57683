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
