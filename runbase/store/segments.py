"""The cold tier of history: hot rows compacted into Parquet segments, and reads of them.

Segments cover a prefix of a run's stream: every index up to the stream's *watermark* (the
last index a segment holds) is in segments, every later one in the hot ``history`` table. A
compaction moves the next hot rows, at most ``SEGMENT_ROWS`` of them, into one segment and
deletes them from the hot table in one transaction holding the run's row lock, so a crash
leaves each row in exactly one tier; appends take the same lock and drop rows at or below the
watermark (a retried batch already compacted). Segment bytes live in the database, so a
compaction is one transaction and several processes and servers need no shared disk.
"""

from __future__ import annotations

import functools
import threading
import time
from collections import OrderedDict
from collections.abc import Callable, Hashable
from dataclasses import dataclass
from typing import Any, Generic, TypeVar

import numpy as np
import orjson
from sqlalchemy import (
    ColumnElement,
    Connection,
    LargeBinary,
    Select,
    Text,
    bindparam,
    cast,
    delete,
    func,
    insert,
    select,
)

from runbase import columnar
from runbase.store.schema import STREAMS, history, history_segments, runs

SEGMENT_ROWS = 50_000
CACHED_SEGMENTS = 8
CACHED_COLUMNS = 64  # a chart's x and y of 64 segments: 3,200,000 points, 50 MB at most
CACHED_SAMPLES = 1024  # sampled rows of a segment, ~25 rows' text each for a 500-row sample
CACHED_KEY_SETS = 256  # the key set of each row of a segment: 200 KB for 50,000 rows
KNOWN_STREAMS = 10_000  # streams whose segment lists are remembered


@dataclass(frozen=True)
class Segment:
    """What the store keeps beside a segment's bytes."""

    id: int
    first_idx: int
    last_idx: int
    first_step: int
    last_step: int
    row_count: int
    key_sets: dict[int, int]


SEGMENT_COLUMNS = (
    history_segments.c.id,
    history_segments.c.first_idx,
    history_segments.c.last_idx,
    history_segments.c.first_step,
    history_segments.c.last_step,
    history_segments.c.row_count,
    history_segments.c.key_sets,
)


def _segment(row: Any) -> Segment:
    segment_id, first_idx, last_idx, first_step, last_step, row_count, key_sets = row
    counts = {int(key): n for key, n in orjson.loads(key_sets).items()}
    return Segment(segment_id, first_idx, last_idx, first_step, last_step, row_count, counts)


_OF_STREAM = (
    history_segments.c.run_pk == bindparam("pk"),
    history_segments.c.stream == bindparam("stream"),
)
# built once: reads run these on every page
_WATERMARK = select(func.max(history_segments.c.last_idx)).where(*_OF_STREAM)
_OVERLAPPING = (
    select(*SEGMENT_COLUMNS)
    .where(
        *_OF_STREAM,
        history_segments.c.last_idx > bindparam("after"),
        history_segments.c.first_idx <= bindparam("upto"),
    )
    .order_by(history_segments.c.first_idx)
)


def watermark(conn: Connection, pk: int, stream: int) -> int:
    """The last index the stream's segments hold; -1 when it has none."""
    found = conn.execute(_WATERMARK, {"pk": pk, "stream": stream}).scalar()
    return -1 if found is None else int(found)


def lock_run(conn: Connection, pk: int) -> None:
    """Hold the run's row lock until the transaction ends (PostgreSQL; SQLite writes one
    transaction at a time anyway)."""
    conn.execute(select(runs.c.storage_id).where(runs.c.storage_id == pk).with_for_update())


