"""Bucketed curves read from runs' history: the points of a metric over an x axis, then cut
into buckets (``runbase.store.buckets``).

Compacted rows give their two columns straight from the segments, decoded on threads, and
the points of whole segments are kept (``_Curves``), so that a chart read again only cuts
them. Hot rows are read a page at a time through the key sets that hold both keys, and their
values taken out in Python rather than in SQL: on a run of 100,000 rows, decoding each row
with orjson was as fast as SQLite's ``->>`` and ``json_type``, and six times faster than
PostgreSQL's ``::jsonb``, which also cannot read rows holding NaN.
"""

from __future__ import annotations

import math
import os
import threading
from collections import OrderedDict
from collections.abc import Iterable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any
from weakref import WeakKeyDictionary

import numpy as np
import numpy.typing as npt
from sqlalchemy import Connection, bindparam, func, select

from runbase import columnar
from runbase.store import history, segments
from runbase.store.buckets import BucketRow, Points, cut, gather, is_number, joined
from runbase.store.dialect import Dialect
from runbase.store.schema import history as history_rows
from runbase.store.schema import history_segments
from runbase.store.segments import SegmentCache

PAGE = 50_000  # hot rows decoded at a time, so memory stays flat however long the run
CACHED_BYTES = 64 * 2**20  # compacted curves kept per store: some 2,800,000 points
DECODED_AT_ONCE = 8  # segments read in one query and decoded on as many threads
_pool: tuple[int, ThreadPoolExecutor] | None = None
_OF_STREAM = (
    history_rows.c.run_pk == bindparam("pk"),
    history_rows.c.stream == bindparam("stream"),
)
# the watermark, and the first hot row past ``after``: one statement, so one snapshot
_STATE = select(
    select(func.max(history_segments.c.last_idx))
    .where(history_segments.c.run_pk == bindparam("pk"))
    .where(history_segments.c.stream == bindparam("stream"))
    .scalar_subquery(),
    select(history_rows.c.idx)
    .where(*_OF_STREAM, history_rows.c.idx > bindparam("after"))
    .where(history_rows.c.idx <= bindparam("upto"))
    .limit(1)
    .scalar_subquery(),
)


def bucketed_many(
    conn: Connection, dialect: Dialect, cache: SegmentCache, pks: list[int], stream: int,
    key: str, x_axis: str, buckets: int, x_min: float | None, x_max: float | None,
) -> list[list[BucketRow]]:  # fmt: skip
    """The buckets (``buckets.cut``) of ``key`` over ``x_axis`` for each run, in the order
    of ``pks``."""
    found = []
    for pk in pks:
        xs, ys = points(conn, dialect, cache, pk, stream, key, x_axis, x_min, x_max)
        found.append(cut(xs, ys, buckets, x_min, x_max))
    return found


def points(
    conn: Connection, dialect: Dialect, cache: SegmentCache, pk: int, stream: int, key: str,
    x_axis: str, x_min: float | None, x_max: float | None,
) -> tuple[Points, Points]:  # fmt: skip
    """(xs, ys) of a run's points (``buckets.gather``) in index order. On the default stream
    a ``_step`` range first narrows the read to the rows of those steps (a row's step is its
    ``_step``); ``buckets.cut`` applies the range itself."""
    bounds = history.ScanBounds(-1, history.LAST_INDEX)
    if stream == 0 and x_axis == "_step" and (x_min is not None or x_max is not None):
        first = None if x_min is None else _clamp(math.ceil(x_min))
        below = None if x_max is None else _clamp(math.floor(x_max) + 1)
        bounds = history.scan_bounds(conn, cache, pk, stream, first, below)
    cold_x = cold_y = hot_x = hot_y = Points([])
    for _ in range(history.RETRIES):
        mark, any_hot = _state(conn, cache, pk, stream, bounds)
        known = cache.learn(conn, pk, stream, mark)
        cold_x, cold_y = _compacted(conn, cache, pk, stream, known, bounds, x_axis, key)
        hot_x = hot_y = Points([])
        if not any_hot:
            break  # the segments up to ``mark`` hold every row: they were read as one
        hot = history.ScanBounds(max(bounds.after, mark), bounds.upto)
        hot_x, hot_y = _hot(conn, dialect, cache, pk, stream, hot, x_axis, key)
        if segments.watermark(conn, pk, stream) == mark:
            break  # else a compaction moved rows while they were read: read again
    return joined([cold_x, hot_x]), joined([cold_y, hot_y])


