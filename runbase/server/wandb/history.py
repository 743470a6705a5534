"""A run's history the W&B way: ``historyKeys``, rows sampled or by step range (``history``,
``events``, ``sampledHistory``), and ``parquetHistory``, which hands wandb-core's own Parquet
reader the run's stored segments, rewritten with just the run's keys as columns.

``parquetHistory`` answers URLs only where that reader gives back each row once and as
logged: every row of the run in a stored segment (no hot rows), all rows of one key set,
``_step`` each row's step, and values of one type a key (bool, int, float, string; ints
among floats are read as floats). Otherwise it answers no URLs and no live data, and the
client reads pages of ``history`` / ``sampledHistory``. Because:

- the client keeps each downloaded file, named by the run and the URL's position in the list,
  and later reads it instead of the URL: only stored segments never change;
- live data makes the client ask ``history`` for each page that reaches past the first live
  step and append those rows to the files' rows, so a page across the boundary would hold
  its stored rows twice;
- the reader gives each row every column of its file (null where the row lacks the key) and,
  asked for keys, also rows that lack some: only a run of one key set reads back exactly.

Asked for some keys, the reader reads the URL itself, by byte ranges after a ``HEAD``.
"""

from __future__ import annotations

import io
import re
import threading
from collections import OrderedDict
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import orjson
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq
from ariadne import ObjectType
from starlette.concurrency import run_in_threadpool
from starlette.datastructures import State
from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from runbase.backend.base import Backend, HistoryQuery, RunPath, RunRecord, StoredRow
from runbase.columnar import FLOAT, INT, INTERNAL, JSON, METADATA_KEY
from runbase.documents import decode_row, encode_row, pick_keys
from runbase.errors import InvalidInput, NotFound, RunbaseError
from runbase.server.wandb.context import Context, Info, signer

PARQUET_PATH = "/wandb/history/{token}"
PARQUET_HISTORY = True  # tests and benchmarks turn it off to measure the paged reads
DEFAULT_SAMPLES = 500
SCAN_PAGE = 10_000
CACHED_FILES = 16  # rewritten segments kept per app: the reader asks for ranges of each
ROW_GROUP = 65_536  # the reader's batch: fewer, larger ranges to fetch

run_type = ObjectType("Run")


@run_type.field("historyKeys")
def resolve_history_keys(run: RunRecord, info: Info) -> dict[str, Any]:
    found = info.context.backend.history_keys(run.path)
    keys = {key: {"typeCounts": [{"type": "number", "count": n}]} for key, n in found.keys.items()}
    return {"keys": keys, "lastStep": -1 if found.last_step is None else found.last_step}


@run_type.field("history")
def resolve_history(
    run: RunRecord,
    info: Info,
    samples: int | None = None,
    minStep: int | None = None,
    maxStep: int | None = None,
) -> list[str]:
    """Rows as JSON text: with a step range (``maxStep`` exclusive) every row in it, else at
    most ``samples`` rows evenly spread."""
    return _texts(info.context.backend, run.path, "default", samples, minStep, maxStep)


@run_type.field("events")
def resolve_events(run: RunRecord, info: Info, samples: int | None = None) -> list[str]:
    return _texts(info.context.backend, run.path, "system", samples, None, None)


def _texts(
    backend: Backend, path: RunPath, stream: str, samples: int | None, min_step: int | None,
    max_step: int | None,
) -> list[str]:  # fmt: skip
    if min_step is None and max_step is None:
        return backend.sample_history(path, stream, _samples(samples), None)
    rows = _in_range(backend, HistoryQuery(path, stream, None, min_step, max_step, SCAN_PAGE))
    return [row if isinstance(row, str) else encode_row(row) for row in rows]


def _samples(value: Any) -> int:
    if value is None:
        return DEFAULT_SAMPLES
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise InvalidInput(f"samples must be a positive integer, not {value!r}")
    return value


def _in_range(backend: Backend, query: HistoryQuery) -> list[StoredRow]:
    return [row for page in backend.scan_pages(query) for row in page.items]


@dataclass(frozen=True)
class Spec:
    """One spec of ``sampledHistory``: keys (each once), samples, an inclusive step range."""

    keys: list[str]
    samples: int
    min_step: int | None
    max_step: int | None

    @classmethod
    def of(cls, value: Any) -> Spec:
        if not isinstance(value, dict):
            raise InvalidInput(f"a sampledHistory spec must be a JSON object, not {value!r}")
        keys = value.get("keys") or []
        if not isinstance(keys, list) or not all(isinstance(key, str) for key in keys):
            raise InvalidInput(f"spec keys must be a list of strings, not {keys!r}")
        steps = [value.get("minStep"), value.get("maxStep")]
        for name, step in zip(("minStep", "maxStep"), steps, strict=True):
            if step is not None and (isinstance(step, bool) or not isinstance(step, int)):
                raise InvalidInput(f"spec {name} must be an integer, not {step!r}")
        return cls(list(dict.fromkeys(keys)), _samples(value.get("samples")), *steps)


