"""The errors runbase raises.

RunbaseError
├── CommError            the backend could not be reached or read (``.exc`` holds the cause)
│   └── RateLimited      too many failed authentications from one client: retry later
├── NotFound(ValueError) a run, project, sweep or file that does not exist
├── InvalidInput(ValueError)
│   └── InvalidFilter    a malformed filter or order expression
├── ConfigError(ValueError) a config change without ``allow_val_change``
├── Conflict             a write that contradicts stored state (e.g. ``resume="never"``)
├── ReadOnly             an update of a read-only object
├── Unauthorized
├── Forbidden
├── PayloadTooLarge      a request body (a file, a JSON body) over the server's limit
└── Unsupported          a feature runbase does not have (e.g. artifacts on a native client)

Each error has an HTTP ``status`` and a stable ``code`` so that it can cross the wire intact.
"""

from __future__ import annotations


class RunbaseError(Exception):
    """Root of every error runbase raises on purpose."""

    status = 500
    code = "internal"

    def __init__(self, message: str = "", exc: BaseException | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.exc = exc


class CommError(RunbaseError):
    """Failure to reach or read the backend; ``exc`` is the original exception."""

    status = 502
    code = "comm_error"


class NotFound(RunbaseError, ValueError):
    status = 404
    code = "not_found"


class InvalidInput(RunbaseError, ValueError):
    status = 400
    code = "invalid_input"


class InvalidFilter(InvalidInput):
    code = "invalid_filter"


class ConfigError(RunbaseError, ValueError):
    status = 400
    code = "config_error"


class Conflict(RunbaseError):
    status = 409
    code = "conflict"


class ReadOnly(RunbaseError):
    status = 403
    code = "read_only"


class Unauthorized(RunbaseError):
    status = 401
    code = "unauthorized"


class Forbidden(RunbaseError):
    status = 403
    code = "forbidden"


class RateLimited(CommError):
    """Too many failed authentications from one client; it may try again later."""

    status = 429
    code = "rate_limited"


class PayloadTooLarge(RunbaseError):
    status = 413
    code = "payload_too_large"


class Unsupported(RunbaseError):
    status = 501
    code = "unsupported"


def error_for_code(code: str) -> type[RunbaseError]:
    """The error class with this ``code`` (``RunbaseError`` when unknown)."""
    stack: list[type[RunbaseError]] = [RunbaseError]
    while stack:
        cls = stack.pop()
        if cls.code == code:
            return cls
        stack.extend(cls.__subclasses__())
    return RunbaseError
