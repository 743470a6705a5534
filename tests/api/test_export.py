"""Bulk export: the runs table in memory, and runs.EXT + history.EXT on disk, embedded and over
HTTP (the ``api`` fixture), read back by pandas, pyarrow, polars, DuckDB and line by line."""

from __future__ import annotations

import json
import math
from typing import Any

import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from typer.testing import CliRunner

from runbase.api import columns as columns_module
from runbase.api import export as export_module
from runbase.api import tables
from runbase.backend import http as http_module
from runbase.cli import app
from runbase.documents import decode
from runbase.errors import InvalidFilter, InvalidInput, NotFound
from runbase.server import create_app
from tests.api.conftest import ENTITY, PROJECT
from tests.server.conftest import TestClient

NAN, INF = float("nan"), float("inf")
BIG = 2**53 + 1  # not exact in a double
HUGE = 2**70  # beyond 64 bits (no document holds one, a history row may)
RUN_COLUMNS = ["id", "name", "state", "created_at", "heartbeat_at", "tags", "group", "job_type",
               "user"]  # fmt: skip
HISTORY_COLUMNS = ["run_id", "_step", "acc", "big", "loss", "nested.x", "nested.y", "only_a",
                   "only_b"]  # fmt: skip
HISTORY: dict[str, list[dict[str, Any]]] = {
    "a": [
        {"_step": 0, "loss": 1.0, "acc": 0},
        {"_step": 1, "loss": NAN, "acc": 1, "big": BIG},
        {"_step": 2, "loss": INF, "only_a": "text"},
    ],
    "b": [
        {"_step": 0, "loss": -INF, "acc": 2.5, "only_b": True},
        {"_step": 5, "nested": {"x": 1, "y": 2.0}},
    ],
    "c": [],
}


@pytest.fixture
def project(make):
    """Runs a, b, c (made in that order): sparse keys, NaN and infinities, an int beyond 2**53,
    nested config, and config values whose types differ between runs."""
    configs = {
        "a": {"lr": 0.1, "opt": {"name": "adam", "betas": [0.9, 0.999]}, "seed": 1},
        "b": {"lr": 0.01, "opt": {"name": "sgd"}, "seed": 2**60},
        "c": {"lr": 1, "seed": "three", "empty": {}},
    }
    extra = {"a": {"tags": ("x", "y"), "group": "g", "job_type": "train"}}
    for run_id, config in configs.items():
        path = make.create(
            run_id, config=config, display_name=f"run {run_id}", **extra.get(run_id, {})
        )
        if HISTORY[run_id]:
            make.log(path, HISTORY[run_id])


def same(a, b) -> bool:
    """Equal, NaN equal to NaN (in lists and dicts too)."""
    if isinstance(a, float) and isinstance(b, float) and math.isnan(a) and math.isnan(b):
        return True
    if isinstance(a, dict) and isinstance(b, dict):
        return a.keys() == b.keys() and all(same(a[k], b[k]) for k in a)
    if isinstance(a, list) and isinstance(b, list):
        return len(a) == len(b) and all(same(x, y) for x, y in zip(a, b, strict=True))
    return type(a) is type(b) and a == b


def expected_history(order=("c", "b", "a")) -> list[dict]:
    """The history table's rows as pyarrow reads them back."""
    columns = HISTORY_COLUMNS[2:]
    rows = []
    for run_id in order:
        for row in HISTORY[run_id]:
            flat = tables.flatten(row)
            values = {key: flat.get(key) for key in columns}
            if values["acc"] is not None:
                values["acc"] = float(values["acc"])  # ints and floats: float64
            rows.append({"run_id": run_id, "_step": row["_step"], **values})
    return rows


# ---------------------------------------------------------------- the runs table


