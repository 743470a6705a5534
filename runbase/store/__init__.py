"""Storage: the only code that writes SQL."""

from runbase.store.engine import Store

__all__ = ["Store"]
