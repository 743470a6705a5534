"""Run order (``runbase.fields.parse_order``) in SQL, and its keyset pagination.

Runs that lack the key (or hold null or NaN there) sort last in both directions. Numbers (and
booleans, as 0 and 1) sort before text: strings, and objects and arrays by their JSON text.
Ties break on ``runs.storage_id`` in the same direction, so the order is total and ``after``
can resume it. ``stale_before`` makes ``state`` the state a run reads as
(``filters.run_state``).
"""

from __future__ import annotations

import json
from typing import Any

from sqlalchemy import ColumnElement, and_, case, false, func, literal, or_, tuple_

from runbase.errors import InvalidFilter
from runbase.fields import ColumnField, DocField, SortKey, parse_order
from runbase.store import schema
from runbase.store.dialect import Dialect
from runbase.store.filters import field_column
from runbase.store.json_sql import JSONOps

__all__ = ["SortKey", "after", "order_by", "parse_order", "sort_value"]


def order_by(
    sort: SortKey, dialect: Dialect, stale_before: float | None = None
) -> list[ColumnElement[Any]]:
    """The ORDER BY clauses: the key, missing values last, then ``storage_id``."""
    nulls_last = sort.nullable
    parts = _parts(sort, dialect, stale_before)
    clauses = [_direction(part, sort, nulls_last) for part in parts]
    return [*clauses, _direction(schema.runs.c.storage_id, sort, nulls_last=False)]


def sort_value(
    sort: SortKey, dialect: Dialect, stale_before: float | None = None
) -> ColumnElement[Any]:
    """The value to select (as ``sort_value``) and pass back to ``after``.

    A run column gives its value; a document key gives the value's JSON text (None where
    missing), which keeps the kind of the value through a JSON cursor.
    """
    field = sort.field
    if isinstance(field, ColumnField):
        return field_column(field, stale_before).label("sort_value")
    return _json_text(field, dialect.json).label("sort_value")


def after(
    sort: SortKey, dialect: Dialect, value: Any, storage_id: int, stale_before: float | None = None
) -> ColumnElement[bool]:
    """Runs strictly after the run whose ``sort_value`` was ``value``, in ``order_by`` order."""
    _check_cursor(sort, value, storage_id)
    rows = _parts(sort, dialect, stale_before)
    marks = _cursor_parts(sort, dialect, value)
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


def _parts(sort: SortKey, dialect: Dialect, stale_before: float | None) -> list[ColumnElement[Any]]:
    field = sort.field
    if isinstance(field, ColumnField):
        return [field_column(field, stale_before)]
    ops = dialect.json
    return ops.sort_parts(ops.spot(schema.runs.c[field.column], field.path))


def _json_text(field: DocField, ops: JSONOps[Any]) -> ColumnElement[Any]:
    return ops.json_text(ops.spot(schema.runs.c[field.column], field.path))


def _check_cursor(sort: SortKey, value: Any, storage_id: Any) -> None:
    field = sort.field
    if isinstance(field, DocField) or field.kind == "text":
        expected: tuple[type, ...] = (str,)
    else:
        expected = (int, float)
    missing = value is None and sort.nullable
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


def _cursor_parts(
    sort: SortKey, dialect: Dialect, value: Any
) -> list[ColumnElement[Any]] | list[None]:
    """The cursor's sort keys; None where the key is known to be NULL."""
    if value is None:
        return [None] * len(_parts(sort, dialect, None))
    if isinstance(sort.field, ColumnField):
        marks: list[ColumnElement[Any]] = [literal(value)]
        return marks
    ops = dialect.json
    return ops.sort_parts(ops.literal_spot(value))


def _after_one(
    row: ColumnElement[Any], mark: ColumnElement[Any] | None, sort: SortKey, sid: Any, later: Any
) -> ColumnElement[bool]:
    """``after`` for a one-part key, reading the row's key once where it is not NULL."""
    if mark is None:
        return and_(row.is_(None), later)
    pair, cursor = tuple_(row, schema.runs.c.storage_id), tuple_(mark, sid)
    beyond = pair < cursor if sort.descending else pair > cursor
    if not sort.nullable:
        return beyond
    # A NULL on either side leaves the comparison NULL; NULLs sort last.
    fallback = case((mark.is_(None), and_(row.is_(None), later)), else_=row.is_(None))
    return func.coalesce(beyond, fallback)


def _beyond(
    row: ColumnElement[Any], mark: ColumnElement[Any] | None, desc: bool
) -> ColumnElement[bool]:
    """Whether ``row`` sorts after ``mark``, NULLs last."""
    if mark is None:
        return false()
    further = row < mark if desc else row > mark
    return and_(mark.is_not(None), or_(row.is_(None), further))


def _direction(part: ColumnElement[Any], sort: SortKey, nulls_last: bool) -> ColumnElement[Any]:
    clause = part.desc() if sort.descending else part.asc()
    return clause.nulls_last() if nulls_last else clause