def test_the_runs_table_has_one_typed_row_per_run(api, project):
    table = api.runs(PROJECT).to_arrow()
    assert table.column_names[:9] == RUN_COLUMNS
    assert table.column("id").to_pylist() == ["c", "b", "a"]
    assert table.column("name").to_pylist() == ["run c", "run b", "run a"]
    assert table.column("tags").to_pylist() == [[], [], ["x", "y"]]
    assert table.column("group").to_pylist() == [None, None, "g"]
    assert table.column("user").to_pylist() == [ENTITY] * 3
    assert table.schema.field("created_at").type == pa.timestamp("us", tz="UTC")
    created = table.column("created_at").to_pylist()
    assert created == sorted(created, reverse=True) and created[0].tzinfo is not None
    config = [name for name in table.column_names if name.startswith("config.")]
    assert config == ["config.lr", "config.opt.betas", "config.opt.name", "config.seed"]
    schema = table.schema
    assert schema.field("config.lr").type == pa.float64()  # 1 is exact in a double
    assert table.column("config.lr").to_pylist() == [1.0, 0.01, 0.1]
    assert schema.field("config.opt.name").type == pa.string()
    for name in ("config.opt.betas", "config.seed"):  # JSON text
        assert schema.field(name).metadata == {b"encoding": b"json"}
    assert table.column("config.seed").to_pylist() == ['"three"', str(2**60), "1"]
    assert [decode(t) for t in table.column("config.opt.betas").drop_null().to_pylist()] == [
        [0.9, 0.999]
    ]
    assert table.column("summary.big").to_pylist() == [None, None, BIG]
    assert schema.field("summary.big").type == pa.int64()
    assert same(table.column("summary.loss").to_pylist(), [None, -INF, INF])


def test_to_pandas_keeps_ints_exact_and_tags_as_lists(api, project):
    frame = api.runs(PROJECT).to_pandas()
    assert list(frame["id"]) == ["c", "b", "a"]
    assert str(frame["summary.big"].dtype) == "Int64"
    assert frame["summary.big"].isna().tolist() == [True, True, False]
    assert frame["summary.big"].iloc[2] == BIG
    assert frame["tags"].tolist() == [[], [], ["x", "y"]]
    assert str(frame["created_at"].dtype).startswith("datetime64")


def test_the_runs_table_keeps_filters_and_order(api, project):
    runs = api.runs(PROJECT, filters={"config.lr": {"$lt": 0.5}}, order="+config.lr")
    assert runs.to_arrow().column("id").to_pylist() == ["b", "a"]
    assert list(runs.to_pandas()["id"]) == ["b", "a"]


def test_an_empty_project_gives_the_columns_and_no_rows(api, make, backend):
    backend.create_sweep(ENTITY, "empty", {})  # the project exists, with no runs
    table = api.runs("empty").to_arrow()
    assert table.num_rows == 0 and table.column_names == RUN_COLUMNS


# ---------------------------------------------------------------- export to files


def test_parquet_reads_back_in_pyarrow_pandas_polars_and_duckdb(api, project, tmp_path):
    import duckdb
    import polars as pl

    done = api.runs(PROJECT).export(tmp_path / "out")
    assert (done.runs, done.rows) == (3, 5)
    runs_path, history_path = (tmp_path / "out" / f"{name}.parquet" for name in ("runs", "history"))
    assert done.files == (runs_path, history_path)
    assert sorted(p.name for p in (tmp_path / "out").iterdir()) == [
        "history.parquet",
        "runs.parquet",
    ]
    history = pq.read_table(history_path)
    assert history.column_names == HISTORY_COLUMNS
    types = {f.name: f.type for f in history.schema}
    assert types["_step"] == types["big"] == types["nested.x"] == pa.int64()
    assert types["loss"] == types["acc"] == types["nested.y"] == pa.float64()
    assert (types["only_a"], types["only_b"]) == (pa.string(), pa.bool_())
    assert same(history.to_pylist(), expected_history())
    assert pq.read_table(runs_path).equals(api.runs(PROJECT).to_arrow())

    frame = pd.read_parquet(history_path)
    assert list(frame["run_id"]) == ["b", "b", "a", "a", "a"]
    assert math.isnan(frame["loss"][3]) and frame["loss"][4] == INF and frame["loss"][0] == -INF
    assert list(pd.read_parquet(runs_path)["id"]) == ["c", "b", "a"]

    polars = pl.read_parquet(history_path)
    assert polars["big"].to_list() == [None, None, None, BIG, None]
    assert polars["only_b"].to_list() == [True, None, None, None, None]
    assert pl.read_parquet(runs_path)["config.seed"].to_list() == ['"three"', str(2**60), "1"]

    duck = duckdb.connect()
    query = "SELECT run_id, _step, loss, big FROM read_parquet(?) WHERE loss IS NOT NULL"
    found = [list(row) for row in duck.execute(query, [str(history_path)]).fetchall()]
    expected = [["b", 0, -INF, None], ["a", 0, 1.0, None], ["a", 1, NAN, BIG], ["a", 2, INF, None]]
    assert same(found, expected)
    runs = duck.execute("SELECT id, tags FROM read_parquet(?)", [str(runs_path)]).fetchall()
    assert runs == [("c", []), ("b", []), ("a", ["x", "y"])]
    duck.close()


