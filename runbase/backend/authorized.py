"""A backend seen by one principal: each call is checked, then handed to the backend below.

The rules, all in ``Access``: a principal reads the entities it may see (its own user, its
teams; an admin every entity) and writes them unless its key is read-only. Another entity's
project, run or sweep answers ``NotFound`` (names do not leak); a write with a read-only key
answers ``Forbidden``. Runs the principal may not change come back ``read_only``.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

from runbase.backend.accounts import Principal
from runbase.backend.artifacts import Artifacts
from runbase.backend.base import (
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
)
from runbase.errors import Forbidden, NotFound


@dataclass(frozen=True)
class Access:
    """What a principal may do with an entity's projects, runs and sweeps."""

    principal: Principal

    def can_read(self, entity: str) -> bool:
        who = self.principal
        return who.admin or entity == who.user or entity in who.teams

    def can_write(self, entity: str) -> bool:
        return self.can_read(entity) and not self.principal.read_only

    def read(self, entity: str, what: str) -> None:
        """``NotFound`` (as if ``what`` did not exist) unless the principal may read it."""
        if not isinstance(entity, str) or not self.can_read(entity):
            raise NotFound(f"{what} not found")

    def write(self, entity: str, what: str) -> None:
        """``NotFound`` unless the principal may read it, ``Forbidden`` unless it may write."""
        self.read(entity, what)
        if self.principal.read_only:
            raise Forbidden("this API key is read-only")

    def run(self, record: RunRecord) -> RunRecord:
        """The record as this principal sees it: ``read_only`` unless it may change it."""
        if self.can_write(record.entity):
            return record
        return dataclasses.replace(record, read_only=True)


def _run(path: RunPath) -> str:
    return f"run {'/'.join(map(str, path))}"


