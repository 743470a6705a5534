"""A run's history the W&B way (to be written)."""

from __future__ import annotations

from typing import Any

bindables: list[Any] = []
