"""Frames and tables of every row, built from the segments' columns: for any history, the same
values as the rows read one by one, hot, compacted, and in between; locally and over HTTP."""

from __future__ import annotations

import itertools
import json
import math
from typing import Any

import pandas as pd
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from runbase.api import history as hist
from runbase.backend.base import HistoryRow

from .conftest import PROJECT

KEYS = ["loss", "acc", "note", "flag"]
scalars = st.one_of(
    st.integers(-(2**63), 2**63 - 1),
    st.floats(allow_nan=True, allow_infinity=True),
    st.booleans(),
    st.text(max_size=3),
    st.none(),
)
typed = {"loss": st.floats(allow_nan=True, allow_infinity=True), "acc": st.integers(-5, 5),
         "note": st.text(max_size=3), "flag": st.booleans()}  # fmt: skip
typed_rows = st.lists(st.fixed_dictionaries({}, optional=typed), max_size=30)
any_rows = st.lists(st.dictionaries(st.sampled_from(KEYS), scalars, max_size=3), max_size=30)
RUN_IDS = (f"c{n}" for n in itertools.count())


def log(backend, path, logged: list[dict[str, Any]], first: int = 0) -> None:
    made = []
    for idx, row in enumerate(logged, start=first):
        row = {**row, "_step": idx}
        made.append(HistoryRow(idx, idx, tuple(sorted(row)), json.dumps(row, allow_nan=True)))
    backend.append_history(path, "default", made, {})


def values(frame) -> dict[str, list[Any]]:
    """A frame's columns as lists, any missing value (NaN, None) as None."""

    def plain(value: Any) -> Any:
        if value is None or (isinstance(value, float) and math.isnan(value)):
            return None
        return value.item() if hasattr(value, "item") else value

    return {name: [plain(v) for v in frame[name].tolist()] for name in frame.columns}


def every_read(api, path) -> dict[str, Any]:
    api.flush()
    run = api.run("/".join(path))
    found = {
        "frame": values(run.history(samples=None)),
        "keyed": values(run.history(samples=None, keys=["acc"])),
        "arrow": json.dumps(api.runs(PROJECT, filters={"id": path.run_id})
                            .histories(samples=None, format="arrow").to_pylist()),
    }  # fmt: skip
    return found


@settings(max_examples=10, deadline=None, suppress_health_check=list(HealthCheck),
          derandomize=True)  # fmt: skip
@given(logged=st.one_of(typed_rows, any_rows), later=typed_rows, split=st.integers(0, 30))
def test_frames_are_the_rows_hot_cold_and_in_between(api, make, logged, later, split):
    backend = make.backend
    path = make.create(next(RUN_IDS))
    log(backend, path, logged)
    rows = [decode for decode in api.run("/".join(path)).scan_history()]
    expected = {"frame": values(hist.to_frame(rows)),
                "keyed": values(hist.to_frame([hist.select(row, ["_step", "acc"])
                                               for row in rows if "acc" in row]))}  # fmt: skip
    hot = every_read(api, path)
    assert {name: hot[name] for name in expected} == expected
    backend.compact(path) if split >= len(logged) else _compact_upto(backend, path, split)
    assert every_read(api, path) == hot
    backend.compact(path)
    assert every_read(api, path) == hot
    log(backend, path, later, first=len(logged))  # hot rows after the segments
    grown = every_read(api, path)
    backend.compact(path)
    assert every_read(api, path) == grown
    assert len(json.loads(grown["arrow"])) == len(logged) + len(later)


def _compact_upto(backend, path, upto: int) -> None:
    from runbase.store import segments

    pk = backend._pk(path)
    while backend.store.write_fn(lambda conn: segments.compact_next(conn, pk, 0, upto)):
        pass


def test_a_frame_of_typed_columns_keeps_their_types(api, make):
    path = make.create("typed")
    log(make.backend, path, [{"i": i, "f": i / 2, "b": i % 2 == 0, "s": str(i)} for i in range(5)])
    make.backend.compact(path)
    log(make.backend, path, [{"i": 5, "f": math.inf, "b": True, "s": "x"}], first=5)
    frame = api.run("/".join(path)).history(samples=None)
    assert list(frame.columns) == ["i", "f", "b", "s", "_step"]
    frame = frame.rename(columns={"_step": "_"})
    assert [str(frame[name].dtype) for name in "ifb_"] == ["int64", "float64", "bool", "int64"]
    assert pd.api.types.is_string_dtype(frame["s"])
    assert frame["f"].tolist()[-1] == math.inf and frame["s"].tolist()[-1] == "x"


def test_a_nested_value_is_read_row_by_row(api, make):
    path = make.create("nested")
    log(make.backend, path, [{"cfg": {"a": i}, "xs": [i, i]} for i in range(3)])
    make.backend.compact(path)
    frame = api.run("/".join(path)).history(samples=None)
    assert frame["cfg"].tolist() == [{"a": 0}, {"a": 1}, {"a": 2}]
    assert frame["xs"].tolist() == [[0, 0], [1, 1], [2, 2]]


@pytest.mark.parametrize("format", ["pandas", "arrow", "polars"])
def test_histories_of_every_row_keep_the_runs_order(api, make, format):
    for name, offset in (("b", 100), ("a", 0)):
        path = make.create(name)
        log(make.backend, path, [{"x": offset + i} for i in range(3)])
        make.backend.compact(path)
    found = api.runs(PROJECT, order="-created_at").histories(samples=None, format=format)
    if format == "pandas":
        columns = found.to_dict("list")
    else:
        columns = (found if format == "arrow" else found.to_arrow()).to_pydict()
    assert columns["run_id"] == ["a"] * 3 + ["b"] * 3
    assert columns["x"] == [0, 1, 2, 100, 101, 102]
