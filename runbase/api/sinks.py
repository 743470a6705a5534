"""The files of an export: each sink writes one table, page by page, under a temporary name in
the output directory, and gives the file its name only once it is complete.

Parquet and CSV need every column's type before their first row. Their pages wait, typed batch
by batch (``runbase.api.tables``), in an unnamed temporary file (Arrow IPC) in the output
directory until the last page has come; then each column's type is known, and the pages are
written out in order, Parquet in row groups. JSONL lines are written as the rows come: a line
holds the row's values as they are, NaN and infinities as the tokens ``NaN``, ``Infinity`` and
``-Infinity`` (as Python's ``json`` writes them), times as ISO 8601 text.
"""

from __future__ import annotations

import abc
import datetime as dt
import json
import os
import secrets
import tempfile
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import IO, Any

import orjson
import pyarrow as pa

from runbase import documents
from runbase.api.tables import Columns, conform, flatten, json_array, record_batch

ROW_GROUP_ROWS = 100_000
ROW_GROUP_BYTES = 64 << 20
Advance = Callable[[int], None]
Batches = Iterator[pa.RecordBatch]


class Sink(abc.ABC):
    """One file of an export, written under a temporary name until ``publish``."""

    extension: str

    def __init__(self, path: Path, head: pa.Schema, first: Sequence[str] = ()) -> None:
        self.path = path
        self.head = head
        self.first = first
        self.temp = path.parent / f".{path.name}.{secrets.token_hex(6)}.partial"
        self.temp.touch(exist_ok=False)
        self.rows = 0

    def add(self, head: dict[str, pa.Array], rows: list[dict[str, Any]]) -> None:
        """One page: the ``head`` columns (of the head's types) beside the rows' values."""
        if rows:
            self._add(head, rows)
            self.rows += len(rows)

    @abc.abstractmethod
    def _add(self, head: dict[str, pa.Array], rows: list[dict[str, Any]]) -> None: ...

    def add_batch(self, batch: pa.RecordBatch) -> None:
        """One page already in columns, the head's first (of scalar types: no nested value)."""
        if batch.num_rows:
            self._add_batch(batch)
            self.rows += batch.num_rows

    def _add_batch(self, batch: pa.RecordBatch) -> None:
        heads = len(self.head)
        rest = batch.select(batch.schema.names[heads:]).to_pylist()
        rows = [{name: value for name, value in row.items() if value is not None} for row in rest]
        self._add(dict(zip(self.head.names, batch.columns[:heads], strict=True)), rows)

    @abc.abstractmethod
    def close(self, advance: Advance) -> None:
        """Complete the temporary file, calling ``advance`` with the rows written as it goes."""

    @property
    def waiting(self) -> int:
        """Rows added but not yet in the file."""
        return 0

    def publish(self) -> Path:
        os.replace(self.temp, self.path)
        return self.path

    def discard(self) -> None:
        self.temp.unlink(missing_ok=True)


class Jsonl(Sink):
    extension = "jsonl"

    def __init__(self, path: Path, head: pa.Schema, first: Sequence[str] = ()) -> None:
        super().__init__(path, head, first)
        self.file: IO[bytes] = self.temp.open("wb")

    def _add(self, head: dict[str, pa.Array], rows: list[dict[str, Any]]) -> None:
        names = list(head)
        values = [array.to_pylist() for array in head.values()]
        lines = []
        for i, row in enumerate(rows):
            line = dict(zip(names, [column[i] for column in values], strict=True))
            leaves = flatten(row)
            for key in [*(name for name in self.first if name in leaves), *leaves]:
                line.setdefault(key, leaves[key])
            lines.append(json_line(line))
        self.file.writelines(lines)

    def close(self, advance: Advance) -> None:
        self.file.close()

    def discard(self) -> None:
        self.file.close()
        super().discard()


