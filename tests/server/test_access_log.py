"""One access-log line per request: method, path, status, duration and user; never the key."""

from __future__ import annotations

import logging
import re

import pytest

from runbase.backend import open_accounts
from runbase.server import create_app
from runbase.settings import Settings

LINE = re.compile(r"(?P<method>\S+) (?P<path>\S+) (?P<status>\d{3}) [\d.]+ms (?P<user>\S+)")


@pytest.fixture
def key(backend):
    accounts = open_accounts(Settings.load())
    accounts.create_user("alice")
    return accounts.create_key("alice")[0]


@pytest.fixture
def app(backend, key):
    return create_app(backend, open_accounts(Settings.load()))


def lines(caplog) -> list[dict[str, str]]:
    found = [r.getMessage() for r in caplog.records if r.name == "runbase.access"]
    return [LINE.fullmatch(text).groupdict() for text in found]  # type: ignore[union-attr]


def test_a_request_logs_its_user_and_never_its_key(client, key, caplog):
    caplog.set_level(logging.INFO, logger="runbase.access")
    headers = {"authorization": f"Bearer {key}"}
    assert client.get("/api/v1/projects?entity=alice", headers=headers).status_code == 200
    assert client.get("/api/v1/entity", auth=("api", key)).status_code == 200
    assert client.get("/api/v1/entity").status_code == 401
    assert client.get("/healthz").status_code == 200
    assert lines(caplog) == [
        {"method": "GET", "path": "/api/v1/projects", "status": "200", "user": "alice"},
        {"method": "GET", "path": "/api/v1/entity", "status": "200", "user": "alice"},
        {"method": "GET", "path": "/api/v1/entity", "status": "401", "user": "-"},
        {"method": "GET", "path": "/healthz", "status": "200", "user": "-"},
    ]
    assert key not in caplog.text and "Bearer" not in caplog.text


def test_a_failing_request_is_logged_as_500(backend, caplog, monkeypatch):
    from tests.server.conftest import TestClient

    caplog.set_level(logging.INFO, logger="runbase.access")

    def broken(*args):
        raise RuntimeError("a bug")

    monkeypatch.setattr(type(backend), "default_entity", broken)
    with TestClient(create_app(backend), raise_server_exceptions=False) as client:
        assert client.get("/api/v1/entity").status_code == 500
    assert lines(caplog)[-1]["status"] == "500"
