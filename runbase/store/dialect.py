"""Everything that differs between SQLite and PostgreSQL, owned by one ``Dialect`` object.

A store holds one (``store.dialect``): ``SQLITE`` or ``POSTGRES``. It sets up the engine, and
knows JSON in SQL (``dialect.json``), insert-or-ignore, bulk inserts, list parameters,
``greatest``, the planner's index hints, how documents encode non-finite floats, and whether
writes go through one writer thread.
"""

from __future__ import annotations

import abc
import sqlite3
from collections.abc import Callable, Sequence
from types import ModuleType
from typing import Any

import orjson
from sqlalchemy import (
    BigInteger,
    ColumnElement,
    Connection,
    Engine,
    Select,
    Table,
    Text,
    any_,
    bindparam,
    create_engine,
    event,
    func,
    select,
)
from sqlalchemy.dialects import postgresql
from sqlalchemy.dialects import sqlite as sqlite_dialect
from sqlalchemy.dialects.sqlite.base import SQLiteCompiler
from sqlalchemy.engine.interfaces import DBAPIConnection
from sqlalchemy.pool import ConnectionPoolEntry
from sqlalchemy.sql.dml import Insert

from runbase import documents
from runbase.errors import CommError
from runbase.store.json_sql import JSONOps, PostgresJSON, SqliteJSON

MIN_SQLITE = (3, 45, 0)
Row = tuple[Any, ...]


class Dialect(abc.ABC):
    """One database's way of doing what the store needs."""

    json: JSONOps[Any]
    tag_infinity: bool
    single_writer: bool
    """Whether the writes of a process take turns on one connection (SQLite's one write
    lock)."""

    @abc.abstractmethod
    def create_engine(self, url: str) -> Engine:
        """An engine for ``url``, its connections set up for runbase."""

    def encode_document(self, value: Any) -> str:
        """A document's JSON text as this database stores it."""
        return documents.encode(value, self.tag_infinity)

    @abc.abstractmethod
    def insert(self, table: Table) -> sqlite_dialect.Insert | postgresql.Insert:
        """The database's INSERT, which knows ON CONFLICT."""

    def insert_ignore(self, table: Table) -> Insert:
        """An INSERT that skips rows whose primary or unique key already exists."""
        return self.insert(table).on_conflict_do_nothing()

    def upsert(self, table: Table, keys: Sequence[str], values: dict[str, Any]) -> Insert:
        """An INSERT of one row that updates the row holding the same ``keys`` instead."""
        stmt = self.insert(table).values(values)
        changed = {k: stmt.excluded[k] for k in values if k not in keys}
        return stmt.on_conflict_do_update(index_elements=list(keys), set_=changed)

    @abc.abstractmethod
    def insert_many(
        self, conn: Connection, table: Table, columns: tuple[str, ...], rows: list[Row],
        **constants: Any,
    ) -> int:  # fmt: skip
        """INSERT-or-ignore of many rows given as tuples of ``columns``, each also getting the
        ``constants``; returns how many were new."""

    @abc.abstractmethod
    def in_list(self, column: ColumnElement[Any], values: list[int]) -> ColumnElement[bool]:
        """``column IN (values)`` with the whole list bound as one parameter."""

    @abc.abstractmethod
    def json_list(self, name: str) -> Select[Any]:
        """A parameter ``name`` holding a list of integers, usable as ``column.in_(...)``;
        bind its value with ``list_value``."""

    @abc.abstractmethod
    def list_value(self, values: list[int]) -> Any:
        """The value of a ``json_list`` parameter."""

    @abc.abstractmethod
    def greatest(self, column: Any, value: Any) -> ColumnElement[Any]:
        """The larger of two values."""

    def use_index(self, stmt: Select[Any], table: Table, index: str) -> Select[Any]:
        """``stmt`` reading ``table`` through ``index`` (where the planner takes hints)."""
        return stmt

    def no_index(self, stmt: Select[Any], table: Table) -> Select[Any]:
        """``stmt`` reading ``table`` straight through (where the planner takes hints)."""
        return stmt

    def runs_statistics(self, conn: Connection) -> tuple[int, int] | None:
        """(runs when last analyzed, average runs per project), where the planner needs
        them refreshed by us; None elsewhere."""
        return None

    def analyze_runs(self, conn: Connection) -> None:  # noqa: B027 (most need nothing)
        """Refresh the planner's statistics of the runs table."""


