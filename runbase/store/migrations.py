"""Schema versions as an ordered list of steps; ``migrate`` applies the missing ones.

Step 1 creates the first schema. A later change to the tables is a new step appended to
``STEPS`` (ALTERs written with SQLAlchemy), never an edit of an earlier one.
"""

from __future__ import annotations

from collections.abc import Callable

from sqlalchemy import Connection, func, inspect, select

from runbase.store import schema


def _create_first_schema(conn: Connection) -> None:
    schema.metadata.create_all(conn)


STEPS: list[Callable[[Connection], None]] = [_create_first_schema]


def current_version(conn: Connection) -> int:
    if not inspect(conn).has_table("schema_version"):
        return 0
    return conn.execute(select(func.max(schema.schema_version.c.version))).scalar() or 0


def migrate(conn: Connection) -> int:
    """Bring the database to the newest version; returns that version."""
    version = current_version(conn)
    for number, step in enumerate(STEPS, start=1):
        if number > version:
            step(conn)
            conn.execute(schema.schema_version.insert().values(version=number))
    return len(STEPS)
