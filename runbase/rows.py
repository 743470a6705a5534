"""History rows as JSON text: decoding that accepts the NaN and Infinity tokens Python writes."""

from __future__ import annotations

import json
from typing import Any

import orjson


def decode_row(text: str | bytes) -> dict[str, Any]:
    """Decode one row; orjson first, the standard library for NaN/Infinity tokens."""
    try:
        return orjson.loads(text)
    except orjson.JSONDecodeError:
        return json.loads(text)
