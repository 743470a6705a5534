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
    """Values given in parts (arrays, typed or of Python values): as one float64 array, and
    each as it was logged (an int stays an int)."""

    def __init__(self, parts: Sequence[npt.NDArray[Any]]) -> None:
        self.parts = [part for part in parts if len(part)]
        self._offsets = np.cumsum([0, *map(len, self.parts)])
        self.floats: npt.NDArray[np.float64] = (
            np.concatenate([np.asarray(part, dtype=np.float64) for part in self.parts])
            if self.parts else np.empty(0, dtype=np.float64)
        )  # fmt: skip

    def __len__(self) -> int:
        return len(self.floats)

    def __getitem__(self, i: int) -> Any:
        part = int(np.searchsorted(self._offsets, i, side="right")) - 1
        value = self.parts[part][i - int(self._offsets[part])]
        return value.item() if isinstance(value, np.generic) else value


def cut(
    xs: Points | list[Any], ys: Points | list[Any], buckets: int, x_min: float | None,
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
    x = xs.floats if isinstance(xs, Points) else np.array(xs, dtype=np.float64)
    in_order = bool(np.all(x[1:] >= x[:-1]))  # x is a step or a time: sorted already
    order = np.arange(len(x)) if in_order else np.argsort(x, kind="stable")
    ordered_x = x[order]
    first = 0 if x_min is None else int(np.searchsorted(ordered_x, x_min, side="left"))
    end = len(x) if x_max is None else int(np.searchsorted(ordered_x, x_max, side="right"))
    order, ordered_x = order[first:end], ordered_x[first:end]
    if len(order) <= buckets:
        return [(xs[i], ys[i], float(ys[i]), float(ys[i]), 1) for i in order.tolist()]
    lo = float(ordered_x[0]) if x_min is None else float(x_min)
    hi = float(ordered_x[-1]) if x_max is None else float(x_max)
    ids = _bucket_ids(ordered_x, lo, hi, buckets)
    starts = np.concatenate(([0], np.flatnonzero(np.diff(ids)) + 1))
    ends = np.append(starts[1:], len(order))
    ordered_y = (ys.floats if isinstance(ys, Points) else np.array(ys, dtype=np.float64))[order]
    low = np.minimum.reduceat(ordered_y, starts).tolist()
    high = np.maximum.reduceat(ordered_y, starts).tolist()
    last = order[ends - 1].tolist()
    counts = (ends - starts).tolist()
    return [
        (xs[i], ys[i], y_min, y_max, count)
        for i, y_min, y_max, count in zip(last, low, high, counts, strict=True)
    ]


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
