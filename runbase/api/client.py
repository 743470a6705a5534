"""The backend as the public API sees it: uniform errors, and answers kept until ``flush()``."""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime, timezone
from typing import Any, ParamSpec, TypeVar
from urllib.parse import quote

from runbase.backend.base import Backend, RunPath
from runbase.errors import CommError, RunbaseError
from runbase.settings import DEFAULT_APP_URL

T = TypeVar("T")
P = ParamSpec("P")


class Client:
    """Calls the backend and caches what it fetched. A ``RunbaseError`` from the backend
    reaches the caller unchanged; anything else becomes a ``CommError``.

    Cache keys are tuples ``(operation, scope, ...)``; the scope is a ``RunPath``, a frozenset
    of them, or another hashable naming what the answer is about.
    """

    def __init__(self, backend: Backend, base_url: str = DEFAULT_APP_URL) -> None:
        self.backend = backend
        self.base_url = base_url.rstrip("/")
        self._cache: dict[tuple[Any, ...], Any] = {}
        self._default_entity: str | None = None

    def call(self, operation: Callable[P, T], *args: P.args, **kwargs: P.kwargs) -> T:
        """``operation(*args, **kwargs)``, a method of the backend; what it raises other than
        a ``RunbaseError`` is raised as ``CommError``."""
        try:
            return operation(*args, **kwargs)
        except RunbaseError:
            raise
        except Exception as exc:
            name = getattr(operation, "__name__", "backend call")
            raise CommError(f"{name} failed: {exc}", exc=exc) from exc

    def cached(self, key: tuple[Any, ...], fetch: Callable[[], T]) -> T:
        """The answer stored under ``key``, fetched once until ``flush()``."""
        try:
            cached: T = self._cache[key]
            return cached
        except KeyError:
            value = self._cache[key] = fetch()
            return value

    def forget(self, path: RunPath) -> None:
        """Drop what is cached about one run, after a change to it."""
        for key in list(self._cache):
            scope = key[1] if len(key) > 1 else None
            if scope == path or (isinstance(scope, frozenset) and path in scope):
                del self._cache[key]

    def flush(self) -> None:
        self._cache.clear()

    def default_entity(self) -> str:
        if self._default_entity is None:
            self._default_entity = self.call(self.backend.default_entity)
        return self._default_entity

    def url(self, *parts: str) -> str:
        return "/".join([self.base_url, *(quote(str(part), safe="") for part in parts)])


def iso_time(seconds: float | None) -> str | None:
    """Seconds since the epoch as an ISO time in UTC without a zone, as W&B writes it."""
    if seconds is None:
        return None
    moment = datetime.fromtimestamp(seconds, timezone.utc).replace(tzinfo=None)
    return moment.isoformat(timespec="seconds")
