"""Reading a run's history: evenly spread samples, full scans page by page, DataFrames."""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from itertools import chain
from typing import TYPE_CHECKING, Any, cast

from orjson import JSONDecodeError, loads

from runbase import checks
from runbase.api.client import Client
from runbase.backend.base import HistoryQuery, RunPath, StoredRow
from runbase.documents import decode_row, encode, pick_keys
from runbase.errors import InvalidInput

if TYPE_CHECKING:
    import pandas as pd
    import polars as pl
    import pyarrow as pa

Row = dict[str, Any]
PAGE_SIZE = 1000  # rows per fetch when a read takes every row


def wanted_keys(keys: tuple[str, ...] | None, x_axis: Any) -> list[str] | None:
    """The keys a keyed read asks for: ``x_axis`` first, each key once."""
    if not keys:
        return None
    if not isinstance(x_axis, str):
        raise InvalidInput(f"x_axis must be a string, not {x_axis!r}")
    return list(dict.fromkeys([x_axis, *keys]))


def select(row: Row, keys: list[str] | tuple[str, ...] | None) -> Row:
    """Just ``keys`` of the row (all of it without); a dotted key also reaches into nested
    values (``a.b``)."""
    return row if keys is None else pick_keys(row, keys)


def check_sampling(samples: Any, keys: Any, x_axis: Any, stream: Any) -> list[str] | None:
    """Validate a sampled read (``samples`` None: every row); returns the keys to ask for
    (None: whole rows)."""
    if samples is not None:
        checks.positive_int(samples, "samples")
    checks.stream(stream)
    return wanted_keys(checks.keys(keys), x_axis)


def every_row(client: Client, path: RunPath, wanted: list[str] | None, stream: str) -> list[Row]:
    """Every row of the run's stream (with ``wanted``, the rows holding them all)."""
    key = ("history", path, stream, None, tuple(wanted or ()))
    scan = HistoryScan(client, path, wanted, PAGE_SIZE, stream=stream)
    return client.cached(key, lambda: list(scan))


def sample(
    client: Client, path: RunPath, samples: int | None, wanted: list[str] | None, stream: str
) -> list[Row]:
    """At most ``samples`` rows evenly spread over the run, first and last included; every
    row when ``samples`` is None."""
    if samples is None:
        return every_row(client, path, wanted, stream)
    key = ("history", path, stream, samples, tuple(wanted or ()))
    texts = client.cached(
        key, lambda: client.call(client.backend.sample_history, path, stream, samples, wanted)
    )
    return [select(decode_row(text), wanted) for text in texts]


def column_table(
    client: Client, path: RunPath, wanted: list[str] | None, stream: str
) -> pa.Table | None:
    """``every_row`` as one Arrow table built from the segments' columns; None where their
    values need the rows (``runbase.api.columns``)."""
    from runbase.api import columns

    key = ("history-table", path, stream, tuple(wanted or ()))
    return client.cached(key, lambda: columns.table(client, path, stream, wanted))


def frame(
    client: Client, path: RunPath, samples: int | None, wanted: list[str] | None, stream: str
) -> pd.DataFrame:
    """``sample`` as a DataFrame; every row (``samples`` None) from the segments' columns
    where their values allow."""
    if samples is None and (found := column_table(client, path, wanted, stream)) is not None:
        return table_frame(found)
    return to_frame(sample(client, path, samples, wanted, stream))


def tables_of_runs(
    client: Client, runs: list[tuple[RunPath, str]], wanted: list[str] | None, stream: str
) -> pa.Table | None:
    """Every row of each run, after its ``run_id``, as one table with its columns sorted;
    None where some run's values need the rows."""
    import pyarrow as pa

    tables = []
    for path, run_id in runs:
        found = column_table(client, path, wanted, stream)
        if found is None:
            return None
        if "run_id" in found.column_names:
            found = found.drop_columns("run_id")
        tables.append(found.append_column("run_id", pa.array([run_id] * len(found), pa.string())))
    try:
        table = pa.concat_tables(tables, promote_options="permissive") if tables else pa.table({})
    except (pa.ArrowInvalid, pa.ArrowTypeError):
        return None
    return table.select(sorted(table.column_names))


def table_frame(table: pa.Table) -> pd.DataFrame:
    """A table as a DataFrame (a table of no columns as ``to_frame([])``)."""
    frame: pd.DataFrame = table.to_pandas() if table.num_columns else to_frame([])
    return frame


