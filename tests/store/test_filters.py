"""The filter compiler, table-driven: each filter against a fixed set of runs."""

from __future__ import annotations

import math
import re

import pytest
from sqlalchemy import select
from sqlalchemy.dialects import postgresql, sqlite

from runbase.errors import InvalidFilter
from runbase.fields import ColumnField, DocField, split_path
from runbase.store import schema
from runbase.store.dialect import POSTGRES, SQLITE
from runbase.store.filters import And, Compare, Not, compile_filters, parse_filters

T0 = 1_704_067_200.0  # 2024-01-01T00:00:00Z
DAY = 86_400.0
HOSTILE = "'); DROP TABLE runs; --"
NAN = float("nan")
INF = float("inf")


def make_run(run_id: str, **fields):
    return {"run_id": run_id, **fields}


RUNS = [
    make_run(
        "r1",
        created_at=T0,
        config={
            "lr": 0.1,
            "batch": 32,
            "opt": "adam",
            "layers": [64, 128],
            "nested": {"depth": 3, "act": "relu"},
            "flag": True,
            "a.b": 1,
            "steps": [10, 20],
        },
        summary={"loss": 0.5, "acc": 0.9, "best": {"epoch": 3}},
        tags=["baseline", "v1"],
        group="g1",
        job_type="train",
        sweep="sw1",
    ),
    make_run(
        "r2",
        config={
            "lr": 0.01,
            "batch": 64,
            "opt": "sgd",
            "layers": [128],
            "nested": {"depth": 5},
            "flag": False,
            "a": {"b": 2},
            "steps": {"0": "zero"},
        },
        summary={"loss": 0.2, "acc": 0.95},
        tags=["v2"],
        state="running",
        group="g1",
        job_type="eval",
        sweep="sw1",
        username="bob",
        created_at=T0 + DAY,
    ),
    make_run(
        "r3",
        config={"lr": "0.1", "batch": 32.0, "opt": "Adam", "flag": 1, "layers": None},
        summary={"loss": NAN, "acc": None},
        state="crashed",
        created_at=T0 + 2 * DAY,
    ),
    make_run(
        "r4",
        config={"lr": 0.001, "layers": [], "nested": {"depth": [3, 4]}, "opt": ["adam", "sgd"]},
        summary={"loss": INF, "acc": 0.5},
        tags=["baseline"],
        group="g2",
        username="bob",
        created_at=T0 + 3 * DAY,
    ),
    make_run("r5", state="failed", created_at=T0 + 4 * DAY),
    make_run(
        "r6",
        display_name=HOSTILE,
        config={
            HOSTILE: "evil",
            "$where": "1",
            "back\\slash": "bs",
            'quo"te': "q",
            "unicodé": "ünï",
            "emoji": "🚀",
            "sp ace": "s",
            "ctl\n": "nl",
        },
        summary={"weird": "a'b\"c\\d"},
        tags=[HOSTILE, "ünï"],
        created_at=T0 + 5 * DAY,
    ),
    make_run(
        "r7",
        config={
            "matrix": [[1, 2], [3, 4]],
            "objs": [{"k": 1}, {"k": 2}],
            "mixed": [1, "1", True, None],
            "lr": [0.1, 0.2],
        },
        summary={"loss": -INF, "acc": True},
        tags=["v1", "v2"],
        created_at=T0 + 6 * DAY,
    ),
]
ALL = {run["run_id"] for run in RUNS}


def runs(spec: str) -> set[str]:
    """``"1 4"`` -> ``{"r1", "r4"}``."""
    return {f"r{n}" for n in spec.split()}


