"""Dashboard sessions: rows of ``sessions``, found by the sha256 of their token.

A session is valid while it has not expired and its key is not revoked. Writes are called
inside ``Store.write_fn``.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import Connection, delete, false, insert, select

from runbase.store.schema import api_keys, entities, sessions, users


def create_session(
    conn: Connection, token_hash: str, key_id: int, csrf: str, now: float, expires_at: float
) -> None:
    """Stores a new session, and drops the expired ones."""
    drop_expired(conn, now)
    values = {"token_hash": token_hash, "key_id": key_id, "csrf": csrf, "created_at": now,
              "expires_at": expires_at}  # fmt: skip
    conn.execute(insert(sessions).values(**values))


def find_session(conn: Connection, token_hash: str, now: float) -> dict[str, Any] | None:
    """The unexpired session of an unrevoked key with this token hash: its csrf token, the
    key's id and read-only flag, its user's id, name and admin flag; None otherwise."""
    stmt = (
        select(
            sessions.c.csrf,
            sessions.c.key_id,
            api_keys.c.read_only,
            api_keys.c.user_id,
            entities.c.name.label("user"),
            users.c.admin,
        )
        .select_from(
            sessions.join(api_keys, sessions.c.key_id == api_keys.c.id)
            .join(entities, api_keys.c.user_id == entities.c.id)
            .join(users, users.c.entity_id == api_keys.c.user_id)
        )
        .where(
            sessions.c.token_hash == token_hash,
            sessions.c.expires_at > now,
            api_keys.c.revoked == false(),
        )
    )
    row = conn.execute(stmt).first()
    return None if row is None else dict(row._mapping)


def has_expired(conn: Connection, token_hash: str, now: float) -> bool:
    """Whether the session with this token hash is kept though expired."""
    stmt = select(sessions.c.id).where(
        sessions.c.token_hash == token_hash, sessions.c.expires_at <= now
    )
    return conn.execute(stmt).first() is not None


def drop_expired(conn: Connection, now: float) -> None:
    conn.execute(delete(sessions).where(sessions.c.expires_at <= now))


def delete_session(conn: Connection, token_hash: str) -> None:
    conn.execute(delete(sessions).where(sessions.c.token_hash == token_hash))
