"""The cold tier: for any history, every read returns the same before compaction, after it,
and while part of the run is hot and part is in segments; on both databases."""

from __future__ import annotations

import itertools
import json
import math
import time
from typing import cast

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from runbase import columnar
from runbase.backend.base import HistoryQuery, HistoryRow, NewRun, RunPath
from runbase.backend.local import LocalBackend
from runbase.documents import decode_row, encode_row, leaf_keys
from runbase.store import segments

KEYS = ["loss", "acc", "note", "x", "_runtime"]
scalars = st.one_of(
    st.integers(-(2**63), 2**63 - 1),
    st.integers(2**53, 2**53 + 10),
    st.floats(allow_nan=True, allow_infinity=True),
    st.booleans(),
    st.text(max_size=5),
    st.none(),
)
values = st.recursive(
    scalars,
    lambda inner: (
        st.lists(inner, max_size=3) | st.dictionaries(st.sampled_from("ab"), inner, max_size=2)
    ),  # fmt: skip
    max_leaves=4,
)
rows = st.lists(st.dictionaries(st.sampled_from(KEYS), values, max_size=4), max_size=40)
RUN_IDS = (f"r{n}" for n in itertools.count())


def history_rows(logged: list[dict], first_idx: int = 0) -> list[HistoryRow]:
    made = []
    for idx, row in enumerate(logged, start=first_idx):
        row = {**row, "_step": idx * 2}
        text = json.dumps(row, allow_nan=True)
        made.append(HistoryRow(idx, idx * 2, tuple(sorted(leaf_keys(row))), text))
    return made


def canonical(row) -> str:
    """A row as order-sensitive text in which NaN equals NaN."""
    decoded = row if isinstance(row, dict) else decode_row(row)
    return json.dumps(decoded, allow_nan=True)


def scan(backend, path, **kwargs) -> list[str]:
    return [canonical(row) for page in backend.scan_pages(HistoryQuery(path, **kwargs))
            for row in page.items]  # fmt: skip


