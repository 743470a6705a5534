"""The backend's behaviours, the same over the local backend and over HTTP to the server."""

from __future__ import annotations

import json
import math

import pytest

from runbase import columnar
from runbase.backend.base import (
    HistoryQuery,
    HistoryRow,
    NewRun,
    RunChanges,
    RunPath,
    RunQuery,
)
from runbase.documents import decode_row
from runbase.errors import Conflict, InvalidFilter, InvalidInput, NotFound

ENTITY = "tester"
PATH = RunPath(ENTITY, "proj", "r1")


def rows(start: int, count: int, **extra) -> list[HistoryRow]:
    made = []
    for i in range(start, start + count):
        row = {"_step": i * 10, "loss": 1.0 / (i + 1), **extra}
        if i % 2 == 0:
            row["even"] = i
        made.append(HistoryRow(i, i * 10, tuple(sorted(row)), json.dumps(row)))
    return made


def scan_all(backend, query: HistoryQuery) -> tuple[list[dict], int]:
    """Every row of the scan, decoded, and the number of pages it took."""
    found: list[dict] = []
    pages = 0
    while True:
        page = backend.scan_history(query)
        pages += 1
        found.extend(decode_row(text) for text in page.items)
        if page.next_cursor is None:
            return found, pages
        query = HistoryQuery(query.path, query.stream, query.keys, page_size=query.page_size,
                             cursor=page.next_cursor)  # fmt: skip


def test_runs_keep_nan_and_infinity(pair):
    config = {"lr": math.nan, "limits": [math.inf, -math.inf], "nested": {"x": 1}}
    created = pair.create_run(PATH, NewRun(config=config, tags=("a", "b"), notes="n"))
    assert created.tags == ("a", "b") and created.notes == "n" and created.state == "running"
    assert math.isnan(created.config["lr"])
    assert created.config["limits"] == [math.inf, -math.inf]
    pair.update_summary(PATH, {"best": math.nan, "acc": 0.5})
    pair.update_config(PATH, {"extra": -math.inf})
    got = pair.get_run(PATH)
    assert math.isnan(got.summary["best"]) and got.summary["acc"] == 0.5
    assert got.config["extra"] == -math.inf and got.config["nested"] == {"x": 1}
    assert got.path == PATH and isinstance(got.tags, tuple)


def test_update_run_sets_only_what_it_names(pair):
    pair.create_run(PATH, NewRun(display_name="old", notes="keep", group="g"))
    changed = pair.update_run(
        PATH, RunChanges(display_name="new", tags=("t",), group=None, summary={"s": math.inf})
    )
    assert (changed.display_name, changed.notes, changed.group) == ("new", "keep", None)
    assert changed.tags == ("t",) and changed.summary == {"s": math.inf}
    assert pair.get_run(PATH) == changed


def test_heartbeat_and_finish(pair):
    pair.create_run(PATH, NewRun())
    pair.heartbeat(PATH)
    pair.finish_run(PATH, "failed", 3)
    got = pair.get_run(PATH)
    assert (got.state, got.exit_code) == ("failed", 3)


def test_query_and_count_runs(pair):
    for n in range(5):
        path = RunPath(ENTITY, "proj", f"r{n}")
        pair.create_run(path, NewRun(config={"n": n, "odd": n % 2 == 1}))
    query = RunQuery(ENTITY, "proj", {"config.odd": False}, order="-config.n", per_page=2)
    ids: list[str] = []
    cursor = None
    while True:
        page = pair.query_runs(RunQuery(**{**query.__dict__, "cursor": cursor}))
        ids.extend(run.run_id for run in page.items)
        if (cursor := page.next_cursor) is None:
            break
    assert ids == ["r4", "r2", "r0"]
    assert pair.count_runs(ENTITY, "proj", {"config.n": {"$gte": 2}}) == 3
    assert pair.count_runs(ENTITY, "nothing", {}) == 0


def test_history_pages_steps_keys_and_samples(pair):
    pair.create_run(PATH, NewRun())
    pair.append_history(PATH, "default", rows(0, 25), {"loss": math.nan})
    pair.append_history(PATH, "default", rows(20, 10), {})  # 20..24 retried: stored once
    pair.append_history(PATH, "system", rows(0, 3), {"cpu": 1.0})
    found, pages = scan_all(pair, HistoryQuery(PATH, page_size=7))
    assert [row["_step"] for row in found] == [i * 10 for i in range(30)] and pages == 5
    between, _ = scan_all(pair, HistoryQuery(PATH, min_step=50, max_step=120, page_size=2))
    assert [row["_step"] for row in between] == list(range(50, 120, 10))
    even, _ = scan_all(pair, HistoryQuery(PATH, keys=("even",), page_size=4))
    assert [row["even"] for row in even] == list(range(0, 30, 2))
    keys = pair.history_keys(PATH)
    assert keys.keys == {"_step": 30, "loss": 30, "even": 15}
    assert (keys.last_step, keys.line_count) == (290, 30)
    assert pair.history_keys(PATH, "system").line_count == 3
    sample = [decode_row(text)["_step"] for text in pair.sample_history(PATH, "default", 4, None)]
    assert len(sample) == 4 and sample[0] == 0 and sample[-1] == 290
    other = RunPath(ENTITY, "proj", "r2")
    pair.create_run(other, NewRun())
    pair.append_history(other, "default", rows(0, 2), {})
    many = pair.sample_histories([other, PATH], "default", 3, ["even"])
    assert [len(texts) for texts in many] == [1, 3]
    run = pair.get_run(PATH)
    assert math.isnan(run.summary["loss"]) and run.system_metrics == {"cpu": 1.0}


