"""Artifacts: typed, versioned sets of files of a project, as the wandb client logs them.

A collection (``entity/project/name``, of one type) holds versions. A version is created
pending, its files are uploaded (bytes are blobs of the entity named by their md5: the same
bytes are stored once), its manifest (W&B's JSON, which lists every file) is uploaded, and
the commit checks that every file the manifest lists was uploaded, gives the version its
index (``v0``, ``v1``, ...) and moves ``latest`` and the aliases asked for onto it. Logging
the same content as the latest version again makes no new version.

``Artifacts`` is the interface; a backend that keeps artifacts hands one out from
``Backend.artifacts()``.
"""

from __future__ import annotations

import abc
import base64
import binascii
import re
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

import orjson

from runbase import checks
from runbase.backend.base import Chunks, Page, RunPath, check_document
from runbase.errors import InvalidInput

STATES = ("PENDING", "COMMITTED")
LATEST = "latest"
VERSION = re.compile(r"v(\d+)")
NAME = re.compile(r"[\w.-]+")
MD5 = re.compile(r"[0-9a-f]{32}")


@dataclass(frozen=True)
class NewArtifact:
    """What ``Artifacts.create`` needs: where, what, and the aliases to give it at commit
    (``latest`` is always given). ``run_id`` names the run of the project that logs it;
    ``dedupe`` makes no new version when the latest has the same digest."""

    entity: str
    project: str
    name: str
    type: str
    digest: str
    description: str | None = None
    metadata: dict[str, Any] = field(default_factory=dict)
    aliases: tuple[str, ...] = ()
    run_id: str | None = None
    history_step: int | None = None
    client_id: str | None = None
    dedupe: bool = True


@dataclass(frozen=True)
class ArtifactRecord:
    """A version as stored. ``version_index`` is None until it is committed; ``aliases``
    are the aliases that point at it (not its ``vN``)."""

    id: int
    entity: str
    project: str
    name: str
    type: str
    version_index: int | None
    state: str
    digest: str
    description: str | None
    metadata: dict[str, Any]
    aliases: tuple[str, ...]
    size: int
    file_count: int
    run_id: str | None
    history_step: int | None
    client_id: str | None
    created_at: float
    updated_at: float

    @property
    def version(self) -> str | None:
        return None if self.version_index is None else f"v{self.version_index}"

    @property
    def run_path(self) -> RunPath | None:
        """The run that logged it."""
        return None if self.run_id is None else RunPath(self.entity, self.project, self.run_id)


@dataclass(frozen=True)
class CollectionRecord:
    """A collection of versions; ``latest_id`` is the version ``latest`` points at."""

    entity: str
    project: str
    name: str
    type: str
    created_at: float
    latest_id: int | None


@dataclass(frozen=True)
class ArtifactFile:
    """A file of a committed version: its path in the artifact, hex md5 and size."""

    name: str
    md5: str
    size: int


@dataclass(frozen=True)
class ArtifactChanges:
    """What ``Artifacts.update`` changes; None leaves a field as it is. Aliases are moved
    onto the version (``add_aliases``) or taken off it (``remove_aliases``)."""

    description: str | None = None
    metadata: dict[str, Any] | None = None
    add_aliases: tuple[str, ...] = ()
    remove_aliases: tuple[str, ...] = ()


@dataclass(frozen=True)
class ManifestEntry:
    """A file a manifest lists: its bytes were uploaded, or ``ref`` points elsewhere."""

    name: str
    md5: str | None
    size: int
    ref: str | None


def check_name(value: Any, what: str = "artifact name") -> str:
    """A collection name or alias: letters, digits, '_', '-', '.'."""
    if not isinstance(value, str) or not NAME.fullmatch(value) or len(value) > 128:
        raise InvalidInput(
            f"{what} must be 1 to 128 letters, digits, '_', '-' or '.', not {value!r}"
        )
    return value


def check_label(value: Any, what: str) -> str:
    """An alias or type: 1 to 128 characters, without '/' or ':'."""
    if not isinstance(value, str) or not 0 < len(value) <= 128 or {"/", ":"} & set(value):
        raise InvalidInput(f"{what} must be 1 to 128 characters without '/' or ':', not {value!r}")
    return value


def check_alias(value: Any) -> str:
    """An alias a user may give: not a version (``v3``), which the commit gives."""
    check_label(value, "alias")
    if VERSION.fullmatch(value):
        raise InvalidInput(f"alias {value!r} is a version: versions are given at commit")
    return str(value)


def check_new_artifact(new: NewArtifact) -> NewArtifact:
    """``InvalidInput`` naming the first field of ``new`` that is wrong."""
    checks.name_part(new.entity, "entity")
    checks.name_part(new.project, "project")
    check_name(new.name)
    check_label(new.type, "artifact type")
    if not isinstance(new.digest, str) or not 0 < len(new.digest) <= 128:
        raise InvalidInput(f"digest must be a string of 1 to 128 characters, not {new.digest!r}")
    if new.description is not None and not isinstance(new.description, str):
        raise InvalidInput(f"description must be a string, not {new.description!r}")
    check_metadata(new.metadata)
    for alias in new.aliases:
        check_alias(alias)
    if new.run_id is not None:
        checks.name_part(new.run_id, "run id")
    checks.optional_int(new.history_step, "history_step")
    client_id = new.client_id
    if client_id is not None and (not isinstance(client_id, str) or len(client_id) > 128):
        raise InvalidInput(
            f"client_id must be a string of at most 128 characters, not {client_id!r}"
        )
    return new


