"""Shared fixtures: every test gets its own data directory and an empty database: a SQLite
file in the data directory, and, when ``RUNBASE_TEST_POSTGRES`` names a PostgreSQL server
(``scripts/with-postgres.sh`` starts one), a PostgreSQL database as well. That one database
is migrated once per test run and emptied before each test (far cheaper than a new database
per test)."""

from __future__ import annotations

import os

import pytest
from sqlalchemy import create_engine, make_url, text

from runbase.backend import close_backends, open_backend
from runbase.settings import Settings
from runbase.store import schema

POSTGRES_URL = os.environ.get("RUNBASE_TEST_POSTGRES", "")
DATABASE = f"runbase_tests_{os.getpid()}"
DATA_TABLES = [
    table.name for table in schema.metadata.sorted_tables if table.name != "schema_version"
]


@pytest.fixture(autouse=True)
def _close_backends():
    """Backends opened during a test are closed after it (their stores and threads too)."""
    yield
    close_backends()


@pytest.fixture(scope="session")
def postgres_database(tmp_path_factory):
    """An engine on a PostgreSQL database with runbase's schema, for the whole test run."""
    from runbase.store import Store

    server = make_url(POSTGRES_URL)
    admin = create_engine(server, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(text(f'CREATE DATABASE "{DATABASE}"'))
    url = server.set(database=DATABASE)
    Store.open(url.render_as_string(hide_password=False), tmp_path_factory.mktemp("pg")).close()
    engine = create_engine(url, isolation_level="AUTOCOMMIT")
    yield engine
    engine.dispose()
    with admin.connect() as conn:
        conn.execute(text(f'DROP DATABASE "{DATABASE}" WITH (FORCE)'))
    admin.dispose()


@pytest.fixture(
    params=[
        "sqlite",
        pytest.param(
            "postgresql",
            marks=pytest.mark.skipif(not POSTGRES_URL, reason="RUNBASE_TEST_POSTGRES is not set"),
        ),
    ]
)
def database_url(request):
    """None for SQLite in the data directory; else the URL of the PostgreSQL test database,
    emptied."""
    if request.param == "sqlite":
        return None
    engine = request.getfixturevalue("postgres_database")
    tables = ", ".join(f'"{name}"' for name in DATA_TABLES)
    with engine.connect() as conn:
        conn.execute(text("SET lock_timeout = '20s'"))
        conn.execute(text(f"TRUNCATE {tables} RESTART IDENTITY CASCADE"))
    return engine.url.render_as_string(hide_password=False)


@pytest.fixture
def data_dir(tmp_path, monkeypatch, database_url):
    """A fresh RUNBASE_DIR (and database); system metrics off unless a test turns them on."""
    path = tmp_path / "runbase-data"
    monkeypatch.setenv("RUNBASE_DIR", str(path))
    monkeypatch.setenv("RUNBASE_SYSTEM_INTERVAL", "0")
    monkeypatch.setenv("RUNBASE_ENTITY", "tester")
    monkeypatch.delenv("RUNBASE_PROJECT", raising=False)
    monkeypatch.delenv("RUNBASE_SWEEP_ID", raising=False)
    if database_url:
        monkeypatch.setenv("RUNBASE_DATABASE_URL", database_url)
    else:
        monkeypatch.delenv("RUNBASE_DATABASE_URL", raising=False)
    return path


@pytest.fixture
def backend(data_dir):
    """The backend over the test's store, as the SDK and the API see it."""
    return open_backend(Settings.load())