CASES = [
    # equality, numbers and their kinds
    ({}, ALL),
    ({"config.lr": 0.1}, runs("1 7")),
    ({"config.lr": "0.1"}, runs("3")),
    ({"config.lr": {"$eq": 0.01}}, runs("2")),
    ({"config.batch": 32}, runs("1 3")),
    ({"config.batch": 32.0}, runs("1 3")),
    ({"config.flag": True}, runs("1")),
    ({"config.flag": 1}, runs("3")),
    ({"config.flag": False}, runs("2")),
    ({"config.flag": 0}, set()),
    ({"config.flag": {"$ne": True}}, ALL - runs("1")),
    ({"config.lr": {"$ne": 0.1}}, runs("2 3 4 5 6")),
    # ordering comparisons
    ({"config.lr": {"$gt": 0.01}}, runs("1 7")),
    ({"config.lr": {"$gte": 0.01}}, runs("1 2 7")),
    ({"config.lr": {"$lt": 0.05}}, runs("2 4")),
    ({"config.lr": {"$lte": 0.001}}, runs("4")),
    ({"config.lr": {"$gt": 0.005, "$lt": 0.15}}, runs("1 2 7")),
    ({"config.lr": {"$gt": "0"}}, runs("3")),
    ({"config.batch": {"$gte": 64}}, runs("2")),
    ({"config.flag": {"$gt": False}}, runs("1")),
    ({"config.lr": {"$gt": None}}, set()),
    ({"config.batch": {"$not": {"$gt": 40}}}, ALL - runs("2")),
    # $in, $nin, $exists
    ({"config.lr": {"$in": [0.01, 0.001]}}, runs("2 4")),
    ({"config.lr": {"$in": [0.1, "0.1"]}}, runs("1 3 7")),
    ({"config.lr": {"$in": []}}, set()),
    ({"config.lr": {"$nin": [0.1, 0.01]}}, runs("3 4 5 6")),
    ({"config.lr": {"$nin": []}}, ALL),
    ({"config.lr": {"$in": [None, 0.01]}}, runs("2 5 6")),
    ({"config.lr": {"$exists": True}}, runs("1 2 3 4 7")),
    ({"config.lr": {"$exists": False}}, runs("5 6")),
    # strings and $regex
    ({"config.opt": "adam"}, runs("1 4")),
    ({"config.opt": {"$in": ["sgd", "Adam"]}}, runs("2 3 4")),
    ({"config.opt": {"$gte": "b"}}, runs("2 4")),
    ({"config.opt": {"$regex": "^adam$"}}, runs("1 4")),
    ({"config.opt": {"$regex": "^adam$", "$options": "i"}}, runs("1 3 4")),
    ({"config.opt": {"$regex": "d"}}, runs("1 2 3 4")),
    ({"config.opt": re.compile("^ADAM", re.IGNORECASE)}, runs("1 3 4")),
    ({"config.opt": {"$not": {"$regex": "^a"}}}, runs("2 3 5 6 7")),
    ({"config.opt": {"$in": [re.compile("^s"), "Adam"]}}, runs("2 3 4")),
    ({"config.lr": {"$regex": "1"}}, runs("3")),
    # arrays
    ({"config.opt": ["adam", "sgd"]}, runs("4")),
    ({"config.opt": ["sgd", "adam"]}, set()),
    ({"config.layers": 128}, runs("1 2")),
    ({"config.layers": [128]}, runs("2")),
    ({"config.layers": []}, runs("4")),
    ({"config.layers": {"$size": 2}}, runs("1")),
    ({"config.layers": {"$size": 0}}, runs("4")),
    ({"config.layers": None}, runs("3 5 6 7")),
    ({"config.layers": {"$ne": None}}, runs("1 2 4")),
    ({"config.layers": {"$exists": True}}, runs("1 2 3 4")),
    ({"config.layers": {"$all": [64, 128]}}, runs("1")),
    ({"config.layers": {"$all": [128]}}, runs("1 2")),
    ({"config.layers": {"$all": []}}, set()),
    ({"config.layers": {"$gt": 100}}, runs("1 2")),
    ({"config.layers": {"$lt": 100}}, runs("1")),
    ({"config.layers.0": 64}, runs("1")),
    ({"config.layers.1": {"$exists": True}}, runs("1")),
    ({"config.steps.0": 10}, runs("1")),
    ({"config.steps.0": "zero"}, runs("2")),
    ({"config.matrix": [1, 2]}, runs("7")),
    ({"config.matrix": [[1, 2], [3, 4]]}, runs("7")),
    ({"config.matrix": 1}, set()),
    ({"config.matrix.1.0": 3}, runs("7")),
    ({"config.objs": {"k": 2}}, runs("7")),
    ({"config.mixed": None}, ALL),
    ({"config.mixed": "1"}, runs("7")),
    ({"config.mixed": True}, runs("7")),
    ({"config.mixed": {"$size": 4}}, runs("7")),
    ({"config.mixed": {"$all": [1, "1", True]}}, runs("7")),
    # nested documents and paths
    ({"config.nested.depth": 3}, runs("1 4")),
    ({"config.nested.depth": {"$gt": 3}}, runs("2 4")),
    ({"config.nested.act": "relu"}, runs("1")),
    ({"config.nested": {"depth": 5}}, runs("2")),
    ({"config.nested": {"depth": 3}}, set()),
    ({"config.nested": {"act": "relu", "depth": 3}}, runs("1")),
    ({"config.nested": {}}, set()),
    ({"config.a\\.b": 1}, runs("1")),
    ({"config.a.b": 2}, runs("2")),
    ({"config.a.b": 1}, set()),
    ({"config.lr.value": 0.01}, runs("2")),
    ({"config.nested.value.depth": 5}, runs("2")),
    # summary, NaN and infinities
    ({"summary_metrics.loss": {"$lt": 0.3}}, runs("2 7")),
    ({"summary.loss": {"$gt": 1}}, runs("4")),
    ({"summary.loss": INF}, runs("4")),
    ({"summary.loss": {"$lte": -INF}}, runs("7")),
    ({"summary.loss": NAN}, runs("3")),
    ({"summary.loss": {"$ne": NAN}}, ALL - runs("3")),
    ({"summary.loss": {"$gte": -INF}}, runs("1 2 4 7")),
    ({"summary.loss": {"$gt": NAN}}, set()),
    ({"summary.acc": None}, runs("3 5 6")),
    ({"summary.acc": True}, runs("7")),
    ({"summary.acc": {"$gte": 0.9}}, runs("1 2")),
    ({"summary.best.epoch": 3}, runs("1")),
    ({"summary_metrics.weird": "a'b\"c\\d"}, runs("6")),
    # tags
    ({"tags": "baseline"}, runs("1 4")),
    ({"tags": {"$in": ["v1", "v2"]}}, runs("1 2 7")),
    ({"tags": {"$nin": ["baseline"]}}, runs("2 3 5 6 7")),
    ({"tags": {"$all": ["v1", "v2"]}}, runs("7")),
    ({"tags": {"$size": 0}}, runs("3 5")),
    ({"tags": ["v2"]}, runs("2")),
    ({"tags": {"$regex": "^v"}}, runs("1 2 7")),
    ({"tags": {"$exists": True}}, ALL),
    # run columns
    ({"state": "finished"}, runs("1 4 6 7")),
    ({"state": {"$in": ["running", "crashed"]}}, runs("2 3")),
    ({"state": {"$ne": "finished"}}, runs("2 3 5")),
    ({"state": {"$regex": "^f"}}, runs("1 4 5 6 7")),
    ({"state": {"$gt": "f"}}, runs("1 2 4 5 6 7")),
    ({"state": 3}, set()),
    ({"state": {"$exists": False}}, set()),
    ({"display_name": "r2"}, runs("2")),
    ({"name": "r2"}, runs("2")),
    ({"name": "r6"}, runs("6")),  # ``name`` is the run's id in W&B's filters
    ({"name": HOSTILE}, set()),  # run 6's display name
    ({"name": {"$in": sorted(runs("2 3"))}}, runs("2 3")),
    ({"displayName": {"$in": ["r2", "r3"]}}, runs("2 3")),
    ({"group": "g1"}, runs("1 2")),
    ({"group": None}, runs("3 5 6 7")),
    ({"group": {"$exists": False}}, runs("3 5 6 7")),
    ({"group": {"$ne": "g1"}}, runs("3 4 5 6 7")),
    ({"group": {"$in": ["g2", None]}}, runs("3 4 5 6 7")),
    ({"group": {"$nin": ["g1"]}}, runs("3 4 5 6 7")),
    ({"group": {"$regex": "g"}}, runs("1 2 4")),
    ({"group": {"$not": {"$regex": "1"}}}, runs("3 4 5 6 7")),
    ({"jobType": "train"}, runs("1")),
    ({"job_type": {"$in": ["train", "eval"]}}, runs("1 2")),
    ({"sweep": "sw1"}, runs("1 2")),
    ({"username": "alice"}, runs("1 3 5 6 7")),
    ({"entity": "team"}, ALL),
    ({"entity": "other"}, set()),
    ({"id": "r3"}, runs("3")),
    # times
    ({"createdAt": {"$gte": "2024-01-03"}}, runs("3 4 5 6 7")),
    ({"created_at": {"$lt": "2024-01-02T00:00:00+00:00"}}, runs("1")),
    ({"createdAt": {"$gt": "2024-01-02T01:00:00+02:00"}}, runs("2 3 4 5 6 7")),
    ({"createdAt": {"$lte": T0 + DAY}}, runs("1 2")),
    ({"createdAt": "2024-01-01T00:00:00Z"}, runs("1")),
    ({"createdAt": {"$in": ["2024-01-02T00:00:00", T0 + 2 * DAY]}}, runs("2 3")),
    ({"heartbeatAt": {"$gt": "2024-01-07T00:30:00"}}, runs("7")),
    ({"heartbeat_at": {"$lt": T0 + 3600.5}}, runs("1")),
    ({"createdAt": None}, set()),
    # logic
    ({"$or": [{"config.lr": 0.01}, {"tags": "baseline"}]}, runs("1 2 4")),
    ({"$and": [{"state": "finished"}, {"tags": "baseline"}]}, runs("1 4")),
    ({"$nor": [{"state": "finished"}, {"group": "g1"}]}, runs("3 5")),
    ({"$not": {"state": "finished"}}, runs("2 3 5")),
    ({"state": "finished", "config.opt": "adam"}, runs("1 4")),
    (
        {
            "$or": [
                {"$and": [{"config.batch": 32}, {"state": "finished"}]},
                {"summary.loss": {"$lt": 0}},
            ]
        },
        runs("1 7"),
    ),
    ({"$nor": [{"config.lr": {"$exists": True}}]}, runs("5 6")),
    # hostile keys and values
    ({f"config.{HOSTILE}": "evil"}, runs("6")),
    ({"config.$where": "1"}, runs("6")),
    ({"config.back\\\\slash": "bs"}, runs("6")),
    ({'config.quo"te': "q"}, runs("6")),
    ({"config.unicodé": "ünï"}, runs("6")),
    ({"config.emoji": "🚀"}, runs("6")),
    ({"config.sp ace": "s"}, runs("6")),
    ({"config.ctl\n": "nl"}, runs("6")),
    ({"display_name": HOSTILE}, runs("6")),
    ({"tags": HOSTILE}, runs("6")),
    ({"tags": "ünï"}, runs("6")),
    ({"config.opt": HOSTILE}, set()),
    ({"tags": {"$regex": "DROP TABLE"}}, runs("6")),
    ({"state": {"$regex": "'\\); DROP"}}, set()),
]


