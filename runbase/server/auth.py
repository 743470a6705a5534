"""Who a request is: its API key (HTTP basic auth with the key as password, or a bearer
token), checked by ``Accounts``, or its dashboard session's cookie, checked by ``Sessions``;
and a brake on clients that keep failing.

A request of the native API then works on ``AuthorizedBackend(backend, principal)``. Keys are
never logged nor written into an answer.
"""

from __future__ import annotations

import base64
import binascii
import hmac
import math
import threading
import time
from collections import deque

from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from runbase.backend.accounts import Accounts
from runbase.backend.authorized import AuthorizedBackend
from runbase.backend.base import Backend
from runbase.backend.sessions import Sessions
from runbase.errors import Forbidden, RateLimited, Unauthorized

MAX_FAILURES = 10
FAILURE_WINDOW = 60.0  # seconds


class FailureLimiter:
    """Counts failed authentications per client address; after ``limit`` failures within
    ``window`` seconds the address waits until the oldest of them is out of the window."""

    def __init__(self, limit: int = MAX_FAILURES, window: float = FAILURE_WINDOW) -> None:
        self.limit = limit
        self.window = window
        self._failures: dict[str, deque[float]] = {}
        self._lock = threading.Lock()

    def _recent(self, address: str, now: float) -> deque[float]:
        failures = self._failures.setdefault(address, deque())
        while failures and failures[0] <= now - self.window:
            failures.popleft()
        return failures

    def retry_after(self, address: str) -> int | None:
        """Seconds the address must wait before it may try again; None when it may now."""
        now = time.monotonic()
        with self._lock:
            failures = self._recent(address, now)
            if len(failures) < self.limit:
                if not failures:
                    self._failures.pop(address, None)
                return None
            return max(1, math.ceil(failures[0] + self.window - now))

    def failed(self, address: str) -> None:
        now = time.monotonic()
        with self._lock:
            self._recent(address, now).append(now)


def request_key(request: Request) -> str | None:
    """The API key the request carries, if any: basic auth's password, or a bearer token."""
    scheme, _, credentials = request.headers.get("authorization", "").partition(" ")
    credentials = credentials.strip()
    if scheme.lower() == "bearer":
        return credentials or None
    if scheme.lower() == "basic":
        try:
            decoded = base64.b64decode(credentials, validate=True).decode()
        except (binascii.Error, UnicodeDecodeError):
            return None
        return decoded.partition(":")[2] or None
    return None


def error(status: int, code: str, message: str, headers: dict[str, str] | None = None) -> Response:
    return JSONResponse({"code": code, "message": message}, status_code=status, headers=headers)


SESSION_COOKIE = "runbase_session"
CSRF_HEADER = "X-Runbase-CSRF"
SAFE_METHODS = ("GET", "HEAD", "OPTIONS")


def cross_site(request: Request) -> bool:
    """Whether the request says it comes from another origin (``Origin`` of another host)."""
    origin = request.headers.get("origin")
    if origin is None:
        return False
    return origin.partition("://")[2] != request.url.netloc


async def authorize(request: Request) -> Response | None:
    """Sets ``request.state.backend`` to the backend this request may use; or the error
    response (401, 403, 429) that answers it instead. A request authenticates with an API key
    or a dashboard session's cookie; one by cookie that changes something must carry the
    session's CSRF token in ``X-Runbase-CSRF``."""
    app_state = request.app.state
    backend: Backend = app_state.backend
    accounts: Accounts | None = app_state.accounts
    request.state.csrf = None
    if accounts is None:
        if request.method not in SAFE_METHODS and cross_site(request):
            return error(Forbidden.status, Forbidden.code, "cross-site requests are refused")
        request.state.backend = backend
        return None
    limiter: FailureLimiter = app_state.failures
    address = request.client.host if request.client else "unknown"
    wait = limiter.retry_after(address)
    if wait is not None:
        message = "too many failed authentications; try again later"
        return error(RateLimited.status, RateLimited.code, message, {"Retry-After": str(wait)})
    key = request_key(request)
    challenge = {"WWW-Authenticate": 'Basic realm="runbase"'}
    token = request.cookies.get(SESSION_COOKIE)
    if key is None and token:
        return await _authorize_session(request, backend, token)
    if key is None:
        message = "an API key is required: basic auth as 'api' with the key, or a bearer token"
        return error(Unauthorized.status, Unauthorized.code, message, challenge)
    try:
        principal = await run_in_threadpool(accounts.authenticate, key)
    except Unauthorized as exc:
        limiter.failed(address)  # a request without a key is no attempt, a wrong key is
        return error(exc.status, exc.code, exc.message, challenge)
    request.state.backend = AuthorizedBackend(backend, principal)
    request.state.user = principal.user
    return None


async def _authorize_session(request: Request, backend: Backend, token: str) -> Response | None:
    sessions: Sessions = request.app.state.sessions
    try:
        session = await run_in_threadpool(sessions.find, token)
    except Unauthorized as exc:
        return error(exc.status, exc.code, exc.message)
    if request.method not in SAFE_METHODS:
        sent = request.headers.get(CSRF_HEADER, "")
        if not hmac.compare_digest(sent.encode(), session.csrf.encode()):
            message = f"this request needs the session's CSRF token in the {CSRF_HEADER} header"
            return error(Forbidden.status, Forbidden.code, message)
        if cross_site(request):
            return error(Forbidden.status, Forbidden.code, "cross-site requests are refused")
    request.state.backend = AuthorizedBackend(backend, session.principal)
    request.state.user = session.principal.user
    request.state.csrf = session.csrf
    return None
