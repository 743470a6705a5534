"""The tables. SQLAlchemy Core types only, so the same schema runs on SQLite and PostgreSQL."""

from __future__ import annotations

import hashlib

from sqlalchemy import (
    BigInteger,
    Boolean,
    Column,
    Double,
    ForeignKey,
    Index,
    Integer,
    LargeBinary,
    MetaData,
    SmallInteger,
    String,
    Table,
    Text,
    UniqueConstraint,
    false,
)

from runbase.store.columns import JSONDoc

metadata = MetaData()


def key_hash(key_list: str) -> str:
    """The ``key_hash`` of a key set: sha1 of its ``key_list`` text."""
    return hashlib.sha1(key_list.encode()).hexdigest()


# Stream numbers of history rows.
STREAMS = {"default": 0, "system": 1}

schema_version = Table(
    "schema_version",
    metadata,
    Column("version", Integer, primary_key=True),
)

entities = Table(
    "entities",
    metadata,
    Column("id", Integer, primary_key=True),
    Column("name", String(128), nullable=False, unique=True),
    Column("kind", String(16), nullable=False, server_default="user"),
    Column("created_at", Double, nullable=False),
)

projects = Table(
    "projects",
    metadata,
    Column("id", Integer, primary_key=True),
    Column("entity_id", Integer, ForeignKey("entities.id"), nullable=False),
    Column("name", String(128), nullable=False),
    Column("created_at", Double, nullable=False),
    UniqueConstraint("entity_id", "name"),
)

runs = Table(
    "runs",
    metadata,
    Column("storage_id", Integer, primary_key=True),
    Column("project_id", Integer, ForeignKey("projects.id"), nullable=False),
    Column("run_id", String(128), nullable=False),
    Column("display_name", String(256), nullable=False),
    Column("state", String(16), nullable=False),
    Column("config", JSONDoc, nullable=False),
    Column("summary", JSONDoc, nullable=False),
    Column("system_metrics", JSONDoc, nullable=False),
    Column("run_metadata", JSONDoc, nullable=False),
    Column("tags", JSONDoc, nullable=False),
    Column("notes", Text, nullable=True),
    Column("group", String(256), nullable=True),
    Column("job_type", String(256), nullable=True),
    Column("sweep", String(128), nullable=True),
    Column("username", String(128), nullable=False),
    Column("created_at", Double, nullable=False),
    Column("heartbeat_at", Double, nullable=False),
    Column("updated_at", Double, nullable=False),
    Column("history_line_count", BigInteger, nullable=False, server_default="0"),
    Column("system_line_count", BigInteger, nullable=False, server_default="0"),
    Column("last_step", BigInteger, nullable=True),
    Column("exit_code", Integer, nullable=True),
    UniqueConstraint("project_id", "run_id"),
    Index("ix_runs_project_created", "project_id", "created_at"),
    Index("ix_runs_project_state", "project_id", "state", "heartbeat_at"),
)

key_sets = Table(
    "key_sets",
    metadata,
    Column("id", Integer, primary_key=True),
    Column("run_pk", Integer, ForeignKey("runs.storage_id", ondelete="CASCADE"), nullable=False),
    Column("stream", SmallInteger, nullable=False),
    Column("key_list", Text, nullable=False),
    # sha1 of key_list: a key list can outgrow what a PostgreSQL btree entry may hold
    Column("key_hash", String(40), nullable=False, server_default=""),
    Column("row_count", BigInteger, nullable=False, server_default="0"),
    UniqueConstraint("run_pk", "stream", "key_hash", name="uq_key_sets_hash"),
)

history = Table(
    "history",
    metadata,
    Column("run_pk", Integer, primary_key=True),
    Column("stream", SmallInteger, primary_key=True),
    Column("idx", BigInteger, primary_key=True),
    Column("step", BigInteger, nullable=False),
    Column("key_set", Integer, nullable=False),
    Column("row", Text, nullable=False),
    Index("ix_history_key_set", "run_pk", "stream", "key_set", "idx"),
    sqlite_with_rowid=False,
)