@pytest.fixture(scope="module")
def table(run_table):
    return run_table(RUNS)


def test_there_are_enough_cases():
    assert len(CASES) >= 80


@pytest.mark.parametrize(("filters", "expected"), CASES, ids=[str(f) for f, _ in CASES])
def test_filter(table, filters, expected):
    assert table.ids(filters) == expected


def test_hostile_input_leaves_the_table_alone(table):
    for filters, _ in CASES:
        if HOSTILE in str(filters):
            table.ids(filters)
    assert table.count() == len(RUNS)
    assert table.ids({"config.opt": "adam"}) == runs("1 4")


@pytest.mark.parametrize(("filters", "_"), CASES, ids=[str(f) for f, _ in CASES])
def test_compiles_for_postgresql(filters, _):
    stmt = select(schema.runs.c.run_id).where(compile_filters(filters, POSTGRES))
    assert "runs" in str(stmt.compile(dialect=postgresql.dialect()))


def test_values_and_keys_are_bound_never_spliced():
    filters = {f"config.{HOSTILE}": HOSTILE, "tags": {"$regex": re.escape(HOSTILE)}}
    for dialect, name in ((sqlite.dialect(), SQLITE), (postgresql.dialect(), POSTGRES)):
        sql = str(
            select(schema.runs.c.run_id)
            .where(compile_filters(filters, name))
            .compile(dialect=dialect)
        )
        assert "DROP" not in sql