def test_csv_reads_back_in_pandas(api, project, tmp_path):
    api.runs(PROJECT).export(tmp_path, format="csv")
    history = pd.read_csv(tmp_path / "history.csv")
    assert list(history.columns) == HISTORY_COLUMNS
    assert list(history["run_id"]) == ["b", "b", "a", "a", "a"]
    assert same(list(history["loss"]), [-INF, NAN, 1.0, NAN, INF])  # an empty cell is NaN too
    assert history["only_a"].tolist()[4] == "text"
    assert str(BIG) in (tmp_path / "history.csv").read_text()  # exact, as written
    runs = pd.read_csv(tmp_path / "runs.csv")
    assert list(runs["id"]) == ["c", "b", "a"]
    assert json.loads(runs["tags"][2]) == ["x", "y"]
    assert pd.to_datetime(runs["created_at"]).dt.tz is not None
    assert runs["config.opt.betas"][2] == "[0.9,0.999]"


def test_jsonl_reads_back_line_by_line(api, project, tmp_path):
    api.runs(PROJECT).export(tmp_path, format="jsonl")
    lines = (tmp_path / "history.jsonl").read_text().splitlines()
    rows = [json.loads(line) for line in lines]
    expected = [{"run_id": id_, **tables.flatten(row)} for id_ in "ba" for row in HISTORY[id_]]
    assert same(rows, expected)  # values as logged: ints stay ints, missing keys absent
    assert "NaN" in lines[3] and "Infinity" in lines[4] and "-Infinity" in lines[0]
    assert list(rows[0])[:2] == ["run_id", "_step"]
    runs = [json.loads(line) for line in (tmp_path / "runs.jsonl").read_text().splitlines()]
    assert [run["id"] for run in runs] == ["c", "b", "a"]
    assert runs[2]["config.opt.betas"] == [0.9, 0.999]
    assert runs[0]["config.seed"] == "three" and runs[1]["config.seed"] == 2**60
    assert runs[0]["created_at"].endswith("+00:00")


def test_keys_select_columns_and_the_rows_that_hold_them(api, project, tmp_path):
    api.runs(PROJECT).export(tmp_path, keys=["loss", "only_b", "missing"])
    history = pq.read_table(tmp_path / "history.parquet")
    assert history.column_names == ["run_id", "_step", "loss", "only_b", "missing"]
    assert history.schema.field("missing").type == pa.null()
    rows = [["b", 0, -INF, True], ["a", 0, 1.0, None], ["a", 1, NAN, None], ["a", 2, INF, None]]
    assert same([list(row.values()) for row in history.to_pylist()], [r + [None] for r in rows])
    api.runs(PROJECT).export(tmp_path, keys=["only_a"], format="jsonl")
    lines = (tmp_path / "history.jsonl").read_text().splitlines()
    assert [json.loads(line) for line in lines] == [{"run_id": "a", "_step": 2, "only_a": "text"}]


def test_filters_and_order_are_kept(api, project, tmp_path):
    runs = api.runs(PROJECT, filters={"config.lr": {"$lt": 0.5}}, order="+config.lr")
    done = runs.export(str(tmp_path))
    assert (done.runs, done.rows) == (2, 5)
    assert done.files == (tmp_path / "runs.parquet", tmp_path / "history.parquet")
    assert pq.read_table(tmp_path / "runs.parquet").column("id").to_pylist() == ["b", "a"]
    history = pq.read_table(tmp_path / "history.parquet")
    assert same(history.to_pylist(), expected_history(order=("b", "a")))


def test_runs_come_a_page_at_a_time_and_are_not_kept(api, project, tmp_path):
    runs = api.runs(PROJECT, per_page=2)
    assert [[run.id for run in page] for page in runs.pages()] == [["c", "b"], ["a"]]
    assert runs.objects == []
    done = runs.export(tmp_path)
    assert done.runs == 3 and runs.objects == []
    assert pq.read_table(tmp_path / "runs.parquet").column("id").to_pylist() == ["c", "b", "a"]


