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
import operator
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import orjson
from sqlalchemy import (
    BigInteger,
    Boolean,
    ColumnElement,
    LargeBinary,
    Numeric,
    String,
    Text,
    and_,
    any_,
    bindparam,
    case,
    cast,
    false,
    func,
    literal,
    null,
    or_,
    select,
    true,
    type_coerce,
)
from sqlalchemy.dialects import postgresql
from sqlalchemy.dialects import sqlite as sqlite_dialect
from sqlalchemy.ext.compiler import compiles
from sqlalchemy.sql.expression import FunctionElement
from sqlalchemy.types import TypeDecorator, UserDefinedType

FLOAT_TAG = "$float"


class _RawJSONB(UserDefinedType):
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
            return dialect.type_descriptor(_RawJSONB())
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


# JSON documents in filters and ordering.
#
# A spot is a place in a JSON document: a path into a document column, or an element of an
# array being scanned. ``SqliteJSON`` and ``PostgresJSON`` turn questions about a spot (what
# kind of value it holds, the value, its elements, its sort key) into SQL. Kinds are JSON's:
# number, string, boolean, null, object, array. Paths from user keys are always bound.

NAN_TAG = {FLOAT_TAG: "NaN"}
COMPARISONS = {
    "eq": operator.eq,
    "gt": operator.gt,
    "gte": operator.ge,
    "lt": operator.lt,
    "lte": operator.le,
}

Test = Callable[[Any], ColumnElement]
Tests = Mapping[str, Sequence[Test]]


@dataclass(frozen=True, eq=False)
class Screen:
    """A cheap condition that every match meets; ``exact`` when a value of the tested kind
    meets it only if it passes the test, which then need not run again."""

    condition: ColumnElement
    exact: bool


def json_dialect(dialect_name: str) -> JSONDialect:
    """The JSON helpers for a database (``"sqlite"`` or ``"postgresql"``)."""
    if dialect_name == "postgresql":
        return PostgresJSON()
    if dialect_name == "sqlite":
        return SqliteJSON()
    raise ValueError(f"unsupported database dialect {dialect_name!r}")


def json_kind(value: Any) -> str:
    """The JSON kind of a Python value."""
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "boolean"
    if isinstance(value, (int, float)):
        return "number"
    if isinstance(value, str):
        return "string"
    if isinstance(value, (list, tuple)):
        return "array"
    return "object"


def _branches(spot: Any, tests: Tests, inner: ColumnElement | None) -> dict[str, ColumnElement]:
    branches = {kind: or_(*(test(spot) for test in group)) for kind, group in tests.items()}
    if inner is not None:
        branches["array"] = or_(branches["array"], inner) if "array" in branches else inner
    return branches


def _is_index(segment: str) -> bool:
    return segment.isascii() and segment.isdigit() and (segment == "0" or segment[0] != "0")


@dataclass(frozen=True, eq=False)
class SqliteSpot:
    doc: ColumnElement
    path: ColumnElement
    kind: ColumnElement
    value: ColumnElement


