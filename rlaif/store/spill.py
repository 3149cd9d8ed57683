"""Row spills: a table written to disk part by part (one Arrow IPC file per appended batch of
rows) and read back part by part, so that a run never holds a whole table in memory.

The parts are read back in one schema, the one Arrow would infer from all rows at once
(`pa.Table.from_pylist`): column names from the very first row, types unified over every part
(a column that is all None in one part and text in another is text; missing struct fields
are filled with None). So a table written through a spill reads back exactly like one built
from the full list of rows, and hashes to the same version id.
"""

from __future__ import annotations

import shutil
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.ipc as ipc

from rlaif.core.errors import StoreError
from rlaif.store.space import out_of_space, space_error


class RowSpill:
    """Rows appended in batches under `folder`, each batch a part; parts can be keyed (e.g. by chunk)."""

    def __init__(self, folder: str | Path, name: str) -> None:
        self.folder = Path(folder)
        self.name = name
        self.parts: list[Path] = []
        self.schemas: list[pa.Schema] = []
        self.keys: dict[Any, int] = {}
        self.columns: list[str] | None = None
        self.rows = 0

    def append(self, rows: Sequence[dict], key: Any = None) -> None:
        """Write one batch of row dicts as a new part (nothing for an empty batch)."""
        if not rows:
            return
        if self.columns is None:
            self.columns = list(rows[0])
        elif list(rows[0]) != self.columns:  # from_pylist takes the column names from the first row
            rows = [{name: rows[0].get(name) for name in self.columns}, *rows[1:]]
        try:
            table = pa.Table.from_pylist(list(rows))
        except (pa.ArrowException, TypeError) as exc:
            raise StoreError(
                f"table {self.name}: rows {self.rows + 1}-{self.rows + len(rows)} cannot be stored ({exc}) - every row's fields need consistent types"
            ) from None
        path = self.folder / f"{self.name}.{len(self.parts):05d}.arrow"
        try:
            self.folder.mkdir(parents=True, exist_ok=True)
            with pa.OSFile(str(path), "wb") as sink, ipc.new_file(sink, table.schema) as writer:
                writer.write_table(table)
        except OSError as exc:
            path.unlink(missing_ok=True)
            if out_of_space(exc):
                raise space_error(self.folder, f"the run's {self.name} rows ({len(rows)} rows)") from None
            raise
        if key is not None:
            self.keys[key] = len(self.parts)
        self.parts.append(path)
        self.schemas.append(table.schema)
        self.rows += len(rows)

    def schema(self) -> pa.Schema | None:
        """The schema of the whole table (None when no row was written)."""
        if not self.schemas:
            return None
        try:
            unified = pa.unify_schemas(self.schemas, promote_options="permissive")
        except (pa.ArrowException, TypeError) as exc:
            raise StoreError(
                f"table {self.name}: a field changes type between rows ({exc}) - every row's fields need consistent types"
            ) from None
        return pa.schema([unified.field(name) for name in self.columns])

    def _read(self, index: int) -> pa.Table:
        with pa.OSFile(str(self.parts[index]), "rb") as source:
            return ipc.open_file(source).read_all()

    def tables(self, schema: pa.Schema | None = None) -> Iterator[pa.Table]:
        """Every part in order, in the whole table's schema (or `schema`)."""
        schema = schema or self.schema()
        for index in range(len(self.parts)):
            yield conform(self._read(index), schema, self.name)

    def rows_of(self, key: Any) -> list[dict]:
        """The rows appended under `key` (as written; [] when none were)."""
        index = self.keys.get(key)
        return [] if index is None else self._read(index).to_pylist()

    def column_values(self, columns: list[str], positions: Sequence[int]) -> list[tuple]:
        """Values of `columns` at row positions of the whole table (ascending or not)."""
        wanted = sorted(set(positions))
        found: dict[int, tuple] = {}
        start, cursor = 0, 0
        for index in range(len(self.parts)):
            table = self._read(index).select(columns)
            end = start + table.num_rows
            picked = []
            while cursor < len(wanted) and wanted[cursor] < end:
                picked.append(wanted[cursor])
                cursor += 1
            if picked:
                data = table.take([p - start for p in picked]).to_pylist()
                found.update({p: tuple(row[c] for c in columns) for p, row in zip(picked, data)})
            start = end
        return [found[p] for p in positions]

    def remove(self) -> None:
        for path in self.parts:
            path.unlink(missing_ok=True)
        self.parts, self.schemas, self.keys = [], [], {}


def chain(name: str, spills: Sequence[RowSpill]) -> RowSpill:
    """One table made of several spills' parts, in order (e.g. the generations of each policy)."""
    joined = RowSpill(spills[0].folder if spills else ".", name)
    for spill in spills:
        if spill.columns is not None and joined.columns is None:
            joined.columns = spill.columns
        joined.parts.extend(spill.parts)
        joined.schemas.extend(spill.schemas)
        joined.rows += spill.rows
    return joined


def conform(table: pa.Table, schema: pa.Schema, name: str = "table") -> pa.Table:
    """`table` in `schema`: columns in its order, missing ones as nulls, types promoted."""
    if table.schema == schema:
        return table
    try:
        arrays = [
            table.column(field.name).cast(field.type)
            if field.name in table.column_names
            else pa.nulls(table.num_rows, field.type)
            for field in schema
        ]
    except (pa.ArrowException, TypeError) as exc:
        raise StoreError(
            f"table {name}: rows do not fit one schema ({exc}) - every row's fields need consistent types"
        ) from None
    return pa.Table.from_arrays(arrays, schema=schema)


def remove_folder(folder: str | Path) -> None:
    shutil.rmtree(folder, ignore_errors=True)
