"""The backend's values as JSON, shared by the server and the HTTP backend.

Records (``RunRecord``, ``FileRecord``, ...) travel as JSON objects, tuples as lists; pages as
``{"items": [...], "next_cursor": ...}``; history rows as ``[idx, step, keys, row]`` with the
row as its JSON text, never decoded on the way. A page of scanned rows travels as a frame of
lines (``rows_frame``) that the server writes without decoding the rows and the client splits
without parsing them. Every document passes the codec of
``runbase.documents``, so NaN and infinities survive.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from typing import Any, TypeVar

from runbase import documents
from runbase.backend.base import Bucket, HistoryRow, Page, RunPath, StoredRow

T = TypeVar("T")


def to_json(value: Any) -> Any:
    """``value`` with its records turned into plain dicts and lists (documents still untagged)."""
    if isinstance(value, Page):
        return {"items": [to_json(item) for item in value.items], "next_cursor": value.next_cursor}
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return {f.name: to_json(getattr(value, f.name)) for f in dataclasses.fields(value)}
    if isinstance(value, Bucket):
        return value._asdict()
    if isinstance(value, (tuple, list)):
        return [to_json(item) for item in value]
    if isinstance(value, dict):
        return {key: to_json(item) for key, item in value.items()}
    return value


def dumps(value: Any) -> bytes:
    """JSON bytes of ``value``, non-finite floats tagged; ``InvalidInput`` when JSON cannot
    hold it."""
    return documents.encode(to_json(value)).encode()


def loads(raw: bytes | str) -> Any:
    """A value from ``dumps``: tags become floats again."""
    return documents.decode(raw)


def record(cls: type[T], data: dict[str, Any]) -> T:
    """A record of type ``cls`` from its JSON object (fields it does not know are ignored)."""
    values = {}
    for f in dataclasses.fields(cls):  # type: ignore[arg-type]
        if f.name in data:
            value = data[f.name]
            values[f.name] = tuple(value) if str(f.type).startswith("tuple") else value
    return cls(**values)


def page(data: dict[str, Any], item: Callable[[Any], T]) -> Page[T]:
    """A page from its JSON object, each item rebuilt by ``item``."""
    return Page([item(value) for value in data["items"]], data["next_cursor"])


def history_row(value: list[Any] | tuple[Any, ...]) -> HistoryRow:
    idx, step, keys, row = value
    return HistoryRow(idx, step, tuple(keys), row)


def run_path(value: list[Any] | tuple[Any, ...]) -> RunPath:
    entity, project, run_id = value
    return RunPath(entity, project, run_id)


def rows_frame(page: Page[StoredRow]) -> bytes:
    """A page of stored rows as lines: ``{"next_cursor", "rows", "bytes"}``, then each row's
    JSON text as stored (NaN and infinities as tokens; a row read from a segment is written
    so), one per line, ``bytes`` long in all. Rows hold no raw newline: JSON escapes it."""
    body = "".join(
        (row if isinstance(row, str) else documents.encode_row(row)) + "\n" for row in page.items
    ).encode()
    head = {"next_cursor": page.next_cursor, "rows": len(page.items), "bytes": len(body)}
    return dumps(head) + b"\n" + body


def segment_frame(data: bytes, more: bool) -> bytes:
    """One blob of ``Backend.history_segments``: a head line ``{"bytes", "more"}``, then the
    blob's bytes. The last frame is empty, with ``more`` false."""
    return dumps({"bytes": len(data), "more": more}) + b"\n" + data


def error_frame(code: str, message: str) -> bytes:
    """An error met after a stream of frames began: ``{"code", "message"}`` on one line."""
    return dumps({"code": code, "message": message}) + b"\n"
