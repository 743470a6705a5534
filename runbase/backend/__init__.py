"""One interface over storage, local or remote.

The embedded implementation (``LocalBackend``, over the SQL store) is imported only when a
backend is opened, so ``import runbase`` does not load SQLAlchemy. With a ``base_url`` (and
no ``database_url``) an online backend is ``HttpBackend``, which never loads it.
"""

from __future__ import annotations

import atexit
import threading
from typing import TYPE_CHECKING

from runbase.backend.base import Backend, RunPath
from runbase.settings import Settings

if TYPE_CHECKING:
    from runbase.backend.accounts import Accounts
    from runbase.store import Store

__all__ = ["Backend", "RunPath", "close_backends", "open_accounts", "open_backend"]

_OPEN: dict[Settings, Backend] = {}
_STORES: dict[tuple[str | None, str, str | None], Store] = {}
_REMOTE: list[Backend] = []
_LOCK = threading.Lock()


def open_backend(settings: Settings) -> Backend:
    """The backend the settings name, opened once per distinct ``Settings`` in a process and
    shared; ``close_backends`` (also run at exit) closes them all."""
    with _LOCK:
        backend = _OPEN.get(settings)
        if backend is None:
            backend = _OPEN[settings] = _open(settings)
            if len(_OPEN) == 1:
                atexit.register(close_backends)
        return backend


def _open(settings: Settings) -> Backend:
    """A new backend for the settings: a server's when ``base_url`` is set for an online run
    and no ``database_url`` is; else the embedded store (SQLite in the data directory, or
    ``database_url``), one per database in a process, so that SQLite has one writer."""
    if settings.base_url and settings.mode == "online" and not settings.database_url:
        from runbase.backend.http import HttpBackend

        remote = HttpBackend(
            settings.base_url,
            entity=settings.entity,
            timeout=settings.http_timeout,
            api_key=settings.api_key,
        )
        _REMOTE.append(remote)
        return remote
    from runbase.backend.local import LocalBackend

    return LocalBackend(
        _store(settings), settings.default_entity, settings.heartbeat_timeout,
        settings.compact_rows,
    )  # fmt: skip


def _store(settings: Settings) -> Store:
    from runbase.store import Store

    where = (settings.database_url, str(settings.data_dir), settings.files)
    store = _STORES.get(where)
    if store is None:
        store = _STORES[where] = Store.open(
            settings.database_url, settings.data_dir, settings.files
        )
    return store


def open_accounts(settings: Settings) -> Accounts:
    """The users, teams and keys of the database the settings name (never a server's over
    HTTP), on the store its embedded backend shares; ``close_backends`` closes it."""
    from runbase.backend.accounts import Accounts

    with _LOCK:
        store = _store(settings)
        if len(_STORES) == 1 and not _OPEN:
            atexit.register(close_backends)
    return Accounts(store)


def close_backends() -> None:
    """Close every backend ``open_backend`` opened; a later call opens new ones."""
    with _LOCK:
        backends = list(_OPEN.values())
        stores = list(_STORES.values())
        remotes = list(_REMOTE)
        _OPEN.clear()
        _STORES.clear()
        _REMOTE.clear()
    for backend in backends:  # first: a local backend's compactor stops before its store
        backend.close()
    for store in stores:
        store.close()
    for remote in remotes:
        remote.close()
