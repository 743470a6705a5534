"""The fast paths of bucketed curves: ``buckets.cut`` against a plain reference of its
docstring, bucket edges found without bucketing every x, values kept as logged, and the
per-store cache of compacted curves (decoded once, extended as a run grows, never shared
between stores)."""

from __future__ import annotations

import itertools
import json
import math
from typing import Any

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from runbase import columnar
from runbase.backend.base import Bucket, HistoryRow, NewRun, RunPath
from runbase.store import buckets, curves, segments
from runbase.store.buckets import Points, cut

RUN_IDS = (f"c{n}" for n in itertools.count())


def plain_cut(
    xs: list[Any], ys: list[Any], n: int, x_min: float | None = None, x_max: float | None = None
) -> list[tuple[Any, Any, float, float, int]]:
    """``cut`` as its docstring says, a point at a time."""
    points = sorted(
        ((float(x), i, x, y) for i, (x, y) in enumerate(zip(xs, ys, strict=True))
         if (x_min is None or float(x) >= x_min) and (x_max is None or float(x) <= x_max)),
        key=lambda point: point[:2],
    )  # fmt: skip
    if len(points) <= n:
        return [(x, y, float(y), float(y), 1) for _, _, x, y in points]
    lo = points[0][0] if x_min is None else float(x_min)
    hi = points[-1][0] if x_max is None else float(x_max)
    groups: dict[int, list[tuple[float, int, Any, Any]]] = {}
    for point in points:
        x, low, high = point[0], lo, hi
        if not math.isfinite(high - low):
            x, low, high = x / 2, low / 2, high / 2
        share = math.floor((x - low) / (high - low) * n) if high > low else 0
        groups.setdefault(min(max(share, 0), n - 1), []).append(point)
    return [
        (group[-1][2], group[-1][3], min(float(p[3]) for p in group),
         max(float(p[3]) for p in group), len(group))
        for _, group in sorted(groups.items())
    ]  # fmt: skip


FLOATS = st.floats(allow_nan=False, allow_infinity=False)
XS = st.one_of(
    st.integers(-50, 50), st.integers(-(2**62), 2**62), st.floats(-100, 100), FLOATS,
    st.sampled_from([0, 0.1, 0.3, 1e308, -1e308, 2**53 + 1]),
)  # fmt: skip


@settings(max_examples=300, deadline=None)
@given(
    xs=st.lists(XS, max_size=80),
    ascending=st.booleans(),
    n=st.integers(1, 12),
    bounds=st.tuples(st.none() | FLOATS, st.none() | FLOATS),
)
def test_cut_is_its_docstring(xs, ascending, n, bounds):
    if ascending:
        xs = sorted(xs, key=float)
    ys = [x if i % 3 else float(i) for i, x in enumerate(xs)]
    x_min, x_max = bounds
    if x_min is not None and x_max is not None and x_min > x_max:
        x_min, x_max = x_max, x_min
    assert cut(Points.of(xs), Points.of(ys), n, x_min, x_max) == plain_cut(xs, ys, n, x_min, x_max)


@pytest.mark.parametrize("n", [1, 2, 3, 7, 999, 1000, 1001, 100_000])
@pytest.mark.parametrize(
    "x",
    [
        np.arange(100_000, dtype=np.float64),
        np.arange(100_000) * 0.1,
        np.repeat(np.arange(100), 1000) / 3,
        np.concatenate([np.linspace(-1e308, 0, 2500), np.linspace(0, 1e308, 2500)[1:]]),
        np.cumsum(np.random.default_rng(5).exponential(size=20_000)),
    ],
)
def test_bucket_edges_are_those_of_every_x(x, n):
    lo, hi = float(x[0]), float(x[-1])
    starts = buckets._bucket_starts(x, lo, hi, n)
    assert starts.tolist() == buckets._bisected(x, lo, hi, n).tolist()
    ids = buckets._bucket_ids(x, lo, hi, n)
    assert starts.tolist() == np.searchsorted(ids, np.arange(n), side="left").tolist()


def test_points_keep_values_as_logged():
    steps = Points([np.arange(5, dtype=np.int64)])
    assert steps.values(np.array([0, 4])) == [0, 4]
    assert all(type(v) is int for v in steps.values(np.array([1, 2])))
    big = Points([np.array([2**53 + 1, 2**62], dtype=np.int64)])
    assert big.values(np.array([0, 1])) == [2**53 + 1, 2**62]
    mixed = Points([np.array([1, 2], dtype=np.int64), np.array([2.5]), Points.of([2**70]).logged()])
    assert mixed.values(np.arange(4)) == [1, 2, 2.5, 2**70]
    assert [type(v) for v in mixed.values(np.arange(3))] == [int, int, float]
    assert mixed.floats.tolist() == [1.0, 2.0, 2.5, float(2**70)]
    part = mixed.window(1, 3)
    assert part.values(np.arange(2)) == [2, 2.5] and part.floats.base is not None
    assert buckets.joined([Points([]), steps]) is steps
    assert buckets.joined([steps, big]).values(np.arange(7)) == [0, 1, 2, 3, 4, 2**53 + 1, 2**62]


