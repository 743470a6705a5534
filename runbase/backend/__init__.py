"""One interface over storage, local or remote."""

from __future__ import annotations

from runbase.backend.base import Backend, RunPath
from runbase.settings import Settings

__all__ = ["Backend", "RunPath", "open_backend"]

_OPEN: dict[tuple, Backend] = {}


def open_backend(settings: Settings) -> Backend:
    """The backend the settings name; one per database per process, shared."""
    key = (str(settings.data_dir), settings.database_url, settings.default_entity)
    backend = _OPEN.get(key)
    if backend is None:
        from runbase.backend.local import LocalBackend
        from runbase.store import Store

        store = Store.open(settings.database_url, settings.data_dir)
        backend = LocalBackend(store, settings.default_entity, settings.heartbeat_timeout)
        _OPEN[key] = backend
    return backend
