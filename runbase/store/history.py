"""History rows of a run, per stream: append, key sets, sample, scan.

Each row is kept as its JSON text with a dense index (0..n-1), its ``_step`` and the id of
its key set. Key sets are few per run, so a read for some keys first picks the key sets that
hold them all and then touches only rows of those sets.
"""

from __future__ import annotations

import base64
import time
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass
from operator import itemgetter
from typing import Any, NamedTuple

import numpy as np
import orjson
from sqlalchemy import (
    Column,
    Connection,
    Select,
    and_,
    bindparam,
    func,
    or_,
    select,
    update,
)

from runbase import checks
from runbase.errors import InvalidInput, NotFound
from runbase.store import segments
from runbase.store.dialect import Dialect, Prepared, fetch_all
from runbase.store.runs import merge_document_pk
from runbase.store.schema import STREAMS, history, key_hash, key_sets, runs
from runbase.store.segments import SegmentCache

HISTORY_COLUMNS = ("idx", "step", "key_set", "row")
_keys_of = itemgetter(2)
LINE_COUNT: dict[int, Column[Any]] = {0: runs.c.history_line_count, 1: runs.c.system_line_count}
LATEST_DOCUMENT: dict[int, Column[Any]] = {0: runs.c.summary, 1: runs.c.system_metrics}
Row = tuple[int, int, tuple[str, ...], str]
LAST_INDEX = 2**62
RETRIES = 5  # reads of rows that compactions keep moving
SPARSE = 8  # a keyed scan reads just the matching rows of a segment when under 1/8 of it


def stream_number(stream: str) -> int:
    """The stored number of a stream; ``InvalidInput`` for an unknown stream."""
    return STREAMS[checks.stream(stream)]


def append(
    conn: Connection,
    dialect: Dialect,
    pk: int,
    stream: int,
    rows: Sequence[Row],
    latest: dict[str, Any],
) -> int:
    """Store (idx, step, keys, row_text) rows given in index order; rows already stored are
    skipped. Merges ``latest`` into the run's summary or system metrics. Returns how many rows
    of the stream are hot up to the last one given (the tail a compaction would move)."""
    hot = 0
    values: dict[Any, Any] = {runs.c.heartbeat_at: time.time()}
    if rows:
        segments.lock_run(conn, pk)  # no compaction between the watermark and the insert
        mark = segments.watermark(conn, pk, stream)
        hot = rows[-1][0] - mark
        if rows[0][0] <= mark:  # a retried batch: what is compacted is stored already
            rows = [row for row in rows if row[0] > mark]
    if rows:
        ids = _key_set_ids(conn, dialect, pk, stream, set(map(_keys_of, rows)))
        params = [(idx, step, ids[keys], text) for idx, step, keys, text in rows]
        inserted = dialect.insert_many(
            conn, history, HISTORY_COLUMNS, params, run_pk=pk, stream=stream
        )
        if inserted:
            _count_key_sets(conn, pk, stream, rows, ids, all_new=inserted == len(rows))
        last_idx, last_step = rows[-1][0], rows[-1][1]
        values[LINE_COUNT[stream]] = dialect.greatest(LINE_COUNT[stream], last_idx + 1)
        if stream == 0:
            values[runs.c.last_step] = func.coalesce(
                dialect.greatest(runs.c.last_step, last_step), last_step
            )
    if not conn.execute(update(runs).where(runs.c.storage_id == pk).values(values)).rowcount:
        raise NotFound("run not found: it was deleted")
    if latest:
        merge_document_pk(conn, pk, LATEST_DOCUMENT[stream], latest)
    return hot


def _key_set_ids(
    conn: Connection, dialect: Dialect, pk: int, stream: int, key_tuples: set[tuple[str, ...]]
) -> dict[tuple[str, ...], int]:
    texts = {keys: orjson.dumps(keys).decode() for keys in key_tuples}
    hashes = {keys: key_hash(text) for keys, text in texts.items()}
    conn.execute(
        dialect.insert_ignore(key_sets),
        [
            {"run_pk": pk, "stream": stream, "key_list": texts[keys], "key_hash": hashes[keys]}
            for keys in key_tuples
        ],
    )
    found = conn.execute(
        select(key_sets.c.key_hash, key_sets.c.id).where(
            key_sets.c.run_pk == pk,
            key_sets.c.stream == stream,
            key_sets.c.key_hash.in_(hashes.values()),
        )
    )
    by_hash = {hash_: id_ for hash_, id_ in found}
    return {keys: by_hash[hash_] for keys, hash_ in hashes.items()}


