"""What a backend holds, read back through the backend interface, for the SDK's tests."""

from __future__ import annotations

from typing import Any

from runbase.backend.base import Backend, HistoryQuery, RunPath
from runbase.documents import decode_row, encode_row


def stored_texts(backend: Backend, path: RunPath, stream: str = "default") -> list[str]:
    """Every stored row of a stream, as JSON text, in index order."""
    texts: list[str] = []
    cursor = None
    while True:
        page = backend.scan_history(
            HistoryQuery(path, stream=stream, page_size=10_000, cursor=cursor)
        )
        texts.extend(row if isinstance(row, str) else encode_row(row) for row in page.items)
        cursor = page.next_cursor
        if cursor is None:
            return texts


def stored_rows(backend: Backend, path: RunPath, stream: str = "default") -> list[dict[str, Any]]:
    """Every stored row of a stream, decoded (NaN and infinities kept), in index order."""
    return [decode_row(text) for text in stored_texts(backend, path, stream)]


def file_bytes(backend: Backend, path: RunPath, name: str) -> bytes:
    return b"".join(backend.read_file(path, name))