def test_the_system_stream_numbers_its_rows(api, make, tmp_path):
    path = make.create("s")
    make.log(path, [{"_step": 0, "loss": 1.0}])
    make.log(path, [{"cpu": 10.0, "_runtime": 1.0}, {"cpu": 20.5, "gpu": 3}], stream="system")
    done = api.runs(PROJECT).export(tmp_path, stream="system")
    assert done.rows == 2
    history = pq.read_table(tmp_path / "history.parquet").to_pylist()
    assert history == [
        {"run_id": "s", "_step": 0, "_runtime": 1.0, "cpu": 10.0, "gpu": None},
        {"run_id": "s", "_step": 1, "_runtime": None, "cpu": 20.5, "gpu": 3},
    ]


def test_types_are_merged_across_segments(api, make, tmp_path):
    path = make.create("m")
    make.log(path, [{"_step": i, "f": i, "j": i, "e": i} for i in range(4)])
    make.backend.compact(path)  # a segment of ints, then hot rows of other types
    make.log(path, [{"_step": 4, "f": 0.5, "j": "four", "e": BIG}, {"_step": 5, "f": 1, "e": 0.5}])
    api.runs(PROJECT).export(tmp_path)
    history = pq.read_table(tmp_path / "history.parquet")
    assert history.schema.field("f").type == pa.float64()  # ints exact in a double, floats
    assert history.column("f").to_pylist() == [0.0, 1.0, 2.0, 3.0, 0.5, 1.0]
    # an int beyond 2**53 beside a float, and a string beside ints: JSON text
    assert history.column("e").to_pylist() == ["0", "1", "2", "3", str(BIG), "0.5"]
    assert history.column("j").to_pylist() == ["0", "1", "2", "3", '"four"', None]
    assert history.schema.field("j").metadata == {b"encoding": b"json"}


# ---------------------------------------------------------------- bad input


@pytest.mark.parametrize(
    ("arguments", "error", "message"),
    [
        ({"format": "xml"}, InvalidInput, "format must be one of"),
        ({"format": ["csv"]}, InvalidInput, "format must be one of"),
        ({"stream": "other"}, InvalidInput, "stream must be one of"),
        ({"keys": "loss"}, InvalidInput, "keys must be a list"),
        ({"keys": ["_step"]}, InvalidInput, "besides _step"),
    ],
)
def test_bad_arguments_write_nothing(api, project, tmp_path, arguments, error, message):
    with pytest.raises(error, match=message):
        api.runs(PROJECT).export(tmp_path / "out", **arguments)
    assert not (tmp_path / "out").exists()


def test_bad_filters_and_unknown_projects_write_nothing(api, project, tmp_path):
    with pytest.raises(InvalidFilter, match=r"\$bad"):
        api.runs(PROJECT, filters={"config.lr": {"$bad": 1}}).export(tmp_path / "out")
    with pytest.raises(NotFound, match=f"{ENTITY}/nowhere"):
        api.runs("nowhere").export(tmp_path / "out")
    assert not (tmp_path / "out").exists()


def test_a_file_is_no_output_directory(api, project, tmp_path):
    (tmp_path / "file").write_text("mine")
    with pytest.raises(InvalidInput, match="is a file, not a directory"):
        api.runs(PROJECT).export(tmp_path / "file")
    assert (tmp_path / "file").read_text() == "mine"


@pytest.mark.parametrize("format", ["parquet", "jsonl"])
def test_a_failed_export_leaves_no_files(api, project, tmp_path, monkeypatch, format):
    out = tmp_path / "out"
    out.mkdir()
    (out / "runs.parquet").write_text("an earlier export")

    def broken(*args, **kwargs):
        raise OSError("disk full")

    monkeypatch.setattr(columns_module, "segments", broken)
    with pytest.raises(OSError, match="disk full"):
        api.runs(PROJECT).export(out, format=format)
    assert [p.name for p in out.iterdir()] == ["runs.parquet"]
    assert (out / "runs.parquet").read_text() == "an earlier export"


def test_exported_files_are_named_only_when_complete(api, project, tmp_path, monkeypatch):
    out = tmp_path / "out"
    seen: list[list[str]] = []
    real = export_module._write_history

    def watched(*args):
        seen.append(sorted(p.name for p in out.iterdir()))
        real(*args)

    monkeypatch.setattr(export_module, "_write_history", watched)
    api.runs(PROJECT).export(out)
    assert len(seen) == 1 and len(seen[0]) == 2
    assert all(name.endswith(".partial") for name in seen[0])
    assert sorted(p.name for p in out.iterdir()) == ["history.parquet", "runs.parquet"]


