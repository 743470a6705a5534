"""Bucketed curves for charts: ``Run.bucketed_history`` and ``Runs.bucketed_histories``,
checked against a plain reference implementation over the same rows."""

from __future__ import annotations

import itertools
import json
import math
import random
from typing import Any

import pandas as pd
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import runbase
from runbase.backend.base import HistoryRow
from runbase.errors import InvalidInput

COLUMNS = ["x", "y", "y_min", "y_max", "count"]
_run_ids = itertools.count()


def is_real(value: Any) -> bool:
    return type(value) in (int, float) and math.isfinite(value)


def reference(
    rows: list[dict[str, Any]],
    key: str,
    x_axis: str,
    buckets: int,
    x_min: float | None = None,
    x_max: float | None = None,
) -> list[dict[str, Any]]:
    """The buckets as the docs describe them, written plainly."""
    points = [
        (row[x_axis], idx, row[key])
        for idx, row in enumerate(rows)
        if is_real(row.get(x_axis)) and is_real(row.get(key))
        and (x_min is None or row[x_axis] >= x_min) and (x_max is None or row[x_axis] <= x_max)
    ]  # fmt: skip
    points.sort(key=lambda point: (point[0], point[1]))
    if len(points) <= buckets:
        return [bucket([point]) for point in points]
    lo = points[0][0] if x_min is None else x_min
    hi = points[-1][0] if x_max is None else x_max
    groups: dict[int, list[tuple[Any, int, Any]]] = {}
    for point in points:
        share = (float(point[0]) - lo) / (hi - lo) if hi > lo else 0.0
        groups.setdefault(min(math.floor(share * buckets), buckets - 1), []).append(point)
    return [bucket(group) for _, group in sorted(groups.items())]


def bucket(points: list[tuple[Any, int, Any]]) -> dict[str, Any]:
    x, _, y = points[-1]
    ys = [point[2] for point in points]
    return {"x": x, "y": y, "y_min": float(min(ys)), "y_max": float(max(ys)), "count": len(ys)}


def logged(make, rows: list[dict[str, Any]], compacted: int = 0) -> str:
    """A new run with the rows, the first ``compacted`` of them moved into segments."""
    run_id = f"b{next(_run_ids)}"
    path = make.create(run_id)
    if compacted:
        make.log(path, rows[:compacted])
        make.backend.compact(path)
    if rows[compacted:]:
        make.log(path, rows[compacted:])
    return run_id


@pytest.fixture
def spiky(make) -> tuple[str, list[dict[str, Any]]]:
    """100,000 rows of a smooth loss with one spike."""
    noise = random.Random(7)
    rows = [
        {"_step": step, "loss": 1 / (step + 1) + noise.random() / 1000} for step in range(100_000)
    ]
    rows[61_234]["loss"] = 50.0
    return logged(make, rows), rows


def test_a_spike_survives_and_every_point_is_counted(api, spiky):
    run_id, rows = spiky
    found = api.run(run_id).bucketed_history("loss", buckets=1000, pandas=False)
    assert len(found) == 1000
    assert sum(b["count"] for b in found) == 100_000
    assert max(b["y_max"] for b in found) == 50.0
    spike = next(b for b in found if b["y_max"] == 50.0)
    assert spike["x"] - 100 < 61_234 <= spike["x"]
    assert found == reference(rows, "loss", "_step", 1000)
    assert all(b["y_min"] <= b["y"] <= b["y_max"] for b in found)


def test_a_step_range_of_a_long_run(api, spiky):
    run_id, rows = spiky
    run = api.run(run_id)
    found = run.bucketed_history("loss", buckets=100, x_min=61_000, x_max=62_000, pandas=False)
    assert sum(b["count"] for b in found) == 1001  # both ends inclusive
    assert found == reference(rows, "loss", "_step", 100, 61_000, 62_000)
    assert max(b["y_max"] for b in found) == 50.0
    assert [b["x"] for b in run.bucketed_history("loss", 10, x_min=99_995, pandas=False)] == [
        99_995, 99_996, 99_997, 99_998, 99_999,
    ]  # fmt: skip


def test_few_points_come_back_raw(api, make):
    rows = [{"_step": step, "loss": float(step * step)} for step in range(10)]
    run = api.run(logged(make, rows))
    raw = run.bucketed_history("loss", buckets=10, pandas=False)
    assert raw == [
        {"x": step, "y": step * step, "y_min": step * step, "y_max": step * step, "count": 1}
        for step in range(10)
    ]
    cut = run.bucketed_history("loss", buckets=9, pandas=False)
    assert len(cut) == 9 and sum(b["count"] for b in cut) == 10
    assert cut == reference(rows, "loss", "_step", 9)


