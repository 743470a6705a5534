"""What every resolver of a GraphQL request gets: the request's backend, who asks, the base
of the URLs it hands out and the signer of those URLs."""

from __future__ import annotations

import base64
import hashlib
import hmac
import secrets
import threading
import time
from dataclasses import dataclass
from typing import TYPE_CHECKING

import orjson
from graphql import GraphQLResolveInfo
from starlette.requests import Request

from runbase.backend.accounts import Accounts, Principal
from runbase.backend.authorized import AuthorizedBackend
from runbase.backend.base import Backend
from runbase.errors import Unauthorized

URL_LIFETIME = 24 * 3600.0  # seconds an upload or download URL stays good


class Signer:
    """Signs what a URL allows (a PUT or GET of one file) so that the URL needs no key: the
    client sends no credentials with uploads."""

    def __init__(self, key: bytes) -> None:
        self._key = key

    def sign(self, claims: list[str], lifetime: float = URL_LIFETIME) -> str:
        payload = orjson.dumps([int(time.time() + lifetime), *claims])
        mac = hmac.new(self._key, payload, hashlib.sha256).digest()[:18]
        return _b64(payload) + "." + _b64(mac)

    def verify(self, token: str) -> list[str]:
        """The claims of a token this signer made that has not expired; ``Unauthorized``
        otherwise."""
        try:
            payload_text, mac_text = token.split(".")
            payload, mac = _unb64(payload_text), _unb64(mac_text)
            expected = hmac.new(self._key, payload, hashlib.sha256).digest()[:18]
            if not hmac.compare_digest(mac, expected):
                raise ValueError("bad signature")
            expires, *claims = orjson.loads(payload)
        except (ValueError, TypeError, orjson.JSONDecodeError):
            raise Unauthorized("this URL is not valid") from None
        if expires < time.time():
            raise Unauthorized("this URL has expired")
        return [str(claim) for claim in claims]


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def _unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


_LOCK = threading.Lock()


def signer(request: Request) -> Signer:
    """The app's signer, keyed by the server secret all its processes share (a secret of
    this process when the server keeps no accounts)."""
    state = request.app.state
    with _LOCK:
        if getattr(state, "wandb_signer", None) is None:
            accounts: Accounts | None = state.accounts
            key = accounts.secret("url_signing") if accounts else secrets.token_hex(32)
            state.wandb_signer = Signer(key.encode())
    found: Signer = state.wandb_signer
    return found


@dataclass(frozen=True)
class Context:
    """The request's backend and who it acts as, the absolute base of the URLs handed out,
    and the URL signer."""

    backend: Backend
    principal: Principal
    base_url: str
    signer: Signer
    accounts: Accounts | None = None

    @property
    def user(self) -> str:
        return self.principal.user

    @classmethod
    def of(cls, request: Request) -> Context:
        backend: Backend = request.state.backend
        if isinstance(backend, AuthorizedBackend):
            principal = backend.principal
        else:  # a server without accounts: everybody is the backend's own admin user
            principal = Principal(backend.default_entity(), admin=True)
        base = str(request.base_url).rstrip("/")
        return cls(backend, principal, base, signer(request), request.app.state.accounts)


if TYPE_CHECKING:
    Info = GraphQLResolveInfo[Context]
else:  # not generic on Python 3.10
    Info = GraphQLResolveInfo
