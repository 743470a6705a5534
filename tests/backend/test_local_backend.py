"""The local backend: state derived at read time, reads that never write, only
``RunbaseError``s, files as chunks."""

from __future__ import annotations

import json
import time

import pytest
from sqlalchemy import select

from runbase.backend.base import HistoryQuery, HistoryRow, NewRun, RunChanges, RunPath, RunQuery
from runbase.backend.local import LocalBackend
from runbase.errors import CommError, InvalidFilter, InvalidInput, NotFound
from runbase.store import runs as run_store
from runbase.store import schema

PATH = RunPath("tester", "p", "r1")


@pytest.fixture
def quick(backend):
    """The test's backend, with runs crashing after 60 s without a heartbeat."""
    return LocalBackend(backend.store, "tester", stale_after=60)


def silence(backend) -> None:
    """Age every run's last heartbeat past ``stale_after``, as two silent minutes would (a
    sleep would make the test depend on how busy the machine is)."""
    with backend.store.engine.begin() as conn:
        conn.execute(schema.runs.update().values(heartbeat_at=time.time() - 120))


def stored_states(backend) -> list[str]:
    with backend.store.read() as conn:
        return list(conn.execute(select(schema.runs.c.state)).scalars())


def ids(backend, filters: dict) -> list[str]:
    page = backend.query_runs(RunQuery("tester", "p", filters))
    return [run.run_id for run in page.items]


def test_a_silent_run_reads_crashed_without_any_write(quick):
    quick.create_run(PATH, NewRun())
    assert quick.get_run(PATH).state == "running"
    silence(quick)
    assert quick.get_run(PATH).state == "crashed"
    assert ids(quick, {"state": "crashed"}) == ["r1"]
    assert ids(quick, {"state": "running"}) == []
    assert quick.count_runs("tester", "p", {"state": {"$in": ["crashed"]}}) == 1
    assert [
        run.state for run in quick.query_runs(RunQuery("tester", "p", order="state")).items
    ] == ["crashed"]
    assert stored_states(quick) == ["running"]  # reads wrote nothing
    quick.heartbeat(PATH)
    assert quick.get_run(PATH).state == "running"
    assert ids(quick, {"state": "running"}) == ["r1"]
    silence(quick)
    quick.finish_run(PATH, "finished", 0)
    assert quick.get_run(PATH).state == "finished"
    assert stored_states(quick) == ["finished"]


def test_records_are_immutable_values(backend):
    run = backend.create_run(PATH, NewRun(tags=("a", "b")))
    assert run.tags == ("a", "b") and run.read_only is False
    with pytest.raises(AttributeError):
        run.state = "x"
    changed = backend.update_run(PATH, RunChanges(tags=("c",), metadata={"host": "h"}))
    assert changed.tags == ("c",) and changed.metadata == {"host": "h"}


def test_order_by_tags_is_rejected(backend):
    backend.create_run(PATH, NewRun())
    with pytest.raises(InvalidFilter, match="tags"):
        backend.query_runs(RunQuery("tester", "p", order="tags"))


def test_store_errors_are_invalid_input(backend):
    backend.create_run(PATH, NewRun())
    with pytest.raises(InvalidInput, match="stream"):
        backend.history_keys(PATH, "nope")
    with pytest.raises(InvalidInput, match="page_size"):
        backend.scan_history(HistoryQuery(PATH, page_size=0))
    with pytest.raises(InvalidInput, match="file name"):
        backend.put_file(PATH, "../escape", [b"x"])
    with pytest.raises(InvalidInput, match="bytes"):
        backend.put_file(PATH, "f.txt", ["text"])


def test_any_other_error_becomes_a_comm_error(backend, monkeypatch):
    backend.create_run(PATH, NewRun())

    def broken(*args, **kwargs):
        raise OSError("disk on fire")

    monkeypatch.setattr(run_store, "get_run", broken)
    with pytest.raises(CommError, match="disk on fire") as caught:
        backend.get_run(PATH)
    assert isinstance(caught.value.exc, OSError)


def test_files_move_as_chunks(backend):
    backend.create_run(PATH, NewRun())
    record = backend.put_file(PATH, "dir/data.bin", iter([b"ab", b"", b"cd"]))
    assert (record.name, record.size) == ("dir/data.bin", 4)
    assert record.md5 == "e2fc714c4727ee9395f324cd2e7f331f"
    assert b"".join(backend.read_file(PATH, "dir/data.bin")) == b"abcd"
    backend.put_file(PATH, "dir/data.bin", [b"new"])
    assert b"".join(backend.read_file(PATH, "dir/data.bin")) == b"new"
    assert backend.count_files(PATH, []) == 1
    with pytest.raises(NotFound):
        backend.read_file(PATH, "missing.bin")  # raised by the call, before iteration
    backend.delete_file(PATH, "dir/data.bin")
    with pytest.raises(NotFound):
        backend.read_file(PATH, "dir/data.bin")


def test_strings_holding_nul_characters_are_stored_on_both_databases(backend):
    """PostgreSQL's jsonb refuses U+0000; documents keep such strings all the same."""
    value = {"text": "a\x00b", "list": ["\x00", "plain"], "nested": {"t": "\x00\x00"}}
    backend.create_run(PATH, NewRun(config=value))
    row = {"_step": 0, "m": "\x00", "x": 1.0}
    backend.append_history(PATH, "default", [HistoryRow(0, 0, tuple(row), json.dumps(row))], row)
    backend.update_summary(PATH, {"nul": "x\x00"})
    run = backend.get_run(PATH)
    assert run.config == value
    assert (run.summary["m"], run.summary["nul"], run.summary["x"]) == ("\x00", "x\x00", 1.0)
    stored = backend.scan_history(HistoryQuery(PATH, "default", page_size=10)).items
    assert [json.loads(r)["m"] if isinstance(r, str) else r["m"] for r in stored] == ["\x00"]
    if backend.store.engine.dialect.name == "postgresql":
        with pytest.raises(InvalidInput, match="U\\+0000"):
            backend.update_summary(PATH, {"k\x00": 1})
        assert "k\x00" not in backend.get_run(PATH).summary
