"""Users, teams and API keys over a store, and who a key belongs to (``Principal``).

A key is ``rb_`` and 40 random hex digits, shown once when made; the store keeps only its
sha256. ``authenticate`` looks the hash up and compares it in constant time.
"""

from __future__ import annotations

import hashlib
import hmac
import re
import secrets
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, TypeVar

from sqlalchemy import Connection

from runbase import checks
from runbase.errors import InvalidInput, Unauthorized
from runbase.store import Store
from runbase.store import accounts as account_store

KEY_PREFIX = "rb_"
LAST_USED_EVERY = 60.0  # seconds: a key used more often writes its last-used time once
LABEL_LIMIT = 256
KEY_PREFIX_SHOWN = 8  # characters of a key kept to tell keys apart (never enough to use one)
CHOSEN_KEY = re.compile(r"[!-~]{40,256}")  # as long as W&B's client asks of keys
T = TypeVar("T")


@dataclass(frozen=True)
class Principal:
    """Who a request acts as: a user, whether an admin, whether its key only reads, and the
    teams it is a member of."""

    user: str
    admin: bool = False
    read_only: bool = False
    teams: frozenset[str] = frozenset()


@dataclass(frozen=True)
class UserRecord:
    name: str
    admin: bool
    created_at: float
    teams: tuple[str, ...] = ()


@dataclass(frozen=True)
class KeyRecord:
    """An API key as stored: everything but the key."""

    id: int
    user: str
    label: str
    read_only: bool
    created_at: float
    last_used_at: float | None
    revoked: bool
    prefix: str | None = None


def key_hash(key: str) -> str:
    return hashlib.sha256(key.encode()).hexdigest()


def new_key() -> str:
    return KEY_PREFIX + secrets.token_hex(20)


class Accounts:
    """The accounts kept in ``store`` (which it does not close)."""

    def __init__(self, store: Store, last_used_every: float = LAST_USED_EVERY) -> None:
        self.store = store
        self.last_used_every = last_used_every

    def authenticate(self, key: str) -> Principal:
        """The principal of an active key; ``Unauthorized`` for any other."""
        digest = key_hash(key)
        with self.store.read() as conn:
            found = account_store.find_key(conn, digest)
            teams = [] if found is None else account_store.teams_of(conn, found["user_id"])
        if found is None or not hmac.compare_digest(found["key_hash"], digest):
            raise Unauthorized("invalid API key")
        if found["revoked"]:
            raise Unauthorized("invalid API key")
        now = time.time()
        last_used = found["last_used_at"]
        if last_used is None or now - last_used >= self.last_used_every:
            self._write(lambda conn: account_store.touch_key(conn, found["id"], now))
        return Principal(found["user"], bool(found["admin"]), bool(found["read_only"]),
                         frozenset(teams))  # fmt: skip

    def _write(self, fn: Callable[[Connection], T]) -> T:
        return self.store.write_fn(fn)

    # users and teams
    def create_user(self, name: str, admin: bool = False) -> UserRecord:
        checks.name_part(name, "user")
        return UserRecord(**self._write(lambda conn: account_store.create_user(conn, name, admin)))

    def list_users(self) -> list[UserRecord]:
        with self.store.read() as conn:
            found = account_store.list_users(conn)
        return [_user(row) for row in found]

    def has_users(self) -> bool:
        with self.store.read() as conn:
            return account_store.count_users(conn) > 0

    def create_team(self, name: str) -> None:
        checks.name_part(name, "team")
        self._write(lambda conn: account_store.create_team(conn, name))

    def add_member(self, team: str, user: str) -> None:
        dialect = self.store.dialect
        self._write(lambda conn: account_store.add_member(dialect, conn, team, user))

    # keys
    def create_key(
        self, user: str, label: str = "", read_only: bool = False, key: str | None = None
    ) -> tuple[str, KeyRecord]:
        """A new key of ``user`` and its record; the key is not kept and cannot be shown again.
        ``key`` is a key of the user's choosing (such as the W&B key their code already
        has) instead of a random one."""
        if not isinstance(label, str) or len(label) > LABEL_LIMIT:
            raise InvalidInput(
                f"a key's label must be a string of at most {LABEL_LIMIT} characters"
            )
        if key is None:
            key = new_key()
        elif not CHOSEN_KEY.fullmatch(key):
            raise InvalidInput("a chosen key must be 40 to 256 printable characters without spaces")
        digest = key_hash(key)

        def write(conn: Connection) -> dict[str, Any]:
            prefix = key[:KEY_PREFIX_SHOWN]
            return account_store.create_key(conn, user, digest, label, read_only, prefix)

        return key, _key(self._write(write))

    def list_keys(self, user: str | None = None) -> list[KeyRecord]:
        with self.store.read() as conn:
            return [_key(row) for row in account_store.list_keys(conn, user)]

    def revoke_key(self, key_id: int) -> KeyRecord:
        return _key(self._write(lambda conn: account_store.revoke_key(conn, key_id)))

    def secret(self, name: str) -> str:
        """A random secret the server's processes share, made on first use."""
        dialect = self.store.dialect
        new = secrets.token_hex(32)
        return self._write(lambda conn: account_store.secret(dialect, conn, name, new))

    def bootstrap(self, admin: str) -> str | None:
        """On a database without users: an admin user ``admin`` and its new key, returned (the
        only time it is seen). None when there are users already."""
        if self.has_users():
            return None
        self.create_user(admin, admin=True)
        key, _ = self.create_key(admin, label="created on first start")
        return key


def _user(row: dict[str, Any]) -> UserRecord:
    return UserRecord(row["name"], bool(row["admin"]), row["created_at"], tuple(row["teams"]))


def _key(row: dict[str, Any]) -> KeyRecord:
    return KeyRecord(
        id=row["id"], user=row["user"], label=row["label"], read_only=bool(row["read_only"]),
        created_at=row["created_at"], last_used_at=row["last_used_at"],
        revoked=bool(row["revoked"]), prefix=row["prefix"],
    )  # fmt: skip
