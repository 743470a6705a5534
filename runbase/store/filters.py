r"""MongoDB-style run filters, compiled to SQL.

``compile_filters({"config.lr": {"$lt": 0.01}, "state": "finished"}, SQLITE)`` is a condition
over ``runs JOIN projects JOIN entities``. The filter is first parsed into a small tree
(``Compare``, ``In``, ``And``, ...), which rejects what is malformed with an ``InvalidFilter``
naming the part, and the tree is then compiled through the database's JSON helpers.

Keys (``runbase.fields``):

- ``config.KEY`` (``config.KEY.value`` is the same path: W&B wraps config values in
  ``{"value": ...}``), ``summary_metrics.KEY`` or ``summary.KEY``, and ``tags``;
- run columns: ``state``, ``display_name`` (``displayName``), ``createdAt``
  (``created_at``), ``heartbeatAt`` (``heartbeat_at``), ``entity``, ``username``, ``group``,
  ``jobType`` (``job_type``), ``sweep``, and ``name`` or ``id``: the run's id (``name`` is
  W&B's word for it in filters, though ``Run.name`` is the display name).

Dots separate nested keys. A backslash makes the next dot or backslash part of the key:
``config.a\.b`` is the top-level key ``a.b``, ``config.a\\`` the key ``a\``. A part that is a
whole number also indexes an array: ``config.layers.0``.

Operators: ``$and $or $nor $not $eq $ne $gt $gte $lt $lte $in $nin $exists $regex $options
$all $size``. Semantics are MongoDB's: a number never equals or orders against a string and
``true`` is not ``1``; a field holding an array matches when the array or any element does;
``$ne``, ``$nin`` and ``$not`` match runs that lack the field, ``{"field": None}`` matches a
missing or null field. Times take epoch seconds or ISO 8601 strings (UTC unless they carry a
zone). ``$regex`` uses Python's ``re`` syntax on SQLite; ``$options`` takes ``imsx``. Objects
compare equal whatever their key order, and a path does not reach into objects held in arrays.
"""

from __future__ import annotations

import functools
import math
import re
from collections import defaultdict
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import date, datetime, timezone
from typing import Any, TypeVar

from sqlalchemy import ColumnElement, and_, bindparam, case, false, func, not_, or_, true
from typing_extensions import assert_never

from runbase.documents import NAN_TAG
from runbase.errors import InvalidFilter
from runbase.fields import ColumnField, DocField, Field, parse_field
from runbase.store import schema
from runbase.store.dialect import Dialect
from runbase.store.json_sql import COMPARISONS, JSONOps, Tests, json_kind

S = TypeVar("S")


@dataclass(frozen=True)
class Compare:
    """``field <op> value``; ``op`` is ``eq``, ``gt``, ``gte``, ``lt`` or ``lte``."""

    field: Field
    op: str
    value: Any


@dataclass(frozen=True)
class In:
    field: Field
    values: tuple[Any, ...]


@dataclass(frozen=True)
class All:
    field: Field
    values: tuple[Any, ...]


@dataclass(frozen=True)
class Exists:
    field: Field
    present: bool


@dataclass(frozen=True)
class Regex:
    """A search of string values; ``pattern`` carries its flags inline (``(?i)...``)."""

    field: Field
    pattern: str


@dataclass(frozen=True)
class Size:
    field: Field
    size: int


@dataclass(frozen=True)
class And:
    items: tuple[Node, ...]


@dataclass(frozen=True)
class Or:
    items: tuple[Node, ...]


@dataclass(frozen=True)
class Nor:
    items: tuple[Node, ...]


@dataclass(frozen=True)
class Not:
    item: Node


Leaf = Compare | In | All | Exists | Regex | Size
Node = Leaf | And | Or | Nor | Not