def test_scan_pages_sends_every_page_once(pair):
    pair.create_run(PATH, NewRun())
    pair.append_history(PATH, "default", rows(0, 30), {"x": math.inf})
    pair.append_history(PATH, "default", [HistoryRow(30, 300, ("_step", "y"),
                                                     '{"_step": 300, "y": NaN}')], {})  # fmt: skip
    pages = list(pair.scan_pages(HistoryQuery(PATH, page_size=7)))
    assert [len(page.items) for page in pages] == [7, 7, 7, 7, 3]
    assert all(page.next_cursor for page in pages[:-1]) and pages[-1].next_cursor is None
    found = [decode_row(text) for page in pages for text in page.items]
    assert [row["_step"] for row in found] == [i * 10 for i in range(31)]
    assert math.isnan(found[-1]["y"])
    cursor = pages[1].next_cursor  # from a cursor on, as scan_history pages
    later = list(pair.scan_pages(HistoryQuery(PATH, page_size=7, cursor=cursor)))
    assert [page.items for page in later] == [page.items for page in pages[2:]]
    assert [page.items for page in pair.scan_pages(HistoryQuery(PATH, min_step=1000))] == [[]]
    with pytest.raises(NotFound):
        next(pair.scan_pages(HistoryQuery(RunPath(ENTITY, "proj", "nope"))))


def test_a_scan_read_in_part_leaves_the_server_serving(pair):
    pair.create_run(PATH, NewRun())
    pair.append_history(PATH, "default", rows(0, 50), {})
    pages = pair.scan_pages(HistoryQuery(PATH, page_size=5))
    assert len(next(pages).items) == 5
    pages.close()
    assert len(scan_all(pair, HistoryQuery(PATH, page_size=50))[0]) == 50


def test_history_rows_travel_as_stored_text(pair):
    pair.create_run(PATH, NewRun())
    text = '{"_step": 0, "x": NaN, "y": Infinity, "s": "caf\\u00e9"}'
    pair.append_history(PATH, "default", [HistoryRow(0, 0, ("_step", "s", "x", "y"), text)], {})
    [stored] = pair.scan_history(HistoryQuery(PATH)).items
    row = decode_row(stored)
    assert math.isnan(row["x"]) and row["y"] == math.inf and row["s"] == "café"


def test_files_round_trip(pair):
    pair.create_run(PATH, NewRun())
    payload = bytes(range(256)) * 5000
    record = pair.put_file(PATH, "media/weights.bin", [payload[:1000], payload[1000:]])
    assert (record.name, record.size) == ("media/weights.bin", len(payload))
    pair.put_file(PATH, "a.txt", [b"hello"])
    pair.put_file(PATH, "b.txt", iter([]))
    assert b"".join(pair.read_file(PATH, "media/weights.bin")) == payload
    assert b"".join(pair.read_file(PATH, "b.txt")) == b""
    first = pair.list_files(PATH, [], 2, None)
    assert [f.name for f in first.items] == ["a.txt", "b.txt"] and first.next_cursor
    second = pair.list_files(PATH, [], 2, first.next_cursor)
    assert [f.name for f in second.items] == ["media/weights.bin"] and second.next_cursor is None
    assert pair.count_files(PATH, []) == 3
    assert pair.count_files(PATH, ["a.txt", "nope"]) == 1
    assert [f.name for f in pair.list_files(PATH, ["a.txt"], 5, None).items] == ["a.txt"]
    pair.delete_file(PATH, "a.txt")
    with pytest.raises(NotFound):
        pair.read_file(PATH, "a.txt")
    assert pair.count_files(PATH, []) == 2


def test_odd_names_are_names(pair):
    for run_id in ["..", ".", "a b?c#d%e", "ü"]:
        path = RunPath(ENTITY, "proj", run_id)
        assert pair.create_run(path, NewRun()).run_id == run_id
        assert pair.get_run(path).run_id == run_id
    with pytest.raises(InvalidInput):
        pair.put_file(RunPath(ENTITY, "proj", "."), "../escape.txt", [b"x"])


