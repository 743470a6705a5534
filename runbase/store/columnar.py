"""History rows as columns: one Parquet segment from rows' JSON text, and rows back from it.

A segment's columns, by position: the rows' dense index, step, key-set id and shape, then one
column per top-level key of the rows, in the order the keys first appear. A key's column has
the one type all its values share (bool, int64, float64 with NaN and infinities, string) and
else holds each value's JSON text, so a key whose type changes between rows, a nested value, a
list or an integer past 64 bits comes back as it was logged. A row's shape is the list of its
keys in their logged order: a key the shape names whose column is null held None; a key it
does not name was not in the row. Names and kinds of the key columns and the shapes are kept in
the Parquet metadata, so any key, even one named like an internal column, is a column.
"""

from __future__ import annotations

import io
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import orjson
import pyarrow as pa
import pyarrow.parquet as pq

from runbase.documents import decode_row, decode_value, encode_row

INTERNAL = ("_runbase_idx", "_runbase_step", "_runbase_key_set", "_runbase_shape")
METADATA_KEY = b"runbase"
FORMAT = "runbase-segment/1"
BOOL, INT, FLOAT, STR, JSON = "bool", "int", "float", "str", "json"
ARROW_TYPES = {BOOL: pa.bool_(), INT: pa.int64(), FLOAT: pa.float64(), STR: pa.string()}
INT64 = (-(2**63), 2**63 - 1)
ROW_GROUP = 8192


@dataclass(frozen=True)
class EncodedSegment:
    """A segment's Parquet bytes and what the store keeps beside them."""

    data: bytes
    first_idx: int
    last_idx: int
    first_step: int
    last_step: int
    row_count: int
    key_set_counts: dict[int, int]


@dataclass(frozen=True)
class Rows:
    """A segment decoded: its rows' indexes, steps and key sets as arrays, and each row as a
    dict (built on demand, a range at a time)."""

    idx: np.ndarray
    step: np.ndarray
    key_set: np.ndarray
    shape: np.ndarray
    shapes: tuple[tuple[tuple[str, int], ...], ...]  # per shape: (key, column) in row order
    columns: tuple[np.ndarray, ...]  # typed where a column has no nulls, else of objects

    def __len__(self) -> int:
        return len(self.idx)

    def dicts(
        self, start: int, stop: int, picked: np.ndarray | None = None
    ) -> list[dict[str, Any]]:
        """The rows at positions ``start``..``stop`` (or at the positions ``picked``)."""
        positions = np.arange(start, stop) if picked is None else picked
        shapes = self.shape[positions]
        kinds = np.unique(shapes)
        if len(kinds) == 1 and picked is None:  # one shape: whole column slices
            return self._of_shape(int(kinds[0]), slice(start, stop))
        found: list[Any] = [None] * len(positions)
        for kind in kinds.tolist():
            where = np.flatnonzero(shapes == kind)
            for at, row in zip(where.tolist(), self._of_shape(kind, positions[where]), strict=True):
                found[at] = row
        return found

    def _of_shape(self, shape: int, rows: slice | np.ndarray) -> list[dict[str, Any]]:
        keys = [key for key, _ in self.shapes[shape]]
        values = [self.columns[column][rows].tolist() for _, column in self.shapes[shape]]
        if not keys:
            return [{} for _ in range(len(self.shape[rows]))]
        return [dict(zip(keys, row, strict=True)) for row in zip(*values, strict=True)]

    def texts(self, rows: list[dict[str, Any]]) -> list[str]:
        """Rows as JSON text, NaN and infinities as tokens (as the hot tier keeps them)."""
        return [encode_row(row) for row in rows]


