"""Bulk export of a project's runs and their histories.

``runs_table`` is the runs table in memory (``Runs.to_arrow``, ``Runs.to_pandas``): one row per
run, ``id name state created_at heartbeat_at tags group job_type user``, then the config and the
summary flattened to ``config.KEY`` and ``summary.KEY`` columns (typed as ``tables`` says;
times are UTC timestamps). ``export`` writes that table as ``runs.<ext>`` and every history row
of every run, unsampled, as ``history.<ext>`` (``run_id``, ``_step``, then the keys), page by
page, so memory stays flat whatever the project's size (``Runs.export``, ``runbase export``).
"""

from __future__ import annotations

import contextlib
import itertools
import queue
import threading
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol, TypeVar

import pyarrow as pa

from runbase import checks
from runbase.api import columns
from runbase.api import history as hist
from runbase.api.client import Client
from runbase.api.sinks import SINKS, Sink
from runbase.api.tables import Columns, conform, record_batch
from runbase.backend.base import RunPath
from runbase.errors import InvalidInput

if TYPE_CHECKING:
    import pandas as pd

    from runbase.api.runs import Run, Runs

FORMATS = tuple(SINKS)
TIME = pa.timestamp("us", tz="UTC")
RUN_HEAD = pa.schema([("id", pa.string()), ("name", pa.string()), ("state", pa.string()),
                      ("created_at", TIME), ("heartbeat_at", TIME),
                      ("tags", pa.list_(pa.string())), ("group", pa.string()),
                      ("job_type", pa.string()), ("user", pa.string())])  # fmt: skip
HISTORY_HEAD = pa.schema([("run_id", pa.string())])
Row = dict[str, Any]
T = TypeVar("T")


class Progress(Protocol):
    """What an export reports as it goes. Tasks: ``runs`` (runs listed), ``rows`` (history
    rows read) and ``writing`` (rows written out once the types are known: Parquet and CSV)."""

    def start(self, task: str, total: int) -> None:
        """``task`` begins, with ``total`` steps to go."""

    def advance(self, task: str, steps: int) -> None:
        """``steps`` more of ``task`` are done."""


class Silent:
    """Progress that reports nothing."""

    def start(self, task: str, total: int) -> None:
        pass

    def advance(self, task: str, steps: int) -> None:
        pass


@dataclass(frozen=True)
class Exported:
    """What an export wrote: how many runs and history rows, and the files."""

    runs: int
    rows: int
    files: tuple[Path, ...]


# ---------------------------------------------------------------- the runs table


def runs_table(runs: Runs) -> pa.Table:
    """The runs as an Arrow table, in the order of ``runs``."""
    columns = Columns(RUN_HEAD)
    batches = []
    for page in runs.pages():
        batch = record_batch(*_run_part(page))
        columns.add(batch)
        batches.append(batch)
    schema = columns.schema()
    return pa.Table.from_batches([conform(batch, schema) for batch in batches], schema)


def runs_frame(runs: Runs) -> pd.DataFrame:
    """The runs table as a DataFrame: int columns as ``Int64`` and bool columns as ``boolean``
    (so a run that lacks the key gives ``<NA>``, and ints stay exact), tags as lists."""
    import pandas as pd

    table = runs_table(runs)
    types = {pa.int64(): pd.Int64Dtype(), pa.bool_(): pd.BooleanDtype()}
    frame: pd.DataFrame = table.to_pandas(types_mapper=types.get)
    frame["tags"] = table.column("tags").to_pylist()
    return frame


def _run_part(runs: list[Run]) -> tuple[dict[str, pa.Array], list[Row]]:
    """The head columns of a page of runs, and their config and summary as rows."""
    attrs = [run.load() for run in runs]
    head = {
        "id": [run.id for run in runs],
        "name": [run.name for run in runs],
        "state": [run.state for run in runs],
        "created_at": [_micros(a.get("created_at")) for a in attrs],
        "heartbeat_at": [_micros(a.get("heartbeat_at")) for a in attrs],
        "tags": [list(run.tags) for run in runs],
        "group": [run.group for run in runs],
        "job_type": [run.job_type for run in runs],
        "user": [run.username for run in runs],
    }
    arrays = {f.name: pa.array(head[f.name], f.type) for f in RUN_HEAD}
    rows = [{"config": run.config, "summary": dict(run.summary)} for run in runs]
    return arrays, rows


def _micros(seconds: float | None) -> int | None:
    return None if seconds is None else round(seconds * 1_000_000)


# ---------------------------------------------------------------- export


def check_format(format: Any) -> type[Sink]:
    if not isinstance(format, str) or format not in SINKS:
        raise InvalidInput(f"format must be one of {list(FORMATS)}, not {format!r}")
    return SINKS[format]


def export(
    runs: Runs,
    directory: str | Path,
    format: str = "parquet",
    keys: Sequence[str] | None = None,
    stream: str = "default",
    progress: Progress | None = None,
) -> Exported:
    """Write ``runs.<format>`` and ``history.<format>`` into ``directory`` (made if missing).

    Nothing is written when the arguments, the filters or the project are at fault; the files
    get their names only once both are complete."""
    sink = check_format(format)
    wanted = _check_keys(keys)
    stream = checks.stream(stream)
    out = Path(directory)
    if out.exists() and not out.is_dir():
        raise InvalidInput(f"cannot export into {str(out)!r}: it is a file, not a directory")
    progress = progress or Silent()
    pages = runs.pages()
    first = next(pages, [])  # the first query: bad filters and unknown projects fail here
    out.mkdir(parents=True, exist_ok=True)
    sinks = [sink(out / f"runs.{format}", RUN_HEAD),
             sink(out / f"history.{format}", HISTORY_HEAD, ["_step", *wanted])]  # fmt: skip
    try:
        listed = _write_runs(runs, itertools.chain([first], pages), sinks[0], stream, progress)
        _write_history(runs.client, listed, sinks[1], wanted, stream, progress)
        if waiting := sum(each.waiting for each in sinks):
            progress.start("writing", waiting)
        for each in sinks:
            each.close(lambda rows: progress.advance("writing", rows))
    except BaseException:
        for each in sinks:
            each.discard()
        raise
    files = tuple(each.publish() for each in sinks)
    return Exported(sinks[0].rows, sinks[1].rows, files)


