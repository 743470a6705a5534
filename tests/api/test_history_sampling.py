"""history(): deterministic even samples; scan_history(): every row, page by page; histories()."""

from __future__ import annotations

import math
from typing import Any

import pandas as pd
import pytest

import runbase
from runbase.api import HistoryScan
from runbase.documents import decode_row


def steps(rows) -> list[int]:
    return [row["_step"] for row in rows]


@pytest.fixture
def long_run(api, make):
    path = make.create("long")
    rows = []
    for step in range(1000):
        row = {"_step": step, "loss": 1 / (step + 1)}
        if step % 10 == 0:
            row["val"] = step / 10
        rows.append(row)
    make.log(path, rows)
    return api.run("long")


def test_history_is_deterministic_even_and_keeps_the_ends(long_run):
    rows = long_run.history(samples=50, pandas=False)
    assert len(rows) <= 50
    assert rows[0]["_step"] == 0 and rows[-1]["_step"] == 999
    gaps = {b - a for a, b in zip(steps(rows), steps(rows)[1:], strict=False)}
    assert max(gaps) - min(gaps) <= 1
    assert long_run.history(samples=50, pandas=False) == rows
    long_run.client.flush()
    assert long_run.history(samples=50, pandas=False) == rows


def test_history_returns_everything_below_samples(long_run):
    assert steps(long_run.history(samples=5000, pandas=False)) == list(range(1000))


@pytest.mark.parametrize("samples", [1, 2, 3, 7, 500])
def test_history_sample_counts(long_run, samples):
    rows = long_run.history(samples=samples, pandas=False)
    assert 1 <= len(rows) <= samples
    assert rows[0]["_step"] == 0
    if samples > 1:
        assert rows[-1]["_step"] == 999


def test_history_keys_keep_only_rows_and_columns_asked_for(long_run):
    rows = long_run.history(samples=20, keys=["val"], pandas=False)
    assert len(rows) == 20
    assert all(set(row) == {"_step", "val"} for row in rows)
    assert rows[0]["_step"] == 0 and rows[-1]["_step"] == 990
    assert long_run.history(keys=["val", "missing"], pandas=False) == []


