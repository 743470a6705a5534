"""A run's config and summary as the SDK shows them."""

from __future__ import annotations

from collections.abc import Callable, ItemsView, Iterator, KeysView, MutableMapping, ValuesView
from typing import Any

from runbase.errors import ConfigError
from runbase.sdk.values import clean_document


class Config:
    """Hyperparameters: attribute and item access; every change is persisted.

    Changing a value already set raises ``ConfigError`` unless ``allow_val_change=True``.
    Changes are handed to ``persist`` (the run's writer stores them in order, off this thread).
    """

    _items: dict[str, Any]
    _persist: Callable[[dict[str, Any]], None] | None

    def __init__(
        self,
        values: dict[str, Any] | None = None,
        persist: Callable[[dict[str, Any]], None] | None = None,
    ) -> None:
        object.__setattr__(self, "_items", dict(values or {}))
        object.__setattr__(self, "_persist", persist)

    def update(self, d: dict[str, Any] | Any = None, allow_val_change: bool = False) -> None:
        """Add or change keys; ``d`` may be a dict or an object with ``__dict__`` (argparse)."""
        if d is None:
            return
        if not isinstance(d, dict):
            d = _as_dict(d)
        changes = {}
        for key, value in d.items():
            if not isinstance(key, str):
                raise TypeError(f"config keys must be strings, not {key!r}")
            value = clean_document(f"config.{key}", value)
            if not allow_val_change and key in self._items and self._items[key] != value:
                raise ConfigError(
                    f"config key {key!r} is already {self._items[key]!r}; changing it to "
                    f"{value!r} needs update(..., allow_val_change=True)"
                )
            changes[key] = value
        if changes:
            if self._persist is not None:
                self._persist(changes)
            self._items.update(changes)

    def setdefaults(self, d: dict[str, Any]) -> None:
        self.update({k: v for k, v in d.items() if k not in self._items})

    def as_dict(self) -> dict[str, Any]:
        return dict(self._items)

    def keys(self) -> KeysView[str]:
        return self._items.keys()

    def items(self) -> ItemsView[str, Any]:
        return self._items.items()

    def values(self) -> ValuesView[Any]:
        return self._items.values()

    def get(self, key: str, default: Any = None) -> Any:
        return self._items.get(key, default)

    def __getitem__(self, key: str) -> Any:
        return self._items[key]

    def __setitem__(self, key: str, value: Any) -> None:
        self.update({key: value})

    def __getattr__(self, key: str) -> Any:
        try:
            return self._items[key]
        except KeyError:
            raise AttributeError(f"config has no key {key!r}") from None

    def __setattr__(self, key: str, value: Any) -> None:
        self.update({key: value})

    def __contains__(self, key: object) -> bool:
        return key in self._items

    def __iter__(self) -> Iterator[str]:
        return iter(self._items)

    def __len__(self) -> int:
        return len(self._items)

    def __repr__(self) -> str:
        return f"Config({self._items!r})"


def _as_dict(obj: Any) -> dict[str, Any]:
    if hasattr(obj, "__dict__"):
        return {k: v for k, v in vars(obj).items() if not k.startswith("_")}
    raise TypeError(f"config.update takes a dict, not {type(obj).__name__}")


class Summary(MutableMapping[str, Any]):
    """The run's summary: the last logged value of each key, unless set here."""

    def __init__(
        self, values: dict[str, Any], persist: Callable[[dict[str, Any]], None] | None = None
    ) -> None:
        self._items = values
        self._persist = persist

    def __getitem__(self, key: str) -> Any:
        return self._items[key]

    def __setitem__(self, key: str, value: Any) -> None:
        self.update({key: value})

    def __delitem__(self, key: str) -> None:
        raise TypeError("summary keys cannot be deleted from a live run; set a new value instead")

    def update(self, d: Any = (), /, **kwargs: Any) -> None:
        changes = {**dict(d), **kwargs}
        for key in changes:
            if not isinstance(key, str):
                raise TypeError(f"summary keys must be strings, not {key!r}")
        changes = {k: clean_document(f"summary.{k}", v) for k, v in changes.items()}
        self._items.update(changes)
        if self._persist is not None:
            self._persist(changes)

    def __iter__(self) -> Iterator[str]:
        return iter(self._items)

    def __len__(self) -> int:
        return len(self._items)

    def __repr__(self) -> str:
        return f"Summary({self._items!r})"
