"""Files saved with a run: metadata in the database, bytes under the data directory."""

from __future__ import annotations

import hashlib
import mimetypes
import os
import tempfile
import time
from collections.abc import Iterable, Iterator
from pathlib import Path, PurePosixPath
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


def blob_path(store: Store, pk: int, name: str) -> Path:
    return store.files_dir / str(pk) / check_name(name)


def write_blob(store: Store, pk: int, name: str, chunks: Iterable[bytes]) -> Record:
    """Stream the chunks into the file (atomically replacing an older version) and return its
    metadata; the bytes are never held whole."""
    name = check_name(name)
    target = blob_path(store, pk, name)
    target.parent.mkdir(parents=True, exist_ok=True)
    digest = hashlib.md5()
    size = 0
    with tempfile.NamedTemporaryFile(dir=target.parent, delete=False) as tmp:
        try:
            for chunk in chunks:
                if not isinstance(chunk, (bytes, bytearray, memoryview)):
                    raise InvalidInput(f"file chunks must be bytes, not {type(chunk).__name__}")
                tmp.write(chunk)
                digest.update(chunk)
                size += len(chunk)
            tmp.flush()
            os.fsync(tmp.fileno())
        except BaseException:
            tmp.close()
            os.unlink(tmp.name)
            raise
    os.replace(tmp.name, target)
    return {
        "name": name,
        "size": size,
        "md5": digest.hexdigest(),
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


def find_blob(store: Store, conn: Connection, pk: int, name: str) -> Path:
    """Where the stored file lies; ``NotFound`` when the run has no such file."""
    name = check_name(name)
    found = conn.execute(
        select(files.c.id).where(files.c.run_pk == pk, files.c.name == name)
    ).first()
    path = blob_path(store, pk, name)
    if found is None or not path.is_file():
        raise NotFound(f"file {name!r} not found")
    return path


def read_chunks(path: Path, size: int) -> Iterator[bytes]:
    """The file's bytes, ``size`` at a time."""
    with path.open("rb") as file:
        while chunk := file.read(size):
            yield chunk


def remove(store: Store, conn: Connection, pk: int, name: str) -> None:
    gone = conn.execute(
        delete(files).where(files.c.run_pk == pk, files.c.name == check_name(name))
    ).rowcount
    if not gone:
        raise NotFound(f"file {name!r} not found")
    blob_path(store, pk, name).unlink(missing_ok=True)
