"""The background writer: one thread per run that stores, in order, everything the run records.

The logging thread hands over values it no longer touches. ``run.log`` appends a
``(HistoryRow, flags)`` tuple to ``items`` (no lock, no wake-up); summary, config, name,
file and finish changes go into the same deque, so they are stored in the order they were
made. System rows have their own deque. The thread keeps its own copy of the summary: it
applies each row (decoded from its text) and summary change to it in order, and each batch
carries copies of the values of the top-level keys it touched. Nothing is shared with the
logging thread.

A batch is never dropped. One that fails for a reason that may pass (``CommError``: the server
unreachable, a timeout, a 5xx or a 429; or anything that is not a ``RunbaseError``) is retried,
with exponential backoff up to a cap and jitter, for as long as the run lives; the batches
behind it wait, in order. One refused for good (a ``RunbaseError`` with a 4xx status other
than 429: ``InvalidInput``, ``Unauthorized``, ``Forbidden``, ``NotFound``, ``Conflict``...)
halts the writer: it sends nothing more, moves what waits in memory to the spool and keeps
spooling what comes, and ``halted`` says why (``runbase sync`` uploads the spool later).
Without a backend (offline) every batch goes straight to the spool.

A run started offline or while its server could not be reached begins with a ``Create``
batch: nothing else is sent (not even a heartbeat) until it is stored. When the backlog
holds more than ``memory_rows`` rows or ``memory_bytes`` bytes, new batches wait on disk, in
the run's spool (``runbase.sdk.spool``). ``close`` waits at most ``drain_timeout`` seconds for
the backlog to drain, then leaves what is left in the spool and says so.

``flush`` appends a marker and waits until every batch made before it is stored.
"""

from __future__ import annotations

import json
import logging
import random
import threading
import time
from collections import deque
from collections.abc import Iterable
from dataclasses import dataclass, replace
from operator import itemgetter
from pathlib import Path
from typing import Any

import orjson
from typing_extensions import assert_never

from runbase.backend.base import Backend, HistoryRow, NewRun, RunChanges, RunPath, file_chunks
from runbase.documents import decode_row, leaf_keys
from runbase.errors import CommError, Conflict, NotFound, RunbaseError
from runbase.sdk.spool import (
    Batch,
    ConfigChange,
    Create,
    FileSave,
    Finish,
    History,
    RunChange,
    Spool,
)
from runbase.sdk.values import HAS_NONE, NESTED, NONFINITE, copy_document, merge_leaves

log = logging.getLogger("runbase")

_text_of = itemgetter(3)
MAX_BATCH = 20_000
BACKOFF_START = 0.05
BACKOFF_CAP = 5.0
DRAIN_TIMEOUT = 30.0
MEMORY_ROWS = 200_000
MEMORY_BYTES = 64 << 20


def encode_row(row: dict[str, Any], flags: int) -> str:
    """JSON text of a history row; NaN and ±Infinity stay as JSON5 tokens."""
    if flags & NONFINITE:
        return json.dumps(row, allow_nan=True, separators=(",", ":"))
    return orjson.dumps(row).decode()


class KeyIndex:
    """Sorted leaf keys of rows, cached by the row's key order (rows repeat their shape), so
    that rows of one shape share one tuple."""

    def __init__(self) -> None:
        self._cache: dict[tuple[str, ...], tuple[str, ...]] = {}

    def __call__(self, row: dict[str, Any], flags: int) -> tuple[str, ...]:
        if flags & NESTED:
            return tuple(sorted(leaf_keys(row)))
        order = tuple(row)
        keys = self._cache.get(order)
        if keys is None:
            keys = self._cache[order] = tuple(sorted(order))
        return keys


@dataclass(frozen=True)
class SummaryChange:
    """Summary keys set by the user (a deep copy, owned by the writer from now on)."""

    changes: dict[str, Any]


class FlushMark:
    """Put in the queue by ``flush``; set once every batch made before it is stored."""

    def __init__(self) -> None:
        self.done = threading.Event()
        self.before = -1  # the sequence number of the first batch made after it


