"""Reads of a history whose dense index has a hole (idx 0, 1, 3): scans by step and key,
pages through a cursor, and samples never fail."""

from __future__ import annotations

import orjson
import pytest

from runbase.backend.base import HistoryQuery, HistoryRow, NewRun, RunPath
from runbase.errors import InvalidInput

PATH = RunPath("tester", "p", "holes")


def row(idx: int, step: int, **values: float) -> HistoryRow:
    data = {"_step": step, **values}
    return HistoryRow(idx, step, tuple(sorted(data)), orjson.dumps(data).decode())


@pytest.fixture
def holes(backend):
    backend.create_run(PATH, NewRun())
    rows = [row(0, 0, loss=1.0), row(1, 10, loss=0.5, acc=0.1), row(3, 30, acc=0.3)]
    backend.append_history(PATH, "default", rows, {})
    return backend


def steps(texts: list[str]) -> list[int]:
    return [orjson.loads(text)["_step"] for text in texts]


def scan_all(backend, **query) -> list[int]:
    """Every step of the scan, one row a page, through the cursors."""
    found: list[str] = []
    cursor = None
    while True:
        page = backend.scan_history(HistoryQuery(PATH, page_size=1, cursor=cursor, **query))
        found += page.items
        cursor = page.next_cursor
        if cursor is None:
            return steps(found)


@pytest.mark.parametrize(
    ("query", "expected"),
    [
        ({}, [0, 10, 30]),
        ({"min_step": 5}, [10, 30]),
        ({"min_step": 20}, [30]),
        ({"min_step": 31}, []),
        ({"max_step": 30}, [0, 10]),
        ({"max_step": 0}, []),
        ({"min_step": 10, "max_step": 11}, [10]),
        ({"min_step": 11, "max_step": 30}, []),
        ({"keys": ("acc",)}, [10, 30]),
        ({"keys": ("loss",), "min_step": 1}, [10]),
        ({"keys": ("acc",), "max_step": 30}, [10]),
        ({"keys": ("missing",)}, []),
    ],
)
def test_scans_tolerate_a_hole(holes, query, expected):
    assert steps(holes.scan_history(HistoryQuery(PATH, **query)).items) == expected
    assert scan_all(holes, **query) == expected


def test_a_short_page_has_no_cursor(holes):
    page = holes.scan_history(HistoryQuery(PATH, page_size=10))
    assert steps(page.items) == [0, 10, 30] and page.next_cursor is None
    full = holes.scan_history(HistoryQuery(PATH, page_size=3))
    assert full.next_cursor is not None
    rest = holes.scan_history(HistoryQuery(PATH, page_size=3, cursor=full.next_cursor))
    assert rest.items == [] and rest.next_cursor is None


@pytest.mark.parametrize("cursor", ["not base64 json!", "bnVsbA==", "WzEsMiwzXQ=="])
def test_a_malformed_cursor_is_invalid_input_naming_it(holes, cursor):
    with pytest.raises(InvalidInput, match="cursor"):
        holes.scan_history(HistoryQuery(PATH, cursor=cursor))


def test_samples_tolerate_a_hole(holes):
    assert steps(holes.sample_history(PATH, "default", 10, None)) == [0, 10, 30]
    assert steps(holes.sample_history(PATH, "default", 10, ["acc"])) == [10, 30]
    sampled = steps(holes.sample_history(PATH, "default", 2, None))
    assert sampled and set(sampled) <= {0, 10, 30}
    other = RunPath("tester", "p", "empty")
    holes.create_run(other, NewRun())
    both = holes.sample_histories([other, PATH], "default", 10, None)
    assert both[0] == [] and steps(both[1]) == [0, 10, 30]
