"""The runbase server: a native JSON API over a backend (``create_app``)."""

from runbase.server.app import create_app

__all__ = ["create_app"]
