"""The dashboard's routes, added after every API route so that none shadows one."""

from __future__ import annotations

from starlette.applications import Starlette

from runbase.server.web.login import login, login_form, logout
from runbase.server.web.pages import BundleFiles, page

PAGES = ("/", "/{entity}/{project}", "/{entity}/{project}/runs/{run_id}",
         "/{entity}/{project}/compare")  # fmt: skip


def add_web_routes(app: Starlette) -> None:
    app.mount("/static", BundleFiles(), name="static")
    app.add_route("/login", login_form, methods=["GET"], include_in_schema=False)
    app.add_route("/login", login, methods=["POST"], include_in_schema=False)
    app.add_route("/logout", logout, methods=["POST"], include_in_schema=False)
    for path in PAGES:
        app.add_route(path, page, methods=["GET"], include_in_schema=False)
