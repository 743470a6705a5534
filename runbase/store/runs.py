"""Runs: create or resume, read, update, query a page, count.

A run's state is derived when read: a running run whose heartbeat is older than
``stale_before`` reads ``crashed`` (``filters.run_state``), in records and in filters and
orders alike. Every read-modify-write of a run holds the run's row lock.
"""

from __future__ import annotations

import base64
import time
from typing import Any, TypeVar

import orjson
from sqlalchemy import (
    Column,
    ColumnElement,
    Connection,
    Select,
    and_,
    delete,
    func,
    select,
    update,
)

from runbase.errors import Conflict, InvalidFilter, NotFound
from runbase.fields import parse_order
from runbase.names import display_name
from runbase.store import order as run_order
from runbase.store.engine import Store
from runbase.store.files import blob_key
from runbase.store.filters import compile_filters, run_state
from runbase.store.projects import ensure_project
from runbase.store.schema import (
    artifact_uses,
    artifacts,
    entities,
    files,
    history,
    history_segments,
    key_sets,
    projects,
    runs,
)

S = TypeVar("S", bound=Select[Any])
Record = dict[str, Any]
# The columns of a run record; ``state`` is ``run_state``.
RUN_COLUMNS: list[ColumnElement[Any]] = [
    runs.c.storage_id,
    entities.c.name.label("entity"),
    projects.c.name.label("project"),
    runs.c.run_id,
    runs.c.display_name,
    runs.c.config,
    runs.c.summary,
    runs.c.system_metrics,
    runs.c.run_metadata.label("metadata"),
    runs.c.tags,
    runs.c.notes,
    runs.c.group,
    runs.c.job_type,
    runs.c.sweep,
    runs.c.username,
    runs.c.created_at,
    runs.c.heartbeat_at,
    runs.c.updated_at,
    runs.c.history_line_count,
    runs.c.system_line_count,
    runs.c.last_step,
    runs.c.exit_code,
]
RUNS_FROM = runs.join(projects, runs.c.project_id == projects.c.id).join(
    entities, projects.c.entity_id == entities.c.id
)


def _where_path(entity: str, project: str, run_id: str) -> ColumnElement[bool]:
    return and_(entities.c.name == entity, projects.c.name == project, runs.c.run_id == run_id)


def _select_runs(stale_before: float | None) -> Select[Any]:
    state = run_state(stale_before).label("state")
    return select(*RUN_COLUMNS[:5], state, *RUN_COLUMNS[5:]).select_from(RUNS_FROM)


def find_run_pk(conn: Connection, entity: str, project: str, run_id: str) -> int | None:
    stmt = select(runs.c.storage_id).select_from(RUNS_FROM)
    pk: int | None = conn.execute(stmt.where(_where_path(entity, project, run_id))).scalar()
    return pk


def run_pk(conn: Connection, entity: str, project: str, run_id: str) -> int:
    pk = find_run_pk(conn, entity, project, run_id)
    if pk is None:
        raise NotFound(f"run {entity}/{project}/{run_id} not found")
    return pk


def create_run(
    store: Store, entity: str, project: str, run_id: str, values: Record, resume: str | None
) -> Record:
    """Insert a run, or continue an existing one as ``resume`` allows; returns the stored run
    (with its stored state: it is running)."""

    def write(conn: Connection) -> Record:
        now = time.time()
        path = f"{entity}/{project}/{run_id}"
        pk = find_run_pk(conn, entity, project, run_id)
        if pk is None:
            if resume == "must":
                raise NotFound(f"run {path} not found, and resume='must' needs an existing run")
            if _insert(store, conn, entity, project, run_id, values, now):
                store.refresh_statistics(conn)
                return _get(conn, entity, project, run_id, None)
            pk = run_pk(conn, entity, project, run_id)  # another writer created it meanwhile
        if resume in (None, "never"):
            raise Conflict(
                f"run {path} already exists; pass resume='allow' or 'must' to continue it"
            )
        _resume(conn, pk, values, now)
        return _get(conn, entity, project, run_id, None)

    return store.write_fn(write)


