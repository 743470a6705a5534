"""``mode="disabled"``: a run whose every call does nothing, cheaply."""

from __future__ import annotations

from typing import Any

from runbase.names import DEFAULT_PROJECT, new_run_id
from runbase.sdk.config import Config, Summary


class DisabledRun:
    """Looks like a ``Run``; stores nothing."""

    def __init__(
        self,
        project: str | None,
        entity: str | None,
        name: str | None,
        run_id: str | None,
        config: dict[str, Any] | Any | None,
    ) -> None:
        self.id = run_id or new_run_id()
        self.project = project or DEFAULT_PROJECT
        self.entity = entity or "disabled"
        self.name = name or "disabled"
        self.path = f"{self.entity}/{self.project}/{self.id}"
        self.url = ""
        self.dir = ""
        self.step = 0
        self.config = Config()
        self.config.update(config or {})
        self.summary = Summary({})

    def log(
        self, data: dict[str, Any], step: int | None = None, commit: bool | None = None
    ) -> None:
        pass

    def save(self, glob_str: str, base_path: str | None = None, policy: str = "live") -> list[str]:
        return []

    def finish(self, exit_code: int | None = None, quiet: bool | None = None) -> None:
        pass

    def flush(self) -> None:
        pass

    def __enter__(self) -> DisabledRun:
        return self

    def __exit__(self, *exc: object) -> None:
        pass
