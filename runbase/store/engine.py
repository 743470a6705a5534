"""The database: an engine set up by its ``Dialect``, reads on pooled connections, and writes
through ``Store.write_fn``.

On SQLite every write of the process goes through one writer: one connection, taken in turn
(datasette's ``execute_write_fn`` serialises writes the same way, through a thread). Each
function runs in its own ``BEGIN IMMEDIATE`` transaction in the caller's thread, so threads of
a process wait on an in-process lock, never on SQLite's file lock, and no write pays two
thread hand-offs (a writer thread made logging 40% slower). On PostgreSQL the function runs on
a pooled connection; row locks order concurrent writers.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TypeVar

from sqlalchemy import Connection, Engine, text

from runbase.errors import CommError, RunbaseError
from runbase.store.blobs import BlobStore, open_blobs
from runbase.store.dialect import Dialect, dialect_for, sqlite_module
from runbase.store.migrations import migrate
from runbase.store.segments import Compactor, SegmentCache

__all__ = ["Store", "sqlite_module"]

T = TypeVar("T")
STATISTICS_EVERY = 10.0  # seconds between reads of the planner statistics
ANALYZE_FROM = 1000  # runs below which the planner needs no statistics


class Store:
    """One database. ``write_fn(fn)`` runs ``fn(conn)`` in a write transaction; ``read()``
    gives a read transaction; ``blobs`` holds the bytes of files; ``segments`` caches decoded
    history segments; ``compactor`` compacts history in the background."""

    def __init__(self, engine: Engine, dialect: Dialect, blobs: BlobStore) -> None:
        self.engine = engine
        self.dialect = dialect
        self.blobs = blobs
        self.segments = SegmentCache()
        self.compactor = Compactor()
        self.scan_runs = False
        self._statistics_read = -STATISTICS_EVERY
        self._writer = _SingleWriter(engine) if dialect.single_writer else None
        # Before the store is shared: in this thread, which spares a process that only
        # reads the writer thread (a second thread makes every GIL hand-off dearer).
        try:
            with engine.connect().execution_options(write=True) as conn, conn.begin():
                migrate(conn)
                self.refresh_statistics(conn)
        except BaseException:
            engine.dispose()
            raise

    @classmethod
    def open(cls, database_url: str | None, data_dir: Path, files: str | None = None) -> Store:
        """Open (and create or migrate) the database; SQLite under ``data_dir`` by default.
        File bytes go where ``files`` says (``s3://bucket/prefix``), else under ``data_dir``."""
        data_dir.mkdir(parents=True, exist_ok=True)
        url = database_url or f"sqlite:///{data_dir / 'runbase.db'}"
        dialect = dialect_for(url)
        blobs = open_blobs(files, data_dir / "files")
        return cls(dialect.create_engine(url), dialect, blobs)

    def write_fn(self, fn: Callable[[Connection], T]) -> T:
        """``fn(conn)`` inside one write transaction; its result, or its exception raised
        here."""
        if self._writer is not None:
            return self._writer.run(fn)
        with self.engine.connect() as conn, conn.begin():
            return fn(conn)

    @contextmanager
    def read(self) -> Iterator[Connection]:
        with self.engine.connect() as conn, conn.begin():
            yield conn

    def refresh_statistics(self, conn: Connection) -> None:
        """On the write path: re-analyze the runs table once its size has changed by half
        since it was last analyzed, and update ``scan_runs``."""
        stats = self.dialect.runs_statistics(conn)
        if stats is None:
            return
        rows = conn.execute(text("SELECT max(storage_id) FROM runs")).scalar() or 0
        analyzed = stats[0]
        if rows >= ANALYZE_FROM and not analyzed / 1.5 <= rows <= analyzed * 1.5:
            self.dialect.analyze_runs(conn)
            stats = self.dialect.runs_statistics(conn)
        self._use_statistics(stats)

    def read_statistics(self) -> None:
        """Keep ``scan_runs`` current with statistics another process may have refreshed;
        reads them at most every few seconds."""
        now = time.monotonic()
        if now - self._statistics_read < STATISTICS_EVERY:
            return
        with self.read() as conn:
            self._use_statistics(self.dialect.runs_statistics(conn))

    def _use_statistics(self, stats: tuple[int, int] | None) -> None:
        # Whether a project holds so large a share of all runs that reading the runs table
        # straight through beats the project index (a row lookup per run, about twice the
        # time per run).
        self._statistics_read = time.monotonic()
        if stats is not None:
            analyzed, per_project = stats
            self.scan_runs = analyzed >= ANALYZE_FROM and per_project * 4 > analyzed

    def close(self) -> None:
        self.compactor.stop()  # before the connections go: a compaction finishes its segment
        if self._writer is not None:
            self._writer.close()
        self.engine.dispose()


class _SingleWriter:
    """The one write connection of a store, used by one thread at a time."""

    def __init__(self, engine: Engine) -> None:
        self._engine = engine
        self._lock = threading.Lock()
        self._owner: int | None = None
        self._conn: Connection | None = None
        self._closed = False

    def run(self, fn: Callable[[Connection], T]) -> T:
        if self._owner == threading.get_ident():
            raise RuntimeError("write_fn called from inside a write function")
        with self._lock:
            if self._closed:
                raise CommError("the store is closed")
            self._owner = threading.get_ident()
            try:
                conn = self._conn
                if conn is None or conn.closed or conn.invalidated:
                    conn = self._conn = self._engine.connect().execution_options(write=True)
                try:
                    with conn.begin():
                        return fn(conn)
                except RunbaseError:
                    raise
                except BaseException:
                    conn.close()  # a failed statement may leave it unusable
                    self._conn = None
                    raise
            finally:
                self._owner = None

    def close(self) -> None:
        with self._lock:
            self._closed = True
            if self._conn is not None:
                self._conn.close()
                self._conn = None
