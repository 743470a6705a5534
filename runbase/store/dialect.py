"""What differs between SQLite and PostgreSQL: JSON documents and insert-or-ignore.

On SQLite, config and summary documents are stored as SQLite's binary JSONB (SQLite >= 3.45),
which makes ``json_extract`` in filters several times cheaper than on text. On PostgreSQL they
are ``jsonb``. NaN has no JSON form in either, so a NaN inside a document is stored as
``{"$float": "NaN"}`` (and on PostgreSQL ±Infinity as ``{"$float": "Infinity"}``) and turned
back into a float when read.
"""

from __future__ import annotations

import json
import math
from collections.abc import Callable
from typing import Any

import orjson
from sqlalchemy import (
    BigInteger,
    LargeBinary,
    Text,
    any_,
    bindparam,
    func,
    select,
)
from sqlalchemy.dialects import postgresql
from sqlalchemy.dialects import sqlite as sqlite_dialect
from sqlalchemy.ext.compiler import compiles
from sqlalchemy.sql.expression import FunctionElement
from sqlalchemy.types import TypeDecorator, UserDefinedType

FLOAT_TAG = "$float"


class RawJSONB(UserDefinedType):
    """PostgreSQL ``jsonb`` that passes JSON text through untouched (we encode it ourselves)."""

    cache_ok = True

    def get_col_spec(self, **kw):
        return "JSONB"


class _RawJSONBBlob(UserDefinedType):
    """SQLite JSONB blob; values pass through as JSON text, converted by SQL functions."""

    cache_ok = True

    def get_col_spec(self, **kw):
        return "BLOB"


class JSONDoc(TypeDecorator):
    """A JSON document column: JSONB on both databases, Python objects in and out."""

    impl = LargeBinary
    cache_ok = True

    def load_dialect_impl(self, dialect):
        if dialect.name == "postgresql":
            return dialect.type_descriptor(RawJSONB())
        return dialect.type_descriptor(_RawJSONBBlob())

    def bind_expression(self, bindvalue):
        return to_doc(bindvalue)

    def column_expression(self, column):
        return from_doc(column, self)

    def process_bind_param(self, value, dialect):
        if value is None:
            return None
        if dialect.name == "postgresql":
            return encode_doc(value, tag_infinity=True)
        return encode_doc(value, tag_infinity=False)

    def process_result_value(self, value, dialect):
        if value is None:
            return None
        if isinstance(value, (bytes, str)):
            return decode_doc(value)
        return _untag(value)


class to_doc(FunctionElement):
    """SQL that turns bound JSON text into the stored document form."""

    inherit_cache = True
    name = "to_doc"


class from_doc(FunctionElement):
    """SQL that turns a stored document into JSON text (typed, so results get decoded)."""

    inherit_cache = True
    name = "from_doc"

    def __init__(self, expr, type_) -> None:
        super().__init__(expr)
        self.type = type_


@compiles(to_doc)
def _to_doc_sqlite(element, compiler, **kw):
    return f"jsonb({compiler.process(element.clauses, **kw)})"


@compiles(to_doc, "postgresql")
def _to_doc_pg(element, compiler, **kw):
    return f"CAST({compiler.process(element.clauses, **kw)} AS jsonb)"


@compiles(from_doc)
def _from_doc_sqlite(element, compiler, **kw):
    return f"json({compiler.process(element.clauses, **kw)})"


@compiles(from_doc, "postgresql")
def _from_doc_pg(element, compiler, **kw):
    return f"CAST({compiler.process(element.clauses, **kw)} AS text)"


def encode_doc(value: Any, tag_infinity: bool) -> str:
    """JSON text for a document, with non-finite floats tagged where JSON cannot hold them."""
    try:
        if _finite(value):
            return orjson.dumps(value).decode()
        return json.dumps(_tag(value, tag_infinity), allow_nan=True)
    except TypeError as exc:
        raise TypeError(f"not JSON-serialisable: {exc}") from None


def decode_doc(raw: bytes | str) -> Any:
    """A document back from its JSON text (9e999 is read as infinity)."""
    try:
        value = orjson.loads(raw)
    except orjson.JSONDecodeError:
        value = json.loads(raw)
    tag = FLOAT_TAG.encode() if isinstance(raw, bytes) else FLOAT_TAG
    if tag in raw:
        return _untag(value)
    return value


def _finite(value: Any) -> bool:
    if isinstance(value, float):
        return math.isfinite(value)
    if isinstance(value, dict):
        return all(_finite(v) for v in value.values())
    if isinstance(value, (list, tuple)):
        return all(_finite(v) for v in value)
    return True


def _tag(value: Any, tag_infinity: bool) -> Any:
    if isinstance(value, float) and not math.isfinite(value):
        if math.isnan(value):
            return {FLOAT_TAG: "NaN"}
        if tag_infinity:
            return {FLOAT_TAG: "Infinity" if value > 0 else "-Infinity"}
        return value
    if isinstance(value, dict):
        return {k: _tag(v, tag_infinity) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_tag(v, tag_infinity) for v in value]
    return value