class AuthorizedBackend(Backend):
    """``backend`` as ``principal`` may use it. Closing it leaves ``backend`` open."""

    def __init__(self, backend: Backend, principal: Principal) -> None:
        self.backend = backend
        self.principal = principal
        self.access = Access(principal)

    def default_entity(self) -> str:
        return self.principal.user

    # runs
    def create_run(self, path: RunPath, new: NewRun) -> RunRecord:
        self.access.write(path.entity, _run(path))
        if not self.principal.admin:
            new = dataclasses.replace(new, username=self.principal.user)
        return self.access.run(self.backend.create_run(path, new))

    def get_run(self, path: RunPath) -> RunRecord:
        self.access.read(path.entity, _run(path))
        return self.access.run(self.backend.get_run(path))

    def update_run(self, path: RunPath, changes: RunChanges) -> RunRecord:
        self.access.write(path.entity, _run(path))
        return self.access.run(self.backend.update_run(path, changes))

    def delete_run(self, path: RunPath) -> None:
        self.access.write(path.entity, _run(path))
        self.backend.delete_run(path)

    def update_config(self, path: RunPath, changes: dict[str, Any]) -> None:
        self.access.write(path.entity, _run(path))
        self.backend.update_config(path, changes)

    def update_summary(self, path: RunPath, changes: dict[str, Any]) -> None:
        self.access.write(path.entity, _run(path))
        self.backend.update_summary(path, changes)

    def heartbeat(self, path: RunPath) -> None:
        self.access.write(path.entity, _run(path))
        self.backend.heartbeat(path)

    def finish_run(self, path: RunPath, state: str, exit_code: int | None) -> None:
        self.access.write(path.entity, _run(path))
        self.backend.finish_run(path, state, exit_code)

    def query_runs(self, query: RunQuery) -> Page[RunRecord]:
        self.access.read(query.entity, f"project {query.entity}/{query.project}")
        page = self.backend.query_runs(query)
        return Page([self.access.run(record) for record in page.items], page.next_cursor)

    def count_runs(self, entity: str, project: str, filters: dict[str, Any]) -> int:
        self.access.read(entity, f"project {entity}/{project}")
        return self.backend.count_runs(entity, project, filters)

    # history
    def append_history(
        self, path: RunPath, stream: str, rows: list[HistoryRow], latest: dict[str, Any]
    ) -> None:
        self.access.write(path.entity, _run(path))
        self.backend.append_history(path, stream, rows, latest)

    def history_keys(self, path: RunPath, stream: str = "default") -> HistoryKeys:
        self.access.read(path.entity, _run(path))
        return self.backend.history_keys(path, stream)

    def sample_history(
        self, path: RunPath, stream: str, samples: int, keys: list[str] | None
    ) -> list[str]:
        self.access.read(path.entity, _run(path))
        return self.backend.sample_history(path, stream, samples, keys)

    def scan_history(self, query: HistoryQuery) -> Page[StoredRow]:
        self.access.read(query.path.entity, _run(query.path))
        return self.backend.scan_history(query)

    def history_segments(self, path: RunPath, stream: str = "default") -> Iterator[bytes]:
        self.access.read(path.entity, _run(path))
        return self.backend.history_segments(path, stream)

    def sample_histories(
        self, paths: list[RunPath], stream: str, samples: int, keys: list[str] | None
    ) -> list[list[str]]:
        for path in paths:
            self.access.read(path.entity, _run(path))
        return self.backend.sample_histories(paths, stream, samples, keys)

    def bucketed_histories(
        self, paths: list[RunPath], stream: str, key: str, x_axis: str, buckets: int,
        x_min: float | None, x_max: float | None,
    ) -> list[list[Bucket]]:  # fmt: skip
        for path in paths:
            self.access.read(path.entity, _run(path))
        return self.backend.bucketed_histories(paths, stream, key, x_axis, buckets, x_min, x_max)

    # files
    def put_file(self, path: RunPath, name: str, chunks: Chunks) -> FileRecord:
        self.access.write(path.entity, _run(path))
        return self.backend.put_file(path, name, chunks)

    def list_files(
        self, path: RunPath, names: list[str], per_page: int, cursor: str | None
    ) -> Page[FileRecord]:
        self.access.read(path.entity, _run(path))
        return self.backend.list_files(path, names, per_page, cursor)

    def count_files(self, path: RunPath, names: list[str]) -> int:
        self.access.read(path.entity, _run(path))
        return self.backend.count_files(path, names)

    def read_file(self, path: RunPath, name: str) -> Iterator[bytes]:
        self.access.read(path.entity, _run(path))
        return self.backend.read_file(path, name)

    def delete_file(self, path: RunPath, name: str) -> None:
        self.access.write(path.entity, _run(path))
        self.backend.delete_file(path, name)

    # projects
    def list_projects(self, entity: str, per_page: int, cursor: str | None) -> Page[ProjectRecord]:
        self.access.read(entity, f"entity {entity}")
        return self.backend.list_projects(entity, per_page, cursor)

    def get_project(self, entity: str, project: str) -> ProjectRecord:
        self.access.read(entity, f"project {entity}/{project}")
        return self.backend.get_project(entity, project)

    # the dashboard
    def entities(self) -> list[str]:
        if self.principal.admin:
            return self.backend.entities()
        return sorted({self.principal.user, *self.principal.teams})

    def project_activity(self) -> list[ProjectActivity]:
        found = self.backend.project_activity()
        return [project for project in found if self.access.can_read(project.entity)]

    def document_keys(
        self, entity: str, project: str, kind: str, q: str = "", limit: int = 200
    ) -> KeyList:
        self.access.read(entity, f"project {entity}/{project}")
        return self.backend.document_keys(entity, project, kind, q, limit)

    # sweeps
    def create_sweep(self, entity: str, project: str, config: dict[str, Any]) -> SweepRecord:
        self.access.write(entity, f"project {entity}/{project}")
        return self.backend.create_sweep(entity, project, config)

    def get_sweep(self, entity: str, project: str, sweep_id: str) -> SweepRecord:
        self.access.read(entity, f"sweep {entity}/{project}/{sweep_id}")
        return self.backend.get_sweep(entity, project, sweep_id)

    def artifacts(self) -> Artifacts:
        from runbase.backend.authorized_artifacts import AuthorizedArtifacts  # imports Access

        return AuthorizedArtifacts(self.backend.artifacts(), self.access)

    def close(self) -> None:
        """The backend below is shared: it stays open."""