def _insert(
    store: Store, conn: Connection, entity: str, project: str, run_id: str, values: Record,
    now: float,
) -> bool:  # fmt: skip
    """Insert the run; False if it exists already."""
    project_pk = ensure_project(store.dialect, conn, entity, project)
    if values.get("display_name") is None:
        taken = select(func.count()).where(runs.c.project_id == project_pk)
        values = {**values, "display_name": display_name(conn.execute(taken).scalar_one() + 1)}
    row = {
        "system_metrics": {}, "run_metadata": {}, "summary": {}, "state": "running",
        "history_line_count": 0, "system_line_count": 0, **values,
    }  # fmt: skip
    inserted = conn.execute(
        store.dialect.insert_ignore(runs).values(
            project_id=project_pk, run_id=run_id, created_at=now, heartbeat_at=now,
            updated_at=now, **row,
        )
    )  # fmt: skip
    return bool(inserted.rowcount)


def _resume(conn: Connection, pk: int, values: Record, now: float) -> None:
    old = conn.execute(select(runs.c.config).where(runs.c.storage_id == pk).with_for_update()).one()
    changes: dict[str, Any] = {"state": "running", "exit_code": None, "heartbeat_at": now}
    changes["config"] = {**old.config, **values.get("config", {})}
    for key in ("display_name", "notes", "group", "job_type", "sweep", "run_metadata"):
        if values.get(key) is not None:
            changes[key] = values[key]
    if values.get("tags"):
        changes["tags"] = values["tags"]
    conn.execute(update(runs).where(runs.c.storage_id == pk).values(updated_at=now, **changes))


def _get(
    conn: Connection, entity: str, project: str, run_id: str, stale_before: float | None
) -> Record:
    row = conn.execute(_select_runs(stale_before).where(_where_path(entity, project, run_id)))
    found = row.first()
    if found is None:
        raise NotFound(f"run {entity}/{project}/{run_id} not found")
    return dict(found._mapping)


def get_run(store: Store, entity: str, project: str, run_id: str, stale_before: float) -> Record:
    with store.read() as conn:
        return _get(conn, entity, project, run_id, stale_before)


def update_run(
    store: Store, entity: str, project: str, run_id: str, changes: Record, stale_before: float
) -> Record:
    """Set run columns (``run_metadata``, not ``metadata``: the backend's ``RunChanges`` says
    which may change); returns the run as stored after."""

    def write(conn: Connection) -> Record:
        pk = run_pk(conn, entity, project, run_id)
        if changes:
            conn.execute(
                update(runs)
                .where(runs.c.storage_id == pk)
                .values(updated_at=time.time(), **changes)
            )
        return _get(conn, entity, project, run_id, stale_before)

    return store.write_fn(write)


def delete_run(store: Store, entity: str, project: str, run_id: str) -> list[str]:
    """Delete the run with its history, segments and files' records (artifacts it logged
    stay, without it); returns the keys of its files' bytes, for the caller to delete once
    the deletion is committed."""

    def write(conn: Connection) -> list[str]:
        pk = run_pk(conn, entity, project, run_id)
        names = conn.execute(select(files.c.name).where(files.c.run_pk == pk)).scalars().all()
        conn.execute(update(artifacts).where(artifacts.c.run_pk == pk).values(run_pk=None))
        for table in (artifact_uses, files, history_segments, history, key_sets):
            conn.execute(delete(table).where(table.c.run_pk == pk))
        conn.execute(delete(runs).where(runs.c.storage_id == pk))
        store.segments.forget(pk)
        return [blob_key(pk, name) for name in names]

    return store.write_fn(write)


def merge_document(
    store: Store, entity: str, project: str, run_id: str, column: str, changes: Record
) -> None:
    """Merge top-level keys into a run's config, summary or metadata, in one transaction."""

    def write(conn: Connection) -> None:
        merge_document_pk(conn, run_pk(conn, entity, project, run_id), runs.c[column], changes)

    store.write_fn(write)


def merge_document_pk(conn: Connection, pk: int, col: Column[Any], changes: Record) -> None:
    """Merge top-level keys into a document column of a run, holding the run's row lock."""
    old = conn.execute(select(col).where(runs.c.storage_id == pk).with_for_update()).scalar_one()
    conn.execute(
        update(runs)
        .where(runs.c.storage_id == pk)
        .values({col: {**old, **changes}, runs.c.updated_at: time.time()})
    )


def heartbeat(store: Store, entity: str, project: str, run_id: str) -> None:
    """Refresh the heartbeat (a run read as crashed reads as running again)."""

    def write(conn: Connection) -> None:
        pk = run_pk(conn, entity, project, run_id)
        conn.execute(update(runs).where(runs.c.storage_id == pk).values(heartbeat_at=time.time()))

    store.write_fn(write)


