"""The real ``wandb`` client (0.31.0) against a live runbase server on 127.0.0.1.

Each client runs in a subprocess with a throwaway ``HOME`` and only the ``WANDB_*`` variables
the test gives it, so the machine's own wandb login and settings are never used nor touched.
"""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from runbase.api import Api
from runbase.backend import open_accounts
from runbase.backend.base import Backend
from runbase.server import create_app
from runbase.settings import Settings
from tests.server.test_live import serve

pytest.importorskip("wandb")

USER = "alice"
CLIENT_TIMEOUT = 180.0


@dataclass
class WandbServer:
    """A live server with one user and its key, and a way to run the wandb client at it."""

    url: str
    key: str
    user: str
    backend: Backend
    home: Path

    def env(self, **extra: str) -> dict[str, str]:
        """The environment of a client process: no WANDB_* of ours, a HOME of its own."""
        env = {k: v for k, v in os.environ.items() if not k.startswith(("WANDB_", "RUNBASE_"))}
        env.update(
            HOME=str(self.home),
            WANDB_BASE_URL=self.url,
            WANDB_API_KEY=self.key,
            WANDB_CONFIG_DIR=str(self.home / ".config" / "wandb"),
            WANDB_CACHE_DIR=str(self.home / ".cache" / "wandb"),
            WANDB_DATA_DIR=str(self.home / ".local" / "wandb"),
            WANDB_DISABLE_GIT="true",
            WANDB_INIT_TIMEOUT="60",
        )
        env.update(extra)
        return env

    def run(
        self,
        *args: str,
        env: dict[str, str] | None = None,
        cwd: Path | None = None,
        check: bool = True,
        timeout: float = CLIENT_TIMEOUT,
    ) -> subprocess.CompletedProcess[str]:
        """A command (``wandb ...`` is the client's CLI) in a client's environment."""
        command = list(args)
        if command[0] == "wandb":
            command[0] = str(Path(sys.executable).with_name("wandb"))
        done = subprocess.run(
            command,
            env=env or self.env(),
            cwd=cwd or self.home,
            capture_output=True,
            text=True,
            timeout=timeout,
        )
        if check and done.returncode != 0:
            raise AssertionError(
                f"{args[0]} exited {done.returncode}\n{done.stdout[-3000:]}\n{done.stderr[-3000:]}"
            )
        return done

    def python(self, script: str, **kwargs: Any) -> subprocess.CompletedProcess[str]:
        """A Python script (dedented) run by a client process."""
        return self.run(sys.executable, "-c", textwrap.dedent(script), **kwargs)

    def api(self) -> Api:
        """runbase's own public API, over HTTP with the same key."""
        return Api(overrides={"base_url": self.url}, api_key=self.key)


@pytest.fixture
def wandb_server(backend: Backend, tmp_path: Path) -> Iterator[WandbServer]:
    accounts = open_accounts(Settings.load())
    accounts.create_user(USER)
    key = accounts.create_key(USER)[0]
    home = tmp_path / "home"
    home.mkdir()
    with serve(create_app(backend, accounts)) as url:
        yield WandbServer(url, key, USER, backend, home)
