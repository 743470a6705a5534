"""A run's history stream as segment bytes, for readers that want columns: the stored
segments' Parquet as it is, then the hot rows after them encoded the same way.

Each read is short, so a long transfer holds no transaction open. A compaction may move rows
between two reads: a blob may then begin with rows an earlier one held, and readers keep only
the rows past the last index they have (``columnar.INTERNAL[0]``).
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager

from sqlalchemy import Connection, select

from runbase.store import segments
from runbase.store.schema import history_segments

Read = Callable[[], AbstractContextManager[Connection]]


def blobs(read: Read, pk: int, stream: int) -> Iterator[bytes]:
    """The stream's rows in index order as segment-format Parquet blobs (``columnar``)."""
    after = -1
    while True:
        with read() as conn:
            mark = segments.watermark(conn, pk, stream)
            listed = segments.overlapping(conn, pk, stream, after, mark)
        for segment in listed:
            yield _data(read, segment.id)
            after = segment.last_idx
        with read() as conn:
            hot = segments.hot_segment(conn, pk, stream, after)
            moved = segments.watermark(conn, pk, stream) != mark
        if moved:
            continue  # a compaction took rows while they were read: list its segments
        if hot is None:
            return
        yield hot.data
        after = hot.last_idx


def _data(read: Read, segment_id: int) -> bytes:
    with read() as conn:
        data = conn.execute(
            select(history_segments.c.data).where(history_segments.c.id == segment_id)
        ).scalar_one()
    return bytes(data)