def compact_next(conn: Connection, pk: int, stream: int, upto: int) -> int:
    """Move the next hot rows of the stream, up to index ``upto`` and at most
    ``SEGMENT_ROWS``, into one segment, in the caller's transaction; how many moved. The
    segment is encoded on a thread of its own while the database deletes the rows."""
    lock_run(conn, pk)
    where = (history.c.run_pk == pk, history.c.stream == stream)
    count, last_idx, lines = conn.execute(_next_lines(conn, where, upto)).one()
    if not count:
        return 0
    encoding = _started(functools.partial(columnar.encode_lines, lines))
    conn.execute(delete(history).where(*where, history.c.idx <= last_idx))
    encoded = _checked(encoding(), count)
    conn.execute(
        insert(history_segments).values(
            run_pk=pk,
            stream=stream,
            first_idx=encoded.first_idx,
            last_idx=encoded.last_idx,
            first_step=encoded.first_step,
            last_step=encoded.last_step,
            row_count=encoded.row_count,
            key_sets=orjson.dumps(encoded.key_set_counts, option=orjson.OPT_NON_STR_KEYS).decode(),
            data=encoded.data,
        )  # fmt: skip
    )
    return int(count)


def hot_segment(
    conn: Connection, pk: int, stream: int, after: int
) -> columnar.EncodedSegment | None:
    """The stream's next hot rows after index ``after``, at most ``SEGMENT_ROWS``, encoded as
    a segment (not stored); None when there are none."""
    where = (history.c.run_pk == pk, history.c.stream == stream, history.c.idx > after)
    count, _, lines = conn.execute(_next_lines(conn, where, 2**62)).one()
    return _checked(columnar.encode_lines(lines), count) if count else None


def _checked(encoded: columnar.EncodedSegment, count: int) -> columnar.EncodedSegment:
    if encoded.row_count != count:  # a row text holding the separator: not JSON
        raise ValueError(f"{count} hot rows read as {encoded.row_count}")
    return encoded


T = TypeVar("T")


def _started(fn: Callable[[], T]) -> Callable[[], T]:
    """``fn`` started on a thread of its own; call what is returned to wait for its result
    (or its exception, raised there). A plain thread, unlike an executor's, also starts while
    the interpreter exits, when ``Compactor.stop`` lets a compaction finish its segment."""
    results: list[T] = []
    errors: list[BaseException] = []

    def run() -> None:
        try:
            results.append(fn())
        except BaseException as exc:  # raised again in the waiting thread
            errors.append(exc)

    thread = threading.Thread(target=run, name="runbase-encode", daemon=True)
    thread.start()

    def result() -> T:
        thread.join()
        if errors:
            raise errors[0]
        return results[0]

    return result


def _next_lines(
    conn: Connection, where: tuple[ColumnElement[bool], ...], upto: int
) -> Select[int, Any, Any]:
    """How many rows the next segment takes, the last one's index, and the rows as the lines
    ``columnar.encode_lines`` reads, all read at once (no per-row objects in Python)."""
    rows = (
        select(history.c.idx, history.c.step, history.c.key_set, history.c.row)
        .where(*where, history.c.idx <= upto)
        .order_by(history.c.idx)
        .limit(SEGMENT_ROWS)
        .subquery()
    )
    line = cast(rows.c.idx, Text) + "," + cast(rows.c.step, Text) + ","
    line = line + cast(rows.c.key_set, Text) + "," + rows.c.row
    lines: ColumnElement[Any] = func.aggregate_strings(line, columnar.SEPARATOR)
    if conn.dialect.name == "sqlite":  # as its UTF-8 bytes, not decoded only to be encoded
        lines = cast(lines, LargeBinary)
    return select(func.count(), func.max(rows.c.idx), lines)


def hot_rows(conn: Connection, pk: int, stream: int) -> int:
    """How many rows of the stream are hot."""
    found = conn.execute(
        select(func.count()).where(history.c.run_pk == pk, history.c.stream == stream)
    ).scalar()
    return int(found or 0)


def overlapping(conn: Connection, pk: int, stream: int, after: int, upto: int) -> list[Segment]:
    """The stream's segments holding indexes after ``after`` up to ``upto``, in order."""
    params = {"pk": pk, "stream": stream, "after": after, "upto": upto}
    return [_segment(row) for row in conn.execute(_OVERLAPPING, params)]


