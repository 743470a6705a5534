"""Artifacts in W&B's shapes (``schema/artifacts.graphql``): an artifact by id or by
``name:alias`` in a project, its collection (an ``ArtifactSequence``), type, aliases,
files and manifest, the runs that logged and used it. Writes are in
``artifact_mutations``, bytes in ``artifact_files``, the nodes in ``artifact_nodes``.
What another entity holds reads as null.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, TypeVar

from ariadne import InterfaceType, ObjectType, QueryType, UnionType

from runbase.backend.artifacts import ArtifactFile, ArtifactRecord
from runbase.backend.base import Page, RunPath, RunRecord
from runbase.errors import InvalidInput, NotFound, Unsupported
from runbase.server.wandb import artifact_files, artifact_mutations, ids
from runbase.server.wandb.artifact_nodes import (
    MANIFEST_NAME,
    AliasNode,
    ArtifactFileNode,
    SequenceNode,
    TypeNode,
    artifact_id,
    artifacts,
    parse_artifact_id,
    parse_name,
    sequence,
)
from runbase.server.wandb.context import Info
from runbase.server.wandb.runs import ProjectNode, connection

T = TypeVar("T")
COUNT_PAGE = 1000  # items a count reads at a time
COMMITTED = {"state": "COMMITTED"}
NEWEST_FIRST = (None, "", "-createdAt", "-versionIndex")

query = QueryType()
project_type = ObjectType("Project")
run_type = ObjectType("Run")
artifact_type = ObjectType("Artifact")
membership_type = ObjectType("ArtifactCollectionMembership")
sequence_type = ObjectType("ArtifactSequence")
collection_interface = InterfaceType("ArtifactCollection")
type_type = ObjectType("ArtifactType")
alias_type = ObjectType("ArtifactAlias")
creator_union = UnionType("ArtifactCreator")


def _or_none(find: Callable[[], T]) -> T | None:
    try:
        return find()
    except NotFound:
        return None


def _count(fetch: Callable[[str | None], Page[Any]]) -> int:
    """How many items a paged list holds, reading it through."""
    total, cursor = 0, None
    while True:
        page = fetch(cursor)
        total += len(page.items)
        if page.next_cursor is None:
            return total
        cursor = page.next_cursor


def _per_page(first: int | None, default: int = 50) -> int:
    if first is None:
        return default
    if first < 1:
        raise InvalidInput(f"first must be a positive integer, not {first}")
    return min(first, 10_000)


def counted(page: Page[Any], nodes: list[Any], count: Callable[[], int]) -> dict[str, Any]:
    """A connection over one page whose ``totalCount`` is counted only when asked."""
    return {**connection(nodes, page.next_cursor), "totalCount": lambda info: count()}


# queries
@query.field("artifact")
def resolve_artifact(_: None, info: Info, id: str) -> ArtifactRecord | None:
    return _or_none(lambda: artifacts(info).get(parse_artifact_id(id)))


@query.field("clientIDMapping")
def resolve_client_id_mapping(_: None, info: Info, clientID: str) -> dict[str, str] | None:
    """The server id of the version a client logged under ``clientID`` (the client writes
    references to artifacts it has not logged yet with it)."""
    found = _or_none(lambda: artifacts(info).find_by_client_id(clientID))
    return None if found is None else {"serverID": artifact_id(found)}


@project_type.field("artifact")
@project_type.field("artifactCollectionMembership")
def resolve_project_artifact(node: ProjectNode, info: Info, name: str) -> ArtifactRecord | None:
    collection, alias = parse_name(name)
    return _or_none(lambda: artifacts(info).find(node.entity, node.name, collection, alias))


@project_type.field("artifactType")
def resolve_project_artifact_type(node: ProjectNode, info: Info, name: str) -> TypeNode | None:
    page = _or_none(lambda: artifacts(info).collections(node.entity, node.name, name, 1, None))
    return TypeNode(node.entity, node.name, name) if page and page.items else None


@project_type.field("artifactCollection")
def resolve_project_collection(node: ProjectNode, info: Info, name: str) -> SequenceNode | None:
    found = _or_none(lambda: artifacts(info).collection(node.entity, node.name, name))
    return None if found is None else SequenceNode(found.entity, found.project, name, found.type)


@project_type.field("artifactTypes")
def resolve_project_artifact_types(
    node: ProjectNode, info: Info, after: str | None = None, first: int | None = None
) -> dict[str, Any]:
    """The types of the project's collections, in one page."""
    types: dict[str, None] = {}
    cursor = None
    while True:
        page = artifacts(info).collections(node.entity, node.name, None, COUNT_PAGE, cursor)
        types.update((collection.type, None) for collection in page.items)
        if (cursor := page.next_cursor) is None:
            break
    return connection([TypeNode(node.entity, node.name, name) for name in sorted(types)], None)


