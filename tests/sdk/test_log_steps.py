"""wandb's step rules for run.log."""

from __future__ import annotations

import pytest

import runbase
from tests.sdk.stored import stored_rows

pytestmark = pytest.mark.usefixtures("sdk_transport")


def rows(backend, run, stream="default"):
    return stored_rows(backend, run._path, stream)


def steps_and(backend, run, key):
    return [(r["_step"], r.get(key)) for r in rows(backend, run)]


def test_each_call_commits_a_row_and_advances(backend):
    with runbase.init(project="p") as run:
        run.log({"a": 1})
        run.log({"a": 2})
        run.log({"b": 3})
    assert steps_and(backend, run, "a") == [(0, 1), (1, 2), (2, None)]


def test_commit_false_merges_into_the_current_step(backend):
    with runbase.init(project="p") as run:
        run.log({"a": 1}, commit=False)
        run.log({"b": 2}, commit=False)
        run.log({"c": 3})
        run.log({"a": 4})
    got = rows(backend, run)
    assert [(r["_step"], r.get("a"), r.get("b"), r.get("c")) for r in got] == [
        (0, 1, 2, 3),
        (1, 4, None, None),
    ]


def test_explicit_larger_step_commits_the_pending_row(backend):
    with runbase.init(project="p") as run:
        run.log({"a": 1}, step=5)
        run.log({"b": 2}, step=5)
        run.log({"a": 3}, step=9)
    got = rows(backend, run)
    assert [(r["_step"], r.get("a"), r.get("b")) for r in got] == [(5, 1, 2), (9, 3, None)]


def test_explicit_step_with_commit_true_commits_at_once(backend):
    with runbase.init(project="p") as run:
        run.log({"a": 1}, step=3, commit=True)
        run.flush()
        assert steps_and(backend, run, "a") == [(3, 1)]
        run.log({"a": 2})
    assert steps_and(backend, run, "a") == [(3, 1), (4, 2)]


def test_smaller_step_is_dropped_with_one_warning(backend):
    with runbase.init(project="p") as run:
        run.log({"a": 1}, step=10)
        with pytest.warns(UserWarning, match="step 3 is less than the current step 10") as caught:
            run.log({"a": 2}, step=3)
        assert len(caught) == 1
        run.log({"a": 5})  # merges into the pending step 10 and commits it
        with pytest.warns(UserWarning, match="step 10 is less than the current step 11"):
            run.log({"a": 6}, step=10)
        run.log({"a": 7})
    assert steps_and(backend, run, "a") == [(10, 5), (11, 7)]


def test_a_call_without_step_merges_into_a_pending_explicit_step(backend):
    with runbase.init(project="p") as run:
        run.log({"a": 1})
        run.log({"a": 2, "b": 1}, step=7)
        run.log({"a": 3})
        assert run.step == 8
        run.log({"a": 4})
    got = rows(backend, run)
    assert [(r["_step"], r["a"], r.get("b")) for r in got] == [
        (0, 1, None),
        (7, 3, 1),
        (8, 4, None),
    ]


def test_rows_carry_runtime_and_timestamp(backend):
    with runbase.init(project="p") as run:
        run.log({"a": 1})
    (row,) = rows(backend, run)
    assert isinstance(row["_runtime"], float) and row["_runtime"] >= 0
    assert isinstance(row["_timestamp"], float) and row["_timestamp"] > 1.7e9


def test_non_integer_step_is_refused(backend):
    with runbase.init(project="p") as run, pytest.raises(TypeError, match="step"):
        run.log({"a": 1}, step="3")  # type: ignore[arg-type]


def test_module_level_calls_use_the_current_run(backend):
    run = runbase.init(project="p", config={"lr": 0.1})
    assert runbase.run is run
    assert runbase.config.lr == 0.1
    runbase.log({"a": 1})
    runbase.summary["best"] = 7
    runbase.finish()
    assert runbase.run is None
    assert steps_and(backend, run, "a") == [(0, 1)]
    assert backend.get_run(run._path).summary["best"] == 7


def test_log_before_init_is_a_clear_error(data_dir):
    with pytest.raises(runbase.RunbaseError, match="init"):
        runbase.log({"a": 1})