# ---------------------------------------------------------------- the command


runner = CliRunner()


@pytest.mark.parametrize("format", ["parquet", "csv", "jsonl"])
def test_the_command_exports_every_format(project, tmp_path, format):
    out = tmp_path / "out"
    args = ["--out", str(out), "--format", format, "--order", "+created_at"]
    result = runner.invoke(app, ["export", f"{ENTITY}/{PROJECT}", *args])
    assert result.exit_code == 0, result.output
    assert "exported 3 runs and 5 history rows" in result.stdout
    assert sorted(p.name for p in out.iterdir()) == [f"history.{format}", f"runs.{format}"]
    if format == "parquet":
        history = pq.read_table(out / "history.parquet")
        assert same(history.to_pylist(), expected_history(order=("a", "b")))


def test_the_command_takes_filters_keys_and_the_stream(project, make, tmp_path):
    make.log(make.create("s"), [{"cpu": 1.0}], stream="system")
    query = ["--filters", '{"config.lr": {"$lt": 0.5}}', "--keys", "loss, acc"]
    result = runner.invoke(
        app, ["export", PROJECT, "--out", str(tmp_path), *query, "--format", "jsonl"]
    )
    assert result.exit_code == 0, result.output
    rows = [json.loads(x) for x in (tmp_path / "history.jsonl").read_text().splitlines()]
    assert [(row["run_id"], sorted(row)) for row in rows] == [
        ("b", ["_step", "acc", "loss", "run_id"]),
        ("a", ["_step", "acc", "loss", "run_id"]),
        ("a", ["_step", "acc", "loss", "run_id"]),
        ("a", ["_step", "loss", "run_id"]),
    ]
    args = ["--out", str(tmp_path / "sys"), "--stream", "system", "--format", "jsonl"]
    result = runner.invoke(app, ["export", PROJECT, *args])
    assert result.exit_code == 0, result.output
    system = (tmp_path / "sys" / "history.jsonl").read_text().splitlines()
    assert [json.loads(line) for line in system] == [{"run_id": "s", "cpu": 1.0, "_step": 0}]


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--format", "xml"], "format must be one of ['parquet', 'csv', 'jsonl'], not 'xml'"),
        (["--filters", "{bad"], "--filters is not JSON"),
        (["--filters", '{"config.lr": {"$bad": 1}}'], "config.lr: unknown operator '$bad'"),
        (["--filters", "[1]"], "filters must be a dict"),
        (["--stream", "other"], "stream must be one of"),
    ],
)
def test_the_command_names_bad_input_in_one_line(project, tmp_path, args, message):
    result = runner.invoke(app, ["export", PROJECT, "--out", str(tmp_path / "out"), *args])
    assert result.exit_code == 1
    [line] = result.stderr.splitlines()
    assert line.startswith("error: ") and message in line
    assert "Traceback" not in result.output
    assert not (tmp_path / "out").exists()


def test_the_command_names_missing_projects_and_files_in_the_way(project, tmp_path):
    missing = runner.invoke(app, ["export", "nowhere", "--out", str(tmp_path / "out")])
    assert missing.exit_code == 1
    assert missing.stderr.strip() == f"error: project {ENTITY}/nowhere not found"
    (tmp_path / "file").write_text("")
    blocked = runner.invoke(app, ["export", PROJECT, "--out", str(tmp_path / "file")])
    assert blocked.exit_code == 1 and len(blocked.stderr.splitlines()) == 1
    assert "is a file, not a directory" in blocked.stderr
    bad_path = runner.invoke(app, ["export", "a/b/c", "--out", str(tmp_path / "out")])
    assert bad_path.exit_code == 1 and "'a/b/c'" in bad_path.stderr


