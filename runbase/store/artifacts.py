"""Artifacts: collections of a project, their versions and aliases, and which runs logged
and used which version. The files of versions and the blobs behind them are in
``artifact_files``."""

from __future__ import annotations

import time
from typing import Any

from sqlalchemy import ColumnElement, Connection, Select, delete, func, select, update

from runbase.errors import Conflict, InvalidInput, NotFound
from runbase.store.dialect import Dialect
from runbase.store.projects import ensure_project
from runbase.store.schema import (
    artifact_aliases,
    artifact_collections,
    artifact_uses,
    artifacts,
    entities,
    projects,
    runs,
)

Record = dict[str, Any]
LATEST = "latest"
ARTIFACT_COLUMNS: list[ColumnElement[Any]] = [
    artifacts.c.id,
    entities.c.name.label("entity"),
    projects.c.name.label("project"),
    artifact_collections.c.name,
    artifact_collections.c.type,
    artifacts.c.version_index,
    artifacts.c.state,
    artifacts.c.digest,
    artifacts.c.description,
    artifacts.c.artifact_metadata.label("metadata"),
    artifacts.c.size,
    artifacts.c.file_count,
    runs.c.run_id,
    artifacts.c.history_step,
    artifacts.c.client_id,
    artifacts.c.created_at,
    artifacts.c.updated_at,
]
ARTIFACTS_FROM = (
    artifacts.join(artifact_collections, artifacts.c.collection_id == artifact_collections.c.id)
    .join(projects, artifact_collections.c.project_id == projects.c.id)
    .join(entities, projects.c.entity_id == entities.c.id)
    .outerjoin(runs, artifacts.c.run_pk == runs.c.storage_id)
)
COLLECTIONS_FROM = artifact_collections.join(projects).join(entities)


def _where_project(entity: str, project: str) -> ColumnElement[bool]:
    return (entities.c.name == entity) & (projects.c.name == project)


def _records(conn: Connection, stmt: Select[Any]) -> list[Record]:
    """The artifacts ``stmt`` (over ``ARTIFACT_COLUMNS``) selects, each with its aliases."""
    rows = [dict(row._mapping) for row in conn.execute(stmt)]
    ids = [row["id"] for row in rows]
    aliases: dict[int, list[str]] = {pk: [] for pk in ids}
    if ids:
        found = conn.execute(
            select(artifact_aliases.c.artifact_id, artifact_aliases.c.alias)
            .where(artifact_aliases.c.artifact_id.in_(ids))
            .order_by(artifact_aliases.c.alias)
        )
        for artifact_id, alias in found:
            aliases[artifact_id].append(alias)
    return [{**row, "aliases": tuple(aliases[row["id"]])} for row in rows]


def _select() -> Select[Any]:
    return select(*ARTIFACT_COLUMNS).select_from(ARTIFACTS_FROM)


def _one(conn: Connection, stmt: Select[Any], what: str) -> Record:
    found = _records(conn, stmt)
    if not found:
        raise NotFound(f"{what} not found")
    return found[0]


def get(conn: Connection, artifact_id: int) -> Record:
    return _one(conn, _select().where(artifacts.c.id == artifact_id), f"artifact {artifact_id}")


def find(conn: Connection, entity: str, project: str, name: str, alias: str) -> Record:
    """The version of a collection that ``alias`` names: ``vN`` or an alias."""
    stmt = _select().where(_where_project(entity, project), artifact_collections.c.name == name)
    if alias.startswith("v") and alias[1:].isdigit():
        stmt = stmt.where(artifacts.c.version_index == int(alias[1:]))
    else:
        named = select(artifact_aliases.c.artifact_id).where(
            artifact_aliases.c.collection_id == artifacts.c.collection_id,
            artifact_aliases.c.alias == alias,
        )
        stmt = stmt.where(artifacts.c.id == named.scalar_subquery())
    return _one(conn, stmt, f"artifact {entity}/{project}/{name}:{alias}")


def find_by_client_id(conn: Connection, client_id: str) -> Record:
    stmt = _select().where(artifacts.c.client_id == client_id).order_by(artifacts.c.id).limit(1)
    return _one(conn, stmt, f"artifact with client id {client_id!r}")


def _collection_columns() -> list[ColumnElement[Any]]:
    latest = select(artifact_aliases.c.artifact_id).where(
        artifact_aliases.c.collection_id == artifact_collections.c.id,
        artifact_aliases.c.alias == LATEST,
    )
    return [
        entities.c.name.label("entity"),
        projects.c.name.label("project"),
        artifact_collections.c.name,
        artifact_collections.c.type,
        artifact_collections.c.created_at,
        latest.scalar_subquery().label("latest_id"),
    ]


