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

import functools
import io
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from itertools import repeat
from operator import itemgetter
from typing import Any, ClassVar

import numpy as np
import orjson
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.csv as pacsv
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
    DISPLAY_KEYS: ClassVar[int] = 20  # rows of more keys: dict(zip(...)), faster past that

    def __len__(self) -> int:
        return len(self.idx)

    def dicts(
        self, start: int, stop: int, picked: np.ndarray | None = None
    ) -> list[dict[str, Any]]:
        """The rows at positions ``start``..``stop`` (or at the positions ``picked``)."""
        if picked is None and len(self.shapes) == 1:  # every row of one shape
            return self._of_shape(0, slice(start, stop))
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
        if not keys:
            return [{} for _ in range(len(self.shape[rows]))]
        values = [self.columns[column][rows].tolist() for _, column in self.shapes[shape]]
        if len(keys) > Rows.DISPLAY_KEYS:
            return list(map(dict, map(zip, repeat(keys), zip(*values, strict=True))))
        return Rows._builder(len(keys))(keys, values)

    @staticmethod
    @functools.cache
    def _builder(width: int) -> Callable[[list[str], list[list[Any]]], list[dict[str, Any]]]:
        """A function making dicts of ``width`` keys from the keys and a list of values per
        key: a comprehension of dict displays, which CPython builds without a zip per row and
        (up to 15 keys) at their full size at once, near twice as fast as ``dict(zip(keys,
        row))``. It is generated, as ``dataclasses`` generates ``__init__``, and names no key:
        keys are its argument."""
        keys = [f"k{n}" for n in range(width)]
        values = [f"v{n}" for n in range(width)]
        pairs = ", ".join(f"{key}: {value}" for key, value in zip(keys, values, strict=True))
        source = (
            f"def build(keys, columns):\n"
            f"    {', '.join(keys)}, = keys\n"
            f"    return [{{{pairs}}} for {', '.join(values)}, in zip(*columns, strict=True)]\n"
        )
        namespace: dict[str, Any] = {}
        exec(source, namespace)
        built: Callable[[list[str], list[list[Any]]], list[dict[str, Any]]] = namespace["build"]
        return built

    def texts(self, rows: list[dict[str, Any]]) -> list[str]:
        """Rows as JSON text, NaN and infinities as tokens (as the hot tier keeps them)."""
        return [encode_row(row) for row in rows]


def encode(rows: Sequence[tuple[int, int, int, str]]) -> EncodedSegment:
    """A segment of (idx, step, key set id, row text) rows, given in index order."""
    decoded = _decode_rows([row[3] for row in rows])
    shapes: dict[tuple[str, ...], int] = {}
    row_shapes = np.array([shapes.setdefault(tuple(row), len(shapes)) for row in decoded],
                          np.int32)  # fmt: skip
    names = {key: n for n, key in enumerate(dict.fromkeys(k for shape in shapes for k in shape))}
    columns = _transpose(decoded, shapes, row_shapes, names)
    kinds, key_columns = zip(*map(_column, columns), strict=True) if columns else ((), ())
    idx, step, key_set = (np.fromiter(map(itemgetter(i), rows), np.int64, len(rows))
                          for i in range(3))  # fmt: skip
    shape_keys = [[names[key] for key in shape] for shape in shapes]
    return _segment((idx, step, key_set, row_shapes), shape_keys, list(names), kinds, key_columns)


SEPARATOR = "\x1e"  # between the lines given to encode_lines: no JSON text holds it unescaped
_NON_FINITE = frozenset((b"NaN", b"Infinity", b"-Infinity"))
_TO_END = 2**31 - 1  # a slice's stop past any value (None misbehaves in binary_slice)


def encode_lines(lines: str | bytes) -> EncodedSegment:
    """A segment of rows given as lines ``idx,step,key set id,row text`` joined by
    ``SEPARATOR`` (as text, or its UTF-8): read as CSV when every row has the first row's keys
    in its order (as most runs log), else row by row."""
    data = lines.encode() if isinstance(lines, str) else lines
    return _encode_one_shape(data) or encode(_split_lines(data.decode()))


def _split_lines(text: str) -> list[tuple[int, int, int, str]]:
    """The (idx, step, key set id, row text) rows of ``encode_lines``'s lines, by index."""
    rows = []
    for line in text.split(SEPARATOR):
        idx, step, key_set, row = line.split(",", 3)
        rows.append((int(idx), int(step), int(key_set), row))
    return sorted(rows, key=itemgetter(0))


