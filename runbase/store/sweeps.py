"""Sweeps: a named search over a project's runs, with its configuration."""

from __future__ import annotations

import time
from typing import Any

from sqlalchemy import Connection, select

from runbase.errors import NotFound
from runbase.store.dialect import Dialect
from runbase.store.projects import ensure_project
from runbase.store.schema import entities, projects, sweeps

SWEEP_COLUMNS = [
    entities.c.name.label("entity"),
    projects.c.name.label("project"),
    sweeps.c.sweep_id,
    sweeps.c.name,
    sweeps.c.config,
    sweeps.c.state,
    sweeps.c.created_at,
]


def create(
    dialect: Dialect,
    conn: Connection,
    entity: str,
    project: str,
    sweep_id: str,
    name: str,
    config: dict[str, Any],
) -> dict[str, Any]:
    project_pk = ensure_project(dialect, conn, entity, project)
    conn.execute(
        sweeps.insert().values(
            project_id=project_pk, sweep_id=sweep_id, name=name, config=config,
            state="RUNNING", created_at=time.time(),
        )
    )  # fmt: skip
    return get(conn, entity, project, sweep_id)


def get(conn: Connection, entity: str, project: str, sweep_id: str) -> dict[str, Any]:
    row = conn.execute(
        select(*SWEEP_COLUMNS)
        .select_from(sweeps.join(projects).join(entities))
        .where(entities.c.name == entity, projects.c.name == project, sweeps.c.sweep_id == sweep_id)
    ).first()
    if row is None:
        raise NotFound(f"sweep {entity}/{project}/{sweep_id} not found")
    return dict(row._mapping)
