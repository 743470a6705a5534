"""The backend over HTTP: each operation is one request to a runbase server's native API.

The server's ``{"code", "message"}`` errors are raised again as the same ``RunbaseError``
class; a server that cannot be reached, a timeout or an answer that is not runbase's JSON
raise ``CommError`` holding the cause. History batches travel gzip-compressed.
"""

from __future__ import annotations

import gzip
import hashlib
from collections.abc import Generator, Iterator
from typing import Any
from urllib.parse import quote

import httpx
import orjson

from runbase import checks
from runbase.backend import wire
from runbase.backend.base import (
    CHUNK_SIZE,
    Backend,
    Bucket,
    Chunks,
    FileRecord,
    HistoryKeys,
    HistoryQuery,
    HistoryRow,
    KeyList,
    NewRun,
    Page,
    ProjectActivity,
    ProjectRecord,
    RunChanges,
    RunPath,
    RunQuery,
    RunRecord,
    StoredRow,
    SweepRecord,
    check_bucketing,
    check_new_run,
    check_path,
    check_run_changes,
)
from runbase.errors import CommError, InvalidInput, RunbaseError, error_for_code

API = "/api/v1"
JSON = {"content-type": "application/json"}
GZIP_JSON = {**JSON, "content-encoding": "gzip"}


