"""Runs: lazy pages, keyset pagination with ties, indexing, len() by count, filters and order."""

from __future__ import annotations

import time

import pytest

from runbase.errors import InvalidFilter, NotFound

ENTITY = "tester"
PROJECT = "proj"


def ids(runs) -> list[str]:
    return [run.id for run in runs]


@pytest.mark.parametrize("count", [0, 1, 3, 4, 7])
def test_every_run_once_across_pages(api, make, backend, count):
    backend.create_sweep(ENTITY, PROJECT, {})  # the project exists even with no runs
    made = [make.create(f"r{i}").run_id for i in range(count)]
    runs = api.runs(order="+created_at", per_page=3)
    assert ids(runs) == made
    assert backend.calls["query_runs"] == max(1, -(-count // 3))
    assert len(runs) == count


def test_a_project_that_does_not_exist_is_named(api, make):
    make.create("x", project="full")
    with pytest.raises(NotFound, match=f"{ENTITY}/nope"):
        list(api.runs("nope"))
    with pytest.raises(NotFound, match=f"{ENTITY}/nope"):
        len(api.runs("nope"))


def test_pages_load_lazily(api, make, backend):
    for i in range(7):
        make.create(f"r{i}")
    runs = api.runs(per_page=3)
    assert backend.calls["query_runs"] == 0
    first = next(iter(runs))
    assert first.id == "r6"
    assert backend.calls["query_runs"] == 1
    assert runs[2].id == "r4" and backend.calls["query_runs"] == 1
    assert runs[3].id == "r3" and backend.calls["query_runs"] == 2


def test_second_iteration_makes_no_queries(api, make, backend):
    for i in range(5):
        make.create(f"r{i}")
    runs = api.runs(per_page=2)
    assert ids(runs) == ["r4", "r3", "r2", "r1", "r0"]
    before = dict(backend.calls)
    assert ids(runs) == ["r4", "r3", "r2", "r1", "r0"]
    assert len(runs) == 5
    assert runs[-1].id == "r0"
    assert dict(backend.calls) == before


def test_len_is_one_count(api, make, backend):
    for i in range(5):
        make.create(f"r{i}")
    runs = api.runs(per_page=2)
    assert len(runs) == 5
    assert len(runs) == 5
    assert backend.calls["count_runs"] == 1
    assert backend.calls["query_runs"] == 0
    assert backend.calls["get_run"] == 0


def test_index_and_slices(api, make):
    for i in range(7):
        make.create(f"r{i}")
    runs = api.runs(order="+created_at", per_page=3)
    assert runs[0].id == "r0"
    assert runs[4].id == "r4"
    assert ids(runs[1:3]) == ["r1", "r2"]
    assert ids(runs[5:100]) == ["r5", "r6"]
    assert ids(runs[::3]) == ["r0", "r3", "r6"]
    assert runs[-1].id == "r6"
    assert ids(runs[-2:]) == ["r5", "r6"]
    with pytest.raises(IndexError):
        runs[7]
    with pytest.raises(TypeError):
        runs["r1"]


def test_negative_index_loads_everything(api, make, backend):
    for i in range(5):
        make.create(f"r{i}")
    assert api.runs(per_page=2)[-1].id == "r0"
    assert backend.calls["query_runs"] == 3


@pytest.mark.parametrize("order", ["+created_at", "-created_at", "state", "+config.bucket"])
def test_ties_are_never_skipped_or_repeated(api, make, monkeypatch, order):
    monkeypatch.setattr(time, "time", lambda: 1_700_000_000.0)
    made = {make.create(f"r{i:02d}", config={"bucket": i % 2}).run_id for i in range(11)}
    monkeypatch.undo()
    for per_page in (1, 2, 3, 5, 11, 50):
        api.flush()
        found = ids(api.runs(order=order, per_page=per_page))
        assert len(found) == 11 and set(found) == made, (order, per_page)


def test_order_by_config_and_summary(api, make):
    for i, lr in enumerate([0.3, 0.1, 0.2]):
        path = make.create(f"r{i}", config={"lr": lr})
        make.log(path, [{"_step": 0, "acc": lr * 2}])
    assert ids(api.runs(order="+config.lr")) == ["r1", "r2", "r0"]
    assert ids(api.runs(order="-summary_metrics.acc")) == ["r0", "r2", "r1"]
    assert ids(api.runs(order="+acc")) == ["r1", "r2", "r0"]


def test_filters_pass_through(api, make):
    for i in range(4):
        make.create(f"r{i}", config={"lr": i / 10})
    found = api.runs(filters={"config.lr": {"$gte": 0.2}}, order="+created_at")
    assert ids(found) == ["r2", "r3"]
    assert len(api.runs(filters={"config.lr": {"$gte": 0.2}})) == 2
    either = {"$or": [{"config.lr": 0.0}, {"config.lr": 0.3}]}
    assert ids(api.runs(filters=either, order="+created_at")) == ["r0", "r3"]


@pytest.mark.parametrize("filters", [[("state", "finished")], "state=finished", 3])
def test_non_dict_filters_are_refused_early(api, backend, filters):
    with pytest.raises(ValueError, match="filters"):
        api.runs(filters=filters)
    assert backend.calls["query_runs"] == 0


@pytest.mark.parametrize("order", ["", "+", "-", "--created_at", " name", "config.", "a..b", 5])
def test_garbage_order_is_refused_early(api, backend, order):
    with pytest.raises(InvalidFilter, match="order"):
        api.runs(order=order)
    assert backend.calls["query_runs"] == 0


@pytest.mark.parametrize("per_page", [0, -1, 1.5, True])
def test_bad_per_page(api, per_page):
    with pytest.raises(ValueError, match="per_page"):
        api.runs(per_page=per_page)


def test_runs_paths(api, make):
    make.create("r1", project="p2")
    assert ids(api.runs(f"{ENTITY}/p2")) == ["r1"]
    assert ids(api.runs("p2")) == ["r1"]
    assert repr(api.runs("p2")) == f"<Runs {ENTITY}/p2>"
    with pytest.raises(ValueError, match="path"):
        api.runs("a/b/c")


def test_runs_from_a_listing_have_full_attributes(api, make, backend):
    path = make.create("r1", config={"lr": 1}, tags=["t"])
    make.log(path, [{"_step": 0, "loss": 2.0}])
    backend.calls.clear()
    (run,) = api.runs()
    assert (run.config, run.tags, run.summary["loss"]) == ({"lr": 1}, ["t"], 2.0)
    assert set(backend.calls) == {"query_runs"}
