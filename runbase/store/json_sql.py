"""JSON documents in filters and ordering, on SQLite and on PostgreSQL.

A spot is a place in a JSON document: a path into a document column, or an element of an
array being scanned. ``SqliteJSON`` and ``PostgresJSON`` (both ``JSONOps``) turn questions
about a spot (what kind of value it holds, the value, its elements, its sort key) into SQL.
Kinds are JSON's: number, string, boolean, null, object, array. Paths from user keys are
always bound.
"""

from __future__ import annotations

import math
import operator
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Protocol, TypeVar

from sqlalchemy import (
    Boolean,
    ColumnElement,
    Numeric,
    String,
    Text,
    and_,
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

from runbase.documents import FLOAT_TAG, NAN_TAG, encode
from runbase.store.columns import RawJSONB

COMPARISONS: dict[str, Callable[[Any, Any], Any]] = {
    "eq": operator.eq,
    "gt": operator.gt,
    "gte": operator.ge,
    "lt": operator.lt,
    "lte": operator.le,
}

S = TypeVar("S")
Test = Callable[[Any], ColumnElement[bool]]
Tests = Mapping[str, Sequence[Test]]


@dataclass(frozen=True, eq=False)
class Screen:
    """A cheap condition that every match meets; ``exact`` when a value of the tested kind
    meets it only if it passes the test, which then need not run again."""

    condition: ColumnElement[bool]
    exact: bool


class JSONOps(Protocol[S]):
    """JSON in SQL on one database; ``S`` is its spot type."""

    def spot(self, doc: ColumnElement[Any], segments: Sequence[str]) -> S: ...

    def literal_spot(self, json_text: str) -> S: ...

    def missing(self, spot: S) -> ColumnElement[bool]: ...

    def value(self, spot: S, kind: str) -> ColumnElement[Any]: ...

    def bind(self, kind: str, value: Any) -> Any: ...

    def match(self, spot: S, tests: Tests, elements: Tests | None) -> ColumnElement[bool]: ...

    def screen(self, spot: S, op: str, values: Sequence[Any]) -> Screen | None: ...

    def equals(self, spot: S, value: Any) -> ColumnElement[bool]: ...

    def array_length(self, spot: S) -> ColumnElement[Any]: ...

    def sort_parts(self, spot: S) -> list[ColumnElement[Any]]: ...

    def json_text(self, spot: S) -> ColumnElement[Any]: ...


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


def _branches(
    spot: Any, tests: Tests, inner: ColumnElement[bool] | None
) -> dict[str, ColumnElement[bool]]:
    branches = {kind: or_(*(test(spot) for test in group)) for kind, group in tests.items()}
    if inner is not None:
        branches["array"] = or_(branches["array"], inner) if "array" in branches else inner
    return branches


def _is_index(segment: str) -> bool:
    return segment.isascii() and segment.isdigit() and (segment == "0" or segment[0] != "0")


@dataclass(frozen=True, eq=False)
class SqliteSpot:
    doc: ColumnElement[Any]
    path: ColumnElement[Any]
    kind: ColumnElement[Any]
    value: ColumnElement[Any]


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

    def spot(self, doc: ColumnElement[Any], segments: Sequence[str]) -> SqliteSpot:
        """The place at ``segments`` in ``doc``; a whole number also indexes an array."""
        head: ColumnElement[Any] | None = None
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

    def missing(self, spot: SqliteSpot) -> ColumnElement[Any]:
        return spot.kind.is_(None)

    def value(self, spot: SqliteSpot, kind: str) -> ColumnElement[Any]:
        return spot.value

    def bind(self, kind: str, value: Any) -> Any:
        return int(value) if kind == "boolean" else value

    def match(self, spot: SqliteSpot, tests: Tests, elements: Tests | None) -> ColumnElement[Any]:
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

    def equals(self, spot: SqliteSpot, value: Any) -> ColumnElement[Any]:
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

    def array_length(self, spot: SqliteSpot) -> ColumnElement[Any]:
        return func.json_array_length(spot.doc, spot.path)

    def sort_parts(self, spot: SqliteSpot) -> list[ColumnElement[Any]]:
        """Sort keys, NULL for missing, null and NaN: SQLite orders numbers (and booleans,
        as 0 and 1) before text (strings, and objects and arrays as JSON text)."""
        return [func.nullif(spot.value, literal(self.NAN_TEXT))]

    def json_text(self, spot: SqliteSpot) -> ColumnElement[Any]:
        return spot.doc.op("->", return_type=String)(spot.path)

    def _at(self, doc: ColumnElement[Any], path: ColumnElement[Any]) -> SqliteSpot:
        return SqliteSpot(doc, path, func.json_type(doc, path), func.json_extract(doc, path))

    def _child(self, spot: SqliteSpot, step: str) -> SqliteSpot:
        return self._at(spot.doc, spot.path + literal(step))

    def _join(self, head: ColumnElement[Any] | None, tail: str) -> ColumnElement[Any]:
        if head is None:
            return literal(tail, String)
        return head + literal(tail) if tail else head

    def _key_count(self, spot: SqliteSpot) -> ColumnElement[Any]:
        members = func.json_each(spot.doc, spot.path).table_valued("key")
        return select(func.count()).select_from(members).scalar_subquery()

    def _any_element(self, spot: SqliteSpot, tests: Tests) -> ColumnElement[Any]:
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
    value: ColumnElement[Any]


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

    def spot(self, doc: ColumnElement[Any], segments: Sequence[str]) -> PostgresSpot:
        doc = type_coerce(doc, RawJSONB())
        if not segments:
            return PostgresSpot(doc)
        path = bindparam(None, list(segments), type_=postgresql.ARRAY(Text))
        return PostgresSpot(doc.op("#>", return_type=RawJSONB())(path))

    def literal_spot(self, json_text: str) -> PostgresSpot:
        return PostgresSpot(self._jsonb(json_text))

    def missing(self, spot: PostgresSpot) -> ColumnElement[Any]:
        return spot.value.is_(None)

    def value(self, spot: PostgresSpot, kind: str) -> ColumnElement[Any]:
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

    def match(self, spot: PostgresSpot, tests: Tests, elements: Tests | None) -> ColumnElement[Any]:
        """Whether the value at ``spot`` passes one of the ``tests`` for its kind, or is an
        array with an element that passes one of the ``elements`` tests."""
        inner = self._any_element(spot, elements) if elements else None
        branches = _branches(spot, tests, inner)
        if not branches:
            return false()
        return case(branches, value=self._kind(spot.value), else_=false())

    def screen(self, spot: PostgresSpot, op: str, values: Sequence[Any]) -> Screen | None:
        return None

    def equals(self, spot: PostgresSpot, value: Any) -> ColumnElement[Any]:
        """Exact equality, kind included (``jsonb`` equality)."""
        return spot.value == self._jsonb(encode(value, tag_infinity=True))

    def array_length(self, spot: PostgresSpot) -> ColumnElement[Any]:
        x = spot.value
        return case((func.jsonb_typeof(x) == "array", func.jsonb_array_length(x)))

    def sort_parts(self, spot: PostgresSpot) -> list[ColumnElement[Any]]:
        """Sort keys as on SQLite: numbers and booleans, then text; NULL for missing, null
        and NaN."""
        x = spot.value
        kind = case((x == self._jsonb(encode(NAN_TAG, True)), null()), else_=self._kind(x))
        rank = case({"number": 0, "boolean": 0, "string": 1, "object": 1, "array": 1}, value=kind)
        number = case(
            (kind == "number", self.value(spot, "number")),
            (kind == "boolean", case((x == self._jsonb("true"), 1), else_=0)),
        )
        text = case((kind == "string", self._text(x)), (rank == 1, cast(x, Text)))
        return [rank, number, text.collate("C")]

    def json_text(self, spot: PostgresSpot) -> ColumnElement[Any]:
        return cast(spot.value, Text)

    def _kind(self, x: ColumnElement[Any]) -> ColumnElement[Any]:
        infinities = [self._jsonb(encode(tag, True)) for tag in self.INFINITIES]
        return case((x.in_(infinities), "number"), else_=func.jsonb_typeof(x))

    def _text(self, x: ColumnElement[Any]) -> ColumnElement[Any]:
        return x.op("#>>", return_type=Text)(bindparam(None, [], type_=postgresql.ARRAY(Text)))

    def _jsonb(self, json_text: str) -> ColumnElement[Any]:
        return cast(literal(json_text, Text), RawJSONB())

    def _any_element(self, spot: PostgresSpot, tests: Tests) -> ColumnElement[Any]:
        x = spot.value
        array = case((func.jsonb_typeof(x) == "array", x))
        element = func.jsonb_array_elements(array, type_=RawJSONB()).column_valued("elem")
        cond = self.match(PostgresSpot(element), tests, elements=None)
        return select(literal(1)).where(cond).exists()


def _pg_number(value: int | float) -> str:
    if isinstance(value, float) and math.isinf(value):
        return "Infinity" if value > 0 else "-Infinity"
    return repr(value)