def test_history_x_axis(api, make):
    path = make.create("x")
    make.log(path, [{"_step": i, "epoch": i // 2, "loss": float(i)} for i in range(6)])
    make.log(path, [{"_step": 6, "loss": 6.0}])
    rows = api.run("x").history(keys=["loss"], x_axis="epoch", pandas=False)
    assert [set(row) for row in rows] == [{"epoch", "loss"}] * 6
    assert [row["epoch"] for row in rows] == [0, 0, 1, 1, 2, 2]


def test_keys_reach_into_nested_values(api, data_dir):
    run = runbase.init(project="proj")
    for step in range(4):
        runbase.log({"train": {"loss": 1.0 / (step + 1)}, "lr": 0.1} if step % 2 else {"lr": 0.1})
    runbase.finish()
    found = api.run(run.id)
    assert found.history(keys=["train.loss"], pandas=False) == [
        {"_step": 1, "train.loss": 0.5},
        {"_step": 3, "train.loss": 0.25},
    ]
    assert list(found.scan_history(keys=["train.loss"])) == [
        {"train.loss": 0.5},
        {"train.loss": 0.25},
    ]
    assert found.history(pandas=False)[1]["train"] == {"loss": 0.5}


def test_history_as_a_dataframe(long_run):
    frame = long_run.history(samples=10)
    assert isinstance(frame, pd.DataFrame)
    assert len(frame) == 10
    assert {"_step", "loss", "val"} <= set(frame.columns)
    keyed = long_run.history(samples=10, keys=["loss"])
    assert list(keyed.columns) == ["_step", "loss"]


def test_history_of_an_empty_run(api, make):
    make.create("empty")
    run = api.run("empty")
    assert run.history(pandas=False) == []
    assert run.history().empty


def test_system_stream(api, make):
    path = make.create("sys")
    make.log(path, [{"_step": 0, "loss": 1.0}])
    make.log(path, [{"system.cpu": float(i), "_timestamp": 100.0 + i} for i in range(30)],
             stream="system")  # fmt: skip
    rows = api.run("sys").history(samples=5, stream="system", pandas=False)
    assert [row["system.cpu"] for row in rows] == [0.0, 7.0, 14.0, 22.0, 29.0]
    assert "loss" not in rows[0]


def test_nan_and_infinity_survive(api, make):
    path = make.create("nan")
    make.log(path, [{"_step": 0, "loss": math.nan}, {"_step": 1, "loss": math.inf}])
    run = api.run("nan")
    rows = run.history(pandas=False)
    assert math.isnan(rows[0]["loss"]) and rows[1]["loss"] == math.inf
    assert math.isnan(next(iter(run.scan_history()))["loss"])
    assert decode_row('{"a": NaN, "b": -Infinity}')["b"] == -math.inf


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [({"samples": 0}, "samples"), ({"keys": "loss"}, "keys"), ({"keys": [1]}, "keys"),
     ({"stream": "gpu"}, "stream")],
)  # fmt: skip
def test_history_argument_errors(long_run, kwargs, message):
    with pytest.raises(ValueError, match=message):
        long_run.history(**kwargs)


def test_scan_history_returns_every_row_in_pages(long_run, backend):
    before = backend.calls["scan_pages"]
    scan = long_run.scan_history(page_size=300)
    assert isinstance(scan, HistoryScan)
    assert steps(scan) == list(range(1000))
    assert backend.calls["scan_pages"] - before == 1  # one scan of 4 pages
    assert steps(scan) == list(range(1000))


def test_scan_history_is_lazy(long_run, backend):
    before = backend.calls["scan_pages"]
    scan = long_run.scan_history(page_size=10)
    assert backend.calls["scan_pages"] == before
    assert next(scan)["_step"] == 0
    assert [next(scan)["_step"] for _ in range(9)] == list(range(1, 10))
    assert backend.calls["scan_pages"] == before + 1


def test_scan_history_with_sparse_keys(long_run):
    rows = list(long_run.scan_history(keys=["val"], page_size=7))
    assert [row["val"] for row in rows] == [float(i) for i in range(100)]
    assert all(set(row) == {"val"} for row in rows)
    with_step = list(long_run.scan_history(keys=["_step", "val"]))
    assert steps(with_step) == list(range(0, 1000, 10))


def test_scan_history_step_range(long_run):
    assert steps(long_run.scan_history(min_step=990)) == list(range(990, 1000))
    assert steps(long_run.scan_history(max_step=5)) == [0, 1, 2, 3, 4]
    assert steps(long_run.scan_history(min_step=10, max_step=13, page_size=1)) == [10, 11, 12]
    assert list(long_run.scan_history(min_step=20, max_step=20)) == []
    rows = long_run.scan_history(keys=["val"], min_step=15, max_step=45)
    assert [row["val"] for row in rows] == [2.0, 3.0, 4.0]


def test_scan_history_with_high_first_step_and_gaps(api, make):
    path = make.create("high")
    logged = [61_010, 61_011, 61_500, 70_000, 70_001, 1_000_000]
    make.log(path, [{"_step": s, "loss": float(s)} for s in logged])
    run = api.run("high")
    assert steps(run.scan_history(page_size=2)) == logged
    assert steps(run.scan_history(keys=["_step", "loss"], page_size=4)) == logged
    assert steps(run.scan_history(min_step=61_011, max_step=70_001)) == [61_011, 61_500, 70_000]
    assert steps(run.history(samples=3, pandas=False)) == [61_010, 61_500, 1_000_000]


def test_scan_history_of_an_empty_run(api, make):
    make.create("empty")
    assert list(api.run("empty").scan_history()) == []


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [({"page_size": 0}, "page_size"), ({"keys": "loss"}, "keys"), ({"min_step": "1"}, "min_step")],
)
def test_scan_history_argument_errors(long_run, kwargs, message):
    with pytest.raises(ValueError, match=message):
        long_run.scan_history(**kwargs)


def test_histories_reads_a_page_of_runs_in_one_call(api, make, backend):
    for i in range(5):
        path = make.create(f"r{i}")
        make.log(path, [{"_step": s, "loss": i + s / 10} for s in range(20)])
    runs = api.runs(order="+created_at", per_page=2)
    frame = runs.histories(samples=5, format="pandas")
    assert backend.calls["sample_histories"] == 3
    assert backend.calls["sample_history"] == 0
    assert list(frame.columns) == ["_step", "loss", "run_id"]
    assert len(frame) == 25
    assert list(frame["run_id"].unique()) == ["r0", "r1", "r2", "r3", "r4"]
    single = api.run("r3").history(samples=5, pandas=False)
    assert frame[frame["run_id"] == "r3"]["loss"].tolist() == [row["loss"] for row in single]


def test_histories_as_rows_with_keys(api, make):
    for i in range(3):
        path = make.create(f"r{i}")
        make.log(path, [{"_step": 0, "loss": 1.0, "acc": 0.5}, {"_step": 1, "loss": 0.5}])
    rows = api.runs(order="+created_at").histories(keys=["acc"], format="default")
    assert rows == [{"_step": 0, "acc": 0.5, "run_id": f"r{i}"} for i in range(3)]


def test_histories_of_nothing(api, make, backend):
    backend.create_sweep("tester", "proj", {})
    assert api.runs().histories(format="pandas").empty
    assert api.runs().histories() == []
    assert api.runs().histories(format="arrow").num_rows == 0
    with pytest.raises(ValueError, match="format"):
        api.runs().histories(format="csv")


def test_histories_in_every_format_keep_the_runs_order(api, make):
    for i in (2, 0, 1):
        path = make.create(f"r{i}")
        rows: list[dict[str, Any]] = [{"_step": s, "loss": i + s / 10} for s in range(4)]
        rows[1]["note"] = "text"  # sparse, and a string
        rows[2]["loss"] = math.nan
        make.log(path, rows)
    runs = api.runs(order="-created_at")
    default = runs.histories(samples=None)
    assert [row["run_id"] for row in default] == ["r1"] * 4 + ["r0"] * 4 + ["r2"] * 4
    assert default[1] == {"_step": 1, "loss": 1.1, "note": "text", "run_id": "r1"}
    arrow = runs.histories(samples=None, format="arrow")
    assert arrow.column_names == ["_step", "loss", "note", "run_id"]
    assert arrow.column("run_id").to_pylist() == [row["run_id"] for row in default]
    assert arrow.column("note").to_pylist()[:2] == [None, "text"]
    assert math.isnan(arrow.column("loss").to_pylist()[2])
    frame = runs.histories(samples=None, format="pandas")
    assert frame["run_id"].tolist() == [row["run_id"] for row in default]
    polars = pytest.importorskip("polars")
    frame = runs.histories(samples=2, format="polars")
    assert isinstance(frame, polars.DataFrame) and frame["run_id"].to_list() == [
        "r1", "r1", "r0", "r0", "r2", "r2"
    ]  # fmt: skip


def test_histories_of_mixed_types_as_arrow(api, make):
    make.log(make.create("r0"), [{"_step": 0, "v": 1}, {"_step": 1, "v": "one"},
                                 {"_step": 2, "v": {"a": [1]}}])  # fmt: skip
    table = api.runs().histories(samples=None, format="arrow")
    assert table.column("v").to_pylist() == ["1", '"one"', '{"a":[1]}']


def test_history_without_samples_is_every_row(api, make):
    path = make.create("r0")
    make.log(path, [{"_step": s, "loss": s} if s % 3 else {"_step": s} for s in range(2500)])
    run = api.run("r0")
    assert [row["_step"] for row in run.history(samples=None, pandas=False)] == list(range(2500))
    keyed = run.history(samples=None, keys=["loss"])
    assert keyed["_step"].tolist() == [s for s in range(2500) if s % 3]
    assert len(run.history(samples=10_000, pandas=False)) == 2500
    with pytest.raises(ValueError, match="samples"):
        run.history(samples=0)
