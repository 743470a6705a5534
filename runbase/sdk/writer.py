"""The background writer: one thread per run that batches what the run logs into the backend.

``run.log`` encodes the row and appends it to a deque (no lock, no wake-up); the thread
drains the deque every ``poll`` seconds, or at once when asked to flush, and stores each drain
as one batch per stream, each in one transaction. It also keeps the run's heartbeat fresh.
"""

from __future__ import annotations

import json
import threading
import time
import warnings
from collections import deque
from typing import Any

import orjson

from runbase.backend.base import Backend, HistoryRow, RunPath
from runbase.sdk.values import NESTED, NONFINITE, leaf_keys

DEFAULT, SYSTEM, SUMMARY = 0, 1, 2
STREAM_NAMES = {DEFAULT: "default", SYSTEM: "system"}
MAX_BATCH = 20_000
RETRY_DELAYS = (0.05, 0.2, 0.5, 1.0, 2.0, 0)


def encode_row(row: dict[str, Any], flags: int) -> str:
    """JSON text of a history row; NaN and ±Infinity stay as JSON5 tokens."""
    if flags & NONFINITE:
        return json.dumps(row, allow_nan=True, separators=(",", ":"))
    return orjson.dumps(row).decode()


class KeyIndex:
    """Sorted leaf keys of rows, cached by the row's key order (rows repeat their shape)."""

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
    """Stores queued ``(kind, step, row_text, keys, summary_keys)`` items for one run.

    ``summary`` is the run's live summary dict (owned by the logging thread); each batch sends
    the current value of the summary keys its items touched, so the stored summary ends as the
    run shows it.
    """

    def __init__(
        self,
        backend: Backend,
        path: RunPath,
        next_index: dict[int, int],
        summary: dict[str, Any],
        poll: float = 0.05,
        heartbeat: float = 5.0,
    ) -> None:
        self.backend = backend
        self.path = path
        self.queue: deque[tuple[int, int, str, tuple[str, ...], Any]] = deque()
        self._summary = summary
        self._next_index = dict(next_index)
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

    def flush(self) -> None:
        """Return once everything queued so far is stored."""
        if not self._thread.is_alive():
            self._drain()
            return
        with self._drained:
            self._wake.set()
            self._drained.wait_for(lambda: not self.queue or not self._thread.is_alive())

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
        while self.queue:
            items = []
            popleft = self.queue.popleft
            while self.queue and len(items) < MAX_BATCH:
                items.append(popleft())
            self._store(items)

    def _store(self, items: list[tuple[int, int, str, tuple[str, ...], Any]]) -> None:
        rows: dict[int, list[HistoryRow]] = {DEFAULT: [], SYSTEM: []}
        touched: set[str] = set()
        system_latest: dict[str, Any] = {}
        next_index = self._next_index
        seen_keys: tuple[str, ...] | None = None
        for kind, step, text, keys, extra in items:
            if kind == SUMMARY:
                touched.update(extra)
                continue
            idx = next_index[kind]
            next_index[kind] = idx + 1
            if kind == DEFAULT:
                rows[DEFAULT].append(HistoryRow(idx, step, keys, text))
                if extra:
                    touched.update(extra)
                elif keys is not seen_keys:  # rows of one shape share one keys tuple
                    touched.update(keys)
                    seen_keys = keys
            else:
                rows[SYSTEM].append(HistoryRow(idx, idx, keys, text))
                system_latest.update(extra)
        summary = self._summary
        latest = {key: summary[key] for key in touched if key in summary}
        if rows[DEFAULT] or latest:
            self._append(DEFAULT, rows[DEFAULT], latest)
        if rows[SYSTEM]:
            self._append(SYSTEM, rows[SYSTEM], system_latest)
        self._last_write = time.monotonic()

    def _append(self, kind: int, rows: list[HistoryRow], latest: dict[str, Any]) -> None:
        """Store one batch; retried (rows carry their index, so a retry stores them once)."""
        error: BaseException | None = None
        for delay in RETRY_DELAYS:
            try:
                self.backend.append_history(self.path, STREAM_NAMES[kind], rows, latest)
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