def json_line(row: dict[str, Any]) -> bytes:
    """The row as one line of JSON; non-finite floats as Python's ``json`` writes them."""
    if documents.is_finite(row):
        try:
            return orjson.dumps(row, option=orjson.OPT_APPEND_NEWLINE)
        except TypeError:  # an int beyond 64 bits
            pass
    text = json.dumps(row, allow_nan=True, default=_iso_time, separators=(",", ":"))
    return text.encode() + b"\n"


def _iso_time(value: Any) -> str:
    if isinstance(value, dt.datetime):
        return value.isoformat()
    raise TypeError(f"{type(value).__name__} is not JSON")


class Typed(Sink):
    """A sink whose file needs the table's types first: pages wait in a ``Spill``."""

    def __init__(self, path: Path, head: pa.Schema, first: Sequence[str] = ()) -> None:
        super().__init__(path, head, first)
        self.columns = Columns(head, first)
        self.spill = Spill(path.parent)

    @property
    def waiting(self) -> int:
        return self.rows

    def _add(self, head: dict[str, pa.Array], rows: list[dict[str, Any]]) -> None:
        self._add_batch(record_batch(head, rows))

    def _add_batch(self, batch: pa.RecordBatch) -> None:
        self.columns.add(batch)
        self.spill.append(batch)

    def close(self, advance: Advance) -> None:
        try:
            schema = self.columns.schema()
            self._write(schema, (conform(batch, schema) for batch in self.spill), advance)
        finally:
            self.spill.close()

    @abc.abstractmethod
    def _write(self, schema: pa.Schema, batches: Batches, advance: Advance) -> None:
        """Write the batches, each of ``schema``, to the temporary file."""

    def discard(self) -> None:
        self.spill.close()
        super().discard()


class Parquet(Typed):
    """Parquet. While every page has the first one's columns and types (the usual case), the
    pages go straight into the file, in row groups, as they come; the first page that differs
    sends what was written back to the spill, and the file is written at ``close``."""

    extension = "parquet"

    def __init__(self, path: Path, head: pa.Schema, first: Sequence[str] = ()) -> None:
        super().__init__(path, head, first)
        self.through: _Through | None = None
        self.spilled = False

    @property
    def waiting(self) -> int:
        return self.through.pending if self.through else self.rows

    def _add_batch(self, batch: pa.RecordBatch) -> None:
        self.columns.add(batch)
        if not self.spilled:
            if self.through is None:
                self.through = _Through(self.temp, self.columns.schema(), batch.schema)
            if batch.schema.equals(self.through.page_schema, check_metadata=True):
                self.through.add(conform(batch, self.through.schema))
                return
            for written in self.through.taken_back():
                self.spill.append(written)
            self.through, self.spilled = None, True
        self.spill.append(batch)

    def close(self, advance: Advance) -> None:
        if self.through is None:
            super().close(advance)
            return
        self.through.close(advance)
        self.spill.close()

    def discard(self) -> None:
        if self.through is not None:
            self.through.writer.close()
        super().discard()

    def _write(self, schema: pa.Schema, batches: Batches, advance: Advance) -> None:
        import pyarrow.parquet as pq

        with pq.ParquetWriter(self.temp, schema, **_parquet_options(schema)) as writer:
            for group in _row_groups(batches):
                writer.write_table(pa.Table.from_batches(group, schema), ROW_GROUP_ROWS)
                advance(sum(batch.num_rows for batch in group))


def _parquet_options(schema: pa.Schema) -> dict[str, Any]:
    # dictionaries only where values repeat (strings), not for metrics: 3x faster writes
    strings = [field.name for field in schema if field.type == pa.string()]
    return {"compression": "zstd", "use_dictionary": strings}