def _encode_one_shape(data: bytes) -> EncodedSegment | None:
    """``encode_lines`` of rows all of the first row's shape, each value typed as ``_column``
    types it; None where a row differs, or may (a value holding a comma).

    Split at commas, a line of the shape is the CSV fields idx, step, key set, then for each
    key its JSON text, a colon and its value's (the first after the row's ``{``, the last
    before its ``}``). A comma inside a value splits it, and the piece with its opening quote
    or bracket then fails to parse, so a line whose fields all pass is a row of the shape."""
    first = _first_row(data)
    if first is None:
        return None
    try:
        table = _fields(data, len(first))
        idx, step, key_set = (_numpy(table.column(i)) for i in range(3))
        if np.any(idx[1:] <= idx[:-1]):
            return None
        read = functools.partial(_key_column, table, len(first))
        typed = list(map(read, range(len(first)), first.items()))
    except (pa.ArrowInvalid, ValueError, TypeError):  # TypeError: a key orjson cannot write
        return None
    if None in typed:
        return None
    kinds, columns = zip(*typed, strict=True)
    internal = (idx, step, key_set, np.zeros(len(idx), np.int32))
    return _segment(internal, [list(range(len(first)))], list(first), kinds, columns)


def _first_row(data: bytes) -> dict[str, Any] | None:
    """The first line's row, if it has keys, none with a comma, and only scalar values."""
    end = data.find(SEPARATOR.encode())
    try:
        row = decode_row(data[: len(data) if end < 0 else end].split(b",", 3)[3])
    except (IndexError, ValueError):
        return None
    if not isinstance(row, dict) or not row or any("," in key for key in row):
        return None
    scalar = all(type(value) in (bool, int, float, str) for value in row.values())
    return row if scalar else None


def _fields(data: bytes, keys: int) -> pa.Table:
    """The CSV fields of ``encode_lines``'s lines of rows of ``keys`` keys: the index, step and
    key set as integers, the rest as bytes."""
    names = [str(n) for n in range(3 + keys)]
    types = dict.fromkeys(names, pa.binary())
    types.update({"0": pa.int64(), "1": pa.int64(), "2": pa.int64()})
    return pacsv.read_csv(
        pa.BufferReader(data.replace(SEPARATOR.encode(), b"\n")),
        read_options=pacsv.ReadOptions(column_names=names),
        parse_options=pacsv.ParseOptions(quote_char=False, ignore_empty_lines=False),
        convert_options=pacsv.ConvertOptions(column_types=types, null_values=[], check_utf8=False),
    )


def _key_column(
    table: pa.Table, keys: int, n: int, first: tuple[str, Any]
) -> tuple[str, pa.ChunkedArray | pa.Array] | None:
    """The kind and array of the ``n``th of ``keys`` keys (``first``: it and its value in the
    first row), if every line's field ``n`` is that key and a value; else None."""
    key, value = first
    prefix = ("{" if n == 0 else "") + orjson.dumps(key).decode() + ":"
    field = table.column(3 + n)
    last = n == keys - 1
    if not pc.all(pc.starts_with(field, prefix)).as_py() or (
        last and not pc.all(pc.ends_with(field, "}")).as_py()
    ):
        return None
    texts = pc.binary_slice(field, len(prefix.encode()), -1 if last else _TO_END)
    return _typed(texts, type(value))


def _typed(texts: pa.ChunkedArray, first: type) -> tuple[str, pa.ChunkedArray | pa.Array]:
    """The kind and Arrow array of one key's values given as JSON texts (bytes): typed by
    Arrow when all are of the first row's value's type or null, else as ``_column`` types
    them."""
    typed = _arrow_typed(texts, first)
    if typed is None:
        nulls = pc.equal(texts, b"null")
        if pc.any(nulls).as_py():
            typed = _arrow_typed(pc.if_else(nulls, None, texts), first)
    if typed is not None:
        return typed
    return _column([None if text is None else decode_value(text) for text in texts.to_pylist()])


