"""Fixtures for the filter and order tests: runs in a real store, queried the way the run
queries do (``runs JOIN projects JOIN entities``).

Every table runs on SQLite, and on PostgreSQL too when ``RUNBASE_TEST_POSTGRES`` holds a
database URL (the tests drop and recreate runbase's tables there).
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterable, Iterator
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import Connection, create_engine, select

from runbase.fields import parse_order
from runbase.store import Store, schema
from runbase.store.filters import compile_filters
from runbase.store.order import after, order_by, sort_value

POSTGRES_URL = os.environ.get("RUNBASE_TEST_POSTGRES")
DIALECTS = [
    "sqlite",
    pytest.param(
        "postgresql",
        marks=pytest.mark.skipif(not POSTGRES_URL, reason="RUNBASE_TEST_POSTGRES is not set"),
    ),
]
ENTITY = "team"


def full_run(fields: dict[str, Any]) -> dict[str, Any]:
    """A ``runs`` row from ``fields`` (``run_id`` at least), with defaults for the rest."""
    row = {
        "display_name": fields["run_id"],
        "state": "finished",
        "config": {},
        "summary": {},
        "tags": [],
        "username": "alice",
        "group": None,
        "job_type": None,
        "sweep": None,
        "created_at": 0.0,
    }
    row.update(fields)
    row.setdefault("heartbeat_at", row["created_at"] + 3600)
    row.setdefault("updated_at", row["heartbeat_at"])
    row.setdefault("system_metrics", {})
    row.setdefault("run_metadata", {})
    return row


class RunTable:
    """Runs stored once, and the queries a test asks of them."""

    def __init__(self, store: Store) -> None:
        self.store = store
        self.dialect = store.dialect

    def ids(self, filters: dict) -> set[str]:
        """The ids of the runs that match ``filters``."""
        stmt = _select(schema.runs.c.run_id).where(compile_filters(filters, self.dialect))
        with self.store.read() as conn:
            return set(conn.execute(stmt).scalars())

    def ordered(self, order: str, filters: dict | None = None) -> list[str]:
        """All matching run ids in ``order``, in one query."""
        sort = parse_order(order)
        stmt = (
            _select(schema.runs.c.run_id)
            .where(compile_filters(filters or {}, self.dialect))
            .order_by(*order_by(sort, self.dialect))
        )
        with self.store.read() as conn:
            return list(conn.execute(stmt).scalars())

    def pages(self, order: str, size: int, encode: Callable[[Any], Any]) -> list[list[str]]:
        """The run ids page by page, each page resuming after the last row of the one before
        through ``after``, with the cursor value passed through ``encode``."""
        sort = parse_order(order)
        columns = (schema.runs.c.run_id, schema.runs.c.storage_id, sort_value(sort, self.dialect))
        base = _select(*columns).order_by(*order_by(sort, self.dialect)).limit(size)
        pages: list[list[str]] = []
        stmt = base
        while True:
            with self.store.read() as conn:
                rows = conn.execute(stmt).all()
            if not rows:
                return pages
            pages.append([row.run_id for row in rows])
            last = rows[-1]
            cursor = encode(last.sort_value)
            stmt = base.where(after(sort, self.dialect, cursor, last.storage_id))

    def count(self) -> int:
        with self.store.read() as conn:
            return len(conn.execute(select(schema.runs.c.storage_id)).all())


def _select(*columns: Any):
    joined = schema.runs.join(schema.projects).join(schema.entities)
    return select(*columns).select_from(joined)


def open_store(dialect: str, path: Path) -> Store:
    """A new, empty store on ``dialect``."""
    if dialect == "sqlite":
        return Store.open(None, path)
    assert POSTGRES_URL is not None
    engine = create_engine(POSTGRES_URL)
    schema.metadata.drop_all(engine)
    engine.dispose()
    return Store.open(POSTGRES_URL, path)


def store_runs(store: Store, runs: Iterable[dict[str, Any]]) -> None:
    def write(conn: Connection) -> None:
        conn.execute(schema.entities.insert().values(id=1, name=ENTITY, created_at=0.0))
        conn.execute(schema.projects.insert().values(id=1, entity_id=1, name="p", created_at=0.0))
        conn.execute(schema.runs.insert(), [{"project_id": 1, **full_run(run)} for run in runs])

    store.write_fn(write)


@pytest.fixture(scope="module", params=DIALECTS)
def dialect(request) -> str:
    return request.param


@pytest.fixture(scope="module")
def run_table(dialect, tmp_path_factory) -> Iterator[Callable[[list[dict[str, Any]]], RunTable]]:
    """Makes a ``RunTable`` of runs given as dicts of ``runs`` columns (``run_id`` at least;
    the rest defaults); one per module on PostgreSQL."""
    stores: list[Store] = []

    def make(runs: list[dict[str, Any]]) -> RunTable:
        store = open_store(dialect, tmp_path_factory.mktemp("runs"))
        stores.append(store)
        store_runs(store, runs)
        return RunTable(store)

    yield make
    for store in stores:
        store.close()
