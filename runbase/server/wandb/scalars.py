"""The scalars of W&B's schema. ``JSONString`` is JSON text inside a string (W&B's config,
summary, filters; NaN and infinities written as tokens, which the client's Python parser
reads); ``JSON`` is a value in the answer itself, where the client's Go parser would refuse
such tokens, so they are written as the strings ``"NaN"``, ``"Infinity"``, ``"-Infinity"``."""

from __future__ import annotations

import datetime
import math
from typing import Any

from ariadne import ScalarType

from runbase import documents
from runbase.errors import InvalidInput

json_string = ScalarType("JSONString")
json_value = ScalarType("JSON")
date_time = ScalarType("DateTime")
int64 = ScalarType("Int64")


@json_string.serializer
def serialize_json_string(value: Any) -> str:
    return value if isinstance(value, str) else documents.encode_row(value)


@json_string.value_parser
def parse_json_string(value: Any) -> Any:
    if not isinstance(value, str):
        return value
    try:
        return documents.decode_value(value)
    except ValueError as exc:
        raise InvalidInput(f"not a JSON string: {exc}") from None


@json_value.serializer
def serialize_json(value: Any) -> Any:
    return json_safe(value)


@json_value.value_parser
def parse_json(value: Any) -> Any:
    return value


def json_safe(value: Any) -> Any:
    """``value`` with each non-finite float written as its name, for the answer's JSON."""
    if isinstance(value, float) and not math.isfinite(value):
        return "NaN" if math.isnan(value) else ("Infinity" if value > 0 else "-Infinity")
    if isinstance(value, dict):
        return {key: json_safe(item) for key, item in value.items()}
    if isinstance(value, (list, tuple)):
        return [json_safe(item) for item in value]
    return value


@date_time.serializer
def serialize_date_time(value: Any) -> str:
    """Seconds since the epoch as W&B writes times: ISO 8601 in UTC, without a zone."""
    moment = datetime.datetime.fromtimestamp(float(value), datetime.timezone.utc)
    return moment.replace(tzinfo=None).isoformat(timespec="seconds")


@int64.value_parser
def parse_int64(value: Any) -> int:
    if isinstance(value, bool) or not isinstance(value, (int, str)):
        raise InvalidInput(f"not an integer: {value!r}")
    try:
        return int(value)
    except ValueError:
        raise InvalidInput(f"not an integer: {value!r}") from None


bindables = [json_string, json_value, date_time, int64]
