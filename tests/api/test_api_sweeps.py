"""Sweeps: attributes, the runs that joined, the best run by the config's metric."""

from __future__ import annotations

import pytest

from runbase.api import Runs, Sweep
from runbase.errors import NotFound

ENTITY = "tester"
PROJECT = "proj"


CONFIG = {
    "method": "grid",
    "metric": {"name": "val_loss", "goal": "minimize"},
    "parameters": {"lr": {"values": [0.1, 0.01, 0.001]}},
}


@pytest.fixture
def sweep_id(backend):
    return backend.create_sweep(ENTITY, PROJECT, CONFIG).sweep_id


def join(make, sweep_id, run_id, val_loss=None):
    path = make.create(run_id, sweep=sweep_id)
    if val_loss is not None:
        make.log(path, [{"_step": 0, "val_loss": val_loss, "acc": 1 - val_loss}])
    return path


def test_sweep_attributes(api, sweep_id):
    for path in (sweep_id, f"{PROJECT}/{sweep_id}", f"{ENTITY}/{PROJECT}/{sweep_id}",
                 f"{ENTITY}/{PROJECT}/sweeps/{sweep_id}"):  # fmt: skip
        sweep = api.sweep(path)
        assert isinstance(sweep, Sweep)
        assert (sweep.id, sweep.entity, sweep.project) == (sweep_id, ENTITY, PROJECT)
    assert sweep.config == CONFIG
    assert sweep.name == sweep_id
    assert sweep.state == "RUNNING"
    assert sweep.order == "+summary_metrics.val_loss"
    assert sweep.url == f"http://127.0.0.1:8080/{ENTITY}/{PROJECT}/sweeps/{sweep_id}"


def test_sweep_runs(api, make, sweep_id):
    join(make, sweep_id, "a", 0.5)
    join(make, sweep_id, "b", 0.2)
    make.create("outsider")
    sweep = api.sweep(sweep_id)
    assert isinstance(sweep.runs, Runs)
    assert [r.id for r in sweep.runs] == ["a", "b"]
    assert len(sweep.runs) == 2
    assert api.run("a").sweep_name == sweep_id
    assert api.run("a").sweep.id == sweep_id


def test_best_run_follows_the_metric_goal(api, make, backend, sweep_id):
    join(make, sweep_id, "a", 0.5)
    join(make, sweep_id, "b", 0.2)
    join(make, sweep_id, "c", 0.9)
    join(make, sweep_id, "no-metric-yet")
    sweep = api.sweep(sweep_id)
    assert sweep.best_run().id == "b"
    assert sweep.best_run(order="-summary_metrics.val_loss").id == "c"
    assert sweep.best_run(order="+created_at").id == "a"
    maximize = backend.create_sweep(
        ENTITY, PROJECT, {"metric": {"name": "acc", "goal": "maximize"}}
    )
    join(make, maximize.sweep_id, "m1", 0.4)
    join(make, maximize.sweep_id, "m2", 0.1)
    assert api.sweep(maximize.sweep_id).best_run().id == "m2"


def test_best_run_without_metric_is_the_newest(api, make, backend):
    plain = backend.create_sweep(ENTITY, PROJECT, {"method": "random"}).sweep_id
    join(make, plain, "old")
    join(make, plain, "new")
    assert api.sweep(plain).order is None
    assert api.sweep(plain).best_run().id == "new"


def test_best_run_of_an_empty_sweep_is_none(api, sweep_id):
    assert api.sweep(sweep_id).best_run() is None
    assert list(api.sweep(sweep_id).runs) == []


def test_missing_sweep_is_named(api):
    with pytest.raises(NotFound, match="nosuch"):
        api.sweep("nosuch")
