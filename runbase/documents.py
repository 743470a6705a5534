"""The codec of config and summary documents, shared by every layer.

JSON has no NaN or infinity, and ``orjson`` writes them as ``null`` without a word. A
document keeps them by tagging each non-finite float as ``{"$float": "NaN"}`` (or
``"Infinity"``, ``"-Infinity"``); ``decode`` turns the tags back into floats. PostgreSQL's
``jsonb`` cannot hold the character U+0000: there a string holding it is stored as
``{"$nul": [its parts between them]}`` (``tag_nul``), which ``decode`` joins again.
"""

from __future__ import annotations

import json
import math
from typing import Any

import orjson

from runbase.errors import InvalidInput

FLOAT_TAG = "$float"
NAN_TAG = {FLOAT_TAG: "NaN"}
NUL_TAG = "$nul"


def encode(value: Any, tag_infinity: bool = True) -> str:
    """JSON text of a document; non-finite floats tagged (infinities only if ``tag_infinity``,
    else written as JSON5 ``Infinity`` tokens)."""
    try:
        if is_finite(value):
            return orjson.dumps(value).decode()
        return json.dumps(tag(value, tag_infinity), allow_nan=True)
    except TypeError as exc:
        raise InvalidInput(f"not a JSON document: {exc}") from None


def decode(raw: bytes | str) -> Any:
    """A document from its JSON text: tags become floats again (``9e999`` reads as infinity)."""
    try:
        value = orjson.loads(raw)
    except orjson.JSONDecodeError:
        value = json.loads(raw)
    markers = (FLOAT_TAG, NUL_TAG)
    if isinstance(raw, bytes):
        tagged = any(marker.encode() in raw for marker in markers)
    else:
        tagged = any(marker in raw for marker in markers)
    return untag(value) if tagged else value


def encode_row(row: Any) -> str:
    """JSON text of a history row (or a value in one) as the hot tier keeps it: NaN and
    infinities as tokens."""
    if is_finite(row):
        try:
            return orjson.dumps(row).decode()
        except TypeError:  # an integer past 64 bits
            pass
    return json.dumps(row, allow_nan=True, separators=(",", ":"))


def decode_row(text: str | bytes | dict[str, Any]) -> dict[str, Any]:
    """One history row from its JSON text (which may hold NaN/Infinity tokens, as Python
    writes them); a row read decoded already (from a segment) is returned as it is."""
    if isinstance(text, dict):
        return text
    row: dict[str, Any] = decode_value(text)
    return row


def decode_value(text: str | bytes) -> Any:
    """A value from JSON text that may hold NaN/Infinity tokens."""
    try:
        return orjson.loads(text)
    except orjson.JSONDecodeError:
        return json.loads(text)


def leaf_keys(row: dict[str, Any], prefix: str = "") -> list[str]:
    """Dotted paths of the row's leaves: ``{"a": {"b": 1}}`` -> ``["a.b"]``."""
    keys = []
    for key, value in row.items():
        if type(value) is dict:
            keys.extend(leaf_keys(value, prefix + key + "."))
        else:
            keys.append(prefix + key)
    return keys


def pick_keys(row: dict[str, Any], keys: list[str] | tuple[str, ...]) -> dict[str, Any]:
    """Just ``keys`` of the row; a dotted key also reaches into nested values (``a.b``)."""
    picked = {}
    for key in keys:
        if key in row:
            picked[key] = row[key]
        elif "." in key:
            node: Any = row
            for part in key.split("."):
                if not isinstance(node, dict) or part not in node:
                    break
                node = node[part]
            else:
                picked[key] = node
    return picked


def is_finite(value: Any) -> bool:
    """Whether no float anywhere in ``value`` is NaN or infinite."""
    if isinstance(value, float):
        return math.isfinite(value)
    if isinstance(value, dict):
        return all(is_finite(v) for v in value.values())
    if isinstance(value, (list, tuple)):
        return all(is_finite(v) for v in value)
    return True


def tag(value: Any, tag_infinity: bool = True) -> Any:
    """``value`` with its non-finite floats replaced by tags."""
    if isinstance(value, float) and not math.isfinite(value):
        if math.isnan(value):
            return dict(NAN_TAG)
        if tag_infinity:
            return {FLOAT_TAG: "Infinity" if value > 0 else "-Infinity"}
        return value
    if isinstance(value, dict):
        return {k: tag(v, tag_infinity) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [tag(v, tag_infinity) for v in value]
    return value


def tag_nul(value: Any) -> Any:
    """``value`` with each string holding U+0000 replaced by ``{"$nul": [parts]}``; a key
    holding it is refused (``InvalidInput``): PostgreSQL's ``jsonb`` cannot store either."""
    if isinstance(value, str):
        return {NUL_TAG: value.split("\x00")} if "\x00" in value else value
    if isinstance(value, dict):
        for key in value:
            if "\x00" in key:
                raise InvalidInput(f"key {key!r} holds the character U+0000: it cannot be stored")
        return {k: tag_nul(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [tag_nul(v) for v in value]
    return value


def untag(value: Any) -> Any:
    """``value`` with tags turned back into floats (and strings)."""
    if isinstance(value, dict):
        if len(value) == 1 and FLOAT_TAG in value:
            return float(value[FLOAT_TAG])
        if len(value) == 1 and isinstance(value.get(NUL_TAG), list):
            return "\x00".join(value[NUL_TAG])
        return {k: untag(v) for k, v in value.items()}
    if isinstance(value, list):
        return [untag(v) for v in value]
    return value
