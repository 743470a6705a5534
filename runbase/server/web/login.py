"""Logging in to the dashboard with an API key, and out.

``POST /login`` (a plain form: ``key``, ``next``) starts a session and sets its cookie:
HttpOnly, SameSite=Strict, Secure over https. Failures count against the client's address
like wrong API keys. ``POST /logout`` ends the session; it needs the session's CSRF token
(``X-Runbase-CSRF`` or a form field ``csrf``).
"""

from __future__ import annotations

import hmac
from urllib.parse import parse_qs

from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import RedirectResponse, Response

from runbase.backend.sessions import Sessions
from runbase.errors import Forbidden, Unauthorized
from runbase.server.auth import CSRF_HEADER, SESSION_COOKIE, FailureLimiter, cross_site
from runbase.server.web.pages import html_page, message_page, render

MAX_FORM = 16 * 1024  # bytes


def safe_next(target: str | None) -> str:
    """``target`` when it is a path of this site, else ``/``."""
    if not target or not target.startswith("/") or target.startswith(("//", "/\\")):
        return "/"
    if any(ch in target for ch in "\\\r\n\t") or "://" in target.split("?")[0]:
        return "/"
    return target


def login_page(next_url: str, message: str = "", status: int = 200) -> Response:
    return html_page(render("login.html", next=safe_next(next_url), message=message), status)


async def login_form(request: Request) -> Response:
    if request.app.state.accounts is None:
        return RedirectResponse("/", status_code=303)
    return login_page(request.query_params.get("next", "/"))


async def form_fields(request: Request) -> dict[str, str]:
    """The fields of an urlencoded form body (the last value of each)."""
    body = b""
    async for chunk in request.stream():
        body += chunk
        if len(body) > MAX_FORM:
            return {}
    found = parse_qs(body.decode("utf-8", "replace"), keep_blank_values=True)
    return {name: values[-1] for name, values in found.items()}


async def login(request: Request) -> Response:
    sessions: Sessions | None = request.app.state.sessions
    if sessions is None:
        return RedirectResponse("/", status_code=303)
    fields = await form_fields(request)
    next_url = safe_next(fields.get("next"))
    if cross_site(request):
        return login_page(next_url, "cross-site logins are refused", Forbidden.status)
    limiter: FailureLimiter = request.app.state.failures
    address = request.client.host if request.client else "unknown"
    wait = limiter.retry_after(address)
    if wait is not None:
        message = f"too many failed attempts: try again in {wait} seconds"
        return login_page(next_url, message, 429)
    try:
        token, _ = await run_in_threadpool(sessions.start, fields.get("key", ""))
    except Unauthorized:
        limiter.failed(address)
        return login_page(next_url, "that API key is not valid", Unauthorized.status)
    response = RedirectResponse(next_url, status_code=303)
    response.set_cookie(
        SESSION_COOKIE, token, max_age=int(sessions.lifetime), path="/", httponly=True,
        samesite="strict", secure=request.url.scheme == "https",
    )  # fmt: skip
    return response


async def logout(request: Request) -> Response:
    sessions: Sessions | None = request.app.state.sessions
    token = request.cookies.get(SESSION_COOKIE)
    if sessions is None:
        return RedirectResponse("/", status_code=303)
    if token:
        try:
            session = await run_in_threadpool(sessions.find, token)
        except Unauthorized:
            session = None
        if session is not None:
            sent = request.headers.get(CSRF_HEADER) or (await form_fields(request)).get("csrf", "")
            if not hmac.compare_digest(sent.encode(), session.csrf.encode()) or cross_site(request):
                message = f"<p>Logging out needs the session's CSRF token ({CSRF_HEADER}).</p>"
                return message_page("Forbidden", message, Forbidden.status)
            await run_in_threadpool(sessions.end, token)
    response = RedirectResponse("/login", status_code=303)
    response.delete_cookie(SESSION_COOKIE, path="/", httponly=True, samesite="strict")
    return response