def _arrow_typed(texts: pa.ChunkedArray, first: type) -> tuple[str, pa.ChunkedArray] | None:
    """``_typed`` when Arrow reads every value as of the type ``first``; else None."""
    try:
        if first is float:
            floats = texts.cast(pa.float64())
            return (FLOAT, floats) if _written_as_floats(texts, floats) else None
        if first is int:
            return INT, texts.cast(pa.int64())
        if first is bool and _bools(texts):
            return BOOL, pc.equal(texts, b"true")
        strings = _strings(texts.cast(pa.string())) if first is str else None
    except pa.ArrowInvalid:
        return None
    return None if strings is None else (STR, strings)


def _written_as_floats(texts: pa.ChunkedArray, floats: pa.ChunkedArray) -> bool:
    """Whether every JSON number of ``texts`` (read as ``floats``) is written as a float; only
    those of a whole value are looked at."""
    whole = texts.filter(pc.equal(floats, pc.floor(floats)))
    return len(whole) == 0 or _floats(whole)


def _floats(texts: pa.ChunkedArray) -> bool:
    """Whether every JSON number is written as a float: with a fraction, an exponent, or as
    NaN or an infinity (an integer written among floats is an int)."""
    dots = pc.find_substring(texts, ".")
    if pc.min(dots).as_py() != -1:
        return True
    bare = texts.filter(pc.equal(dots, -1))
    return all(t in _NON_FINITE or b"e" in t or b"E" in t for t in bare.to_pylist())


def _bools(texts: pa.ChunkedArray) -> bool:
    """Whether every JSON value is ``true`` or ``false``."""
    found = sum(pc.sum(pc.equal(texts, word)).as_py() or 0 for word in (b"true", b"false"))
    return bool(found + texts.null_count == len(texts))


def _strings(texts: pa.ChunkedArray) -> pa.ChunkedArray | None:
    """The strings that JSON texts hold, if each is a string without an escape; else None."""
    inner = pc.utf8_slice_codeunits(texts, 1, -1)
    whole = pc.and_(pc.starts_with(texts, '"'), pc.ends_with(texts, '"'))
    plain = pc.invert(pc.match_substring_regex(inner, r'["\\]'))
    if pc.min(pc.binary_length(texts)).as_py() < 2 or not pc.all(pc.and_(whole, plain)).as_py():
        return None
    return inner


def _arrow(values: np.ndarray) -> pa.Array:
    """Numbers as an Arrow array, not by ``pa.array``, whose first call imports pandas (a
    fifth of a second of a compaction's start)."""
    values = np.ascontiguousarray(values)
    return pa.Array.from_buffers(
        pa.from_numpy_dtype(values.dtype), len(values), [None, pa.py_buffer(values)]
    )


def _numpy(column: pa.ChunkedArray) -> np.ndarray:
    """A column of int64 without nulls as numpy, not by ``to_numpy`` (see ``_arrow``)."""
    array = column.combine_chunks()
    return np.frombuffer(array.buffers()[1], np.int64, len(array), array.offset * 8)


def _encodings(names: list[str], kinds: Sequence[str]) -> dict[str, str]:
    """Parquet encodings by column: floats byte stream split and integers delta-packed (each
    half the bytes of plain, and faster), but for a name shared by two columns."""
    counts = Counter([*INTERNAL, *names])
    by_kind = {FLOAT: "BYTE_STREAM_SPLIT", INT: "DELTA_BINARY_PACKED"}
    columns = zip([*INTERNAL, *names], [INT] * len(INTERNAL) + list(kinds), strict=True)
    return {name: by_kind[kind] for name, kind in columns if kind in by_kind and counts[name] == 1}


def _decode_rows(texts: list[str]) -> list[dict[str, Any]]:
    """Rows from their texts, parsed at once unless one holds a NaN or infinity token (or an
    integer past 64 bits)."""
    try:
        decoded: list[dict[str, Any]] = orjson.loads("[" + ",".join(texts) + "]")
    except (orjson.JSONDecodeError, TypeError):
        return [decode_row(text) for text in texts]
    return decoded if len(decoded) == len(texts) else [decode_row(text) for text in texts]


def _transpose(
    decoded: list[dict[str, Any]],
    shapes: dict[tuple[str, ...], int],
    row_shapes: np.ndarray,
    names: dict[str, int],
) -> list[list[Any]]:
    """Each key's values, by row (None where a row lacks the key)."""
    if len(shapes) == 1:
        return [list(map(itemgetter(key), decoded)) for key in next(iter(shapes))]
    columns: list[list[Any]] = [[None] * len(decoded) for _ in names]
    for shape, number in shapes.items():
        where = np.flatnonzero(row_shapes == number).tolist()
        of_shape = [decoded[i] for i in where]
        for key in shape:
            column = columns[names[key]]
            for at, value in zip(where, map(itemgetter(key), of_shape), strict=True):
                column[at] = value
    return columns


