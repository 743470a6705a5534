"""The dashboard's pages: one HTML shell for every page (the bundle draws it from the JSON
API), the bundle's files under ``/static/``, and a page saying how to build the bundle when
it is missing.

Pages authorise like the API: without a session (on a server with accounts) they redirect to
``/login``; another entity's project or run answers 404. Paths of the server's APIs are never
pages (``RESERVED``).
"""

from __future__ import annotations

import hashlib
import html
import string
from pathlib import Path
from urllib.parse import quote

from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import HTMLResponse, RedirectResponse, Response
from starlette.staticfiles import StaticFiles
from starlette.types import Scope

from runbase.backend.base import Backend, RunPath
from runbase.errors import NotFound, Unauthorized
from runbase.server.auth import authorize, error

HERE = Path(__file__).parent
STATIC = HERE / "static"
BUNDLE = ("app.js", "app.css")
RESERVED = frozenset({
    "api", "graphql", "files", "wandb", "artifacts", "artifactsV2", "healthz", "docs", "redoc",
    "openapi.json", "static", "login", "logout", "favicon.ico",
})  # fmt: skip
CSP = (
    "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data: blob:; "
    "connect-src 'self'; frame-ancestors 'none'; base-uri 'none'; form-action 'self'"
)
SECURITY_HEADERS = {
    "Content-Security-Policy": CSP,
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "same-origin",
    "X-Frame-Options": "DENY",
    "Cache-Control": "no-store",
}
NOT_BUILT = """<p>This runbase was installed without its dashboard's bundle
(<code>runbase/server/web/static/app.js</code>). Build it with Node.js:</p>
<pre>cd frontend &amp;&amp; npm ci &amp;&amp; npm run build</pre>
<p>or reinstall from the source tree with <code>pip install -e .</code> (which builds it), then
reload this page. The API works without it.</p>"""


def render(template: str, **values: str) -> str:
    """The template file with ``$name`` replaced by ``values`` (escaped unless ``body``)."""
    text = (HERE / template).read_text()
    escaped = {k: v if k == "body" else html.escape(v, quote=True) for k, v in values.items()}
    return string.Template(text).substitute(escaped)


def html_page(text: str, status: int = 200, headers: dict[str, str] | None = None) -> Response:
    return HTMLResponse(text, status_code=status, headers={**SECURITY_HEADERS, **(headers or {})})


def message_page(title: str, body: str, status: int) -> Response:
    return html_page(render("page.html", title=title, body=body), status)


def bundle_version() -> str | None:
    """A short hash of the bundle's files' sizes and times; None when it is not built."""
    digest = hashlib.sha1()
    for name in BUNDLE:
        try:
            found = (STATIC / name).stat()
        except OSError:
            return None
        digest.update(f"{name}:{found.st_size}:{found.st_mtime_ns};".encode())
    return digest.hexdigest()[:12]


async def page(request: Request) -> Response:
    """The shell of any dashboard page, once the viewer may see what the URL names."""
    params = request.path_params
    entity = params.get("entity")
    if entity in RESERVED:
        return error(NotFound.status, NotFound.code, f"{request.url.path} not found")
    refused = await authorize(request)
    if refused is not None:
        if refused.status_code != Unauthorized.status:
            return refused
        target = request.url.path + (f"?{request.url.query}" if request.url.query else "")
        return RedirectResponse("/login?next=" + quote(target, safe="/"), status_code=303)
    backend: Backend = request.state.backend
    try:
        if "run_id" in params:
            await run_in_threadpool(backend.get_run, RunPath(params["entity"], params["project"],
                                                             params["run_id"]))  # fmt: skip
        elif entity is not None:
            await run_in_threadpool(backend.get_project, entity, params["project"])
    except NotFound as exc:
        return message_page("Not found", f"<p>{html.escape(exc.message)}</p>", 404)
    version = bundle_version()
    if version is None:
        return message_page("The dashboard is not built", NOT_BUILT, 503)
    return html_page(render("shell.html", csrf=request.state.csrf or "", version=version))


class BundleFiles(StaticFiles):
    """The bundle's files, with ETags; cached for good when asked for by version (the
    shell's ``?v=``), else revalidated each time."""

    def __init__(self) -> None:
        super().__init__(directory=STATIC, check_dir=False)

    async def get_response(self, path: str, scope: Scope) -> Response:
        if not STATIC.is_dir():
            return error(NotFound.status, NotFound.code, "the dashboard is not built")
        response = await super().get_response(path, scope)
        versioned = b"v=" in scope.get("query_string", b"")
        cache = "public, max-age=31536000, immutable" if versioned else "no-cache"
        response.headers["Cache-Control"] = cache
        response.headers["X-Content-Type-Options"] = "nosniff"
        return response
