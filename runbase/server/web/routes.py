"""The dashboard's routes, added after every API route so that none shadows one."""

from __future__ import annotations

from pathlib import Path

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response

from runbase.server.web.login import login, login_form, logout
from runbase.server.web.pages import BundleFiles, page

ICON = (Path(__file__).parent / "favicon.svg").read_bytes()

PAGES = ("/", "/{entity}/{project}", "/{entity}/{project}/runs/{run_id}",
         "/{entity}/{project}/compare")  # fmt: skip


def add_web_routes(app: Starlette) -> None:
    app.mount("/static", BundleFiles(), name="static")
    app.add_route("/login", login_form, methods=["GET"], include_in_schema=False)
    app.add_route("/login", login, methods=["POST"], include_in_schema=False)
    app.add_route("/logout", logout, methods=["POST"], include_in_schema=False)
    app.add_route("/favicon.ico", favicon, methods=["GET"], include_in_schema=False)
    for path in PAGES:
        app.add_route(path, page, methods=["GET"], include_in_schema=False)


async def favicon(request: Request) -> Response:
    """The icon, an SVG (browsers ask for /favicon.ico whatever a page links)."""
    headers = {"Cache-Control": "public, max-age=86400", "X-Content-Type-Options": "nosniff"}
    return Response(ICON, media_type="image/svg+xml", headers=headers)