def _count_key_sets(
    conn: Connection,
    pk: int,
    stream: int,
    rows: Sequence[Row],
    ids: dict[tuple[str, ...], int],
    all_new: bool,
) -> None:
    if all_new:
        by_keys = Counter(map(_keys_of, rows))
        for keys, n in by_keys.items():
            key_set = ids[keys]
            conn.execute(
                update(key_sets)
                .where(key_sets.c.id == key_set)
                .values(row_count=key_sets.c.row_count + n)
            )
        return
    compacted = segments.key_set_rows(conn, pk, stream)
    for key_set in set(ids.values()):
        total = select(func.count()).where(
            history.c.run_pk == pk, history.c.stream == stream, history.c.key_set == key_set
        )
        conn.execute(
            update(key_sets)
            .where(key_sets.c.id == key_set)
            .values(row_count=total.scalar_subquery() + compacted.get(key_set, 0))
        )


def key_counts(conn: Connection, pk: int, stream: int) -> dict[str, int]:
    """Each key of the stream with the number of rows that hold it."""
    counts: dict[str, int] = {}
    for keys, n in _key_sets(conn, pk, stream):
        for key in keys:
            counts[key] = counts.get(key, 0) + n
    return counts


def _key_sets(conn: Connection, pk: int, stream: int) -> list[tuple[tuple[str, ...], int]]:
    found = conn.execute(
        select(key_sets.c.key_list, key_sets.c.row_count, key_sets.c.id).where(
            key_sets.c.run_pk == pk, key_sets.c.stream == stream
        )
    )
    return [(tuple(orjson.loads(text)), n) for text, n, _ in found]


def _matching_key_sets(
    conn: Connection, pk: int, stream: int, keys: Sequence[str]
) -> tuple[list[int] | None, bool]:
    """Ids of the key sets that hold every key (None when every set does: no filter needed),
    and whether their rows are few enough to read through the key-set index."""
    wanted = set(keys)
    found = conn.execute(
        select(key_sets.c.id, key_sets.c.key_list, key_sets.c.row_count).where(
            key_sets.c.run_pk == pk, key_sets.c.stream == stream
        )
    ).all()
    matching = [(id_, n) for id_, text, n in found if wanted <= set(orjson.loads(text))]
    if len(matching) == len(found):
        return None, False
    rows = sum(n for _, n in matching)
    return [id_ for id_, _ in matching], rows * 4 < sum(n for _, _, n in found)


def _by_key_set(dialect: Dialect, stmt: Select[Any], sparse: bool) -> Select[Any]:
    """Read through the key-set index when the matching rows are few."""
    return dialect.use_index(stmt, history, "ix_history_key_set") if sparse else stmt


def line_count(conn: Connection, pk: int, stream: int) -> int:
    stmt = select(LINE_COUNT[stream]).where(runs.c.storage_id == pk)
    count: int = conn.execute(stmt).scalar_one()
    return count


def extent(conn: Connection, pk: int, stream: int) -> tuple[int, int | None]:
    """(rows, last step) of a stream; the system stream's step is its index."""
    found = conn.execute(
        select(LINE_COUNT[stream], runs.c.last_step).where(runs.c.storage_id == pk)
    ).first()
    if found is None:
        raise NotFound("run not found: it was deleted")
    count, last_step = found
    if stream != 0:
        last_step = count - 1 if count else None
    return count, last_step


def evenly(n: int, samples: int) -> list[int]:
    """Up to ``samples`` positions out of ``n``, evenly spread, first and last included."""
    if n <= samples:
        return list(range(n))
    if samples <= 1:
        return [0][:samples]
    return sorted({round(i * (n - 1) / (samples - 1)) for i in range(samples)})


