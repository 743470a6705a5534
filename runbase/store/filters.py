r"""MongoDB-style run filters, compiled to SQL.

``compile_filters({"config.lr": {"$lt": 0.01}, "state": "finished"}, "sqlite")`` is a condition
over ``runs JOIN projects JOIN entities``. The filter is first parsed into a small tree
(``Compare``, ``In``, ``And``, ...), which rejects what is malformed with an ``InvalidFilter``
naming the part, and the tree is then compiled through the database's JSON helpers.

Keys:

- ``config.KEY`` (``config.KEY.value`` is the same path: W&B wraps config values in
  ``{"value": ...}``), ``summary_metrics.KEY`` or ``summary.KEY``, and ``tags``;
- run columns: ``state``, ``name`` (``display_name``, ``displayName``), ``createdAt``
  (``created_at``), ``heartbeatAt`` (``heartbeat_at``), ``entity``, ``username``, ``group``,
  ``jobType`` (``job_type``), ``sweep`` and ``id``.

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

import math
import re
from collections import defaultdict
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import date, datetime, timezone
from typing import Any

from sqlalchemy import ColumnElement, and_, false, func, not_, or_, true

from runbase.errors import InvalidFilter
from runbase.store import schema
from runbase.store.json_sql import (
    COMPARISONS,
    NAN_TAG,
    JSONDialect,
    Spot,
    Tests,
    json_dialect,
    json_kind,
)


@dataclass(frozen=True)
class DocField:
    """A path into a JSON document column (``config``, ``summary`` or ``tags``)."""

    column: str
    path: tuple[str, ...]
    name: str


@dataclass(frozen=True)
class ColumnField:
    """A run column; ``kind`` is ``"text"`` or ``"time"``."""

    table: str
    column: str
    kind: str
    nullable: bool
    name: str


Field = DocField | ColumnField

_COLUMNS: dict[str, tuple[str, str, str, bool]] = {
    "state": ("runs", "state", "text", False),
    "name": ("runs", "display_name", "text", False),
    "display_name": ("runs", "display_name", "text", False),
    "displayName": ("runs", "display_name", "text", False),
    "createdAt": ("runs", "created_at", "time", False),
    "created_at": ("runs", "created_at", "time", False),
    "heartbeatAt": ("runs", "heartbeat_at", "time", False),
    "heartbeat_at": ("runs", "heartbeat_at", "time", False),
    "entity": ("entities", "name", "text", False),
    "username": ("runs", "username", "text", False),
    "group": ("runs", "group", "text", True),
    "jobType": ("runs", "job_type", "text", True),
    "job_type": ("runs", "job_type", "text", True),
    "sweep": ("runs", "sweep", "text", True),
    "id": ("runs", "run_id", "text", False),
}
DOC_PREFIXES = {"config": "config", "summary_metrics": "summary", "summary": "summary"}


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


Node = Compare | In | All | Exists | Regex | Size | And | Or | Nor | Not


def compile_filters(filters: dict, dialect_name: str) -> ColumnElement[bool]:
    """The SQL condition for a MongoDB-style filter; ``{}`` is ``true()``."""
    return _compile(parse_filters(filters), json_dialect(dialect_name))


# Parsing


def parse_filters(filters: Any) -> Node:
    """The filter as a tree; raises ``InvalidFilter`` naming the malformed part."""
    if not isinstance(filters, dict):
        raise InvalidFilter(f"a filter must be an object, got {_type_name(filters)}")
    return _conjunction([_parse_entry(key, value) for key, value in filters.items()])


def parse_field(key: Any) -> Field:
    """The field a filter key names; raises ``InvalidFilter`` for an unknown key."""
    if not isinstance(key, str):
        raise InvalidFilter(f"filter keys must be strings, got {key!r}")
    if key in _COLUMNS:
        return ColumnField(*_COLUMNS[key], name=key)
    if key == "tags":
        return DocField("tags", (), key)
    parts = split_path(key)
    if parts[0] in DOC_PREFIXES and len(parts) > 1:
        return doc_field(DOC_PREFIXES[parts[0]], parts[1:], key)
    raise InvalidFilter(f"unknown filter key {key!r}")


def doc_field(column: str, path: list[str], name: str) -> DocField:
    """A path in ``config`` or ``summary``; ``config.KEY.value`` is ``config.KEY``."""
    if column == "config" and len(path) > 1 and path[1] == "value":
        path = path[:1] + path[2:]
    return DocField(column, tuple(path), name)


def split_path(key: str) -> list[str]:
    r"""``a.b\.c`` -> ``["a", "b.c"]``; raises ``InvalidFilter`` on an empty part."""
    parts: list[str] = []
    part: list[str] = []
    chars = iter(key)
    for ch in chars:
        if ch == "\\":
            following = next(chars, "")
            part.append(following if following in (".", "\\") else ch + following)
        elif ch == ".":
            parts.append("".join(part))
            part = []
        else:
            part.append(ch)
    parts.append("".join(part))
    if "" in parts:
        raise InvalidFilter(f"empty part in key {key!r}")
    return parts


def _parse_entry(key: Any, value: Any) -> Node:
    if isinstance(key, str) and key.startswith("$"):
        return _parse_logical(key, value)
    return _parse_condition(parse_field(key), value)


def _parse_logical(op: str, value: Any) -> Node:
    if op == "$not":
        if not isinstance(value, dict) or not value:
            raise InvalidFilter(f"$not needs a non-empty filter object, got {_type_name(value)}")
        return Not(parse_filters(value))
    combine = {"$and": And, "$or": Or, "$nor": Nor}.get(op)
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


def _parse_operators(field: Field, ops: dict) -> Node:
    nodes = []
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
        return value.timestamp()
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


def _compile(node: Node, ops: JSONDialect) -> ColumnElement[bool]:
    if isinstance(node, And):
        return and_(true(), *(_compile(item, ops) for item in node.items))
    if isinstance(node, Or):
        return or_(*(_compile(item, ops) for item in node.items))
    if isinstance(node, Nor):
        return _negate(or_(*(_compile(item, ops) for item in node.items)))
    if isinstance(node, Not):
        return _negate(_compile(node.item, ops))
    if isinstance(node.field, DocField):
        return _doc_condition(node, ops)
    return _column_condition(node)


def _negate(condition: ColumnElement[bool]) -> ColumnElement[bool]:
    # SQL NULL means "no match" inside a condition, so it must become false before NOT.
    return not_(func.coalesce(condition, false()))


def _doc_condition(node: Node, ops: JSONDialect) -> ColumnElement[bool]:
    field = node.field
    spot = ops.spot(getattr(schema.runs.c, field.column), field.path)
    if isinstance(node, Exists):
        return not_(ops.missing(spot)) if node.present else ops.missing(spot)
    if isinstance(node, Size):
        tests = {"array": [lambda s: ops.array_length(s) == node.size]}
        return ops.match(spot, tests, elements=None)
    if isinstance(node, Regex):
        tests = {"string": [lambda s: ops.value(s, "string").regexp_match(node.pattern)]}
        return ops.match(spot, tests, elements=tests)
    if isinstance(node, Compare):
        return _doc_compare(spot, node.op, node.value, ops)
    if isinstance(node, In):
        return _doc_in(spot, node.values, ops)
    if not node.values:
        return false()
    return and_(*(_doc_in(spot, (v,), ops) for v in node.values))


def _doc_compare(spot: Spot, op: str, value: Any, ops: JSONDialect) -> ColumnElement[bool]:
    if op == "eq":
        return _doc_in(spot, (value,), ops)
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return false() if op in ("gt", "lt") else _doc_in(spot, (value,), ops)
    kind = json_kind(value)
    compare = COMPARISONS[op]
    tests = {kind: [lambda s: compare(ops.value(s, kind), ops.bind(kind, value))]}
    return _screened(spot, op, [value], tests, ops)


def _doc_in(spot: Spot, values: tuple[Any, ...], ops: JSONDialect) -> ColumnElement[bool]:
    """Whether the value at ``spot``, or one of its elements, equals one of ``values``."""
    tests = _equality_tests(values, ops)
    if len(tests) == 1 and ("number" in tests or "string" in tests):
        return _screened(spot, "eq", values, tests, ops)
    matches = ops.match(spot, tests, elements=tests)
    if None in values:
        return or_(ops.missing(spot), matches)
    return matches


def _screened(
    spot: Spot, op: str, values: Sequence, tests: Tests, ops: JSONDialect
) -> ColumnElement[bool]:
    """``match`` behind the dialect's cheap first pass, where it has one."""
    screen = ops.screen(spot, op, values)
    if screen is None:
        return ops.match(spot, tests, elements=tests)
    top = {kind: [lambda s: true()] for kind in tests} if screen.exact else tests
    return and_(screen.condition, ops.match(spot, top, elements=tests))


