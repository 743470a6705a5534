"""The native JSON API: one thin route per backend operation, under ``/api/v1``.

Each route validates (a body model, typed parameters), makes one backend call and writes the
answer with ``runbase.backend.wire``. A run is addressed as ``/runs/{entity}/{project}/{run_id}``;
operations over a project carry ``entity`` and ``project`` in the query or the body.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Coroutine, Iterator
from typing import Annotated, Any

import anyio.from_thread
from fastapi import APIRouter, Depends, Query, Request
from fastapi.routing import APIRoute
from starlette.concurrency import run_in_threadpool
from starlette.responses import JSONResponse, Response, StreamingResponse

from runbase.backend.base import (
    Backend,
    FileRecord,
    HistoryKeys,
    KeyList,
    Page,
    ProjectRecord,
    RunPath,
    RunRecord,
    StoredRow,
    SweepRecord,
)
from runbase.backend.wire import dumps, error_frame, rows_frame, segment_frame
from runbase.errors import RunbaseError
from runbase.server.auth import authorize
from runbase.server.limits import checked_upload, read_body
from runbase.server.models import (
    AppendBody,
    BucketsAnswer,
    BucketsBody,
    CountAnswer,
    DocumentBody,
    Done,
    EntityAnswer,
    ErrorBody,
    FinishBody,
    NewRunBody,
    OverviewAnswer,
    RowsAnswer,
    RowsOfRunsAnswer,
    RunChangesBody,
    RunCountBody,
    RunQueryBody,
    SampleBody,
    SampleManyBody,
    ScanBody,
    SessionAnswer,
    SweepBody,
)

PREFIX = "/api/v1"
logger = logging.getLogger("runbase.server")
RUN = "/runs/{entity}/{project}/{run_id}"


class WireResponse(JSONResponse):
    """JSON written by ``wire.dumps``: records as objects, NaN and infinities tagged. A
    ``JSONResponse`` so that the OpenAPI document says JSON (of any shape), not a string."""

    def render(self, content: Any) -> bytes:
        return dumps(content)


class GzipRequest(Request):
    """A request whose body may be gzip-compressed (``Content-Encoding: gzip``)."""

    async def body(self) -> bytes:
        if not hasattr(self, "_body"):
            self._body = await read_body(self, self.app.state.max_body_size)
        return self._body


class ApiRoute(APIRoute):
    """A route that authenticates the request before anything else (so a request without a
    valid key learns nothing from validation), and takes gzip bodies."""

    def get_route_handler(self) -> Callable[[Request], Coroutine[Any, Any, Response]]:
        handler = super().get_route_handler()

        async def api_handler(request: Request) -> Response:
            refused = await authorize(request)
            if refused is not None:
                return refused
            request = GzipRequest(request.scope, request.receive)
            if self.body_field is not None:  # read here, so that a body too large answers 413
                await request.body()
            return await handler(request)

        return api_handler


def _backend(request: Request) -> Backend:
    """The backend as the request's principal may use it (set by ``authorize``)."""
    backend: Backend = request.state.backend
    return backend


def _run_path(entity: str, project: str, run_id: str) -> RunPath:
    return RunPath(entity, project, run_id)


Store = Annotated[Backend, Depends(_backend)]
Path = Annotated[RunPath, Depends(_run_path)]
Names = Annotated[list[str] | None, Query(alias="name")]

# the answers any route may give besides its own, as the OpenAPI document lists them
ERRORS: dict[int | str, dict[str, Any]] = {
    status: {"model": ErrorBody, "description": description}
    for status, description in {
        400: "Invalid input: the message names the part",
        401: "No valid API key",
        403: "Not allowed with this key (read-only, or not an admin)",
        404: "Not found, or another entity's",
        409: "Conflicts with what is stored",
        413: "The body or file is larger than the server's limit",
        429: "Too many failed attempts: retry after ``Retry-After`` seconds",
    }.items()
}

ROWS = "application/x-ndjson"
ROWS_ANSWER: dict[int | str, dict[str, Any]] = {
    200: {"description": "Frames of rows: a head line, then one stored row a line",
          "content": {ROWS: {}}},
}  # fmt: skip

SEGMENTS = "application/vnd.runbase.segments"
SEGMENTS_ANSWER: dict[int | str, dict[str, Any]] = {
    200: {"description": "Frames of Parquet segments: a head line, then the segment's bytes",
          "content": {SEGMENTS: {}}},
}  # fmt: skip

router = APIRouter(
    prefix=PREFIX, route_class=ApiRoute, default_response_class=WireResponse, responses=ERRORS
)


@router.get("/entity", response_model=EntityAnswer)
def default_entity(backend: Store) -> Response:
    return WireResponse({"entity": backend.default_entity()})