def finish_run(
    store: Store, entity: str, project: str, run_id: str, state: str, exit_code: int | None
) -> None:
    def write(conn: Connection) -> None:
        pk = run_pk(conn, entity, project, run_id)
        now = time.time()
        conn.execute(
            update(runs)
            .where(runs.c.storage_id == pk)
            .values(state=state, exit_code=exit_code, heartbeat_at=now, updated_at=now)
        )

    store.write_fn(write)


def query_runs(
    store: Store,
    entity: str,
    project: str,
    filters: dict[str, Any],
    order: str,
    limit: int,
    cursor: str | None,
    stale_before: float,
) -> tuple[list[Record], str | None]:
    """One page of a project's runs matching ``filters`` in ``order``, and the next cursor.

    The page's ids are found first and its runs read after, so that the sort carries only
    (id, sort key) pairs rather than every matching run's documents."""
    dialect = store.dialect
    where = compile_filters(filters, dialect, stale_before)
    sort = parse_order(order)
    page = (
        select(runs.c.storage_id, run_order.sort_value(sort, dialect, stale_before))
        .select_from(RUNS_FROM)
        .where(entities.c.name == entity, projects.c.name == project, where)
        .order_by(*run_order.order_by(sort, dialect, stale_before))
        .limit(limit + 1)
    )
    if cursor is not None:
        value, storage_id = _decode_cursor(cursor)
        page = page.where(run_order.after(sort, dialect, value, storage_id, stale_before))
    store.read_statistics()
    with store.read() as conn:
        keys = conn.execute(_access_path(store, page)).all()
        next_cursor = None
        if len(keys) > limit:
            keys = keys[:limit]
            next_cursor = _encode_cursor(keys[-1].sort_value, keys[-1].storage_id)
        ids = [key.storage_id for key in keys]
        by_id: dict[int, Record] = {}
        if ids:
            found = conn.execute(_select_runs(stale_before).where(runs.c.storage_id.in_(ids)))
            by_id = {row.storage_id: dict(row._mapping) for row in found}
    return [by_id[pk] for pk in ids], next_cursor


def count_runs(
    store: Store, entity: str, project: str, filters: dict[str, Any], stale_before: float
) -> int:
    where = compile_filters(filters, store.dialect, stale_before)
    stmt = (
        select(func.count())
        .select_from(RUNS_FROM)
        .where(entities.c.name == entity, projects.c.name == project, where)
    )
    store.read_statistics()
    with store.read() as conn:
        count: int = conn.execute(_access_path(store, stmt)).scalar_one()
    return count


def _access_path(store: Store, stmt: S) -> S:
    """Read the runs table straight through when projects are large (``Store.scan_runs``)."""
    return store.dialect.no_index(stmt, runs) if store.scan_runs else stmt  # type: ignore[return-value]


def _encode_cursor(value: Any, storage_id: int) -> str:
    return base64.urlsafe_b64encode(orjson.dumps([value, storage_id])).decode()


def _decode_cursor(cursor: str) -> tuple[Any, int]:
    try:
        value, storage_id = orjson.loads(base64.urlsafe_b64decode(cursor.encode()))
        if not isinstance(storage_id, int):
            raise ValueError(storage_id)
    except (ValueError, TypeError, orjson.JSONDecodeError):
        raise InvalidFilter(f"malformed page cursor {cursor!r}") from None
    return value, storage_id


def runs_with_hot_rows(
    conn: Connection, entity: str | None = None, project: str | None = None,
    run_id: str | None = None,
) -> list[tuple[str, str, str]]:  # fmt: skip
    """(entity, project, run id) of the runs with hot history rows, of an entity, project or
    run when named."""
    stmt = (
        select(entities.c.name, projects.c.name, runs.c.run_id)
        .select_from(RUNS_FROM)
        .where(runs.c.storage_id.in_(select(history.c.run_pk).distinct()))
        .order_by(entities.c.name, projects.c.name, runs.c.run_id)
    )
    for column, value in ((entities.c.name, entity), (projects.c.name, project),
                          (runs.c.run_id, run_id)):  # fmt: skip
        if value is not None:
            stmt = stmt.where(column == value)
    return [(e, p, r) for e, p, r in conn.execute(stmt)]
