"""Tables of JSON values (config, summary, history rows), typed batch by batch.

Rows become Arrow record batches: nested dicts are flattened to dotted column names
(``{"opt": {"lr": 0.1}}`` -> ``opt.lr``; an empty dict gives no column), and each column of a
batch gets the type its values have. Once every batch has been seen, each column gets one type
for the whole table, the merge of its batches' kinds:

- ``bool``, ``int64``, ``float64``, ``string``: kept where every batch agrees;
- ints and floats: ``float64`` when every int is exact in a double (``|i| <= 2**53``), else
  JSON text;
- no value at all: Arrow's ``null`` type;
- anything else (lists, ints beyond 64 bits, a string here and a number there): JSON text, a
  string column whose field metadata is ``{"encoding": "json"}``, each value written by the
  documents codec (``runbase.documents.encode``: NaN and infinities as ``{"$float": "NaN"}``).
"""

from __future__ import annotations

import enum
import json
from collections.abc import Iterable, Sequence
from typing import Any

import pyarrow as pa
import pyarrow.compute as pc

from runbase import documents
from runbase.errors import InvalidInput

JSON_METADATA = {b"encoding": b"json"}
EXACT_INT = 2**53
CONVERSION_ERRORS = (pa.ArrowInvalid, pa.ArrowTypeError, OverflowError)


class Kind(enum.IntEnum):
    """What a column of a batch holds; ``merge`` combines the kinds of its batches."""

    NULL = 0
    BOOL = 1
    INT53 = 2  # ints, each exact in a double
    INT = 3
    FLOAT = 4
    STRING = 5
    JSON = 6


NUMBERS = {frozenset((Kind.INT53, Kind.INT)): Kind.INT,
           frozenset((Kind.INT53, Kind.FLOAT)): Kind.FLOAT}  # fmt: skip
SCALAR_KINDS = {pa.null(): Kind.NULL, pa.bool_(): Kind.BOOL, pa.float64(): Kind.FLOAT,
                pa.string(): Kind.STRING}  # fmt: skip
SCALAR_TYPES = {*SCALAR_KINDS, pa.int64()}


def merge(a: Kind, b: Kind) -> Kind:
    """The kind of a column whose batches are of kinds ``a`` and ``b``."""
    if a == b or b is Kind.NULL:
        return a
    if a is Kind.NULL:
        return b
    return NUMBERS.get(frozenset((a, b)), Kind.JSON)


def kind_of(field: pa.Field, array: pa.Array) -> Kind:
    """The kind of one column of a batch (as ``record_batch`` makes them)."""
    if field.metadata == JSON_METADATA:
        return Kind.JSON
    if field.type == pa.int64():
        low, high = pc.min_max(array).values()
        exact = low.as_py() is None or (low.as_py() >= -EXACT_INT and high.as_py() <= EXACT_INT)
        return Kind.INT53 if exact else Kind.INT
    return SCALAR_KINDS.get(field.type, Kind.JSON)


def arrow_field(name: str, kind: Kind) -> pa.Field:
    """The column of the whole table for a merged kind."""
    if kind is Kind.JSON:
        return pa.field(name, pa.string(), metadata=JSON_METADATA)
    types = {Kind.NULL: pa.null(), Kind.BOOL: pa.bool_(), Kind.INT53: pa.int64(),
             Kind.INT: pa.int64(), Kind.FLOAT: pa.float64(), Kind.STRING: pa.string()}  # fmt: skip
    return pa.field(name, types[kind])


def json_text(value: Any) -> str:
    """A value as JSON text by the documents codec (ints beyond 64 bits included)."""
    try:
        return documents.encode(value)
    except InvalidInput:
        return json.dumps(documents.tag(value))


def json_array(values: Iterable[Any]) -> pa.Array:
    return pa.array([None if v is None else json_text(v) for v in values], pa.string())


# ---------------------------------------------------------------- rows to a batch


