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


@pytest.fixture(scope="session")
def s3_endpoint(tmp_path_factory):
    """A real S3-protocol server on 127.0.0.1 (moto's standalone server, as a process) with
    one bucket, ``runbase-tests``; its URL."""
    import socket
    import subprocess
    import sys
    import time

    import boto3
    import httpx

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    log = (tmp_path_factory.mktemp("moto") / "moto.log").open("wb")
    server = subprocess.Popen(
        [sys.executable, "-m", "moto.server", "-H", "127.0.0.1", "-p", str(port)],
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 30
        while True:
            try:
                httpx.get(url + "/moto-api/", timeout=1.0)
                break
            except httpx.HTTPError:
                if time.monotonic() > deadline or server.poll() is not None:
                    raise AssertionError("moto's server did not start") from None
                time.sleep(0.1)
        client = boto3.client("s3", endpoint_url=url, region_name="us-east-1",
                              aws_access_key_id="test", aws_secret_access_key="test")  # fmt: skip
        client.create_bucket(Bucket=S3_BUCKET)
        client.close()
        yield url
    finally:
        server.terminate()
        server.wait(10)
        log.close()


S3_BUCKET = "runbase-tests"


@pytest.fixture
def s3_files(s3_endpoint, monkeypatch, request):
    """``s3://bucket/prefix`` of a prefix of its own for this test, with the AWS settings of
    the environment pointing at the test S3 server."""
    import uuid

    monkeypatch.setenv("AWS_ENDPOINT_URL", s3_endpoint)
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "test")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "test")
    monkeypatch.setenv("AWS_DEFAULT_REGION", "us-east-1")
    for name in ("AWS_PROFILE", "AWS_SESSION_TOKEN", "AWS_CONFIG_FILE"):
        monkeypatch.delenv(name, raising=False)
    return f"s3://{S3_BUCKET}/tests-{uuid.uuid4().hex[:12]}"