def encode(rows: Sequence[tuple[int, int, int, str]]) -> EncodedSegment:
    """A segment of (idx, step, key set id, row text) rows, given in index order."""
    decoded = [decode_row(text) for _, _, _, text in rows]
    shapes: dict[tuple[str, ...], int] = {}
    row_shapes = np.array([shapes.setdefault(tuple(row), len(shapes)) for row in decoded],
                          np.int32)  # fmt: skip
    names = {key: n for n, key in enumerate(dict.fromkeys(k for shape in shapes for k in shape))}
    columns: list[list[Any]] = [[None] * len(decoded) for _ in names]
    for shape, number in shapes.items():
        if not shape:
            continue
        where = np.flatnonzero(row_shapes == number).tolist()
        whole = len(where) == len(decoded)
        of_shape = decoded if whole else [decoded[i] for i in where]
        by_key = zip(*(row.values() for row in of_shape), strict=True)
        for key, values in zip(shape, by_key, strict=True):
            if whole:
                columns[names[key]] = list(values)
            else:
                column = columns[names[key]]
                for at, value in zip(where, values, strict=True):
                    column[at] = value
    kinds, key_columns = zip(*map(_column, columns), strict=True) if columns else ((), ())
    idx, step, key_set = (np.array([r[i] for r in rows], np.int64) for i in range(3))
    internal = [pa.array(idx), pa.array(step), pa.array(key_set, pa.int32()),
                pa.array(row_shapes)]  # fmt: skip
    metadata = {
        "format": FORMAT,
        "keys": list(names),
        "kinds": kinds,
        "shapes": [[names[key] for key in shape] for shape in shapes],
    }
    schema = pa.schema(
        [pa.field(name, column.type) for name, column in
         zip([*INTERNAL, *names], [*internal, *key_columns], strict=True)],
        metadata={METADATA_KEY: orjson.dumps(metadata)},
    )  # fmt: skip
    table = pa.Table.from_arrays([*internal, *key_columns], schema=schema)
    sink = io.BytesIO()
    pq.write_table(table, sink, compression="zstd", use_dictionary=False, row_group_size=ROW_GROUP)
    counts: dict[int, int] = {}
    for value, n in zip(*np.unique(key_set, return_counts=True), strict=True):
        counts[int(value)] = int(n)
    return EncodedSegment(
        data=sink.getvalue(), first_idx=int(idx[0]), last_idx=int(idx[-1]),
        first_step=int(step.min()), last_step=int(step.max()), row_count=len(rows),
        key_set_counts=counts,
    )  # fmt: skip


def _column(values: list[Any]) -> tuple[str, pa.Array]:
    """The kind and Arrow array of one key's values (None: absent, or None logged)."""
    types = set(map(type, values))
    types.discard(type(None))
    if types == {bool}:
        return BOOL, pa.array(values, pa.bool_())
    if types == {int}:
        present = [value for value in values if value is not None]
        if INT64[0] <= min(present) and max(present) <= INT64[1]:
            return INT, pa.array(values, pa.int64())
    if types == {float}:
        return FLOAT, pa.array(values, pa.float64())
    if types == {str}:
        return STR, pa.array(values, pa.string())
    texts = [None if value is None else encode_row(value) for value in values]
    return JSON, pa.array(texts, pa.string())


def decode(data: bytes) -> Rows:
    """The rows of a segment's bytes."""
    table = pq.read_table(pa.BufferReader(data))
    metadata = orjson.loads(table.schema.metadata[METADATA_KEY])
    internal = [table.column(i).to_numpy() for i in range(len(INTERNAL))]
    keys: list[str] = metadata["keys"]
    columns = []
    for position, kind in enumerate(metadata["kinds"]):
        column = table.column(len(INTERNAL) + position)
        if kind in (BOOL, INT, FLOAT) and column.null_count == 0:
            columns.append(column.to_numpy())
            continue
        values = column.to_pylist()
        if kind == JSON:
            values = [None if text is None else decode_value(text) for text in values]
        array = np.empty(len(values), dtype=object)
        array[:] = values
        columns.append(array)
    shapes = tuple(
        tuple((keys[position], position) for position in shape) for shape in metadata["shapes"]
    )
    idx, step, key_set, shape = internal
    return Rows(idx, step, key_set, shape, shapes, tuple(columns))


@dataclass(frozen=True)
class Columns:
    """Some key columns of a segment, as arrays: floats as float64 (NaN where a value is
    missing), ints without a gap as int64, anything else as objects; None for a key the
    segment lacks."""

    idx: np.ndarray
    values: dict[str, np.ndarray | None]


def decode_columns(data: bytes, keys: list[str]) -> Columns:
    """The index and the ``keys`` columns of a segment's bytes, reading no other column."""
    parquet = pq.ParquetFile(pa.BufferReader(data))
    metadata = orjson.loads(parquet.schema_arrow.metadata[METADATA_KEY])
    names: list[str] = metadata["keys"]
    kinds = dict(zip(names, metadata["kinds"], strict=True))
    wanted = [key for key in dict.fromkeys(keys) if key in kinds]
    if len(set(parquet.schema_arrow.names)) < len(parquet.schema_arrow.names):
        table = parquet.read()  # a key named like another column: read them all, by position
        position = {key: len(INTERNAL) + names.index(key) for key in wanted}
        columns = {key: table.column(position[key]) for key in wanted}
        idx = table.column(0)
    else:
        table = parquet.read(columns=[INTERNAL[0], *wanted])
        columns = {key: table.column(key) for key in wanted}
        idx = table.column(INTERNAL[0])
    values: dict[str, np.ndarray | None] = dict.fromkeys(keys)
    for key, column in columns.items():
        if kinds[key] == FLOAT or (kinds[key] == INT and column.null_count == 0):
            values[key] = column.to_numpy(zero_copy_only=False)
        elif kinds[key] == JSON:
            values[key] = np.array(
                [None if t is None else decode_value(t) for t in column.to_pylist()], object
            )
        else:
            values[key] = np.array(column.to_pylist(), object)
    return Columns(idx.to_numpy(), values)