def _equality_tests(values: tuple[Any, ...], ops: JSONDialect) -> Tests:
    tests: dict[str, list[Callable[[Any], ColumnElement]]] = defaultdict(list)
    scalars: dict[str, list[Any]] = defaultdict(list)
    for value in values:
        if isinstance(value, float) and math.isnan(value):
            value = NAN_TAG
        kind = json_kind(value)
        if kind == "null":
            tests[kind].append(lambda s: true())
        elif kind in ("array", "object"):
            tests[kind].append(lambda s, value=value: ops.equals(s, value))
        else:
            scalars[kind].append(value)
    for kind, group in scalars.items():
        tests[kind].append(lambda s, kind=kind, group=group: _one_of(ops, s, kind, group))
    return tests


def _one_of(ops: JSONDialect, spot: Spot, kind: str, values: list[Any]) -> ColumnElement[bool]:
    value = ops.value(spot, kind)
    bound = [ops.bind(kind, v) for v in values]
    return value == bound[0] if len(bound) == 1 else value.in_(bound)


def _column_condition(node: Node) -> ColumnElement[bool]:
    field = node.field
    column = getattr(getattr(schema, field.table).c, field.column)
    if isinstance(node, Exists):
        if not field.nullable:
            return true() if node.present else false()
        return column.is_not(None) if node.present else column.is_(None)
    if isinstance(node, Regex):
        return column.regexp_match(node.pattern)
    if isinstance(node, Compare):
        return _column_compare(column, field, node.op, node.value)
    if isinstance(node, In):
        return _column_in(column, field, node.values)
    if isinstance(node, All) and node.values:
        return and_(*(_column_compare(column, field, "eq", v) for v in node.values))
    return false()


def _column_compare(column: Any, field: ColumnField, op: str, value: Any) -> ColumnElement[bool]:
    if value is None:
        matches_null = field.nullable and op in ("eq", "gte", "lte")
        return column.is_(None) if matches_null else false()
    python_type = str if field.kind == "text" else float
    if not isinstance(value, python_type) or (isinstance(value, float) and math.isnan(value)):
        return false()
    return COMPARISONS[op](column, value)


def _column_in(column: Any, field: ColumnField, values: tuple[Any, ...]) -> ColumnElement[bool]:
    python_type = str if field.kind == "text" else float
    fitting = [v for v in values if isinstance(v, python_type) and v == v]
    conditions = [column.in_(fitting)] if fitting else []
    if None in values and field.nullable:
        conditions.append(column.is_(None))
    return or_(false(), *conditions)