def at_step(conn: Connection, pk: int, stream: int, step: int, last: bool) -> Segment | None:
    """The first segment whose rows reach ``step`` (last_step >= step); with ``last``, the
    last segment with a row before it (first_step < step)."""
    table = history_segments.c
    stmt = select(*SEGMENT_COLUMNS).where(table.run_pk == pk, table.stream == stream).limit(1)
    if last:
        stmt = stmt.where(table.first_step < step).order_by(table.first_idx.desc())
    else:
        stmt = stmt.where(table.last_step >= step).order_by(table.first_idx)
    found = conn.execute(stmt).first()
    return None if found is None else _segment(found)


def key_set_rows(conn: Connection, pk: int, stream: int) -> dict[int, int]:
    """The rows of each key set that segments hold."""
    counts: dict[int, int] = {}
    found = conn.execute(
        select(history_segments.c.key_sets).where(
            history_segments.c.run_pk == pk, history_segments.c.stream == stream
        )
    )
    for (text,) in found:
        for key, n in orjson.loads(text).items():
            counts[int(key)] = counts.get(int(key), 0) + n
    return counts


K = TypeVar("K", bound=Hashable)
V = TypeVar("V")


class Lru(Generic[K, V]):
    """The ``size`` most recently used values by key, shared by threads."""

    def __init__(self, size: int) -> None:
        self.size = size
        self._values: OrderedDict[K, V] = OrderedDict()
        self._lock = threading.Lock()

    def get(self, key: K) -> V | None:
        with self._lock:
            found = self._values.get(key)
            if found is not None:
                self._values.move_to_end(key)
            return found

    def put(self, key: K, value: V) -> V:
        with self._lock:
            self._values[key] = value
            self._values.move_to_end(key)
            while len(self._values) > self.size:
                self._values.popitem(last=False)
        return value

    def cached(self, key: K, make: Callable[[], V]) -> V:
        """The value of ``key``, made (outside the lock) when it is not held."""
        found = self.get(key)
        return self.put(key, make()) if found is None else found


class SegmentCache:
    """What reads take from segments, the most recently used of each kind (segments never
    change): decoded segments, some of their columns, rows' text, key sets, and each
    stream's list of segments."""

    def __init__(self, size: int = CACHED_SEGMENTS) -> None:
        self._decoded: Lru[int, columnar.Rows] = Lru(size)
        self._known: Lru[tuple[int, int], list[Segment]] = Lru(KNOWN_STREAMS)
        self._columns: Lru[tuple[int, tuple[str, ...]], columnar.Columns] = Lru(CACHED_COLUMNS)
        self._texts: Lru[tuple[int, tuple[int, ...]], list[str]] = Lru(CACHED_SAMPLES)
        self._key_sets: Lru[int, np.ndarray] = Lru(CACHED_KEY_SETS)

    def forget(self, pk: int) -> None:
        """Drop what is known of a deleted run's segments (its key may be given again)."""
        for stream in STREAMS.values():
            self._known.put((pk, stream), [])

    def known(self, pk: int, stream: int) -> list[Segment]:
        """The stream's segments seen so far: all of them up to the last one's index."""
        return self._known.get((pk, stream)) or []

    def learn(self, conn: Connection, pk: int, stream: int, mark: int) -> list[Segment]:
        """The stream's segments up to the watermark ``mark``, reading only the new ones."""
        known = self.known(pk, stream)
        last = known[-1].last_idx if known else -1
        if mark > last:
            known = self._known.put((pk, stream), known + overlapping(conn, pk, stream, last, mark))
        return known

    def columns(self, conn: Connection, segment_id: int, keys: list[str]) -> columnar.Columns:
        """Some columns of a segment (cached by segment and keys)."""
        return self._columns.cached(
            (segment_id, tuple(keys)),
            lambda: columnar.decode_columns(self._data(conn, segment_id), keys),
        )

    def _data(self, conn: Connection, segment_id: int) -> bytes:
        data = conn.execute(
            select(history_segments.c.data).where(history_segments.c.id == segment_id)
        ).scalar_one()
        return bytes(data)

    def rows(self, conn: Connection, segment_id: int) -> columnar.Rows:
        return self._decoded.cached(
            segment_id, lambda: columnar.decode(self._data(conn, segment_id))
        )

    def key_sets(self, conn: Connection, segment_id: int) -> np.ndarray:
        """The key set of each of the segment's rows, in order."""

        def read() -> np.ndarray:
            whole = self._decoded.get(segment_id)
            if whole is not None:
                return whole.key_set
            return columnar.key_sets(self._data(conn, segment_id))

        return self._key_sets.cached(segment_id, read)

    def texts(self, conn: Connection, segment_id: int, positions: list[int]) -> list[str]:
        """The JSON text of the segment's rows at ``positions`` (cached: a run's samples are
        asked for again and again, and reading them decodes the segment's row groups)."""

        def read() -> list[str]:
            whole = self._decoded.get(segment_id)
            if whole is not None:
                return whole.texts(whole.dicts(0, 0, picked=np.array(positions, np.int64)))
            rows = columnar.decode(self._data(conn, segment_id), positions)  # their row groups
            return rows.texts(rows.dicts(0, len(rows)))

        return self._texts.cached((segment_id, tuple(positions)), read)


