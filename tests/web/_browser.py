"""Helpers of the dashboard's page tests: a page with the fixtures' protections that lets
through console errors a test expects (a request the server refuses logs one)."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from typing import Any
from urllib.parse import urlparse


@contextlib.contextmanager
def page_expecting(browser: Any, *expected: str) -> Iterator[Any]:
    """A fresh page like the ``page`` fixture's, whose console errors fail unless they hold
    one of ``expected``."""
    context = browser.new_context(viewport={"width": 1400, "height": 1000})
    errors: list[str] = []

    def only_local(route: Any) -> None:
        if urlparse(route.request.url).hostname == "127.0.0.1":
            route.continue_()
        else:
            errors.append("blocked a request to " + route.request.url)
            route.abort()

    def on_console(message: Any) -> None:
        if message.type == "error" and not any(e in message.text for e in expected):
            errors.append(f"console: {message.text}")

    context.route("**/*", only_local)
    opened = context.new_page()
    opened.on("pageerror", lambda exc: errors.append(f"page error: {exc}"))
    opened.on("console", on_console)
    yield opened
    context.close()
    assert not errors, errors