def table_as(table: pa.Table, format: str) -> pd.DataFrame | pl.DataFrame | pa.Table:
    """The table in ``format``: ``"pandas"``, ``"polars"`` or ``"arrow"``."""
    if format == "pandas":
        return table_frame(table)
    if format == "polars":
        return _polars().from_arrow(table)
    return table


def sample_many(
    client: Client, paths: list[RunPath], samples: int | None, wanted: list[str] | None,
    stream: str,
) -> dict[RunPath, list[Row]]:  # fmt: skip
    """``sample`` for many runs in one backend call (every row of each: a scan each)."""
    if samples is None:
        return {path: every_row(client, path, wanted, stream) for path in paths}
    key = ("histories", frozenset(paths), stream, samples, tuple(wanted or ()))
    found = client.cached(
        key, lambda: client.call(client.backend.sample_histories, paths, stream, samples, wanted)
    )
    return {
        path: [select(decode_row(text), wanted) for text in texts]
        for path, texts in zip(paths, found, strict=True)
    }


def to_frame(rows: list[Row], sort_columns: bool = False) -> pd.DataFrame:
    """The rows as a DataFrame (columns sorted with ``sort_columns``)."""
    import pandas as pd

    frame: pd.DataFrame = pd.DataFrame.from_records(rows) if rows else pd.DataFrame()
    if sort_columns:
        frame = frame.reindex(columns=sorted(frame.columns))
    return frame


def to_arrow(rows: list[Row], sort_columns: bool = False) -> pa.Table:
    """The rows as an Arrow table, one column per key (a missing key is null). A column whose
    values Arrow cannot hold as one type (a string here, a number there) holds each value's
    JSON text instead."""
    import pyarrow as pa

    names = list(dict.fromkeys(key for row in rows for key in row))
    if sort_columns:
        names.sort()
    columns = []
    for name in names:
        values = [row.get(name) for row in rows]
        try:
            columns.append(pa.array(values, from_pandas=False))
        except (pa.ArrowInvalid, pa.ArrowTypeError, OverflowError):
            texts = [None if name not in row else encode(row[name]) for row in rows]
            columns.append(pa.array(texts, pa.string()))
    return pa.table(columns, names=names)


def to_polars(rows: list[Row], sort_columns: bool = False) -> pl.DataFrame:
    """The rows as a polars DataFrame (polars is an optional extra: ``runbase[polars]``)."""
    frame: pl.DataFrame = _polars().from_arrow(to_arrow(rows, sort_columns))
    return frame


def _polars() -> Any:
    try:
        import polars
    except ImportError:
        raise ImportError("format='polars' needs polars: pip install 'runbase[polars]'") from None
    return polars


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
        self.keys = checks.keys(keys) or None
        self.page_size = checks.positive_int(page_size, "page_size")
        self.min_step = checks.optional_int(min_step, "min_step")
        self.max_step = checks.optional_int(max_step, "max_step")
        self.stream = checks.stream(stream)
        self._rows: Iterator[Row] | None = None

    def __iter__(self) -> Iterator[Row]:
        return self._scan()

    def __next__(self) -> Row:
        if self._rows is None:
            self._rows = self._scan()
        return next(self._rows)

    def _scan(self) -> Iterator[Row]:
        """Every row, page after page (chained in C: a row costs no Python frame)."""
        return chain.from_iterable(self._pages())

    def _pages(self) -> Iterator[Iterable[Row]]:
        query = HistoryQuery(
            self.path, self.stream, self.keys, self.min_step, self.max_step, self.page_size
        )
        pages = self.client.backend.scan_pages(query)
        try:
            while (page := self.client.call(lambda: next(pages, None))) is not None:
                yield self._decoded(page.items)
        finally:
            pages.close()

    def _decoded(self, items: list[StoredRow]) -> Iterable[Row]:
        """A page's rows as dicts. Rows of segments come as dicts made for this page: a page
        of them all is handed on as it is."""
        if not self.keys and set(map(type, items)) <= {dict}:
            return cast("list[Row]", items)
        return self._parsed(items)

    def _parsed(self, items: list[StoredRow]) -> Iterator[Row]:
        if self.keys:
            for item in items:
                yield select(item if isinstance(item, dict) else decode_row(item), self.keys)
        else:
            for item in items:
                if isinstance(item, dict):
                    yield item
                    continue
                try:
                    yield loads(item)
                except JSONDecodeError:
                    yield decode_row(item)