@project_type.field("artifactCollections")
def resolve_project_collections(
    node: ProjectNode, info: Info, after: str | None = None, first: int | None = None,
    filters: Any = None, order: str | None = None,
) -> dict[str, Any]:  # fmt: skip
    return _collections(info, node.entity, node.name, None, after, first, filters, order)


def _collections(
    info: Info, entity: str, project: str, type: str | None, after: str | None,
    first: int | None, filters: Any, order: str | None,
) -> dict[str, Any]:  # fmt: skip
    """The collections, by name (the only order; no filters)."""
    if filters or order:
        raise Unsupported("runbase does not support filtering or ordering artifact collections")

    def fetch(cursor: str | None, per_page: int = _per_page(first)) -> Any:
        return artifacts(info).collections(entity, project, type, per_page, cursor)

    page = fetch(after or None)
    nodes = [SequenceNode(c.entity, c.project, c.name, c.type) for c in page.items]
    return counted(page, nodes, lambda: _count(lambda cursor: fetch(cursor, COUNT_PAGE)))


# runs
@run_type.field("outputArtifacts")
def resolve_output_artifacts(
    run: RunRecord, info: Info, after: str | None = None, first: int | None = None
) -> dict[str, Any]:
    return _of_run(info, run.path, False, after, first)


@run_type.field("inputArtifacts")
def resolve_input_artifacts(
    run: RunRecord, info: Info, after: str | None = None, first: int | None = None
) -> dict[str, Any]:
    return _of_run(info, run.path, True, after, first)


def _of_run(
    info: Info, path: RunPath, used: bool, after: str | None, first: int | None
) -> dict[str, Any]:
    def fetch(cursor: str | None, per_page: int = _per_page(first)) -> Page[ArtifactRecord]:
        return artifacts(info).of_run(path, used, per_page, cursor)

    page = fetch(after or None)
    return counted(page, page.items, lambda: _count(lambda cursor: fetch(cursor, COUNT_PAGE)))


# versions
@artifact_type.field("id")
def resolve_id(record: ArtifactRecord, info: Info) -> str:
    return artifact_id(record)


@membership_type.field("id")
def resolve_membership_id(record: ArtifactRecord, info: Info) -> str:
    return ids.global_id("ArtifactCollectionMembership", str(record.id))


for _type in (artifact_type, membership_type):
    _type.set_field("versionIndex", lambda record, info: record.version_index)
    _type.set_field("createdAt", lambda record, info: record.created_at)
    _type.set_field("aliases", lambda record, info: [AliasNode(record, a) for a in record.aliases])
