"""The files of artifact versions, and the blobs that hold their bytes.

A blob is the bytes of one md5 of one entity, stored once in the store's ``BlobStore``
(``artifacts/<entity id>/<md5>``) however many versions hold them; a version's manifest is a
blob of its own (``artifacts/manifests/<id>.json``). Blobs are per entity so that nobody
learns what another entity holds by asking for an upload, and an md5 collision crafted by
one entity cannot replace the bytes of another.
"""

from __future__ import annotations

import hashlib
import time
from collections.abc import Iterable, Iterator

from sqlalchemy import Connection, func, select

from runbase.errors import InvalidInput, NotFound
from runbase.store.dialect import Dialect
from runbase.store.engine import Store
from runbase.store.schema import artifact_blobs, artifact_files, entities

IN_LIST = 500  # md5s per IN (...) list


def entity_pk(conn: Connection, entity: str) -> int:
    found: int | None = conn.execute(
        select(entities.c.id).where(entities.c.name == entity)
    ).scalar()
    if found is None:
        raise NotFound(f"entity {entity!r} not found")
    return found


def blob_key(entity_pk: int, md5: str) -> str:
    return f"artifacts/{entity_pk}/{md5}"


def manifest_key(artifact_id: int) -> str:
    return f"artifacts/manifests/{artifact_id}.json"


def held(conn: Connection, entity_pk: int, md5s: list[str]) -> dict[str, int]:
    """The size of each of ``md5s`` the entity holds."""
    found: dict[str, int] = {}
    unique = sorted(set(md5s))
    for start in range(0, len(unique), IN_LIST):
        rows = conn.execute(
            select(artifact_blobs.c.md5, artifact_blobs.c.size).where(
                artifact_blobs.c.entity_id == entity_pk,
                artifact_blobs.c.md5.in_(unique[start : start + IN_LIST]),
            )
        )
        found.update({md5: size for md5, size in rows})
    return found


def write_blob(store: Store, entity_pk: int, md5: str, chunks: Iterable[bytes]) -> int:
    """Store bytes under their md5 (``InvalidInput``, and nothing replaced, when they have
    another); their size. Record them with ``record_blob``."""
    size, _ = store.blobs.write(blob_key(entity_pk, md5), _checked(chunks, md5))
    return size


def _checked(chunks: Iterable[bytes], md5: str) -> Iterator[bytes]:
    """The chunks, raising after the last one when their md5 is not ``md5``: the blob store
    then keeps what it had."""
    digest = hashlib.md5()
    for chunk in chunks:
        if not isinstance(chunk, (bytes, bytearray, memoryview)):
            raise InvalidInput(f"file chunks must be bytes, not {type(chunk).__name__}")
        digest.update(chunk)
        yield chunk
    if digest.hexdigest() != md5:
        raise InvalidInput(f"the bytes sent have md5 {digest.hexdigest()}, not {md5}")


def record_blob(dialect: Dialect, conn: Connection, entity_pk: int, md5: str, size: int) -> None:
    values = {"entity_id": entity_pk, "md5": md5, "size": size, "created_at": time.time()}
    conn.execute(dialect.insert_ignore(artifact_blobs).values(values))


def write_manifest(store: Store, artifact_id: int, chunks: Iterable[bytes]) -> None:
    store.blobs.write(manifest_key(artifact_id), chunks)


def read_manifest(store: Store, artifact_id: int, chunk_size: int) -> bytes:
    """The whole manifest of a version."""
    return b"".join(store.blobs.read(manifest_key(artifact_id), chunk_size))


def save_files(
    dialect: Dialect, conn: Connection, artifact_id: int, files: list[tuple[str, str, int]]
) -> None:
    """The version's uploaded files, as ``(name, md5, size)``."""
    if files:
        dialect.insert_many(conn, artifact_files, ("name", "md5", "size"), files,
                            artifact_id=artifact_id)  # fmt: skip


def files_page(
    conn: Connection, artifact_id: int, names: list[str], limit: int, after_name: str | None
) -> list[tuple[str, str, int]]:
    stmt = (
        select(artifact_files.c.name, artifact_files.c.md5, artifact_files.c.size)
        .where(artifact_files.c.artifact_id == artifact_id)
        .order_by(artifact_files.c.name)
        .limit(limit)
    )
    if names:
        stmt = stmt.where(artifact_files.c.name.in_(names))
    if after_name is not None:
        stmt = stmt.where(artifact_files.c.name > after_name)
    return [(name, md5, size) for name, md5, size in conn.execute(stmt)]


def count_blobs(conn: Connection, entity_pk: int) -> int:
    """How many blobs the entity holds."""
    found: int = conn.execute(
        select(func.count()).where(artifact_blobs.c.entity_id == entity_pk)
    ).scalar_one()
    return found
