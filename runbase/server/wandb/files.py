"""A run's files the W&B way: ``createRunFiles`` hands out signed upload URLs, the client PUTs
each file there without credentials, and a ``File``'s ``url`` is a signed download URL.

Both URLs are absolute, on the host the client called, and good for a day. The client's
``wandb-metadata.json`` also becomes the run's metadata (the ``_wandb`` entry kept).
"""

from __future__ import annotations

import base64
import fnmatch
import mimetypes
from typing import Any

import orjson
from ariadne import MutationType, ObjectType
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import JSONResponse, Response, StreamingResponse

from runbase.backend.base import Backend, FileRecord, RunChanges, RunPath, RunRecord
from runbase.errors import Forbidden, InvalidInput, RunbaseError
from runbase.server.limits import checked_upload
from runbase.server.routes import body_chunks
from runbase.server.wandb import ids
from runbase.server.wandb.context import Context, Info, signer
from runbase.server.wandb.runs import WANDB_KEY, connection, context

UPLOAD_PATH = "/wandb/upload/{token}"
DOWNLOAD_PATH = "/wandb/download/{token}"
METADATA_FILE = "wandb-metadata.json"

mutation = MutationType()
run_type = ObjectType("Run")
file_type = ObjectType("File")


def _may_write(ctx: Context, entity: str) -> None:
    who = ctx.principal
    if who.read_only:
        raise Forbidden("this API key is read-only")
    if not (who.admin or entity == who.user or entity in who.teams):
        raise Forbidden(f"this API key may not write to entity {entity!r}")


def upload_url(ctx: Context, path: RunPath, name: str) -> str:
    token = ctx.signer.sign(["PUT", *path, name])
    return ctx.base_url + UPLOAD_PATH.format(token=token)


def download_url(ctx: Context, path: RunPath, name: str) -> str:
    token = ctx.signer.sign(["GET", *path, name])
    return ctx.base_url + DOWNLOAD_PATH.format(token=token)


@mutation.field("createRunFiles")
def resolve_create_run_files(_: None, info: Info, input: dict[str, Any]) -> Any:
    ctx = context(info)
    path = RunPath(input["entityName"], input["projectName"], input["runName"])
    _may_write(ctx, path.entity)
    run = ctx.backend.get_run(path)
    targets = [{"name": name, "uploadUrl": upload_url(ctx, path, name)} for name in input["files"]]
    return {"runID": ids.run_id(run.path), "uploadHeaders": [], "files": targets}


@mutation.field("markRunFilesUploaded")
def resolve_mark_uploaded(_: None, info: Info, input: dict[str, Any]) -> Any:
    return {"success": True}


@run_type.field("fileCount")
def resolve_file_count(run: RunRecord, info: Info) -> int:
    return context(info).backend.count_files(run.path, [])


@run_type.field("files")
def resolve_files(
    run: RunRecord,
    info: Info,
    names: list[str] | None = None,
    after: str | None = None,
    first: int | None = None,
    pattern: str | None = None,
) -> dict[str, Any]:
    ctx = context(info)
    per_page = 50 if first is None else max(1, min(first, 1000))
    wanted = [name for name in names or [] if name]
    if pattern is not None:  # a glob over names: the page is filtered here, whole
        page = ctx.backend.list_files(run.path, wanted, 1000, after or None)
        nodes = [(run, record) for record in page.items if _glob(pattern, record.name)]
    else:
        page = ctx.backend.list_files(run.path, wanted, per_page, after or None)
        nodes = [(run, record) for record in page.items]
    return connection(nodes, page.next_cursor)


def _glob(pattern: str, name: str) -> bool:
    return fnmatch.fnmatchcase(name, pattern.replace("%", "*"))


def _file(node: tuple[RunRecord, FileRecord]) -> FileRecord:
    return node[1]


@file_type.field("id")
def resolve_file_id(node: tuple[RunRecord, FileRecord], info: Info) -> str:
    run, record = node
    return ids.global_id("File", *run.path, record.name)


@file_type.field("url")
@file_type.field("directUrl")
def resolve_file_url(
    node: tuple[RunRecord, FileRecord], info: Info, upload: bool | None = None
) -> str:
    run, record = node
    ctx = context(info)
    if upload:
        _may_write(ctx, run.entity)
        return upload_url(ctx, run.path, record.name)
    return download_url(ctx, run.path, record.name)


file_type.set_field("name", lambda node, info: _file(node).name)
file_type.set_field("sizeBytes", lambda node, info: _file(node).size)
file_type.set_field("mimetype", lambda node, info: _file(node).mimetype)
file_type.set_field("updatedAt", lambda node, info: _file(node).updated_at)


@file_type.field("md5")
def resolve_md5(node: tuple[RunRecord, FileRecord], info: Info) -> str:
    return base64.b64encode(bytes.fromhex(_file(node).md5)).decode()


# the URLs
def _claims(request: Request, method: str) -> tuple[RunPath, str]:
    claims = signer(request).verify(request.path_params["token"])
    if len(claims) != 5 or claims[0] != method:
        raise InvalidInput("this URL is not for this request")
    return RunPath(*claims[1:4]), claims[4]


async def upload(request: Request) -> Response:
    """``PUT`` of a file's bytes to the URL ``createRunFiles`` handed out."""
    try:
        path, name = _claims(request, "PUT")
        backend: Backend = request.app.state.backend
        limit = request.app.state.max_file_size
        chunks = checked_upload(body_chunks(request), request.headers, limit)
        await run_in_threadpool(backend.put_file, path, name, chunks)
        if name == METADATA_FILE:
            await run_in_threadpool(_take_metadata, backend, path)
    except RunbaseError as exc:
        return JSONResponse({"code": exc.code, "message": exc.message}, status_code=exc.status)
    return JSONResponse({})


def _take_metadata(backend: Backend, path: RunPath) -> None:
    """The uploaded ``wandb-metadata.json`` as the run's metadata (what runbase keeps of its
    own besides, such as ``_wandb``, stays)."""
    try:
        found = orjson.loads(b"".join(backend.read_file(path, METADATA_FILE)))
    except orjson.JSONDecodeError:
        return
    if not isinstance(found, dict):
        return
    run = backend.get_run(path)
    kept = {key: value for key, value in run.metadata.items() if key == WANDB_KEY}
    backend.update_run(path, RunChanges(metadata={**run.metadata, **found, **kept}))


async def download(request: Request) -> Response:
    """``GET`` of a file's bytes from a ``File``'s ``url``."""
    try:
        path, name = _claims(request, "GET")
        backend: Backend = request.app.state.backend
        chunks = await run_in_threadpool(backend.read_file, path, name)
    except RunbaseError as exc:
        return JSONResponse({"code": exc.code, "message": exc.message}, status_code=exc.status)
    media_type = mimetypes.guess_type(name)[0] or "application/octet-stream"
    return StreamingResponse(chunks, media_type=media_type)


bindables = [mutation, run_type, file_type]