def collection(conn: Connection, entity: str, project: str, name: str) -> Record:
    row = conn.execute(
        select(*_collection_columns())
        .select_from(COLLECTIONS_FROM)
        .where(_where_project(entity, project), artifact_collections.c.name == name)
    ).first()
    if row is None:
        raise NotFound(f"artifact {entity}/{project}/{name} not found")
    return dict(row._mapping)


def collections(
    conn: Connection, entity: str, project: str, type: str | None, limit: int,
    after_name: str | None,
) -> list[Record]:  # fmt: skip
    stmt = (
        select(*_collection_columns())
        .select_from(COLLECTIONS_FROM)
        .where(_where_project(entity, project))
        .order_by(artifact_collections.c.name)
        .limit(limit)
    )
    if type is not None:
        stmt = stmt.where(artifact_collections.c.type == type)
    if after_name is not None:
        stmt = stmt.where(artifact_collections.c.name > after_name)
    return [dict(row._mapping) for row in conn.execute(stmt)]


def versions(
    conn: Connection, entity: str, project: str, name: str, limit: int, before: int | None
) -> list[Record]:
    """Committed versions of a collection, newest first, older than version ``before``."""
    stmt = (
        _select()
        .where(_where_project(entity, project), artifact_collections.c.name == name)
        .where(artifacts.c.version_index.is_not(None))
        .order_by(artifacts.c.version_index.desc())
        .limit(limit)
    )
    if before is not None:
        stmt = stmt.where(artifacts.c.version_index < before)
    return _records(conn, stmt)


def of_run(
    conn: Connection, run_pk: int, used: bool, limit: int, after: int | None
) -> list[Record]:
    """The committed versions a run logged (or used), by id."""
    stmt = _select().where(artifacts.c.state == "COMMITTED").order_by(artifacts.c.id).limit(limit)
    if used:
        by_run = select(artifact_uses.c.artifact_id).where(artifact_uses.c.run_pk == run_pk)
        stmt = stmt.where(artifacts.c.id.in_(by_run))
    else:
        stmt = stmt.where(artifacts.c.run_pk == run_pk)
    if after is not None:
        stmt = stmt.where(artifacts.c.id > after)
    return _records(conn, stmt)


def users(conn: Connection, artifact_id: int, limit: int, after: int | None) -> list[Record]:
    """The runs that used a version (``entity``, ``project``, ``run_id``, ``pk``) by pk."""
    stmt = (
        select(
            entities.c.name.label("entity"),
            projects.c.name.label("project"),
            runs.c.run_id,
            runs.c.storage_id.label("pk"),
        )
        .select_from(artifact_uses.join(runs).join(projects).join(entities))
        .where(artifact_uses.c.artifact_id == artifact_id)
        .order_by(runs.c.storage_id)
        .limit(limit)
    )
    if after is not None:
        stmt = stmt.where(runs.c.storage_id > after)
    return [dict(row._mapping) for row in conn.execute(stmt)]


# writing
def create(
    dialect: Dialect, conn: Connection, entity: str, project: str, run_pk: int | None,
    values: Record,
) -> int:  # fmt: skip
    """A new pending version (``values``: name, type, digest, description, metadata,
    aliases, history_step, client_id, dedupe); or, with ``dedupe``, the latest version when
    it has the same digest, with the aliases asked for moved onto it."""
    project_pk = ensure_project(dialect, conn, entity, project)
    collection_pk = _ensure_collection(dialect, conn, project_pk, values["name"], values["type"])
    latest = conn.execute(
        select(artifacts.c.id, artifacts.c.digest)
        .join(artifact_aliases, artifact_aliases.c.artifact_id == artifacts.c.id)
        .where(
            artifact_aliases.c.collection_id == collection_pk, artifact_aliases.c.alias == LATEST
        )
    ).first()
    if values["dedupe"] and latest is not None and latest.digest == values["digest"]:
        set_aliases(dialect, conn, collection_pk, latest.id, values["aliases"])
        return int(latest.id)
    now = time.time()
    inserted = conn.execute(
        artifacts.insert().returning(artifacts.c.id).values(
            collection_id=collection_pk, state="PENDING", digest=values["digest"],
            description=values["description"], artifact_metadata=values["metadata"],
            requested_aliases=list(values["aliases"]), run_pk=run_pk,
            history_step=values["history_step"], client_id=values["client_id"],
            created_at=now, updated_at=now,
        )
    )  # fmt: skip
    return int(inserted.scalar_one())