class SqliteJSON:
    """JSON on SQLite: ``json_type``/``json_extract`` on JSONB, arrays through ``json_each``."""

    TYPES = {
        "number": ("integer", "real"),
        "string": ("text",),
        "boolean": ("true", "false"),
        "null": ("null",),
        "object": ("object",),
        "array": ("array",),
    }
    NAN_TEXT = '{"$float":"NaN"}'

    def spot(self, doc: ColumnElement, segments: Sequence[str]) -> SqliteSpot:
        """The place at ``segments`` in ``doc``; a whole number also indexes an array."""
        head: ColumnElement | None = None
        tail = "$"
        for segment in segments:
            if _is_index(segment):
                prefix = self._join(head, tail)
                is_array = func.json_type(doc, prefix) == "array"
                head = case(
                    (is_array, prefix + literal(f"[{segment}]")),
                    else_=prefix + literal(_sqlite_label(segment)),
                )
                tail = ""
            else:
                tail += _sqlite_label(segment)
        return self._at(doc, self._join(head, tail))

    def literal_spot(self, json_text: str) -> SqliteSpot:
        return self._at(literal(json_text, String), literal("$"))

    def missing(self, spot: SqliteSpot) -> ColumnElement:
        return spot.kind.is_(None)

    def value(self, spot: SqliteSpot, kind: str) -> ColumnElement:
        return spot.value

    def bind(self, kind: str, value: Any) -> Any:
        return int(value) if kind == "boolean" else value

    def match(self, spot: SqliteSpot, tests: Tests, elements: Tests | None) -> ColumnElement:
        """Whether the value at ``spot`` passes one of the ``tests`` for its kind, or is an
        array with an element that passes one of the ``elements`` tests."""
        inner = self._any_element(spot, elements) if elements else None
        branches = _branches(spot, tests, inner)
        whens = {name: cond for kind, cond in branches.items() for name in self.TYPES[kind]}
        if not whens:
            return false()
        return case(whens, value=spot.kind, else_=false())

    def screen(self, spot: SqliteSpot, op: str, values: Sequence[Any]) -> Screen | None:
        """A one-lookup first pass before ``match``, met by every array and by every value
        of the kind of ``values`` that passes ``op``; None where there is none."""
        x = spot.value
        kind = json_kind(values[0])
        if kind == "string" and op == "eq":
            return Screen(x.between(min(*values, "["), max(*values, "\\")), exact=False)
        if kind != "number":
            return None
        if op == "eq":
            listed = [literal(v) for v in (*values, "")]
            return Screen(func.min(x, literal("")).in_(listed), exact=True)
        if op in ("gt", "gte"):
            return Screen(COMPARISONS[op](x, values[0]), exact=True)
        above = values[0] if op == "lt" else _next_float_up(values[0])
        return None if above is None else Screen(~x.between(above, literal("[")), exact=True)

    def equals(self, spot: SqliteSpot, value: Any) -> ColumnElement:
        """Exact equality, kind included; objects compare without regard to key order."""
        kind = json_kind(value)
        if kind == "array":
            parts = [self.equals(self._child(spot, f"[{i}]"), v) for i, v in enumerate(value)]
            cond = and_(self.array_length(spot) == len(value), *parts)
        elif kind == "object":
            parts = [self.equals(self._child(spot, _sqlite_label(k)), v) for k, v in value.items()]
            cond = and_(self._key_count(spot) == len(value), *parts)
        elif kind == "null":
            cond = true()
        elif isinstance(value, float) and math.isnan(value):
            return self.equals(spot, NAN_TAG)
        else:
            cond = spot.value == self.bind(kind, value)
        return and_(spot.kind.in_(self.TYPES[kind]), cond)

    def array_length(self, spot: SqliteSpot) -> ColumnElement:
        return func.json_array_length(spot.doc, spot.path)

    def sort_parts(self, spot: SqliteSpot) -> list[ColumnElement]:
        """Sort keys, NULL for missing, null and NaN: SQLite orders numbers (and booleans,
        as 0 and 1) before text (strings, and objects and arrays as JSON text)."""
        return [func.nullif(spot.value, literal(self.NAN_TEXT))]

    def json_text(self, spot: SqliteSpot) -> ColumnElement:
        return spot.doc.op("->", return_type=String)(spot.path)

    def _at(self, doc: ColumnElement, path: ColumnElement) -> SqliteSpot:
        return SqliteSpot(doc, path, func.json_type(doc, path), func.json_extract(doc, path))

    def _child(self, spot: SqliteSpot, step: str) -> SqliteSpot:
        return self._at(spot.doc, spot.path + literal(step))

    def _join(self, head: ColumnElement | None, tail: str) -> ColumnElement:
        if head is None:
            return literal(tail, String)
        return head + literal(tail) if tail else head

    def _key_count(self, spot: SqliteSpot) -> ColumnElement:
        members = func.json_each(spot.doc, spot.path).table_valued("key")
        return select(func.count()).select_from(members).scalar_subquery()

    def _any_element(self, spot: SqliteSpot, tests: Tests) -> ColumnElement:
        each = func.json_each(spot.doc, spot.path).table_valued("type", "atom", "fullkey")
        element = SqliteSpot(spot.doc, each.c.fullkey, each.c.type, each.c.atom)
        cond = self.match(element, tests, elements=None)
        return select(literal(1)).select_from(each).where(cond).exists()


def _sqlite_label(key: str) -> str:
    """A quoted SQLite JSON path label; quotes, backslashes and controls are escaped."""
    escaped = "".join(
        "\\\\" if ch == "\\" else f"\\u{ord(ch):04x}" if ch == '"' or ord(ch) < 0x20 else ch
        for ch in key
    )
    return f'."{escaped}"'


def _next_float_up(value: float) -> float | None:
    """The least float above ``value``, where every number up to ``value`` is below it."""
    if not math.isfinite(value) or abs(value) >= 2**53:
        return None
    return math.nextafter(float(value), math.inf)


@dataclass(frozen=True, eq=False)
class PostgresSpot:
    value: ColumnElement


