"""Users, teams and API keys in a real store, on SQLite and PostgreSQL."""

from __future__ import annotations

import hashlib

import pytest
from sqlalchemy import create_engine, select, text

from runbase.backend import open_accounts
from runbase.backend.accounts import Accounts, Principal
from runbase.backend.base import NewRun, RunPath
from runbase.errors import Conflict, InvalidInput, NotFound, Unauthorized
from runbase.settings import Settings
from runbase.store import Store, migrations, schema
from runbase.store.migrations import STEPS, migrate


@pytest.fixture
def accounts(data_dir) -> Accounts:
    return open_accounts(Settings.load())


def test_keys_are_long_random_and_stored_only_as_hashes(accounts):
    accounts.create_user("alice")
    key, record = accounts.create_key("alice", label="laptop")
    other, _ = accounts.create_key("alice")
    assert len(key) >= 40 and key != other
    assert (record.user, record.label, record.read_only, record.revoked) == (
        "alice", "laptop", False, False
    )  # fmt: skip
    with accounts.store.read() as conn:
        stored = [tuple(row) for row in conn.execute(select(schema.api_keys))]
    assert key not in repr(stored) and other not in repr(stored)
    assert hashlib.sha256(key.encode()).hexdigest() in repr(stored)


def test_authenticate_gives_the_principal_and_refuses_others(accounts):
    accounts.create_user("alice")
    accounts.create_user("root", admin=True)
    accounts.create_team("crew")
    accounts.add_member("crew", "alice")
    key, _ = accounts.create_key("alice", read_only=True)
    admin_key, _ = accounts.create_key("root")
    assert accounts.authenticate(key) == Principal("alice", False, True, frozenset({"crew"}))
    assert accounts.authenticate(admin_key) == Principal("root", True, False, frozenset())
    for wrong in ("", key[:-1], key + "0", "rb_" + "0" * 40):
        with pytest.raises(Unauthorized):
            accounts.authenticate(wrong)


def test_revoked_keys_fail(accounts):
    accounts.create_user("alice")
    key, record = accounts.create_key("alice")
    kept, _ = accounts.create_key("alice")
    assert accounts.revoke_key(record.id).revoked
    with pytest.raises(Unauthorized):
        accounts.authenticate(key)
    assert accounts.authenticate(kept).user == "alice"
    with pytest.raises(NotFound):
        accounts.revoke_key(999)


def test_the_last_used_time_is_kept(accounts):
    accounts.create_user("alice")
    key, record = accounts.create_key("alice")
    assert record.last_used_at is None
    accounts.authenticate(key)
    first = accounts.list_keys("alice")[0].last_used_at
    assert first is not None and first >= record.created_at
    Accounts(accounts.store, last_used_every=0).authenticate(key)
    assert accounts.list_keys("alice")[0].last_used_at >= first


def test_users_and_teams_are_entities(accounts, backend):
    # an entity that runs made before anybody registered it can become a user
    backend.create_run(RunPath("alice", "p", "r"), NewRun())
    accounts.create_user("alice")
    accounts.create_user("bob", admin=True)
    accounts.create_team("crew")
    accounts.add_member("crew", "alice")
    accounts.add_member("crew", "alice")  # twice is once
    with pytest.raises(Conflict):
        accounts.create_user("alice")
    with pytest.raises(Conflict):
        accounts.create_team("bob")
    with pytest.raises(Conflict):
        accounts.create_user("crew")
    with pytest.raises(NotFound):
        accounts.add_member("crew", "nobody")
    with pytest.raises(NotFound):
        accounts.add_member("alice", "bob")  # alice is no team
    with pytest.raises(NotFound):
        accounts.create_key("nobody")
    with pytest.raises(InvalidInput):
        accounts.create_user("a/b")
    users = {user.name: (user.admin, user.teams) for user in accounts.list_users()}
    assert users == {"alice": (False, ("crew",)), "bob": (True, ())}
    assert [key.user for key in accounts.list_keys()] == []


def test_bootstrap_makes_one_admin_on_an_empty_database(accounts):
    key = accounts.bootstrap("root")
    assert key is not None and accounts.authenticate(key).admin
    assert accounts.bootstrap("root") is None
    assert [user.name for user in accounts.list_users()] == ["root"]


def test_the_accounts_step_migrates_an_older_database(tmp_path):
    url = f"sqlite:///{tmp_path / 'old.db'}"
    engine = create_engine(url)
    with engine.begin() as conn:
        for number, step in enumerate(STEPS[:4], start=1):
            step(conn)
            conn.execute(schema.schema_version.insert().values(version=number))
        for table in reversed(schema.ACCOUNT_TABLES):
            table.drop(conn)
    with engine.begin() as conn:
        assert migrate(conn) == len(STEPS)
    engine.dispose()
    store = Store.open(url, tmp_path)
    try:
        accounts = Accounts(store)
        accounts.create_user("alice")
        assert accounts.authenticate(accounts.create_key("alice")[0]).user == "alice"
    finally:
        store.close()


def test_keys_made_before_prefixes_keep_working(tmp_path):
    url = f"sqlite:///{tmp_path / 'old.db'}"
    store = Store.open(url, tmp_path)
    accounts = Accounts(store)
    accounts.create_user("alice")
    old_key = accounts.create_key("alice")[0]
    store.close()
    engine = create_engine(url)
    step = STEPS.index(migrations._key_prefixes) + 1
    with engine.begin() as conn:
        conn.execute(text("ALTER TABLE api_keys DROP COLUMN prefix"))
        conn.execute(schema.schema_version.delete().where(schema.schema_version.c.version >= step))
    with engine.begin() as conn:
        assert migrate(conn) == len(STEPS)
    engine.dispose()
    store = Store.open(url, tmp_path)
    try:
        accounts = Accounts(store)
        assert accounts.authenticate(old_key).user == "alice"
        new_key = accounts.create_key("alice")[0]
        prefixes = [key.prefix for key in accounts.list_keys("alice")]
        assert prefixes == [None, new_key[:8]]
    finally:
        store.close()
