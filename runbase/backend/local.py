"""The backend over a store in this process.

Every public method raises only ``RunbaseError``s: the store raises ``InvalidInput``,
``NotFound``, ``Conflict``; anything else (a database error, an ``OSError``) becomes a
``CommError`` holding the original, in one place (``_runbase_errors``).
"""

from __future__ import annotations

import functools
import logging
import time
import uuid
from collections.abc import Callable, Generator, Iterator
from typing import Any, ParamSpec, TypeVar

from sqlalchemy import Connection
from sqlalchemy.exc import StatementError

from runbase import checks
from runbase.backend.artifacts import Artifacts
from runbase.backend.base import (
    CHUNK_SIZE,
    Backend,
    Bucket,
    Chunks,
    FileRecord,
    HistoryKeys,
    HistoryQuery,
    HistoryRow,
    KeyList,
    NewRun,
    Page,
    ProjectActivity,
    ProjectRecord,
    RunChanges,
    RunPath,
    RunQuery,
    RunRecord,
    StoredRow,
    SweepRecord,
    check_bucketing,
    check_new_run,
    check_path,
    check_run_changes,
)
from runbase.backend.dashboard import (
    KeyCache,
    check_columns,
    check_keys_request,
    project_record,
)
from runbase.errors import CommError, InvalidInput, NotFound, RunbaseError
from runbase.settings import _default_user
from runbase.store import Store, segment_stream
from runbase.store import curves as curve_store
from runbase.store import files as file_store
from runbase.store import history as history_store
from runbase.store import overview as overview_store
from runbase.store import projects as project_store
from runbase.store import runs as run_store
from runbase.store import segments as segment_store
from runbase.store import sweeps as sweep_store
from runbase.store.schema import STREAMS
from runbase.store.segments import SEGMENT_ROWS

P = ParamSpec("P")
T = TypeVar("T")
RENAMED = {"metadata": "run_metadata"}
log = logging.getLogger("runbase")
PAGES_AT_ONCE = 10  # history pages a scan reads in one transaction


