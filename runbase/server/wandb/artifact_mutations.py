"""How the wandb client logs and uses artifacts: ``createArtifact`` (a pending version, or
the latest one when its digest is the same), ``createArtifactManifest`` (where to PUT the
manifest), ``createArtifactFiles`` (where to PUT each file the entity does not hold yet:
one signed URL per file, never multipart), ``commitArtifact``, ``useArtifact``, and the
public API's updates of a version and its aliases.

What runbase does not have answers with an ``Unsupported`` error naming it: linking to
registries and portfolios, TTLs, artifact tags, deleting, incremental and distributed
(``upsert_artifact``) manifests, multipart uploads.
"""

from __future__ import annotations

from typing import Any

from ariadne import MutationType

from runbase.backend.artifacts import LATEST, ArtifactChanges, ArtifactRecord, NewArtifact, md5_hex
from runbase.backend.authorized import Access
from runbase.backend.base import RunPath
from runbase.errors import InvalidInput, Unsupported
from runbase.server.wandb import ids
from runbase.server.wandb.artifact_files import file_upload_url, manifest_upload_url
from runbase.server.wandb.artifact_nodes import (
    MANIFEST_NAME,
    ArtifactFileNode,
    artifacts,
    parse_artifact_id,
)
from runbase.server.wandb.context import Info
from runbase.server.wandb.runs import connection

NO_TTL = (None, -1, -2)  # W&B's "inherit" and "disabled"

mutation = MutationType()


def _writable(info: Info, artifact_id: int) -> ArtifactRecord:
    """The version, when the caller may change it (``NotFound``, ``Forbidden`` else)."""
    found = artifacts(info).get(artifact_id)
    Access(info.context.principal).write(found.entity, f"artifact {artifact_id}")
    return found


def _unsupported_extras(input: dict[str, Any]) -> None:
    if input.get("ttlDurationSeconds") not in NO_TTL:
        raise Unsupported("runbase does not support artifact TTLs (ttl)")
    if input.get("tags") or input.get("tagsToAdd") or input.get("tagsToDelete"):
        raise Unsupported("runbase does not support artifact tags")


@mutation.field("createArtifact")
def resolve_create_artifact(_: None, info: Info, input: dict[str, Any]) -> dict[str, Any]:
    _unsupported_extras(input)
    if input.get("distributedID"):
        raise Unsupported("runbase does not support distributed artifacts (upsert_artifact)")
    name = input["artifactCollectionName"]
    if any(other != name for other in input.get("artifactCollectionNames") or []):
        raise Unsupported("runbase does not support logging to several collections at once")
    aliases = []
    for alias in input.get("aliases") or []:
        if alias["artifactCollectionName"] != name:
            raise Unsupported("runbase does not support aliases in another collection")
        aliases.append(alias["alias"])
    new = NewArtifact(
        entity=input["entityName"] or info.context.user,  # empty from an offline run's sync
        project=input["projectName"],
        name=name,
        type=input["artifactTypeName"],
        digest=input["digest"],
        description=input.get("description"),
        metadata=_metadata(input.get("metadata")) or {},
        aliases=tuple(aliases),
        run_id=input.get("runName"),
        history_step=input.get("historyStep"),
        client_id=input.get("clientID"),
        dedupe=input.get("enableDigestDeduplication") is not False,
    )
    return {"artifact": artifacts(info).create(new)}


def _metadata(value: Any) -> dict[str, Any] | None:
    if value is not None and not isinstance(value, dict):
        raise InvalidInput(f"metadata must be a JSON object, not {value!r}")
    return value


@mutation.field("createArtifactManifest")
def resolve_create_manifest(_: None, info: Info, input: dict[str, Any]) -> dict[str, Any]:
    if input.get("type") not in (None, "FULL"):
        raise Unsupported(
            f"runbase does not support {input['type'].lower()} manifests (incremental or "
            "distributed artifacts): log the whole artifact"
        )
    return _manifest(info, parse_artifact_id(input["artifactID"]))


@mutation.field("updateArtifactManifest")
def resolve_update_manifest(_: None, info: Info, input: dict[str, Any]) -> dict[str, Any]:
    return _manifest(info, parse_artifact_id(input["artifactManifestID"], "ArtifactManifest"))


def _manifest(info: Info, artifact_id: int) -> dict[str, Any]:
    record = _writable(info, artifact_id)
    url = manifest_upload_url(info.context, record.id) if record.state == "PENDING" else None
    return {
        "artifactManifest": {
            "id": ids.global_id("ArtifactManifest", str(record.id)),
            "file": ArtifactFileNode(record, MANIFEST_NAME, None, upload_url=url),
        }
    }


