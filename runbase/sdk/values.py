"""What may be logged, and its stored form.

Scalars (int, float, bool, str, None), NaN and ±Infinity, numpy and torch scalars (anything
with ``.item()`` and an empty shape), lists and tuples of numbers, and nested dicts of these.
Nested dicts stay nested in the stored row, as wandb sends them (``{"a": {"b": 1}}``); their
leaves are addressed by dotted key paths (``a.b``) in key sets and queries. An empty nested
dict is dropped. Anything else raises ``TypeError`` naming the key.
"""

from __future__ import annotations

import math
from typing import Any

SCALARS = (int, float, bool, str, type(None))
NUMBERS = (int, float, bool)
NONFINITE, NESTED, HAS_NONE = 1, 2, 4
_PLAIN_NUMBERS = frozenset((int, float))
_STR = frozenset((str,))


def clean_row(data: dict[str, Any]) -> tuple[dict[str, Any], int]:
    """The row, a new dict (nested dicts and lists new too), with every value in plain form,
    and flags: ``NONFINITE`` when it holds a NaN or infinity, ``NESTED`` when it holds a dict,
    ``HAS_NONE`` when it holds a None."""
    if not isinstance(data, dict):
        raise TypeError(f"log() takes a dict, not {type(data).__name__}")
    if _PLAIN_NUMBERS.issuperset(map(type, data.values())) and _STR.issuperset(map(type, data)):
        try:
            total = math.fsum(data.values())
        except (OverflowError, ValueError):  # huge ints, or +inf and -inf together
            return _clean_dict("", data)
        return dict(data), (NONFINITE if total - total != 0.0 else 0)
    return _clean_dict("", data)


def _clean_dict(prefix: str, data: dict[str, Any]) -> tuple[dict[str, Any], int]:
    row: dict[str, Any] = {}
    flags = 0
    for key, value in data.items():
        if type(key) is not str:
            raise TypeError(f"logged keys must be strings, not {key!r}")
        kind = type(value)
        if kind is float:
            if value - value != 0.0:
                flags |= NONFINITE
        elif kind in SCALARS:
            if value is None:
                flags |= HAS_NONE
        elif kind is dict:
            value, inner = _clean_dict(prefix + key + ".", value)
            flags |= inner | NESTED
            if not value:
                continue
        else:
            value = clean_value(prefix + key, value)
            if _has_nonfinite(value):
                flags |= NONFINITE
        row[key] = value
    return row, flags


def merge_leaves(target: dict[str, Any], row: dict[str, Any]) -> None:
    """Merge a logged row into a summary by leaf path; None leaves are not written."""
    for key, value in row.items():
        if type(value) is dict:
            inner = target.get(key)
            if type(inner) is not dict:
                inner = target[key] = {}
            merge_leaves(inner, value)
        elif value is not None:
            target[key] = value


def copy_document(value: Any) -> Any:
    """A deep copy of JSON-like data (dicts and lists new, scalars shared)."""
    kind = type(value)
    if kind is dict:
        return {key: copy_document(item) for key, item in value.items()}
    if kind is list or kind is tuple:
        return [copy_document(item) for item in value]
    return value


def clean_value(name: str, value: Any) -> Any:
    """A value of a supported kind in its plain Python form; ``TypeError`` naming ``name``."""
    if type(value) in SCALARS:
        return value
    scalar = _as_scalar(value)
    if scalar is not _NOT_SCALAR:
        return scalar
    if isinstance(value, (list, tuple)):
        items = [_as_number(name, item) for item in value]
        return items
    raise TypeError(
        f"cannot log {name!r}: values of type {type(value).__module__}.{type(value).__qualname__} "
        "are not supported (use numbers, strings, booleans, None, lists of numbers or dicts)"
    )


_NOT_SCALAR = object()


def _as_scalar(value: Any) -> Any:
    """numpy scalars, 0-d arrays and 0-d torch tensors as Python scalars."""
    item = getattr(value, "item", None)
    if item is None or tuple(getattr(value, "shape", (None,))) != ():
        return _NOT_SCALAR
    try:
        plain = item()
    except (TypeError, ValueError, RuntimeError):
        return _NOT_SCALAR
    return plain if isinstance(plain, SCALARS) else _NOT_SCALAR


def _as_number(name: str, item: Any) -> Any:
    if type(item) in NUMBERS or item is None:
        return item
    scalar = _as_scalar(item)
    if isinstance(scalar, NUMBERS):
        return scalar
    raise TypeError(f"cannot log {name!r}: lists may hold only numbers, found {item!r}")


def _has_nonfinite(value: Any) -> bool:
    if isinstance(value, float):
        return not math.isfinite(value)
    if isinstance(value, list):
        return any(isinstance(v, float) and not math.isfinite(v) for v in value)
    return False


def clean_document(name: str, value: Any) -> Any:
    """A config or summary value: JSON-like data with numpy/torch scalars made plain."""
    if type(value) in SCALARS:
        return value
    if isinstance(value, dict):
        for key in value:
            if not isinstance(key, str):
                raise TypeError(f"{name}: keys must be strings, not {key!r}")
        return {k: clean_document(f"{name}.{k}", v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [clean_document(f"{name}[{i}]", v) for i, v in enumerate(value)]
    scalar = _as_scalar(value)
    if scalar is not _NOT_SCALAR:
        return scalar
    raise TypeError(
        f"{name}: values of type {type(value).__qualname__} are not supported "
        "(use numbers, strings, booleans, None, lists or dicts)"
    )
