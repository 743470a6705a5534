"""Files saved with a run: metadata in the database, bytes in the store's ``BlobStore`` (the
data directory, or object storage)."""

from __future__ import annotations

import mimetypes
import time
from collections.abc import Iterable, Iterator
from pathlib import PurePosixPath
from typing import Any

from sqlalchemy import ColumnElement, Connection, delete, func, select

from runbase.errors import InvalidInput, NotFound
from runbase.store.dialect import Dialect
from runbase.store.engine import Store
from runbase.store.schema import files

FILE_COLUMNS = [files.c.name, files.c.size, files.c.md5, files.c.mimetype, files.c.updated_at]
Record = dict[str, Any]


def check_name(name: Any) -> str:
    """A file name relative to the run: no absolute paths, no '..', no empty parts."""
    if not isinstance(name, str) or not name or "\x00" in name:
        raise InvalidInput(f"invalid file name {name!r}")
    parts = PurePosixPath(name.replace("\\", "/")).parts
    if name.startswith("/") or any(part in ("..", ".", "") for part in parts):
        raise InvalidInput(f"invalid file name {name!r}: it must be relative, without '..'")
    return "/".join(parts)


def blob_key(pk: int, name: str) -> str:
    return f"{pk}/{check_name(name)}"


def write_blob(store: Store, pk: int, name: str, chunks: Iterable[bytes]) -> Record:
    """Stream the chunks into the file (replacing an older version only once every chunk has
    arrived) and return its metadata; the bytes are never held whole."""
    name = check_name(name)
    size, md5 = store.blobs.write(blob_key(pk, name), chunks)
    return {
        "name": name,
        "size": size,
        "md5": md5,
        "mimetype": mimetypes.guess_type(name)[0] or "application/octet-stream",
        "updated_at": time.time(),
    }


def save_record(dialect: Dialect, conn: Connection, pk: int, record: Record) -> None:
    """Insert or replace a file's metadata."""
    conn.execute(dialect.upsert(files, ("run_pk", "name"), {"run_pk": pk, **record}))


def _where(pk: int, names: list[str]) -> list[ColumnElement[bool]]:
    where = [files.c.run_pk == pk]
    if names:
        where.append(files.c.name.in_(names))
    return where


def list_page(
    conn: Connection, pk: int, names: list[str], limit: int, after_name: str | None
) -> list[dict[str, Any]]:
    stmt = select(*FILE_COLUMNS).where(*_where(pk, names)).order_by(files.c.name).limit(limit)
    if after_name is not None:
        stmt = stmt.where(files.c.name > after_name)
    return [dict(row._mapping) for row in conn.execute(stmt)]


def count(conn: Connection, pk: int, names: list[str]) -> int:
    found: int = conn.execute(select(func.count()).where(*_where(pk, names))).scalar_one()
    return found


def find_blob(conn: Connection, pk: int, name: str) -> str:
    """The stored file's blob key; ``NotFound`` when the run has no such file."""
    name = check_name(name)
    found = conn.execute(
        select(files.c.id).where(files.c.run_pk == pk, files.c.name == name)
    ).first()
    if found is None:
        raise NotFound(f"file {name!r} not found")
    return blob_key(pk, name)


def read_chunks(store: Store, key: str, size: int) -> Iterator[bytes]:
    """The blob's bytes, ``size`` at a time; ``NotFound`` when it is missing."""
    return store.blobs.read(key, size)


def remove(store: Store, conn: Connection, pk: int, name: str) -> None:
    gone = conn.execute(
        delete(files).where(files.c.run_pk == pk, files.c.name == check_name(name))
    ).rowcount
    if not gone:
        raise NotFound(f"file {name!r} not found")
    store.blobs.delete(blob_key(pk, name))
