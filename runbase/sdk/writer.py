"""The background writer: one thread per run that batches what the run logs into the backend.

The logging thread hands over ready rows: ``run.log`` encodes the row and appends an
``(idx, step, keys, text)`` tuple to a deque (no lock, no wake-up). The thread drains the
deques every ``poll`` seconds, or at once when asked to flush, and stores each drain as one
batch per stream, each in one transaction. It also keeps the run's heartbeat fresh.
"""

from __future__ import annotations

import json
import threading
import time
import warnings
from collections import deque
from operator import itemgetter
from typing import Any

import orjson

from runbase.backend.base import Backend, HistoryRow, RunPath
from runbase.sdk.values import NESTED, NONFINITE, leaf_keys

RETRY_DELAYS = (0.05, 0.2, 0.5, 1.0, 2.0, 0)
MAX_BATCH = 20_000
_keys_of = itemgetter(2)


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


class Writer:
    """Stores one run's queued rows.

    ``rows`` takes default-stream ``HistoryRow`` tuples, ``system`` takes ``(HistoryRow,
    metrics)`` pairs, and ``summary_keys`` takes tuples of summary keys set or merged other
    than by a row's own keys. ``summary`` is the run's live summary dict (owned by the logging
    thread); each batch sends the current value of the keys it touched, so the stored summary
    ends as the run shows it.
    """

    def __init__(
        self,
        backend: Backend,
        path: RunPath,
        summary: dict[str, Any],
        poll: float = 0.05,
        heartbeat: float = 5.0,
    ) -> None:
        self.backend = backend
        self.path = path
        self.rows: deque[HistoryRow] = deque()
        self.system: deque[tuple[HistoryRow, dict[str, Any]]] = deque()
        self.summary_keys: deque[tuple[str, ...]] = deque()
        self._summary = summary
        self._poll = poll
        self._heartbeat_every = heartbeat
        self._last_write = time.monotonic()
        self._wake = threading.Event()
        self._drained = threading.Condition()
        self._stopping = False
        self.error: BaseException | None = None
        self._thread = threading.Thread(target=self._loop, name=f"runbase-writer-{path.run_id}")
        self._thread.daemon = True
        self._thread.start()

    def _pending(self) -> bool:
        return bool(self.rows or self.system or self.summary_keys)

    def flush(self) -> None:
        """Return once everything queued so far is stored."""
        if not self._thread.is_alive():
            self._drain()
            return
        with self._drained:
            self._wake.set()
            self._drained.wait_for(lambda: not self._pending() or not self._thread.is_alive())

    def close(self) -> None:
        """Store what is queued and stop the thread."""
        self._stopping = True
        self._wake.set()
        self._thread.join()
        self._drain()

    def _loop(self) -> None:
        while True:
            self._wake.wait(self._poll)
            self._wake.clear()
            self._drain()
            with self._drained:
                self._drained.notify_all()
            if self._stopping:
                return
            if time.monotonic() - self._last_write > self._heartbeat_every:
                self._beat()

    def _beat(self) -> None:
        try:
            self.backend.heartbeat(self.path)
        except Exception as exc:  # noqa: BLE001 - a missed heartbeat must not stop logging
            warnings.warn(f"runbase: heartbeat failed: {exc}", RuntimeWarning, stacklevel=1)
        self._last_write = time.monotonic()

    def _drain(self) -> None:
        while self._pending():
            touched = {key for keys in _take(self.summary_keys) for key in keys}
            rows = _take(self.rows, MAX_BATCH)
            for keys in set(map(_keys_of, rows)):
                touched.update(keys)
            summary = self._summary
            latest = {key: summary[key] for key in touched if key in summary}
            if rows or latest:
                self._append("default", rows, latest)
            system = _take(self.system, MAX_BATCH)
            if system:
                metrics: dict[str, Any] = {}
                for _, values in system:
                    metrics.update(values)
                self._append("system", [row for row, _ in system], metrics)
            self._last_write = time.monotonic()

    def _append(self, stream: str, rows: list[HistoryRow], latest: dict[str, Any]) -> None:
        """Store one batch; retried (rows carry their index, so a retry stores them once)."""
        error: BaseException | None = None
        for delay in RETRY_DELAYS:
            try:
                self.backend.append_history(self.path, stream, rows, latest)
                return
            except Exception as exc:  # noqa: BLE001 - retried, then reported
                error = exc
            time.sleep(delay)
        self.error = error
        warnings.warn(
            f"runbase: could not store {len(rows)} rows of {self.path}: {error}",
            RuntimeWarning,
            stacklevel=1,
        )


def _take(queue: deque, most: int | None = None) -> list:
    """Pop what is in ``queue`` now (at most ``most``), oldest first; safe against appends."""
    count = len(queue) if most is None else min(len(queue), most)
    popleft = queue.popleft
    return [popleft() for _ in range(count)]