def record_batch(head: dict[str, pa.Array], rows: list[dict[str, Any]]) -> pa.RecordBatch:
    """The ``head`` columns as given, then the rows' leaves, each column typed by its values.

    A leaf named like a head column is dropped: the head wins."""
    columns = _columns_fast(rows) if rows else {}
    if columns is None:
        columns = _columns_slow(rows)
    fields = [pa.field(name, array.type) for name, array in head.items()]
    arrays = list(head.values())
    for name, (field, array) in columns.items():
        if name not in head:
            fields.append(field)
            arrays.append(array)
    return pa.RecordBatch.from_arrays(arrays, schema=pa.schema(fields))


Column = tuple[pa.Field, pa.Array]


def _columns_fast(rows: list[dict[str, Any]]) -> dict[str, Column] | None:
    """Columns by Arrow's own inference over the rows; None when it cannot give them (a
    column of mixed kinds, a list, a name twice), and the slow path must."""
    try:
        struct = pa.array(rows)
    except CONVERSION_ERRORS:
        return None
    columns: dict[str, Column] = {}
    for name, array in _leaves("", struct):
        if array.type not in SCALAR_TYPES or name in columns:
            return None
        columns[name] = (pa.field(name, array.type), array)
    return columns


def _leaves(prefix: str, struct: pa.StructArray) -> Iterable[tuple[str, pa.Array]]:
    for field, child in zip(struct.type, struct.flatten(), strict=True):
        if pa.types.is_struct(child.type):
            yield from _leaves(f"{prefix}{field.name}.", child)
        else:
            yield prefix + field.name, child


def _columns_slow(rows: list[dict[str, Any]]) -> dict[str, Column]:
    flat = [flatten(row) for row in rows]
    names = dict.fromkeys(name for row in flat for name in row)
    return {name: _column(name, [row.get(name) for row in flat]) for name in names}


def _column(name: str, values: list[Any]) -> Column:
    try:
        array = pa.array(values, from_pandas=False)
    except CONVERSION_ERRORS:
        array = None
    if array is not None and array.type in SCALAR_TYPES:
        return pa.field(name, array.type), array
    return pa.field(name, pa.string(), metadata=JSON_METADATA), json_array(values)


def flatten(row: dict[str, Any], prefix: str = "") -> dict[str, Any]:
    """The row's leaves by dotted name; an empty dict is no leaf."""
    flat: dict[str, Any] = {}
    for key, value in row.items():
        if type(value) is dict:
            flat.update(flatten(value, f"{prefix}{key}."))
        else:
            flat[prefix + key] = value
    return flat


# ---------------------------------------------------------------- batches to a table


class Columns:
    """The columns of a table seen so far, and the kind of each, merged batch by batch.

    ``head`` gives columns of fixed types, first; ``first`` names more columns that come next
    (and exist, null, even when no batch has them); the rest follow in name order.
    """

    def __init__(self, head: pa.Schema, first: Sequence[str] = ()) -> None:
        self.head = head
        self.first = [name for name in dict.fromkeys(first) if name not in head.names]
        self.kinds: dict[str, Kind] = dict.fromkeys(self.first, Kind.NULL)

    def add(self, batch: pa.RecordBatch) -> None:
        for field, array in zip(batch.schema, batch.columns, strict=True):
            if field.name not in self.head.names:
                kind = kind_of(field, array)
                self.kinds[field.name] = merge(self.kinds.get(field.name, Kind.NULL), kind)

    def schema(self) -> pa.Schema:
        rest = sorted(set(self.kinds) - set(self.first))
        fields = [arrow_field(name, self.kinds[name]) for name in [*self.first, *rest]]
        return pa.schema([*self.head, *fields])


def conform(batch: pa.RecordBatch, schema: pa.Schema) -> pa.RecordBatch:
    """The batch with the table's columns and types: missing columns null, ints cast to
    floats, values of other kinds written as JSON text where the table's column is JSON."""
    arrays = []
    for field in schema:
        index = batch.schema.get_field_index(field.name)
        if index < 0:
            arrays.append(pa.nulls(batch.num_rows, field.type))
            continue
        array = batch.column(index)
        if field.metadata == JSON_METADATA:
            if batch.schema.field(index).metadata != JSON_METADATA:
                array = json_array(array.to_pylist())
        elif array.type != field.type:
            array = array.cast(field.type)
        arrays.append(array)
    return pa.RecordBatch.from_arrays(arrays, schema=schema)
