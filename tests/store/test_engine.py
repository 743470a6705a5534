"""The store's engine: one writer thread on SQLite, migrations, no global patches."""

from __future__ import annotations

import threading
import time

import pytest
from sqlalchemy import inspect, select, text
from sqlalchemy.dialects.sqlite.base import SQLiteCompiler

from runbase.errors import CommError
from runbase.store import Store, schema
from runbase.store.dialect import POSTGRES, SQLITE
from runbase.store.migrations import STEPS, current_version


@pytest.fixture
def store(data_dir, database_url):
    store = Store.open(database_url, data_dir)
    yield store
    store.close()


def test_write_fn_returns_results_and_raises_errors_in_the_caller(store):
    assert store.write_fn(lambda conn: conn.execute(text("SELECT 41 + 1")).scalar()) == 42

    def failing(conn):
        conn.execute(schema.entities.insert().values(name="gone", created_at=0.0))
        raise KeyError("boom")

    with pytest.raises(KeyError, match="boom"):
        store.write_fn(failing)
    with store.read() as conn:  # the failed function's writes were rolled back
        assert conn.execute(select(schema.entities.c.name)).scalars().all() == []


def test_sqlite_writes_of_many_threads_take_turns_on_one_connection(store):
    if store.dialect is not SQLITE:
        pytest.skip("PostgreSQL writes on pooled connections")
    connections: set[int] = set()
    inside = []

    def record(conn):
        inside.append(1)
        assert len(inside) == 1, "two writes at once"
        connections.add(id(conn.connection.dbapi_connection))
        time.sleep(0.002)
        inside.pop()

    callers = [threading.Thread(target=store.write_fn, args=(record,)) for _ in range(8)]
    for caller in callers:
        caller.start()
    for caller in callers:
        caller.join()
    assert len(connections) == 1


def test_a_write_inside_a_write_is_refused(store):
    if store.dialect is not SQLITE:
        pytest.skip("PostgreSQL writes on pooled connections")
    with pytest.raises(RuntimeError, match="inside a write"):
        store.write_fn(lambda conn: store.write_fn(lambda inner: None))


def test_a_closed_sqlite_store_refuses_writes(data_dir, database_url):
    store = Store.open(database_url, data_dir)
    store.close()
    if store.dialect is not SQLITE:
        pytest.skip("a PostgreSQL engine reconnects")
    with pytest.raises(CommError, match="closed"):
        store.write_fn(lambda conn: None)


def test_migrations_reach_the_last_step_with_the_step_index(store):
    with store.read() as conn:
        assert current_version(conn) == len(STEPS) == 10
        indexes = {ix["name"] for ix in inspect(conn).get_indexes("history")}
        assert inspect(conn).has_table("history_segments")
    assert "ix_history_step" in indexes
    assert store.dialect in (SQLITE, POSTGRES)


def test_sqlalchemy_sqlite_compiler_is_not_patched():
    assert "get_from_hint_text" not in vars(SQLiteCompiler)
