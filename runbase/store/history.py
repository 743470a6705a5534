"""History rows of a run, per stream: append, key sets, sample, scan.

Each row is kept as its JSON text with a dense index (0..n-1), its ``_step`` and the id of
its key set. Key sets are few per run, so a read for some keys first picks the key sets that
hold them all and then touches only rows of those sets.
"""

from __future__ import annotations

import time
from collections import Counter
from operator import itemgetter
from typing import Any

import orjson
from sqlalchemy import Connection, and_, bindparam, func, or_, select, update

from runbase.store.dialect import (
    Prepared,
    fetch_all,
    in_list,
    insert_ignore,
    insert_many,
    json_list,
    list_value,
)
from runbase.store.runs import merge_document_pk
from runbase.store.schema import STREAMS, history, key_sets, runs

HISTORY_COLUMNS = ("idx", "step", "key_set", "row")
_keys_of = itemgetter(2)
LINE_COUNT = {0: runs.c.history_line_count, 1: runs.c.system_line_count}
LATEST_DOCUMENT = {0: runs.c.summary, 1: runs.c.system_metrics}


def stream_number(stream: str) -> int:
    try:
        return STREAMS[stream]
    except KeyError:
        raise ValueError(f"stream must be one of {sorted(STREAMS)}, not {stream!r}") from None


def append(
    conn: Connection,
    pk: int,
    stream: int,
    rows: list[tuple[int, int, tuple[str, ...], str]],
    latest: dict[str, Any],
) -> int:
    """Store (idx, step, keys, row_text) rows given in index order; rows already stored are
    skipped. Merges ``latest`` into the run's summary or system metrics. Returns how many rows
    were new."""
    inserted = 0
    values: dict[Any, Any] = {runs.c.heartbeat_at: time.time()}
    if rows:
        ids = _key_set_ids(conn, pk, stream, set(map(_keys_of, rows)))
        params = [(idx, step, ids[keys], text) for idx, step, keys, text in rows]
        inserted = insert_many(conn, history, HISTORY_COLUMNS, params, run_pk=pk, stream=stream)
        if inserted:
            _count_key_sets(conn, pk, stream, rows, ids, all_new=inserted == len(rows))
        last_idx, last_step = rows[-1][0], rows[-1][1]
        values[LINE_COUNT[stream]] = _greatest(conn, LINE_COUNT[stream], last_idx + 1)
        if stream == 0:
            values[runs.c.last_step] = func.coalesce(
                _greatest(conn, runs.c.last_step, last_step), last_step
            )
    conn.execute(update(runs).where(runs.c.storage_id == pk).values(values))
    if latest:
        merge_document_pk(conn, pk, LATEST_DOCUMENT[stream], latest)
    return inserted


def _greatest(conn: Connection, column, value):
    if conn.dialect.name == "sqlite":
        return func.max(column, value)
    return func.greatest(column, value)


def _key_set_ids(
    conn: Connection, pk: int, stream: int, key_tuples: set[tuple[str, ...]]
) -> dict[tuple[str, ...], int]:
    texts = {keys: orjson.dumps(keys).decode() for keys in key_tuples}
    conn.execute(
        insert_ignore(conn.dialect.name, key_sets),
        [{"run_pk": pk, "stream": stream, "key_list": text} for text in texts.values()],
    )
    found = conn.execute(
        select(key_sets.c.key_list, key_sets.c.id).where(
            key_sets.c.run_pk == pk,
            key_sets.c.stream == stream,
            key_sets.c.key_list.in_(texts.values()),
        )
    )
    by_text = {text: id_ for text, id_ in found}
    return {keys: by_text[text] for keys, text in texts.items()}


def _count_key_sets(conn, pk, stream, rows, ids, all_new: bool) -> None:
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
    for key_set in set(ids.values()):
        total = select(func.count()).where(
            history.c.run_pk == pk, history.c.stream == stream, history.c.key_set == key_set
        )
        conn.execute(
            update(key_sets)
            .where(key_sets.c.id == key_set)
            .values(row_count=total.scalar_subquery())
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
    conn: Connection, pk: int, stream: int, keys: list[str]
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


def _by_key_set(stmt, sparse: bool):
    """Read through the key-set index when the matching rows are few."""
    return stmt.with_hint(history, "INDEXED BY ix_history_key_set", "sqlite") if sparse else stmt


def line_count(conn: Connection, pk: int, stream: int) -> int:
    return conn.execute(select(LINE_COUNT[stream]).where(runs.c.storage_id == pk)).scalar_one()


def extent(conn: Connection, pk: int, stream: int) -> tuple[int, int | None]:
    """(rows, last step) of a stream; the system stream's step is its index."""
    count, last_step = conn.execute(
        select(LINE_COUNT[stream], runs.c.last_step).where(runs.c.storage_id == pk)
    ).one()
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
    conn: Connection, pk: int, stream: int, samples: int, keys: list[str] | None
) -> list[int]:
    """Dense indexes of the rows a sample of the stream holds."""
    where = [history.c.run_pk == pk, history.c.stream == stream]
    key_set_ids, sparse = _matching_key_sets(conn, pk, stream, keys) if keys else (None, False)
    if key_set_ids is None:
        return evenly(line_count(conn, pk, stream), samples)
    if not key_set_ids:
        return []
    stmt = (
        select(history.c.idx)
        .where(*where, history.c.key_set.in_(key_set_ids))
        .order_by(history.c.idx)
    )
    matching = [idx for (idx,) in fetch_all(conn, _by_key_set(stmt, sparse))]
    return [matching[i] for i in evenly(len(matching), samples)]