class HttpBackend(Backend):
    """Speaks to the server at ``base_url`` through ``client`` (a new ``httpx.Client`` when
    None, closed by ``close()``). ``entity``, when given, is the default entity without asking
    the server. ``api_key`` goes with every request, as HTTP basic auth (user ``api``)."""

    def __init__(
        self,
        base_url: str,
        client: httpx.Client | None = None,
        entity: str | None = None,
        timeout: float = 30.0,
        api_key: str | None = None,
    ) -> None:
        self.base_url = base_url.rstrip("/")
        self._auth = httpx.BasicAuth("api", api_key) if api_key else None
        self.client = client if client is not None else httpx.Client(timeout=timeout)
        self._own_client = client is None
        self.entity = entity

    # transport
    def _send(self, method: str, where: str, **kwargs: Any) -> httpx.Response:
        url = self.base_url + API + where
        try:
            response = self.client.request(
                method, url, auth=self._auth or httpx.USE_CLIENT_DEFAULT, **kwargs
            )
        except httpx.HTTPError as exc:
            raise CommError(f"{method} {url}: {type(exc).__name__}: {exc}", exc=exc) from exc
        if response.is_error:
            raise _error(response)
        return response

    def _open(self, method: str, where: str, **kwargs: Any) -> httpx.Response:
        """The response of a request whose body is read as it arrives (close it)."""
        url = self.base_url + API + where
        try:
            request = self.client.build_request(method, url, **kwargs)
            response = self.client.send(
                request, stream=True, auth=self._auth or httpx.USE_CLIENT_DEFAULT
            )
        except httpx.HTTPError as exc:
            raise CommError(f"{method} {url}: {type(exc).__name__}: {exc}", exc=exc) from exc
        if response.is_error:
            response.read()
            response.close()
            raise _error(response)
        return response

    def _json(self, method: str, where: str, body: Any = None, **kwargs: Any) -> Any:
        if body is not None:
            kwargs.update(content=wire.dumps(body), headers=JSON)
        response = self._send(method, where, **kwargs)
        try:
            return wire.loads(response.content)
        except ValueError as exc:
            raise CommError(f"{method} {where}: the answer is not JSON", exc=exc) from exc

    # identity
    def default_entity(self) -> str:
        if self.entity is None:
            self.entity = str(self._json("GET", "/entity")["entity"])
        return self.entity

    # runs
    def create_run(self, path: RunPath, new: NewRun) -> RunRecord:
        where = _run_url(path)
        check_new_run(new)
        return _run(self._json("PUT", where, new))

    def get_run(self, path: RunPath) -> RunRecord:
        return _run(self._json("GET", _run_url(path)))

    def delete_run(self, path: RunPath) -> None:
        self._json("DELETE", _run_url(path))

    def update_run(self, path: RunPath, changes: RunChanges) -> RunRecord:
        where = _run_url(path)
        check_run_changes(changes)
        return _run(self._json("PATCH", where, changes.values()))

    def update_config(self, path: RunPath, changes: dict[str, Any]) -> None:
        where = _run_url(path, "config")
        check_run_changes(RunChanges(config=changes))
        self._json("POST", where, {"changes": changes})

    def update_summary(self, path: RunPath, changes: dict[str, Any]) -> None:
        where = _run_url(path, "summary")
        check_run_changes(RunChanges(summary=changes))
        self._json("POST", where, {"changes": changes})

    def heartbeat(self, path: RunPath) -> None:
        self._json("POST", _run_url(path, "heartbeat"))

    def finish_run(self, path: RunPath, state: str, exit_code: int | None) -> None:
        where = _run_url(path, "finish")
        check_run_changes(RunChanges(state=state, exit_code=exit_code))
        self._json("POST", where, {"state": state, "exit_code": exit_code})

    def query_runs(self, query: RunQuery) -> Page[RunRecord]:
        return wire.page(self._json("POST", "/runs/query", query), _run)

    def count_runs(self, entity: str, project: str, filters: dict[str, Any]) -> int:
        body = {"entity": entity, "project": project, "filters": filters}
        return int(self._json("POST", "/runs/count", body)["count"])

    # history
    def append_history(
        self, path: RunPath, stream: str, rows: list[HistoryRow], latest: dict[str, Any]
    ) -> None:
        checks.stream(stream)
        if not rows and not latest:
            return
        body = wire.dumps({"stream": stream, "rows": rows, "latest": latest})
        self._send("POST", _run_url(path, "history"), content=gzip.compress(body, 1),
                   headers=GZIP_JSON)  # fmt: skip

    def history_keys(self, path: RunPath, stream: str = "default") -> HistoryKeys:
        found = self._json("GET", _run_url(path, "history", "keys"), params={"stream": stream})
        return wire.record(HistoryKeys, found)

    def sample_history(
        self, path: RunPath, stream: str, samples: int, keys: list[str] | None
    ) -> list[str]:
        body = {"stream": stream, "samples": samples, "keys": keys}
        rows: list[str] = self._json("POST", _run_url(path, "history", "sample"), body)["rows"]
        return rows

    def scan_history(self, query: HistoryQuery) -> Page[StoredRow]:
        found = self._send("POST", _run_url(query.path, "history", "scan"),
                           content=_scan_body(query), headers=JSON)  # fmt: skip
        for page in _read_frames(iter([found.content]), found.request.url):
            return page
        raise CommError(f"{found.request.url}: the answer holds no page")

    def scan_pages(self, query: HistoryQuery) -> Generator[Page[StoredRow], None, None]:
        """One request; the server sends page after page as they are read."""
        where = _run_url(query.path, "history", "pages")
        response = self._open("POST", where, content=_scan_body(query), headers=JSON)
        try:
            yield from _read_frames(_body_chunks(response), response.request.url)
        finally:
            response.close()

    def history_segments(self, path: RunPath, stream: str = "default") -> Iterator[bytes]:
        """One request; the server sends segment after segment as they are read."""
        checks.stream(stream)
        where = _run_url(path, "history", "segments")
        response = self._open("GET", where, params={"stream": stream})
        return _read_segments(_body_chunks(response), response.request.url)

    def sample_histories(
        self, paths: list[RunPath], stream: str, samples: int, keys: list[str] | None
    ) -> list[list[str]]:
        for path in paths:
            check_path(path)
        body = {"paths": paths, "stream": stream, "samples": samples, "keys": keys}
        rows: list[list[str]] = self._json("POST", "/history/samples", body)["rows"]
        return rows

    def bucketed_histories(
        self, paths: list[RunPath], stream: str, key: str, x_axis: str, buckets: int,
        x_min: float | None, x_max: float | None,
    ) -> list[list[Bucket]]:  # fmt: skip
        for path in paths:
            check_path(path)
        check_bucketing(stream, key, x_axis, buckets, x_min, x_max)
        body = {"paths": paths, "stream": stream, "key": key, "x_axis": x_axis,
                "buckets": buckets, "x_min": x_min, "x_max": x_max}  # fmt: skip
        found = self._json("POST", "/history/buckets", body)["buckets"]
        return [[Bucket(**item) for item in run] for run in found]

    # files
    def put_file(self, path: RunPath, name: str, chunks: Chunks) -> FileRecord:
        """Chunks given as bytes or a list go with their size and md5, which the server
        checks before it stores the file; any others are checked against the server's
        record once sent (``CommError`` when it differs)."""
        where = _run_url(path, "files", *name.split("/"))
        sent = _Sent()
        found = self._send("PUT", where, content=sent.chunks(chunks), headers=_announce(chunks))
        record = wire.record(FileRecord, wire.loads(found.content))
        if (record.size, record.md5) != (sent.size, sent.md5.hexdigest()):
            raise CommError(f"{name!r} was stored as {record.size} bytes with md5 "
                            f"{record.md5}, not the {sent.size} bytes sent")  # fmt: skip
        return record

    def list_files(
        self, path: RunPath, names: list[str], per_page: int, cursor: str | None
    ) -> Page[FileRecord]:
        params = {"name": names, "per_page": per_page, "cursor": cursor}
        found = self._json("GET", _run_url(path, "files"), params=_present(params))
        return wire.page(found, lambda item: wire.record(FileRecord, item))

    def count_files(self, path: RunPath, names: list[str]) -> int:
        found = self._json("GET", _run_url(path, "file-count"), params={"name": names})
        return int(found["count"])

    def read_file(self, path: RunPath, name: str) -> Iterator[bytes]:
        response = self._open("GET", _run_url(path, "files", *name.split("/")))
        return _body_chunks(response)

    def delete_file(self, path: RunPath, name: str) -> None:
        self._json("DELETE", _run_url(path, "files", *name.split("/")))

    # projects
    def list_projects(self, entity: str, per_page: int, cursor: str | None) -> Page[ProjectRecord]:
        params = _present({"entity": entity, "per_page": per_page, "cursor": cursor})
        found = self._json("GET", "/projects", params=params)
        return wire.page(found, lambda item: wire.record(ProjectRecord, item))

    def get_project(self, entity: str, project: str) -> ProjectRecord:
        found = self._json("GET", "/project", params={"entity": entity, "project": project})
        return wire.record(ProjectRecord, found)

    # the dashboard
    def entities(self) -> list[str]:
        return [str(name) for name in self._json("GET", "/session")["entities"]]

    def project_activity(self) -> list[ProjectActivity]:
        found = self._json("GET", "/overview")["projects"]
        return [wire.record(ProjectActivity, item) for item in found]

    def document_keys(
        self, entity: str, project: str, kind: str, q: str = "", limit: int = 200
    ) -> KeyList:
        params = {"entity": entity, "project": project, "kind": kind, "q": q, "limit": limit}
        found = self._json("GET", "/keys", params=params)
        return KeyList([str(key) for key in found["keys"]], int(found["total"]))

    # sweeps
    def create_sweep(self, entity: str, project: str, config: dict[str, Any]) -> SweepRecord:
        body = {"entity": entity, "project": project, "config": config}
        return wire.record(SweepRecord, self._json("POST", "/sweeps", body))

    def get_sweep(self, entity: str, project: str, sweep_id: str) -> SweepRecord:
        params = {"entity": entity, "project": project, "sweep_id": sweep_id}
        return wire.record(SweepRecord, self._json("GET", "/sweep", params=params))

    def close(self) -> None:
        if self._own_client:
            self.client.close()