class PostgresJSON:
    """JSON on PostgreSQL: ``jsonb`` with ``#>`` paths bound as ``text[]``."""

    TYPES = {
        "number": ("number",),
        "string": ("string",),
        "boolean": ("boolean",),
        "null": ("null",),
        "object": ("object",),
        "array": ("array",),
    }
    INFINITIES = ({FLOAT_TAG: "Infinity"}, {FLOAT_TAG: "-Infinity"})

    def spot(self, doc: ColumnElement, segments: Sequence[str]) -> PostgresSpot:
        doc = type_coerce(doc, _RawJSONB())
        if not segments:
            return PostgresSpot(doc)
        path = bindparam(None, list(segments), type_=postgresql.ARRAY(Text))
        return PostgresSpot(doc.op("#>", return_type=_RawJSONB())(path))

    def literal_spot(self, json_text: str) -> PostgresSpot:
        return PostgresSpot(self._jsonb(json_text))

    def missing(self, spot: PostgresSpot) -> ColumnElement:
        return spot.value.is_(None)

    def value(self, spot: PostgresSpot, kind: str) -> ColumnElement:
        x = spot.value
        if kind == "number":
            tagged = cast(x.op("->>", return_type=Text)(literal(FLOAT_TAG)), Numeric)
            return case((func.jsonb_typeof(x) == "number", cast(x, Numeric)), else_=tagged)
        if kind == "boolean":
            return cast(self._text(x), Boolean)
        return self._text(x)

    def bind(self, kind: str, value: Any) -> Any:
        if kind == "number":
            return cast(literal(_pg_number(value), Text), Numeric)
        if kind == "boolean":
            return literal(value, Boolean)
        return literal(value, Text)

    def match(self, spot: PostgresSpot, tests: Tests, elements: Tests | None) -> ColumnElement:
        """Whether the value at ``spot`` passes one of the ``tests`` for its kind, or is an
        array with an element that passes one of the ``elements`` tests."""
        inner = self._any_element(spot, elements) if elements else None
        branches = _branches(spot, tests, inner)
        if not branches:
            return false()
        return case(branches, value=self._kind(spot.value), else_=false())

    def screen(self, spot: PostgresSpot, op: str, values: Sequence[Any]) -> Screen | None:
        return None

    def equals(self, spot: PostgresSpot, value: Any) -> ColumnElement:
        """Exact equality, kind included (``jsonb`` equality)."""
        return spot.value == self._jsonb(encode_doc(value, tag_infinity=True))

    def array_length(self, spot: PostgresSpot) -> ColumnElement:
        x = spot.value
        return case((func.jsonb_typeof(x) == "array", func.jsonb_array_length(x)))

    def sort_parts(self, spot: PostgresSpot) -> list[ColumnElement]:
        """Sort keys as on SQLite: numbers and booleans, then text; NULL for missing, null
        and NaN."""
        x = spot.value
        kind = case((x == self._jsonb(encode_doc(NAN_TAG, True)), null()), else_=self._kind(x))
        rank = case({"number": 0, "boolean": 0, "string": 1, "object": 1, "array": 1}, value=kind)
        number = case(
            (kind == "number", self.value(spot, "number")),
            (kind == "boolean", case((x == self._jsonb("true"), 1), else_=0)),
        )
        text = case((kind == "string", self._text(x)), (rank == 1, cast(x, Text)))
        return [rank, number, text.collate("C")]

    def json_text(self, spot: PostgresSpot) -> ColumnElement:
        return cast(spot.value, Text)

    def _kind(self, x: ColumnElement) -> ColumnElement:
        infinities = [self._jsonb(encode_doc(tag, True)) for tag in self.INFINITIES]
        return case((x.in_(infinities), "number"), else_=func.jsonb_typeof(x))

    def _text(self, x: ColumnElement) -> ColumnElement:
        return x.op("#>>", return_type=Text)(bindparam(None, [], type_=postgresql.ARRAY(Text)))

    def _jsonb(self, json_text: str) -> ColumnElement:
        return cast(literal(json_text, Text), _RawJSONB())

    def _any_element(self, spot: PostgresSpot, tests: Tests) -> ColumnElement:
        x = spot.value
        array = case((func.jsonb_typeof(x) == "array", x))
        element = func.jsonb_array_elements(array, type_=_RawJSONB()).column_valued("elem")
        cond = self.match(PostgresSpot(element), tests, elements=None)
        return select(literal(1)).where(cond).exists()


def _pg_number(value: int | float) -> str:
    if isinstance(value, float) and math.isinf(value):
        return "Infinity" if value > 0 else "-Infinity"
    return repr(value)


JSONDialect = SqliteJSON | PostgresJSON
Spot = SqliteSpot | PostgresSpot


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
