"""One frozen Settings object: arguments > environment > credentials file > defaults, read once.

The credentials file (``netrc`` in the data directory, written by ``runbase login``) holds a
server's address and API key; ``WANDB_BASE_URL`` and ``WANDB_API_KEY`` are read when the
``RUNBASE_`` variables are not set.
"""

from __future__ import annotations

import getpass
import netrc
import os
from dataclasses import dataclass, fields, replace
from pathlib import Path
from typing import Any

from runbase import checks
from runbase.names import DEFAULT_PROJECT

ENV_PREFIX = "RUNBASE_"
DEFAULT_APP_URL = "http://127.0.0.1:8080"
CREDENTIALS_FILE = "netrc"
WANDB_FALLBACKS = {"base_url": "WANDB_BASE_URL", "api_key": "WANDB_API_KEY"}


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
    init_timeout: float = 5.0
    http_timeout: float = 30.0
    sweep_id: str | None = None
    files: str | None = None
    max_file_size: int = 10 << 30
    compact_rows: int = 100_000

    @property
    def data_dir(self) -> Path:
        return Path(self.dir).expanduser()

    @property
    def credentials_path(self) -> Path:
        """The credentials file ``runbase login`` writes: ``netrc`` in the data directory."""
        return self.data_dir / CREDENTIALS_FILE

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
        """Defaults, then the credentials file, then ``WANDB_BASE_URL``/``WANDB_API_KEY``,
        then ``RUNBASE_*`` variables, then the non-None ``overrides``."""
        environment: dict[str, Any] = {}
        for name, env_name in WANDB_FALLBACKS.items():
            if os.environ.get(env_name):
                environment[name] = os.environ[env_name]
        for field in fields(cls):
            env_name = ENV_PREFIX + field.name.upper()
            if env_name in os.environ and os.environ[env_name] != "":
                environment[field.name] = _coerce(field.name, field.type, os.environ[env_name])
        arguments = {k: v for k, v in overrides.items() if v is not None}
        named = {**environment, **arguments}
        data_dir = Path(named.get("dir", cls.dir)).expanduser()
        saved = read_credentials(data_dir / CREDENTIALS_FILE, named.get("base_url"))
        values = {**saved, **named}
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
    if str(type_name) == "int":
        try:
            return int(raw)
        except ValueError:
            raise ValueError(
                f"{ENV_PREFIX}{name.upper()} must be an integer, not {raw!r}"
            ) from None
    if "float" in str(type_name):
        try:
            return float(raw)
        except ValueError:
            raise ValueError(f"{ENV_PREFIX}{name.upper()} must be a number, not {raw!r}") from None
    if "Path" in str(type_name):
        return Path(raw)
    return raw


def read_credentials(path: Path, base_url: str | None) -> dict[str, str]:
    """``base_url`` and ``api_key`` from a netrc file: the entry of ``base_url`` when given,
    else the first; nothing when the file or the entry is missing."""
    if not path.is_file():
        return {}
    try:
        hosts = netrc.netrc(str(path)).hosts
    except (netrc.NetrcParseError, OSError) as exc:
        raise ValueError(f"cannot read the credentials file {path}: {exc}") from None
    entries = {machine.rstrip("/"): entry[2] for machine, entry in hosts.items() if entry[2]}
    if base_url is not None:
        key = entries.get(base_url.rstrip("/"))
        return {} if key is None else {"api_key": key}
    for machine, key in entries.items():
        return {"base_url": machine, "api_key": key}
    return {}


def write_credentials(path: Path, base_url: str, api_key: str) -> None:
    """Save the key of the server at ``base_url`` in the netrc file ``path`` (mode 0600),
    keeping the entries of other servers."""
    base_url = base_url.rstrip("/")
    for value, what in ((base_url, "the server address"), (api_key, "the API key")):
        if not value or any(c.isspace() for c in value):
            raise ValueError(f"{what} must be non-empty and without spaces")
    entries: dict[str, str] = {}
    if path.is_file():
        hosts = netrc.netrc(str(path)).hosts
        entries = {m.rstrip("/"): e[2] for m, e in hosts.items() if e[2]}
    entries[base_url] = api_key
    text = "".join(
        f"machine {machine}\n  login api\n  password {key}\n" for machine, key in entries.items()
    )
    path.parent.mkdir(parents=True, exist_ok=True)
    descriptor = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    os.chmod(path, 0o600)  # an older file keeps its mode through os.open
    with os.fdopen(descriptor, "w") as file:
        file.write(text)