def sample_indexes(
    conn: Connection,
    dialect: Dialect,
    cache: SegmentCache,
    pk: int,
    stream: int,
    samples: int,
    keys: Sequence[str] | None,
) -> list[int]:
    """Dense indexes of the rows a sample of the stream holds (rows missing from the index
    are then left out of the sample)."""
    where = [history.c.run_pk == pk, history.c.stream == stream]
    key_set_ids, sparse = _matching_key_sets(conn, pk, stream, keys) if keys else (None, False)
    if key_set_ids is None:
        return evenly(line_count(conn, pk, stream), samples)
    if not key_set_ids:
        return []
    mark = segments.watermark(conn, pk, stream)
    stmt = (
        select(history.c.idx)
        .where(*where, history.c.key_set.in_(key_set_ids), history.c.idx > mark)
        .order_by(history.c.idx)
    )
    matching = _compacted_indexes(conn, cache, pk, stream, mark, key_set_ids)
    matching += [idx for (idx,) in fetch_all(conn, _by_key_set(dialect, stmt, sparse))]
    return [matching[i] for i in evenly(len(matching), samples)]


def _compacted_indexes(
    conn: Connection, cache: SegmentCache, pk: int, stream: int, mark: int, key_set_ids: list[int]
) -> list[int]:
    """Indexes of the compacted rows of the given key sets: a segment's whole range when all
    its rows match (segments hold contiguous ranges), else read from its rows."""
    found: list[int] = []
    wanted = set(key_set_ids)
    for segment in segments.overlapping(conn, pk, stream, -1, mark):
        if not set(segment.key_sets) & wanted:
            continue
        dense = segment.row_count == segment.last_idx - segment.first_idx + 1
        if dense and set(segment.key_sets) <= wanted:
            found += range(segment.first_idx, segment.last_idx + 1)
            continue
        rows = cache.rows(conn, segment.id)
        found += rows.idx[np.isin(rows.key_set, key_set_ids)].tolist()
    return found


def sample(
    conn: Connection, dialect: Dialect, cache: SegmentCache, pk: int, stream: int, samples: int,
    keys: Sequence[str] | None,
) -> list[str]:  # fmt: skip
    """At most ``samples`` rows evenly spread, first and last included."""
    return sample_many(conn, dialect, cache, [pk], stream, samples, keys)[0]


def sample_many(
    conn: Connection, dialect: Dialect, cache: SegmentCache, pks: list[int], stream: int,
    samples: int, keys: Sequence[str] | None,
) -> list[list[str]]:  # fmt: skip
    """``sample`` for many runs in one query of the hot rows, in the order of ``pks``."""
    for _ in range(RETRIES):
        marks = {pk: segments.watermark(conn, pk, stream) for pk in pks}
        found = _sample_many(conn, dialect, cache, marks, stream, samples, keys)
        if all(segments.watermark(conn, pk, stream) == mark for pk, mark in marks.items()):
            break  # else a compaction moved rows while they were read: read again
    return found


def _sample_many(
    conn: Connection, dialect: Dialect, cache: SegmentCache, marks: dict[int, int], stream: int,
    samples: int, keys: Sequence[str] | None,
) -> list[list[str]]:  # fmt: skip
    wanted = {pk: sample_indexes(conn, dialect, cache, pk, stream, samples, keys) for pk in marks}
    found: dict[int, list[str]] = {pk: [] for pk in marks}
    for pk, indexes in wanted.items():
        cold = [idx for idx in indexes if idx <= marks[pk]]
        if cold:
            found[pk] = _compacted_texts(conn, cache, pk, stream, cold)
    clauses = [
        and_(history.c.run_pk == pk, dialect.in_list(history.c.idx, hot))
        for pk, indexes in wanted.items()
        if (hot := [idx for idx in indexes if idx > marks[pk]])
    ]
    if clauses:
        stmt = (
            select(history.c.run_pk, history.c.row)
            .where(history.c.stream == stream, or_(*clauses))
            .order_by(history.c.run_pk, history.c.idx)
        )
        for pk, row in fetch_all(conn, stmt):
            found[pk].append(row)
    return [found[pk] for pk in marks]


