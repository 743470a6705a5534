"""The writer: flush means stored, nothing is dropped, memory stays bounded, nothing is shared.

Failures are injected with backends that wrap the test's real store: slow, down for a while,
down for good, or recording what goes wrong inside them.
"""

from __future__ import annotations

import json
import math
import threading
import time

import pytest

import runbase
from runbase.backend.base import HistoryRow, RunPath
from runbase.backend.local import LocalBackend
from runbase.errors import CommError
from runbase.sdk import run as sdk_run
from runbase.sdk.run import UnstoredWarning
from runbase.sdk.spool import FORMAT, History, Spool, from_record, to_record
from tests.sdk.stored import file_bytes, stored_rows

DELAY = 0.5


class Wrapped(LocalBackend):
    """The test's store, with a switch for every write: ``delay`` before it, or ``down``
    (``CommError``) for the next ``down`` calls (``-1``: until told otherwise)."""

    def __init__(self, backend: LocalBackend) -> None:
        super().__init__(backend.store, backend.entity, backend.stale_after)
        self.delay = 0.0
        self.down = 0
        self.calls: list[str] = []
        self.errors: list[str] = []
        self._lock = threading.Lock()

    def _write(self, name: str) -> None:
        time.sleep(self.delay)
        with self._lock:
            self.calls.append(name)
            if self.down:
                self.down -= 1 if self.down > 0 else 0
                raise CommError(f"{name}: the server is down")

    def append_history(self, path, stream, rows, latest):
        try:
            sent = json.dumps(latest, sort_keys=True)
            self._write("append_history")
            result = super().append_history(path, stream, rows, latest)
            if json.dumps(latest, sort_keys=True) != sent:
                self.errors.append("what was being sent changed meanwhile")
            return result
        except Exception as exc:
            self.errors.append(repr(exc))
            raise

    def update_config(self, path, changes):
        self._write("update_config")
        return super().update_config(path, changes)

    def update_summary(self, path, changes):
        self._write("update_summary")
        return super().update_summary(path, changes)

    def update_run(self, path, changes):
        self._write("update_run")
        return super().update_run(path, changes)

    def put_file(self, path, name, chunks):
        self._write("put_file")
        return super().put_file(path, name, chunks)

    def finish_run(self, path, state, exit_code):
        self._write("finish_run")
        return super().finish_run(path, state, exit_code)


@pytest.fixture
def wrapped(backend, monkeypatch):
    """A ``Wrapped`` backend that ``runbase.init`` will use."""
    found = Wrapped(backend)
    monkeypatch.setattr(sdk_run, "open_backend", lambda settings: found)
    return found


def quick(run, drain_timeout=5.0, **limits):
    """Shrink the writer's backoff (and set its limits) so that tests stay fast."""
    writer = run._writer
    writer.backoff_start, writer.backoff_cap, writer.drain_timeout = 0.01, 0.05, drain_timeout
    for name, value in limits.items():
        setattr(writer, name, value)
    return run


def assert_dense(backend, path, count, key="i"):
    """Exactly ``count`` rows, each stored once, in order, with no hole."""
    rows = stored_rows(backend, path)
    assert [row[key] for row in rows] == list(range(count))
    assert [row["_step"] for row in rows] == list(range(count))
    assert backend.get_run(path).history_line_count == count


def test_flush_returns_only_once_rows_are_stored(wrapped, backend):
    wrapped.delay = DELAY
    run = runbase.init(project="p", id="flush")
    run.log({"i": 0})
    time.sleep(0.15)  # the writer has taken the row and is storing it
    started = time.monotonic()
    run.flush()
    assert time.monotonic() - started > DELAY / 5  # it waited for the slow backend
    assert backend.get_run(run._path).history_line_count == 1
    for i in range(1, 50):
        run.log({"i": i})
    run.flush()
    assert_dense(backend, run._path, 50)  # everything logged before flush() is readable
    wrapped.delay = 0
    run.finish()


def test_a_slow_backend_does_not_slow_the_training_thread(wrapped, backend, tmp_path):
    wrapped.delay = DELAY
    (tmp_path / "model.bin").write_bytes(b"weights")
    run = runbase.init(project="p", id="slow", config={"lr": 0.1})
    started = time.monotonic()
    for i in range(100):
        run.log({"i": i})
    run.config.update({"batch": 32})
    run.config.layers = [64, 32]
    run.name = "renamed"
    run.summary["best"] = 1.0
    assert run.save(str(tmp_path / "model.bin")) == ["model.bin"]
    assert time.monotonic() - started < DELAY / 2  # none of it waited on the backend
    assert run.name == "renamed" and run.config.batch == 32
    wrapped.delay = 0.05
    run.finish()
    record = backend.get_run(run._path)
    assert record.config == {"lr": 0.1, "batch": 32, "layers": [64, 32]}
    assert record.display_name == "renamed" and record.summary["best"] == 1.0
    assert record.state == "finished"
    assert file_bytes(backend, run._path, "model.bin") == b"weights"
    assert_dense(backend, run._path, 100)


def test_a_backend_down_for_a_while_loses_nothing(wrapped, backend):
    run = quick(runbase.init(project="p", id="flaky"))
    run.log({"i": 0})
    run.flush()
    wrapped.down = 25  # the next 25 writes fail, whatever they are
    for i in range(1, 200):
        run.log({"i": i})
        if i == 100:
            run.config.update({"epoch": 1})
            run.name = "after the outage"
            run.summary["note"] = "kept"
    run.finish()
    assert wrapped.down == 0 and wrapped.calls.count("append_history") > 25
    record = backend.get_run(run._path)
    assert record.state == "finished"
    assert record.config == {"epoch": 1} and record.display_name == "after the outage"
    assert record.summary["note"] == "kept" and record.summary["i"] == 199
    assert_dense(backend, run._path, 200)


