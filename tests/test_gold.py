"""Gold files: valid rows load; every bad row is an error naming the file, row and field, and the
CLI exits 2 before any model is loaded or anything is written to the store."""

import json

import pytest

from rlaif.core.errors import InputError
from rlaif.core.gold import load_gold
from tests.test_cli import run_cli

ROW = {"prompt": [{"role": "user", "content": "Say hi."}], "chosen": "Hi!", "rejected": "No."}


def write_rows(path, rows):
    path.write_text("".join((r if isinstance(r, str) else json.dumps(r)) + "\n" for r in rows))
    return path


def test_valid_rows_load_with_line_numbers_and_limit(tmp_path):
    path = write_rows(
        tmp_path / "g.jsonl", [ROW, "", {**ROW, "prompt": "Plain text prompt", "chosen": "", "source": "s"}, ROW]
    )
    pairs = load_gold(path)
    assert [p.row for p in pairs] == [1, 3, 4]  # blank line skipped, rows keep their line numbers
    assert pairs[1].prompt == [{"role": "user", "content": "Plain text prompt"}]
    assert pairs[1].chosen == "" and pairs[1].source == "s"  # an empty response is allowed
    assert [p.row for p in load_gold(path, limit=2)] == [1, 3]


@pytest.mark.parametrize(
    "rows, expected",
    [
        ([ROW, "{not json"], "g.jsonl, row 2: not valid JSON"),
        ([ROW, {"prompt": ROW["prompt"], "rejected": "x"}], "g.jsonl, row 2, field 'chosen': missing field"),
        ([{"chosen": "a", "rejected": "b"}], "g.jsonl, row 1, field 'prompt': missing field"),
        ([{**ROW, "rejected": 3}], "g.jsonl, row 1, field 'rejected': must be the response text"),
        ([{**ROW, "prompt": []}], "g.jsonl, row 1, field 'prompt': must be a non-empty list"),
        ([{**ROW, "prompt": [{"role": "user"}]}], "g.jsonl, row 1, field 'prompt': each message needs"),
        (
            [{**ROW, "prompt": [{"role": "user", "content": "q"}, {"role": "assistant", "content": "a"}]}],
            "field 'prompt': the last message must be from the user",
        ),
        ([{**ROW, "rejected": " Hi! "}], "row 1, field 'rejected': chosen and rejected are the same text"),
        (["[1, 2]"], "g.jsonl, row 1: each row must be a JSON object"),
        ([""], "g.jsonl: no rows in gold file"),
    ],
)
def test_bad_rows_name_file_row_and_field(tmp_path, rows, expected):
    path = write_rows(tmp_path / "g.jsonl", rows)
    with pytest.raises(InputError) as info:
        load_gold(path)
    assert expected in str(info.value)


def test_missing_file(tmp_path):
    with pytest.raises(InputError, match="none.jsonl: gold file not found"):
        load_gold(tmp_path / "none.jsonl")


@pytest.mark.parametrize(
    "rows, expected",
    [
        (None, "none.jsonl: gold file not found"),
        ([ROW, "{oops"], "row 2: not valid JSON"),
        ([ROW, ROW, {"prompt": "q", "chosen": "a"}], "row 3, field 'rejected': missing field"),
    ],
)
def test_cli_bad_gold_exits_2_and_writes_nothing(tmp_path, rows, expected):
    gold = tmp_path / "none.jsonl" if rows is None else write_rows(tmp_path / "g.jsonl", rows)
    store = tmp_path / "store"
    result = run_cli("eval-judge", "recipes/demo.yaml", "--gold", str(gold), "--store", str(store), "--json")
    assert result.returncode == 2, result.stderr
    assert expected in " ".join(result.stderr.split()), result.stderr
    assert str(gold) in result.stderr  # the message names the file
    assert result.stdout == "" and not store.exists()