def check_metadata(value: Any) -> dict[str, Any]:
    if not isinstance(value, dict):
        raise InvalidInput(f"metadata must be a dict, not {type(value).__name__}")
    check_document("metadata", value)
    return value


def check_md5(value: Any) -> str:
    """A hex md5 (32 lower-case hex digits)."""
    if not isinstance(value, str) or not MD5.fullmatch(value):
        raise InvalidInput(f"not a hex md5: {value!r}")
    return value


def md5_hex(b64: Any) -> str:
    """The hex of a base64 md5 (W&B's file digests)."""
    try:
        raw = base64.b64decode(b64, validate=True) if isinstance(b64, str) else b""
    except binascii.Error:
        raw = b""
    if len(raw) != 16:
        raise InvalidInput(f"not a base64 md5: {b64!r}")
    return raw.hex()


def parse_manifest(data: bytes) -> list[ManifestEntry]:
    """The entries of a W&B manifest (JSON: ``{"version": 1, "contents": {path: {"digest",
    "size", "ref"?}}}``); ``InvalidInput`` naming what is wrong."""
    try:
        manifest = orjson.loads(data)
    except orjson.JSONDecodeError as exc:
        raise InvalidInput(f"the manifest is not JSON: {exc}") from None
    if not isinstance(manifest, dict) or manifest.get("version") != 1:
        raise InvalidInput("the manifest must be a JSON object of version 1")
    contents = manifest.get("contents")
    if not isinstance(contents, dict):
        raise InvalidInput("the manifest's 'contents' must be an object of files by path")
    return [_entry(name, entry) for name, entry in contents.items()]


def _entry(name: str, entry: Any) -> ManifestEntry:
    if not isinstance(entry, dict):
        raise InvalidInput(f"manifest entry {name!r} must be an object")
    size = entry.get("size", 0)
    if not isinstance(size, int) or isinstance(size, bool) or size < 0:
        raise InvalidInput(f"manifest entry {name!r}: size must be a non-negative integer")
    ref = entry.get("ref") or None
    if ref is not None:
        if not isinstance(ref, str):
            raise InvalidInput(f"manifest entry {name!r}: ref must be a string")
        return ManifestEntry(name, None, size, ref)
    return ManifestEntry(name, md5_hex(entry.get("digest")), size, None)


class Artifacts(abc.ABC):
    """The artifacts of a backend. Ids are the versions' ``ArtifactRecord.id``."""

    # logging
    @abc.abstractmethod
    def create(self, new: NewArtifact) -> ArtifactRecord:
        """A new pending version; or, when the collection's latest version has the same
        digest, that version (committed), with the aliases of ``new`` moved onto it."""

    @abc.abstractmethod
    def missing_blobs(self, artifact_id: int, md5s: list[str]) -> set[str]:
        """Which of ``md5s`` (hex) the version's entity does not hold yet: to upload."""

    @abc.abstractmethod
    def put_blob(self, entity: str, md5: str, chunks: Chunks) -> int:
        """Store bytes of the entity whose md5 is ``md5`` (``InvalidInput`` when they have
        another, and nothing is stored); their size."""

    @abc.abstractmethod
    def put_manifest(self, artifact_id: int, chunks: Chunks) -> None:
        """Store the manifest of a pending version."""

    @abc.abstractmethod
    def commit(self, artifact_id: int) -> ArtifactRecord:
        """Commit a pending version (a committed one is returned as it is)."""

    @abc.abstractmethod
    def use(self, path: RunPath, artifact_id: int) -> None:
        """Record that the run used the version."""

    @abc.abstractmethod
    def update(self, artifact_id: int, changes: ArtifactChanges) -> ArtifactRecord: ...

    # reading
    @abc.abstractmethod
    def get(self, artifact_id: int) -> ArtifactRecord: ...

    @abc.abstractmethod
    def find(self, entity: str, project: str, name: str, alias: str) -> ArtifactRecord:
        """The version of collection ``name`` that ``alias`` (``latest``, ``v3``, a user's
        alias) names."""

    @abc.abstractmethod
    def find_by_client_id(self, client_id: str) -> ArtifactRecord: ...

    @abc.abstractmethod
    def collection(self, entity: str, project: str, name: str) -> CollectionRecord: ...

    @abc.abstractmethod
    def collections(
        self, entity: str, project: str, type: str | None, per_page: int, cursor: str | None
    ) -> Page[CollectionRecord]:
        """A project's collections by name (of one type when ``type`` is given)."""

    @abc.abstractmethod
    def versions(
        self, entity: str, project: str, name: str, per_page: int, cursor: str | None
    ) -> Page[ArtifactRecord]:
        """The committed versions of a collection, newest first."""

    @abc.abstractmethod
    def of_run(
        self, path: RunPath, used: bool, per_page: int, cursor: str | None
    ) -> Page[ArtifactRecord]:
        """The versions the run logged (or, ``used``, used), oldest first."""

    @abc.abstractmethod
    def users(self, artifact_id: int, per_page: int, cursor: str | None) -> Page[RunPath]:
        """The runs that used the version."""

    @abc.abstractmethod
    def files(
        self, artifact_id: int, names: list[str], per_page: int, cursor: str | None
    ) -> Page[ArtifactFile]:
        """The uploaded files of a committed version by name (only ``names`` if given)."""

    @abc.abstractmethod
    def read_blob(self, entity: str, md5: str) -> Iterator[bytes]:
        """Bytes of the entity by md5; ``NotFound`` is raised by the call."""

    @abc.abstractmethod
    def read_manifest(self, artifact_id: int) -> Iterator[bytes]:
        """The version's manifest; ``NotFound`` is raised by the call."""