def test_parse_builds_a_tree():
    lr = DocField("config", ("lr",), "config.lr.value")
    state = ColumnField("runs", "state", "text", False, "state")
    tree = parse_filters({"config.lr.value": {"$ne": 1}, "state": "finished"})
    assert tree == And((Not(Compare(lr, "eq", 1)), Compare(state, "eq", "finished")))


@pytest.mark.parametrize(
    ("key", "parts"),
    [
        ("a.b", ["a", "b"]),
        ("a\\.b", ["a.b"]),
        ("a\\\\.b", ["a\\", "b"]),
        ("a\\b", ["a\\b"]),
        ("a\\", ["a\\"]),
        ("π.😀", ["π", "😀"]),
    ],
)
def test_split_path(key, parts):
    assert split_path(key) == parts


ERRORS = [
    ({"Name": "x"}, "'Name'"),
    ({"foo": 1}, "'foo'"),
    ({"config": 1}, "'config'"),
    ({"summary_metrics": {"$exists": True}}, "'summary_metrics'"),
    ({"tags.0": "x"}, "'tags.0'"),
    ({1: 2}, "1"),
    ({"config.lr": {"$foo": 1}}, "$foo"),
    ({"$foo": [{"state": "x"}]}, "$foo"),
    ({"$where": "1"}, "$where"),
    ({"config.lr": {"$in": 1}}, "$in"),
    ({"config.lr": {"$nin": "abc"}}, "$nin"),
    ({"config.lr": {"$all": 3}}, "$all"),
    ({"config.lr": {"$size": "2"}}, "$size"),
    ({"config.lr": {"$size": 1.5}}, "$size"),
    ({"config.lr": {"$size": True}}, "$size"),
    ({"config.lr": {"$size": -1}}, "$size"),
    ({"$and": {"state": "x"}}, "$and"),
    ({"$or": []}, "$or"),
    ({"$nor": "x"}, "$nor"),
    ({"$or": [1]}, "$or[0]"),
    ({"$not": 3}, "$not"),
    ({"createdAt": "yesterday"}, "yesterday"),
    ({"createdAt": {"$gt": True}}, "createdAt"),
    ({"heartbeatAt": {"$in": ["2024-13-01"]}}, "2024-13-01"),
    ({"createdAt": {"$regex": "2024"}}, "$regex"),
    ({"config.lr": {"$regex": "("}}, "$regex"),
    ({"config.lr": {"$regex": 5}}, "$regex"),
    ({"config.lr": {"$options": "i"}}, "$options"),
    ({"config.lr": {"$regex": "a", "$options": "q"}}, "$options"),
    ({"config.lr": {"$exists": "yes"}}, "$exists"),
    ({"config.lr": {"$not": 5}}, "$not"),
    ({"config.lr": {"$not": {}}}, "$not"),
    ({"config.lr": {"$gt": [1]}}, "$gt"),
    ({"config.lr": {"$lte": {"a": 1}}}, "$lte"),
    ({"config.lr": {"$gt": 1, "x": 2}}, "config.lr"),
    ({"config.lr": object()}, "object"),
    ({"config.lr": {"$in": [{"$gt": 1}]}}, "$in"),
    ({"config..lr": 1}, "config..lr"),
    ({"config.lr.": 1}, "config.lr."),
]


@pytest.mark.parametrize(("filters", "part"), ERRORS, ids=[str(f) for f, _ in ERRORS])
def test_invalid_filter_names_the_part(filters, part):
    with pytest.raises(InvalidFilter) as info:
        compile_filters(filters, SQLITE)
    assert part in str(info.value)
    assert isinstance(info.value, ValueError)


@pytest.mark.parametrize("filters", [[("state", "x")], "state=x", None, 3])
def test_filters_must_be_an_object(filters):
    with pytest.raises(InvalidFilter, match="object"):
        compile_filters(filters, SQLITE)


def test_nan_and_infinity_reach_sqlite_as_stored(table):
    assert math.isnan(NAN) and table.ids({"summary.loss": {"$in": [NAN, INF]}}) == runs("3 4")
