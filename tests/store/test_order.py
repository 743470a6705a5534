"""Run order: parsing, the order of each key kind, missing values last, ties, and keyset pages."""

from __future__ import annotations

import json
from typing import Any

import pytest
from sqlalchemy import select
from sqlalchemy.dialects import postgresql

from runbase.errors import InvalidFilter
from runbase.fields import ColumnField, DocField, SortKey, parse_order
from runbase.store import schema
from runbase.store.dialect import POSTGRES, SQLITE
from runbase.store.order import after, order_by, sort_value

T = 1_700_000_000.0
LOSSES = {
    "s01": 0.5,
    "s02": 0.5,
    "s03": 2,
    "s05": None,
    "s06": float("nan"),
    "s07": "abc",
    "s08": True,
    "s09": 1,
    "s10": float("inf"),
    "s11": float("-inf"),
    "s12": {"a": 1},
    "s13": [1, 2],
    "s14": "Zed",
}
RUNS: list[dict[str, Any]] = [
    {"run_id": "s01", "config": {"lr": 0.1}, "display_name": "b", "group": "g2", "created_at": T},
    {"run_id": "s02", "config": {"lr": 0.1}, "display_name": "b", "state": "running"},
    {"run_id": "s03", "config": {"lr": 0.01}, "display_name": "a", "group": "g1"},
    {"run_id": "s04", "display_name": "c"},
    {"run_id": "s05", "config": {"lr": 0.01}, "display_name": "a", "group": "g1"},
    *({"run_id": f"s{i:02d}"} for i in range(6, 16)),
]
for number, run in enumerate(RUNS):
    run.setdefault("created_at", T + number // 2)
    run["heartbeat_at"] = T + (number * 7) % 5
    if run["run_id"] in LOSSES:
        run["summary"] = {"loss": LOSSES[run["run_id"]], "acc": 0.5}


def ids(spec: str) -> list[str]:
    """``"1 4"`` -> ``["s01", "s04"]``."""
    return [f"s{int(n):02d}" for n in spec.split()]


ORDERS = [
    ("+summary_metrics.loss", ids("11 1 2 8 9 3 10 14 13 7 12 4 5 6 15")),
    ("-summary_metrics.loss", ids("12 7 13 14 10 3 9 8 2 1 11 15 6 5 4")),
    ("+loss", ids("11 1 2 8 9 3 10 14 13 7 12 4 5 6 15")),
    ("+summary.acc", ids("1 2 3 5 6 7 8 9 10 11 12 13 14 4 15")),
    ("+config.lr", ids("3 5 1 2 4 6 7 8 9 10 11 12 13 14 15")),
    ("-config.lr.value", ids("2 1 5 3 15 14 13 12 11 10 9 8 7 6 4")),
    ("+created_at", ids("1 2 3 4 5 6 7 8 9 10 11 12 13 14 15")),
    ("-createdAt", ids("15 14 13 12 11 10 9 8 7 6 5 4 3 2 1")),
    ("+group", ids("3 5 1 2 4 6 7 8 9 10 11 12 13 14 15")),
    ("-group", ids("1 5 3 15 14 13 12 11 10 9 8 7 6 4 2")),
    ("+name", ids("1 2 3 4 5 6 7 8 9 10 11 12 13 14 15")),  # the run id
    ("+display_name", ids("3 5 1 2 4 6 7 8 9 10 11 12 13 14 15")),
    ("-display_name", ids("15 14 13 12 11 10 9 8 7 6 4 2 1 5 3")),
    ("+state", ids("1 3 4 5 6 7 8 9 10 11 12 13 14 15 2")),
    ("state", ids("2 15 14 13 12 11 10 9 8 7 6 5 4 3 1")),
]


@pytest.fixture(scope="module")
def table(run_table):
    return run_table(RUNS)


@pytest.mark.parametrize(("order", "expected"), ORDERS)
def test_order(table, order, expected):
    assert table.ordered(order) == expected


def test_heartbeat_order_breaks_ties_by_storage_id(table):
    beats = sorted(RUNS, key=lambda run: (run["heartbeat_at"], run["run_id"]))
    assert table.ordered("+heartbeat_at") == [run["run_id"] for run in beats]
    assert table.ordered("-heartbeatAt") == [run["run_id"] for run in reversed(beats)]


def test_order_with_filters(table):
    assert table.ordered("-summary.loss", {"summary.loss": {"$gt": 0.4}}) == ids("13 10 3 9 2 1")
    assert table.ordered("+config.lr", {"config.lr": {"$exists": True}}) == ids("3 5 1 2")


@pytest.mark.parametrize("size", [1, 2, 3, 4])
@pytest.mark.parametrize(
    "order", [order for order, _ in ORDERS] + ["+heartbeat_at", "-heartbeat_at"]
)
def test_pages_neither_skip_nor_repeat(table, order, size):
    pages = table.pages(order, size, encode=lambda value: json.loads(json.dumps(value)))
    assert all(len(page) == size for page in pages[:-1])
    assert [run for page in pages for run in page] == table.ordered(order)


@pytest.mark.parametrize(
    ("order", "field", "descending"),
    [
        ("-created_at", ColumnField("runs", "created_at", "time", False, "created_at"), True),
        ("+createdAt", ColumnField("runs", "created_at", "time", False, "createdAt"), False),
        ("heartbeat_at", ColumnField("runs", "heartbeat_at", "time", False, "heartbeat_at"), True),
        ("+name", ColumnField("runs", "run_id", "text", False, "name"), False),
        (
            "+display_name",
            ColumnField("runs", "display_name", "text", False, "display_name"),
            False,
        ),
        ("-group", ColumnField("runs", "group", "text", True, "group"), True),
        ("+config.lr", DocField("config", ("lr",), "config.lr"), False),
        (
            "+config.opt.value.name",
            DocField("config", ("opt", "name"), "config.opt.value.name"),
            False,
        ),
        ("-summary_metrics.loss", DocField("summary", ("loss",), "summary_metrics.loss"), True),
        ("+summary.a\\.b", DocField("summary", ("a.b",), "summary.a\\.b"), False),
        ("+val_acc", DocField("summary", ("val_acc",), "val_acc"), False),
        ("-train.loss", DocField("summary", ("train", "loss"), "train.loss"), True),
    ],
)
def test_parse_order(order, field, descending):
    assert parse_order(order) == SortKey(field, descending)


@pytest.mark.parametrize(
    "order",
    [
        "",
        "+",
        "-",
        "--created_at",
        "+-loss",
        " name",
        "name ",
        "config.",
        "config",
        "summary_metrics",
        "a..b",
        "tags",
        5,
        None,
    ],
)
def test_malformed_order_is_refused(order):
    with pytest.raises(InvalidFilter, match="order"):
        parse_order(order)


@pytest.mark.parametrize(
    ("order", "value", "storage_id"),
    [
        ("+created_at", "yesterday", 1),
        ("+created_at", None, 1),
        ("+name", 3, 1),
        ("+config.lr", 0.5, 1),
        ("+config.lr", "0.5", "1"),
        ("+config.lr", "0.5", True),
        ("+config.lr", "{not json", 1),
    ],
)
def test_bad_cursor_is_refused(order, value, storage_id):
    with pytest.raises(InvalidFilter, match="cursor"):
        after(parse_order(order), SQLITE, value, storage_id)


def test_sort_values_survive_json(table):
    sort = parse_order("+summary.loss")
    stmt = select(schema.runs.c.run_id, sort_value(sort, table.dialect))
    with table.store.read() as conn:
        values = dict(conn.execute(stmt).all())
    assert all(json.loads(json.dumps(v)) == v for v in values.values())
    assert values["s04"] is None and json.loads(values["s07"]) == "abc"


@pytest.mark.parametrize("order", [order for order, _ in ORDERS])
def test_compiles_for_postgresql(order):
    sort = parse_order(order)
    cursor = "1.5" if isinstance(sort.field, DocField) else 1.5
    if isinstance(sort.field, ColumnField) and sort.field.kind == "text":
        cursor = "b"
    stmt = (
        select(schema.runs.c.run_id, sort_value(sort, POSTGRES))
        .where(after(sort, POSTGRES, cursor, 3))
        .order_by(*order_by(sort, POSTGRES))
    )
    assert "ORDER BY" in str(stmt.compile(dialect=postgresql.dialect()))
