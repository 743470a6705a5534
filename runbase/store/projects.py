"""Entities and projects: created on first use, listed in name order."""

from __future__ import annotations

import time
from typing import Any

from sqlalchemy import ColumnElement, Connection, func, select

from runbase.errors import NotFound
from runbase.store.dialect import Dialect
from runbase.store.engine import Store
from runbase.store.schema import entities, projects, runs


def ensure_project(dialect: Dialect, conn: Connection, entity: str, project: str) -> int:
    """The project's id, creating the entity and project when missing."""
    now = time.time()
    conn.execute(dialect.insert_ignore(entities).values(name=entity, created_at=now))
    entity_id = conn.execute(select(entities.c.id).where(entities.c.name == entity)).scalar_one()
    conn.execute(
        dialect.insert_ignore(projects).values(entity_id=entity_id, name=project, created_at=now)
    )
    found: int = conn.execute(
        select(projects.c.id).where(projects.c.entity_id == entity_id, projects.c.name == project)
    ).scalar_one()
    return found


def _project_columns() -> list[ColumnElement[Any]]:
    run_count = select(func.count()).where(runs.c.project_id == projects.c.id).scalar_subquery()
    return [
        entities.c.name.label("entity"),
        projects.c.name.label("name"),
        projects.c.created_at,
        run_count.label("run_count"),
    ]


def get_project(store: Store, entity: str, project: str) -> dict[str, Any]:
    with store.read() as conn:
        row = conn.execute(
            select(*_project_columns())
            .select_from(projects.join(entities))
            .where(entities.c.name == entity, projects.c.name == project)
        ).first()
    if row is None:
        raise NotFound(f"project {entity}/{project} not found")
    return dict(row._mapping)


def list_projects(
    store: Store, entity: str, limit: int, after_name: str | None
) -> list[dict[str, Any]]:
    """Projects of an entity by name, at most ``limit``, after ``after_name`` when given."""
    stmt = (
        select(*_project_columns())
        .select_from(projects.join(entities))
        .where(entities.c.name == entity)
        .order_by(projects.c.name)
        .limit(limit)
    )
    if after_name is not None:
        stmt = stmt.where(projects.c.name > after_name)
    with store.read() as conn:
        return [dict(row._mapping) for row in conn.execute(stmt)]