def reads(backend, path, n: int) -> dict:
    """Every read the cold tier must answer as the hot tier does."""
    found: dict[object, object] = {
        "all": scan(backend, path, page_size=7),
        "steps": scan(backend, path, min_step=n // 2, max_step=n + 3, page_size=5),
        "before": scan(backend, path, max_step=n // 3),
        "keys": backend.history_keys(path),
        "system": scan(backend, path, stream="system"),
        "summary": canonical(backend.get_run(path).summary),
    }
    for key in KEYS:
        found["keys", key] = scan(backend, path, keys=(key,), page_size=3)
        sample = backend.sample_history(path, "default", 4, [key])
        found["sample", key] = [canonical(row) for row in sample]
    for samples in (1, 3, 50):
        sample = backend.sample_history(path, "default", samples, None)
        found["sample", samples] = [canonical(row) for row in sample]
    return found


def compact(backend, path, upto: int) -> None:
    pk = backend._pk(path)
    for stream in (0, 1):
        while backend.store.write_fn(lambda c, s=stream: segments.compact_next(c, pk, s, upto)):
            pass


@settings(max_examples=25, deadline=None, suppress_health_check=list(HealthCheck),
          derandomize=True)  # fmt: skip
@given(logged=rows, later=rows, split=st.integers(0, 40))
def test_reads_are_the_same_hot_cold_and_in_between(backend, logged, later, split):
    path = RunPath("tester", "p", next(RUN_IDS))
    backend.create_run(path, NewRun())
    first = history_rows(logged)
    backend.append_history(path, "default", first, {"loss": math.nan})
    backend.append_history(path, "system", history_rows(logged[:5]), {"cpu": 1})
    n = len(first) * 2
    hot = reads(backend, path, n)
    compact(backend, path, split)  # a prefix in segments, the rest hot
    assert reads(backend, path, n) == hot
    backend.compact(path)
    assert reads(backend, path, n) == hot
    # a live run goes on after a compaction; a retried batch already compacted is not doubled
    more = history_rows(later, first_idx=len(first))
    backend.append_history(path, "default", first + more, {})
    grown = reads(backend, path, n)
    assert grown["all"] == hot["all"] + [canonical(row.row) for row in more]
    assert grown["keys"].line_count == len(first) + len(more)
    backend.compact(path)
    assert reads(backend, path, n) == grown


def test_a_run_compacts_when_it_finishes_and_when_its_hot_tail_grows(backend):
    backend.compact_rows = 100
    path = RunPath("tester", "p", "live")
    backend.create_run(path, NewRun())
    logged = [{"loss": i / 3, "big": 2**60 + i, "flag": i % 2 == 0} for i in range(250)]
    made = history_rows(logged)
    for start in range(0, 250, 50):
        backend.append_history(path, "default", made[start : start + 50], {})
    pk = backend._pk(path)
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:  # live runs are compacted on a thread of their own,
        with backend.store.read() as conn:  # once appends pause
            mark = segments.watermark(conn, pk, 0)
            if mark >= 149:
                break
        time.sleep(0.01)
    with backend.store.read() as conn:
        assert mark + 1 + segments.hot_rows(conn, pk, 0) == 250
    backend.finish_run(path, "finished", 0)
    assert backend.wait_for_compaction(30)  # a finished run is compacted in the background
    with backend.store.read() as conn:
        assert segments.watermark(conn, pk, 0) == 249 and segments.hot_rows(conn, pk, 0) == 0
    found = [decode_row(row) if isinstance(row, str) else row
             for page in backend.scan_pages(HistoryQuery(path)) for row in page.items]  # fmt: skip
    assert found == [{**row, "_step": i * 2} for i, row in enumerate(logged)]
    assert all(type(row["big"]) is int and type(row["flag"]) is bool for row in found)


@pytest.mark.parametrize("compact_rows", [0])
def test_no_compaction_when_it_is_off(backend, compact_rows):
    backend.compact_rows = compact_rows
    path = RunPath("tester", "p", "off")
    backend.create_run(path, NewRun())
    backend.append_history(path, "default", history_rows([{"x": 1}] * 10), {})
    backend.finish_run(path, "finished", 0)
    assert backend.wait_for_compaction(30)
    with backend.store.read() as conn:
        assert segments.watermark(conn, backend._pk(path), 0) == -1
    assert backend.compact(path) == 10


def test_a_backend_closed_while_it_compacts_leaves_every_row_readable_once(data_dir):
    from runbase.backend import close_backends, open_backend
    from runbase.settings import Settings

    backend = open_backend(Settings.load())
    path = RunPath("tester", "p", "closing")
    backend.create_run(path, NewRun())
    made = history_rows([{"x": i} for i in range(3 * segments.SEGMENT_ROWS)])
    backend.append_history(path, "default", made, {})
    backend.finish_run(path, "finished", 0)
    close_backends()  # at exit: the segment being written is finished, the rest stays hot
    backend = cast(LocalBackend, open_backend(Settings.load()))
    found = [row for page in backend.scan_pages(HistoryQuery(path, page_size=10_000))
             for row in page.items]  # fmt: skip
    assert [decode_row(row)["x"] for row in found] == list(range(3 * segments.SEGMENT_ROWS))
    backend.compact(path)
    found = [row for page in backend.scan_pages(HistoryQuery(path, page_size=10_000))
             for row in page.items]  # fmt: skip
    assert len(found) == 3 * segments.SEGMENT_ROWS


# Rows of one shape written compactly (as the SDK writes them) are compacted by reading their
# text as CSV columns (columnar.encode_lines); these tests hold that path to the row-by-row one.
tricky_text = st.lists(st.sampled_from([*'ab:{}"\\ é[],', "null", "true", "1", "."]), max_size=4)
one_shape_values = {
    "loss": st.one_of(st.floats(allow_nan=True, allow_infinity=True), st.integers(-3, 3)),
    "big": st.one_of(st.integers(-(2**63), 2**64 - 1), st.booleans(), st.none()),
    "note": st.one_of(tricky_text.map("".join), st.none()),
    "_step": st.one_of(st.integers(0, 10), st.integers(0, 10), values),
}


@st.composite
def one_shape_rows(draw: st.DrawFn) -> list[dict]:
    """Rows of one shape, now and then with one of another shape among them; the first row's
    values are scalars (else the rows are not read as columns)."""
    first = {key: draw(strategy.filter(lambda v: v is not None and not isinstance(v, list | dict)))
             for key, strategy in one_shape_values.items()}  # fmt: skip
    logged = [first, *draw(st.lists(st.fixed_dictionaries(one_shape_values), max_size=11))]
    odd = draw(st.none() | st.dictionaries(st.sampled_from(KEYS), values))
    if odd is not None:
        logged.insert(draw(st.integers(1, len(logged))), odd)
    return logged


def segment_contents(encoded) -> tuple:
    """What a segment holds, NaN equal to NaN: metadata, rows and internal columns."""
    table = pq.read_table(pa.BufferReader(encoded.data))
    decoded = columnar.decode(encoded.data)
    rows = [canonical(row) for row in decoded.dicts(0, len(decoded))]
    internal = [decoded.idx.tolist(), decoded.step.tolist(), decoded.key_set.tolist()]
    return table.schema.metadata[columnar.METADATA_KEY], rows, internal, encoded.row_count


@settings(max_examples=150, deadline=None, suppress_health_check=list(HealthCheck),
          derandomize=True)  # fmt: skip
@given(logged=one_shape_rows())
def test_rows_of_one_shape_encode_as_they_do_row_by_row(logged):
    texts = [encode_row(row) for row in logged]
    rows = [(3 * i, 5 - i, i % 2, text) for i, text in enumerate(texts)]
    lines = columnar.SEPARATOR.join(",".join(map(str, row)) for row in rows)
    by_row = segment_contents(columnar.encode(rows))
    assert by_row[1] == [canonical(text) for text in texts]
    assert segment_contents(columnar.encode_lines(lines)) == by_row


def test_a_key_of_one_shape_keeps_each_row_s_type_when_compacted(backend):
    path = RunPath("tester", "p", "one-shape")
    backend.create_run(path, NewRun())
    logged: list[dict[str, object]] = [
        {"loss": 1, "big": 2**63 + 5, "note": "a:b}", "flag": True, "nested": 3},
        {"loss": 0.5, "big": 7, "note": 'q"', "flag": None, "nested": [2]},
        {"loss": math.nan, "big": -(2**63), "note": "é", "flag": False, "nested": {"a": 1}},
        {"loss": -math.inf, "big": 2**64 - 1, "note": None, "flag": True, "nested": None},
    ]
    made = [HistoryRow(i, i, tuple(sorted(row)), encode_row(row)) for i, row in enumerate(logged)]
    lines = columnar.SEPARATOR.join(f"{i},{i},1,{row.row}" for i, row in enumerate(made))
    assert columnar._encode_one_shape(lines.encode()) is not None  # as columns, not by row
    backend.append_history(path, "default", made, {})
    hot = reads(backend, path, len(made))
    backend.compact(path)
    assert reads(backend, path, len(made)) == hot
    found = [decode_row(row) if isinstance(row, str) else row
             for page in backend.scan_pages(HistoryQuery(path)) for row in page.items]  # fmt: skip
    assert [[type(value) for value in row.values()] for row in found] == [
        [type(value) for value in row.values()] for row in logged
    ]
    assert canonical(found[0]) == canonical(logged[0])


def test_some_rows_of_a_segment_are_read_from_their_row_groups_alone():
    logged = [{"a": i, "b": i / 3, "s": str(i)} if i % 3 else {"a": i, "x": [i]}
              for i in range(3 * columnar.ROW_GROUP)]  # fmt: skip
    data = columnar.encode([(i, i, 1, encode_row(row)) for i, row in enumerate(logged)]).data
    positions = [0, 5, columnar.ROW_GROUP - 1, columnar.ROW_GROUP, 2 * columnar.ROW_GROUP + 7]
    some = columnar.decode(data, positions)
    assert some.idx.tolist() == positions
    assert some.dicts(0, len(some)) == [logged[i] for i in positions]
    assert columnar.key_sets(data).tolist() == [1] * len(logged)
