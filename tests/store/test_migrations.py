"""Migrations bring an older database to the current schema without losing what it holds."""

from __future__ import annotations

import pytest
from sqlalchemy import inspect, text

from runbase.backend.base import HistoryQuery, HistoryRow, NewRun, RunPath
from runbase.backend.local import LocalBackend
from runbase.store import Store
from runbase.store.migrations import STEPS, current_version

PATH = RunPath("tester", "p", "r")


def wide_row(idx: int, width: int) -> HistoryRow:
    keys = tuple(sorted(f"m.k{i:05d}" for i in range(width)))
    return HistoryRow(idx, idx, keys, '{"m": {}}')


def test_a_key_set_of_thousands_of_keys_is_stored(data_dir, database_url):
    backend = LocalBackend(Store.open(database_url, data_dir), "tester")
    backend.create_run(PATH, NewRun())
    backend.append_history(PATH, "default", [wide_row(0, 20_000), wide_row(1, 20_000)], {})
    assert backend.history_keys(PATH).line_count == 2
    assert len(backend.scan_history(HistoryQuery(PATH, keys=("m.k00007",))).items) == 2
    backend.close()


def test_key_sets_of_a_version_3_database_get_their_hash(data_dir, database_url):
    if database_url is None:
        pytest.skip("SQLite cannot drop a constraint, so the old shape cannot be rebuilt")
    store = Store.open(database_url, data_dir)
    backend = LocalBackend(store, "tester")
    backend.create_run(PATH, NewRun())
    backend.append_history(PATH, "default", [HistoryRow(0, 0, ("a",), '{"a": 1}')], {})
    with store.engine.begin() as conn:  # back to the shape of version 3
        conn.execute(text("ALTER TABLE key_sets DROP CONSTRAINT uq_key_sets_hash"))
        conn.execute(text("ALTER TABLE key_sets DROP COLUMN key_hash"))
        conn.execute(text("ALTER TABLE key_sets ADD UNIQUE (run_pk, stream, key_list)"))
        conn.execute(text("DELETE FROM schema_version WHERE version >= 4"))
    store.close()

    store = Store.open(database_url, data_dir)
    backend = LocalBackend(store, "tester")
    with store.read() as conn:
        assert current_version(conn) == len(STEPS)
        uniques = [u["column_names"] for u in inspect(conn).get_unique_constraints("key_sets")]
    assert ["run_pk", "stream", "key_list"] not in uniques
    backend.append_history(
        PATH, "default", [HistoryRow(1, 1, ("a",), '{"a": 2}'), wide_row(2, 20_000)], {}
    )
    keys = backend.history_keys(PATH).keys
    assert keys["a"] == 2 and keys["m.k19999"] == 1
    backend.close()
