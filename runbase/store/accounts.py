"""Users, teams and API keys. Users and teams are entities (``entities.kind``).

Keys arrive here already hashed: the store never sees a key. Each function takes a
connection; writes are called inside ``Store.write_fn``.
"""

from __future__ import annotations

import time
from typing import Any

from sqlalchemy import Connection, func, insert, select, update

from runbase.errors import Conflict, NotFound
from runbase.store.dialect import Dialect
from runbase.store.schema import api_keys, entities, server_secrets, team_members, users

Record = dict[str, Any]
USER, TEAM = "user", "team"


def _entity(conn: Connection, name: str) -> Record | None:
    row = conn.execute(
        select(entities.c.id, entities.c.kind, users.c.entity_id.label("user_id"))
        .select_from(entities.outerjoin(users, users.c.entity_id == entities.c.id))
        .where(entities.c.name == name)
    ).first()
    return None if row is None else dict(row._mapping)


def _claim_entity(conn: Connection, name: str, kind: str) -> int:
    """The id of entity ``name`` made of ``kind``: a new entity, or one that runs created
    before anybody registered it. ``Conflict`` when a user or team has it already."""
    found = _entity(conn, name)
    if found is None:
        values = {"name": name, "kind": kind, "created_at": time.time()}
        created = conn.execute(insert(entities).values(**values)).inserted_primary_key
        assert created is not None
        new_id: int = created[0]
        return new_id
    if found["user_id"] is not None or found["kind"] == TEAM:
        raise Conflict(f"{found['kind']} {name} exists already")
    if found["kind"] != kind:
        conn.execute(update(entities).where(entities.c.id == found["id"]).values(kind=kind))
    entity_id: int = found["id"]
    return entity_id


def create_user(conn: Connection, name: str, admin: bool) -> Record:
    entity_id = _claim_entity(conn, name, USER)
    now = time.time()
    conn.execute(insert(users).values(entity_id=entity_id, admin=admin, created_at=now))
    return {"name": name, "admin": admin, "created_at": now, "teams": []}


def create_team(conn: Connection, name: str) -> None:
    _claim_entity(conn, name, TEAM)


def user_id(conn: Connection, name: str) -> int:
    found = _entity(conn, name)
    if found is None or found["user_id"] is None:
        raise NotFound(f"user {name} not found")
    found_id: int = found["user_id"]
    return found_id


def team_id(conn: Connection, name: str) -> int:
    found = _entity(conn, name)
    if found is None or found["kind"] != TEAM or found["user_id"] is not None:
        raise NotFound(f"team {name} not found")
    found_id: int = found["id"]
    return found_id


def add_member(dialect: Dialect, conn: Connection, team: str, user: str) -> None:
    values = {"team_id": team_id(conn, team), "user_id": user_id(conn, user)}
    conn.execute(dialect.insert_ignore(team_members).values(**values))


def teams_of(conn: Connection, user_pk: int) -> list[str]:
    stmt = (
        select(entities.c.name)
        .select_from(team_members.join(entities, team_members.c.team_id == entities.c.id))
        .where(team_members.c.user_id == user_pk)
        .order_by(entities.c.name)
    )
    return list(conn.execute(stmt).scalars())


def list_users(conn: Connection) -> list[Record]:
    stmt = (
        select(users.c.entity_id, entities.c.name, users.c.admin, users.c.created_at)
        .select_from(users.join(entities, users.c.entity_id == entities.c.id))
        .order_by(entities.c.name)
    )
    found = []
    for row in conn.execute(stmt).all():
        record = dict(row._mapping)
        record["teams"] = teams_of(conn, record.pop("entity_id"))
        found.append(record)
    return found


def count_users(conn: Connection) -> int:
    count: int = conn.execute(select(func.count()).select_from(users)).scalar_one()
    return count


KEY_COLUMNS = (
    api_keys.c.id,
    entities.c.name.label("user"),
    api_keys.c.label,
    api_keys.c.read_only,
    api_keys.c.created_at,
    api_keys.c.last_used_at,
    api_keys.c.revoked,
    api_keys.c.prefix,
)
KEYS_FROM = api_keys.join(entities, api_keys.c.user_id == entities.c.id)


def create_key(
    conn: Connection, user: str, key_hash: str, label: str, read_only: bool, prefix: str
) -> Record:
    if conn.execute(select(api_keys.c.id).where(api_keys.c.key_hash == key_hash)).first():
        raise Conflict("this API key exists already")
    values = {"key_hash": key_hash, "user_id": user_id(conn, user), "label": label,
              "read_only": read_only, "created_at": time.time(), "revoked": False,
              "prefix": prefix}  # fmt: skip
    created = conn.execute(insert(api_keys).values(**values)).inserted_primary_key
    assert created is not None
    return _key(conn, created[0])


def _key(conn: Connection, key_pk: int) -> Record:
    row = conn.execute(select(*KEY_COLUMNS).select_from(KEYS_FROM).where(api_keys.c.id == key_pk))
    found = row.first()
    if found is None:
        raise NotFound(f"key {key_pk} not found")
    return dict(found._mapping)


def list_keys(conn: Connection, user: str | None) -> list[Record]:
    stmt = select(*KEY_COLUMNS).select_from(KEYS_FROM).order_by(api_keys.c.id)
    if user is not None:
        stmt = stmt.where(api_keys.c.user_id == user_id(conn, user))
    return [dict(row._mapping) for row in conn.execute(stmt)]


def revoke_key(conn: Connection, key_pk: int) -> Record:
    _key(conn, key_pk)
    conn.execute(update(api_keys).where(api_keys.c.id == key_pk).values(revoked=True))
    return _key(conn, key_pk)


def find_key(conn: Connection, key_hash: str) -> Record | None:
    """The key with this hash, with its user's id, name and admin flag, and its stored hash."""
    stmt = (
        select(*KEY_COLUMNS, api_keys.c.key_hash, api_keys.c.user_id, users.c.admin)
        .select_from(KEYS_FROM.join(users, users.c.entity_id == api_keys.c.user_id))
        .where(api_keys.c.key_hash == key_hash)
    )
    row = conn.execute(stmt).first()
    return None if row is None else dict(row._mapping)


def touch_key(conn: Connection, key_pk: int, now: float) -> None:
    conn.execute(update(api_keys).where(api_keys.c.id == key_pk).values(last_used_at=now))


def secret(dialect: Dialect, conn: Connection, name: str, new_value: str) -> str:
    """The server secret ``name``; ``new_value`` becomes it when there is none yet."""
    values = {"name": name, "value": new_value}
    conn.execute(dialect.insert_ignore(server_secrets).values(**values))
    found: str = conn.execute(
        select(server_secrets.c.value).where(server_secrets.c.name == name)
    ).scalar_one()
    return found