@run_type.field("sampledHistory")
def resolve_sampled_history(
    run: RunRecord, info: Info, specs: list[Any]
) -> list[list[dict[str, Any]]]:
    """For each spec the rows holding all its keys, with just those keys: with a step range
    every row in it, else at most ``samples`` rows evenly spread."""
    backend = info.context.backend
    return [_sampled(backend, run.path, Spec.of(spec)) for spec in specs]


def _sampled(backend: Backend, path: RunPath, spec: Spec) -> list[dict[str, Any]]:
    keys = spec.keys or None
    if spec.min_step is None and spec.max_step is None:
        texts: list[StoredRow] = list(backend.sample_history(path, "default", spec.samples, keys))
    else:
        end = None if spec.max_step is None else spec.max_step + 1
        query = HistoryQuery(path, "default", tuple(spec.keys) or None, spec.min_step, end,
                             SCAN_PAGE)  # fmt: skip
        texts = _in_range(backend, query)
    rows = [row if isinstance(row, dict) else decode_row(row) for row in texts]
    return [pick_keys(row, keys) for row in rows] if keys else rows


# parquetHistory
@run_type.field("parquetHistory")
def resolve_parquet_history(run: RunRecord, info: Info, liveKeys: list[str]) -> dict[str, Any]:
    ctx: Context = info.context
    found = stored_segments(ctx.backend, run) if PARQUET_HISTORY else None
    urls = [_segment_url(ctx, run.path, segment) for segment in found or ()]
    return {"parquetUrls": urls, "liveData": []}


@dataclass(frozen=True)
class SegmentInfo:
    """A segment's index range and, when the client's reader can take it, its rows' one key
    set (None otherwise)."""

    first_idx: int
    last_idx: int
    keys: frozenset[str] | None


def stored_segments(backend: Backend, run: RunRecord) -> list[SegmentInfo] | None:
    """The run's segments when they hold every row of it (as of ``run``) and the client's
    reader gives those rows back as they are; None otherwise.

    The last row read back from a segment (a dict, not a hot row's text) means no row was
    hot then; segments then listed that begin at or before it were stored by then."""
    count = run.history_line_count
    if not count or run.last_step is None:
        return None
    last = backend.scan_history(HistoryQuery(run.path, min_step=run.last_step, page_size=1))
    if not last.items or not isinstance(last.items[0], dict):
        return None
    found: list[SegmentInfo] = []
    blobs = backend.history_segments(run.path)
    try:
        for data in blobs:
            segment = segment_info(data)
            if segment.first_idx >= count:
                break
            expected = found[-1].last_idx + 1 if found else 0
            if segment.keys is None or segment.first_idx != expected:
                return None
            if found and segment.keys != found[0].keys:
                return None
            found.append(segment)
    finally:
        _close(blobs)
    return found if found and found[-1].last_idx >= count - 1 else None


def segment_info(data: bytes) -> SegmentInfo:
    """The segment's index range, and its key set when every row holds every key, ``_step``
    is each row's step and a column of the JSON kind holds numbers only."""
    parquet = pq.ParquetFile(pa.BufferReader(data))
    first, last = _index_range(parquet)
    metadata = orjson.loads(parquet.schema_arrow.metadata[METADATA_KEY])
    names: list[str] = metadata["keys"]
    kinds = dict(zip(names, metadata["kinds"], strict=True))
    if kinds.get("_step") != INT or any(len(shape) != len(names) for shape in metadata["shapes"]):
        return SegmentInfo(first, last, None)
    table = parquet.read()
    step = table.column(len(INTERNAL) + names.index("_step"))
    servable = step.null_count == 0 and pc.all(pc.equal(step, table.column(1))).as_py()
    if servable and _columns(table, metadata) is not None:
        return SegmentInfo(first, last, frozenset(names))
    return SegmentInfo(first, last, None)


def _index_range(parquet: pq.ParquetFile) -> tuple[int, int]:
    """The first and last row index, from the index column's statistics where written."""
    metadata = parquet.metadata
    head = metadata.row_group(0).column(0).statistics
    tail = metadata.row_group(metadata.num_row_groups - 1).column(0).statistics
    if head is not None and tail is not None and head.has_min_max and tail.has_min_max:
        return int(head.min), int(tail.max)
    idx = parquet.read_row_groups(list(range(metadata.num_row_groups))).column(0)
    return int(idx[0].as_py()), int(idx[-1].as_py())


def _segment_url(ctx: Context, path: RunPath, segment: SegmentInfo) -> str:
    token = ctx.signer.sign(["HISTORY", *path, str(segment.first_idx), str(segment.last_idx)])
    return ctx.base_url + PARQUET_PATH.format(token=token)


