"""One interface over storage, local or remote."""

from __future__ import annotations

from runbase.backend.base import Backend, RunPath
from runbase.backend.local import LocalBackend
from runbase.settings import Settings
from runbase.store import Store

__all__ = ["Backend", "LocalBackend", "RunPath", "open_backend"]

_OPEN: dict[tuple, Backend] = {}


def open_backend(settings: Settings) -> Backend:
    """The backend the settings name; one per database per process, shared."""
    key = (str(settings.data_dir), settings.database_url, settings.default_entity)
    backend = _OPEN.get(key)
    if backend is None:
        store = Store.open(settings.database_url, settings.data_dir)
        backend = _OPEN[key] = LocalBackend(
            store, settings.default_entity, settings.heartbeat_timeout
        )
    return backend