def _compacted_texts(
    conn: Connection, cache: SegmentCache, pk: int, stream: int, indexes: list[int]
) -> list[str]:
    """The compacted rows at ``indexes`` (ascending) as JSON text."""
    texts: list[str] = []
    wanted = np.array(indexes, np.int64)
    for segment in segments.overlapping(conn, pk, stream, indexes[0] - 1, indexes[-1]):
        inside = wanted[(wanted >= segment.first_idx) & (wanted <= segment.last_idx)]
        if segment.row_count == segment.last_idx - segment.first_idx + 1:  # dense: no lookup
            positions = inside - segment.first_idx
        else:
            rows = cache.rows(conn, segment.id)
            positions = np.searchsorted(rows.idx, inside)
            positions = positions[rows.idx[np.minimum(positions, len(rows) - 1)] == inside]
        texts += cache.texts(conn, segment.id, positions.tolist())
    return texts


def _scan_statement(keyed: bool, sparse: bool) -> Prepared:
    def build(dialect: Dialect) -> Select[Any]:
        where = [
            history.c.run_pk == bindparam("pk"),
            history.c.stream == bindparam("stream"),
            history.c.idx > bindparam("after"),
            history.c.idx <= bindparam("upto"),
        ]
        if keyed:
            where.append(history.c.key_set.in_(dialect.json_list("key_sets")))
        stmt = (
            select(history.c.idx, history.c.row)
            .where(*where)
            .order_by(history.c.idx)
            .limit(bindparam("limit"))
        )
        return _by_key_set(dialect, stmt, sparse)

    return Prepared(build)


SCANS = {
    (keyed, sparse): _scan_statement(keyed, sparse)
    for keyed in (False, True)
    for sparse in (False, True)
}


@dataclass(frozen=True)
class ScanBounds:
    """A scan's step range resolved to indexes: rows after ``after`` up to ``upto``
    (inclusive). Carried by the cursor, so later pages do not look the steps up again."""

    after: int
    upto: int

    def next(self, last_idx: int) -> ScanBounds:
        return ScanBounds(last_idx, self.upto)

    def encode(self) -> str:
        """The bounds as an opaque cursor."""
        return base64.urlsafe_b64encode(orjson.dumps([self.after, self.upto])).decode()

    @classmethod
    def decode(cls, cursor: Any) -> ScanBounds:
        """Bounds from ``encode``; ``InvalidInput`` naming the cursor when it is malformed."""
        try:
            after, upto = orjson.loads(base64.urlsafe_b64decode(cursor))
            if not (_is_int(after) and _is_int(upto)):
                raise ValueError(cursor)
        except (ValueError, TypeError):
            raise InvalidInput(f"malformed history cursor {cursor!r}") from None
        return cls(after, upto)


def _is_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool) and abs(value) <= LAST_INDEX


def scan_bounds(
    conn: Connection, cache: SegmentCache, pk: int, stream: int, min_step: int | None,
    max_step: int | None,
) -> ScanBounds:  # fmt: skip
    """The index bounds of the rows with ``min_step <= step < max_step``; a lookup per
    bound, whatever holes the index has."""
    after, upto = -1, LAST_INDEX
    if min_step is not None:
        first = _index_at_step(conn, cache, pk, stream, min_step, last=False)
        after = LAST_INDEX if first is None else first - 1
    if max_step is not None:
        last = _index_at_step(conn, cache, pk, stream, max_step, last=True)
        upto = -1 if last is None else last
    return ScanBounds(after, upto)


def scan(
    conn: Connection,
    dialect: Dialect,
    cache: SegmentCache,
    pk: int,
    stream: int,
    bounds: ScanBounds,
    keys: Sequence[str] | None,
    limit: int,
) -> Scanned:
    """Rows within ``bounds`` in index order, at most ``limit``: the JSON text of a hot row,
    the decoded dict of a compacted one. With ``keys``, only rows holding all of them (key
    sets are looked up on each page, so a live run's new key sets are found).

    Segments never change once written, so rows of segments seen before are read from the
    cache without a query; only the rows past them need the database."""
    if bounds.after >= bounds.upto:
        return Scanned([], None)
    key_set_ids, sparse = _matching_key_sets(conn, pk, stream, keys) if keys else (None, False)
    if key_set_ids == []:
        return Scanned([], None)
    after = bounds.after
    known = cache.known(pk, stream)
    found = _compacted(conn, cache, known, after, bounds.upto, key_set_ids, limit)
    if len(found.rows) >= limit or (known and bounds.upto <= known[-1].last_idx):
        return found
    after = max(after, known[-1].last_idx if known else -1)
    rest = Scanned([], None)
    for _ in range(RETRIES):
        mark = segments.watermark(conn, pk, stream)
        known = cache.learn(conn, pk, stream, mark)
        wanted = limit - len(found.rows)
        rest = _compacted(conn, cache, known, after, bounds.upto, key_set_ids, wanted)
        if len(rest.rows) < wanted and bounds.upto > mark:
            params = {
                "pk": pk, "stream": stream, "after": max(after, mark),
                "upto": bounds.upto, "limit": wanted - len(rest.rows),
            }  # fmt: skip
            if key_set_ids is not None:
                params["key_sets"] = dialect.list_value(key_set_ids)
            hot = SCANS[key_set_ids is not None, sparse].fetch_all(conn, dialect, **params)
            if hot:
                rest = Scanned(rest.rows + [row for _, row in hot], hot[-1][0])
        if segments.watermark(conn, pk, stream) == mark:
            break  # else a compaction moved rows while they were read: read again
    last = found.last_idx if rest.last_idx is None else rest.last_idx
    return Scanned(found.rows + rest.rows, last)