# runs
@router.put(RUN, response_model=RunRecord)
def create_run(backend: Store, path: Path, body: NewRunBody) -> Response:
    return WireResponse(backend.create_run(path, body.value()))


@router.get(RUN, response_model=RunRecord)
def get_run(backend: Store, path: Path) -> Response:
    return WireResponse(backend.get_run(path))


@router.patch(RUN, response_model=RunRecord)
def update_run(backend: Store, path: Path, body: RunChangesBody) -> Response:
    return WireResponse(backend.update_run(path, body.value()))


@router.delete(RUN, response_model=Done)
def delete_run(backend: Store, path: Path) -> Response:
    backend.delete_run(path)
    return WireResponse({})


@router.post(RUN + "/config", response_model=Done)
def update_config(backend: Store, path: Path, body: DocumentBody) -> Response:
    backend.update_config(path, body.value())
    return WireResponse({})


@router.post(RUN + "/summary", response_model=Done)
def update_summary(backend: Store, path: Path, body: DocumentBody) -> Response:
    backend.update_summary(path, body.value())
    return WireResponse({})


@router.post(RUN + "/heartbeat", response_model=Done)
def heartbeat(backend: Store, path: Path) -> Response:
    backend.heartbeat(path)
    return WireResponse({})


@router.post(RUN + "/finish", response_model=Done)
def finish_run(backend: Store, path: Path, body: FinishBody) -> Response:
    backend.finish_run(path, body.state, body.exit_code)
    return WireResponse({})


@router.post("/runs/query", response_model=Page[RunRecord])
def query_runs(backend: Store, body: RunQueryBody) -> Response:
    return WireResponse(backend.query_runs(body.value()))


@router.post("/runs/count", response_model=CountAnswer)
def count_runs(backend: Store, body: RunCountBody) -> Response:
    count = backend.count_runs(body.entity, body.project, body.filters_value())
    return WireResponse({"count": count})


# history
@router.post(RUN + "/history", response_model=Done)
def append_history(backend: Store, path: Path, body: AppendBody) -> Response:
    backend.append_history(path, body.stream, body.history_rows(), body.latest_value())
    return WireResponse({})


@router.get(RUN + "/history/keys", response_model=HistoryKeys)
def history_keys(backend: Store, path: Path, stream: str = "default") -> Response:
    return WireResponse(backend.history_keys(path, stream))


@router.post(RUN + "/history/sample", response_model=RowsAnswer)
def sample_history(backend: Store, path: Path, body: SampleBody) -> Response:
    rows = backend.sample_history(path, body.stream, body.samples, body.keys)
    return WireResponse({"rows": rows})


@router.post(RUN + "/history/scan", response_class=Response, responses=ROWS_ANSWER)
def scan_history(backend: Store, path: Path, body: ScanBody) -> Response:
    """One page of rows as one frame (``runbase.backend.wire.rows_frame``)."""
    return Response(rows_frame(backend.scan_history(body.value(path))), media_type=ROWS)


@router.post(RUN + "/history/pages", response_class=StreamingResponse, responses=ROWS_ANSWER)
def scan_pages(backend: Store, path: Path, body: ScanBody) -> Response:
    """Every page from the body's cursor on, one frame each, sent as the client reads them;
    an error after the first page ends the stream with an error frame."""
    pages = backend.scan_pages(body.value(path))
    first = next(pages)  # an unknown run or a bad cursor answers with its own status
    return StreamingResponse(_frames(first, pages), media_type=ROWS)


def _frames(first: Page[StoredRow], pages: Iterator[Page[StoredRow]]) -> Iterator[bytes]:
    yield rows_frame(first)
    yield from _or_error_frame(rows_frame(page) for page in pages)


def _or_error_frame(frames: Iterator[bytes]) -> Iterator[bytes]:
    """The frames; an error met on the way ends them with an error frame."""
    try:
        yield from frames
    except RunbaseError as exc:
        yield error_frame(exc.code, exc.message)
    except Exception:  # a bug, not bad input: the details go to the server's log
        logger.exception("a history stream failed after its first frame")
        yield error_frame(RunbaseError.code, "internal server error")


@router.get(RUN + "/history/segments", response_class=StreamingResponse,
            responses=SEGMENTS_ANSWER)  # fmt: skip
def history_segments(backend: Store, path: Path, stream: str = "default") -> Response:
    """The stream's rows as Parquet segments (``Backend.history_segments``), the stored
    ones as they are, one frame each (``runbase.backend.wire.segment_frame``)."""
    blobs = backend.history_segments(path, stream)  # an unknown run answers with its status
    return StreamingResponse(_or_error_frame(_segment_frames(blobs)), media_type=SEGMENTS)