def test_rows_beyond_the_memory_limit_wait_on_disk(wrapped, backend, data_dir):
    run = quick(runbase.init(project="p", id="spooled"), memory_rows=100)
    spool = Spool(data_dir, run._path)
    wrapped.down = -1
    for i in range(1000):
        run.log({"i": i, "x": float("nan") if i == 7 else 0.5})
        if i % 100 == 0:
            time.sleep(0.01)  # let the writer take batches as they come
    deadline = time.monotonic() + 5
    while sum(len(b.rows) for _, b in spool if isinstance(b, History)) < 900:
        assert time.monotonic() < deadline, "rows did not reach the spool"
        time.sleep(0.02)
    assert run._writer._memory_rows <= 100  # the rest is on disk, not in memory
    assert backend.get_run(run._path).history_line_count == 0
    wrapped.down = 0
    run.finish()
    assert_dense(backend, run._path, 1000)  # each row once, in order, no hole
    assert math.isnan(stored_rows(backend, run._path)[7]["x"])
    assert not spool.dir.exists() and spool.entries() == []
    assert backend.get_run(run._path).summary["i"] == 999


def test_finish_with_a_dead_backend_says_what_waits_where(wrapped, backend, data_dir):
    run = quick(runbase.init(project="p", id="dead"), drain_timeout=0.5)
    run.log({"i": 0})
    run.flush()
    wrapped.down = -1
    for i in range(1, 4):
        run.log({"i": i})
    run.config.update({"late": True})
    spool = Spool(data_dir, run._path)
    with pytest.warns(UnstoredWarning, match=r"3 rows.*CommError.*" + str(spool.dir)):
        run.finish()
    record = backend.get_run(run._path)
    assert record.state == "running" and record.history_line_count == 1  # not "finished"
    kinds = [kind for _, kind in spool.entries()]
    assert kinds[-1] == "finish" and "config" in kinds and "history" in kinds
    document = json.loads(next(spool.dir.glob("*-history.json")).read_text())
    assert document["format"] == FORMAT and document["path"]["run_id"] == "dead"

    # the next init of the run stores what waits first, then goes on from there
    wrapped.down = 0
    with runbase.init(project="p", id="dead", resume="allow") as again:
        assert again.step == 4 and again.config.late is True
        again.log({"i": 4})
    assert spool.entries() == []
    assert_dense(backend, run._path, 5)
    assert backend.get_run(run._path).state == "finished"


def test_flush_warns_when_the_backend_stays_down(wrapped, backend):
    run = quick(runbase.init(project="p", id="stuck"), drain_timeout=0.3)
    wrapped.down = -1
    run.log({"i": 0})
    with pytest.warns(UnstoredWarning, match="not all stored"):
        run.flush()
    wrapped.down = 0
    run.finish()
    assert_dense(backend, run._path, 1)


def test_nested_rows_from_a_fast_loop_share_nothing_with_the_writer(wrapped, backend):
    # (wider rows than this hit a PostgreSQL index limit on key sets; that is the store's part)
    big = {f"k{i}": float(i) for i in range(200)}
    run = runbase.init(project="p", id="nested")
    wrapped.delay, run._writer.poll = 0.01, 0.005  # batches are sent while the loop logs
    for i in range(600):
        run.log({"m": {**big, f"new{i}": 1.0}, "h": {"x": float("nan")}, "l": [i, i]})
        if i % 50 == 0:
            run.summary.update({"best": {"step": i, "inner": {"v": [i]}}})
            time.sleep(0.01)
    run.finish()
    # nothing went wrong inside append_history, not even once, and nothing that it was
    # sending was changed by the logging thread meanwhile
    assert wrapped.errors == [] and wrapped.calls.count("append_history") > 1
    stored = backend.get_run(run._path).summary
    assert stored["m"] == run.summary["m"] and len(stored["m"]) == 800
    assert stored["best"] == {"step": 550, "inner": {"v": [550]}}
    assert math.isnan(stored["h"]["x"]) and stored["l"] == [599, 599]


def test_summary_changes_and_rows_are_stored_in_the_order_made(wrapped, backend):
    wrapped.delay = 0.1  # so that all of it lands in one batch
    with runbase.init(project="p", id="order") as run:
        run.log({"a": 1})
        run.summary["a"] = 2  # after the row: the change wins
        run.summary["b"] = 1
        run.log({"b": 2})  # after the change: the row wins
        run.summary["c"] = {"x": 1}
        run.log({"c": {"y": 2}})  # nested rows merge by leaf
    summary = backend.get_run(run._path).summary
    assert (summary["a"], summary["b"], summary["c"]) == (2, 2, {"x": 1, "y": 2})


def test_spool_records_describe_themselves_and_keep_nan(tmp_path):
    path = RunPath("e", "p", "r")
    spool = Spool(tmp_path, path)
    rows = [HistoryRow(0, 0, ("x",), '{"x":NaN}')]
    spool.write(3, History("default", rows, {"x": float("nan"), "y": {"z": float("inf")}}))
    assert spool.entries() == [(3, "history")]
    assert spool.dir == tmp_path / "spool" / "e" / "p" / "r"
    document = json.loads(next(spool.dir.iterdir()).read_text())  # plain JSON
    assert document["format"] == FORMAT and document["path"] == path._asdict()
    assert document["stream"] == "default" and document["rows"] == [[0, 0, ["x"], '{"x":NaN}']]
    found = spool.read(3)
    assert isinstance(found, History) and found.rows == rows
    assert math.isnan(found.latest["x"]) and found.latest["y"] == {"z": float("inf")}
    assert from_record(to_record(path, found))[0] == path
    spool.remove(3)
    assert spool.entries() == [] and not spool.dir.exists()
