"""Streaming commits: the same version ids as hashing every row at once, tables written part by part."""

from __future__ import annotations

import hashlib

import pyarrow as pa
import pytest

from rlaif.core.errors import StoreError
from rlaif.store.spill import RowSpill, chain
from rlaif.store.versions import commit_tables, folder_digest, read_table, version_path

MANIFEST = {"recipe": {"name": "t", "nested": {"b": [1, 2.5, None], "a": "é"}}, "parents": ["x-1"]}


def canonical_id(text: str) -> str:
    """The id of a version as the store documents it: sha256 of the canonical JSON text, 12 hex."""
    return hashlib.sha256(text.encode()).hexdigest()[:12]


def test_the_id_hashes_the_canonical_text_written_out_by_hand(tmp_path):
    version_id, _ = commit_tables(tmp_path / "store", "t", {"pairs": [{"a": 1}]}, {"recipe": {}})
    text = '{"parents":[],"recipe":{},"rows":{"feedback":[],"generations":[],"judgments":[],"pairs":[{"a":1}],"prompts":[],"rankings":[]}}'
    assert version_id == f"t-{canonical_id(text)}" == "t-7eb5207f3453"


KNOWN_ID = "49ac586dee8f"  # the id of ROWS / MANIFEST since ids were first hashed (rows of every table at once)


ROWS = {
    "pairs": [
        {
            "prompt": [{"role": "user", "content": "ünï ✓"}],
            "score": 0.1 + 0.2,
            "tags": [],
            "extra": None,
            "params": {"t": 1},
        },
        {
            "prompt": [{"role": "user", "content": "b"}, {"role": "assistant", "content": "c"}],
            "score": 1e-17,
            "tags": ["x"],
            "extra": "s",
            "params": {"t": 2.5, "m": 3},
        },
        {
            "prompt": [{"role": "user", "content": "d"}],
            "score": 3,
            "tags": ["y", "z"],
            "extra": None,
            "params": {"m": None},
        },
    ],
    "generations": [{"text": None, "n": i, "f": i / 7} for i in range(2500)],
    "prompts": [],
    "rankings": [
        {"scores": [], "ranks": [], "detail": "{}"},
        {"scores": [0.5, 1.0], "ranks": [2, 1], "detail": '{"a": 1}'},
    ],
}


def spill_of(tmp_path, name, rows, size):
    spill = RowSpill(tmp_path / "spill", name)
    for start in range(0, len(rows), size):
        spill.append(rows[start : start + size])
    return spill


@pytest.mark.parametrize("size", [1, 2, 1000, 10_000])
def test_streamed_commit_has_the_id_of_hashing_everything_at_once(tmp_path, size):
    expected = KNOWN_ID
    tables = {name: spill_of(tmp_path / str(size), name, rows, size) for name, rows in ROWS.items()}
    version_id, created = commit_tables(tmp_path / "store", "t", tables, MANIFEST)
    assert created and version_id == f"t-{expected}"
    folder = version_path(tmp_path / "store", version_id)
    assert folder_digest(folder, MANIFEST) == expected
    assert read_table(tmp_path / "store", version_id, "pairs") == pa.Table.from_pylist(ROWS["pairs"]).to_pylist()
    assert commit_tables(tmp_path / "store", "t", ROWS, MANIFEST) == (version_id, False)  # lists: the same id
    assert not [p for p in (tmp_path / "store" / "versions").iterdir() if p.name.startswith(".tmp-")]


def test_a_first_part_of_nulls_takes_the_type_of_later_parts(tmp_path):
    rows = [{"error": None, "p": None}] * 3 + [{"error": "boom", "p": {"a": 1.5}}]
    spill = spill_of(tmp_path, "pairs", rows, 3)
    version_id, _ = commit_tables(tmp_path / "store", "t", {"pairs": spill}, MANIFEST)
    assert version_id == commit_tables(tmp_path / "lists", "t", {"pairs": rows}, MANIFEST)[0]  # as one list of rows
    assert read_table(tmp_path / "store", version_id, "pairs")[-1] == {"error": "boom", "p": {"a": 1.5}}


def test_columns_come_from_the_first_row_and_chained_spills_keep_their_order(tmp_path):
    first = spill_of(tmp_path, "a", [{"x": 1, "y": "a"}, {"x": 2, "y": "b", "z": 9}], 1)
    second = spill_of(tmp_path, "b", [{"y": "c", "x": 3, "z": 1}], 1)
    version_id, _ = commit_tables(
        tmp_path / "store", "t", {"generations": chain("generations", [first, second])}, MANIFEST
    )
    rows = [{"x": 1, "y": "a"}, {"x": 2, "y": "b", "z": 9}, {"y": "c", "x": 3, "z": 1}]
    assert (
        version_id
        == commit_tables(
            tmp_path / "lists", "t", {"generations": rows[:1] + [{"x": 2, "y": "b"}, {"x": 3, "y": "c"}]}, MANIFEST
        )[0]
    )
    assert read_table(tmp_path / "store", version_id, "generations") == [
        {"x": 1, "y": "a"},
        {"x": 2, "y": "b"},
        {"x": 3, "y": "c"},
    ]


def test_empty_tables_and_conflicting_types(tmp_path):
    version_id, _ = commit_tables(tmp_path / "store", "t", {}, {"recipe": None})
    empty = '{"parents":[],"recipe":null,"rows":{"feedback":[],"generations":[],"judgments":[],"pairs":[],"prompts":[],"rankings":[]}}'
    assert version_id == f"t-{canonical_id(empty)}"
    spill = spill_of(tmp_path, "pairs", [{"a": 1}, {"a": "text"}], 1)
    with pytest.raises(StoreError, match="table pairs"):
        commit_tables(tmp_path / "store", "u", {"pairs": spill}, MANIFEST)
    assert [p.name for p in (tmp_path / "store" / "versions").iterdir()] == [version_id]  # nothing half-written


def test_rows_of_a_key_and_column_values(tmp_path):
    spill = RowSpill(tmp_path, "c")
    spill.append([{"id": "a", "n": 1}, {"id": "b", "n": 2}], key=0)
    spill.append([], key=1)
    spill.append([{"id": "c", "n": 3}], key=2)
    assert spill.rows_of(1) == [] and spill.rows_of(2) == [{"id": "c", "n": 3}]
    assert spill.column_values(["id"], [2, 0]) == [("c",), ("a",)]
