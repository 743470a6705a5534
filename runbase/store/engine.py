"""The database connection: a SQLAlchemy engine set up for WAL SQLite or PostgreSQL."""

from __future__ import annotations

import sqlite3
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from sqlalchemy import Connection, Engine, create_engine, event

from runbase.errors import CommError
from runbase.store.migrations import migrate

MIN_SQLITE = (3, 45, 0)
STATISTICS_EVERY = 10.0  # seconds between checks of the planner statistics


def sqlite_module():
    """The newest SQLite binding at hand: pysqlite3 when installed, else the stdlib's."""
    try:
        import pysqlite3.dbapi2 as module  # type: ignore[import-not-found]
    except ImportError:
        module = sqlite3
    if module.sqlite_version_info < MIN_SQLITE:
        raise CommError(
            f"runbase needs SQLite >= {'.'.join(map(str, MIN_SQLITE))} for JSONB; "
            f"this Python has {module.sqlite_version}: pip install pysqlite3-binary"
        )
    return module


class Store:
    """One database. ``write()`` gives a transaction that holds the write lock from its start."""

    def __init__(self, engine: Engine, files_dir: Path) -> None:
        self.engine = engine
        self.files_dir = files_dir
        self.dialect = engine.dialect.name
        self._statistics_checked = -STATISTICS_EVERY
        self.scan_runs = False
        with self.write() as conn:
            migrate(conn)

    @classmethod
    def open(cls, database_url: str | None, data_dir: Path) -> Store:
        """Open (and create or migrate) the database; SQLite under ``data_dir`` by default."""
        data_dir.mkdir(parents=True, exist_ok=True)
        url = database_url or f"sqlite:///{data_dir / 'runbase.db'}"
        if url.startswith("sqlite"):
            engine = _sqlite_engine(url)
        else:
            engine = create_engine(url, pool_pre_ping=True)
        return cls(engine, data_dir / "files")

    @contextmanager
    def write(self) -> Iterator[Connection]:
        with self.engine.connect().execution_options(write=True) as conn, conn.begin():
            yield conn

    @contextmanager
    def read(self) -> Iterator[Connection]:
        with self.engine.connect() as conn, conn.begin():
            yield conn

    def refresh_statistics(self) -> None:
        """Keep ``scan_runs`` current: whether a project holds so large a share of all runs
        that reading the runs table straight through beats the project index (which costs a
        row lookup per run, about twice the time per run). The runs table is re-analyzed
        once its size has changed by half; this is checked at most every few seconds."""
        now = time.monotonic()
        if self.dialect != "sqlite" or now - self._statistics_checked < STATISTICS_EVERY:
            return
        self._statistics_checked = now
        with self.read() as conn:
            rows = conn.exec_driver_sql("SELECT max(storage_id) FROM runs").scalar() or 0
            analyzed, per_project = _runs_statistics(conn)
        if rows >= 1000 and not analyzed / 1.5 <= rows <= analyzed * 1.5:
            with self.write() as conn:
                conn.exec_driver_sql("ANALYZE runs")
                analyzed, per_project = _runs_statistics(conn)
        self.scan_runs = analyzed >= 1000 and per_project * 4 > analyzed

    def close(self) -> None:
        self.engine.dispose()


def _runs_statistics(conn: Connection) -> tuple[int, int]:
    """(runs when last analyzed, average runs per project) from SQLite's statistics."""
    has_stats = conn.exec_driver_sql(
        "SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = 'sqlite_stat1'"
    ).scalar()
    stat = (
        has_stats
        and conn.exec_driver_sql(
            "SELECT stat FROM sqlite_stat1 WHERE tbl = 'runs' AND idx = 'ix_runs_project_created'"
        ).scalar()
    )
    if not stat:
        return 0, 0
    rows, per_project = (int(part) for part in stat.split()[:2])
    return rows, per_project


def _sqlite_engine(url: str) -> Engine:
    engine = create_engine(
        url,
        module=sqlite_module(),
        connect_args={"timeout": 60, "check_same_thread": False},
        pool_size=8,
        max_overflow=16,
    )

    @event.listens_for(engine, "connect")
    def _on_connect(dbapi_conn, _record):
        dbapi_conn.isolation_level = None  # we issue BEGIN ourselves
        cursor = dbapi_conn.cursor()
        cursor.execute("PRAGMA journal_mode=WAL")
        cursor.execute("PRAGMA synchronous=NORMAL")
        cursor.execute("PRAGMA foreign_keys=ON")
        cursor.execute("PRAGMA busy_timeout=60000")
        cursor.close()

    @event.listens_for(engine, "begin")
    def _on_begin(conn):
        immediate = conn.get_execution_options().get("write")
        conn.exec_driver_sql("BEGIN IMMEDIATE" if immediate else "BEGIN")

    return engine