def _segment_frames(blobs: Iterator[bytes]) -> Iterator[bytes]:
    for blob in blobs:
        yield segment_frame(blob, True)
    yield segment_frame(b"", False)


@router.post("/history/samples", response_model=RowsOfRunsAnswer)
def sample_histories(backend: Store, body: SampleManyBody) -> Response:
    rows = backend.sample_histories(body.run_paths(), body.stream, body.samples, body.keys)
    return WireResponse({"rows": rows})


@router.post("/history/buckets", response_model=BucketsAnswer)
def bucketed_histories(backend: Store, body: BucketsBody) -> Response:
    """Bucketed curves for charts: each bucket's last point, y range and point count."""
    found = backend.bucketed_histories(body.run_paths(), body.stream, body.key, body.x_axis,
                                       body.buckets, body.x_min, body.x_max)  # fmt: skip
    return WireResponse({"buckets": found})


# files
@router.put(RUN + "/files/{name:path}", response_model=FileRecord)
async def put_file(backend: Store, path: Path, name: str, request: Request) -> Response:
    """The request body is the file's bytes, streamed to the backend as it arrives; its size
    and md5 are checked against ``Content-Length`` and ``X-Runbase-MD5`` (or ``Content-MD5``)
    when sent."""
    chunks = checked_upload(body_chunks(request), request.headers, request.app.state.max_file_size)
    record = await run_in_threadpool(backend.put_file, path, name, chunks)
    return WireResponse(record)


def body_chunks(request: Request) -> Iterator[bytes]:
    """The request body's chunks, read from the event loop by a worker thread."""
    stream = request.stream()

    async def next_chunk() -> bytes | None:
        try:
            return await stream.__anext__()
        except StopAsyncIteration:
            return None

    while (chunk := anyio.from_thread.run(next_chunk)) is not None:
        if chunk:
            yield chunk


@router.get(RUN + "/files", response_model=Page[FileRecord])
def list_files(
    backend: Store, path: Path, names: Names = None, per_page: int = 50, cursor: str | None = None
) -> Response:
    return WireResponse(backend.list_files(path, names or [], per_page, cursor))


@router.get(RUN + "/file-count", response_model=CountAnswer)
def count_files(backend: Store, path: Path, names: Names = None) -> Response:
    return WireResponse({"count": backend.count_files(path, names or [])})


@router.get(RUN + "/files/{name:path}", response_class=StreamingResponse)
def read_file(backend: Store, path: Path, name: str) -> Response:
    chunks = backend.read_file(path, name)
    return StreamingResponse(chunks, media_type="application/octet-stream")


@router.delete(RUN + "/files/{name:path}", response_model=Done)
def delete_file(backend: Store, path: Path, name: str) -> Response:
    backend.delete_file(path, name)
    return WireResponse({})


# projects
@router.get("/projects", response_model=Page[ProjectRecord])
def list_projects(
    backend: Store, entity: str, per_page: int = 50, cursor: str | None = None
) -> Response:
    return WireResponse(backend.list_projects(entity, per_page, cursor))


@router.get("/project", response_model=ProjectRecord)
def get_project(backend: Store, entity: str, project: str) -> Response:
    return WireResponse(backend.get_project(entity, project))


# sweeps
@router.post("/sweeps", response_model=SweepRecord)
def create_sweep(backend: Store, body: SweepBody) -> Response:
    return WireResponse(backend.create_sweep(body.entity, body.project, body.value()))


@router.get("/sweep", response_model=SweepRecord)
def get_sweep(backend: Store, entity: str, project: str, sweep_id: str) -> Response:
    return WireResponse(backend.get_sweep(entity, project, sweep_id))


# the dashboard
@router.get("/session", response_model=SessionAnswer)
def session(backend: Store, request: Request) -> Response:
    """Who the viewer is, and the CSRF token of a cookie session."""
    return WireResponse({"user": backend.default_entity(), "entities": backend.entities(),
                         "csrf": request.state.csrf,
                         "login": request.app.state.accounts is not None})  # fmt: skip


@router.get("/overview", response_model=OverviewAnswer)
def overview(backend: Store) -> Response:
    """The projects the viewer may see, most recently active first."""
    return WireResponse({"projects": backend.project_activity()})


@router.get("/keys", response_model=KeyList)
def document_keys(
    backend: Store, entity: str, project: str, kind: str = "config", q: str = "",
    limit: int = 200,
) -> Response:  # fmt: skip
    """The project's distinct dotted config or summary keys containing ``q``."""
    return WireResponse(backend.document_keys(entity, project, kind, q, limit))
