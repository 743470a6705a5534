r"""The fields of runs that filters and orders name, and the order grammar.

Pure Python: the public API checks a filter's keys and an order here, before any query, and
the store compiles the same fields to SQL.

Keys: ``config.KEY`` (``config.KEY.value`` is the same path: W&B wraps config values in
``{"value": ...}``), ``summary_metrics.KEY`` or ``summary.KEY``, ``tags``, and the run columns
of ``COLUMNS``. Dots separate nested keys; a backslash makes the next dot or backslash part of
the key (``config.a\.b`` is the top-level key ``a.b``).

An order is ``[+|-]KEY``: ``+`` ascending, ``-`` or no prefix descending (W&B: "by default the
order is descending"); a bare ``KEY`` that is no run column means ``summary_metrics.KEY``.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from runbase.errors import InvalidFilter


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

# key -> (table, column, kind, nullable)
COLUMNS: dict[str, tuple[str, str, str, bool]] = {
    "state": ("runs", "state", "text", False),
    "name": ("runs", "run_id", "text", False),  # W&B's filters: ``name`` is the run's id
    "display_name": ("runs", "display_name", "text", False),
    "displayName": ("runs", "display_name", "text", False),
    "createdAt": ("runs", "created_at", "time", False),
    "created_at": ("runs", "created_at", "time", False),
    "heartbeatAt": ("runs", "heartbeat_at", "time", False),
    "heartbeat_at": ("runs", "heartbeat_at", "time", False),
    "updatedAt": ("runs", "updated_at", "time", False),
    "updated_at": ("runs", "updated_at", "time", False),
    "entity": ("entities", "name", "text", False),
    "username": ("runs", "username", "text", False),
    "group": ("runs", "group", "text", True),
    "jobType": ("runs", "job_type", "text", True),
    "job_type": ("runs", "job_type", "text", True),
    "sweep": ("runs", "sweep", "text", True),
    "id": ("runs", "run_id", "text", False),
}
DOC_PREFIXES = {"config": "config", "summary_metrics": "summary", "summary": "summary"}
DEFAULT_DESCENDING = True


@dataclass(frozen=True)
class SortKey:
    """What to sort runs by, and which way."""

    field: Field
    descending: bool

    @property
    def nullable(self) -> bool:
        """Whether some runs may lack a value (they sort last both ways)."""
        return isinstance(self.field, DocField) or self.field.nullable


def parse_field(key: Any) -> Field:
    """The field a filter key names; raises ``InvalidFilter`` for an unknown key."""
    if not isinstance(key, str):
        raise InvalidFilter(f"filter keys must be strings, got {key!r}")
    if key in COLUMNS:
        return ColumnField(*COLUMNS[key], name=key)
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


def parse_order(order: Any) -> SortKey:
    """``"-summary_metrics.loss"`` -> ``SortKey``; raises ``InvalidFilter`` naming the order
    when it is malformed."""
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
