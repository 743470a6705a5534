"""Projects: the namespaces runs live in."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from runbase.api.client import Client, iso_time
from runbase.api.paginator import Paginator
from runbase.backend.base import Page, ProjectRecord
from runbase.settings import DEFAULT_APP_URL


class Projects(Paginator["Project"]):
    """An entity's projects in name order, ``per_page`` at a time."""

    def __init__(self, client: Client, entity: str, per_page: int = 50) -> None:
        super().__init__(per_page)
        self.client = client
        self.entity = entity

    def _fetch(self, cursor: str | None) -> Page[ProjectRecord]:
        return self.client.call(
            self.client.backend.list_projects, self.entity, self.per_page, cursor
        )

    def _convert(self, item: ProjectRecord) -> Project:
        return Project(self.entity, item.name, item, client=self.client)

    def _count(self) -> int:
        # The backend has no project count; an entity has few projects.
        self._load_all()
        return len(self.objects)

    def __repr__(self) -> str:
        return f"<Projects {self.entity}>"


class Project:
    """A project: ``name``, ``entity``, ``path``, ``url``, ``created_at``, ``run_count``."""

    def __init__(
        self,
        entity: str,
        project: str,
        attrs: ProjectRecord | Mapping[str, Any] | None = None,
        *,
        client: Client | None = None,
    ) -> None:
        self.entity = entity
        self.name = project
        self.client = client
        values = attrs if isinstance(attrs, Mapping) else vars(attrs) if attrs else {}
        self._attrs: dict[str, Any] = dict(values)

    @property
    def path(self) -> str:
        """``entity/project``."""
        return f"{self.entity}/{self.name}"

    @property
    def url(self) -> str:
        if self.client is not None:
            return self.client.url(self.entity, self.name)
        return f"{DEFAULT_APP_URL}/{self.path}"

    @property
    def created_at(self) -> str | None:
        return iso_time(self._attrs.get("created_at"))

    @property
    def run_count(self) -> int:
        return int(self._attrs.get("run_count", 0))

    def __repr__(self) -> str:
        return f"<Project {self.path}>"
