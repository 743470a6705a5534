"""The request bodies of the native API: one pydantic model each, turned into backend values;
and the answers that are not backend records, as the OpenAPI document describes them.

Scalars are strict (``"3"`` is not an integer); unknown fields are refused. Documents arrive
tagged by the codec of ``runbase.documents`` and are untagged here.
"""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict, StrictFloat, StrictInt, StrictStr

from runbase import documents
from runbase.backend.base import (
    HistoryQuery,
    HistoryRow,
    NewRun,
    ProjectActivity,
    RunChanges,
    RunPath,
    RunQuery,
)
from runbase.backend.wire import history_row, run_path

Document = dict[StrictStr, Any]


class Body(BaseModel):
    model_config = ConfigDict(extra="forbid")

    def fields(self) -> dict[str, Any]:
        """The fields by name (``dict(self)`` would take a ``keys`` field for a mapping)."""
        return {name: getattr(self, name) for name in type(self).model_fields}


class NewRunBody(Body):
    display_name: StrictStr | None = None
    config: Document = {}
    tags: list[StrictStr] = []
    notes: StrictStr | None = None
    group: StrictStr | None = None
    job_type: StrictStr | None = None
    sweep: StrictStr | None = None
    username: StrictStr | None = None
    metadata: Document = {}
    resume: StrictStr | None = None

    def value(self) -> NewRun:
        values = self.fields()
        values.update(
            tags=tuple(self.tags),
            config=documents.untag(self.config),
            metadata=documents.untag(self.metadata),
        )
        return NewRun(**values)


DOCUMENT_FIELDS = ("config", "summary", "metadata", "system_metrics")


class RunChangesBody(Body):
    """Only the fields present are changed; ``null`` sets a field to None."""

    display_name: StrictStr | None = None
    tags: list[StrictStr] | None = None
    notes: StrictStr | None = None
    group: StrictStr | None = None
    job_type: StrictStr | None = None
    sweep: StrictStr | None = None
    config: Document | None = None
    summary: Document | None = None
    metadata: Document | None = None
    system_metrics: Document | None = None
    state: StrictStr | None = None
    exit_code: StrictInt | None = None

    def value(self) -> RunChanges:
        values: dict[str, Any] = {name: getattr(self, name) for name in self.model_fields_set}
        for name in DOCUMENT_FIELDS:
            if name in values:
                values[name] = documents.untag(values[name])
        if values.get("tags") is not None:
            values["tags"] = tuple(values["tags"])
        return RunChanges(**values)


class DocumentBody(Body):
    """Top-level keys to merge into a stored document."""

    changes: Document

    def value(self) -> dict[str, Any]:
        untagged: dict[str, Any] = documents.untag(self.changes)
        return untagged


class FinishBody(Body):
    state: StrictStr
    exit_code: StrictInt | None = None


class RunQueryBody(Body):
    entity: StrictStr
    project: StrictStr
    filters: Document = {}
    order: StrictStr = "-created_at"
    per_page: StrictInt = 50
    cursor: StrictStr | None = None
    columns: list[StrictStr] | None = None

    def value(self) -> RunQuery:
        columns = None if self.columns is None else tuple(self.columns)
        filters = documents.untag(self.filters)
        return RunQuery(**{**self.fields(), "filters": filters, "columns": columns})


class RunCountBody(Body):
    entity: StrictStr
    project: StrictStr
    filters: Document = {}

    def filters_value(self) -> dict[str, Any]:
        untagged: dict[str, Any] = documents.untag(self.filters)
        return untagged


class AppendBody(Body):
    """Rows as ``[idx, step, keys, row]``, the row as JSON text."""

    stream: StrictStr = "default"
    rows: list[tuple[StrictInt, StrictInt, list[StrictStr], StrictStr]] = []
    latest: Document = {}

    def history_rows(self) -> list[HistoryRow]:
        return [history_row(row) for row in self.rows]

    def latest_value(self) -> dict[str, Any]:
        untagged: dict[str, Any] = documents.untag(self.latest)
        return untagged


class SampleBody(Body):
    stream: StrictStr = "default"
    samples: StrictInt
    keys: list[StrictStr] | None = None


class SampleManyBody(SampleBody):
    paths: list[tuple[StrictStr, StrictStr, StrictStr]]

    def run_paths(self) -> list[RunPath]:
        return [run_path(path) for path in self.paths]


class BucketsBody(Body):
    """A chart's curve of ``key`` over ``x_axis`` for each run of ``paths``;
    ``x_min`` and ``x_max`` are inclusive."""

    paths: list[tuple[StrictStr, StrictStr, StrictStr]]
    stream: StrictStr = "default"
    key: StrictStr
    x_axis: StrictStr = "_step"
    buckets: StrictInt = 1000
    x_min: StrictInt | StrictFloat | None = None
    x_max: StrictInt | StrictFloat | None = None

    def run_paths(self) -> list[RunPath]:
        return [run_path(path) for path in self.paths]


class ScanBody(Body):
    stream: StrictStr = "default"
    keys: list[StrictStr] | None = None
    min_step: StrictInt | None = None
    max_step: StrictInt | None = None
    page_size: StrictInt = 1000
    cursor: StrictStr | None = None

    def value(self, path: RunPath) -> HistoryQuery:
        keys = None if self.keys is None else tuple(self.keys)
        return HistoryQuery(path, **{**self.fields(), "keys": keys})


class SweepBody(Body):
    entity: StrictStr
    project: StrictStr
    config: Document

    def value(self) -> dict[str, Any]:
        untagged: dict[str, Any] = documents.untag(self.config)
        return untagged


class ErrorBody(BaseModel):
    """What every error answer holds: a stable ``code`` (see ``runbase.errors``) and a
    message that names the problem."""

    code: str
    message: str


class Answer(BaseModel):
    model_config = ConfigDict(extra="forbid")


class Done(Answer):
    """A change was stored; nothing to tell."""


class OverviewAnswer(Answer):
    projects: list[ProjectActivity]


class SessionAnswer(Answer):
    """Who the dashboard's viewer is; ``csrf`` is the token a cookie session's changes carry
    (None without one), ``login`` whether the server has accounts to log in and out of."""

    user: str
    entities: list[str]
    csrf: str | None
    login: bool


class EntityAnswer(Answer):
    entity: str


class CountAnswer(Answer):
    count: int


class RowsAnswer(Answer):
    rows: list[str]


class RowsOfRunsAnswer(Answer):
    rows: list[list[str]]


class BucketAnswer(Answer):
    """One bucket (``runbase.backend.base.Bucket``)."""

    x: float
    y: float
    y_min: float
    y_max: float
    count: int


class BucketsAnswer(Answer):
    """Each run's buckets in x order, in the order of the request's ``paths``."""

    buckets: list[list[BucketAnswer]]
