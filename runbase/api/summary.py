"""A run's summary: a dict-like whose writes are stored at once."""

from __future__ import annotations

import copy
from collections.abc import Callable, Iterator, MutableMapping
from typing import Any


class Summary(MutableMapping[str, Any]):
    """The last value of each metric, plus what was set directly.

    ``summary[key] = value``, ``update({...})`` and ``del summary[key]`` are stored at once.
    Values are plain: a nested dict edited in place is stored by ``update()`` (of the summary
    or of the run).
    """

    def __init__(
        self,
        values: dict[str, Any],
        merge: Callable[[dict[str, Any]], None],
        replace: Callable[[dict[str, Any]], None],
    ) -> None:
        self._json_dict = values
        self._stored = copy.deepcopy(values)
        self._merge = merge
        self._replace = replace

    def __getitem__(self, key: str) -> Any:
        return self._json_dict[key]

    def __getattr__(self, name: str) -> Any:
        if name.startswith("_"):
            raise AttributeError(name)
        try:
            return self._json_dict[name]
        except KeyError:
            raise AttributeError(name) from None

    def __iter__(self) -> Iterator[str]:
        return iter(self._json_dict)

    def __len__(self) -> int:
        return len(self._json_dict)

    def __setitem__(self, key: str, value: Any) -> None:
        self.update({key: value})

    def __delitem__(self, key: str) -> None:
        if key not in self._json_dict:
            raise KeyError(key)
        values = {k: v for k, v in self._json_dict.items() if k != key}
        self._replace(values)
        del self._json_dict[key]
        self._stored = copy.deepcopy(self._json_dict)

    def update(self, other: Any = (), /, **kwargs: Any) -> None:
        """Merge top-level keys and store them; with no arguments, store pending edits."""
        changes = dict(other, **kwargs)
        if not changes:
            if self.dirty:
                self._replace(copy.deepcopy(self._json_dict))
                self._stored = copy.deepcopy(self._json_dict)
            return
        self._merge(copy.deepcopy(changes))
        self._json_dict.update(changes)
        self._stored.update(copy.deepcopy(changes))

    @property
    def dirty(self) -> bool:
        """Whether edits made in place are not stored yet."""
        return self._json_dict != self._stored

    def _reset(self, values: dict[str, Any]) -> None:
        self._json_dict.clear()
        self._json_dict.update(values)
        self._stored = copy.deepcopy(values)

    def __repr__(self) -> str:
        return repr(self._json_dict)

    def __eq__(self, other: object) -> bool:
        if isinstance(other, Summary):
            other = other._json_dict
        return self._json_dict == other

    __hash__ = None  # type: ignore[assignment]
