"""Shared fixtures: every test gets its own data directory with a real SQLite store."""

from __future__ import annotations

import pytest

from runbase.backend import open_backend
from runbase.settings import Settings


@pytest.fixture
def data_dir(tmp_path, monkeypatch):
    """A fresh RUNBASE_DIR; system metrics off unless a test turns them on."""
    path = tmp_path / "runbase-data"
    monkeypatch.setenv("RUNBASE_DIR", str(path))
    monkeypatch.setenv("RUNBASE_SYSTEM_INTERVAL", "0")
    monkeypatch.setenv("RUNBASE_ENTITY", "tester")
    monkeypatch.delenv("RUNBASE_PROJECT", raising=False)
    monkeypatch.delenv("RUNBASE_SWEEP_ID", raising=False)
    return path


@pytest.fixture
def backend(data_dir):
    """The backend over the test's store, as the SDK and the API see it."""
    return open_backend(Settings.load())
