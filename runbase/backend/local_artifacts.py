"""The artifacts of a store in this process (``LocalBackend.artifacts()``)."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from sqlalchemy import Connection

from runbase import checks
from runbase.backend.artifacts import (
    ArtifactChanges,
    ArtifactFile,
    ArtifactRecord,
    Artifacts,
    CollectionRecord,
    NewArtifact,
    check_alias,
    check_md5,
    check_metadata,
    check_name,
    check_new_artifact,
    parse_manifest,
)
from runbase.backend.base import CHUNK_SIZE, Chunks, Page, RunPath, check_path
from runbase.backend.local import _comm_errors, _runbase_errors
from runbase.errors import Conflict, InvalidInput, NotFound
from runbase.store import Store
from runbase.store import artifact_files as file_store
from runbase.store import artifacts as artifact_store
from runbase.store import runs as run_store
from runbase.store.files import check_name as check_file_name


class LocalArtifacts(Artifacts):
    """Artifacts kept in ``store``: rows in its database, bytes in its blob store."""

    def __init__(self, store: Store) -> None:
        self.store = store

    # logging
    def create(self, new: NewArtifact) -> ArtifactRecord:
        check_new_artifact(new)
        values = {
            "name": new.name,
            "type": new.type,
            "digest": new.digest,
            "description": new.description,
            "metadata": new.metadata,
            "aliases": list(dict.fromkeys(new.aliases)),
            "history_step": new.history_step,
            "client_id": new.client_id,
            "dedupe": bool(new.dedupe),
        }
        dialect = self.store.dialect

        def write(conn: Connection) -> int:
            run_pk = None
            if new.run_id is not None:
                run_pk = run_store.run_pk(conn, new.entity, new.project, new.run_id)
            return artifact_store.create(dialect, conn, new.entity, new.project, run_pk, values)

        return self.get(self.store.write_fn(write))

    def missing_blobs(self, artifact_id: int, md5s: list[str]) -> set[str]:
        _check_id(artifact_id)
        for md5 in md5s:
            check_md5(md5)
        with self.store.read() as conn:
            entity = artifact_store.get(conn, artifact_id)["entity"]
            held = file_store.held(conn, file_store.entity_pk(conn, entity), md5s)
        return set(md5s) - set(held)

    def put_blob(self, entity: str, md5: str, chunks: Chunks) -> int:
        checks.name_part(entity, "entity")
        check_md5(md5)
        with self.store.read() as conn:
            entity_pk = file_store.entity_pk(conn, entity)
        size = file_store.write_blob(self.store, entity_pk, md5, chunks)
        dialect = self.store.dialect
        self.store.write_fn(
            lambda conn: file_store.record_blob(dialect, conn, entity_pk, md5, size)
        )
        return size

    def put_manifest(self, artifact_id: int, chunks: Chunks) -> None:
        if self.get(artifact_id).state != "PENDING":
            raise Conflict(f"artifact {artifact_id} is committed: its manifest cannot change")
        file_store.write_manifest(self.store, artifact_id, chunks)
        self.store.write_fn(lambda conn: artifact_store.mark_manifest(conn, artifact_id))

    def commit(self, artifact_id: int) -> ArtifactRecord:
        record = self.get(artifact_id)
        if record.state == "COMMITTED":
            return record
        try:
            manifest = file_store.read_manifest(self.store, artifact_id, CHUNK_SIZE)
        except NotFound:
            raise InvalidInput(
                f"artifact {artifact_id} has no manifest yet: upload it first"
            ) from None
        entries = parse_manifest(manifest)
        stored = [(check_file_name(e.name), e.md5, e.size) for e in entries if e.md5 is not None]
        size = sum(entry.size for entry in entries)
        dialect = self.store.dialect

        def write(conn: Connection) -> None:
            if not artifact_store.check_pending(conn, artifact_id):
                return
            entity_pk = file_store.entity_pk(conn, record.entity)
            held = file_store.held(conn, entity_pk, [md5 for _, md5, _ in stored])
            for name, md5, length in stored:
                if md5 not in held:
                    raise InvalidInput(f"file {name!r} of the manifest was never uploaded")
                if held[md5] != length:
                    raise InvalidInput(
                        f"file {name!r}: the manifest says {length} bytes, {held[md5]} arrived"
                    )
            file_store.save_files(dialect, conn, artifact_id, stored)
            artifact_store.commit(dialect, conn, artifact_id, size, len(entries))

        self.store.write_fn(write)
        return self.get(artifact_id)

    def use(self, path: RunPath, artifact_id: int) -> None:
        _check_id(artifact_id)
        check_path(path)
        dialect = self.store.dialect

        def write(conn: Connection) -> None:
            run_pk = run_store.run_pk(conn, *path)
            artifact_store.record_use(dialect, conn, run_pk, artifact_id)

        self.store.write_fn(write)

    def update(self, artifact_id: int, changes: ArtifactChanges) -> ArtifactRecord:
        _check_id(artifact_id)
        values: dict[str, Any] = {}
        if changes.description is not None:
            if not isinstance(changes.description, str):
                raise InvalidInput(f"description must be a string, not {changes.description!r}")
            values["description"] = changes.description
        if changes.metadata is not None:
            values["artifact_metadata"] = check_metadata(changes.metadata)
        add = tuple(dict.fromkeys(check_alias(alias) for alias in changes.add_aliases))
        remove = tuple(dict.fromkeys(check_alias(alias) for alias in changes.remove_aliases))
        dialect = self.store.dialect
        self.store.write_fn(
            lambda conn: artifact_store.change(dialect, conn, artifact_id, values, add, remove)
        )
        return self.get(artifact_id)

    # reading
    def get(self, artifact_id: int) -> ArtifactRecord:
        _check_id(artifact_id)
        with self.store.read() as conn:
            return _record(artifact_store.get(conn, artifact_id))

    def find(self, entity: str, project: str, name: str, alias: str) -> ArtifactRecord:
        checks.name_part(entity, "entity")
        checks.name_part(project, "project")
        check_name(name)
        if not isinstance(alias, str) or not alias:
            raise InvalidInput(f"alias must be a non-empty string, not {alias!r}")
        with self.store.read() as conn:
            return _record(artifact_store.find(conn, entity, project, name, alias))

    def find_by_client_id(self, client_id: str) -> ArtifactRecord:
        if not isinstance(client_id, str):
            raise InvalidInput(f"client_id must be a string, not {client_id!r}")
        with self.store.read() as conn:
            return _record(artifact_store.find_by_client_id(conn, client_id))

    def collection(self, entity: str, project: str, name: str) -> CollectionRecord:
        with self.store.read() as conn:
            return CollectionRecord(**artifact_store.collection(conn, entity, project, name))

    def collections(
        self, entity: str, project: str, type: str | None, per_page: int, cursor: str | None
    ) -> Page[CollectionRecord]:
        checks.positive_int(per_page, "per_page")
        with self.store.read() as conn:
            rows = artifact_store.collections(conn, entity, project, type, per_page + 1, cursor)
        return _page([CollectionRecord(**row) for row in rows], per_page, lambda c: c.name)

    def versions(
        self, entity: str, project: str, name: str, per_page: int, cursor: str | None
    ) -> Page[ArtifactRecord]:
        checks.positive_int(per_page, "per_page")
        before = _int_cursor(cursor)
        with self.store.read() as conn:
            rows = artifact_store.versions(conn, entity, project, name, per_page + 1, before)
        return _page([_record(row) for row in rows], per_page, lambda a: str(a.version_index))

    def of_run(
        self, path: RunPath, used: bool, per_page: int, cursor: str | None
    ) -> Page[ArtifactRecord]:
        check_path(path)
        checks.positive_int(per_page, "per_page")
        after = _int_cursor(cursor)
        with self.store.read() as conn:
            run_pk = run_store.run_pk(conn, *path)
            rows = artifact_store.of_run(conn, run_pk, used, per_page + 1, after)
        return _page([_record(row) for row in rows], per_page, lambda a: str(a.id))

    def users(self, artifact_id: int, per_page: int, cursor: str | None) -> Page[RunPath]:
        _check_id(artifact_id)
        checks.positive_int(per_page, "per_page")
        with self.store.read() as conn:
            rows = artifact_store.users(conn, artifact_id, per_page + 1, _int_cursor(cursor))
        more = len(rows) > per_page
        rows = rows[:per_page]
        paths = [RunPath(row["entity"], row["project"], row["run_id"]) for row in rows]
        return Page(paths, str(rows[-1]["pk"]) if more else None)

    def files(
        self, artifact_id: int, names: list[str], per_page: int, cursor: str | None
    ) -> Page[ArtifactFile]:
        _check_id(artifact_id)
        checks.positive_int(per_page, "per_page")
        if not isinstance(names, list) or not all(isinstance(name, str) for name in names):
            raise InvalidInput(f"names must be a list of strings, not {names!r}")
        with self.store.read() as conn:
            rows = file_store.files_page(conn, artifact_id, names, per_page + 1, cursor)
        return _page([ArtifactFile(*row) for row in rows], per_page, lambda f: f.name)

    def read_blob(self, entity: str, md5: str) -> Iterator[bytes]:
        check_md5(md5)
        with self.store.read() as conn:
            entity_pk = file_store.entity_pk(conn, entity)
            if not file_store.held(conn, entity_pk, [md5]):
                raise NotFound(f"no file of {entity!r} has md5 {md5}")
        chunks = self.store.blobs.read(file_store.blob_key(entity_pk, md5), CHUNK_SIZE)
        return _comm_errors(chunks)

    def read_manifest(self, artifact_id: int) -> Iterator[bytes]:
        self.get(artifact_id)
        chunks = self.store.blobs.read(file_store.manifest_key(artifact_id), CHUNK_SIZE)
        return _comm_errors(chunks)


def _check_id(artifact_id: Any) -> int:
    if not isinstance(artifact_id, int) or isinstance(artifact_id, bool):
        raise InvalidInput(f"an artifact id must be an integer, not {artifact_id!r}")
    return artifact_id


def _int_cursor(cursor: str | None) -> int | None:
    if cursor is None:
        return None
    try:
        return int(cursor)
    except (TypeError, ValueError):
        raise InvalidInput(f"not a cursor of this list: {cursor!r}") from None


def _page(items: list[Any], per_page: int, key: Any) -> Page[Any]:
    """The first ``per_page`` of ``items`` (one more was read to know whether more follow)."""
    more = len(items) > per_page
    items = items[:per_page]
    return Page(items, key(items[-1]) if more else None)


def _record(row: dict[str, Any]) -> ArtifactRecord:
    return ArtifactRecord(**row)


for _name in Artifacts.__abstractmethods__:
    setattr(LocalArtifacts, _name, _runbase_errors(getattr(LocalArtifacts, _name)))