def _ensure_collection(
    dialect: Dialect, conn: Connection, project_pk: int, name: str, type: str
) -> int:
    conn.execute(
        dialect.insert_ignore(artifact_collections).values(
            project_id=project_pk, name=name, type=type, created_at=time.time()
        )
    )
    found = conn.execute(
        select(artifact_collections.c.id, artifact_collections.c.type).where(
            artifact_collections.c.project_id == project_pk, artifact_collections.c.name == name
        )
    ).one()
    if found.type != type:
        raise InvalidInput(f"artifact {name!r} is of type {found.type!r}, not {type!r}")
    return int(found.id)


def set_aliases(
    dialect: Dialect, conn: Connection, collection_pk: int, artifact_id: int, aliases: Any
) -> None:
    """Point each alias of the collection at the version (moving it from another)."""
    for alias in aliases:
        values = {"collection_id": collection_pk, "alias": alias, "artifact_id": artifact_id}
        conn.execute(dialect.upsert(artifact_aliases, ("collection_id", "alias"), values))


def _pending(conn: Connection, artifact_id: int) -> Any:
    """The version's row, locked; ``NotFound`` when missing."""
    row = conn.execute(
        select(artifacts).where(artifacts.c.id == artifact_id).with_for_update()
    ).first()
    if row is None:
        raise NotFound(f"artifact {artifact_id} not found")
    return row


def mark_manifest(conn: Connection, artifact_id: int) -> None:
    """Note that a pending version's manifest is stored."""
    if _pending(conn, artifact_id).state != "PENDING":
        raise Conflict(f"artifact {artifact_id} is committed: its manifest cannot change")
    stmt = update(artifacts).where(artifacts.c.id == artifact_id)
    conn.execute(stmt.values(has_manifest=True, updated_at=time.time()))


def check_pending(conn: Connection, artifact_id: int) -> bool:
    """Whether the version waits for its commit (False: committed already); ``InvalidInput``
    when its manifest was never uploaded."""
    row = _pending(conn, artifact_id)
    if row.state == "COMMITTED":
        return False
    if not row.has_manifest:
        raise InvalidInput(f"artifact {artifact_id} has no manifest yet: upload it first")
    return True


def commit(
    dialect: Dialect, conn: Connection, artifact_id: int, size: int, file_count: int
) -> None:
    """Give the pending version the next index of its collection and its aliases."""
    row = _pending(conn, artifact_id)
    collection_pk = row.collection_id
    conn.execute(  # the collection's row lock orders concurrent commits
        select(artifact_collections.c.id)
        .where(artifact_collections.c.id == collection_pk)
        .with_for_update()
    )
    last = conn.execute(
        select(func.max(artifacts.c.version_index)).where(
            artifacts.c.collection_id == collection_pk
        )
    ).scalar()
    conn.execute(
        update(artifacts).where(artifacts.c.id == artifact_id).values(
            state="COMMITTED", version_index=0 if last is None else last + 1, size=size,
            file_count=file_count, updated_at=time.time(),
        )
    )  # fmt: skip
    aliases = [*row.requested_aliases, LATEST]
    set_aliases(dialect, conn, collection_pk, artifact_id, dict.fromkeys(aliases))


def change(
    dialect: Dialect, conn: Connection, artifact_id: int, values: Record,
    add: tuple[str, ...], remove: tuple[str, ...],
) -> None:  # fmt: skip
    """Set fields of a version (``description``, ``artifact_metadata``), move aliases onto
    it and take others off (a pending version gets them when committed)."""
    row = _pending(conn, artifact_id)
    stmt = update(artifacts).where(artifacts.c.id == artifact_id)
    if row.state != "COMMITTED":
        wanted = [a for a in dict.fromkeys([*row.requested_aliases, *add]) if a not in remove]
        conn.execute(stmt.values(**values, requested_aliases=wanted, updated_at=time.time()))
        return
    conn.execute(stmt.values(**values, updated_at=time.time()))
    set_aliases(dialect, conn, row.collection_id, artifact_id, add)
    if remove:
        conn.execute(
            delete(artifact_aliases).where(
                artifact_aliases.c.artifact_id == artifact_id,
                artifact_aliases.c.alias.in_(remove),
            )
        )


def record_use(dialect: Dialect, conn: Connection, run_pk: int, artifact_id: int) -> None:
    _pending(conn, artifact_id)
    conn.execute(
        dialect.insert_ignore(artifact_uses).values(
            run_pk=run_pk, artifact_id=artifact_id, used_at=time.time()
        )
    )