def _state(
    conn: Connection, cache: SegmentCache, pk: int, stream: int, bounds: history.ScanBounds
) -> tuple[int, bool]:
    """The stream's watermark, and whether it may have hot rows within ``bounds``: in one
    statement, so as one snapshot even where each statement has its own (PostgreSQL's read
    committed). Hot rows are looked for past the segments already known, whose last index
    is at most the watermark, so none found means none past the watermark."""
    known = cache.known(pk, stream)
    after = max(bounds.after, known[-1].last_idx if known else -1)
    params = {"pk": pk, "stream": stream, "after": after, "upto": bounds.upto}
    mark, hot = conn.execute(_STATE, params).one()
    return (-1 if mark is None else int(mark)), hot is not None


def _hot(
    conn: Connection, dialect: Dialect, cache: SegmentCache, pk: int, stream: int,
    bounds: history.ScanBounds, x_axis: str, key: str,
) -> tuple[Points, Points]:  # fmt: skip
    """The points of the rows within ``bounds`` past the segments, a page at a time."""
    keys = list(dict.fromkeys([x_axis, key]))
    xs: list[npt.NDArray[Any]] = []
    ys: list[npt.NDArray[Any]] = []
    while bounds.after < bounds.upto:
        found = history.scan(conn, dialect, cache, pk, stream, bounds, keys, PAGE)
        _gathered(found.rows, x_axis, key, xs, ys)
        if len(found.rows) < PAGE or found.last_idx is None:
            break
        bounds = bounds.next(found.last_idx)
    return Points(xs), Points(ys)


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


_Entry = tuple[tuple[int, ...], str, str]  # segment ids, x axis, key
_Part = tuple[npt.NDArray[np.int64], npt.NDArray[Any], npt.NDArray[Any]]  # idx, x, y


@dataclass(frozen=True)
class _Curve:
    """The points of some segments' rows, and the index of each point's row."""

    idx: npt.NDArray[np.int64]
    x: Points
    y: Points

    @property
    def nbytes(self) -> int:
        return self.idx.nbytes + self.x.nbytes + self.y.nbytes


class _Curves:
    """Curves of whole segments by (segment ids, x axis, key), the most recently used that
    fit in ``CACHED_BYTES`` (segments never change, so neither do their points). A curve
    of a run's first segments is kept as its ``longest``, which a curve of more of them
    (the run went on) extends rather than decoding every segment again."""

    def __init__(self) -> None:
        self._found: OrderedDict[_Entry, _Curve] = OrderedDict()
        self._longest: dict[tuple[int, str, str], _Entry] = {}
        self._bytes = 0
        self._lock = threading.Lock()

    def get(self, entry: _Entry) -> _Curve | None:
        with self._lock:
            found = self._found.get(entry)
            if found is not None:
                self._found.move_to_end(entry)
            return found

    def longest(self, entry: _Entry) -> tuple[_Entry, _Curve] | None:
        """The kept curve of the most of the entry's first segments, but not all of them."""
        ids, x_axis, key = entry
        with self._lock:
            found = self._longest.get((ids[0], x_axis, key)) if ids else None
            if found is None or not len(found[0]) < len(ids) or ids[: len(found[0])] != found[0]:
                return None
            return found, self._found[found]

    def put(self, entry: _Entry, curve: _Curve, replacing: _Entry | None = None) -> None:
        with self._lock:
            if replacing is not None and replacing in self._found:
                self._drop(replacing, self._found.pop(replacing))
            if curve.nbytes > CACHED_BYTES or entry in self._found:
                return
            self._found[entry] = curve
            self._bytes += curve.nbytes
            ids, x_axis, key = entry
            longest = self._longest.get((ids[0], x_axis, key)) if ids else None
            if ids and (longest is None or len(longest[0]) <= len(ids)):
                self._longest[ids[0], x_axis, key] = entry
            while self._bytes > CACHED_BYTES:
                self._drop(*self._found.popitem(last=False))

    def _drop(self, entry: _Entry, curve: _Curve) -> None:
        self._bytes -= curve.nbytes
        ids, x_axis, key = entry
        if ids and self._longest.get((ids[0], x_axis, key)) == entry:
            del self._longest[ids[0], x_axis, key]


# one per store: segment ids are its own
_stores: WeakKeyDictionary[SegmentCache, _Curves] = WeakKeyDictionary()
_stores_lock = threading.Lock()


def _curves(cache: SegmentCache) -> _Curves:
    with _stores_lock:
        found = _stores.get(cache)
        if found is None:
            found = _stores[cache] = _Curves()
        return found


