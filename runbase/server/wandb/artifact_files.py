"""The bytes of artifacts the W&B way: signed URLs to PUT a file (named by its md5) or a
version's manifest and to GET them back, the routes behind them, and artifact files as
W&B ``File`` nodes.

A token says what it allows (``PUT-ARTIFACT-FILE entity md5``, ``PUT-ARTIFACT-MANIFEST id``,
``GET-ARTIFACT-FILE entity md5 name size``, ``GET-ARTIFACT-MANIFEST id``): the run files'
routes refuse these, and these routes refuse theirs. A download answers a single ``Range``
(the client fetches files of 2 GiB and more in parts). When a signed URL fails the client
asks ``/artifacts/...`` or ``/artifactsV2/...`` with its key: those answer too.
"""

from __future__ import annotations

import base64
import mimetypes
import re
from collections.abc import Callable, Iterator
from typing import Any, cast

from ariadne import SchemaBindable
from graphql import GraphQLObjectType, GraphQLSchema, default_field_resolver
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import JSONResponse, Response, StreamingResponse

from runbase.backend.artifacts import check_md5
from runbase.backend.base import Backend
from runbase.errors import InvalidInput, RunbaseError
from runbase.server.auth import authorize
from runbase.server.limits import checked_upload
from runbase.server.routes import body_chunks
from runbase.server.wandb import ids
from runbase.server.wandb.artifact_nodes import ArtifactFileNode
from runbase.server.wandb.context import Context, Info, signer

UPLOAD_PATH = "/wandb/artifacts/upload/{token}"
DOWNLOAD_PATH = "/wandb/artifacts/download/{token}"
V1_PATH = "/artifacts/{entity}/{md5}"
V2_PATH = "/artifactsV2/{region}/{entity}/{rest:path}"  # .../<md5>/<file name>
RANGE = re.compile(r"bytes=(\d+)-(\d*)")


def file_upload_url(ctx: Context, entity: str, md5: str) -> str:
    token = ctx.signer.sign(["PUT-ARTIFACT-FILE", entity, md5])
    return ctx.base_url + UPLOAD_PATH.format(token=token)


def manifest_upload_url(ctx: Context, artifact_id: int) -> str:
    token = ctx.signer.sign(["PUT-ARTIFACT-MANIFEST", str(artifact_id)])
    return ctx.base_url + UPLOAD_PATH.format(token=token)


def download_url(ctx: Context, node: ArtifactFileNode) -> str:
    if node.md5 is None:
        claims = ["GET-ARTIFACT-MANIFEST", str(node.artifact.id)]
    else:
        claims = ["GET-ARTIFACT-FILE", node.artifact.entity, node.md5, node.name, str(node.size)]
    return ctx.base_url + DOWNLOAD_PATH.format(token=ctx.signer.sign(claims))


def b64_md5(md5: str | None) -> str | None:
    return None if md5 is None else base64.b64encode(bytes.fromhex(md5)).decode()


# ``File`` fields of artifact files; the run files' module resolves the others.
RESOLVERS: dict[str, Callable[[ArtifactFileNode, Info], Any]] = {
    "id": lambda node, info: ids.global_id("File", str(node.artifact.id), node.name),
    "name": lambda node, info: node.name,
    "displayName": lambda node, info: node.name,
    "url": lambda node, info: download_url(info.context, node),
    "directUrl": lambda node, info: download_url(info.context, node),
    "sizeBytes": lambda node, info: node.size,
    "mimetype": lambda node, info: mimetypes.guess_type(node.name)[0],
    "updatedAt": lambda node, info: node.artifact.updated_at,
    "md5": lambda node, info: b64_md5(node.md5),
    "digest": lambda node, info: b64_md5(node.md5),
    "uploadUrl": lambda node, info: node.upload_url,
    "uploadHeaders": lambda node, info: [],
    "artifact": lambda node, info: node.artifact,
}


class ArtifactFileFields(SchemaBindable):
    """Artifact files are W&B ``File``s as run files are: an ``ArtifactFileNode`` gets the
    resolvers above (None for a field they lack), any other node the resolver bound before
    (so graphql.py must bind this after the run files' module)."""

    def bind_to_schema(self, schema: GraphQLSchema) -> None:
        file = cast(GraphQLObjectType, schema.type_map["File"])
        for name, field in file.fields.items():
            field.resolve = _either(RESOLVERS.get(name), field.resolve or default_field_resolver)


