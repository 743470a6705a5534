"""One frozen Settings object: arguments > environment > defaults, read once."""

from __future__ import annotations

import getpass
import os
from dataclasses import dataclass, fields, replace
from pathlib import Path
from typing import Any

from runbase import checks
from runbase.names import DEFAULT_PROJECT

ENV_PREFIX = "RUNBASE_"
DEFAULT_APP_URL = "http://127.0.0.1:8080"


def _default_user() -> str:
    try:
        return getpass.getuser() or "user"
    except (KeyError, OSError):
        return "user"


@dataclass(frozen=True)
class Settings:
    """Where runbase keeps its data and how the SDK behaves.

    Every field can be set from the environment as ``RUNBASE_<FIELD>``, e.g. ``RUNBASE_DIR``
    for ``dir`` and ``RUNBASE_SYSTEM_INTERVAL`` for ``system_interval``.
    """

    dir: Path = Path("~/.runbase")
    database_url: str | None = None
    base_url: str | None = None
    api_key: str | None = None
    entity: str | None = None
    project: str | None = None
    mode: str = "online"
    system_interval: float = 10.0
    heartbeat_interval: float = 5.0
    heartbeat_timeout: float = 60.0
    finish_timeout: float = 30.0
    sweep_id: str | None = None

    @property
    def data_dir(self) -> Path:
        return Path(self.dir).expanduser()

    @property
    def default_entity(self) -> str:
        return self.entity or _default_user()

    @property
    def default_project(self) -> str:
        """The project used when a call names none."""
        return self.project or DEFAULT_PROJECT

    @property
    def app_url(self) -> str:
        """Where the web app lives: ``base_url``, else the default ``runbase server`` address."""
        return (self.base_url or DEFAULT_APP_URL).rstrip("/")

    def run_url(self, entity: str, project: str, run_id: str) -> str:
        return f"{self.app_url}/{entity}/{project}/runs/{run_id}"

    @classmethod
    def load(cls, **overrides: Any) -> Settings:
        """Defaults, then ``RUNBASE_*`` variables, then the non-None ``overrides``."""
        values: dict[str, Any] = {}
        for field in fields(cls):
            env_name = ENV_PREFIX + field.name.upper()
            if env_name in os.environ and os.environ[env_name] != "":
                values[field.name] = _coerce(field.name, field.type, os.environ[env_name])
        values.update({k: v for k, v in overrides.items() if v is not None})
        unknown = set(values) - {f.name for f in fields(cls)}
        if unknown:
            raise TypeError(f"unknown settings: {sorted(unknown)}")
        settings = cls(**values)
        checks.mode(settings.mode)
        return settings

    def with_(self, **changes: Any) -> Settings:
        """A copy with ``changes``; the mode is checked again."""
        settings = replace(self, **changes)
        checks.mode(settings.mode)
        return settings


def _coerce(name: str, type_name: Any, raw: str) -> Any:
    if "float" in str(type_name):
        try:
            return float(raw)
        except ValueError:
            raise ValueError(f"{ENV_PREFIX}{name.upper()} must be a number, not {raw!r}") from None
    if "Path" in str(type_name):
        return Path(raw)
    return raw
