"""Dashboard sessions over a store: a browser logs in with an API key once and then carries a
random session token in a cookie. The store keeps only the token's sha256.

A session acts as its key (same user, teams, read-only flag), expires after ``lifetime``
seconds, and ends when its key is revoked or on ``end``.
"""

from __future__ import annotations

import secrets
import time
from dataclasses import dataclass

from runbase.backend.accounts import Accounts, Principal, key_hash
from runbase.errors import Unauthorized
from runbase.store import accounts as account_store
from runbase.store import sessions as session_store

SESSION_LIFETIME = 7 * 24 * 3600.0  # seconds


@dataclass(frozen=True)
class Session:
    """Who a session acts as, and the token its state-changing requests must carry."""

    principal: Principal
    csrf: str


class Sessions:
    """The sessions kept in the store of ``accounts``."""

    def __init__(self, accounts: Accounts, lifetime: float = SESSION_LIFETIME) -> None:
        self.accounts = accounts
        self.store = accounts.store
        self.lifetime = lifetime

    def start(self, key: str) -> tuple[str, Session]:
        """A new session for an active API key: its token (for the cookie, never stored) and
        the session. ``Unauthorized`` for any other key."""
        principal = self.accounts.authenticate(key)
        with self.store.read() as conn:
            found = account_store.find_key(conn, key_hash(key))
        if found is None:  # revoked between the two reads
            raise Unauthorized("invalid API key")
        token, csrf, now = secrets.token_urlsafe(32), secrets.token_urlsafe(24), time.time()
        digest = key_hash(token)
        self.store.write_fn(
            lambda conn: session_store.create_session(
                conn, digest, found["id"], csrf, now, now + self.lifetime
            )
        )
        return token, Session(principal, csrf)

    def find(self, token: str) -> Session:
        """The session of a token; ``Unauthorized`` when it is unknown, expired or its key
        revoked."""
        digest, now = key_hash(token), time.time()
        with self.store.read() as conn:
            found = session_store.find_session(conn, digest, now)
            teams = [] if found is None else account_store.teams_of(conn, found["user_id"])
            expired = found is None and session_store.has_expired(conn, digest, now)
        if expired:  # one write per expired session seen, not one per unknown token
            self.store.write_fn(lambda conn: session_store.drop_expired(conn, now))
        if found is None:
            raise Unauthorized("the session has ended: log in again")
        principal = Principal(found["user"], bool(found["admin"]), bool(found["read_only"]),
                              frozenset(teams))  # fmt: skip
        return Session(principal, found["csrf"])

    def end(self, token: str) -> None:
        digest = key_hash(token)
        self.store.write_fn(lambda conn: session_store.delete_session(conn, digest))