artifact_type.set_field("artifactSequence", lambda record, info: sequence(record))
membership_type.set_field("artifactCollection", lambda record, info: sequence(record))
membership_type.set_field("artifact", lambda record, info: record)
artifact_type.set_field(
    "artifactType", lambda record, info: TypeNode(record.entity, record.project, record.type)
)
artifact_type.set_field("metadata", lambda record, info: record.metadata)
artifact_type.set_field("labels", lambda record, info: None)
artifact_type.set_field("ttlDurationSeconds", lambda record, info: -2)  # W&B's "no TTL"
artifact_type.set_field("ttlIsInherited", lambda record, info: False)
artifact_type.set_field("tags", lambda record, info: [])
artifact_type.set_field("historyStep", lambda record, info: record.history_step)
artifact_type.set_field("digestAlgorithm", lambda record, info: "MANIFEST_MD5")
artifact_type.set_field("commitHash", lambda record, info: None)
artifact_type.set_field("fileCount", lambda record, info: record.file_count)
artifact_type.set_field("updatedAt", lambda record, info: record.updated_at)


@artifact_type.field("currentManifest")
def resolve_current_manifest(record: ArtifactRecord, info: Info) -> dict[str, Any]:
    return {
        "id": ids.global_id("ArtifactManifest", str(record.id)),
        "file": ArtifactFileNode(record, MANIFEST_NAME, None),
    }


@artifact_type.field("files")
@membership_type.field("files")
def resolve_files(
    record: ArtifactRecord,
    info: Info,
    names: list[str | None] | None = None,
    after: str | None = None,
    first: int | None = None,
) -> dict[str, Any]:
    wanted = [name for name in names or [] if name]

    def fetch(cursor: str | None, per_page: int = _per_page(first)) -> Page[ArtifactFile]:
        return artifacts(info).files(record.id, wanted, per_page, cursor)

    page = fetch(after or None)
    nodes = [ArtifactFileNode(record, file.name, file.md5, file.size) for file in page.items]
    return counted(page, nodes, lambda: _count(lambda cursor: fetch(cursor, COUNT_PAGE)))


@artifact_type.field("filesByManifestEntries")
def resolve_files_by_entries(
    record: ArtifactRecord,
    info: Info,
    storageLayout: str,
    manifestVersion: str,
    entries: list[dict[str, Any]] | None = None,
    storageRegion: str | None = None,
) -> dict[str, Any]:
    """The files of the version that the manifest entries name, in their order (every file
    when no entry is given)."""
    if entries is None:
        found: dict[str, Any] = resolve_files(record, info, first=10_000)
        return found
    names = [entry["name"] for entry in entries]
    page = artifacts(info).files(record.id, names, max(len(names), 1), None)
    held = {file.name: file for file in page.items}
    nodes = [
        ArtifactFileNode(record, name, held[name].md5, held[name].size)
        for name in names
        if name in held
    ]
    return connection(nodes, None)


@artifact_type.field("createdBy")
def resolve_created_by(record: ArtifactRecord, info: Info) -> RunRecord | None:
    path = record.run_path
    return None if path is None else _run(info, path)


@creator_union.type_resolver
def resolve_creator_type(value: Any, *_: Any) -> str:
    return "Run" if isinstance(value, RunRecord) else "User"


@artifact_type.field("usedBy")
def resolve_used_by(
    record: ArtifactRecord, info: Info, after: str | None = None, first: int | None = None
) -> dict[str, Any]:
    page = artifacts(info).users(record.id, _per_page(first), after or None)
    runs = [_run(info, path) for path in page.items]
    return connection([run for run in runs if run is not None], page.next_cursor)


def _run(info: Info, path: RunPath) -> RunRecord | None:
    return _or_none(lambda: info.context.backend.get_run(path))


# aliases
@alias_type.field("id")
def resolve_alias_id(node: AliasNode, info: Info) -> str:
    return ids.global_id("ArtifactAlias", str(node.artifact.id), node.alias)


alias_type.set_field("alias", lambda node, info: node.alias)
alias_type.set_field("artifactCollection", lambda node, info: sequence(node.artifact))


# collections
@collection_interface.type_resolver
def resolve_collection_type(value: Any, *_: Any) -> str:
    return "ArtifactSequence"


@sequence_type.field("id")
def resolve_sequence_id(node: SequenceNode, info: Info) -> str:
    return ids.global_id("ArtifactSequence", node.entity, node.project, node.name)


