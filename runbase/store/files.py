"""Files saved with a run: metadata in the database, bytes under the data directory."""

from __future__ import annotations

import hashlib
import mimetypes
import os
import tempfile
import time
from pathlib import Path, PurePosixPath
from typing import Any

from sqlalchemy import Connection, delete, func, select

from runbase.errors import InvalidInput, NotFound
from runbase.store.engine import Store
from runbase.store.schema import files

FILE_COLUMNS = [files.c.name, files.c.size, files.c.md5, files.c.mimetype, files.c.updated_at]


def check_name(name: str) -> str:
    """A file name relative to the run: no absolute paths, no '..', no empty parts."""
    if not isinstance(name, str) or not name or "\x00" in name:
        raise InvalidInput(f"invalid file name {name!r}")
    parts = PurePosixPath(name.replace("\\", "/")).parts
    if name.startswith("/") or any(part in ("..", ".", "") for part in parts):
        raise InvalidInput(f"invalid file name {name!r}: it must be relative, without '..'")
    return "/".join(parts)


def blob_path(store: Store, pk: int, name: str) -> Path:
    return store.files_dir / str(pk) / check_name(name)


def put(store: Store, conn: Connection, pk: int, name: str, data: bytes) -> dict[str, Any]:
    """Write the bytes (atomically replacing an older version) and upsert the metadata."""
    name = check_name(name)
    target = blob_path(store, pk, name)
    target.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.NamedTemporaryFile(dir=target.parent, delete=False) as tmp:
        tmp.write(data)
        tmp.flush()
        os.fsync(tmp.fileno())
    os.replace(tmp.name, target)
    record = {
        "name": name,
        "size": len(data),
        "md5": hashlib.md5(data).hexdigest(),
        "mimetype": mimetypes.guess_type(name)[0] or "application/octet-stream",
        "updated_at": time.time(),
    }
    conn.execute(delete(files).where(files.c.run_pk == pk, files.c.name == name))
    conn.execute(files.insert().values(run_pk=pk, **record))
    return record


def _where(pk: int, names: list[str]):
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
    return conn.execute(select(func.count()).where(*_where(pk, names))).scalar_one()


def read(store: Store, conn: Connection, pk: int, name: str) -> bytes:
    found = conn.execute(
        select(files.c.id).where(files.c.run_pk == pk, files.c.name == check_name(name))
    ).first()
    if found is None:
        raise NotFound(f"file {name!r} not found")
    return blob_path(store, pk, name).read_bytes()


def remove(store: Store, conn: Connection, pk: int, name: str) -> None:
    gone = conn.execute(
        delete(files).where(files.c.run_pk == pk, files.c.name == check_name(name))
    ).rowcount
    if not gone:
        raise NotFound(f"file {name!r} not found")
    blob_path(store, pk, name).unlink(missing_ok=True)