def _compacted(
    conn: Connection, cache: SegmentCache, pk: int, stream: int, known: list[segments.Segment],
    bounds: history.ScanBounds, x_axis: str, key: str,
) -> tuple[Points, Points]:  # fmt: skip
    """The points of the rows within ``bounds`` of the ``known`` segments."""
    chosen = [
        segment for segment in known
        if segment.last_idx > bounds.after and segment.first_idx <= bounds.upto
    ]  # fmt: skip
    if "." not in x_axis and "." not in key:
        curve = _curve(conn, cache, pk, stream, chosen, x_axis, key)
        start = int(np.searchsorted(curve.idx, bounds.after, side="right"))
        stop = int(np.searchsorted(curve.idx, bounds.upto, side="right"))
        return curve.x.window(start, stop), curve.y.window(start, stop)
    # a dotted key may reach into nested values: whole rows
    xs: list[npt.NDArray[Any]] = []
    ys: list[npt.NDArray[Any]] = []
    for segment in _holding(conn, pk, stream, chosen, x_axis, key):
        rows = cache.rows(conn, segment.id)
        start = int(np.searchsorted(rows.idx, bounds.after, side="right"))
        stop = int(np.searchsorted(rows.idx, bounds.upto, side="right"))
        _gathered(rows.dicts(start, stop), x_axis, key, xs, ys)
    return Points(xs), Points(ys)


def _holding(
    conn: Connection, pk: int, stream: int, chosen: list[segments.Segment], x_axis: str,
    key: str,
) -> list[segments.Segment]:  # fmt: skip
    """The segments with rows of a key set holding both keys."""
    if not chosen:
        return []
    ids, _ = history._matching_key_sets(conn, pk, stream, list(dict.fromkeys([x_axis, key])))
    if ids is None:
        return chosen
    return [segment for segment in chosen if not set(ids).isdisjoint(segment.key_sets)]


def _curve(
    conn: Connection, cache: SegmentCache, pk: int, stream: int,
    chosen: list[segments.Segment], x_axis: str, key: str,
) -> _Curve:  # fmt: skip
    """The points of whole segments, from their two columns (cached)."""
    curves = _curves(cache)
    entry = (tuple(segment.id for segment in chosen), x_axis, key)
    found = curves.get(entry)
    if found is not None:
        return found
    parts: list[_Part] = []
    longest = curves.longest(entry)
    if longest is not None:
        before = longest[1]
        parts.append((before.idx, before.x.logged(), before.y.logged()))
        chosen = chosen[len(longest[0][0]) :]
    holding = [segment.id for segment in _holding(conn, pk, stream, chosen, x_axis, key)]
    for start in range(0, len(holding), DECODED_AT_ONCE):
        ids = holding[start : start + DECODED_AT_ONCE]
        parts += _decoded(_data(conn, ids), [x_axis, key])
    idx = [part[0] for part in parts]
    found = _Curve(
        np.concatenate(idx) if idx else np.empty(0, np.int64),
        Points([part[1] for part in parts]),
        Points([part[2] for part in parts]),
    )
    curves.put(entry, found, None if longest is None else longest[0])
    return found


def _data(conn: Connection, ids: list[int]) -> list[bytes]:
    """The bytes of segments, in the order of ``ids``."""
    table = history_segments.c
    rows = conn.execute(select(table.id, table.data).where(table.id.in_(ids)))
    found = {segment_id: bytes(data) for segment_id, data in rows}
    return [found[segment_id] for segment_id in ids]


def _decoded(data: list[bytes], keys: list[str]) -> list[_Part]:
    """The (idx, x, y) of each segment's points, decoded on threads (Parquet's decoding
    and numpy's work let go of the GIL)."""
    if len(data) == 1:
        found = [_points_of(data[0], keys)]
    else:
        found = list(_decoder().map(_points_of, data, [keys] * len(data)))
    return [part for part in found if part is not None]


def _points_of(data: bytes, keys: list[str]) -> _Part | None:
    """(idx, x, y) of a segment's points, from its two columns; None when it lacks one."""
    columns = columnar.decode_columns(data, keys)
    x, y = columns.values[keys[0]], columns.values[keys[-1]]
    if x is None or y is None:
        return None
    keep = _numbers(x) & _numbers(y)
    if keep.all():
        return columns.idx, x, y
    return columns.idx[keep], x[keep], y[keep]


def _decoder() -> ThreadPoolExecutor:
    """The threads decoding segments: this process's own (a forked child has none)."""
    global _pool
    with _stores_lock:
        if _pool is None or _pool[0] != os.getpid():
            _pool = (os.getpid(), ThreadPoolExecutor(DECODED_AT_ONCE, "runbase-curves"))
        return _pool[1]


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
