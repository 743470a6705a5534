"""The backend over a store in this process."""

from __future__ import annotations

import uuid
from typing import Any

from runbase.backend.base import (
    Backend,
    FileRecord,
    HistoryKeys,
    HistoryRow,
    NewRun,
    Page,
    ProjectRecord,
    RunPath,
    RunQuery,
    RunRecord,
    SweepRecord,
    check_new_run,
    check_path,
    check_run_changes,
)
from runbase.errors import InvalidInput
from runbase.settings import _default_user
from runbase.store import Store
from runbase.store import files as file_store
from runbase.store import history as history_store
from runbase.store import projects as project_store
from runbase.store import runs as run_store
from runbase.store import sweeps as sweep_store

RENAMED = {"metadata": "run_metadata"}


class LocalBackend(Backend):
    """Calls the store directly. Runs whose heartbeat is older than ``stale_after`` seconds
    are reported as crashed."""

    def __init__(self, store: Store, entity: str | None = None, stale_after: float = 60.0) -> None:
        self.store = store
        self.entity = entity or _default_user()
        self.stale_after = stale_after
        self._pks: dict[RunPath, int] = {}

    def default_entity(self) -> str:
        return self.entity

    def _pk(self, path: RunPath) -> int:
        pk = self._pks.get(path)
        if pk is None:
            with self.store.read() as conn:
                pk = run_store.run_pk(conn, *path)
            self._pks[path] = pk
        return pk

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
        row = run_store.create_run(self.store, *path, values, resume)
        return RunRecord(**row)

    def get_run(self, path: RunPath) -> RunRecord:
        return RunRecord(**run_store.get_run(self.store, *path, self.stale_after))

    def update_run(self, path: RunPath, **changes: Any) -> RunRecord:
        check_run_changes(changes)
        renamed = {RENAMED.get(k, k): v for k, v in changes.items()}
        return RunRecord(**run_store.update_run(self.store, *path, renamed))

    def update_config(self, path: RunPath, changes: dict[str, Any]) -> None:
        check_run_changes({"config": changes})
        run_store.merge_document(self.store, *path, "config", changes)

    def update_summary(self, path: RunPath, changes: dict[str, Any]) -> None:
        check_run_changes({"summary": changes})
        run_store.merge_document(self.store, *path, "summary", changes)

    def heartbeat(self, path: RunPath) -> None:
        run_store.heartbeat(self.store, *path)

    def finish_run(self, path: RunPath, state: str, exit_code: int | None) -> None:
        run_store.finish_run(self.store, *path, state, exit_code)

    def query_runs(self, query: RunQuery) -> Page[RunRecord]:
        _check_per_page(query.per_page)
        rows, cursor = run_store.query_runs(
            self.store, query.entity, query.project, query.filters, query.order,
            query.per_page, query.cursor, self.stale_after,
        )  # fmt: skip
        return Page([RunRecord(**row) for row in rows], cursor)

    def count_runs(self, entity: str, project: str, filters: dict[str, Any]) -> int:
        return run_store.count_runs(self.store, entity, project, filters, self.stale_after)

    # history
    def append_history(
        self, path: RunPath, stream: str, rows: list[HistoryRow], latest: dict[str, Any]
    ) -> None:
        number = history_store.stream_number(stream)
        if not rows and not latest:
            return
        pk = self._pk(path)
        with self.store.write() as conn:
            history_store.append(conn, pk, number, rows, latest)

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
        number = history_store.stream_number(stream)
        _check_samples(samples)
        with self.store.read() as conn:
            return history_store.sample(conn, self._pk(path), number, samples, keys)

    def scan_history(
        self,
        path: RunPath,
        stream: str,
        keys: list[str] | None,
        after_idx: int,
        limit: int,
        min_step: int | None = None,
        max_step: int | None = None,
    ) -> list[tuple[int, str]]:
        number = history_store.stream_number(stream)
        _check_per_page(limit, "page_size")
        with self.store.read() as conn:
            return history_store.scan(
                conn, self._pk(path), number, keys, after_idx, limit, min_step, max_step
            )

    def sample_histories(
        self, paths: list[RunPath], stream: str, samples: int, keys: list[str] | None
    ) -> dict[RunPath, list[str]]:
        number = history_store.stream_number(stream)
        _check_samples(samples)
        pks = {path: self._pk(path) for path in paths}
        with self.store.read() as conn:
            found = history_store.sample_many(conn, list(pks.values()), number, samples, keys)
        return {path: found[pk] for path, pk in pks.items()}

    # files
    def put_file(self, path: RunPath, name: str, data: bytes) -> FileRecord:
        pk = self._pk(path)
        with self.store.write() as conn:
            return FileRecord(**file_store.put(self.store, conn, pk, name, data))

    def list_files(
        self, path: RunPath, names: list[str], per_page: int, cursor: str | None
    ) -> Page[FileRecord]:
        _check_per_page(per_page)
        with self.store.read() as conn:
            rows = file_store.list_page(conn, self._pk(path), names, per_page + 1, cursor)
        more = len(rows) > per_page
        rows = rows[:per_page]
        return Page([FileRecord(**row) for row in rows], rows[-1]["name"] if more else None)

    def count_files(self, path: RunPath, names: list[str]) -> int:
        with self.store.read() as conn:
            return file_store.count(conn, self._pk(path), names)

    def read_file(self, path: RunPath, name: str) -> bytes:
        with self.store.read() as conn:
            return file_store.read(self.store, conn, self._pk(path), name)

    def delete_file(self, path: RunPath, name: str) -> None:
        with self.store.write() as conn:
            file_store.remove(self.store, conn, self._pk(path), name)

    # projects
    def list_projects(self, entity: str, per_page: int, cursor: str | None) -> Page[ProjectRecord]:
        _check_per_page(per_page)
        rows = project_store.list_projects(self.store, entity, per_page + 1, cursor)
        more = len(rows) > per_page
        rows = rows[:per_page]
        return Page([ProjectRecord(**row) for row in rows], rows[-1]["name"] if more else None)

    def get_project(self, entity: str, project: str) -> ProjectRecord:
        return ProjectRecord(**project_store.get_project(self.store, entity, project))

    # sweeps
    def create_sweep(self, entity: str, project: str, config: dict[str, Any]) -> SweepRecord:
        if not isinstance(config, dict):
            raise InvalidInput(f"sweep config must be a dict, not {type(config).__name__}")
        sweep_id = uuid.uuid4().hex[:8]
        name = str(config.get("name") or sweep_id)
        with self.store.write() as conn:
            return SweepRecord(**sweep_store.create(conn, entity, project, sweep_id, name, config))

    def get_sweep(self, entity: str, project: str, sweep_id: str) -> SweepRecord:
        with self.store.read() as conn:
            return SweepRecord(**sweep_store.get(conn, entity, project, sweep_id))

    def close(self) -> None:
        self.store.close()


def _check_per_page(value: int, name: str = "per_page") -> None:
    if not isinstance(value, int) or isinstance(value, bool) or value < 1:
        raise InvalidInput(f"{name} must be a positive integer, not {value!r}")


def _check_samples(value: int) -> None:
    if not isinstance(value, int) or isinstance(value, bool) or value < 1:
        raise InvalidInput(f"samples must be a positive integer, not {value!r}")