# The cold tier: a contiguous range of one run's stream as Parquet (runbase.columnar),
# with the rows of each key set it holds as JSON ({"key set id": rows}). Ids are never reused:
# decoded segments are cached by id.
history_segments = Table(
    "history_segments",
    metadata,
    Column("id", Integer, primary_key=True),
    Column("run_pk", Integer, ForeignKey("runs.storage_id", ondelete="CASCADE"), nullable=False),
    Column("stream", SmallInteger, nullable=False),
    Column("first_idx", BigInteger, nullable=False),
    Column("last_idx", BigInteger, nullable=False),
    Column("first_step", BigInteger, nullable=False),
    Column("last_step", BigInteger, nullable=False),
    Column("row_count", BigInteger, nullable=False),
    Column("key_sets", Text, nullable=False),
    Column("data", LargeBinary, nullable=False),
    UniqueConstraint("run_pk", "stream", "first_idx", name="uq_history_segments_start"),
    Index("ix_history_segments_end", "run_pk", "stream", "last_idx", "first_idx"),
    sqlite_autoincrement=True,
)

files = Table(
    "files",
    metadata,
    Column("id", Integer, primary_key=True),
    Column("run_pk", Integer, ForeignKey("runs.storage_id", ondelete="CASCADE"), nullable=False),
    Column("name", String(1024), nullable=False),
    Column("size", BigInteger, nullable=False),
    Column("md5", String(64), nullable=False),
    Column("mimetype", String(256), nullable=False),
    Column("updated_at", Double, nullable=False),
    UniqueConstraint("run_pk", "name"),
)

sweeps = Table(
    "sweeps",
    metadata,
    Column("id", Integer, primary_key=True),
    Column("project_id", Integer, ForeignKey("projects.id"), nullable=False),
    Column("sweep_id", String(128), nullable=False),
    Column("name", String(256), nullable=False),
    Column("config", JSONDoc, nullable=False),
    Column("state", String(16), nullable=False),
    Column("created_at", Double, nullable=False),
    UniqueConstraint("project_id", "sweep_id"),
)

# Accounts. Users and teams are entities (``entities.kind``); a user has a row here.
users = Table(
    "users",
    metadata,
    Column("entity_id", Integer, ForeignKey("entities.id"), primary_key=True),
    Column("admin", Boolean, nullable=False, server_default=false()),
    Column("created_at", Double, nullable=False),
)

team_members = Table(
    "team_members",
    metadata,
    Column("team_id", Integer, ForeignKey("entities.id"), primary_key=True),
    Column("user_id", Integer, ForeignKey("entities.id"), primary_key=True),
)

# API keys are kept only as the sha256 of the key: keys are long and random, so a fast hash
# is enough, and a stolen table gives no key.
api_keys = Table(
    "api_keys",
    metadata,
    Column("id", Integer, primary_key=True),
    Column("key_hash", String(64), nullable=False, unique=True),
    Column("user_id", Integer, ForeignKey("entities.id"), nullable=False),
    Column("label", String(256), nullable=False, server_default=""),
    Column("read_only", Boolean, nullable=False, server_default=false()),
    Column("created_at", Double, nullable=False),
    Column("last_used_at", Double, nullable=True),
    Column("revoked", Boolean, nullable=False, server_default=false()),
    Column("prefix", String(16), nullable=True),  # the key's first characters, to tell keys apart
)

ACCOUNT_TABLES = [users, team_members, api_keys]

# Dashboard sessions: a browser's cookie holds a random token; only its sha256 is kept. A
# session acts as the key it was started with, and ends with it.
sessions = Table(
    "sessions",
    metadata,
    Column("id", Integer, primary_key=True),
    Column("token_hash", String(64), nullable=False, unique=True),
    Column("key_id", Integer, ForeignKey("api_keys.id", ondelete="CASCADE"), nullable=False),
    Column("csrf", String(64), nullable=False),
    Column("created_at", Double, nullable=False),
    Column("expires_at", Double, nullable=False),
)

