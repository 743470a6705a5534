"""Run order: ``"-created_at"``, ``"+config.lr"``, ``"summary_metrics.loss"`` and their keyset
pagination.

A ``+`` prefix sorts ascending, ``-`` or no prefix descending (W&B: "by default the order is
descending"). Keys are the run columns of ``filters`` (``created_at``, ``heartbeat_at``,
``name``, ``state``, ...), ``config.KEY`` (``config.KEY.value``), ``summary_metrics.KEY`` or
``summary.KEY``, and a bare ``KEY``, which means ``summary_metrics.KEY``.

Runs that lack the key (or hold null or NaN there) sort last in both directions. Numbers (and
booleans, as 0 and 1) sort before text: strings, and objects and arrays by their JSON text.
Ties break on ``runs.storage_id`` in the same direction, so the order is total and ``after``
can resume it.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

from sqlalchemy import ColumnElement, and_, case, false, func, literal, or_, tuple_

from runbase.errors import InvalidFilter
from runbase.store import schema
from runbase.store.filters import (
    DOC_PREFIXES,
    ColumnField,
    DocField,
    Field,
    doc_field,
    parse_field,
    split_path,
)
from runbase.store.json_sql import JSONDialect, Spot, json_dialect

DEFAULT_DESCENDING = True


@dataclass(frozen=True)
class SortKey:
    """What to sort runs by, and which way."""

    field: Field
    descending: bool


def parse_order(order: str) -> SortKey:
    """``"-summary_metrics.loss"`` -> ``SortKey``; raises ``InvalidFilter`` when malformed."""
    if not isinstance(order, str):
        raise InvalidFilter(f"order must be a string, got {type(order).__name__}")
    descending = DEFAULT_DESCENDING
    key = order
    if key[:1] in ("+", "-"):
        descending = key[0] == "-"
        key = key[1:]
    if not key or key[0] in "+-" or key != key.strip():
        raise InvalidFilter(f"order {order!r} is not [+|-]KEY")
    try:
        return SortKey(_order_field(key), descending)
    except InvalidFilter as exc:
        raise InvalidFilter(f"order {order!r}: {exc.message}") from None


def order_by(sort: SortKey, dialect_name: str) -> list[ColumnElement]:
    """The ORDER BY clauses: the key, missing values last, then ``storage_id``."""
    nulls_last = _nullable(sort)
    clauses = [_direction(part, sort, nulls_last) for part in _parts(sort, dialect_name)]
    return [*clauses, _direction(schema.runs.c.storage_id, sort, nulls_last=False)]


def sort_value(sort: SortKey, dialect_name: str) -> ColumnElement:
    """The value to select (as ``sort_value``) and pass back to ``after``.

    A run column gives its value; a document key gives the value's JSON text (None where
    missing), which keeps the kind of the value through a JSON cursor.
    """
    field = sort.field
    if isinstance(field, ColumnField):
        return _column(field).label("sort_value")
    ops = json_dialect(dialect_name)
    return ops.json_text(_spot(field, ops)).label("sort_value")


def after(sort: SortKey, dialect_name: str, value: Any, storage_id: int) -> ColumnElement[bool]:
    """Runs strictly after the run whose ``sort_value`` was ``value``, in ``order_by`` order."""
    _check_cursor(sort, value, storage_id)
    rows = _parts(sort, dialect_name)
    marks = _cursor_parts(sort, dialect_name, value)
    sid = schema.runs.c.storage_id
    later = sid < storage_id if sort.descending else sid > storage_id
    if len(rows) == 1:
        return _after_one(rows[0], marks[0], sort, literal(storage_id), later)
    terms = []
    same: list[ColumnElement[bool]] = []
    for row, mark in zip(rows, marks, strict=True):
        terms.append(and_(*same, _beyond(row, mark, sort.descending)))
        same.append(row.is_(None) if mark is None else row.is_not_distinct_from(mark))
    return or_(*terms, and_(*same, later))


def _order_field(key: str) -> Field:
    if key == "tags":
        raise InvalidFilter("cannot order by tags")
    parts = split_path(key)
    if parts[0] in DOC_PREFIXES and len(parts) == 1:
        raise InvalidFilter(f"needs a key after {parts[0]!r}")
    try:
        return parse_field(key)
    except InvalidFilter:
        return doc_field("summary", parts, key)


def _nullable(sort: SortKey) -> bool:
    return isinstance(sort.field, DocField) or sort.field.nullable


def _parts(sort: SortKey, dialect_name: str) -> list[ColumnElement]:
    field = sort.field
    if isinstance(field, ColumnField):
        return [_column(field)]
    ops = json_dialect(dialect_name)
    return ops.sort_parts(_spot(field, ops))


def _check_cursor(sort: SortKey, value: Any, storage_id: Any) -> None:
    field = sort.field
    if isinstance(field, DocField) or field.kind == "text":
        expected: tuple[type, ...] = (str,)
    else:
        expected = (int, float)
    missing = value is None and _nullable(sort)
    if not missing and (isinstance(value, bool) or not isinstance(value, expected)):
        raise InvalidFilter(f"bad cursor value {value!r} for order by {field.name}")
    if isinstance(field, DocField) and not missing and not _is_json(value):
        raise InvalidFilter(f"bad cursor value {value!r} for order by {field.name}")
    if isinstance(storage_id, bool) or not isinstance(storage_id, int):
        raise InvalidFilter(f"bad cursor id {storage_id!r}")


def _is_json(text: str) -> bool:
    try:
        json.loads(text)
    except ValueError:
        return False
    return True


def _cursor_parts(sort: SortKey, dialect_name: str, value: Any) -> list[ColumnElement | None]:
    """The cursor's sort keys; None where the key is known to be NULL."""
    if value is None:
        return [None] * len(_parts(sort, dialect_name))
    if isinstance(sort.field, ColumnField):
        return [literal(value)]
    ops = json_dialect(dialect_name)
    return ops.sort_parts(ops.literal_spot(value))


def _after_one(
    row: ColumnElement, mark: ColumnElement | None, sort: SortKey, sid: Any, later: Any
) -> ColumnElement[bool]:
    """``after`` for a one-part key, reading the row's key once where it is not NULL."""
    if mark is None:
        return and_(row.is_(None), later)
    pair, cursor = tuple_(row, schema.runs.c.storage_id), tuple_(mark, sid)
    beyond = pair < cursor if sort.descending else pair > cursor
    if not _nullable(sort):
        return beyond
    # A NULL on either side leaves the comparison NULL; NULLs sort last.
    fallback = case((mark.is_(None), and_(row.is_(None), later)), else_=row.is_(None))
    return func.coalesce(beyond, fallback)


def _beyond(row: ColumnElement, mark: ColumnElement | None, desc: bool) -> ColumnElement[bool]:
    """Whether ``row`` sorts after ``mark``, NULLs last."""
    if mark is None:
        return false()
    further = row < mark if desc else row > mark
    return and_(mark.is_not(None), or_(row.is_(None), further))


def _direction(part: ColumnElement, sort: SortKey, nulls_last: bool) -> ColumnElement:
    clause = part.desc() if sort.descending else part.asc()
    return clause.nulls_last() if nulls_last else clause


def _column(field: ColumnField) -> ColumnElement:
    return getattr(getattr(schema, field.table).c, field.column)


def _spot(field: DocField, ops: JSONDialect) -> Spot:
    return ops.spot(getattr(schema.runs.c, field.column), field.path)
