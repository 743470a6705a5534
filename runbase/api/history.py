"""Reading a run's history: evenly spread samples, full scans page by page, DataFrames."""

from __future__ import annotations

from collections.abc import Iterator
from typing import TYPE_CHECKING, Any

from orjson import JSONDecodeError, loads

from runbase.api.client import Client
from runbase.api.paginator import check_per_page
from runbase.backend.base import STREAMS, RunPath
from runbase.rows import decode_row

if TYPE_CHECKING:
    import pandas as pd

Row = dict[str, Any]


def check_keys(keys: Any) -> list[str] | None:
    if keys is None:
        return None
    if not isinstance(keys, (list, tuple)) or not all(isinstance(k, str) for k in keys):
        raise ValueError(f"keys must be a list of strings, not {keys!r}")
    return list(keys)


def check_stream(stream: Any) -> str:
    if stream not in STREAMS:
        raise ValueError(f"stream must be one of {list(STREAMS)}, not {stream!r}")
    return stream


def wanted_keys(keys: list[str] | None, x_axis: str) -> list[str] | None:
    """The keys a keyed read asks for: ``x_axis`` first, each key once."""
    if not keys:
        return None
    if not isinstance(x_axis, str):
        raise ValueError(f"x_axis must be a string, not {x_axis!r}")
    return list(dict.fromkeys([x_axis, *keys]))


def select(row: Row, keys: list[str] | None) -> Row:
    """Just ``keys`` of the row; a dotted key also reaches into nested values (``a.b``)."""
    if keys is None:
        return row
    picked = {}
    for key in keys:
        if key in row:
            picked[key] = row[key]
        elif "." in key:
            found, value = _nested(row, key.split("."))
            if found:
                picked[key] = value
    return picked


def _nested(row: Row, parts: list[str]) -> tuple[bool, Any]:
    node: Any = row
    for part in parts:
        if not isinstance(node, dict) or part not in node:
            return False, None
        node = node[part]
    return True, node


def check_sampling(samples: Any, keys: Any, x_axis: Any, stream: Any) -> list[str] | None:
    """Validate a sampled read; returns the keys to ask for (None: whole rows)."""
    check_per_page(samples, "samples")
    check_stream(stream)
    return wanted_keys(check_keys(keys), x_axis)


def sample(
    client: Client, path: RunPath, samples: int, wanted: list[str] | None, stream: str
) -> list[Row]:
    """At most ``samples`` rows evenly spread over the run, first and last included."""
    key = ("history", path, stream, samples, tuple(wanted or ()))
    texts = client.cached(key, lambda: client.call("sample_history", path, stream, samples, wanted))
    return [select(decode_row(text), wanted) for text in texts]


def sample_many(
    client: Client, paths: list[RunPath], samples: int, wanted: list[str] | None, stream: str
) -> dict[RunPath, list[Row]]:
    """``sample`` for many runs in one backend call."""
    key = ("histories", frozenset(paths), stream, samples, tuple(wanted or ()))
    found = client.cached(
        key, lambda: client.call("sample_histories", paths, stream, samples, wanted)
    )
    return {path: [select(decode_row(t), wanted) for t in found.get(path, [])] for path in paths}


def to_frame(rows: list[Row], sort_columns: bool = False) -> pd.DataFrame:
    import pandas as pd

    frame = pd.DataFrame.from_records(rows) if rows else pd.DataFrame()
    return frame[sorted(frame.columns)] if sort_columns else frame


class HistoryScan:
    """Every row of a run's history in step order, fetched ``page_size`` rows at a time.

    Iterating again starts again from the first row.
    """

    def __init__(
        self,
        client: Client,
        path: RunPath,
        keys: list[str] | None = None,
        page_size: int = 1000,
        min_step: int | None = None,
        max_step: int | None = None,
        stream: str = "default",
    ) -> None:
        self.client = client
        self.path = path
        self.keys = check_keys(keys)
        self.page_size = check_per_page(page_size, "page_size")
        self.min_step = _check_step(min_step, "min_step")
        self.max_step = _check_step(max_step, "max_step")
        self.stream = check_stream(stream)
        self._rows: Iterator[Row] | None = None

    def __iter__(self) -> Iterator[Row]:
        return self._scan()

    def __next__(self) -> Row:
        if self._rows is None:
            self._rows = self._scan()
        return next(self._rows)

    def _scan(self) -> Iterator[Row]:
        # max_step is exclusive, as in W&B; the backend's bound is inclusive.
        last = None if self.max_step is None else self.max_step - 1
        if last is not None and self.min_step is not None and last < self.min_step:
            return
        after = -1
        while True:
            page = self.client.call(
                "scan_history", self.path, self.stream, self.keys or None, after,
                self.page_size, self.min_step, last,
            )  # fmt: skip
            if self.keys:
                for _, text in page:
                    yield select(decode_row(text), self.keys)
            else:
                for _, text in page:
                    try:
                        yield loads(text)
                    except JSONDecodeError:
                        yield decode_row(text)
            if len(page) < self.page_size:
                return
            after = page[-1][0]


def _check_step(value: Any, name: str) -> int | None:
    if value is not None and (not isinstance(value, int) or isinstance(value, bool)):
        raise ValueError(f"{name} must be an integer or None, not {value!r}")
    return value