@mutation.field("createArtifactFiles")
def resolve_create_files(_: None, info: Info, input: dict[str, Any]) -> dict[str, Any]:
    """An upload URL for each file whose bytes the entity does not hold yet (null for the
    others: the client then skips them), in the order asked."""
    specs = [
        (parse_artifact_id(spec["artifactID"]), spec["name"], md5_hex(spec["md5"]))
        for spec in input["artifactFiles"]
    ]
    records: dict[int, ArtifactRecord] = {}
    missing: dict[int, set[str]] = {}
    for artifact_id in dict.fromkeys(artifact_id for artifact_id, _, _ in specs):
        records[artifact_id] = _writable(info, artifact_id)
        md5s = [md5 for other, _, md5 in specs if other == artifact_id]
        missing[artifact_id] = artifacts(info).missing_blobs(artifact_id, md5s)
    nodes = []
    for artifact_id, name, md5 in specs:
        record = records[artifact_id]
        url = None
        if md5 in missing[artifact_id]:
            url = file_upload_url(info.context, record.entity, md5)
        nodes.append(ArtifactFileNode(record, name, md5, upload_url=url))
    return {"files": connection(nodes, None)}


@mutation.field("completeMultipartUploadArtifact")
def resolve_complete_multipart(_: None, info: Info, input: dict[str, Any]) -> None:
    raise Unsupported("runbase does not support multipart uploads: it hands out one URL a file")


@mutation.field("commitArtifact")
def resolve_commit(_: None, info: Info, input: dict[str, Any]) -> dict[str, Any]:
    return {"artifact": artifacts(info).commit(parse_artifact_id(input["artifactID"]))}


@mutation.field("useArtifact")
def resolve_use(_: None, info: Info, input: dict[str, Any]) -> dict[str, Any]:
    artifact_id = parse_artifact_id(input["artifactID"])
    path = RunPath(input["entityName"] or info.context.user, input["projectName"], input["runName"])
    artifacts(info).use(path, artifact_id)
    return {"artifact": artifacts(info).get(artifact_id)}


@mutation.field("updateArtifact")
def resolve_update(_: None, info: Info, input: dict[str, Any]) -> dict[str, Any]:
    _unsupported_extras(input)
    artifact_id = parse_artifact_id(input["artifactID"])
    add: tuple[str, ...] = ()
    remove: tuple[str, ...] = ()
    if input.get("aliases") is not None:  # the version's aliases become these
        record = artifacts(info).get(artifact_id)
        add = tuple(_own_aliases(record, input["aliases"]))
        remove = tuple(a for a in record.aliases if a not in add and a != LATEST)
    changes = ArtifactChanges(
        description=input.get("description"),
        metadata=_metadata(input.get("metadata")),
        add_aliases=add,
        remove_aliases=remove,
    )
    return {"artifact": artifacts(info).update(artifact_id, changes)}


def _own_aliases(record: ArtifactRecord, aliases: list[dict[str, Any]]) -> list[str]:
    """The aliases asked for, all in the version's own collection (``Unsupported`` else:
    that would link it elsewhere)."""
    found = []
    for alias in aliases:
        where = (alias.get("entityName"), alias.get("projectName"))
        if alias["artifactCollectionName"] != record.name or where not in {
            (None, None),
            (record.entity, record.project),
        }:
            raise Unsupported(
                "runbase does not support aliases in another collection (linking artifacts)"
            )
        found.append(alias["alias"])
    return found


@mutation.field("addAliases")
def resolve_add_aliases(_: None, info: Info, input: dict[str, Any]) -> dict[str, Any]:
    artifact_id = parse_artifact_id(input["artifactID"])
    add = tuple(_own_aliases(artifacts(info).get(artifact_id), input["aliases"]))
    artifacts(info).update(artifact_id, ArtifactChanges(add_aliases=add))
    return {"success": True}


@mutation.field("deleteAliases")
def resolve_delete_aliases(_: None, info: Info, input: dict[str, Any]) -> dict[str, Any]:
    artifact_id = parse_artifact_id(input["artifactID"])
    remove = tuple(_own_aliases(artifacts(info).get(artifact_id), input["aliases"]))
    artifacts(info).update(artifact_id, ArtifactChanges(remove_aliases=remove))
    return {"success": True}


@mutation.field("deleteArtifact")
def resolve_delete(_: None, info: Info, input: dict[str, Any]) -> None:
    raise Unsupported("runbase does not support deleting artifacts")


@mutation.field("linkArtifact")
@mutation.field("unlinkArtifact")
def resolve_link(_: None, info: Info, input: dict[str, Any]) -> None:
    raise Unsupported(
        "runbase does not support linking artifacts to registries or portfolios (LinkArtifact)"
    )


bindables = [mutation]