def compile_filters(
    filters: dict[str, Any], dialect: Dialect, stale_before: float | None = None
) -> ColumnElement[bool]:
    """The SQL condition for a MongoDB-style filter; ``{}`` is ``true()``. With
    ``stale_before``, ``state`` is the state a run reads as (``run_state``)."""
    return _compile(parse_filters(filters), dialect.json, stale_before)


def run_state(stale_before: float | None) -> ColumnElement[str]:
    """A run's state as read: a running run whose heartbeat is older than ``stale_before``
    (seconds since the epoch) reads ``crashed``. The time is a bound parameter."""
    state = schema.runs.c.state
    if stale_before is None:
        return state
    stale = (state == "running") & (schema.runs.c.heartbeat_at < bindparam(None, stale_before))
    return case((stale, "crashed"), else_=state)


def field_column(field: ColumnField, stale_before: float | None) -> ColumnElement[Any]:
    """The SQL value of a run column field."""
    if (field.table, field.column) == ("runs", "state"):
        return run_state(stale_before)
    column: ColumnElement[Any] = getattr(schema, field.table).c[field.column]
    return column


# Parsing


def parse_filters(filters: Any) -> Node:
    """The filter as a tree; raises ``InvalidFilter`` naming the malformed part."""
    if not isinstance(filters, dict):
        raise InvalidFilter(f"a filter must be an object, got {_type_name(filters)}")
    return _conjunction([_parse_entry(key, value) for key, value in filters.items()])


def _parse_entry(key: Any, value: Any) -> Node:
    if isinstance(key, str) and key.startswith("$"):
        return _parse_logical(key, value)
    return _parse_condition(parse_field(key), value)


_LOGICAL: dict[str, type[And] | type[Or] | type[Nor]] = {"$and": And, "$or": Or, "$nor": Nor}


def _parse_logical(op: str, value: Any) -> Node:
    if op == "$not":
        if not isinstance(value, dict) or not value:
            raise InvalidFilter(f"$not needs a non-empty filter object, got {_type_name(value)}")
        return Not(parse_filters(value))
    combine = _LOGICAL.get(op)
    if combine is None:
        raise InvalidFilter(f"unknown operator {op!r}")
    if not isinstance(value, list) or not value:
        raise InvalidFilter(f"{op} needs a non-empty list of filters, got {_type_name(value)}")
    items = []
    for i, item in enumerate(value):
        if not isinstance(item, dict):
            raise InvalidFilter(f"{op}[{i}] must be a filter object, got {_type_name(item)}")
        items.append(parse_filters(item))
    return combine(tuple(items))


def _parse_condition(field: Field, value: Any) -> Node:
    if isinstance(value, re.Pattern):
        return _regex(field, value, "")
    if _is_operators(field, value):
        return _parse_operators(field, value)
    return _compare(field, "eq", value)


def _is_operators(field: Field, value: Any) -> bool:
    if not isinstance(value, dict) or not value:
        return False
    dollars = [isinstance(k, str) and k.startswith("$") for k in value]
    if any(dollars) and not all(dollars):
        raise InvalidFilter(f"{field.name}: cannot mix operators and keys in {list(value)}")
    return all(dollars)


def _parse_operators(field: Field, ops: dict[str, Any]) -> Node:
    nodes: list[Node] = []
    for op, arg in ops.items():
        if op == "$options":
            if "$regex" not in ops:
                raise InvalidFilter(f"{field.name}: $options needs $regex")
        elif op == "$regex":
            nodes.append(_regex(field, arg, ops.get("$options", "")))
        elif op in _OPERATORS:
            nodes.append(_OPERATORS[op](field, arg))
        else:
            raise InvalidFilter(f"{field.name}: unknown operator {op!r}")
    return _conjunction(nodes)


def _compare(field: Field, op: str, value: Any) -> Compare:
    value = _value(field, f"${op}", value)
    if op != "eq" and isinstance(value, (list, tuple, dict)):
        raise InvalidFilter(f"{field.name}: ${op} needs a number, string, boolean or null")
    return Compare(field, op, value)


