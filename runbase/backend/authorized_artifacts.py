"""Artifacts seen by one principal, with the rules of runs (``authorized.Access``): another
entity's artifacts answer ``NotFound``; a write with a read-only key answers ``Forbidden``."""

from __future__ import annotations

from collections.abc import Iterator

from runbase.backend.artifacts import (
    ArtifactChanges,
    ArtifactFile,
    ArtifactRecord,
    Artifacts,
    CollectionRecord,
    NewArtifact,
)
from runbase.backend.authorized import Access
from runbase.backend.base import Chunks, Page, RunPath


def _project(entity: str, project: str) -> str:
    return f"project {entity}/{project}"


class AuthorizedArtifacts(Artifacts):
    """``artifacts`` as ``access`` allows."""

    def __init__(self, artifacts: Artifacts, access: Access) -> None:
        self.artifacts = artifacts
        self.access = access

    def _readable(self, artifact_id: int) -> ArtifactRecord:
        found = self.artifacts.get(artifact_id)
        self.access.read(found.entity, f"artifact {artifact_id}")
        return found

    def _writable(self, artifact_id: int) -> ArtifactRecord:
        found = self._readable(artifact_id)
        self.access.write(found.entity, f"artifact {artifact_id}")
        return found

    # logging
    def create(self, new: NewArtifact) -> ArtifactRecord:
        self.access.write(new.entity, _project(new.entity, new.project))
        return self.artifacts.create(new)

    def missing_blobs(self, artifact_id: int, md5s: list[str]) -> set[str]:
        self._writable(artifact_id)
        return self.artifacts.missing_blobs(artifact_id, md5s)

    def put_blob(self, entity: str, md5: str, chunks: Chunks) -> int:
        self.access.write(entity, f"entity {entity}")
        return self.artifacts.put_blob(entity, md5, chunks)

    def put_manifest(self, artifact_id: int, chunks: Chunks) -> None:
        self._writable(artifact_id)
        self.artifacts.put_manifest(artifact_id, chunks)

    def commit(self, artifact_id: int) -> ArtifactRecord:
        self._writable(artifact_id)
        return self.artifacts.commit(artifact_id)

    def use(self, path: RunPath, artifact_id: int) -> None:
        self.access.write(path.entity, f"run {path}")
        self._readable(artifact_id)
        self.artifacts.use(path, artifact_id)

    def update(self, artifact_id: int, changes: ArtifactChanges) -> ArtifactRecord:
        self._writable(artifact_id)
        return self.artifacts.update(artifact_id, changes)

    # reading
    def get(self, artifact_id: int) -> ArtifactRecord:
        return self._readable(artifact_id)

    def find(self, entity: str, project: str, name: str, alias: str) -> ArtifactRecord:
        self.access.read(entity, f"artifact {entity}/{project}/{name}:{alias}")
        return self.artifacts.find(entity, project, name, alias)

    def find_by_client_id(self, client_id: str) -> ArtifactRecord:
        found = self.artifacts.find_by_client_id(client_id)
        self.access.read(found.entity, f"artifact with client id {client_id!r}")
        return found

    def collection(self, entity: str, project: str, name: str) -> CollectionRecord:
        self.access.read(entity, f"artifact {entity}/{project}/{name}")
        return self.artifacts.collection(entity, project, name)

    def collections(
        self, entity: str, project: str, type: str | None, per_page: int, cursor: str | None
    ) -> Page[CollectionRecord]:
        self.access.read(entity, _project(entity, project))
        return self.artifacts.collections(entity, project, type, per_page, cursor)

    def versions(
        self, entity: str, project: str, name: str, per_page: int, cursor: str | None
    ) -> Page[ArtifactRecord]:
        self.access.read(entity, f"artifact {entity}/{project}/{name}")
        return self.artifacts.versions(entity, project, name, per_page, cursor)

    def of_run(
        self, path: RunPath, used: bool, per_page: int, cursor: str | None
    ) -> Page[ArtifactRecord]:
        self.access.read(path.entity, f"run {path}")
        page = self.artifacts.of_run(path, used, per_page, cursor)
        seen = [record for record in page.items if self.access.can_read(record.entity)]
        return Page(seen, page.next_cursor)

    def users(self, artifact_id: int, per_page: int, cursor: str | None) -> Page[RunPath]:
        self._readable(artifact_id)
        page = self.artifacts.users(artifact_id, per_page, cursor)
        seen = [path for path in page.items if self.access.can_read(path.entity)]
        return Page(seen, page.next_cursor)

    def files(
        self, artifact_id: int, names: list[str], per_page: int, cursor: str | None
    ) -> Page[ArtifactFile]:
        self._readable(artifact_id)
        return self.artifacts.files(artifact_id, names, per_page, cursor)

    def read_blob(self, entity: str, md5: str) -> Iterator[bytes]:
        self.access.read(entity, f"file {md5}")
        return self.artifacts.read_blob(entity, md5)

    def read_manifest(self, artifact_id: int) -> Iterator[bytes]:
        self._readable(artifact_id)
        return self.artifacts.read_manifest(artifact_id)
