"""The filter compiler against mongomock on generated filters over fixed documents.

The generated filters keep to what mongomock gets right: no 0 or 1 (mongomock takes ``true``
for 1), no arrays inside ``$in``, ``$all``, ``$eq`` or ``$ne``, no empty ``$all`` and no empty
object, no null in ordered comparisons, no ``$exists`` under ``$not``, neither null nor
``$not`` on an array index (mongomock is not consistent there), and ``$size`` only on fields
that hold nothing but arrays.
"""

from __future__ import annotations

import random

import mongomock
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

SCALARS = [2, 3, -1, 2.5, 10, "x", "y", "2", "", "finished", True, False]
ARRAYS = [[2, 3], ["x", 2], [], [None], ["y"], [[2, 3]], [2, [2, 3]]]
OBJECTS = [{"b": 2}, {"b": "x", "c": 3}, {}, {"0": 2}]
FIELDS = ["config.a", "config.l", "config.o.0", "config.n.b", "summary_metrics.m", "tags", "state"]
SIZED = {"config.l", "tags"}
INDEXED = {"config.o.0"}
REGEXES = ["^x", "y$", "2", "^$", "p|q", "^fin"]


def documents() -> list[dict]:
    """Thirty runs as mongomock documents: ``_id``, config, summary_metrics, tags, state."""
    rng = random.Random(9)
    docs = []
    for i in range(30):
        config: dict = {}
        if rng.random() < 0.8:
            config["a"] = rng.choice([*SCALARS, None, *ARRAYS, *OBJECTS])
        if rng.random() < 0.8:
            config["l"] = rng.choice(ARRAYS)
        if rng.random() < 0.8:
            config["o"] = rng.choice([*ARRAYS, {"0": 2}, {"0": "x"}])
        if rng.random() < 0.7:
            config["n"] = rng.choice([{"b": rng.choice([*SCALARS, None])}, {}])
        summary = {"m": rng.choice([2, 3, 2.5, -1, "x", None])} if rng.random() < 0.8 else {}
        tags = [t for t in ("p", "q", "r") if rng.random() < 0.4]
        state = rng.choice(["finished", "running", "crashed"])
        docs.append(
            {"_id": f"r{i:02d}", "config": config, "summary_metrics": summary, "tags": tags}
            | {"state": state}
        )
    return docs


DOCS = documents()
scalars = st.sampled_from(SCALARS)


def values(field: str, arrays: bool = True) -> st.SearchStrategy:
    shapes = [scalars, st.sampled_from([o for o in OBJECTS if o])]
    if arrays:
        shapes.append(st.sampled_from(ARRAYS))
    if field not in INDEXED:
        shapes.append(st.none())
    return st.one_of(shapes)


def operators(field: str) -> st.SearchStrategy[dict]:
    listed = st.lists(scalars if field in INDEXED else st.one_of(scalars, st.none()), max_size=3)
    choices = [
        st.builds(lambda v: {"$eq": v}, values(field, arrays=False)),
        st.builds(lambda v: {"$ne": v}, values(field, arrays=False)),
        st.builds(lambda op, v: {op: v}, st.sampled_from(["$gt", "$gte", "$lt", "$lte"]), scalars),
        st.builds(lambda vs: {"$in": vs}, listed),
        st.builds(lambda vs: {"$nin": vs}, listed),
        st.builds(lambda p: {"$regex": p}, st.sampled_from(REGEXES)),
        st.builds(lambda vs: {"$all": vs}, st.lists(scalars, min_size=1, max_size=2)),
    ]
    if field in SIZED:
        choices.append(st.builds(lambda n: {"$size": n}, st.integers(0, 3)))
    single = st.one_of(choices)
    exists = st.builds(lambda b: {"$exists": b}, st.booleans())
    pairs = st.tuples(single, single).map(lambda p: p[0] | p[1])
    if field in INDEXED:
        return st.one_of(single, exists, pairs)
    return st.one_of(single, single.map(lambda ops: {"$not": ops}), exists, pairs)


def conditions(field: str) -> st.SearchStrategy:
    return st.one_of(values(field), operators(field))


field_conditions = st.sampled_from(FIELDS).flatmap(
    lambda field: conditions(field).map(lambda condition: (field, condition))
)
leaves = st.lists(field_conditions, min_size=1, max_size=2).map(dict)
filters = st.recursive(
    leaves,
    lambda children: st.builds(
        lambda op, items: {op: items},
        st.sampled_from(["$and", "$or", "$nor"]),
        st.lists(children, min_size=1, max_size=3),
    ),
    max_leaves=6,
)


@pytest.fixture(scope="module")
def table(run_table):
    runs = [
        {
            "run_id": doc["_id"],
            "config": doc["config"],
            "summary": doc["summary_metrics"],
            "tags": doc["tags"],
            "state": doc["state"],
        }
        for doc in DOCS
    ]
    return run_table(runs)


@pytest.fixture(scope="module")
def collection():
    collection = mongomock.MongoClient().db.runs
    collection.insert_many([dict(doc) for doc in DOCS])
    return collection


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(query=filters)
def test_same_runs_as_mongomock(table, collection, query):
    expected = {doc["_id"] for doc in collection.find(query)}
    assert table.ids(query) == expected, query


def test_documents_cover_every_shape():
    found = [doc["config"].get("a", "missing") for doc in DOCS]
    assert any(isinstance(v, list) for v in found)
    assert any(isinstance(v, dict) for v in found)
    assert None in found and "missing" in found
    assert any(isinstance(doc["config"].get("o"), dict) for doc in DOCS)
