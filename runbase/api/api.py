"""Api: the entry point for querying runs, projects and sweeps."""

from __future__ import annotations

import dataclasses
from typing import Any
from urllib.parse import urlsplit

import orjson

from runbase import checks
from runbase.api.client import Client
from runbase.api.projects import Project, Projects
from runbase.api.runs import Run, Runs, check_filters, check_order
from runbase.api.sweeps import Sweep
from runbase.backend.base import Backend, RunPath
from runbase.errors import CommError, RunbaseError
from runbase.names import DEFAULT_PROJECT
from runbase.settings import DEFAULT_APP_URL, Settings

SETTING_NAMES = frozenset(f.name for f in dataclasses.fields(Settings))


class Api:
    """Queries runs, projects and sweeps.

    ``overrides`` sets defaults: ``entity``, ``project``, ``run`` and ``base_url`` (and any
    other setting). ``timeout`` is how many seconds one request to a server may take. One Api
    caches what it fetched; ``flush()`` clears the cache.
    """

    def __init__(
        self,
        overrides: dict[str, Any] | None = None,
        timeout: float | None = None,
        api_key: str | None = None,
        *,
        backend: Backend | None = None,
    ) -> None:
        overrides = dict(overrides or {})
        known = {k: v for k, v in overrides.items() if k in SETTING_NAMES}
        if timeout is not None:
            known["http_timeout"] = timeout
        settings = Settings.load(**{**known, "api_key": api_key or known.get("api_key")})
        self._settings = settings
        self.timeout = timeout
        self.settings: dict[str, Any] = {
            **overrides,
            "entity": settings.entity,
            "project": settings.project,
            "run": overrides.get("run"),
            "base_url": settings.base_url or DEFAULT_APP_URL,
        }
        self.client = Client(backend or _open_backend(settings), self.settings["base_url"])

    @property
    def backend(self) -> Backend:
        return self.client.backend

    @property
    def default_entity(self) -> str:
        """The entity used when a path names none: the configured one, else the user's."""
        return self.settings["entity"] or self.client.default_entity()

    def flush(self) -> None:
        """Forget everything fetched so far: new runs and new history become visible."""
        self.client.flush()

    def projects(self, entity: str | None = None, per_page: int | None = None) -> Projects:
        """The projects of ``entity`` (default: the default entity)."""
        entity = entity or self.default_entity
        per_page = checks.positive_int(50 if per_page is None else per_page, "per_page")
        key = ("projects", entity, per_page)
        return self.client.cached(key, lambda: Projects(self.client, entity, per_page))

    def project(self, name: str, entity: str | None = None) -> Project:
        """One project; a ValueError when it does not exist."""
        entity = entity or self.default_entity
        record = self.client.cached(
            ("project", (entity, name)),
            lambda: self.client.call(self.client.backend.get_project, entity, name),
        )
        return Project(entity, name, record, client=self.client)

    def runs(
        self,
        path: str = "",
        filters: dict[str, Any] | None = None,
        order: str = "-created_at",
        per_page: int | None = None,
    ) -> Runs:
        """The runs of ``entity/project`` (or ``project``) matching MongoDB-style ``filters``,
        in ``order`` (``+``/``-`` prefix)."""
        filters = check_filters(filters)
        order = check_order(order)
        per_page = checks.positive_int(50 if per_page is None else per_page, "per_page")
        entity, project = self._project_path(path)
        key = ("runs", (entity, project), _canonical(filters), order, per_page)
        return self.client.cached(
            key, lambda: Runs(self.client, entity, project, filters, order, per_page)
        )

    def run(self, path: str = "") -> Run:
        """One run: ``entity/project/run_id``, ``entity/project/runs/run_id``,
        ``project/run_id`` or ``run_id``, the missing parts taken from the defaults."""
        run_path = self._object_path(path, "run")
        return self.client.cached(("run", run_path), lambda: Run(self.client, *run_path))

    def create_run(
        self, run_id: str | None = None, project: str | None = None, entity: str | None = None
    ) -> Run:
        """Create a run; see ``Run.create``."""
        return Run.create(self, run_id=run_id, project=project, entity=entity)

    def sweep(self, path: str = "") -> Sweep:
        """One sweep: ``entity/project/sweep_id`` (or shorter, as for ``run``)."""
        sweep_path = self._object_path(path, "sweep")
        return self.client.cached(("sweep", sweep_path), lambda: Sweep(self.client, *sweep_path))

    def _project_path(self, path: str) -> tuple[str, str]:
        parts = _parts(path)
        if len(parts) > 2:
            raise ValueError(f"path must be 'entity/project' or 'project', not {path!r}")
        project = parts[-1] if parts else self.settings["project"] or DEFAULT_PROJECT
        entity = parts[0] if len(parts) == 2 else self.default_entity
        return entity, project

    def _object_path(self, path: str, kind: str) -> RunPath:
        parts = _parts(path)
        if len(parts) == 4 and parts[2] in ("runs", "sweeps"):
            del parts[2]
        if not parts and kind == "run" and self.settings["run"]:
            parts = [self.settings["run"]]
        if not 1 <= len(parts) <= 3:
            raise ValueError(
                f"{kind} path must be 'entity/project/{kind}_id', 'project/{kind}_id' "
                f"or '{kind}_id', not {path!r}"
            )
        object_id = parts[-1]
        project = parts[-2] if len(parts) >= 2 else self.settings["project"] or DEFAULT_PROJECT
        entity = parts[0] if len(parts) == 3 else self.default_entity
        return RunPath(entity, project, object_id)

    def __repr__(self) -> str:
        return f"<Api {self.settings['base_url']}>"


def _parts(path: Any) -> list[str]:
    if path is None:
        return []
    if not isinstance(path, str):
        raise ValueError(f"path must be a string, not {path!r}")
    path = path.strip()
    if "://" in path:
        path = urlsplit(path).path
    return [part for part in path.strip("/").split("/") if part]


def _canonical(filters: dict[str, Any]) -> bytes | str:
    try:
        return orjson.dumps(filters, option=orjson.OPT_SORT_KEYS | orjson.OPT_NON_STR_KEYS)
    except TypeError:
        return repr(filters)


def _open_backend(settings: Settings) -> Backend:
    from runbase.backend import open_backend

    try:
        return open_backend(settings)
    except RunbaseError:
        raise
    except Exception as exc:
        raise CommError(f"cannot open the backend: {exc}", exc=exc) from exc