class HintingSQLiteCompiler(SQLiteCompiler):
    """SQLite's compiler, keeping table hints: ours are ``INDEXED BY ix`` and ``NOT INDEXED``,
    which SQLite reads after the table name, exactly where SQLAlchemy puts a FROM hint."""

    def get_from_hint_text(self, table: Any, text: str | None) -> str | None:
        return text


def sqlite_module() -> ModuleType:
    """The newest SQLite binding at hand: pysqlite3 when installed, else the stdlib's."""
    module: ModuleType
    try:
        import pysqlite3.dbapi2 as module  # type: ignore[no-redef]
    except ImportError:
        module = sqlite3
    if module.sqlite_version_info < MIN_SQLITE:
        raise CommError(
            f"runbase needs SQLite >= {'.'.join(map(str, MIN_SQLITE))} for JSONB; "
            f"this Python has {module.sqlite_version}: pip install pysqlite3-binary"
        )
    return module


class SqliteDialect(Dialect):
    """SQLite in WAL mode: ``BEGIN IMMEDIATE`` for writes, one writer thread per process."""

    json = SqliteJSON()
    tag_infinity = False
    single_writer = True

    def create_engine(self, url: str) -> Engine:
        engine = create_engine(
            url,
            module=sqlite_module(),
            connect_args={"timeout": 60, "check_same_thread": False},
            pool_size=8,
            max_overflow=16,
        )
        engine.dialect.statement_compiler = HintingSQLiteCompiler
        event.listen(engine, "connect", _on_sqlite_connect)
        event.listen(engine, "begin", _on_sqlite_begin)
        return engine

    def insert(self, table: Table) -> sqlite_dialect.Insert:
        return sqlite_dialect.insert(table)

    def insert_many(
        self, conn: Connection, table: Table, columns: tuple[str, ...], rows: list[Row],
        **constants: Any,
    ) -> int:  # fmt: skip
        # The whole batch is bound as one JSON array and inserted by one statement: the
        # driver then releases the GIL once per batch instead of once per row, so a logging
        # thread is not slowed down while a batch is stored.
        key = (table.name, tuple(constants), columns)
        sql = _SQLITE_INSERTS.get(key)
        if sql is None:
            names = ", ".join(f'"{c}"' for c in (*constants, *columns))
            values = ", ".join(
                ["?"] * len(constants) + [f"value ->> {i}" for i in range(len(columns))]
            )
            sql = _SQLITE_INSERTS[key] = (
                f'INSERT INTO "{table.name}" ({names}) SELECT {values} FROM json_each(?) '
                "WHERE true ON CONFLICT DO NOTHING"
            )
        params = (*constants.values(), orjson.dumps(rows))
        return int(conn.exec_driver_sql(sql, params).rowcount)

    def in_list(self, column: ColumnElement[Any], values: list[int]) -> ColumnElement[bool]:
        items = func.json_each(bindparam(None, orjson.dumps(values).decode())).table_valued("value")
        return column.in_(select(items.c.value))

    def json_list(self, name: str) -> Select[Any]:
        items = func.json_each(bindparam(name, type_=Text)).table_valued("value")
        return select(items.c.value)

    def list_value(self, values: list[int]) -> Any:
        return orjson.dumps(values).decode()

    def greatest(self, column: Any, value: Any) -> ColumnElement[Any]:
        return func.max(column, value)

    def use_index(self, stmt: Select[Any], table: Table, index: str) -> Select[Any]:
        return stmt.with_hint(table, f"INDEXED BY {index}", "sqlite")

    def no_index(self, stmt: Select[Any], table: Table) -> Select[Any]:
        return stmt.with_hint(table, "NOT INDEXED", "sqlite")

    def runs_statistics(self, conn: Connection) -> tuple[int, int] | None:
        has_stats = conn.exec_driver_sql(
            "SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = 'sqlite_stat1'"
        ).scalar()
        stat = (
            has_stats
            and conn.exec_driver_sql(
                "SELECT stat FROM sqlite_stat1 WHERE tbl = 'runs' AND idx = ?",
                ("ix_runs_project_created",),
            ).scalar()
        )
        if not stat:
            return 0, 0
        rows, per_project = (int(part) for part in str(stat).split()[:2])
        return rows, per_project

    def analyze_runs(self, conn: Connection) -> None:
        conn.exec_driver_sql("ANALYZE runs")


_SQLITE_INSERTS: dict[tuple[str, tuple[str, ...], tuple[str, ...]], str] = {}


