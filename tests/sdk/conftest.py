"""The SDK's tests run twice where they use ``sdk_transport``: against the embedded store, and
through a runbase server in-process (the same store behind it)."""

from __future__ import annotations

import pytest

from runbase.backend import open_backend
from runbase.backend.base import Backend
from runbase.backend.http import HttpBackend
from runbase.sdk import run as sdk_run
from runbase.server import create_app
from runbase.settings import Settings
from tests.server.conftest import TestClient


@pytest.fixture(params=["local", "http"])
def sdk_transport(request, data_dir, monkeypatch):
    """With ``http``, ``runbase.init`` logs through ``HttpBackend`` to an app over the store
    the settings name."""
    if request.param == "local":
        return
    opened: dict[Settings, Backend] = {}

    def through_server(settings: Settings) -> Backend:
        if settings not in opened:
            client = TestClient(create_app(open_backend(settings)))
            request.addfinalizer(client.close)
            opened[settings] = HttpBackend(
                str(client.base_url), client=client, entity=settings.default_entity
            )
        return opened[settings]

    monkeypatch.setattr(sdk_run, "open_backend", through_server)
