"""A run's history as Arrow tables built from its segments' columns, never row by row.

``Backend.history_segments`` hands out the stream as Parquet segments (``runbase.columnar``);
a segment whose wanted columns are each of one scalar type (bool, int64, float64,
string, or no value at all) becomes a table as it is. A segment holding a wanted key of the
JSON kind (a nested value, a list, an int past 64 bits, a key whose type changes) is handed
out as its rows instead, for the caller to take one by one.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import numpy as np
import orjson
import pyarrow as pa
import pyarrow.parquet as pq

from runbase import columnar
from runbase.api.client import Client
from runbase.backend.base import RunPath
from runbase.columnar import INTERNAL, JSON, METADATA_KEY

IDX, STEP, _, SHAPE = range(len(INTERNAL))


@dataclass(frozen=True)
class Segment:
    """A segment's rows past the last index read: ``table`` holds their columns (or those of
    ``keys``), or is None when some value needs the rows, and ``rows`` holds them instead
    (whole, of every shape). ``idx`` and ``step`` are each row's index and step, ``last`` the
    last index the blob holds."""

    idx: np.ndarray
    step: np.ndarray
    last: int
    table: pa.Table | None
    rows: list[dict[str, Any]] | None = None


def segments(
    client: Client,
    path: RunPath,
    stream: str,
    keys: list[str] | None = None,
    holding: list[str] | None = None,
    every: bool = True,
) -> Iterator[Segment]:
    """The run's segments in index order, as ``read`` gives them."""
    blobs = client.call(client.backend.history_segments, path, stream)
    after = -1
    while (data := client.call(lambda: next(blobs, None))) is not None:
        segment = read(data, after, keys, holding, every)
        after = max(after, segment.last)
        yield segment


def read(
    data: bytes,
    after: int,
    keys: list[str] | None = None,
    holding: list[str] | None = None,
    every: bool = True,
) -> Segment:
    """The rows of a segment's bytes past index ``after``: with ``keys``, just their columns;
    with ``holding``, only rows holding every one of them (``every`` false: any of them)."""
    parquet = pq.read_table(pa.BufferReader(data))
    metadata = orjson.loads(parquet.schema.metadata[METADATA_KEY])
    names: list[str] = metadata["keys"]
    kinds: list[str] = metadata["kinds"]
    position = {name: n for n, name in enumerate(names)}
    idx = parquet.column(IDX).to_numpy()
    last = int(idx[-1]) if len(idx) else after
    picked = names if keys is None else [key for key in keys if key in position]
    dotted = [key for key in [*(keys or ()), *(holding or ())] if "." in key]
    if any(kinds[position[name]] == JSON and parquet.column(len(INTERNAL) + position[name])
           .null_count < len(parquet) for name in picked) or dotted:  # fmt: skip
        return _rows(data, after, last)  # a nested value, or a key reaching into one
    mask = idx > after
    if holding is not None:
        shapes = parquet.column(SHAPE).to_numpy()
        mask &= np.isin(shapes, _holding(metadata["shapes"], names, holding, every))
    arrays = []
    for name in picked:
        column = parquet.column(len(INTERNAL) + position[name])
        if kinds[position[name]] == JSON:
            column = pa.chunked_array([pa.nulls(len(column))])
        arrays.append(column)
    table = pa.Table.from_arrays(arrays, names=picked)
    step = parquet.column(STEP).to_numpy()
    if not mask.all():
        table, idx, step = table.filter(pa.array(mask)), idx[mask], step[mask]
    return Segment(idx, step, last, table)


def _rows(data: bytes, after: int, last: int) -> Segment:
    decoded = columnar.decode(data)
    start = int(np.searchsorted(decoded.idx, after, side="right"))
    rows = decoded.dicts(start, len(decoded))
    return Segment(decoded.idx[start:], decoded.step[start:], last, None, rows)


def _holding(shapes: list[list[int]], names: list[str], keys: list[str], every: bool) -> list[int]:
    """The shapes holding all of ``keys`` (``every`` false: any of them)."""
    wanted = set(keys)
    test = wanted.issubset if every else (lambda held: bool(wanted & held))
    return [n for n, columns in enumerate(shapes) if test({names[c] for c in columns})]


def table(
    client: Client, path: RunPath, stream: str, keys: list[str] | None = None
) -> pa.Table | None:
    """Every row of the run's stream (with ``keys``, the rows holding them all, with just
    them) as one table, columns in the order keys first appear; None where some value needs
    the row-by-row read, or the segments' types do not merge."""
    tables = []
    for segment in segments(client, path, stream, keys, keys):
        if segment.table is None:
            return None
        if segment.table.num_rows:
            tables.append(segment.table)
    if not tables:
        return pa.table({})
    try:
        return pa.concat_tables(tables, promote_options="permissive")
    except (pa.ArrowInvalid, pa.ArrowTypeError):
        return None