def test_projects_sweeps_and_the_default_entity(pair):
    assert pair.default_entity() == ENTITY
    pair.create_run(PATH, NewRun())
    pair.create_run(RunPath(ENTITY, "other", "r"), NewRun())
    page = pair.list_projects(ENTITY, 1, None)
    assert len(page.items) == 1 and page.next_cursor
    names = {p.name for p in page.items} | {
        p.name for p in pair.list_projects(ENTITY, 1, page.next_cursor).items
    }
    assert names == {"proj", "other"}
    assert pair.get_project(ENTITY, "proj").run_count == 1
    sweep = pair.create_sweep(ENTITY, "proj", {"name": "s", "limit": math.inf})
    got = pair.get_sweep(ENTITY, "proj", sweep.sweep_id)
    assert got == sweep and got.config["limit"] == math.inf


@pytest.mark.parametrize(
    ("call", "error"),
    [
        (lambda b: b.get_run(RunPath(ENTITY, "proj", "missing")), NotFound),
        (lambda b: b.get_run(RunPath(ENTITY, "", "r")), InvalidInput),
        (lambda b: b.create_run(PATH, NewRun()), Conflict),
        (lambda b: b.create_run(PATH, NewRun(resume="sometimes")), InvalidInput),
        (lambda b: b.update_run(PATH, RunChanges(state="asleep")), InvalidInput),
        (lambda b: b.update_config(PATH, {"x": object()}), InvalidInput),
        (lambda b: b.finish_run(PATH, "finished", "0"), InvalidInput),
        (lambda b: b.scan_history(HistoryQuery(PATH, page_size=0)), InvalidInput),
        (lambda b: b.scan_history(HistoryQuery(PATH, cursor="garbage")), InvalidInput),
        (lambda b: b.scan_history(HistoryQuery(PATH, stream="nope")), InvalidInput),
        (lambda b: b.history_keys(RunPath(ENTITY, "proj", "missing")), NotFound),
        (lambda b: b.sample_history(PATH, "default", 0, None), InvalidInput),
        (lambda b: b.query_runs(RunQuery(ENTITY, "proj", {"$bogus": 1})), InvalidFilter),
        (lambda b: b.query_runs(RunQuery(ENTITY, "proj", order="+")), InvalidFilter),
        (lambda b: b.count_runs(ENTITY, "proj", {"config.x": {"$size": -1}}), InvalidFilter),
        (lambda b: b.list_files(PATH, [], 0, None), InvalidInput),
        (lambda b: b.read_file(PATH, "missing.txt"), NotFound),
        (lambda b: b.delete_file(PATH, "missing.txt"), NotFound),
        (lambda b: b.get_project(ENTITY, "missing"), NotFound),
        (lambda b: b.get_sweep(ENTITY, "proj", "missing"), NotFound),
    ],
)
def test_errors_cross_the_wire_as_the_same_class(pair, call, error):
    pair.create_run(PATH, NewRun())
    with pytest.raises(error) as raised:
        call(pair)
    assert type(raised.value) is error
    assert raised.value.message


def segment_rows(blobs) -> list[tuple[int, dict]]:
    """(index, row) of every row of the blobs, each index once, as a reader keeps them."""
    found: list[tuple[int, dict]] = []
    for blob in blobs:
        decoded = columnar.decode(blob)
        for idx, row in zip(decoded.idx.tolist(), decoded.dicts(0, len(decoded)), strict=True):
            if not found or idx > found[-1][0]:
                found.append((idx, row))
    return found


def test_history_segments_hand_out_stored_segments_then_hot_rows(pair, backend):
    pair.create_run(PATH, NewRun())
    pair.append_history(PATH, "default", rows(0, 30), {})
    backend.compact(PATH)
    pair.append_history(PATH, "default", rows(30, 5, late=True), {})
    pair.append_history(PATH, "system", rows(0, 3), {})
    blobs = list(pair.history_segments(PATH))
    stored = [bytes(blob) for blob in backend.history_segments(PATH)][:1]
    assert len(blobs) == 2 and blobs[0] == stored[0]  # the stored segment, byte for byte
    found = segment_rows(blobs)
    assert [idx for idx, _ in found] == list(range(35))
    assert [row["_step"] for _, row in found] == [i * 10 for i in range(35)]
    assert found[2][1] == {"_step": 20, "even": 2, "loss": 1 / 3}
    assert found[-1][1]["late"] is True
    assert len(segment_rows(pair.history_segments(PATH, "system"))) == 3


def test_history_segments_of_nothing_and_of_no_run(pair):
    pair.create_run(PATH, NewRun())
    assert list(pair.history_segments(PATH)) == []
    with pytest.raises(NotFound):
        pair.history_segments(RunPath(ENTITY, "proj", "nope"))
    with pytest.raises(InvalidInput, match="stream"):
        pair.history_segments(PATH, "other")
