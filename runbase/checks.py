"""Rules that several layers check, each written once; every failure is an ``InvalidInput``
naming the value at fault."""

from __future__ import annotations

from typing import Any

from runbase.errors import InvalidInput

STREAMS = ("default", "system")
MODES = ("online", "offline", "disabled")
NAME_LIMIT = 128


def positive_int(value: Any, name: str) -> int:
    """``value`` if it is an integer of at least 1."""
    if not isinstance(value, int) or isinstance(value, bool) or value < 1:
        raise InvalidInput(f"{name} must be a positive integer, not {value!r}")
    return value


def optional_int(value: Any, name: str) -> int | None:
    """``value`` if it is an integer or None."""
    if value is not None and (not isinstance(value, int) or isinstance(value, bool)):
        raise InvalidInput(f"{name} must be an integer or None, not {value!r}")
    return value


def stream(value: Any) -> str:
    """``value`` if it names a history stream."""
    if value not in STREAMS:
        raise InvalidInput(f"stream must be one of {list(STREAMS)}, not {value!r}")
    return str(value)


def mode(value: Any) -> str:
    """``value`` if it is an SDK mode."""
    if value not in MODES:
        raise InvalidInput(f"mode must be one of {list(MODES)}, not {value!r}")
    return str(value)


def name_part(value: Any, part: str) -> str:
    """An entity, project or run id: a non-empty string without '/' of fitting length."""
    if not isinstance(value, str) or not value or "/" in value or len(value) > NAME_LIMIT:
        raise InvalidInput(
            f"{part} must be a non-empty string without '/' of at most {NAME_LIMIT} characters,"
            f" not {value!r}"
        )
    return value


def keys(value: Any) -> tuple[str, ...] | None:
    """A list of history keys, or None."""
    if value is None:
        return None
    if not isinstance(value, (list, tuple)) or not all(isinstance(k, str) for k in value):
        raise InvalidInput(f"keys must be a list of strings, not {value!r}")
    return tuple(value)
