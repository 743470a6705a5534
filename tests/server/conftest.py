"""Fixtures for the server: the app over the test's store, and a backend pair over one store."""

from __future__ import annotations

import warnings

import pytest
from starlette.exceptions import StarletteDeprecationWarning

from runbase.backend.http import HttpBackend
from runbase.server import create_app

with warnings.catch_warnings():
    # starlette would rather have httpx2; with httpx its TestClient is an httpx.Client
    warnings.simplefilter("ignore", StarletteDeprecationWarning)
    from starlette.testclient import TestClient as TestClient


@pytest.fixture
def app(backend):
    return create_app(backend)


@pytest.fixture
def client(app):
    with TestClient(app, raise_server_exceptions=True) as client:
        yield client


@pytest.fixture
def http(client):
    """The HTTP backend over the in-process app, on the test's store."""
    return HttpBackend(str(client.base_url), client=client)


@pytest.fixture(params=["local", "http"])
def pair(request, backend):
    """The local backend, then the HTTP backend over it: the same store either way."""
    if request.param == "local":
        return backend
    return request.getfixturevalue("http")