def _check_keys(keys: Any) -> list[str]:
    wanted = [key for key in dict.fromkeys(checks.keys(keys) or ()) if key != "_step"]
    if keys and not wanted:
        raise InvalidInput(f"keys must name at least one history key besides _step, not {keys!r}")
    return wanted


def _write_runs(
    runs: Runs, pages: Iterator[list[Run]], sink: Sink, stream: str, progress: Progress
) -> list[tuple[RunPath, int]]:
    """Write the runs table; each run's path and how many rows its stream holds."""
    progress.start("runs", len(runs))
    count = "history_line_count" if stream == "default" else "system_line_count"
    listed: list[tuple[RunPath, int]] = []
    for page in pages:
        sink.add(*_run_part(page))
        listed.extend((RunPath(r.entity, r.project, r.id), r.load().get(count) or 0) for r in page)
        progress.advance("runs", len(page))
    return listed


def _write_history(
    client: Client,
    listed: list[tuple[RunPath, int]],
    sink: Sink,
    wanted: list[str],
    stream: str,
    progress: Progress,
) -> None:
    progress.start("rows", sum(count for _, count in listed))
    keys, holding = (["_step", *wanted], wanted) if wanted else (None, None)
    counts = dict(listed)
    read = 0
    for path, segment in _read_ahead(_segments(client, listed, stream, keys, holding)):
        if segment is None:  # the run's last segment is done
            progress.advance("rows", max(0, counts[path] - read))  # rows logged since the count
            read = 0
            continue
        if segment.table is not None and segment.table.num_rows:
            for batch in _history_batches(path.run_id, segment, stream):
                sink.add_batch(batch)
        elif segment.rows:
            rows = _exported_rows(segment, stream, wanted)
            sink.add({"run_id": pa.repeat(pa.scalar(path.run_id), len(rows))}, rows)
        progress.advance("rows", segment.last + 1 - read)
        read = segment.last + 1


def _segments(
    client: Client, listed: list[tuple[RunPath, int]], stream: str, keys: list[str] | None,
    holding: list[str] | None,
) -> Iterator[tuple[RunPath, columns.Segment | None]]:  # fmt: skip
    """Each run's segments, then (path, None) when the run's are done."""
    for path, _ in listed:
        for segment in columns.segments(client, path, stream, keys, holding, every=False):
            yield path, segment
        yield path, None


def _read_ahead(items: Iterator[T], depth: int = 2) -> Iterator[T]:
    """``items``, read on a thread of their own up to ``depth`` ahead of the caller (reading
    and decoding Parquet, and writing it, release the GIL: the two overlap). An error met
    reading is raised here, in order."""
    waiting: queue.Queue[tuple[bool, Any]] = queue.Queue(depth)
    stop = threading.Event()

    def read() -> None:
        try:
            for item in items:
                if stop.is_set():
                    return
                waiting.put((True, item))
            waiting.put((False, None))
        except BaseException as exc:  # raised again in the reading thread
            waiting.put((False, exc))

    thread = threading.Thread(target=read, name="runbase-export-read", daemon=True)
    thread.start()
    try:
        while True:
            more, value = waiting.get()
            if not more:
                if value is not None:
                    raise value
                return
            yield value
    finally:
        stop.set()
        while thread.is_alive():  # let a reader blocked on a full queue see ``stop``
            with contextlib.suppress(queue.Empty):
                waiting.get(timeout=0.05)


def _history_batches(run_id: str, segment: columns.Segment, stream: str) -> list[pa.RecordBatch]:
    """A segment's columns after ``run_id`` and ``_step`` (a system row's is its index), in
    batches as the segment's row groups came (no copy)."""
    assert segment.table is not None and segment.table.num_rows
    table = segment.table
    head = {"run_id": pa.repeat(pa.scalar(run_id), table.num_rows)}
    if "_step" in table.column_names:
        head["_step"] = table.column("_step")
    elif stream == "system":
        head["_step"] = pa.array(segment.step)
    rest = [name for name in table.column_names if name not in head]
    batches: list[pa.RecordBatch] = pa.table(
        {**head, **{n: table.column(n) for n in rest}}
    ).to_batches()
    return batches


def _exported_rows(segment: columns.Segment, stream: str, wanted: list[str]) -> list[Row]:
    """A segment's rows, read one by one, as exported: a system row's ``_step`` is its index;
    with ``wanted``, ``_step`` and those keys of the rows holding any of them."""
    assert segment.rows is not None
    rows = segment.rows
    if stream == "system":
        rows = [row if "_step" in row else {"_step": int(idx), **row}
                for idx, row in zip(segment.idx, rows, strict=True)]  # fmt: skip
    if wanted:
        rows = [picked for row in rows if len(picked := _pick(row, wanted)) > 1]
    return rows


def _pick(row: Row, wanted: list[str]) -> Row:
    return {"_step": row.get("_step"), **hist.select(row, wanted)}