class LocalBackend(Backend):
    """Calls the store directly. Runs whose heartbeat is older than ``stale_after`` seconds
    read as crashed. The local user owns every run: records are never ``read_only``."""

    def __init__(
        self,
        store: Store,
        entity: str | None = None,
        stale_after: float = 60.0,
        compact_rows: int = 100_000,
    ) -> None:
        self.store = store
        self.entity = entity or _default_user()
        self.stale_after = stale_after
        self.compact_rows = compact_rows
        self._pks: dict[RunPath, int] = {}
        self._keys = KeyCache()

    def default_entity(self) -> str:
        return self.entity

    def _pk(self, path: RunPath) -> int:
        pk = self._pks.get(path)
        if pk is None:
            check_path(path)
            with self.store.read() as conn:
                pk = run_store.run_pk(conn, *path)
            self._pks[path] = pk
        return pk

    def _stale_before(self) -> float:
        return time.time() - self.stale_after

    # runs
    def create_run(self, path: RunPath, new: NewRun) -> RunRecord:
        check_path(path)
        check_new_run(new)
        values = {
            "display_name": new.display_name,
            "config": new.config,
            "tags": list(new.tags),
            "notes": new.notes,
            "group": new.group,
            "job_type": new.job_type,
            "sweep": new.sweep,
            "username": new.username or self.entity,
            "run_metadata": new.metadata,
        }
        resume = "allow" if new.resume == "auto" else new.resume
        return _run_record(run_store.create_run(self.store, *path, values, resume))

    def get_run(self, path: RunPath) -> RunRecord:
        check_path(path)
        return _run_record(run_store.get_run(self.store, *path, self._stale_before()))

    def update_run(self, path: RunPath, changes: RunChanges) -> RunRecord:
        check_path(path)
        check_run_changes(changes)
        renamed = {RENAMED.get(k, k): v for k, v in changes.values().items()}
        if "tags" in renamed:
            renamed["tags"] = list(renamed["tags"])
        stored = run_store.update_run(self.store, *path, renamed, self._stale_before())
        return _run_record(stored)

    def update_config(self, path: RunPath, changes: dict[str, Any]) -> None:
        check_path(path)
        check_run_changes(RunChanges(config=changes))
        run_store.merge_document(self.store, *path, "config", changes)

    def update_summary(self, path: RunPath, changes: dict[str, Any]) -> None:
        check_path(path)
        check_run_changes(RunChanges(summary=changes))
        run_store.merge_document(self.store, *path, "summary", changes)

    def delete_run(self, path: RunPath) -> None:
        check_path(path)
        self._pks.pop(path, None)
        for key in run_store.delete_run(self.store, *path):
            try:
                self.store.blobs.delete(key)
            except Exception:  # the run is gone; bytes left behind only take space
                log.warning("could not delete the bytes of a deleted run's file", exc_info=True)

    def heartbeat(self, path: RunPath) -> None:
        check_path(path)
        run_store.heartbeat(self.store, *path)

    def finish_run(self, path: RunPath, state: str, exit_code: int | None) -> None:
        check_path(path)
        check_run_changes(RunChanges(state=state, exit_code=exit_code))
        run_store.finish_run(self.store, *path, state, exit_code)
        if self.compact_rows > 0:
            for number in STREAMS.values():
                job = functools.partial(self._compact_quietly, path, number)
                self.store.compactor.request((path, number), job, urgent=True)

    def wait_for_compaction(self, timeout: float | None = None) -> bool:
        """Wait until the compactions asked for so far are done; False after ``timeout``."""
        return self.store.compactor.wait(timeout)

    def compact(self, path: RunPath) -> int:
        """Move the run's hot history rows into columnar segments, a segment per transaction;
        how many moved. Safe while the run logs: rows logged meanwhile stay hot."""
        pk = self._pk(path)
        return sum(self._compact_stream(pk, number) for number in STREAMS.values())

    def hot_runs(
        self, entity: str | None = None, project: str | None = None, run_id: str | None = None
    ) -> list[RunPath]:
        """The runs with history not compacted yet (of an entity, project or run if named)."""
        with self.store.read() as conn:
            return [RunPath(*path) for path in run_store.runs_with_hot_rows(
                conn, entity, project, run_id)]  # fmt: skip

    def _compact_stream(
        self, pk: int, stream: int, stopping: Callable[[], bool] = lambda: False
    ) -> int:
        with self.store.read() as conn:
            upto = history_store.line_count(conn, pk, stream) - 1
        total = 0
        while not stopping():
            moved = self.store.write_fn(
                lambda conn: segment_store.compact_next(conn, pk, stream, upto)
            )
            total += moved
            if moved < SEGMENT_ROWS:
                break
        return total

    def _compact_quietly(self, path: RunPath, stream: int, stopping: Callable[[], bool]) -> None:
        """Compaction after a write already stored: a failure leaves the rows hot (and
        readable), and is logged rather than raised."""
        try:
            self._compact_stream(self._pk(path), stream, stopping)
        except Exception:  # noqa: BLE001
            log.exception("compacting the history of %s failed; its rows stay hot", path)

    def query_runs(self, query: RunQuery) -> Page[RunRecord]:
        checks.positive_int(query.per_page, "per_page")
        fields = None if query.columns is None else check_columns(query.columns)
        rows, cursor = run_store.query_runs(
            self.store, query.entity, query.project, query.filters, query.order,
            query.per_page, query.cursor, self._stale_before(),
        )  # fmt: skip
        records = [_run_record(row) for row in rows]
        if fields is not None:
            records = [project_record(record, fields) for record in records]
        return Page(records, cursor)

    def count_runs(self, entity: str, project: str, filters: dict[str, Any]) -> int:
        stale_before = self._stale_before()
        return run_store.count_runs(self.store, entity, project, filters, stale_before)

    # history
    def append_history(
        self, path: RunPath, stream: str, rows: list[HistoryRow], latest: dict[str, Any]
    ) -> None:
        number = history_store.stream_number(stream)
        if not rows and not latest:
            return
        pk = self._pk(path)
        dialect = self.store.dialect

        def write(conn: Connection) -> int:
            return history_store.append(conn, dialect, pk, number, rows, latest)

        hot = self.store.write_fn(write)
        compactor = self.store.compactor
        compactor.appended()
        if 0 < self.compact_rows < hot:
            job = functools.partial(self._compact_quietly, path, number)
            compactor.request((path, number), job, urgent=hot > 4 * self.compact_rows)

    def history_keys(self, path: RunPath, stream: str = "default") -> HistoryKeys:
        number = history_store.stream_number(stream)
        pk = self._pk(path)
        with self.store.read() as conn:
            keys = history_store.key_counts(conn, pk, number)
            count, last_step = history_store.extent(conn, pk, number)
        return HistoryKeys(keys=keys, last_step=last_step, line_count=count)

    def sample_history(
        self, path: RunPath, stream: str, samples: int, keys: list[str] | None
    ) -> list[str]:
        return self.sample_histories([path], stream, samples, keys)[0]

    def scan_history(self, query: HistoryQuery) -> Page[StoredRow]:
        return next(self._scan(query, pages_at_once=1))

    def scan_pages(self, query: HistoryQuery) -> Generator[Page[StoredRow], None, None]:
        """Pages read ``PAGES_AT_ONCE`` to a transaction (a page costs little else)."""
        return self._scan(query, PAGES_AT_ONCE)

    def _scan(
        self, query: HistoryQuery, pages_at_once: int
    ) -> Generator[Page[StoredRow], None, None]:
        number = history_store.stream_number(query.stream)
        checks.positive_int(query.page_size, "page_size")
        keys = checks.keys(query.keys)
        checks.optional_int(query.min_step, "min_step")
        checks.optional_int(query.max_step, "max_step")
        pk = self._pk(query.path)
        cache = self.store.segments
        bounds = None if query.cursor is None else history_store.ScanBounds.decode(query.cursor)
        more = True
        while more:
            pages: list[Page[StoredRow]] = []
            with self.store.read() as conn:
                if bounds is None:
                    bounds = history_store.scan_bounds(
                        conn, cache, pk, number, query.min_step, query.max_step
                    )
                while more and len(pages) < pages_at_once:
                    found = history_store.scan(
                        conn, self.store.dialect, cache, pk, number, bounds, keys, query.page_size
                    )
                    more = len(found.rows) == query.page_size and found.last_idx is not None
                    if more and found.last_idx is not None:
                        bounds = bounds.next(found.last_idx)
                    pages.append(Page(found.rows, bounds.encode() if more else None))
            yield from pages

    def history_segments(self, path: RunPath, stream: str = "default") -> Iterator[bytes]:
        number = history_store.stream_number(stream)
        return segment_stream.blobs(self.store.read, self._pk(path), number)

    def sample_histories(
        self, paths: list[RunPath], stream: str, samples: int, keys: list[str] | None
    ) -> list[list[str]]:
        number = history_store.stream_number(stream)
        checks.positive_int(samples, "samples")
        wanted = checks.keys(keys)
        pks = [self._pk(path) for path in paths]
        with self.store.read() as conn:
            return history_store.sample_many(
                conn, self.store.dialect, self.store.segments, pks, number, samples, wanted
            )

    def bucketed_histories(
        self, paths: list[RunPath], stream: str, key: str, x_axis: str, buckets: int,
        x_min: float | None, x_max: float | None,
    ) -> list[list[Bucket]]:  # fmt: skip
        check_bucketing(stream, key, x_axis, buckets, x_min, x_max)
        number = history_store.stream_number(stream)
        pks = [self._pk(path) for path in paths]
        with self.store.read() as conn:
            found = curve_store.bucketed_many(
                conn, self.store.dialect, self.store.segments, pks, number, key, x_axis,
                buckets, x_min, x_max,
            )  # fmt: skip
        return [[Bucket(*row) for row in rows] for rows in found]

    # files
    def put_file(self, path: RunPath, name: str, chunks: Chunks) -> FileRecord:
        pk = self._pk(path)
        record = file_store.write_blob(self.store, pk, name, chunks)
        dialect = self.store.dialect

        def write(conn: Connection) -> None:
            file_store.save_record(dialect, conn, pk, record)

        self.store.write_fn(write)
        return FileRecord(**record)

    def list_files(
        self, path: RunPath, names: list[str], per_page: int, cursor: str | None
    ) -> Page[FileRecord]:
        checks.positive_int(per_page, "per_page")
        with self.store.read() as conn:
            rows = file_store.list_page(conn, self._pk(path), names, per_page + 1, cursor)
        more = len(rows) > per_page
        rows = rows[:per_page]
        return Page([FileRecord(**row) for row in rows], rows[-1]["name"] if more else None)

    def count_files(self, path: RunPath, names: list[str]) -> int:
        with self.store.read() as conn:
            return file_store.count(conn, self._pk(path), names)

    def read_file(self, path: RunPath, name: str) -> Iterator[bytes]:
        with self.store.read() as conn:
            key = file_store.find_blob(conn, self._pk(path), name)
        return _comm_errors(file_store.read_chunks(self.store, key, CHUNK_SIZE))

    def delete_file(self, path: RunPath, name: str) -> None:
        pk = self._pk(path)
        store = self.store

        def write(conn: Connection) -> None:
            file_store.remove(store, conn, pk, name)

        store.write_fn(write)

    # projects
    def list_projects(self, entity: str, per_page: int, cursor: str | None) -> Page[ProjectRecord]:
        checks.positive_int(per_page, "per_page")
        rows = project_store.list_projects(self.store, entity, per_page + 1, cursor)
        more = len(rows) > per_page
        rows = rows[:per_page]
        return Page([ProjectRecord(**row) for row in rows], rows[-1]["name"] if more else None)

    def get_project(self, entity: str, project: str) -> ProjectRecord:
        return ProjectRecord(**project_store.get_project(self.store, entity, project))

    # the dashboard
    def entities(self) -> list[str]:
        return sorted({self.entity, *overview_store.entity_names(self.store)})

    def project_activity(self) -> list[ProjectActivity]:
        return [ProjectActivity(**row) for row in overview_store.project_activity(self.store)]

    def document_keys(
        self, entity: str, project: str, kind: str, q: str = "", limit: int = 200
    ) -> KeyList:
        kind = check_keys_request(kind, q, limit)
        stamp = overview_store.keys_stamp(self.store, entity, project)

        def load() -> set[str]:
            if kind == "metrics":
                return overview_store.metric_keys(self.store, entity, project)
            return overview_store.document_keys(self.store, entity, project, kind)

        return self._keys.search((entity, project, kind), stamp, load, q, limit)

    # sweeps
    def create_sweep(self, entity: str, project: str, config: dict[str, Any]) -> SweepRecord:
        checks.name_part(entity, "entity")
        checks.name_part(project, "project")
        if not isinstance(config, dict):
            raise InvalidInput(f"sweep config must be a dict, not {type(config).__name__}")
        sweep_id = uuid.uuid4().hex[:8]
        name = str(config.get("name") or sweep_id)
        dialect = self.store.dialect

        def write(conn: Connection) -> dict[str, Any]:
            return sweep_store.create(dialect, conn, entity, project, sweep_id, name, config)

        return SweepRecord(**self.store.write_fn(write))

    def get_sweep(self, entity: str, project: str, sweep_id: str) -> SweepRecord:
        with self.store.read() as conn:
            return SweepRecord(**sweep_store.get(conn, entity, project, sweep_id))

    def artifacts(self) -> Artifacts:
        from runbase.backend.local_artifacts import LocalArtifacts  # it imports this module

        return LocalArtifacts(self.store)

    def close(self) -> None:
        self.store.close()