@dataclass(frozen=True)
class Unstored:
    """What the writer could not store by the time it stopped; all of it is in ``spool``."""

    rows: int
    system_rows: int
    changes: int
    spool: Path
    error: str | None
    halted: str | None = None

    def __bool__(self) -> bool:
        return bool(self.rows or self.system_rows or self.changes)

    def message(self, path: RunPath) -> str:
        if self.halted is not None:
            return halted_message(path, self.halted, self.spool)
        return (
            f"runbase: {self.rows} rows, {self.system_rows} system rows and {self.changes} other "
            f"changes (config, name, files, the end state) of {path} could not be stored (last "
            f"error: {self.error}); they wait in {self.spool} and are stored first when the run "
            f"is resumed (runbase.init(entity={path.entity!r}, project={path.project!r}, "
            f"id={path.run_id!r}, resume='allow')) or uploaded by `runbase sync {self.spool}`. "
            "The run is not marked finished."
        )


def halted_message(path: RunPath, error: str, spool: Path) -> str:
    return (
        f"runbase: the backend refused to store {path} ({error}); retrying cannot fix that, so "
        f"nothing more of it is sent. Everything it logs from now on waits in {spool}: once the "
        f"cause is fixed, upload it with `runbase sync {spool}`."
    )


def is_permanent(exc: BaseException) -> bool:
    """Whether retrying cannot fix ``exc``: a ``RunbaseError`` with a 4xx status but 429."""
    return (
        isinstance(exc, RunbaseError)
        and not isinstance(exc, CommError)
        and 400 <= exc.status < 500
        and exc.status != 429
    )


class _LastOfShape:
    """The last row of each shape (its leaf keys) among rows seen, in the order of their last
    appearance. Applied in that order they leave a summary as all the rows would: each key
    gets the value of the last row that holds it (a row with a None is applied on its own)."""

    def __init__(self) -> None:
        # by the identity of the key tuple: rows of one shape share it (KeyIndex), and those
        # that do not are only applied more often
        self._rows: dict[int, HistoryRow] = {}
        self._last: HistoryRow | None = None

    def add(self, hrow: HistoryRow) -> None:
        last = self._last
        if last is not None and last[2] is not hrow[2]:
            shape = id(last[2])
            self._rows.pop(shape, None)
            self._rows[shape] = last
        self._last = hrow

    def take(self) -> list[HistoryRow]:
        rows = [row for shape, row in self._rows.items() if self._last is None
                or shape != id(self._last[2])]  # fmt: skip
        if self._last is not None:
            rows.append(self._last)
        self._rows.clear()
        self._last = None
        return rows