class _Through:
    """A Parquet file written as pages come, each conformed to ``schema``; ``page_schema`` is
    the pages' own (the first's)."""

    def __init__(self, path: Path, schema: pa.Schema, page_schema: pa.Schema) -> None:
        import pyarrow.parquet as pq

        self.path, self.schema, self.page_schema = path, schema, page_schema
        self.writer = pq.ParquetWriter(path, schema, **_parquet_options(schema))
        self.group: list[pa.RecordBatch] = []

    @property
    def pending(self) -> int:
        return sum(batch.num_rows for batch in self.group)

    def add(self, batch: pa.RecordBatch) -> None:
        self.group.append(batch)
        if self.pending >= ROW_GROUP_ROWS or sum(b.nbytes for b in self.group) >= ROW_GROUP_BYTES:
            self._flush()

    def _flush(self) -> None:
        if self.group:
            self.writer.write_table(pa.Table.from_batches(self.group, self.schema), ROW_GROUP_ROWS)
            self.group = []

    def close(self, advance: Advance) -> None:
        pending = self.pending
        self._flush()
        self.writer.close()
        advance(pending)

    def taken_back(self) -> Iterator[pa.RecordBatch]:
        """Every page written so far, read back, the file closed."""
        import pyarrow.parquet as pq

        self._flush()
        self.writer.close()
        with pq.ParquetFile(self.path) as written:
            yield from written.iter_batches()


def _row_groups(batches: Iterator[pa.RecordBatch]) -> Iterator[list[pa.RecordBatch]]:
    """The batches in groups of about ``ROW_GROUP_ROWS`` rows (fewer if they are wide)."""
    group: list[pa.RecordBatch] = []
    rows = size = 0
    for batch in batches:
        group.append(batch)
        rows += batch.num_rows
        size += batch.nbytes
        if rows >= ROW_GROUP_ROWS or size >= ROW_GROUP_BYTES:
            yield group
            group, rows, size = [], 0, 0
    if group:
        yield group


class Csv(Typed):
    """CSV: times as ISO 8601 text, tags and JSON columns as JSON text, NaN as ``nan``."""

    extension = "csv"

    def _write(self, schema: pa.Schema, batches: Batches, advance: Advance) -> None:
        import pyarrow.csv as csv

        fields = [pa.field(f.name, _csv_type(f.type), metadata=f.metadata) for f in schema]
        with csv.CSVWriter(self.temp, pa.schema(fields)) as writer:
            for batch in batches:
                writer.write_batch(_csv_batch(batch, pa.schema(fields)))
                advance(batch.num_rows)


def _csv_type(type_: pa.DataType) -> pa.DataType:
    plain = pa.types.is_timestamp(type_) or pa.types.is_list(type_)
    return pa.string() if plain else type_


def _csv_batch(batch: pa.RecordBatch, schema: pa.Schema) -> pa.RecordBatch:
    arrays = []
    for array in batch.columns:
        if pa.types.is_timestamp(array.type):
            times = array.to_pylist()
            array = pa.array([None if t is None else t.isoformat() for t in times], pa.string())
        elif pa.types.is_list(array.type):
            array = json_array(array.to_pylist())
        arrays.append(array)
    return pa.RecordBatch.from_arrays(arrays, schema=schema)


class Spill:
    """Record batches of any schemas, kept in order in an unnamed temporary file (it vanishes
    when closed, or when the process ends) until read back."""

    def __init__(self, directory: Path) -> None:
        self.file = tempfile.TemporaryFile(dir=directory)  # noqa: SIM115 (closed by close())
        self.spans: list[tuple[int, int]] = []

    def append(self, batch: pa.RecordBatch) -> None:
        start = self.file.tell()
        with pa.ipc.new_stream(self.file, batch.schema) as writer:
            writer.write_batch(batch)
        self.spans.append((start, self.file.tell() - start))

    def __iter__(self) -> Iterator[pa.RecordBatch]:
        for start, size in self.spans:
            self.file.seek(start)
            yield pa.ipc.open_stream(self.file.read(size)).read_next_batch()

    def close(self) -> None:
        self.file.close()


SINKS: dict[str, type[Sink]] = {sink.extension: sink for sink in (Parquet, Csv, Jsonl)}
