"""``runbase user|team|key`` on the server's database, and ``runbase login``."""

from __future__ import annotations

import os
import signal
import stat
import subprocess
import sys
from pathlib import Path

import httpx
import pytest
from typer.testing import CliRunner

from runbase.backend import http as http_module
from runbase.backend import open_accounts
from runbase.cli import app
from runbase.errors import Conflict, InvalidInput
from runbase.server import create_app
from runbase.settings import Settings, read_credentials
from tests.server.conftest import TestClient
from tests.server.test_live import free_port, wait_until_healthy

runner = CliRunner()


def invoke(*args: str, db=None):
    where = ["--db", db] if db is not None else []
    result = runner.invoke(app, [*args, *where])
    assert result.exit_code == 0, result.output
    return result


def test_users_teams_and_keys(data_dir, tmp_path):
    served = f"sqlite:///{tmp_path / 'served.db'}"  # the server's database, not RUNBASE_DIR's
    invoke("user", "create", "alice", db=served)
    invoke("user", "create", "root", "--admin", db=served)
    invoke("team", "create", "crew", db=served)
    invoke("team", "add", "crew", "alice", db=served)
    listed = invoke("user", "list", db=served).stdout
    assert "alice" in listed and "crew" in listed and "root" in listed
    made = invoke("key", "create", "--user", "alice", "--name", "ci", "--read-only",
                  db=served)  # fmt: skip
    key = made.stdout.strip()
    assert made.stdout == key + "\n" and len(key) >= 40
    keys = invoke("key", "list", "--user", "alice", db=served).stdout
    assert "ci" in keys and "read" in keys and key not in keys
    invoke("key", "revoke", "1", db=served)
    accounts = open_accounts(Settings.load(database_url=served))
    assert [k.revoked for k in accounts.list_keys("alice")] == [True]
    assert [user.name for user in open_accounts(Settings.load()).list_users()] == []


def test_errors_exit_with_status_1(data_dir):
    invoke("user", "create", "alice")
    for args in (["user", "create", "alice"], ["team", "add", "crew", "alice"],
                 ["key", "create", "--user", "nobody"], ["key", "revoke", "7"]):  # fmt: skip
        result = runner.invoke(app, args)
        assert result.exit_code == 1 and "error" in result.output and not result.stdout


def test_key_create_defaults_to_the_default_entity(data_dir):
    invoke("user", "create", "tester")
    key = invoke("key", "create").stdout.strip()
    assert open_accounts(Settings.load()).authenticate(key).user == "tester"


@pytest.fixture
def server(backend, monkeypatch):
    """``HttpBackend`` bound to the app with accounts in this process; alice's key."""
    accounts = open_accounts(Settings.load())
    accounts.create_user("alice")
    key, _ = accounts.create_key("alice")
    client = TestClient(create_app(backend, accounts), base_url="http://runbase.test")
    real = http_module.HttpBackend

    def bound(base_url: str, **kwargs):
        assert base_url == "http://runbase.test"
        return real(base_url, client=client, **kwargs)

    monkeypatch.setattr(http_module, "HttpBackend", bound)
    with client:
        yield key


def test_login_checks_the_key_and_saves_a_private_netrc(server, data_dir, monkeypatch):
    result = invoke("login", "--host", "http://runbase.test", server)
    assert "alice" in result.stdout and server not in result.output
    path = data_dir / "netrc"
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    settings = Settings.load()
    assert (settings.base_url, settings.api_key) == ("http://runbase.test", server)
    assert read_credentials(path, "http://other.test") == {}
    monkeypatch.setenv("RUNBASE_API_KEY", "from-the-environment")
    assert Settings.load().api_key == "from-the-environment"
    assert Settings.load(api_key="argument").api_key == "argument"


def test_login_prompts_without_echo_and_refuses_a_wrong_key(server, data_dir):
    prompted = runner.invoke(app, ["login", "--host", "http://runbase.test"], input=server + "\n")
    assert prompted.exit_code == 0, prompted.output
    assert server not in prompted.output
    (data_dir / "netrc").unlink()
    wrong = runner.invoke(app, ["login", "--host", "http://runbase.test", "rb_" + "0" * 40])
    assert wrong.exit_code == 1 and "refused" in wrong.output
    assert not (data_dir / "netrc").exists()


def test_wandb_variables_are_fallbacks(data_dir, monkeypatch):
    monkeypatch.delenv("RUNBASE_API_KEY", raising=False)
    monkeypatch.delenv("RUNBASE_BASE_URL", raising=False)
    monkeypatch.setenv("WANDB_API_KEY", "wandb-key")
    monkeypatch.setenv("WANDB_BASE_URL", "http://wandb.test")
    assert (Settings.load().api_key, Settings.load().base_url) == ("wandb-key", "http://wandb.test")
    monkeypatch.setenv("RUNBASE_API_KEY", "runbase-key")
    assert Settings.load().api_key == "runbase-key"


def test_the_first_start_makes_an_admin_and_prints_its_key_once(tmp_path):
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    env = {k: v for k, v in os.environ.items() if not k.startswith(("RUNBASE_", "WANDB_"))}
    command = [str(Path(sys.executable).parent / "runbase"), "server", "--port", str(port),
               "--data-dir", str(tmp_path / "served")]  # fmt: skip

    def serve(key: str | None) -> tuple[str, int | None]:
        """The server's output, and the status of GET /entity with ``key`` while it ran."""
        server = subprocess.Popen(
            command, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT
        )
        status = None
        try:
            wait_until_healthy(url)
            if key is not None:
                headers = {"authorization": f"Bearer {key}"}
                status = httpx.get(url + "/api/v1/entity", headers=headers).status_code
        finally:
            server.send_signal(signal.SIGTERM)
            output = server.communicate(timeout=20)[0].decode()
        assert server.returncode == 0, output
        return output, status

    first, _ = serve(None)
    lines = first.splitlines()
    key = lines[next(n for n, line in enumerate(lines) if "Created the admin user" in line) + 1]
    assert len(key) >= 40
    second, status = serve(key)
    assert status == 200
    assert "Created the admin user" not in second and key not in second


def test_a_key_of_the_users_choosing_works_once(data_dir):
    accounts = open_accounts(Settings.load())
    accounts.create_user("carol")
    chosen = "k" * 40
    key, record = accounts.create_key("carol", key=chosen)
    assert key == chosen and accounts.authenticate(chosen).user == "carol"
    with pytest.raises(Conflict):
        accounts.create_key("carol", key=chosen)
    for bad in ("short", "x" * 39, "with space" * 5, "x" * 257):
        with pytest.raises(InvalidInput):
            accounts.create_key("carol", key=bad)