class Writer:
    """Stores one run's queued rows and changes, in order, on its own thread.

    ``items`` takes default-stream ``(HistoryRow, flags)`` tuples and ``SummaryChange``,
    ``ConfigChange``, ``RunChange``, ``FileSave`` and ``Finish`` values; ``system`` takes
    ``(HistoryRow, metrics)`` pairs. What is put there belongs to the writer. ``summary`` is
    the stored summary the run starts from (copied). ``backend`` None (offline) spools every
    batch; ``create`` (a run not created yet) is spooled as the first batch, before the thread
    starts.

    The retry and memory limits are attributes, read as the thread goes: ``backoff_start``,
    ``backoff_cap``, ``drain_timeout``, ``memory_rows``, ``memory_bytes``.
    """

    def __init__(
        self,
        backend: Backend | None,
        path: RunPath,
        summary: dict[str, Any],
        spool: Spool,
        poll: float = 0.05,
        heartbeat: float = 5.0,
        drain_timeout: float = DRAIN_TIMEOUT,
        create: NewRun | None = None,
    ) -> None:
        self.backend = backend
        self.path = path
        self.spool = spool
        self.items: deque[Any] = deque()
        self.system: deque[tuple[Any, dict[str, Any]]] = deque()  # (HistoryRow, metrics)
        self.poll = poll
        self.heartbeat_every = heartbeat
        self.backoff_start = BACKOFF_START
        self.backoff_cap = BACKOFF_CAP
        self.drain_timeout = drain_timeout
        self.memory_rows = MEMORY_ROWS
        self.memory_bytes = MEMORY_BYTES
        # owned by the writer thread from here on
        self._summary = copy_document(summary)
        # (sequence, batch, rows, bytes of row text), oldest first
        self._memory: deque[tuple[int, Batch, int, int]] = deque()
        self._memory_rows = 0
        self._memory_bytes = 0
        self._spooled: deque[int] = deque(seq for seq, _ in spool.entries())
        self._spool_head: tuple[int, Batch] | None = None
        self._next_seq = self._spooled[-1] + 1 if self._spooled else 0
        self._waiting = {"default": 0, "system": 0, "changes": 0}
        self._marks: list[FlushMark] = []
        self._failures = 0
        self._retry_at = 0.0
        self.last_error: str | None = None
        self._last_write = time.monotonic()
        self._deadline: float | None = None
        self._stopping = False
        self._wake = threading.Event()
        self._unstored: Unstored | None = None
        self.halted: str | None = None  # why the backend refused for good; nothing is sent
        self._uncreated = False  # a Create batch waits: send nothing else, not even a beat
        if create is not None:
            self._add(Create(create))
        self._thread = threading.Thread(target=self._loop, name=f"runbase-writer-{path.run_id}")
        self._thread.daemon = True
        self._thread.start()

    # the logging thread's side
    def flush(self, timeout: float | None = None) -> bool:
        """Wait until everything queued so far is stored (in the spool, when the writer does
        not send: offline or halted); False if that took longer than ``timeout`` (default
        ``drain_timeout``) seconds and the writer is still retrying."""
        if not self._thread.is_alive():
            return self._unstored is None or not self._unstored
        mark = FlushMark()
        self.items.append(mark)
        self._wake.set()
        return mark.done.wait(self.drain_timeout if timeout is None else timeout)

    def close(self) -> Unstored:
        """Store what is queued, waiting at most ``drain_timeout`` seconds, and stop; what is
        left waits in the spool, and the result says how much."""
        if self._thread.is_alive():
            self._deadline = time.monotonic() + self.drain_timeout
            self._stopping = True
            self._wake.set()
            self._thread.join()
        assert self._unstored is not None
        return self._unstored

    # the writer thread
    def _loop(self) -> None:
        try:
            while True:
                self._wake.wait(self._pause())
                self._wake.clear()
                try:
                    self._collect()
                    self._store()
                except Exception as exc:  # noqa: BLE001 - e.g. the spool unreadable: retry
                    log.exception("runbase: the writer of %s failed", self.path)
                    self._failed(exc)
                if self._stopping and self._done_or_late():
                    return
                quiet = time.monotonic() - self._last_write > self.heartbeat_every
                if quiet and not self._stopping and not self._failures and self._created():
                    self._beat()
        finally:
            self._stop()

    @property
    def sending(self) -> bool:
        """Whether batches are sent to a backend (not offline, not halted)."""
        return self.backend is not None and self.halted is None

    def _created(self) -> bool:
        return self.sending and not self._uncreated

    def _pause(self) -> float:
        if not self._backlogged() or not self.sending:
            return self.poll
        pause = min(self.poll, max(0.0, self._retry_at - time.monotonic()))
        if self._deadline is not None:
            pause = min(pause, max(0.0, self._deadline - time.monotonic()))
        return pause

    def _backlogged(self) -> bool:
        return bool(self._memory or self._spooled)

    def _done_or_late(self) -> bool:
        if not self.sending:  # what is left goes to the spool
            return True
        if not self._backlogged() and not self.items and not self.system:
            return True
        return self._deadline is not None and time.monotonic() >= self._deadline

    def _stop(self) -> None:
        """Leave what is not stored in the spool and record how much it is."""
        try:
            self._collect()
            self._spool_memory()
        except OSError as exc:
            log.error("runbase: could not spool what %s has not stored: %s", self.path, exc)
            self.last_error = f"{self.last_error}; spooling: {exc}"
        self._spooled = deque(sorted(self._spooled))
        self._unstored = Unstored(
            self._waiting["default"],
            self._waiting["system"],
            self._waiting["changes"],
            self.spool.dir,
            self.last_error,
            self.halted,
        )

    def _spool_memory(self) -> None:
        while self._memory:
            seq, batch, rows, size = self._memory[0]
            self.spool.write(seq, batch)
            self._memory.popleft()
            self._memory_rows -= rows
            self._memory_bytes -= size
            self._spooled.append(seq)
        self._spooled = deque(sorted(self._spooled))

    def _beat(self) -> None:
        assert self.backend is not None
        try:
            self.backend.heartbeat(self.path)
        except Exception as exc:  # noqa: BLE001 - a missed heartbeat must not stop logging
            log.debug("runbase: heartbeat of %s failed: %s", self.path, exc)
        self._last_write = time.monotonic()

    def _collect(self) -> None:
        """Turn what the queues hold into batches, in order."""
        system = _take(self.system)
        for start in range(0, len(system), MAX_BATCH):
            part = system[start : start + MAX_BATCH]
            metrics: dict[str, Any] = {}
            for _, values in part:
                metrics.update(values)
            self._add(History("system", [row for row, _ in part], metrics))
        rows: list[HistoryRow] = []
        touched: set[str] = set()
        shapes = _LastOfShape()
        add_row = shapes.add
        for item in _take(self.items):
            if type(item) is tuple:
                hrow, flags = item
                rows.append(hrow)
                if flags & HAS_NONE:  # a None leaves the older value: every row counts
                    self._update_summary(shapes.take(), touched)
                    self._update_summary([hrow], touched)
                else:
                    add_row(hrow)
                if len(rows) >= MAX_BATCH:
                    self._update_summary(shapes.take(), touched)
                    self._add_history(rows, touched)
                    rows, touched = [], set()
                continue
            self._update_summary(shapes.take(), touched)
            if type(item) is SummaryChange:
                self._summary.update(item.changes)
                touched.update(item.changes)
            else:
                self._add_history(rows, touched)
                rows, touched = [], set()
                if type(item) is FlushMark:
                    item.before = self._next_seq
                    self._marks.append(item)
                else:
                    self._add(item)
        self._update_summary(shapes.take(), touched)
        self._add_history(rows, touched)
        self._release_marks()

    def _update_summary(self, rows: Iterable[HistoryRow], touched: set[str]) -> None:
        """Merge rows into the writer's summary, from their own text (the writer is handed
        nothing the logging thread keeps), and note their top-level keys in ``touched``."""
        for hrow in rows:
            row = decode_row(hrow[3])
            touched.update(row)
            merge_leaves(self._summary, row)

    def _add_history(self, rows: list[HistoryRow], touched: set[str]) -> None:
        if rows or touched:
            summary = self._summary
            latest = {key: copy_document(summary[key]) for key in touched if key in summary}
            self._add(History("default", rows, latest))

    def _add(self, batch: Batch) -> None:
        """Queue a batch: in memory, or in the spool once the backlog is past the limits (and
        for as long as the spool holds anything, so that the order stays)."""
        seq = self._next_seq
        self._next_seq += 1
        rows = len(batch.rows) if isinstance(batch, History) else 0
        size = sum(map(len, map(_text_of, batch.rows))) if isinstance(batch, History) else 0
        self._count(batch, 1)
        if type(batch) is Create:
            self._uncreated = True
        if (
            not self.sending
            or type(batch) is Create  # on disk at once: the run exists nowhere else
            or self._spooled
            or self._memory_rows + rows > self.memory_rows
            or self._memory_bytes + size > self.memory_bytes
        ):
            try:
                self.spool.write(seq, batch)
                self._spooled.append(seq)
                return
            except OSError as exc:  # a full disk: keep it in memory rather than lose it
                log.warning("runbase: could not spool a batch of %s: %s", self.path, exc)
        self._memory.append((seq, batch, rows, size))
        self._memory_rows += rows
        self._memory_bytes += size

    def _count(self, batch: Batch, sign: int) -> None:
        if isinstance(batch, History):
            self._waiting[batch.stream] += sign * len(batch.rows)
        else:
            self._waiting["changes"] += sign

    def _head(self) -> tuple[int, Batch, bool]:
        """The oldest batch not stored, and whether it is in the spool."""
        if self._memory and (not self._spooled or self._memory[0][0] < self._spooled[0]):
            seq, batch, _, _ = self._memory[0]
            return seq, batch, False
        seq = self._spooled[0]
        if self._spool_head is None or self._spool_head[0] != seq:
            self._spool_head = (seq, self.spool.read(seq))
        return seq, self._spool_head[1], True

    def _store(self) -> None:
        """Store batches, oldest first, until one fails or none is left."""
        while self.backend is not None and self.sending and self._backlogged() and (
            time.monotonic() >= self._retry_at
        ):  # fmt: skip
            seq, batch, spooled = self._head()
            try:
                send(self.backend, self.path, batch)
            except Exception as exc:  # noqa: BLE001 - retried until stored, unless permanent
                if is_permanent(exc):
                    self._halt(exc)
                else:
                    self._failed(exc)
                return
            if type(batch) is Create:
                self._uncreated = False
            if spooled:
                self._spooled.popleft()
                self._spool_head = None
                self.spool.remove(seq)
            else:
                _, _, rows, size = self._memory.popleft()
                self._memory_rows -= rows
                self._memory_bytes -= size
            self._count(batch, -1)
            if self._failures:
                log.info("runbase: storing %s again after %d failures", self.path, self._failures)
            self._failures = 0
            self._last_write = time.monotonic()
            self._release_marks()
            self._collect()

    def _halt(self, exc: Exception) -> None:
        """Stop sending for good: what waits in memory goes to the spool, and so does what
        comes (the run's ``log`` warns once, from the logging thread)."""
        self.last_error = f"{type(exc).__name__}: {exc}"
        log.debug("runbase: storing %s stopped: %s", self.path, self.last_error)
        try:
            self._spool_memory()
        except OSError as err:  # kept in memory, as for any batch the disk refuses
            log.error("runbase: could not spool what %s has not stored: %s", self.path, err)
        self.halted = self.last_error
        self._release_marks()

    def _failed(self, exc: Exception) -> None:
        self.last_error = f"{type(exc).__name__}: {exc}"
        if not self._failures and not self._uncreated:  # init has warned about that one
            log.warning("runbase: could not store %s (%s); retrying", self.path, self.last_error)
        self._failures += 1
        delay = min(self.backoff_cap, self.backoff_start * 2 ** min(self._failures - 1, 30))
        self._retry_at = time.monotonic() + delay * random.uniform(0.5, 1.0)

    def _release_marks(self) -> None:
        if not self._marks:
            return
        # not sending: what was collected is on disk (or kept in memory if the disk refused)
        oldest = self._oldest_waiting() if self.sending else self._next_seq
        for mark in [mark for mark in self._marks if mark.before <= oldest]:
            mark.done.set()
            self._marks.remove(mark)

    def _oldest_waiting(self) -> int:
        heads = [self._spooled[0]] if self._spooled else []
        if self._memory:
            heads.append(self._memory[0][0])
        return min(heads, default=self._next_seq)


