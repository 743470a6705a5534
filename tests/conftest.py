"""Shared fixtures: every test gets its own data directory and its own database: a SQLite
file in the data directory, and, when ``RUNBASE_TEST_POSTGRES`` names a PostgreSQL server
(``scripts/with-postgres.sh`` starts one), a fresh PostgreSQL database as well, copied from a
template database that holds the migrated schema (a copy costs far less than a migration)."""

from __future__ import annotations

import os
import uuid

import pytest
from sqlalchemy import create_engine, make_url, text

from runbase.backend import close_backends, open_backend
from runbase.settings import Settings

POSTGRES_URL = os.environ.get("RUNBASE_TEST_POSTGRES", "")
TEMPLATE = f"runbase_template_{os.getpid()}"


@pytest.fixture(autouse=True)
def _close_backends():
    """Backends opened during a test are closed after it (their stores and threads too)."""
    yield
    close_backends()


@pytest.fixture(scope="session")
def postgres_template(tmp_path_factory):
    """The name of a PostgreSQL database with runbase's schema, to copy for each test."""
    from runbase.store import Store

    server = make_url(POSTGRES_URL)
    admin = create_engine(server, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(text(f'CREATE DATABASE "{TEMPLATE}"'))
    url = server.set(database=TEMPLATE).render_as_string(hide_password=False)
    Store.open(url, tmp_path_factory.mktemp("template")).close()
    yield TEMPLATE
    with admin.connect() as conn:
        conn.execute(text(f'DROP DATABASE "{TEMPLATE}" WITH (FORCE)'))
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
    """None for SQLite in the data directory; else the URL of a new PostgreSQL database."""
    if request.param == "sqlite":
        yield None
        return
    template = request.getfixturevalue("postgres_template")
    server = make_url(POSTGRES_URL)
    name = f"runbase_{uuid.uuid4().hex[:12]}"
    admin = create_engine(server, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(text(f'CREATE DATABASE "{name}" TEMPLATE "{template}"'))
    yield server.set(database=name).render_as_string(hide_password=False)
    with admin.connect() as conn:
        conn.execute(text(f'DROP DATABASE "{name}" WITH (FORCE)'))
    admin.dispose()


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
