"""``runbase.sweep``: register a sweep and get its id."""

from __future__ import annotations

from typing import Any

from runbase.backend import open_backend
from runbase.settings import Settings


def sweep(
    config: dict[str, Any],
    project: str | None = None,
    entity: str | None = None,
    settings: Settings | None = None,
) -> str:
    """Create a sweep from its configuration; returns the sweep id for ``init(sweep_id=...)``."""
    if not isinstance(config, dict):
        raise TypeError(f"sweep config must be a dict, not {type(config).__name__}")
    settings = settings or Settings.load()
    backend = open_backend(settings)
    record = backend.create_sweep(
        entity or settings.default_entity,
        project or config.get("project") or settings.default_project,
        config,
    )
    return record.sweep_id
