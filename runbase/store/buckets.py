"""Bucketed curves: a metric's points over an x axis, cut into equal-width buckets.

A chart as wide as N pixels needs N buckets, not a million points. Each bucket keeps its last
point and the least and greatest y of its points, so spikes survive (random or stride
sampling drops them). Pure functions, no SQL: ``gather`` takes the points out of decoded
rows, ``cut`` buckets them.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence
from typing import Any

import numpy as np
import numpy.typing as npt
import orjson

from runbase.documents import decode_row

# (x, y) of the bucket's last point, y_min, y_max, count
BucketRow = tuple[Any, Any, float, float, int]
FLOAT_LIMIT = 2**1024  # an int at least this large has no float


def gather(
    rows: Iterable[str | dict[str, Any]], x_axis: str, key: str, xs: list[Any], ys: list[Any]
) -> None:
    """Append to ``xs`` and ``ys`` the point of each row (JSON text, or decoded) that has
    one: both values ``is_number``. A dotted key that the row does not hold reaches into
    nested values (``train.loss``)."""
    # ``is_number`` inlined: this loop runs once a row, and calls cost a third of its time
    loads, malformed, isfinite = orjson.loads, orjson.JSONDecodeError, math.isfinite
    nested_x, nested_y = "." in x_axis, "." in key
    for text in rows:
        if isinstance(text, dict):
            row = text
        else:
            try:
                row = loads(text)
            except malformed:  # NaN or Infinity tokens
                row = decode_row(text)
        x: Any = row.get(x_axis)
        if x is None and nested_x and x_axis not in row:
            x = _nested(row, x_axis)
        kind = type(x)
        if kind is float:
            if not isfinite(x):
                continue
        elif kind is not int or not -FLOAT_LIMIT < x < FLOAT_LIMIT:
            continue
        y: Any = row.get(key)
        if y is None and nested_y and key not in row:
            y = _nested(row, key)
        kind = type(y)
        if kind is float:
            if not isfinite(y):
                continue
        elif kind is not int or not -FLOAT_LIMIT < y < FLOAT_LIMIT:
            continue
        xs.append(x)
        ys.append(y)


def is_number(value: Any) -> bool:
    """Whether a value can be a point's x or y: a real number (int or float, not bool),
    finite."""
    kind = type(value)
    if kind is float:
        return math.isfinite(value)
    return kind is int and -FLOAT_LIMIT < value < FLOAT_LIMIT


def _nested(row: dict[str, Any], key: str) -> Any:
    node: Any = row
    for part in key.split("."):
        if not isinstance(node, dict) or part not in node:
            return None
        node = node[part]
    return node


class Points:
    """Values in row order, given in parts (arrays, typed or of Python values): as one
    float64 array, and each as it was logged (an int stays an int)."""

    def __init__(self, parts: Sequence[npt.NDArray[Any]]) -> None:
        parts = [part for part in parts if len(part)]
        self.floats: npt.NDArray[np.float64] = (
            np.concatenate([np.asarray(part, dtype=np.float64) for part in parts])
            if parts else np.empty(0, dtype=np.float64)
        )  # fmt: skip
        self._logged, self._ints = _as_logged(parts, self.floats)
        self._ascending: bool | None = None

    @classmethod
    def of(cls, values: Sequence[Any]) -> Points:
        """Points of Python values."""
        array = np.empty(len(values), dtype=object)
        array[:] = values
        return cls([array])

    def __len__(self) -> int:
        return len(self.floats)

    @property
    def nbytes(self) -> int:
        """About the memory the points hold (a Python value taken as 32 bytes)."""
        if self._logged is None:
            return self.floats.nbytes
        per_value = 40 if self._logged.dtype == object else self._logged.itemsize
        return self.floats.nbytes + per_value * len(self._logged)

    def ascending(self) -> bool:
        """Whether the values never decrease (computed once)."""
        if self._ascending is None:
            self._ascending = bool(np.all(self.floats[1:] >= self.floats[:-1]))
        return self._ascending

    def window(self, start: int, stop: int) -> Points:
        """The points at positions ``start``..``stop``, sharing these arrays."""
        if (start, stop) == (0, len(self)):
            return self
        part = Points.__new__(Points)
        part.floats = self.floats[start:stop]
        part._logged = None if self._logged is None else self._logged[start:stop]
        part._ints = self._ints
        part._ascending = True if self._ascending else None
        return part

    def logged(self) -> npt.NDArray[Any]:
        """The values as logged, as one array."""
        if self._logged is not None:
            return self._logged
        return self.floats.astype(np.int64) if self._ints else self.floats

    def values(self, positions: npt.NDArray[np.intp]) -> list[Any]:
        """The values at ``positions`` as logged."""
        if self._logged is not None:
            found: list[Any] = self._logged[positions].tolist()
        elif self._ints:
            found = self.floats[positions].astype(np.int64).tolist()
        else:
            found = self.floats[positions].tolist()
        return found


def joined(points: Sequence[Points]) -> Points:
    """Points one after another."""
    nonempty = [each for each in points if len(each)]
    if len(nonempty) == 1:
        return nonempty[0]
    return Points([each.logged() for each in nonempty])


def _as_logged(
    parts: list[npt.NDArray[Any]], floats: npt.NDArray[np.float64]
) -> tuple[npt.NDArray[Any] | None, bool]:
    """The values as logged when the floats do not give them (else None), and whether the
    floats give them as ints: each is an int of less than 2**53, which a float holds."""
    kinds = {part.dtype for part in parts}
    if kinds <= {np.dtype(np.float64)}:
        return None, False
    if kinds == {np.dtype(np.int64)}:
        if max(floats.max(), -floats.min()) < 2**53:
            return None, True
        return np.concatenate(parts), False
    return np.concatenate([part.astype(object) for part in parts]), False


def cut(
    xs: Points | Sequence[Any], ys: Points | Sequence[Any], buckets: int, x_min: float | None,
    x_max: float | None,
) -> list[BucketRow]:  # fmt: skip
    """The buckets of the points ``(xs[i], ys[i])``, given in row order, in x order.

    Points with x outside ``[x_min, x_max]`` (each bound inclusive, None for none) are left
    out. When no more than ``buckets`` points remain, each is a bucket of its own; else
    ``[lo, hi]`` (``x_min``/``x_max``, else the least/greatest x) is cut into ``buckets``
    equal widths, a point going to ``floor((x - lo) / (hi - lo) * buckets)`` (the last
    bucket for ``x == hi``), and empty buckets are left out. Points are ordered by x, ties
    by row order; a bucket's last point is its last in that order. x and y are compared as
    float64."""
    xs = xs if isinstance(xs, Points) else Points.of(xs)
    ys = ys if isinstance(ys, Points) else Points.of(ys)
    # x is a step or a time: in order already, and then no position needs moving
    order = None if xs.ascending() else np.argsort(xs.floats, kind="stable")
    ordered_x = xs.floats if order is None else xs.floats[order]
    first = 0 if x_min is None else int(np.searchsorted(ordered_x, x_min, side="left"))
    end = len(xs) if x_max is None else int(np.searchsorted(ordered_x, x_max, side="right"))
    ordered_x = ordered_x[first:end]
    if len(ordered_x) <= buckets:
        rows = _rows(order, first, np.arange(len(ordered_x)))
        y = ys.floats[rows].tolist()
        return list(zip(xs.values(rows), ys.values(rows), y, y, [1] * len(y), strict=True))
    lo = float(ordered_x[0]) if x_min is None else float(x_min)
    hi = float(ordered_x[-1]) if x_max is None else float(x_max)
    starts = _bucket_starts(ordered_x, lo, hi, buckets)
    ends = np.append(starts[1:], len(ordered_x))
    starts, ends = starts[starts < ends], ends[starts < ends]  # empty buckets left out
    ordered_y = ys.floats[first:end] if order is None else ys.floats[order[first:end]]
    low = np.minimum.reduceat(ordered_y, starts).tolist()
    high = np.maximum.reduceat(ordered_y, starts).tolist()
    last = _rows(order, first, ends - 1)
    counts = (ends - starts).tolist()
    return list(zip(xs.values(last), ys.values(last), low, high, counts, strict=True))


def _rows(
    order: npt.NDArray[np.intp] | None, first: int, at: npt.NDArray[np.intp]
) -> npt.NDArray[np.intp]:
    """The row positions of the points ``at`` positions past ``first`` in x order."""
    return at + first if order is None else order[at + first]


def _bucket_starts(
    x: npt.NDArray[np.float64], lo: float, hi: float, buckets: int
) -> npt.NDArray[np.intp]:
    """Where each bucket's points start in x (ascending, within ``[lo, hi]``): for bucket b,
    the first position whose bucket (``_bucket_ids``) is at least b. Found from the edges
    ``lo + b * (hi - lo) / buckets``, then moved past the x that rounding put on the wrong
    side of them, so that only a few x per bucket are bucketed rather than every x."""
    targets = np.arange(1, buckets)
    with np.errstate(all="ignore"):
        edges = lo + targets * ((hi - lo) / buckets)
    starts = np.searchsorted(x, edges, side="left")
    for _ in range(4):  # rounding errs by an ulp or so: a few distinct x at most
        at = x[np.minimum(starts, len(x) - 1)]
        early = (starts < len(x)) & (_bucket_ids(at, lo, hi, buckets) < targets)
        before = x[np.maximum(starts - 1, 0)]
        late = (starts > 0) & (_bucket_ids(before, lo, hi, buckets) >= targets)
        if not (early.any() or late.any()):
            return np.concatenate(([0], starts))
        starts = np.where(early, np.searchsorted(x, at, side="right"), starts)
        starts = np.where(late, np.searchsorted(x, before, side="left"), starts)
    return _bisected(x, lo, hi, buckets)


def _bisected(
    x: npt.NDArray[np.float64], lo: float, hi: float, buckets: int
) -> npt.NDArray[np.intp]:
    """``_bucket_starts`` by a bisection of all buckets at once."""
    targets = np.arange(1, buckets)
    low = np.zeros(buckets - 1, dtype=np.intp)
    high = np.full(buckets - 1, len(x), dtype=np.intp)
    while (open_ := low < high).any():
        middle = (low + high) // 2
        below = _bucket_ids(x[np.minimum(middle, len(x) - 1)], lo, hi, buckets) < targets
        low = np.where(open_ & below, middle + 1, low)
        high = np.where(open_ & ~below, middle, high)
    return np.concatenate(([0], low))


def _bucket_ids(
    x: npt.NDArray[np.float64], lo: float, hi: float, buckets: int
) -> npt.NDArray[np.int64]:
    """The bucket of each x (in ``[lo, hi]``), non-decreasing when x is."""
    if not math.isfinite(hi - lo):  # halving is exact and keeps the span finite
        x, lo, hi = x / 2, lo / 2, hi / 2
    span = hi - lo
    if span <= 0:
        return np.zeros(len(x), dtype=np.int64)
    ids = np.floor((x - lo) / span * buckets)
    return np.clip(ids, 0, buckets - 1).astype(np.int64)