def test_a_buckets_last_point_is_its_greatest_x_and_then_its_latest_row(api, make):
    rows = [{"_step": i, "epoch": i // 4, "loss": float(i)} for i in range(40)]
    found = api.run(logged(make, rows)).bucketed_history(
        "loss", buckets=5, x_axis="epoch", pandas=False
    )
    assert [(b["x"], b["y"], b["y_min"], b["y_max"], b["count"]) for b in found] == [
        (2 * k + 1, 8.0 * k + 7, 8.0 * k, 8.0 * k + 7, 8) for k in range(5)
    ]


def test_an_x_axis_out_of_order(api, make):
    order = random.Random(3).sample(range(300), 300)
    rows = [{"_step": i, "_runtime": t / 10, "loss": float(t)} for i, t in enumerate(order)]
    rows += [{"_step": 300, "_runtime": 0.0, "loss": -1.0}]  # a tie at the first x: later row
    run = api.run(logged(make, rows))
    for buckets in (7, 300, 301, 1000):
        found = run.bucketed_history("loss", buckets=buckets, x_axis="_runtime", pandas=False)
        assert found == reference(rows, "loss", "_runtime", buckets)
        assert [b["x"] for b in found] == sorted(b["x"] for b in found)
    raw = run.bucketed_history("loss", buckets=301, x_axis="_runtime", pandas=False)
    assert raw[:2] == [
        {"x": 0.0, "y": 0.0, "y_min": 0.0, "y_max": 0.0, "count": 1},
        {"x": 0.0, "y": -1.0, "y_min": -1.0, "y_max": -1.0, "count": 1},
    ]
    ranged = run.bucketed_history("loss", 4, x_axis="_runtime", x_min=2.5, x_max=3.0)
    assert ranged.to_dict("records") == reference(rows, "loss", "_runtime", 4, 2.5, 3.0)
    assert ranged["count"].sum() == 6


def test_x_range_bounds(api, make):
    rows = [{"_step": step * 2, "loss": float(step)} for step in range(50)]
    run = api.run(logged(make, rows))
    for x_min, x_max in [(10, 20), (10.5, 19.5), (None, 7), (91, None), (40, 40), (41, 41),
                         (-100, 1000), (500, 600), (-5.0, -1)]:  # fmt: skip
        for buckets in (1, 3, 100):
            found = run.bucketed_history("loss", buckets, x_min=x_min, x_max=x_max, pandas=False)
            assert found == reference(rows, "loss", "_step", buckets, x_min, x_max)
    # the range is cut into equal widths, however much of it holds points
    found = run.bucketed_history("loss", buckets=2, x_min=0, x_max=196, pandas=False)
    assert [(b["x"], b["count"]) for b in found] == [(96, 49), (98, 1)]


def test_sparse_keys(api, make):
    rows = []
    for step in range(1000):
        row: dict[str, Any] = {"_step": step, "loss": 1.0}
        if step % 10 == 0:
            row["val"] = step / 10
        rows.append(row)
    rows[500]["val"] = None
    run = api.run(logged(make, rows))
    found = run.bucketed_history("val", buckets=10, pandas=False)
    assert sum(b["count"] for b in found) == 99
    assert found == reference(rows, "val", "_step", 10)
    assert run.bucketed_history("missing", pandas=False) == []


def test_compacted_rows_read_as_hot_ones(api, make):
    values = [1, 2.5, None, "s", True, math.nan, -math.inf, 7, {"a": 1}, 2**60]
    rows = [
        {"_step": i, "_runtime": (i * 7919) % 3001 / 10, "y": values[i % 10] if i % 7 else i}
        for i in range(3000)
    ]
    rows += [{"_step": 3000 + i, "z": 1.0} for i in range(10)]  # a key set without y
    hot = api.run(logged(make, rows))
    mixed = api.run(logged(make, rows, compacted=2000))
    reads = [("_step", 100, None, None), ("_runtime", 50, 10, 250), ("_step", 100, 500, 2500),
             ("_step", 5000, None, 900)]  # fmt: skip
    for x_axis, buckets, x_min, x_max in reads:
        expected = reference(rows, "y", x_axis, buckets, x_min, x_max)
        for run in (hot, mixed):
            found = run.bucketed_history("y", buckets, x_axis, x_min, x_max, pandas=False)
            assert found == expected


@pytest.mark.parametrize("compacted", [0, 16])
def test_values_that_are_no_points(api, make, compacted):
    values = [3, 2.5, True, False, None, "7", math.nan, math.inf, -math.inf, {"a": 1}, [1], -4]
    rows = [{"_step": i, "y": value} for i, value in enumerate(values)]
    rows += [{"_step": 20, "y": 10, "m": math.nan}, {"_step": 21, "y": 11, "m": "1"},
             {"_step": 22, "y": 12, "m": True}, {"_step": 23, "y": 13, "m": 0}]  # fmt: skip
    for row in rows:
        row["flag"] = True
    run = api.run(logged(make, rows, compacted))
    assert run.bucketed_history("flag", pandas=False) == []
    found = run.bucketed_history("y", pandas=False)
    assert [(b["x"], b["y"]) for b in found] == [(0, 3), (1, 2.5), (11, -4), (20, 10),
                                                 (21, 11), (22, 12), (23, 13)]  # fmt: skip
    assert [b["y"] for b in run.bucketed_history("y", x_axis="m", pandas=False)] == [13]
    assert run.bucketed_history("y", buckets=2, pandas=False) == reference(rows, "y", "_step", 2)


def test_nested_keys(api, make):
    dicts = [{"_step": s, "train": {"loss": s}} if s % 2 else {"_step": s, "lr": 0.1}
              for s in range(6)]  # fmt: skip
    leaf_keys = [("_step", "train.loss") if "train" in row else ("_step", "lr") for row in dicts]
    rows = [HistoryRow(s, s, leaf_keys[s], json.dumps(row)) for s, row in enumerate(dicts)]
    for compacted in (0, 4, 6):
        path = make.create(f"nested{compacted}")
        if compacted:
            make.backend.append_history(path, "default", rows[:compacted], {})
            make.backend.compact(path)
        if rows[compacted:]:
            make.backend.append_history(path, "default", rows[compacted:], {})
        found = api.run(path.run_id).bucketed_history("train.loss", pandas=False)
        assert [(b["x"], b["y"]) for b in found] == [(1, 1), (3, 3), (5, 5)]


def test_nested_keys_logged_by_the_sdk(api, data_dir):
    logging = runbase.init(project="proj")
    for step in range(6):
        runbase.log({"train": {"loss": float(step)}} if step % 2 else {"lr": 0.1})
    runbase.finish()
    run = api.run(logging.id)
    found = run.bucketed_history("train.loss", pandas=False)
    assert [(b["x"], b["y"]) for b in found] == [(1, 1.0), (3, 3.0), (5, 5.0)]


def test_system_stream(api, make):
    path = make.create("sys")
    make.log(path, [{"_step": 0, "loss": 1.0}])
    rows = [{"system.cpu": float(i % 5), "_runtime": i * 2.0} for i in range(30)]
    make.log(path, rows, stream="system")
    run = api.run("sys")
    found = run.bucketed_history("system.cpu", 3, x_axis="_runtime", stream="system")
    assert found.to_dict("records") == reference(rows, "system.cpu", "_runtime", 3)
    assert run.bucketed_history("loss", stream="system", pandas=False) == []


def test_frames(api, make):
    rows = [{"_step": step, "loss": float(step)} for step in range(5)]
    run = api.run(logged(make, rows))
    frame = run.bucketed_history("loss", buckets=2)
    assert isinstance(frame, pd.DataFrame) and list(frame.columns) == COLUMNS
    assert frame["x"].tolist() == [1, 4] and frame["count"].tolist() == [2, 3]
    empty = run.bucketed_history("missing")
    assert empty.empty and list(empty.columns) == COLUMNS
    assert list(api.runs().bucketed_histories("missing").columns) == ["run_id", *COLUMNS]


def test_several_runs_in_order_one_call_per_page(api, make, backend):
    made = {}
    for i in range(5):
        rows = [{"_step": step, "loss": i + step / 100} for step in range(50 + i)]
        made[logged(make, rows)] = rows
    logged(make, [{"_step": 0, "acc": 1.0}])  # a run without the key
    runs = api.runs(order="+created_at", per_page=2)
    before = backend.calls["bucketed_histories"]
    frame = runs.bucketed_histories("loss", buckets=20)
    assert backend.calls["bucketed_histories"] - before == 3
    assert list(frame.columns) == ["run_id", *COLUMNS]
    assert list(frame["run_id"].unique()) == list(made)
    for run_id, rows in made.items():
        mine = frame[frame["run_id"] == run_id].drop(columns="run_id").to_dict("records")
        assert mine == reference(rows, "loss", "_step", 20)
        assert mine == api.run(run_id).bucketed_history("loss", buckets=20, pandas=False)
    listed = runs.bucketed_histories("loss", buckets=20, x_min=10, pandas=False)
    assert [row["run_id"] for row in listed] == [r for r in made for _ in range(20)]
    assert list(listed[0]) == ["run_id", *COLUMNS]


def test_answers_are_kept_until_flush(api, make, backend):
    path = make.create("live")
    make.log(path, [{"_step": 0, "loss": 1.0}])
    run = api.run("live")
    before = backend.calls["bucketed_histories"]
    assert len(run.bucketed_history("loss", pandas=False)) == 1
    make.log(path, [{"_step": 1, "loss": 2.0}])
    assert len(run.bucketed_history("loss", pandas=False)) == 1
    assert backend.calls["bucketed_histories"] - before == 1
    api.flush()
    assert len(run.bucketed_history("loss", pandas=False)) == 2


@pytest.mark.parametrize(
    ("kwargs", "name"),
    [({"key": 1}, "key"), ({"key": None}, "key"), ({"x_axis": ["_step"]}, "x_axis"),
     ({"buckets": 0}, "buckets"), ({"buckets": -3}, "buckets"), ({"buckets": 2.0}, "buckets"),
     ({"buckets": True}, "buckets"), ({"buckets": "10"}, "buckets"), ({"x_min": "1"}, "x_min"),
     ({"x_min": math.nan}, "x_min"), ({"x_max": math.inf}, "x_max"), ({"x_max": True}, "x_max"),
     ({"x_min": 10**400}, "x_min"), ({"x_min": 5, "x_max": 4}, "x_min"),
     ({"stream": "gpu"}, "stream")],
)  # fmt: skip
def test_bad_arguments_name_themselves(api, make, backend, kwargs, name):
    run = api.run(logged(make, [{"_step": 0, "loss": 1.0}]))
    before = backend.calls["bucketed_histories"]
    arguments = {"key": "loss", **kwargs}
    with pytest.raises(InvalidInput, match=name):
        run.bucketed_history(**arguments)
    with pytest.raises(InvalidInput, match=name):
        api.runs().bucketed_histories(**arguments)
    assert backend.calls["bucketed_histories"] == before  # refused before any call
    with pytest.raises(InvalidInput, match=name):
        api.client.backend.bucketed_histories(
            [run._path], arguments.pop("stream", "default"), arguments.pop("key"),
            arguments.pop("x_axis", "_step"), arguments.pop("buckets", 10),
            arguments.pop("x_min", None), arguments.pop("x_max", None),
        )  # fmt: skip


NUMBERS = st.one_of(
    st.integers(-1000, 1000), st.floats(-1e4, 1e4, allow_nan=False, allow_infinity=False)
)
VALUES = st.one_of(
    NUMBERS, NUMBERS, NUMBERS, st.none(), st.booleans(), st.text(max_size=2),
    st.sampled_from([math.nan, math.inf, -math.inf]),
)  # fmt: skip
BOUNDS = st.one_of(st.none(), NUMBERS)


@st.composite
def histories(draw: st.DrawFn) -> tuple[list[dict[str, Any]], str, int]:
    """Rows with a value of ``y`` and ``m`` each (or not), over ``m`` or growing steps, and
    how many of them are compacted."""
    rows = draw(st.lists(st.fixed_dictionaries({}, optional={"m": VALUES, "y": VALUES}),
                         max_size=60))  # fmt: skip
    x_axis = draw(st.sampled_from(["m", "_step"]))
    if x_axis == "_step":
        step = draw(st.integers(-5, 5))
        for row in rows:
            step += draw(st.integers(0, 3))
            row["_step"] = step
    return rows, x_axis, draw(st.integers(0, len(rows)))


@settings(
    max_examples=40,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(history=histories(), buckets=st.integers(1, 12), bounds=st.tuples(BOUNDS, BOUNDS))
def test_buckets_match_the_reference(api, make, history, buckets, bounds):  # fmt: skip
    rows, x_axis, compacted = history
    x_min, x_max = bounds
    if x_min is not None and x_max is not None and x_min > x_max:
        x_min, x_max = x_max, x_min
    run = api.run(logged(make, rows, compacted))
    found = run.bucketed_history("y", buckets, x_axis, x_min, x_max, pandas=False)
    assert found == reference(rows, "y", x_axis, buckets, x_min, x_max)
