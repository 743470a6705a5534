"""The backend's values rejected when malformed: an InvalidInput naming what was wrong, and
nothing written."""

from __future__ import annotations

import pytest

from runbase.backend.base import HistoryQuery, HistoryRow, NewRun, RunChanges, RunPath
from runbase.errors import InvalidInput

PATH = RunPath("tester", "p", "r1")


@pytest.fixture
def run(backend):
    backend.create_run(PATH, NewRun(display_name="kept", tags=("a",)))
    backend.append_history(PATH, "default", [HistoryRow(0, 0, ("x",), '{"x": 1}')], {"x": 1})
    return PATH


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        (RunChanges(display_name="new", tags="abc"), "tags"),  # type: ignore[arg-type]
        (RunChanges(display_name="new", state="sleeping"), "state"),
        (RunChanges(display_name="new", config=[1]), "config"),  # type: ignore[arg-type]
        (RunChanges(display_name="new", summary={"k": object()}), "summary.k"),
        (RunChanges(display_name="new", exit_code="1"), "exit_code"),  # type: ignore[arg-type]
        (RunChanges(display_name=None), "display_name"),  # type: ignore[arg-type]
        ({"display_name": "new"}, "RunChanges"),
    ],
)
def test_bad_run_changes_name_the_field_and_change_nothing(backend, run, changes, message):
    with pytest.raises(InvalidInput, match=message):
        backend.update_run(run, changes)
    record = backend.get_run(run)
    assert (record.display_name, record.tags) == ("kept", ("a",))


@pytest.mark.parametrize(
    ("query", "message"),
    [
        (HistoryQuery(PATH, page_size=0), "page_size"),
        (HistoryQuery(PATH, keys="x"), "keys"),  # type: ignore[arg-type]
        (HistoryQuery(PATH, min_step="1"), "min_step"),  # type: ignore[arg-type]
        (HistoryQuery(PATH, max_step=1.5), "max_step"),  # type: ignore[arg-type]
        (HistoryQuery(PATH, stream="gpu"), "stream"),
        (HistoryQuery(PATH, cursor="%%%"), "cursor"),
        (HistoryQuery(RunPath("tester", "p", "a/b")), "run_id"),
    ],
)
def test_bad_history_queries_name_the_field(backend, run, query, message):
    with pytest.raises(InvalidInput, match=message):
        backend.scan_history(query)


def test_a_bad_file_name_stores_nothing(backend, run):
    with pytest.raises(InvalidInput, match="file name"):
        backend.put_file(run, "../escape.txt", [b"data"])
    assert backend.count_files(run, []) == 0
