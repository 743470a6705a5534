"""The database: an engine set up by its ``Dialect``, reads on pooled connections, and writes
through ``Store.write_fn``.

On SQLite every write of the process goes through one writer thread (datasette's
``execute_write_fn``): it runs each function in its own ``BEGIN IMMEDIATE`` transaction, so
request threads never queue on the file lock, and hands back the result or the exception. On
PostgreSQL the function runs in the caller's thread; row locks order concurrent writers.
"""

from __future__ import annotations

import queue
import threading
import time
from collections.abc import Callable, Iterator
from concurrent.futures import Future
from contextlib import contextmanager
from pathlib import Path
from typing import Any, TypeVar

from sqlalchemy import Connection, Engine, text

from runbase.errors import CommError, RunbaseError
from runbase.store.dialect import Dialect, dialect_for, sqlite_module
from runbase.store.migrations import migrate

__all__ = ["Store", "sqlite_module"]

T = TypeVar("T")
STATISTICS_EVERY = 10.0  # seconds between reads of the planner statistics
ANALYZE_FROM = 1000  # runs below which the planner needs no statistics


class Store:
    """One database. ``write_fn(fn)`` runs ``fn(conn)`` in a write transaction; ``read()``
    gives a read transaction."""

    def __init__(self, engine: Engine, dialect: Dialect, files_dir: Path) -> None:
        self.engine = engine
        self.dialect = dialect
        self.files_dir = files_dir
        self.scan_runs = False
        self._statistics_read = -STATISTICS_EVERY
        self._writer: _WriterThread | None = None
        self._writer_lock = threading.Lock()
        self._closed = False
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
    def open(cls, database_url: str | None, data_dir: Path) -> Store:
        """Open (and create or migrate) the database; SQLite under ``data_dir`` by default."""
        data_dir.mkdir(parents=True, exist_ok=True)
        url = database_url or f"sqlite:///{data_dir / 'runbase.db'}"
        dialect = dialect_for(url)
        return cls(dialect.create_engine(url), dialect, data_dir / "files")

    def write_fn(self, fn: Callable[[Connection], T]) -> T:
        """``fn(conn)`` inside one write transaction; its result, or its exception raised
        here."""
        if self.dialect.single_writer:
            return self._writer_thread().run(fn)
        with self.engine.connect() as conn, conn.begin():
            return fn(conn)

    def _writer_thread(self) -> _WriterThread:
        writer = self._writer
        if writer is None:
            with self._writer_lock:
                if self._closed:
                    raise CommError("the store is closed")
                writer = self._writer = self._writer or _WriterThread(self.engine)
        return writer

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
        with self._writer_lock:
            self._closed = True
            writer = self._writer
        if writer is not None:
            writer.close()
        self.engine.dispose()


_STOP = object()


class _WriterThread:
    """One thread holding the write connection, started on the first write; functions
    arrive on a queue."""

    def __init__(self, engine: Engine) -> None:
        self._engine = engine
        self._jobs: queue.SimpleQueue[Any] = queue.SimpleQueue()
        self._thread = threading.Thread(target=self._loop, name="runbase-sqlite-writer")
        self._thread.daemon = True
        self._closed = False
        self._thread.start()

    def run(self, fn: Callable[[Connection], T]) -> T:
        if threading.current_thread() is self._thread:
            raise RuntimeError("write_fn called from inside a write function")
        if self._closed:
            raise CommError("the store is closed")
        done: Future[T] = Future()
        self._jobs.put((fn, done))
        return done.result()

    def close(self) -> None:
        if not self._closed:
            self._closed = True
            self._jobs.put(_STOP)
            self._thread.join()

    def _loop(self) -> None:
        conn: Connection | None = None
        try:
            while (job := self._jobs.get()) is not _STOP:
                fn, done = job
                if not done.set_running_or_notify_cancel():
                    continue
                try:
                    if conn is None or conn.closed or conn.invalidated:
                        conn = self._engine.connect().execution_options(write=True)
                    with conn.begin():
                        result = fn(conn)
                except BaseException as exc:
                    done.set_exception(exc)
                    if not isinstance(exc, RunbaseError) and conn is not None:
                        conn.close()  # a failed statement may leave it unusable
                else:
                    done.set_result(result)
        finally:
            if conn is not None:
                conn.close()
            self._drain()

    def _drain(self) -> None:
        while True:
            try:
                job = self._jobs.get_nowait()
            except queue.Empty:
                return
            if job is not _STOP:
                job[1].set_exception(CommError("the store is closed"))