def _either(mine: Callable[..., Any] | None, theirs: Callable[..., Any]) -> Callable[..., Any]:
    def resolve(node: Any, info: Info, **args: Any) -> Any:
        if isinstance(node, ArtifactFileNode):
            return None if mine is None else mine(node, info)
        return theirs(node, info, **args)

    return resolve


# the routes
def _failed(exc: RunbaseError) -> Response:
    return JSONResponse({"code": exc.code, "message": exc.message}, status_code=exc.status)


async def upload(request: Request) -> Response:
    """``PUT`` of a file's bytes, or a version's manifest, to a signed upload URL."""
    try:
        claims = signer(request).verify(request.path_params["token"])
        artifacts = request.app.state.backend.artifacts()
        limit = request.app.state.max_file_size
        chunks = checked_upload(body_chunks(request), request.headers, limit)
        match claims:
            case ["PUT-ARTIFACT-FILE", entity, md5]:
                await run_in_threadpool(artifacts.put_blob, entity, md5, chunks)
            case ["PUT-ARTIFACT-MANIFEST", artifact_id]:
                await run_in_threadpool(artifacts.put_manifest, int(artifact_id), chunks)
            case _:
                raise InvalidInput("this URL is not for this request")
    except RunbaseError as exc:
        return _failed(exc)
    return JSONResponse({})


async def download(request: Request) -> Response:
    """``GET`` of a file or manifest from a signed download URL."""
    try:
        claims = signer(request).verify(request.path_params["token"])
        backend: Backend = request.app.state.backend
        match claims:
            case ["GET-ARTIFACT-FILE", entity, md5, name, size]:
                return await _blob(request, backend, entity, md5, name, int(size))
            case ["GET-ARTIFACT-MANIFEST", artifact_id]:
                read = backend.artifacts().read_manifest
                chunks = await run_in_threadpool(read, int(artifact_id))
                return StreamingResponse(chunks, media_type="application/json")
            case _:
                raise InvalidInput("this URL is not for this request")
    except RunbaseError as exc:
        return _failed(exc)


async def download_with_key(request: Request) -> Response:
    """``GET`` of a file by the entity and md5 in the path, for a request with a key (where
    the client goes when a signed URL failed)."""
    refused = await authorize(request)
    if refused is not None:
        return refused
    params = request.path_params
    md5, name = params.get("md5"), ""
    if md5 is None:  # V2: .../<md5>/<file name>
        parts = params["rest"].split("/")
        md5, name = (parts[-2], parts[-1]) if len(parts) >= 2 else ("", "")
    try:
        return await _blob(request, request.state.backend, params["entity"], check_md5(md5), name,
                           None)  # fmt: skip
    except RunbaseError as exc:
        return _failed(exc)


async def _blob(
    request: Request, backend: Backend, entity: str, md5: str, name: str, size: int | None
) -> Response:
    """The bytes of a file, or of the one range the request asks for (when the size is
    known)."""
    media_type = mimetypes.guess_type(name)[0] or "application/octet-stream"
    wanted = RANGE.fullmatch(request.headers.get("range", "").strip())
    if wanted is None or size is None:
        chunks = await run_in_threadpool(backend.artifacts().read_blob, entity, md5)
        return StreamingResponse(chunks, media_type=media_type)
    start = int(wanted[1])
    end = min(int(wanted[2]), size - 1) if wanted[2] else size - 1
    if start > end:
        return Response(status_code=416, headers={"Content-Range": f"bytes */{size}"})
    chunks = await run_in_threadpool(backend.artifacts().read_blob, entity, md5)
    headers = {"Content-Range": f"bytes {start}-{end}/{size}", "Accept-Ranges": "bytes"}
    return StreamingResponse(
        _slice(chunks, start, end + 1), status_code=206, media_type=media_type, headers=headers
    )


def _slice(chunks: Iterator[bytes], start: int, stop: int) -> Iterator[bytes]:
    """Bytes ``start`` to ``stop`` (exclusive) of the chunks."""
    offset = 0
    for chunk in chunks:
        begin, end = max(start - offset, 0), min(stop - offset, len(chunk))
        offset += len(chunk)
        if begin < end:
            yield chunk[begin:end]
        if offset >= stop:
            break


ROUTES = [
    (UPLOAD_PATH, upload, "PUT"),
    (DOWNLOAD_PATH, download, "GET"),
    (V1_PATH, download_with_key, "GET"),
    (V2_PATH, download_with_key, "GET"),
]
bindables = [ArtifactFileFields()]