def _in(field: Field, values: Any, op: str = "$in") -> Node:
    if not isinstance(values, (list, tuple)):
        raise InvalidFilter(f"{field.name}: {op} needs a list, got {_type_name(values)}")
    patterns = [_regex(field, v, "") for v in values if isinstance(v, re.Pattern)]
    literals = tuple(_value(field, op, v) for v in values if not isinstance(v, re.Pattern))
    for v in literals:
        if isinstance(v, dict) and any(str(k).startswith("$") for k in v):
            raise InvalidFilter(f"{field.name}: {op} takes values, not operators")
    if patterns:
        return Or((In(field, literals), *patterns))
    return In(field, literals)


def _all(field: Field, values: Any) -> All:
    if not isinstance(values, (list, tuple)):
        raise InvalidFilter(f"{field.name}: $all needs a list, got {_type_name(values)}")
    return All(field, tuple(_value(field, "$all", v) for v in values))


def _exists(field: Field, value: Any) -> Exists:
    if not isinstance(value, int) or value not in (0, 1):
        raise InvalidFilter(f"{field.name}: $exists needs true or false, got {value!r}")
    return Exists(field, bool(value))


def _size(field: Field, value: Any) -> Size:
    if isinstance(value, bool) or not isinstance(value, int) or value < 0:
        raise InvalidFilter(f"{field.name}: $size needs a non-negative integer, got {value!r}")
    return Size(field, value)


def _not(field: Field, value: Any) -> Not:
    if isinstance(value, re.Pattern):
        return Not(_regex(field, value, ""))
    if not isinstance(value, dict) or not value or not _is_operators(field, value):
        raise InvalidFilter(f"{field.name}: $not needs an operator object or a regex")
    return Not(_parse_operators(field, value))


def _regex(field: Field, pattern: Any, options: Any) -> Regex:
    if isinstance(field, ColumnField) and field.kind == "time":
        raise InvalidFilter(f"{field.name}: $regex needs a string field")
    if isinstance(pattern, re.Pattern):
        options = "".join(f for f, bit in _REGEX_FLAGS.items() if pattern.flags & bit)
        pattern = pattern.pattern
    if not isinstance(pattern, str):
        raise InvalidFilter(f"{field.name}: $regex needs a string, got {_type_name(pattern)}")
    if not isinstance(options, str) or set(options) - set(_REGEX_FLAGS):
        raise InvalidFilter(f"{field.name}: $options takes letters of 'imsx', got {options!r}")
    inline = f"(?{''.join(sorted(set(options)))})" if options else ""
    try:
        re.compile(inline + pattern)
    except re.error as exc:
        raise InvalidFilter(f"{field.name}: invalid $regex {pattern!r}: {exc}") from None
    return Regex(field, inline + pattern)


_REGEX_FLAGS = {"i": re.IGNORECASE, "m": re.MULTILINE, "s": re.DOTALL, "x": re.VERBOSE}

_OPERATORS: dict[str, Callable[[Field, Any], Node]] = {
    "$eq": lambda field, v: _compare(field, "eq", v),
    "$ne": lambda field, v: Not(_compare(field, "eq", v)),
    "$gt": lambda field, v: _compare(field, "gt", v),
    "$gte": lambda field, v: _compare(field, "gte", v),
    "$lt": lambda field, v: _compare(field, "lt", v),
    "$lte": lambda field, v: _compare(field, "lte", v),
    "$in": _in,
    "$nin": lambda field, v: Not(_in(field, v, "$nin")),
    "$all": _all,
    "$exists": _exists,
    "$size": _size,
    "$not": _not,
}


def _value(field: Field, op: str, value: Any) -> Any:
    """A checked query value: JSON data, with times as epoch seconds."""
    if isinstance(field, ColumnField) and field.kind == "time":
        return _time(field, op, value)
    return _json_value(field, op, value)


