"""What the dashboard's operations share between backends: column projection of run records,
and the search over a project's document keys (with a cache that lasts while nothing changes).
"""

from __future__ import annotations

import dataclasses
import threading
from collections import OrderedDict
from collections.abc import Callable
from typing import Any

from runbase.backend.base import KeyList, RunRecord
from runbase.errors import InvalidFilter, InvalidInput
from runbase.fields import DocField, parse_field

DOCUMENTS = ("config", "summary")
# What a key search may list: the leaves of a document, or the metrics a chart can draw.
KINDS = ("config", "summary", "metrics")
MAX_KEYS_LIMIT = 10_000
MAX_COLUMNS = 1_000
_MISSING = object()


def check_columns(columns: Any) -> tuple[DocField, ...]:
    """The fields of a query's ``columns``: ``config.X`` or ``summary_metrics.X`` each."""
    if not isinstance(columns, (list, tuple)) or len(columns) > MAX_COLUMNS:
        raise InvalidInput(f"columns must be a list of at most {MAX_COLUMNS} keys")
    fields = []
    for column in columns:
        try:
            found = parse_field(column)
        except InvalidFilter as exc:
            raise InvalidInput(f"columns: {exc.message}") from None
        if not isinstance(found, DocField) or found.column not in DOCUMENTS:
            raise InvalidInput(f"columns: {column!r} is not a config.X or summary_metrics.X key")
        fields.append(found)
    return tuple(fields)


def project_record(record: RunRecord, fields: tuple[DocField, ...]) -> RunRecord:
    """``record`` with only ``fields`` of its config and summary, keyed by their dotted path
    (escaped as in filters), and no metadata or system metrics."""
    kept: dict[str, dict[str, Any]] = {"config": {}, "summary": {}}
    for field in fields:
        value = _at(getattr(record, field.column), field.path)
        if value is not _MISSING:
            kept[field.column][".".join(_escape(part) for part in field.path)] = value
    return dataclasses.replace(
        record, config=kept["config"], summary=kept["summary"], metadata={}, system_metrics={}
    )


def _at(document: Any, path: tuple[str, ...]) -> Any:
    for part in path:
        if isinstance(document, dict) and part in document:
            document = document[part]
        elif isinstance(document, list) and part.isdigit() and int(part) < len(document):
            document = document[int(part)]
        else:
            return _MISSING
    return document


def _escape(part: str) -> str:
    return part.replace("\\", "\\\\").replace(".", "\\.")


def check_keys_request(kind: Any, q: Any, limit: Any) -> str:
    """``kind``, checked with ``q`` and ``limit``; ``InvalidInput`` naming what is wrong."""
    if kind not in KINDS:
        raise InvalidInput(f"kind must be 'config', 'summary' or 'metrics', got {kind!r}")
    if not isinstance(q, str):
        raise InvalidInput("q must be a string")
    if isinstance(limit, bool) or not isinstance(limit, int) or not 1 <= limit <= MAX_KEYS_LIMIT:
        raise InvalidInput(f"limit must be an integer from 1 to {MAX_KEYS_LIMIT}, got {limit!r}")
    return str(kind)


class KeyCache:
    """Each project's sorted document keys, kept while its stamp (run count, newest update)
    stays the same: typing in the key picker searches a list in memory."""

    def __init__(self, size: int = 32) -> None:
        self.size = size
        self._found: OrderedDict[tuple[str, ...], tuple[Any, list[str], list[str]]] = OrderedDict()
        self._lock = threading.Lock()

    def search(
        self, where: tuple[str, ...], stamp: Any, load: Callable[[], set[str]], q: str, limit: int
    ) -> KeyList:
        with self._lock:
            cached = self._found.get(where)
        if cached is None or cached[0] != stamp:
            keys = sorted(load())
            cached = (stamp, keys, [key.lower() for key in keys])
            with self._lock:
                self._found[where] = cached
                self._found.move_to_end(where)
                while len(self._found) > self.size:
                    self._found.popitem(last=False)
        _, keys, lowered = cached
        if not q:
            return KeyList(keys[:limit], len(keys))
        needle = q.lower()
        matches = [key for key, low in zip(keys, lowered, strict=True) if needle in low]
        return KeyList(matches[:limit], len(matches))