def rows_of(values: list[dict[str, Any]], first: int) -> list[HistoryRow]:
    return [
        HistoryRow(idx, idx, tuple(sorted({"_step", *row})), json.dumps({"_step": idx, **row}))
        for idx, row in enumerate(values, start=first)
    ]


def bucketed(backend, path: RunPath, n: int = 50, **bounds: Any) -> list[Bucket]:
    found = backend.bucketed_histories(
        [path], "default", "y", "_step", n, bounds.get("x_min"), bounds.get("x_max")
    )
    return found[0]


@pytest.fixture
def decodes(monkeypatch) -> list[int]:
    """Counts the segments decoded for curves."""
    counted: list[int] = []
    decode = columnar.decode_columns

    def counting(data: bytes, keys: list[str]) -> columnar.Columns:
        counted.append(1)
        return decode(data, keys)

    monkeypatch.setattr(columnar, "decode_columns", counting)
    return counted


def test_a_curve_is_decoded_once_and_extended_as_the_run_grows(backend, decodes, monkeypatch):
    monkeypatch.setattr(curves, "DECODED_AT_ONCE", 2)
    path = RunPath("tester", "p", next(RUN_IDS))
    backend.create_run(path, NewRun())
    values = [{"y": float(i % 17)} if i % 5 else {"z": 1} for i in range(3000)]
    logged: list[dict[str, Any]] = []

    def grow(count: int, compact: bool) -> None:
        backend.append_history(path, "default", rows_of(values[:count], len(logged)), {})
        logged.extend(values[:count])
        if compact:
            pk = backend._pk(path)
            backend.store.write_fn(lambda conn: segments.compact_next(conn, pk, 0, 10**9))

    def expected(n: int = 50, **bounds: Any) -> list[Bucket]:
        xs = [i for i, row in enumerate(logged) if "y" in row]
        ys = [row["y"] for row in logged if "y" in row]
        return [Bucket(*row) for row in plain_cut(xs, ys, n, **bounds)]

    for _ in range(5):
        grow(1000, compact=True)
    assert bucketed(backend, path) == expected()
    assert len(decodes) == 5
    assert bucketed(backend, path) == expected() and len(decodes) == 5  # kept
    grow(300, compact=False)  # hot rows past the segments
    assert bucketed(backend, path) == expected() and len(decodes) == 5
    grow(700, compact=True)
    assert bucketed(backend, path) == expected() and len(decodes) == 6  # only the new one
    assert bucketed(backend, path, 7, x_min=1500, x_max=4321) == expected(7, x_min=1500, x_max=4321)
    assert bucketed(backend, path, 7, x_min=10**6) == []


def test_stores_keep_curves_of_their_own(tmp_path, monkeypatch, database_url):
    """Two stores number their segments alike: a curve of one is never read for the other."""
    from runbase.backend.local import LocalBackend
    from runbase.store import Store

    if database_url:
        pytest.skip("one PostgreSQL database per test")
    made = []
    for name, value in (("a", 1.0), ("b", 2.0)):
        backend = LocalBackend(Store.open(None, tmp_path / name), "tester")
        path = RunPath("tester", "p", "same")
        backend.create_run(path, NewRun())
        backend.append_history(path, "default", rows_of([{"y": value}] * 10, 0), {})
        backend.compact(path)
        made.append((backend, path))
    assert [bucketed(backend, path)[0].y for backend, path in made] == [1.0, 2.0]
    for backend, _ in made:
        backend.close()


def test_the_cache_is_bounded(monkeypatch):
    monkeypatch.setattr(curves, "CACHED_BYTES", 1000)
    kept = curves._Curves()

    def curve(points: int) -> curves._Curve:
        return curves._Curve(np.arange(points), Points.of([1.0] * points), Points.of([1] * points))

    kept.put(((1,), "x", "y"), curve(2))
    kept.put(((1, 2), "x", "y"), curve(3), replacing=((1,), "x", "y"))
    assert kept.get(((1,), "x", "y")) is None
    longest = kept.longest(((1, 2, 3), "x", "y"))
    assert longest is not None and longest[0] == ((1, 2), "x", "y")
    assert kept.longest(((1, 3), "x", "y")) is None
    kept.put(((5,), "x", "y"), curve(100))  # over the bound: not kept
    assert kept.get(((5,), "x", "y")) is None
    for n in range(10, 20):
        kept.put(((n,), "x", "y"), curve(5))
    assert kept._bytes <= 1000 and kept.get(((19,), "x", "y")) is not None
    assert kept.get(((1, 2), "x", "y")) is None and kept.longest(((1, 2, 3), "x", "y")) is None