def _segment(
    internal: tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray],
    shapes: list[list[int]],
    names: list[str],
    kinds: Sequence[str],
    key_columns: Sequence[Any],
) -> EncodedSegment:
    """A segment from its (idx, step, key set, shape) arrays, its shapes as lists of key
    positions, and its keys' names, kinds and columns."""
    idx, step, key_set, row_shapes = internal
    arrays = [_arrow(idx), _arrow(step), _arrow(key_set.astype(np.int32)), _arrow(row_shapes)]
    metadata = {"format": FORMAT, "keys": names, "kinds": kinds, "shapes": shapes}
    schema = pa.schema(
        [pa.field(name, column.type) for name, column in
         zip([*INTERNAL, *names], [*arrays, *key_columns], strict=True)],
        metadata={METADATA_KEY: orjson.dumps(metadata)},
    )  # fmt: skip
    table = pa.Table.from_arrays([*arrays, *key_columns], schema=schema)
    sink = io.BytesIO()
    pq.write_table(
        table, sink, compression="zstd", use_dictionary=False, row_group_size=ROW_GROUP,
        column_encoding=_encodings(names, kinds),
    )  # fmt: skip
    counts: dict[int, int] = {}
    for value, n in zip(*np.unique(key_set, return_counts=True), strict=True):
        counts[int(value)] = int(n)
    return EncodedSegment(
        data=sink.getvalue(), first_idx=int(idx[0]), last_idx=int(idx[-1]),
        first_step=int(step.min()), last_step=int(step.max()), row_count=len(idx),
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


def decode(data: bytes, positions: Sequence[int] | None = None) -> Rows:
    """The rows of a segment's bytes; with ``positions`` (ascending), those rows only, read
    from the row groups holding them."""
    parquet = pq.ParquetFile(pa.BufferReader(data))
    if positions is None:
        return _rows(parquet.read())
    sizes = [parquet.metadata.row_group(n).num_rows for n in range(parquet.num_row_groups)]
    starts = np.cumsum([0, *sizes])
    groups = np.unique(np.searchsorted(starts, positions, side="right") - 1)
    read_from = np.cumsum([0, *(sizes[n] for n in groups)])  # where each group begins
    group_of = np.searchsorted(starts, positions, side="right") - 1
    within = np.asarray(positions) - starts[group_of] + read_from[np.searchsorted(groups, group_of)]
    table = parquet.read_row_groups(groups.tolist()).take(pa.array(within))
    return _rows(table)


def key_sets(data: bytes) -> np.ndarray:
    """The key set id of each row of a segment's bytes, reading no other column."""
    parquet = pq.ParquetFile(pa.BufferReader(data))
    names = parquet.schema_arrow.names
    if names.count(INTERNAL[2]) > 1:  # a key named like the column: read them all
        return _numbers(parquet.read().column(2))
    return _numbers(parquet.read(columns=[INTERNAL[2]]).column(0))


def _rows(table: pa.Table) -> Rows:
    metadata = orjson.loads(table.schema.metadata[METADATA_KEY])
    internal = [_numbers(table.column(i)) for i in range(len(INTERNAL))]
    keys: list[str] = metadata["keys"]
    columns = []
    for position, kind in enumerate(metadata["kinds"]):
        column = table.column(len(INTERNAL) + position)
        if kind in (BOOL, INT, FLOAT) and column.null_count == 0:
            columns.append(_numbers(column))
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


def _numbers(column: pa.ChunkedArray) -> np.ndarray:
    """A column of numbers or bools without nulls as an array, read from Arrow's buffers:
    Arrow's ``to_numpy`` imports pandas (a quarter second, at a process's first read)."""
    array = column.combine_chunks()
    dtype = np.dtype(array.type.to_pandas_dtype())
    data = array.buffers()[1]
    if not len(array):
        return np.empty(0, dtype)
    if dtype == np.bool_:  # bits, the first of a byte the lowest
        bits = np.unpackbits(np.frombuffer(data, np.uint8), bitorder="little")
        return bits[array.offset : array.offset + len(array)].astype(bool)
    return np.frombuffer(data, dtype, count=array.offset + len(array))[array.offset :]


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