def _segment(part: str) -> str:
    """One path segment, escaped; dots too, so that ``.`` and ``..`` are names, not moves."""
    return quote(part, safe="").replace(".", "%2E")


def _run_url(path: RunPath, *rest: str) -> str:
    check_path(path)
    return "/".join(["/runs", *map(_segment, path), *map(_segment, rest)])


def _run(data: dict[str, Any]) -> RunRecord:
    return wire.record(RunRecord, data)


def _present(params: dict[str, Any]) -> dict[str, Any]:
    return {name: value for name, value in params.items() if value is not None}


def _error(response: httpx.Response) -> RunbaseError:
    """The ``RunbaseError`` a server's error answer names; ``CommError`` (holding the answer
    as an ``httpx.HTTPStatusError``) for a server failure or an answer that names none."""
    text = response.text[:200]
    cause = httpx.HTTPStatusError(text, request=response.request, response=response)
    try:
        body = orjson.loads(response.content)
        code, message = body["code"], body["message"]
        if not isinstance(message, str):
            raise TypeError(message)
    except (ValueError, TypeError, KeyError):
        return CommError(f"{response.status_code} from {response.request.url}: {text}", cause)
    return _named_error(code, message, cause)


def _named_error(code: str, message: str, cause: Exception) -> RunbaseError:
    cls = error_for_code(code)
    if cls is RunbaseError:
        return CommError(message, cause)
    if issubclass(cls, CommError):
        return cls(message, cause)
    return cls(message)


