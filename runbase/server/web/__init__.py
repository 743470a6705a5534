"""The dashboard: HTML shells for its pages, the built bundle under ``/static/``, login."""

from runbase.server.web.routes import add_web_routes

__all__ = ["add_web_routes"]