sequence_type.set_field("name", lambda node, info: node.name)
sequence_type.set_field("description", lambda node, info: None)
sequence_type.set_field("updatedAt", lambda node, info: None)
sequence_type.set_field("project", lambda node, info: ProjectNode(node.entity, node.project))


@sequence_type.field("type")
@sequence_type.field("defaultArtifactType")
def resolve_sequence_type(node: SequenceNode, info: Info) -> TypeNode:
    return TypeNode(node.entity, node.project, node.type)


sequence_type.set_field("tags", lambda node, info: {"edges": []})
sequence_type.set_field("digestAlgorithm", lambda node, info: "MANIFEST_MD5")


@sequence_type.field("createdAt")
def resolve_sequence_created_at(node: SequenceNode, info: Info) -> float:
    return artifacts(info).collection(node.entity, node.project, node.name).created_at


@sequence_type.field("latestArtifact")
def resolve_latest(node: SequenceNode, info: Info) -> ArtifactRecord | None:
    found = artifacts(info).collection(node.entity, node.project, node.name)
    return None if found.latest_id is None else artifacts(info).get(found.latest_id)


@sequence_type.field("artifactMembership")
def resolve_membership(node: SequenceNode, info: Info, aliasName: str) -> ArtifactRecord | None:
    return _or_none(lambda: artifacts(info).find(node.entity, node.project, node.name, aliasName))


@sequence_type.field("artifacts")
def resolve_versions(
    node: SequenceNode,
    info: Info,
    after: str | None = None,
    first: int | None = None,
    order: str | None = None,
    filters: Any = None,
) -> dict[str, Any]:
    """The committed versions of the collection, newest first (the only order; the one
    filter is the client's default, committed versions)."""
    if filters not in (None, {}, COMMITTED):
        raise Unsupported("runbase does not support filters on an artifact's versions")
    if order not in NEWEST_FIRST:
        raise Unsupported(f"runbase lists an artifact's versions newest first, not by {order!r}")

    def fetch(cursor: str | None, per_page: int = _per_page(first)) -> Page[ArtifactRecord]:
        return artifacts(info).versions(node.entity, node.project, node.name, per_page, cursor)

    page = fetch(after or None)
    found = counted(page, page.items, lambda: _count(lambda cursor: fetch(cursor, COUNT_PAGE)))
    for edge in found["edges"]:
        edge["version"] = edge["node"].version
    return found


# types
@type_type.field("id")
def resolve_type_id(node: TypeNode, info: Info) -> str:
    return ids.global_id("ArtifactType", node.entity, node.project, node.name)


type_type.set_field("name", lambda node, info: node.name)
type_type.set_field("description", lambda node, info: None)


@type_type.field("createdAt")
def resolve_type_created_at(node: TypeNode, info: Info) -> float:
    first = artifacts(info).collections(node.entity, node.project, node.name, 1, None).items
    return min((c.created_at for c in first), default=0.0)


@type_type.field("artifactCollection")
@type_type.field("artifactSequence")
def resolve_type_collection(node: TypeNode, info: Info, name: str) -> SequenceNode | None:
    found = _or_none(lambda: artifacts(info).collection(node.entity, node.project, name))
    if found is None or found.type != node.name:
        return None
    return SequenceNode(found.entity, found.project, found.name, found.type)


@type_type.field("artifactCollections")
def resolve_type_collections(
    node: TypeNode, info: Info, after: str | None = None, first: int | None = None,
    filters: Any = None, order: str | None = None,
) -> dict[str, Any]:  # fmt: skip
    return _collections(info, node.entity, node.project, node.name, after, first, filters, order)


bindables = [
    query, project_type, run_type, artifact_type, membership_type, sequence_type,
    collection_interface, type_type, alias_type, creator_union,
    *artifact_mutations.bindables, *artifact_files.bindables,
]  # fmt: skip
