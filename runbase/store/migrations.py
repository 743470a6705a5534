"""Schema versions as an ordered list of steps; ``migrate`` applies the missing ones.

Step 1 creates the first schema. A later change to the tables is a new step appended to
``STEPS`` (ALTERs written with SQLAlchemy), never an edit of an earlier one.
"""

from __future__ import annotations

from collections.abc import Callable

from sqlalchemy import Connection, Index, func, inspect, select, text, update

from runbase.store import schema

# History rows by step: step bounds of a scan resolve to indexes with one lookup, whatever
# holes the index has.
HISTORY_BY_STEP = Index(
    "ix_history_step",
    schema.history.c.run_pk,
    schema.history.c.stream,
    schema.history.c.step,
    schema.history.c.idx,
)


def _create_first_schema(conn: Connection) -> None:
    schema.metadata.create_all(conn)


def _index_history_by_step(conn: Connection) -> None:
    HISTORY_BY_STEP.create(conn, checkfirst=True)


def _derive_crashed_at_read_time(conn: Connection) -> None:
    """Runs that earlier versions marked crashed on a stale heartbeat (they left no exit
    code) are running again in storage: reads now derive "crashed" from the heartbeat."""
    runs = schema.runs
    reaped = (runs.c.state == "crashed") & runs.c.exit_code.is_(None)
    conn.execute(update(runs).where(reaped).values(state="running"))


def _key_sets_unique_by_hash(conn: Connection) -> None:
    """Key sets are unique by the hash of their key list rather than by the list itself,
    which PostgreSQL's btree cannot index once it is long (rows of thousands of keys)."""
    found = inspect(conn)
    if "key_hash" in {column["name"] for column in found.get_columns("key_sets")}:
        return  # step 1 made the table as it is now
    key_sets = schema.key_sets
    conn.execute(text("ALTER TABLE key_sets ADD COLUMN key_hash VARCHAR(40) NOT NULL DEFAULT ''"))
    for id_, key_list in conn.execute(select(key_sets.c.id, key_sets.c.key_list)).all():
        stmt = update(key_sets).where(key_sets.c.id == id_)
        conn.execute(stmt.values(key_hash=schema.key_hash(key_list)))
    conn.execute(
        text("CREATE UNIQUE INDEX uq_key_sets_hash ON key_sets (run_pk, stream, key_hash)")
    )
    for unique in found.get_unique_constraints("key_sets"):
        # SQLite cannot drop a constraint (nor needs to: it has no size limit)
        if unique["column_names"] == ["run_pk", "stream", "key_list"] and unique["name"]:
            conn.execute(text(f'ALTER TABLE key_sets DROP CONSTRAINT "{unique["name"]}"'))


def _accounts(conn: Connection) -> None:
    """Users, team members and API keys (step 1 of a new database has made them already)."""
    schema.metadata.create_all(conn, tables=schema.ACCOUNT_TABLES, checkfirst=True)


def _history_segments(conn: Connection) -> None:
    """The cold tier's table (step 1 of a new database has made it already)."""
    schema.history_segments.create(conn, checkfirst=True)


def _server_secrets(conn: Connection) -> None:
    """Secrets the server's processes share (step 1 of a new database has made the table)."""
    schema.server_secrets.create(conn, checkfirst=True)


def _artifacts(conn: Connection) -> None:
    """Artifacts: collections, versions, aliases, files, blobs, uses (step 1 of a new
    database has made the tables already)."""
    schema.metadata.create_all(conn, tables=schema.ARTIFACT_TABLES, checkfirst=True)


def _key_prefixes(conn: Connection) -> None:
    """Keys keep their first characters (step 1 of a new database has made the column)."""
    if "prefix" not in {column["name"] for column in inspect(conn).get_columns("api_keys")}:
        conn.execute(text("ALTER TABLE api_keys ADD COLUMN prefix VARCHAR(16)"))


def _sessions(conn: Connection) -> None:
    """The dashboard's sessions (step 1 of a new database has made the table)."""
    schema.sessions.create(conn, checkfirst=True)


STEPS: list[Callable[[Connection], None]] = [
    _create_first_schema,
    _index_history_by_step,
    _derive_crashed_at_read_time,
    _key_sets_unique_by_hash,
    _accounts,
    _history_segments,
    _server_secrets,
    _artifacts,
    _key_prefixes,
    _sessions,
]


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
