"""A lazy list loaded page by page from the backend."""

from __future__ import annotations

import abc
from collections.abc import Iterator
from typing import Any, Generic, TypeVar, overload

from runbase import checks
from runbase.backend.base import Page

T = TypeVar("T")


class Paginator(abc.ABC, Generic[T]):
    """Iterable and indexable; each page is fetched once, when first needed."""

    def __init__(self, per_page: int) -> None:
        self.per_page = checks.positive_int(per_page, "per_page")
        self.objects: list[T] = []
        self._cursor: str | None = None
        self._more = True
        self._length: int | None = None

    @abc.abstractmethod
    def _fetch(self, cursor: str | None) -> Page[Any]:
        """The page after ``cursor`` (the first page for None)."""

    @abc.abstractmethod
    def _convert(self, item: Any) -> T: ...

    @abc.abstractmethod
    def _count(self) -> int: ...

    @property
    def more(self) -> bool:
        """Whether pages are left to load."""
        return self._more

    def _load_page(self) -> bool:
        if not self._more:
            return False
        page = self._fetch(self._cursor)
        self.objects.extend(self._convert(item) for item in page.items)
        self._cursor = page.next_cursor
        self._more = page.next_cursor is not None and bool(page.items)
        return bool(page.items)

    def _load_until(self, count: int) -> None:
        while len(self.objects) < count and self._load_page():
            pass

    def _load_all(self) -> None:
        while self._load_page():
            pass

    def pages(self) -> Iterator[list[T]]:
        """Every page, fetched afresh and not kept: one pass in flat memory, however many."""
        cursor = None
        while True:
            page = self._fetch(cursor)
            if page.items:
                yield [self._convert(item) for item in page.items]
            cursor = page.next_cursor
            if cursor is None or not page.items:
                return

    def __iter__(self) -> Iterator[T]:
        index = 0
        while True:
            if index < len(self.objects):
                yield self.objects[index]
                index += 1
            elif not self._load_page():
                return

    def __len__(self) -> int:
        if not self._more:
            return len(self.objects)
        if self._length is None:
            self._length = self._count()
        return self._length

    @overload
    def __getitem__(self, index: int) -> T: ...

    @overload
    def __getitem__(self, index: slice) -> list[T]: ...

    def __getitem__(self, index: int | slice) -> T | list[T]:
        if isinstance(index, slice):
            forward = index.step is None or index.step > 0
            start_ok = index.start is None or index.start >= 0
            if forward and start_ok and index.stop is not None and index.stop >= 0:
                self._load_until(index.stop)
            else:
                self._load_all()
            return self.objects[index]
        if not isinstance(index, int) or isinstance(index, bool):
            raise TypeError(f"indices must be integers or slices, not {type(index).__name__}")
        if index < 0:
            self._load_all()
        else:
            self._load_until(index + 1)
        return self.objects[index]