def _json_value(field: Field, op: str, value: Any) -> Any:
    if value is None or isinstance(value, (bool, str, float)):
        return value
    if isinstance(value, int):
        return value if -(2**63) <= value < 2**63 else float(value)
    if isinstance(value, (list, tuple)):
        return [_json_value(field, op, v) for v in value]
    if isinstance(value, dict) and all(isinstance(k, str) for k in value):
        return {k: _json_value(field, op, v) for k, v in value.items()}
    raise InvalidFilter(f"{field.name}: {op} cannot take {_type_name(value)}")


def _time(field: Field, op: str, value: Any) -> float | None:
    if value is None:
        return None
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        return float(value)
    if isinstance(value, str):
        value = _parse_iso(field, value)
    if isinstance(value, date) and not isinstance(value, datetime):
        value = datetime(value.year, value.month, value.day)
    if isinstance(value, datetime):
        if value.tzinfo is None:
            value = value.replace(tzinfo=timezone.utc)
        return float(value.timestamp())
    raise InvalidFilter(f"{field.name}: {op} needs a time (ISO 8601 or epoch seconds)")


def _parse_iso(field: Field, text: str) -> datetime:
    try:
        return datetime.fromisoformat(text[:-1] + "+00:00" if text.endswith(("Z", "z")) else text)
    except ValueError:
        raise InvalidFilter(f"{field.name}: not an ISO 8601 time: {text!r}") from None


def _conjunction(nodes: list[Node]) -> Node:
    return nodes[0] if len(nodes) == 1 else And(tuple(nodes))


def _type_name(value: Any) -> str:
    return "null" if value is None else type(value).__name__


# Compiling


def _compile(node: Node, ops: JSONOps[Any], stale_before: float | None) -> ColumnElement[bool]:
    match node:
        case And(items):
            return and_(true(), *(_compile(item, ops, stale_before) for item in items))
        case Or(items):
            return or_(*(_compile(item, ops, stale_before) for item in items))
        case Nor(items):
            return _negate(or_(*(_compile(item, ops, stale_before) for item in items)))
        case Not(item):
            return _negate(_compile(item, ops, stale_before))
        case Compare() | In() | All() | Exists() | Regex() | Size():
            if isinstance(node.field, DocField):
                return _doc_condition(node, node.field, ops)
            return _column_condition(node, node.field, stale_before)
        case _:
            assert_never(node)


def _negate(condition: ColumnElement[bool]) -> ColumnElement[bool]:
    # SQL NULL means "no match" inside a condition, so it must become false before NOT.
    return not_(func.coalesce(condition, false()))


def _doc_condition(node: Leaf, field: DocField, ops: JSONOps[S]) -> ColumnElement[bool]:
    spot = ops.spot(schema.runs.c[field.column], field.path)
    match node:
        case Exists(present=present):
            return not_(ops.missing(spot)) if present else ops.missing(spot)
        case Size(size=size):
            sized: Tests = {"array": [lambda s: ops.array_length(s) == size]}
            return ops.match(spot, sized, elements=None)
        case Regex(pattern=pattern):
            tests: Tests = {"string": [lambda s: ops.value(s, "string").regexp_match(pattern)]}
            return ops.match(spot, tests, elements=tests)
        case Compare(op=op, value=value):
            return _doc_compare(spot, op, value, ops)
        case In(values=values):
            return _doc_in(spot, values, ops)
        case All(values=values):
            if not values:
                return false()
            return and_(*(_doc_in(spot, (v,), ops) for v in values))
        case _:
            assert_never(node)


def _doc_compare(spot: S, op: str, value: Any, ops: JSONOps[S]) -> ColumnElement[bool]:
    if op == "eq":
        return _doc_in(spot, (value,), ops)
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return false() if op in ("gt", "lt") else _doc_in(spot, (value,), ops)
    kind = json_kind(value)
    compare = COMPARISONS[op]
    tests = {kind: [lambda s: compare(ops.value(s, kind), ops.bind(kind, value))]}
    return _screened(spot, op, [value], tests, ops)


