"""Runs: create or resume, read, update, query a page, count."""

from __future__ import annotations

import base64
import time
from typing import Any

import orjson
from sqlalchemy import Connection, and_, exists, func, select, update

from runbase.errors import Conflict, InvalidFilter, InvalidInput, NotFound
from runbase.names import display_name
from runbase.store import filters as filter_compiler
from runbase.store import order as run_order
from runbase.store.engine import Store
from runbase.store.projects import ensure_project, find_project
from runbase.store.schema import entities, projects, runs

RUN_COLUMNS = [
    runs.c.storage_id,
    entities.c.name.label("entity"),
    projects.c.name.label("project"),
    runs.c.run_id,
    runs.c.display_name,
    runs.c.state,
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
UPDATABLE = {
    "display_name", "tags", "notes", "group", "job_type", "config", "summary", "state",
    "exit_code", "system_metrics", "run_metadata", "sweep",
}  # fmt: skip


def _where_path(entity: str, project: str, run_id: str):
    return and_(entities.c.name == entity, projects.c.name == project, runs.c.run_id == run_id)


def _select_runs():
    return select(*RUN_COLUMNS).select_from(RUNS_FROM)


def find_run_pk(conn: Connection, entity: str, project: str, run_id: str) -> int | None:
    return conn.execute(
        select(runs.c.storage_id).select_from(RUNS_FROM).where(_where_path(entity, project, run_id))
    ).scalar()


def run_pk(conn: Connection, entity: str, project: str, run_id: str) -> int:
    pk = find_run_pk(conn, entity, project, run_id)
    if pk is None:
        raise NotFound(f"run {entity}/{project}/{run_id} not found")
    return pk


def create_run(
    store: Store, entity: str, project: str, run_id: str, values: dict[str, Any], resume: str | None
) -> dict[str, Any]:
    """Insert a run, or continue an existing one as ``resume`` allows; returns the stored run."""
    now = time.time()
    with store.write() as conn:
        pk = find_run_pk(conn, entity, project, run_id)
        path = f"{entity}/{project}/{run_id}"
        if pk is None:
            if resume == "must":
                raise NotFound(f"run {path} not found, and resume='must' needs an existing run")
            project_pk = ensure_project(conn, entity, project)
            if values.get("display_name") is None:
                taken = select(func.count()).where(runs.c.project_id == project_pk)
                values = {**values, "display_name": display_name(conn.execute(taken).scalar() + 1)}
            row = {
                "system_metrics": {}, "run_metadata": {}, "summary": {}, "state": "running",
                "history_line_count": 0, "system_line_count": 0, **values,
            }  # fmt: skip
            conn.execute(
                runs.insert().values(
                    project_id=project_pk, run_id=run_id, created_at=now, heartbeat_at=now,
                    updated_at=now, **row,
                )
            )  # fmt: skip
        else:
            if resume in (None, "never"):
                raise Conflict(
                    f"run {path} already exists; pass resume='allow' or 'must' to continue it"
                )
            _resume(conn, pk, values, now)
        return _get(conn, entity, project, run_id)


def _resume(conn: Connection, pk: int, values: dict[str, Any], now: float) -> None:
    old = conn.execute(select(runs.c.config, runs.c.tags).where(runs.c.storage_id == pk)).one()
    changes: dict[str, Any] = {"state": "running", "exit_code": None, "heartbeat_at": now}
    changes["config"] = {**old.config, **values.get("config", {})}
    for key in ("display_name", "notes", "group", "job_type", "sweep", "run_metadata"):
        if values.get(key) is not None:
            changes[key] = values[key]
    if values.get("tags"):
        changes["tags"] = values["tags"]
    conn.execute(update(runs).where(runs.c.storage_id == pk).values(updated_at=now, **changes))


def _get(conn: Connection, entity: str, project: str, run_id: str) -> dict[str, Any]:
    row = conn.execute(_select_runs().where(_where_path(entity, project, run_id))).first()
    if row is None:
        raise NotFound(f"run {entity}/{project}/{run_id} not found")
    return dict(row._mapping)


def get_run(
    store: Store, entity: str, project: str, run_id: str, stale_after: float
) -> dict[str, Any]:
    mark_crashed(store, entity, project, stale_after)
    with store.read() as conn:
        return _get(conn, entity, project, run_id)


def update_run(
    store: Store, entity: str, project: str, run_id: str, changes: dict[str, Any]
) -> dict[str, Any]:
    unknown = set(changes) - UPDATABLE
    if unknown:
        raise InvalidInput(f"cannot update run fields {sorted(unknown)}")
    with store.write() as conn:
        pk = run_pk(conn, entity, project, run_id)
        if changes:
            conn.execute(
                update(runs)
                .where(runs.c.storage_id == pk)
                .values(updated_at=time.time(), **changes)
            )
        return _get(conn, entity, project, run_id)


def merge_document(
    store: Store, entity: str, project: str, run_id: str, column: str, changes: dict[str, Any]
) -> None:
    """Merge top-level keys into a run's config, summary or metadata, in one transaction."""
    col = runs.c[column]
    with store.write() as conn:
        pk = run_pk(conn, entity, project, run_id)
        merge_document_pk(conn, pk, col, changes)


def merge_document_pk(conn: Connection, pk: int, col, changes: dict[str, Any]) -> None:
    old = conn.execute(select(col).where(runs.c.storage_id == pk)).scalar_one()
    conn.execute(
        update(runs)
        .where(runs.c.storage_id == pk)
        .values({col: {**old, **changes}, runs.c.updated_at: time.time()})
    )


def heartbeat(store: Store, entity: str, project: str, run_id: str) -> None:
    """Refresh the heartbeat; a run marked crashed while it was silent is running again."""
    with store.write() as conn:
        pk = run_pk(conn, entity, project, run_id)
        this_run = runs.c.storage_id == pk
        reaped = (runs.c.state == "crashed") & runs.c.exit_code.is_(None)
        conn.execute(update(runs).where(this_run, reaped).values(state="running"))
        conn.execute(update(runs).where(this_run).values(heartbeat_at=time.time()))


def finish_run(
    store: Store, entity: str, project: str, run_id: str, state: str, exit_code: int | None
) -> None:
    with store.write() as conn:
        pk = run_pk(conn, entity, project, run_id)
        now = time.time()
        conn.execute(
            update(runs)
            .where(runs.c.storage_id == pk)
            .values(state=state, exit_code=exit_code, heartbeat_at=now, updated_at=now)
        )


def mark_crashed(store: Store, entity: str, project: str, stale_after: float) -> None:
    """Mark crashed the project's running runs whose heartbeat is over ``stale_after`` s old."""
    cutoff = time.time() - stale_after
    stale = (runs.c.state == "running") & (runs.c.heartbeat_at < cutoff)
    with store.read() as conn:
        pid = find_project(conn, entity, project)
        if (
            pid is None
            or not conn.execute(select(exists().where(runs.c.project_id == pid, stale))).scalar()
        ):
            return
    with store.write() as conn:
        conn.execute(update(runs).where(runs.c.project_id == pid, stale).values(state="crashed"))


def query_runs(
    store: Store,
    entity: str,
    project: str,
    filters: dict[str, Any],
    order: str,
    limit: int,
    cursor: str | None,
    stale_after: float,
) -> tuple[list[dict[str, Any]], str | None]:
    """One page of a project's runs matching ``filters`` in ``order``, and the next cursor.

    The page's ids are found first and its runs read after, so that the sort carries only
    (id, sort key) pairs rather than every matching run's documents."""
    dialect = store.dialect
    where = filter_compiler.compile_filters(filters, dialect)
    sort = run_order.parse_order(order)
    page = (
        select(runs.c.storage_id, run_order.sort_value(sort, dialect))
        .select_from(RUNS_FROM)
        .where(entities.c.name == entity, projects.c.name == project, where)
        .order_by(*run_order.order_by(sort, dialect))
        .limit(limit + 1)
    )
    if cursor is not None:
        value, storage_id = _decode_cursor(cursor)
        page = page.where(run_order.after(sort, dialect, value, storage_id))
    mark_crashed(store, entity, project, stale_after)
    store.refresh_statistics()
    with store.read() as conn:
        keys = conn.execute(_access_path(store, page)).all()
        next_cursor = None
        if len(keys) > limit:
            keys = keys[:limit]
            next_cursor = _encode_cursor(keys[-1].sort_value, keys[-1].storage_id)
        ids = [key.storage_id for key in keys]
        found = conn.execute(_select_runs().where(runs.c.storage_id.in_(ids))) if ids else []
        by_id = {row.storage_id: dict(row._mapping) for row in found}
    return [by_id[pk] for pk in ids], next_cursor


def count_runs(
    store: Store, entity: str, project: str, filters: dict[str, Any], stale_after: float
) -> int:
    where = filter_compiler.compile_filters(filters, store.dialect)
    stmt = (
        select(func.count())
        .select_from(RUNS_FROM)
        .where(entities.c.name == entity, projects.c.name == project, where)
    )
    mark_crashed(store, entity, project, stale_after)
    store.refresh_statistics()
    with store.read() as conn:
        return conn.execute(_access_path(store, stmt)).scalar_one()


def _access_path(store: Store, stmt):
    """Read the runs table straight through when projects are large (``Store.scan_runs``)."""
    return stmt.with_hint(runs, "NOT INDEXED", "sqlite") if store.scan_runs else stmt


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
