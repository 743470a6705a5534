"""The access log: one line per request on the ``runbase.access`` logger.

``GET /api/v1/projects 200 3.1ms alice``: method, path, status, duration, and the user the key
authenticated (``-`` without one). Never a key, a header or the query string.
"""

from __future__ import annotations

import logging
import sys
import time
from typing import Any

from starlette.types import ASGIApp, Message, Receive, Scope, Send

logger = logging.getLogger("runbase.access")


class AccessLog:
    """ASGI middleware that logs each HTTP request once its answer is sent (or has failed)."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = time.perf_counter()
        state: dict[str, Any] = scope.setdefault("state", {})  # shared with request.state
        status = 500

        async def send_status(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
            await send(message)

        try:
            await self.app(scope, receive, send_status)
        finally:
            took = (time.perf_counter() - started) * 1000
            user = state.get("user") or "-"
            logger.info("%s %s %d %.1fms %s", scope["method"], scope["path"], status, took, user)


def log_to_stderr() -> None:
    """Print the access log's lines on stderr (once, however often called)."""
    if not any(getattr(h, "runbase_access", False) for h in logger.handlers):
        handler = logging.StreamHandler(sys.stderr)
        handler.setFormatter(logging.Formatter("%(asctime)s %(message)s"))
        handler.runbase_access = True  # type: ignore[attr-defined]
        logger.addHandler(handler)
    logger.setLevel(logging.INFO)
    logger.propagate = False