def _run_record(row: dict[str, Any]) -> RunRecord:
    return RunRecord(**{**row, "tags": tuple(row["tags"])})


def _as_runbase_error(exc: Exception) -> RunbaseError:
    if isinstance(exc, RunbaseError):
        return exc
    if isinstance(exc, StatementError) and isinstance(exc.orig, RunbaseError):
        return exc.orig  # raised while binding a value (a document the database cannot hold)
    return CommError(f"{type(exc).__name__}: {exc}", exc=exc)


def _runbase_errors(method: Callable[P, T]) -> Callable[P, T]:
    """``method`` raising a ``CommError`` where it would raise anything but a
    ``RunbaseError``; a run not found (deleted, maybe by another process) is looked up again
    by the next call."""

    @functools.wraps(method)
    def call(*args: P.args, **kwargs: P.kwargs) -> T:
        try:
            return method(*args, **kwargs)
        except NotFound:
            backend, path = args[0], args[1] if len(args) > 1 else None
            if isinstance(backend, LocalBackend) and isinstance(path, RunPath):
                backend._pks.pop(path, None)  # the run may be gone
            raise
        except RunbaseError:
            raise
        except Exception as exc:
            raise _as_runbase_error(exc) from exc

    return call


def _comm_errors(chunks: Iterator[bytes]) -> Iterator[bytes]:
    try:
        yield from chunks
    except RunbaseError:
        raise
    except Exception as exc:
        raise _as_runbase_error(exc) from exc


for _name in [*Backend.__abstractmethods__, "compact"]:
    setattr(LocalBackend, _name, _runbase_errors(getattr(LocalBackend, _name)))