# Random secrets of the server, shared by its processes (the key that signs upload URLs).
server_secrets = Table(
    "server_secrets",
    metadata,
    Column("name", String(64), primary_key=True),
    Column("value", String(128), nullable=False),
)

# Artifacts. A collection (W&B's artifact sequence) holds the versions of one named, typed
# artifact of a project. A version is pending until committed, when it gets its index (v0,
# v1, ...), its manifest's files and the aliases asked for. File bytes are blobs of the
# entity, named by their md5: the same bytes are stored once per entity however many
# versions hold them.
artifact_collections = Table(
    "artifact_collections",
    metadata,
    Column("id", Integer, primary_key=True),
    Column("project_id", Integer, ForeignKey("projects.id"), nullable=False),
    Column("name", String(128), nullable=False),
    Column("type", String(128), nullable=False),
    Column("created_at", Double, nullable=False),
    UniqueConstraint("project_id", "name"),
)

artifacts = Table(
    "artifacts",
    metadata,
    Column("id", Integer, primary_key=True),
    Column("collection_id", Integer, ForeignKey("artifact_collections.id"), nullable=False),
    Column("version_index", Integer, nullable=True),
    Column("state", String(16), nullable=False),
    Column("digest", String(128), nullable=False),
    Column("description", Text, nullable=True),
    Column("artifact_metadata", JSONDoc, nullable=False),
    Column("requested_aliases", JSONDoc, nullable=False),
    Column("size", BigInteger, nullable=False, server_default="0"),
    Column("file_count", BigInteger, nullable=False, server_default="0"),
    Column("has_manifest", Boolean, nullable=False, server_default=false()),
    Column("run_pk", Integer, ForeignKey("runs.storage_id", ondelete="SET NULL"), nullable=True),
    Column("history_step", BigInteger, nullable=True),
    Column("client_id", String(128), nullable=True),
    Column("created_at", Double, nullable=False),
    Column("updated_at", Double, nullable=False),
    UniqueConstraint("collection_id", "version_index"),
    Index("ix_artifacts_collection_digest", "collection_id", "digest"),
    Index("ix_artifacts_run", "run_pk"),
    Index("ix_artifacts_client_id", "client_id"),
)

artifact_aliases = Table(
    "artifact_aliases",
    metadata,
    Column("collection_id", Integer, ForeignKey("artifact_collections.id"), primary_key=True),
    Column("alias", String(128), primary_key=True),
    Column("artifact_id", Integer, ForeignKey("artifacts.id"), nullable=False),
    Index("ix_artifact_aliases_artifact", "artifact_id"),
)

artifact_files = Table(
    "artifact_files",
    metadata,
    Column("artifact_id", Integer, ForeignKey("artifacts.id"), primary_key=True),
    Column("name", String(1024), primary_key=True),
    Column("md5", String(32), nullable=False),
    Column("size", BigInteger, nullable=False),
)

artifact_blobs = Table(
    "artifact_blobs",
    metadata,
    Column("entity_id", Integer, ForeignKey("entities.id"), primary_key=True),
    Column("md5", String(32), primary_key=True),
    Column("size", BigInteger, nullable=False),
    Column("created_at", Double, nullable=False),
)

artifact_uses = Table(
    "artifact_uses",
    metadata,
    Column("run_pk", Integer, ForeignKey("runs.storage_id", ondelete="CASCADE"), primary_key=True),
    Column("artifact_id", Integer, ForeignKey("artifacts.id"), primary_key=True),
    Column("used_at", Double, nullable=False),
    Index("ix_artifact_uses_artifact", "artifact_id"),
)

ARTIFACT_TABLES = [
    artifact_collections, artifacts, artifact_aliases, artifact_files, artifact_blobs,
    artifact_uses,
]  # fmt: skip
