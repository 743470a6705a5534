"""Bucketed curves read from runs' history: the points of a metric over an x axis, then cut
into buckets (``runbase.store.buckets``).

Compacted rows give their two columns straight from the segments. Hot rows are read a page
at a time through the key sets that hold both keys, and their values taken out in Python
rather than in SQL: on a run of 100,000 rows, decoding each row with orjson was as fast as
SQLite's ``->>`` and ``json_type``, and six times faster than PostgreSQL's ``::jsonb``,
which also cannot read rows holding NaN.
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from operator import itemgetter
from typing import Any

import numpy as np
import numpy.typing as npt
from sqlalchemy import Connection

from runbase.store import history, segments
from runbase.store.buckets import BucketRow, Points, cut, gather, is_number
from runbase.store.dialect import Dialect
from runbase.store.segments import SegmentCache

PAGE = 50_000  # hot rows decoded at a time, so memory stays flat however long the run
_row_of = itemgetter(1)


def bucketed_many(
    conn: Connection, dialect: Dialect, cache: SegmentCache, pks: list[int], stream: int,
    key: str, x_axis: str, buckets: int, x_min: float | None, x_max: float | None,
) -> list[list[BucketRow]]:  # fmt: skip
    """The buckets (``buckets.cut``) of ``key`` over ``x_axis`` for each run, in the order
    of ``pks``."""
    found = []
    for pk in pks:
        xs, ys = points(conn, dialect, cache, pk, stream, key, x_axis, x_min, x_max)
        found.append(cut(Points(xs), Points(ys), buckets, x_min, x_max))
    return found


def points(
    conn: Connection, dialect: Dialect, cache: SegmentCache, pk: int, stream: int, key: str,
    x_axis: str, x_min: float | None, x_max: float | None,
) -> tuple[list[npt.NDArray[Any]], list[npt.NDArray[Any]]]:  # fmt: skip
    """(xs, ys) of a run's points (``buckets.gather``) in index order, as arrays in parts
    (typed where a segment's column is, else of the values as logged). On the default
    stream a ``_step`` range first narrows the read to the rows of those steps (a row's step
    is its ``_step``); ``buckets.cut`` applies the range itself."""
    keys = list(dict.fromkeys([x_axis, key]))
    key_set_ids, _ = history._matching_key_sets(conn, pk, stream, keys)
    if key_set_ids == []:
        return [], []
    bounds = history.ScanBounds(-1, history.LAST_INDEX)
    if stream == 0 and x_axis == "_step" and (x_min is not None or x_max is not None):
        first = None if x_min is None else _clamp(math.ceil(x_min))
        below = None if x_max is None else _clamp(math.floor(x_max) + 1)
        bounds = history.scan_bounds(conn, cache, pk, stream, first, below)
    xs: list[npt.NDArray[Any]] = []
    ys: list[npt.NDArray[Any]] = []
    for _ in range(history.RETRIES):
        xs, ys = [], []
        mark = segments.watermark(conn, pk, stream)
        for segment in segments.overlapping(conn, pk, stream, bounds.after, bounds.upto):
            if key_set_ids is None or set(segment.key_sets) & set(key_set_ids):
                _segment_points(conn, cache, segment.id, bounds, x_axis, key, xs, ys)
        hot = history.ScanBounds(max(bounds.after, mark), bounds.upto)
        while hot.after < hot.upto:
            found = history.scan(conn, dialect, cache, pk, stream, hot, keys, PAGE)
            _gathered(map(_row_of, found), x_axis, key, xs, ys)
            if len(found) < PAGE:
                break
            hot = hot.next(found[-1][0])
        if segments.watermark(conn, pk, stream) == mark:
            break  # else a compaction moved rows while they were read: read again
    return xs, ys


def _gathered(
    rows: Iterable[Any], x_axis: str, key: str, xs: list[npt.NDArray[Any]],
    ys: list[npt.NDArray[Any]],
) -> None:  # fmt: skip
    """Append the points of rows (``buckets.gather``) as one part of values as logged."""
    x: list[Any] = []
    y: list[Any] = []
    gather(rows, x_axis, key, x, y)
    if x:
        xs.append(_objects(x))
        ys.append(_objects(y))


def _objects(values: list[Any]) -> npt.NDArray[Any]:
    array = np.empty(len(values), dtype=object)
    array[:] = values
    return array


def _segment_points(
    conn: Connection, cache: SegmentCache, segment_id: int, bounds: history.ScanBounds,
    x_axis: str, key: str, xs: list[npt.NDArray[Any]], ys: list[npt.NDArray[Any]],
) -> None:  # fmt: skip
    """Append the points of a segment's rows within ``bounds``, from its two columns."""
    if "." in x_axis or "." in key:  # it may reach into nested values: whole rows
        rows = cache.rows(conn, segment_id)
        start = int(np.searchsorted(rows.idx, bounds.after, side="right"))
        stop = int(np.searchsorted(rows.idx, bounds.upto, side="right"))
        _gathered(rows.dicts(start, stop), x_axis, key, xs, ys)
        return
    found = cache.columns(conn, segment_id, [x_axis, key])
    x, y = found.values[x_axis], found.values[key]
    if x is None or y is None:
        return
    start = int(np.searchsorted(found.idx, bounds.after, side="right"))
    stop = int(np.searchsorted(found.idx, bounds.upto, side="right"))
    x, y = x[start:stop], y[start:stop]
    keep = _numbers(x) & _numbers(y)
    xs.append(x[keep])
    ys.append(y[keep])


def _numbers(values: npt.NDArray[Any]) -> npt.NDArray[np.bool_]:
    """Which values of a column are real numbers, finite (a column without nulls is typed;
    absent and None values make it a column of objects)."""
    if values.dtype == np.float64:
        finite: npt.NDArray[np.bool_] = np.isfinite(values)
        return finite
    if values.dtype == np.int64:
        return np.ones(len(values), dtype=np.bool_)
    if values.dtype == object:
        return np.fromiter(map(is_number, values), dtype=np.bool_, count=len(values))
    return np.zeros(len(values), dtype=np.bool_)  # bool


def _clamp(step: int) -> int:
    return max(-history.LAST_INDEX, min(step, history.LAST_INDEX))