class Scanned(NamedTuple):
    """A scan's rows, and the index of the last (None when there are none)."""

    rows: list[str | dict[str, Any]]
    last_idx: int | None


def _compacted(
    conn: Connection, cache: SegmentCache, known: list[segments.Segment], after: int, upto: int,
    key_set_ids: list[int] | None, limit: int,
) -> Scanned:  # fmt: skip
    """Rows of the ``known`` segments after ``after`` up to ``upto`` (of the key sets, when
    given), at most ``limit``."""
    found: list[str | dict[str, Any]] = []
    last: int | None = None
    for segment in known:
        if segment.last_idx <= after or segment.first_idx > upto or len(found) >= limit:
            continue
        if key_set_ids is not None and not set(segment.key_sets) & set(key_set_ids):
            continue
        dense = segment.row_count == segment.last_idx - segment.first_idx + 1
        if key_set_ids is not None and dense:  # a few rows of many: read just those
            start = min(max(after + 1 - segment.first_idx, 0), segment.row_count)
            stop = min(max(upto + 1 - segment.first_idx, 0), segment.row_count)
            held = cache.key_sets(conn, segment.id)[start:stop]
            matching = np.flatnonzero(np.isin(held, key_set_ids)) + start
            matching = matching[: limit - len(found)]
            if len(matching) * SPARSE < stop - start:
                if len(matching):
                    found += cache.texts(conn, segment.id, matching.tolist())
                    last = segment.first_idx + int(matching[-1])
                continue
        rows = cache.rows(conn, segment.id)
        start = int(np.searchsorted(rows.idx, after, side="right"))
        stop = int(np.searchsorted(rows.idx, upto, side="right"))
        if key_set_ids is None:
            stop = min(stop, start + limit - len(found))
            picked = None
        else:
            window = np.arange(start, stop)
            picked = window[np.isin(rows.key_set[start:stop], key_set_ids)]
            picked = picked[: limit - len(found)]
        decoded = rows.dicts(start, stop, picked)
        if decoded:
            found += decoded
            last = int(rows.idx[stop - 1] if picked is None else rows.idx[picked[-1]])
    return Scanned(found, last)


def _index_at_step(
    conn: Connection, cache: SegmentCache, pk: int, stream: int, step: int, last: bool
) -> int | None:
    """The index of the first row with a step of at least ``step``; with ``last``, of the last
    row with a step below it (steps grow with the index): in the hot rows or the segments."""
    segment = segments.at_step(conn, pk, stream, step, last)
    if segment is not None and not last:
        rows = cache.rows(conn, segment.id)
        return int(rows.idx[int(np.argmax(rows.step >= step))])
    stmt = select(history.c.idx).where(history.c.run_pk == pk, history.c.stream == stream)
    if last:
        stmt = stmt.where(history.c.step < step).order_by(
            history.c.step.desc(), history.c.idx.desc()
        )
    else:
        stmt = stmt.where(history.c.step >= step).order_by(history.c.step, history.c.idx)
    stmt = stmt.limit(1)
    found: int | None = conn.execute(stmt).scalar()
    if found is None and segment is not None:
        rows = cache.rows(conn, segment.id)
        below = np.flatnonzero(rows.step < step)
        return int(rows.idx[below[-1]])
    return found