Job = Callable[[Callable[[], bool]], None]  # given ``stopping``, it returns soon once True


class Compactor:
    """Compacts runs' streams on a thread of its own, so that neither ``finish`` nor the
    thread storing a run's batches (the SDK's writer, a server's request) waits for it. A
    finished run's streams, and a live stream far past its threshold, are ``urgent``; other
    live streams wait until appends pause for ``IDLE`` seconds, so that compaction does not
    slow a busy ingest down. Streams are queued once however often they are asked for; at
    ``stop`` (the backend's close, at exit) the segment being written is finished and the
    rest stays hot, for ``runbase compact``."""

    IDLE = 0.5

    def __init__(self) -> None:
        self._waiting: dict[Hashable, tuple[Job, bool]] = {}
        self._wake = threading.Condition()
        self._thread: threading.Thread | None = None
        self._stopped = False
        self._busy = False
        self._last_append = 0.0

    def appended(self) -> None:
        self._last_append = time.monotonic()

    def request(self, stream: Hashable, job: Job, urgent: bool = False) -> None:
        """Run ``job(stopping)`` for ``stream`` (once, however often asked) on the thread."""
        with self._wake:
            if self._stopped:
                return
            was_urgent = self._waiting.get(stream, (job, False))[1]
            self._waiting[stream] = (job, urgent or was_urgent)
            if self._thread is None:
                self._thread = threading.Thread(
                    target=self._run, name="runbase-compactor", daemon=True
                )
                self._thread.start()
            self._wake.notify()

    def _next(self) -> Job | None:
        """The next job, once it may run; None once stopped."""
        with self._wake:
            while not self._stopped:
                urgent = [stream for stream, (_, now) in self._waiting.items() if now]
                idle = time.monotonic() - self._last_append >= self.IDLE
                if urgent or (self._waiting and idle):
                    chosen = urgent[0] if urgent else next(iter(self._waiting))
                    job, _ = self._waiting.pop(chosen)
                    self._busy = True
                    return job
                self._wake.wait(self.IDLE if self._waiting else None)
            return None

    def _run(self) -> None:
        while (job := self._next()) is not None:
            try:
                job(lambda: self._stopped)
            finally:
                with self._wake:
                    self._busy = False
                    self._wake.notify_all()

    def wait(self, timeout: float | None = None) -> bool:
        with self._wake:
            return self._wake.wait_for(lambda: not self._waiting and not self._busy, timeout)

    def stop(self) -> None:
        with self._wake:
            self._stopped = True
            self._waiting.clear()
            self._wake.notify_all()
            thread = self._thread
        if thread is not None:
            thread.join()
