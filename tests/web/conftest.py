"""Fixtures for the dashboard: live servers over the test's store (one with accounts, a user
and a key; one without, as ``runbase ui``), and Debian's chromium driven by playwright.

``RUNBASE_TEST_CHROMIUM`` names the browser (``scripts/with-chromium.sh`` sets it); without
it the browser tests skip. Every request to a host other than 127.0.0.1 is aborted (nothing
loads from a CDN), a page error or console error fails the test, and each page's screenshot
is saved under ``test-artifacts/``.
"""

from __future__ import annotations

import contextlib
import os
import re
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlparse

import pytest

from runbase.backend import open_accounts
from runbase.server import create_app
from runbase.settings import Settings
from tests.server.test_live import serve

ARTIFACTS = Path(__file__).resolve().parents[2] / "test-artifacts"
USER = "tester"  # the test settings' entity: the backend's own user


@dataclass(frozen=True)
class Server:
    url: str
    key: str | None  # the user's API key; None without accounts


@pytest.fixture
def accounts(backend):
    return open_accounts(Settings.load())


@pytest.fixture
def user_key(accounts):
    """An API key of the user ``tester``, whose entity the test's runs are in."""
    accounts.create_user(USER)
    key, _ = accounts.create_key(USER, label="tests")
    return key


@pytest.fixture
def web_server(backend, accounts, user_key):
    """``runbase server``: the app with accounts over the test's store, on a socket."""
    with serve(create_app(backend, accounts)) as url:
        yield Server(url, user_key)


@pytest.fixture
def ui_server(backend):
    """``runbase ui``: the app without accounts over the test's store, on a socket."""
    with serve(create_app(backend)) as url:
        yield Server(url, None)


@pytest.fixture(scope="session")
def browser():
    path = os.environ.get("RUNBASE_TEST_CHROMIUM")
    if not path:
        pytest.skip("RUNBASE_TEST_CHROMIUM is not set (scripts/with-chromium.sh sets it)")
    sync_api = pytest.importorskip("playwright.sync_api")
    with sync_api.sync_playwright() as playwright:
        launched = playwright.chromium.launch(executable_path=path, args=["--no-sandbox"])
        yield launched
        launched.close()


@pytest.fixture
def page(browser, request):
    """A fresh page: other hosts aborted, errors failing the test, a screenshot kept. Ask
    for the server fixture before this one, so that the page closes before its server."""
    context = browser.new_context(viewport={"width": 1400, "height": 1000})
    errors: list[str] = []

    def only_local(route):
        if urlparse(route.request.url).hostname == "127.0.0.1":
            route.continue_()
        else:
            errors.append("blocked a request to " + route.request.url)
            route.abort()

    context.route("**/*", only_local)
    opened = context.new_page()
    opened.on("pageerror", lambda exc: errors.append(f"page error: {exc}"))

    def console(message):
        if message.type == "error":
            errors.append(f"console: {message.text}")

    opened.on("console", console)
    yield opened
    ARTIFACTS.mkdir(exist_ok=True)
    name = re.sub(r"[^\w.-]+", "_", request.node.nodeid.split("::", 1)[-1])
    with contextlib.suppress(Exception):
        opened.screenshot(path=str(ARTIFACTS / f"{name}.png"), full_page=True)
    context.close()
    assert not errors, errors


def login(page, server: Server, next_path: str = "/") -> None:
    """Log ``page`` in to ``server`` with its user's key through the login form."""
    page.goto(f"{server.url}/login?next={next_path}")
    page.fill("input[name=key]", server.key or "")
    page.click("button[type=submit]")
    page.wait_for_url(server.url + next_path)