def _on_sqlite_connect(dbapi_conn: DBAPIConnection, _record: ConnectionPoolEntry) -> None:
    dbapi_conn.isolation_level = None  # we issue BEGIN ourselves
    cursor = dbapi_conn.cursor()
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute("PRAGMA synchronous=NORMAL")
    cursor.execute("PRAGMA foreign_keys=ON")
    cursor.execute("PRAGMA busy_timeout=60000")
    cursor.close()


def _on_sqlite_begin(conn: Connection) -> None:
    immediate = conn.get_execution_options().get("write")
    conn.exec_driver_sql("BEGIN IMMEDIATE" if immediate else "BEGIN")


class PostgresDialect(Dialect):
    """PostgreSQL: writes in the caller's thread, concurrent updates serialised by row locks."""

    json = PostgresJSON()
    tag_infinity = True
    single_writer = False

    def create_engine(self, url: str) -> Engine:
        return create_engine(url, pool_pre_ping=True)

    def insert(self, table: Table) -> postgresql.Insert:
        return postgresql.insert(table)

    def insert_many(
        self, conn: Connection, table: Table, columns: tuple[str, ...], rows: list[Row],
        **constants: Any,
    ) -> int:  # fmt: skip
        every = (*constants, *columns)
        key = (table.name, tuple(constants), columns)
        sql = _POSTGRES_INSERTS.get(key)
        if sql is None:
            stmt = self.insert_ignore(table).values({c: bindparam(c) for c in every})
            sql = _POSTGRES_INSERTS[key] = str(stmt.compile(dialect=conn.dialect))
        fixed = tuple(constants.values())
        params = [dict(zip(every, fixed + row, strict=True)) for row in rows]
        return int(conn.exec_driver_sql(sql, params).rowcount)

    def in_list(self, column: ColumnElement[Any], values: list[int]) -> ColumnElement[bool]:
        return column == any_(bindparam(None, values, type_=postgresql.ARRAY(BigInteger)))

    def json_list(self, name: str) -> Select[Any]:
        return select(func.unnest(bindparam(name, type_=postgresql.ARRAY(BigInteger))))

    def list_value(self, values: list[int]) -> Any:
        return values

    def greatest(self, column: Any, value: Any) -> ColumnElement[Any]:
        return func.greatest(column, value)


_POSTGRES_INSERTS: dict[tuple[str, tuple[str, ...], tuple[str, ...]], str] = {}

SQLITE = SqliteDialect()
POSTGRES = PostgresDialect()


def dialect_for(url: str) -> Dialect:
    """The dialect of a database URL."""
    return SQLITE if url.startswith("sqlite") else POSTGRES


def fetch_all(conn: Connection, stmt: Select[Any]) -> list[Row]:
    """All rows of a SELECT as plain tuples, taken from the driver's cursor: for reads of many
    rows, where SQLAlchemy's per-row processing would cost more than the query (the
    statement still goes through SQLAlchemy's compiled cache)."""
    result = conn.execute(stmt)
    try:
        return list(result.cursor.fetchall())
    finally:
        result.close()


class Prepared:
    """A SELECT with named parameters, compiled once per database and run straight on the
    driver's cursor: for statements run many times in a row, such as the pages of a scan."""

    def __init__(self, build: Callable[[Dialect], Select[Any]]) -> None:
        self._build = build
        self._compiled: dict[tuple[Dialect, type], tuple[str, tuple[str, ...] | None, dict[str, Any]]] = {}  # fmt: skip  # noqa: E501

    def fetch_all(self, conn: Connection, dialect: Dialect, **params: Any) -> list[Row]:
        key = (dialect, type(conn.dialect))
        compiled = self._compiled.get(key) or self._compile(conn, dialect, key)
        sql, order, defaults = compiled
        params = {**defaults, **params}
        bound = tuple(params[name] for name in order) if order is not None else params
        cursor = conn.connection.dbapi_connection.cursor()  # type: ignore[union-attr]
        try:
            cursor.execute(sql, bound)
            return list(cursor.fetchall())
        finally:
            cursor.close()

    def _compile(
        self, conn: Connection, dialect: Dialect, key: tuple[Dialect, type]
    ) -> tuple[str, tuple[str, ...] | None, dict[str, Any]]:
        compiled = self._build(dialect).compile(dialect=conn.dialect)
        positions = compiled.positiontup
        order = tuple(positions) if positions is not None else None
        defaults = {k: v for k, v in compiled.params.items() if v is not None}
        self._compiled[key] = (compiled.string, order, defaults)
        return self._compiled[key]