def wandb_layout(data: bytes) -> bytes:
    """A segment as the client's reader takes it: one column per key, named by it."""
    table = pq.read_table(pa.BufferReader(data))
    metadata = orjson.loads(table.schema.metadata[METADATA_KEY])
    names: list[str] = metadata["keys"]
    columns = _columns(table, metadata)
    if columns is None:
        raise InvalidInput("this history segment holds values W&B's reader cannot take")
    floats = {FLOAT, JSON}  # a JSON column here holds numbers, ints among floats
    sink = io.BytesIO()
    pq.write_table(
        pa.Table.from_arrays(columns, names=names), sink, compression="zstd",
        use_dictionary=False, row_group_size=ROW_GROUP,
        column_encoding={name: "BYTE_STREAM_SPLIT" if kind in floats else "DELTA_BINARY_PACKED"
                         for name, kind in zip(names, metadata["kinds"], strict=True)
                         if kind in floats or kind == INT},
    )  # fmt: skip
    return sink.getvalue()


def _columns(table: pa.Table, metadata: dict[str, Any]) -> list[pa.ChunkedArray] | None:
    """The key columns of a segment's table; a column of the JSON kind as floats, or None
    where one holds something else (a string, a nested value, an int past 2**53)."""
    columns = []
    for position, kind in enumerate(metadata["kinds"]):
        column = table.column(len(INTERNAL) + position)
        if kind == JSON:
            column = _numbers(column)
            if column is None:
                return None
        columns.append(column)
    return columns


def _numbers(texts: pa.ChunkedArray) -> pa.ChunkedArray | None:
    """JSON texts of numbers (NaN and infinities too) as floats; None if one is not a number
    or is an int a float does not hold exactly."""
    try:
        floats = texts.cast(pa.float64())
    except pa.ArrowInvalid:
        return None
    whole = pc.match_substring_regex(texts, r"^-?[0-9]+$")
    largest = pc.max(pc.abs(floats.filter(pc.fill_null(whole, False)))).as_py()
    return None if largest is not None and largest > 2**53 else floats


# the URLs
async def parquet_file(request: Request) -> Response:
    """``GET`` (or ``HEAD``) of a segment from ``parquetHistory``'s URLs, with byte ranges:
    the reader fetches only the parts it needs when the client asks for some keys."""
    try:
        claims = signer(request).verify(request.path_params["token"])
        if len(claims) != 6 or claims[0] != "HISTORY":
            raise InvalidInput("this URL is not for this request")
        path, first, last = RunPath(*claims[1:4]), int(claims[4]), int(claims[5])
        data = await run_in_threadpool(_rewritten, request.app.state, path, first, last)
    except RunbaseError as exc:
        return JSONResponse({"code": exc.code, "message": exc.message}, status_code=exc.status)
    return ranged(data, request.headers.get("range"))


def _rewritten(state: State, path: RunPath, first: int, last: int) -> bytes:
    cache = _files(state)
    key = (path, first, last)
    found = cache.get(key)
    if found is None:
        found = wandb_layout(_segment(state.backend, path, first, last))
        cache.put(key, found)
    return found


def _segment(backend: Backend, path: RunPath, first: int, last: int) -> bytes:
    blobs = backend.history_segments(path)
    try:
        for data in blobs:
            found = _index_range(pq.ParquetFile(pa.BufferReader(data)))
            if found == (first, last):
                return data
            if found[0] > last:
                break
    finally:
        _close(blobs)
    raise NotFound(f"run {path} has no history segment of rows {first} to {last}")


def _close(blobs: Iterator[bytes]) -> None:
    """End a read of segments early (a generator's transaction-free reads stop)."""
    close = getattr(blobs, "close", None)
    if close is not None:
        close()


_RANGE = re.compile(r"bytes=(\d*)-(\d*)")


def ranged(data: bytes, header: str | None) -> Response:
    """``data``, or the one byte range ``header`` asks for (206), or 416."""
    headers = {"Accept-Ranges": "bytes"}
    media_type = "application/vnd.apache.parquet"
    if header is None:
        return Response(data, media_type=media_type, headers=headers)
    matched = _RANGE.fullmatch(header.strip())
    size = len(data)
    start, stop = -1, 0
    if matched and matched[1]:
        start, stop = int(matched[1]), min(int(matched[2]) + 1 if matched[2] else size, size)
    elif matched and matched[2]:
        start, stop = max(size - int(matched[2]), 0), size
    if not 0 <= start < stop:
        return Response(status_code=416, headers={"Content-Range": f"bytes */{size}"})
    headers["Content-Range"] = f"bytes {start}-{stop - 1}/{size}"
    return Response(data[start:stop], status_code=206, media_type=media_type, headers=headers)


class _Files:
    """The last ``CACHED_FILES`` rewritten segments, by run and index range."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._items: OrderedDict[tuple[RunPath, int, int], bytes] = OrderedDict()

    def get(self, key: tuple[RunPath, int, int]) -> bytes | None:
        with self._lock:
            found = self._items.get(key)
            if found is not None:
                self._items.move_to_end(key)
            return found

    def put(self, key: tuple[RunPath, int, int], data: bytes) -> None:
        with self._lock:
            self._items[key] = data
            while len(self._items) > CACHED_FILES:
                self._items.popitem(last=False)


_LOCK = threading.Lock()


def _files(state: State) -> _Files:
    with _LOCK:
        if getattr(state, "wandb_history_files", None) is None:
            state.wandb_history_files = _Files()
    found: _Files = state.wandb_history_files
    return found


bindables = [run_type]