def _untag(value: Any) -> Any:
    if isinstance(value, dict):
        if len(value) == 1 and FLOAT_TAG in value:
            return float(value[FLOAT_TAG])
        return {k: _untag(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_untag(v) for v in value]
    return value


def in_list(dialect_name: str, column, values: list[int]):
    """``column IN (values)`` with the whole list bound as one parameter."""
    if dialect_name == "postgresql":
        return column == any_(bindparam(None, values, type_=postgresql.ARRAY(BigInteger)))
    items = func.json_each(bindparam(None, orjson.dumps(values).decode())).table_valued("value")
    return column.in_(select(items.c.value))


def insert_ignore(dialect_name: str, table):
    """An INSERT that skips rows whose primary or unique key already exists."""
    if dialect_name == "postgresql":
        return postgresql.insert(table).on_conflict_do_nothing()
    return sqlite_dialect.insert(table).on_conflict_do_nothing()


def insert_many(conn, table, columns: tuple[str, ...], rows: list[tuple], **constants: Any) -> int:
    """INSERT-or-ignore of many rows given as tuples of ``columns``, each also getting the
    ``constants``; returns how many were new.

    On SQLite the whole batch is bound as one JSON array and inserted by one statement
    (``INSERT ... SELECT ... FROM json_each(?)``): the driver then releases the GIL once per
    batch instead of once per row, so a logging thread is not slowed down while a batch is
    stored. Elsewhere the rows go to the driver's executemany.
    """
    names = tuple(constants)
    sql = _insert_sql(conn.dialect, table, names, columns)
    if conn.dialect.name == "sqlite":
        return conn.exec_driver_sql(sql, (*constants.values(), orjson.dumps(rows))).rowcount
    every = names + columns
    fixed = tuple(constants.values())
    params = [dict(zip(every, fixed + row, strict=True)) for row in rows]
    return conn.exec_driver_sql(sql, params).rowcount


_INSERT_SQL: dict[tuple, str] = {}


def _insert_sql(dialect, table, constants: tuple[str, ...], columns: tuple[str, ...]) -> str:
    key = (dialect.name, table.name, constants, columns)
    sql = _INSERT_SQL.get(key)
    if sql is None and dialect.name == "sqlite":
        names = ", ".join(f'"{c}"' for c in constants + columns)
        values = ", ".join(["?"] * len(constants) + [f"value ->> {i}" for i in range(len(columns))])
        sql = (
            f'INSERT INTO "{table.name}" ({names}) SELECT {values} FROM json_each(?) '
            "WHERE true ON CONFLICT DO NOTHING"
        )
    elif sql is None:
        every = constants + columns
        stmt = insert_ignore(dialect.name, table).values({c: bindparam(c) for c in every})
        sql = str(stmt.compile(dialect=dialect))
    _INSERT_SQL[key] = sql
    return sql


def fetch_all(conn, stmt) -> list[tuple]:
    """All rows of a SELECT as plain tuples, taken from the driver's cursor: for reads of many
    rows, where SQLAlchemy's per-row processing would cost more than the query (the
    statement still goes through SQLAlchemy's compiled cache)."""
    result = conn.execute(stmt)
    try:
        return result.cursor.fetchall()
    finally:
        result.close()


class Prepared:
    """A SELECT with named parameters, compiled once per database and run straight on the
    driver's cursor: for statements run many times in a row, such as the pages of a scan."""

    def __init__(self, build: Callable[[str], Any]) -> None:
        self._build = build
        self._compiled: dict[str, tuple[str, tuple[str, ...] | None, dict]] = {}

    def fetch_all(self, conn, **params: Any) -> list[tuple]:
        compiled = self._compiled.get(conn.dialect.name) or self._compile(conn.dialect)
        sql, order, defaults = compiled
        params = {**defaults, **params}
        bound = tuple(params[name] for name in order) if order is not None else params
        cursor = conn.connection.dbapi_connection.cursor()
        try:
            cursor.execute(sql, bound)
            return cursor.fetchall()
        finally:
            cursor.close()

    def _compile(self, dialect) -> tuple[str, tuple[str, ...] | None, dict]:
        compiled = self._build(dialect.name).compile(dialect=dialect)
        order = tuple(compiled.positiontup) if compiled.positiontup is not None else None
        defaults = {k: v for k, v in compiled.params.items() if v is not None}
        self._compiled[dialect.name] = (compiled.string, order, defaults)
        return self._compiled[dialect.name]


def json_list(dialect_name: str, name: str):
    """A parameter ``name`` holding a list of integers, usable as ``column.in_(...)``; bind
    its value with ``list_value``."""
    if dialect_name == "postgresql":
        return select(func.unnest(bindparam(name, type_=postgresql.ARRAY(BigInteger))))
    items = func.json_each(bindparam(name, type_=Text)).table_valued("value")
    return select(items.c.value)


def list_value(dialect_name: str, values: list[int]) -> Any:
    """The value of a ``json_list`` parameter: a JSON array on SQLite, a list on PostgreSQL."""
    return values if dialect_name == "postgresql" else orjson.dumps(values).decode()


def _sqlite_from_hint(self, table, text):
    return text


# SQLite's compiler drops table hints; ours are "INDEXED BY ix", which SQLite reads after the
# table name, exactly where SQLAlchemy puts a FROM hint.
sqlite_dialect.base.SQLiteCompiler.get_from_hint_text = _sqlite_from_hint