def test_the_command_exports_from_a_server(project, backend, tmp_path, monkeypatch):
    """``RUNBASE_BASE_URL`` names a server: the command reads through it, not the store."""
    client = TestClient(create_app(backend), base_url="http://runbase.test")
    real = http_module.HttpBackend
    used = []

    def bound(base_url: str, **kwargs):
        used.append(base_url)
        return real(base_url, client=client, **kwargs)

    monkeypatch.setattr(http_module, "HttpBackend", bound)
    monkeypatch.setenv("RUNBASE_BASE_URL", "http://runbase.test")
    monkeypatch.delenv("RUNBASE_DATABASE_URL", raising=False)
    with client:
        result = runner.invoke(app, ["export", PROJECT, "--out", str(tmp_path)])
    assert result.exit_code == 0, result.output
    assert used == ["http://runbase.test"]
    history = pq.read_table(tmp_path / "history.parquet")
    assert same(history.to_pylist(), expected_history())


# ---------------------------------------------------------------- how columns get their types


@pytest.mark.parametrize(
    ("kinds", "merged"),
    [
        (["INT53", "FLOAT"], "FLOAT"),
        (["INT53", "INT"], "INT"),
        (["INT", "FLOAT"], "JSON"),
        (["INT53", "FLOAT", "INT"], "JSON"),
        (["NULL", "BOOL"], "BOOL"),
        (["BOOL", "INT53"], "JSON"),
        (["STRING", "FLOAT"], "JSON"),
        (["NULL", "NULL"], "NULL"),
    ],
)
def test_kinds_merge_in_any_order(kinds, merged):
    import itertools

    for order in itertools.permutations(tables.Kind[name] for name in kinds):
        result = tables.Kind.NULL
        for kind in order:
            result = tables.merge(result, kind)
        assert result is tables.Kind[merged]


def test_a_batch_takes_the_slow_path_only_when_it_must():
    fast = tables.record_batch({}, [{"a": 1, "b": {"c": "x"}}, {"a": 2.5}])
    assert fast.schema.names == ["a", "b.c"] and fast.column("a").to_pylist() == [1.0, 2.5]
    rows: list[dict[str, Any]] = [
        {"a": 1, "l": [1, 2]}, {"a": "x", "l": None, "d": {"e": 1}}, {"d": 3, "h": HUGE}
    ]  # fmt: skip
    mixed = tables.record_batch({}, rows)
    assert mixed.schema.names == ["a", "l", "d.e", "d", "h"]
    assert mixed.column("a").to_pylist() == ["1", '"x"', None]
    assert mixed.column("l").to_pylist() == ["[1,2]", None, None]
    assert mixed.column("d").type == pa.int64() and mixed.column("h").to_pylist()[2] == str(HUGE)
    head = {"run_id": pa.array(["r", "r"])}
    named = tables.record_batch(head, [{"run_id": "mine", "x": 1}, {}])
    assert named.column("run_id").to_pylist() == ["r", "r"]  # the head wins


def test_json_text_keeps_nan_and_infinities():
    texts = tables.json_array([[NAN, INF, -INF], "x", None]).to_pylist()
    assert same(decode(texts[0]), [NAN, INF, -INF]) and texts[1:] == ['"x"', None]


def test_parquet_pages_go_straight_through_until_one_differs(tmp_path):
    from runbase.api.sinks import Parquet

    head = pa.schema([("run_id", pa.string())])

    def batch(run: str, **columns) -> pa.RecordBatch:
        rows = len(next(iter(columns.values())))
        return pa.RecordBatch.from_pydict({"run_id": [run] * rows, **columns})

    same = Parquet(tmp_path / "same.parquet", head, ["_step"])
    for start in (0, 2):
        same.add_batch(batch("a", _step=[start, start + 1], x=[1.5, 2.5]))
    assert same.through is not None and not same.spilled
    same.close(lambda rows: None)
    assert pq.read_table(same.publish()).to_pydict() == {
        "run_id": ["a"] * 4, "_step": [0, 1, 2, 3], "x": [1.5, 2.5, 1.5, 2.5]
    }  # fmt: skip
    changed = Parquet(tmp_path / "changed.parquet", head, ["_step"])
    changed.add_batch(batch("a", _step=[0, 1], x=[1, 2]))
    changed.add_batch(batch("b", _step=[0], x=[0.5], y=["new"]))
    assert changed.spilled and changed.waiting == 3
    changed.close(lambda rows: None)
    table = pq.read_table(changed.publish())
    assert table.schema.field("x").type == pa.float64()
    assert table.to_pydict() == {"run_id": ["a", "a", "b"], "_step": [0, 1, 0],
                                 "x": [1.0, 2.0, 0.5], "y": [None, None, "new"]}  # fmt: skip
