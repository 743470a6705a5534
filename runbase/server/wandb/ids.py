"""W&B's opaque ids: base64 of ``Kind:v1:`` and the parts (a JSON list), as relay ids look."""

from __future__ import annotations

import base64
import binascii
import hashlib

import orjson

from runbase.backend.base import RunPath
from runbase.errors import InvalidInput


def global_id(kind: str, *parts: str) -> str:
    return base64.b64encode(f"{kind}:v1:".encode() + orjson.dumps(parts)).decode()


def parse_global_id(kind: str, value: str) -> list[str]:
    """The parts of ``global_id(kind, ...)``; ``InvalidInput`` for anything else."""
    try:
        head, _, body = base64.b64decode(value, validate=True).partition(b"[")
        parts = orjson.loads(b"[" + body)
    except (binascii.Error, orjson.JSONDecodeError, TypeError):
        raise InvalidInput(f"not an id of a {kind}: {value!r}") from None
    if head != f"{kind}:v1:".encode() or not all(isinstance(part, str) for part in parts):
        raise InvalidInput(f"not an id of a {kind}: {value!r}")
    return list(parts)


def run_id(path: RunPath) -> str:
    """The ``id`` of a run: its path, so that ``upsertBucket(id:)`` finds it again."""
    return global_id("Run", path.run_id, path.project, path.entity)


def run_path(value: str) -> RunPath:
    parts = parse_global_id("Run", value)
    if len(parts) != 3:
        raise InvalidInput(f"not an id of a Run: {value!r}")
    run, project, entity = parts
    return RunPath(entity, project, run)


def internal_id(*parts: str) -> str:
    """A number standing for an object (W&B's ``internalId``, which the client reads as an
    int): 48 bits of the sha256 of its name."""
    digest = hashlib.sha256("/".join(parts).encode()).digest()
    return str(int.from_bytes(digest[:6], "big"))
