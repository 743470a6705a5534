"""What the artifact resolvers hand on: the nodes of W&B's artifact types, and their ids.

A version is both an ``Artifact`` and, in its own collection, an
``ArtifactCollectionMembership``: both nodes are its ``ArtifactRecord``.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from runbase.backend.artifacts import LATEST, ArtifactRecord, Artifacts
from runbase.errors import InvalidInput
from runbase.server.wandb import ids
from runbase.server.wandb.context import Info

MANIFEST_NAME = "wandb_manifest.json"


@dataclass(frozen=True)
class SequenceNode:
    """A collection (W&B's ``ArtifactSequence``), by name."""

    entity: str
    project: str
    name: str
    type: str


@dataclass(frozen=True)
class TypeNode:
    """An artifact type of a project (the type of some of its collections)."""

    entity: str
    project: str
    name: str


@dataclass(frozen=True)
class AliasNode:
    artifact: ArtifactRecord
    alias: str


@dataclass(frozen=True)
class ArtifactFileNode:
    """A ``File`` of a version: one of its files, or (``md5`` None) its manifest;
    ``upload_url`` where its bytes are to be sent, when that was asked."""

    artifact: ArtifactRecord
    name: str
    md5: str | None
    size: int = 0
    upload_url: str | None = None


def artifacts(info: Info) -> Artifacts:
    """The artifacts of the request's backend."""
    return info.context.backend.artifacts()


def sequence(record: ArtifactRecord) -> SequenceNode:
    return SequenceNode(record.entity, record.project, record.name, record.type)


def artifact_id(record: ArtifactRecord) -> str:
    return ids.global_id("Artifact", str(record.id))


def parse_artifact_id(value: Any, kind: str = "Artifact") -> int:
    """The id of a version from its ``Artifact`` (or ``ArtifactManifest``) id."""
    parts = ids.parse_global_id(kind, value) if isinstance(value, str) else []
    if len(parts) != 1 or not parts[0].isdigit():
        raise InvalidInput(f"not an {kind} id: {value!r}")
    return int(parts[0])


def parse_name(name: str) -> tuple[str, str]:
    """``collection`` and ``alias`` of ``collection:alias`` (``latest`` when left out)."""
    collection, _, alias = name.partition(":")
    return collection, alias or LATEST
