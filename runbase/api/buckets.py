"""Bucketed curves for charts: ``Run.bucketed_history`` and ``Runs.bucketed_histories``."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from runbase.api.client import Client
from runbase.backend.base import Bucket, RunPath, check_bucketing

if TYPE_CHECKING:
    import pandas as pd

COLUMNS = ("x", "y", "y_min", "y_max", "count")


class Curve:
    """What a bucketed read asks for, checked when made: ``InvalidInput`` naming the
    argument at fault."""

    def __init__(
        self,
        key: Any,
        buckets: Any,
        x_axis: Any,
        x_min: Any,
        x_max: Any,
        stream: Any,
    ) -> None:
        check_bucketing(stream, key, x_axis, buckets, x_min, x_max)
        self.key: str = key
        self.buckets: int = buckets
        self.x_axis: str = x_axis
        self.x_min: float | None = x_min
        self.x_max: float | None = x_max
        self.stream: str = stream

    def _args(self) -> tuple[Any, ...]:
        return (self.stream, self.key, self.x_axis, self.buckets, self.x_min, self.x_max)

    def read(self, client: Client, paths: list[RunPath]) -> dict[RunPath, list[Bucket]]:
        """The buckets of each run, in one backend call, kept until ``flush()``."""
        backend = client.backend

        def fetch() -> dict[RunPath, list[Bucket]]:
            found = client.call(backend.bucketed_histories, paths, *self._args())
            return dict(zip(paths, found, strict=True))

        return client.cached(("buckets", frozenset(paths), *self._args()), fetch)


def rows(buckets: list[Bucket], run_id: str | None = None) -> list[dict[str, Any]]:
    """The buckets as dicts of ``COLUMNS``, after a ``run_id`` when given."""
    first = {} if run_id is None else {"run_id": run_id}
    return [
        {**first, "x": b.x, "y": b.y, "y_min": b.y_min, "y_max": b.y_max, "count": b.count}
        for b in buckets
    ]


def to_frame(rows: list[dict[str, Any]], columns: tuple[str, ...] = COLUMNS) -> pd.DataFrame:
    """The rows as a DataFrame of ``columns``, in that order (even when there are none)."""
    import pandas as pd

    frame: pd.DataFrame = pd.DataFrame.from_records(rows, columns=list(columns))
    return frame