def _doc_in(spot: S, values: tuple[Any, ...], ops: JSONOps[S]) -> ColumnElement[bool]:
    """Whether the value at ``spot``, or one of its elements, equals one of ``values``."""
    tests = _equality_tests(values, ops)
    if len(tests) == 1 and ("number" in tests or "string" in tests):
        return _screened(spot, "eq", values, tests, ops)
    matches = ops.match(spot, tests, elements=tests)
    if None in values:
        return or_(ops.missing(spot), matches)
    return matches


def _screened(
    spot: S, op: str, values: Sequence[Any], tests: Tests, ops: JSONOps[S]
) -> ColumnElement[bool]:
    """``match`` behind the dialect's cheap first pass, where it has one."""
    screen = ops.screen(spot, op, values)
    if screen is None:
        return ops.match(spot, tests, elements=tests)
    top: Tests = {kind: [lambda s: true()] for kind in tests} if screen.exact else tests
    return and_(screen.condition, ops.match(spot, top, elements=tests))


def _equality_tests(values: tuple[Any, ...], ops: JSONOps[S]) -> Tests:
    tests: dict[str, list[Callable[[Any], ColumnElement[bool]]]] = defaultdict(list)
    scalars: dict[str, list[Any]] = defaultdict(list)
    for value in values:
        if isinstance(value, float) and math.isnan(value):
            value = NAN_TAG
        kind = json_kind(value)
        if kind == "null":
            tests[kind].append(lambda s: true())
        elif kind in ("array", "object"):
            tests[kind].append(functools.partial(_equals, ops, value))
        else:
            scalars[kind].append(value)
    for kind, group in scalars.items():
        tests[kind].append(functools.partial(_one_of_spot, ops, kind, group))
    return tests


def _equals(ops: JSONOps[S], value: Any, spot: S) -> ColumnElement[bool]:
    return ops.equals(spot, value)


def _one_of_spot(ops: JSONOps[S], kind: str, values: list[Any], spot: S) -> ColumnElement[bool]:
    return _one_of(ops, spot, kind, values)


def _one_of(ops: JSONOps[S], spot: S, kind: str, values: list[Any]) -> ColumnElement[bool]:
    value = ops.value(spot, kind)
    bound = [ops.bind(kind, v) for v in values]
    return value == bound[0] if len(bound) == 1 else value.in_(bound)


def _column_condition(
    node: Leaf, field: ColumnField, stale_before: float | None
) -> ColumnElement[bool]:
    column = field_column(field, stale_before)
    match node:
        case Exists(present=present):
            if not field.nullable:
                return true() if present else false()
            return column.is_not(None) if present else column.is_(None)
        case Regex(pattern=pattern):
            return column.regexp_match(pattern)
        case Compare(op=op, value=value):
            return _column_compare(column, field, op, value)
        case In(values=values):
            return _column_in(column, field, values)
        case All(values=values):
            if not values:
                return false()
            return and_(*(_column_compare(column, field, "eq", v) for v in values))
        case Size():
            return false()
        case _:
            assert_never(node)


def _column_compare(column: Any, field: ColumnField, op: str, value: Any) -> ColumnElement[bool]:
    if value is None:
        matches_null = field.nullable and op in ("eq", "gte", "lte")
        return column.is_(None) if matches_null else false()
    python_type = str if field.kind == "text" else float
    if not isinstance(value, python_type) or (isinstance(value, float) and math.isnan(value)):
        return false()
    compared: ColumnElement[bool] = COMPARISONS[op](column, value)
    return compared


def _column_in(column: Any, field: ColumnField, values: tuple[Any, ...]) -> ColumnElement[bool]:
    python_type = str if field.kind == "text" else float
    fitting = [v for v in values if isinstance(v, python_type) and v == v]
    conditions = [column.in_(fitting)] if fitting else []
    if None in values and field.nullable:
        conditions.append(column.is_(None))
    return or_(false(), *conditions)