def send(backend: Backend, path: RunPath, batch: Batch) -> None:
    """Store one batch (a retried batch is stored once: rows carry their index)."""
    match batch:
        case Create():
            create_run(backend, path, batch.new)
        case History():
            backend.append_history(path, batch.stream, batch.rows, batch.latest)
        case ConfigChange():
            backend.update_config(path, batch.changes)
        case RunChange():
            backend.update_run(path, RunChanges(display_name=batch.display_name))
        case FileSave():
            try:
                file = open(batch.source, "rb")  # noqa: SIM115 - closed below, after the call
            except OSError as exc:  # gone or unreadable: nothing left to store
                log.warning("runbase: cannot save %s of %s: %s", batch.name, path, exc)
                return
            with file:
                backend.put_file(path, batch.name, file_chunks(file))
        case Finish():
            backend.finish_run(path, batch.state, batch.exit_code)
        case _:
            assert_never(batch)


def create_run(backend: Backend, path: RunPath, new: NewRun) -> None:
    """Create a run that was started without its backend, as ``resume="allow"`` so that a
    retry, or a second ``runbase sync`` of the same spool, finds it and goes on. ``Conflict``
    when another run of that path (other metadata) already holds history: its rows would
    collide with the spooled ones."""
    try:
        stored = backend.get_run(path)
    except NotFound:
        stored = None
    if (
        stored is not None
        and (stored.history_line_count or stored.system_line_count)
        and stored.metadata != new.metadata
    ):
        raise Conflict(
            f"run {path} already exists with history; the run spooled under that path cannot "
            "be stored into it"
        )
    backend.create_run(path, replace(new, resume="allow"))


def replay(backend: Backend, spool: Spool, resuming: bool = True) -> int:
    """Store what waits in ``spool``, in order; returns the number of batches stored. When
    ``resuming``, a recorded finish is skipped (the run goes on). Stops at the first error."""
    stored = 0
    for seq, kind in spool.entries():
        if not (resuming and kind == "finish"):
            send(backend, spool.path, spool.read(seq))
            stored += 1
        spool.remove(seq)
    return stored


def _take(queue: deque[Any], most: int | None = None) -> list[Any]:
    """Pop what is in ``queue`` now (at most ``most``), oldest first; safe against appends."""
    count = len(queue) if most is None else min(len(queue), most)
    popleft = queue.popleft
    return [popleft() for _ in range(count)]