def sample(
    conn: Connection, pk: int, stream: int, samples: int, keys: list[str] | None
) -> list[str]:
    indexes = sample_indexes(conn, pk, stream, samples, keys)
    if not indexes:
        return []
    dialect = conn.dialect.name
    stmt = (
        select(history.c.row)
        .where(
            history.c.run_pk == pk,
            history.c.stream == stream,
            in_list(dialect, history.c.idx, indexes),
        )
        .order_by(history.c.idx)
    )
    return list(conn.execute(stmt).scalars())


def sample_many(
    conn: Connection, pks: list[int], stream: int, samples: int, keys: list[str] | None
) -> dict[int, list[str]]:
    """``sample`` for many runs in one query."""
    dialect = conn.dialect.name
    wanted = {pk: sample_indexes(conn, pk, stream, samples, keys) for pk in pks}
    clauses = [
        and_(history.c.run_pk == pk, in_list(dialect, history.c.idx, indexes))
        for pk, indexes in wanted.items()
        if indexes
    ]
    found: dict[int, list[str]] = {pk: [] for pk in pks}
    if not clauses:
        return found
    stmt = (
        select(history.c.run_pk, history.c.row)
        .where(history.c.stream == stream, or_(*clauses))
        .order_by(history.c.run_pk, history.c.idx)
    )
    for pk, row in conn.execute(stmt):
        found[pk].append(row)
    return found


def _scan_statement(keyed: bool, sparse: bool):
    def build(dialect_name: str):
        where = [
            history.c.run_pk == bindparam("pk"),
            history.c.stream == bindparam("stream"),
            history.c.idx > bindparam("after"),
            history.c.idx <= bindparam("upto"),
        ]
        if keyed:
            where.append(history.c.key_set.in_(json_list(dialect_name, "key_sets")))
        stmt = (
            select(history.c.idx, history.c.row)
            .where(*where)
            .order_by(history.c.idx)
            .limit(bindparam("limit"))
        )
        return _by_key_set(stmt, sparse)

    return Prepared(build)


SCANS = {
    (keyed, sparse): _scan_statement(keyed, sparse)
    for keyed in (False, True)
    for sparse in (False, True)
}


def scan(
    conn: Connection,
    pk: int,
    stream: int,
    keys: list[str] | None,
    after_idx: int,
    limit: int,
    min_step: int | None,
    max_step: int | None,
) -> list[tuple[int, str]]:
    """Rows after ``after_idx`` in index order, at most ``limit``, as (idx, row text); with
    ``keys``, only rows holding all of them; steps bounded by ``min_step``/``max_step``."""
    key_set_ids, sparse = _matching_key_sets(conn, pk, stream, keys) if keys else (None, False)
    if key_set_ids == []:
        return []
    if min_step is not None:
        after_idx = max(after_idx, _first_index_at(conn, pk, stream, min_step) - 1)
    upto = _last_index_at(conn, pk, stream, max_step) if max_step is not None else 2**62
    params = {"pk": pk, "stream": stream, "after": after_idx, "upto": upto, "limit": limit}
    if key_set_ids is not None:
        params["key_sets"] = list_value(conn.dialect.name, key_set_ids)
    return SCANS[key_set_ids is not None, sparse].fetch_all(conn, **params)


def _first_index_at(conn: Connection, pk: int, stream: int, step: int) -> int:
    """Index of the first row at ``step`` or later (steps grow with the index)."""
    low, high = 0, line_count(conn, pk, stream)
    while low < high:
        middle = (low + high) // 2
        if _step_at(conn, pk, stream, middle) < step:
            low = middle + 1
        else:
            high = middle
    return low


def _last_index_at(conn: Connection, pk: int, stream: int, step: int) -> int:
    """Index of the last row at ``step`` or earlier; -1 when there is none."""
    return _first_index_at(conn, pk, stream, step + 1) - 1


def _step_at(conn: Connection, pk: int, stream: int, idx: int) -> int:
    stmt = select(history.c.step).where(
        history.c.run_pk == pk, history.c.stream == stream, history.c.idx == idx
    )
    return conn.execute(stmt).scalar_one()