def _scan_body(query: HistoryQuery) -> bytes:
    body = wire.to_json(query)
    del body["path"]
    return wire.dumps(body)


def _read_frames(chunks: Iterator[bytes], source: object) -> Iterator[Page[StoredRow]]:
    """The pages of a stream of ``wire.rows_frame``s, up to the one without a next cursor;
    an error frame raises its error; a stream that ends early raises ``CommError``."""
    for head, body in _frames(chunks, source, "page of rows"):
        cursor = head.get("next_cursor")
        if not (cursor is None or isinstance(cursor, str)):
            raise CommError(f"{source}: not a page of rows: {head!r:.200}")
        yield Page(body.decode().split("\n")[:-1], cursor)  # type: ignore[arg-type]
        if cursor is None:
            return
    raise CommError(f"{source}: the rows ended before their last page")


def _read_segments(chunks: Iterator[bytes], source: object) -> Iterator[bytes]:
    """The blobs of a stream of ``wire.segment_frame``s, up to the last, empty one."""
    for head, body in _frames(chunks, source, "segment"):
        if head.get("more") is not True:
            return
        yield body
    raise CommError(f"{source}: the segments ended before their last frame")


def _frames(
    chunks: Iterator[bytes], source: object, what: str
) -> Iterator[tuple[dict[str, Any], bytes]]:
    """Each frame's head and body: a head line holding the body's ``bytes``, then the body.
    An error frame raises its error; a frame cut short raises ``CommError``."""
    buffer = bytearray()
    more = True

    def fill(size: int) -> bool:  # at least ``size`` bytes buffered, or the stream is over
        nonlocal more
        while len(buffer) < size and more:
            chunk = next(chunks, None)
            more = chunk is not None
            buffer.extend(chunk or b"")
        return len(buffer) >= size

    while True:
        while (end := buffer.find(b"\n")) < 0 and more:
            fill(len(buffer) + 1)
        if end < 0:
            return
        head = _frame_head(bytes(buffer[:end]), source, what)
        del buffer[: end + 1]
        if "code" in head:
            raise _named_error(head["code"], head["message"], ValueError(head))
        size = head["bytes"]
        if not fill(size):
            raise CommError(f"{source}: a {what} ended early")
        body = bytes(buffer[:size])
        del buffer[:size]
        yield head, body


class _Sent:
    """Size and md5 of an upload's chunks as they go."""

    def __init__(self) -> None:
        self.size = 0
        self.md5 = hashlib.md5()

    def chunks(self, chunks: Chunks) -> Iterator[bytes]:
        for chunk in [chunks] if isinstance(chunks, bytes) else chunks:
            if not isinstance(chunk, (bytes, bytearray, memoryview)):
                raise InvalidInput(f"file chunks must be bytes, not {type(chunk).__name__}")
            self.size += len(chunk)
            self.md5.update(chunk)
            yield bytes(chunk)


def _announce(chunks: Chunks) -> dict[str, str]:
    """The size and md5 headers of chunks known before they are sent (bytes, a list)."""
    if isinstance(chunks, bytes):
        chunks = [chunks]
    if not isinstance(chunks, (list, tuple)) or not all(isinstance(c, bytes) for c in chunks):
        return {}
    md5 = hashlib.md5()
    for chunk in chunks:
        md5.update(chunk)
    size = sum(map(len, chunks))
    return {"content-length": str(size), "x-runbase-md5": md5.hexdigest()}


def _body_chunks(response: httpx.Response) -> Iterator[bytes]:
    try:
        yield from response.iter_bytes(CHUNK_SIZE)
    except httpx.HTTPError as exc:
        raise CommError(f"reading {response.request.url}: {exc}", exc=exc) from exc
    finally:
        response.close()


def _frame_head(line: bytes, source: object, what: str) -> dict[str, Any]:
    """A frame's head line: its ``bytes`` (and more), or an error's ``code`` and
    ``message``; ``CommError`` for anything else."""
    try:
        head = orjson.loads(line)
        error = isinstance(head.get("code"), str) and isinstance(head.get("message"), str)
        frame = isinstance(head.get("bytes"), int) and head["bytes"] >= 0
    except (ValueError, AttributeError) as exc:
        raise CommError(f"{source}: not a {what}", exc=exc) from exc
    if not (error or frame):
        raise CommError(f"{source}: not a {what}: {line[:200]!r}")
    return dict(head)
