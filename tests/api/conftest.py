"""Fixtures for the public API: a real store, a backend that counts its calls, runs with history."""

from __future__ import annotations

import dataclasses
import json
from collections import Counter
from typing import Any

import pytest

from runbase.api import Api, Run
from runbase.backend.base import Backend, HistoryRow, NewRun, RunPath
from runbase.backend.local import LocalBackend
from runbase.settings import Settings
from runbase.store import Store

ENTITY = "tester"
PROJECT = "proj"


class CountingBackend(LocalBackend):
    """The local backend, counting how often each operation is called."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.calls: Counter[str] = Counter()


def _counted(name: str):
    def method(self, *args, **kwargs):
        self.calls[name] += 1
        return getattr(LocalBackend, name)(self, *args, **kwargs)

    method.__name__ = name
    return method


for _name in [*Backend.__abstractmethods__, "scan_pages"]:
    setattr(CountingBackend, _name, _counted(_name))


class Maker:
    """Makes runs and history straight through the backend."""

    def __init__(self, backend: Backend) -> None:
        self.backend = backend

    def create(self, run_id: str, project: str = PROJECT, **new: Any) -> RunPath:
        path = RunPath(ENTITY, project, run_id)
        self.backend.create_run(path, NewRun(**new))
        return path

    def log(self, path: RunPath, rows: list[dict[str, Any]], stream: str = "default") -> None:
        """Append rows (each with ``_step``) after those already stored."""
        start = self.backend.history_keys(path, stream).line_count
        history = [
            HistoryRow(start + i, row.get("_step", start + i), tuple(sorted(row)), json.dumps(row))
            for i, row in enumerate(rows)
        ]
        latest: dict[str, Any] = {}
        for row in rows:
            latest.update(row)
        self.backend.append_history(path, stream, history, latest)

    def read_only(self, api: Api, path: RunPath) -> Run:
        """The run as a user who may not change it sees it."""
        attrs = dataclasses.replace(self.backend.get_run(path), read_only=True)
        return Run(api.client, *path, attrs=attrs)


@pytest.fixture
def backend(data_dir):
    backend = CountingBackend(Store.open(Settings.load().database_url, data_dir), ENTITY)
    yield backend
    backend.close()


@pytest.fixture
def make(backend) -> Maker:
    return Maker(backend)


@pytest.fixture(params=["local", "http"])
def api(request, backend) -> Api:
    """The Api over the test's backend: directly, or through a runbase server in-process (the
    server calls the same backend, so its call counts hold either way)."""
    if request.param == "local":
        return Api(overrides={"project": PROJECT}, backend=backend)
    from runbase.backend.http import HttpBackend
    from runbase.server import create_app
    from tests.server.conftest import TestClient

    client = TestClient(create_app(backend))
    request.addfinalizer(client.close)
    http = HttpBackend(str(client.base_url), client=client, entity=ENTITY)
    return Api(overrides={"project": PROJECT}, backend=http)
