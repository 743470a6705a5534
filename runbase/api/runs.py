"""Runs: a lazy, paginated query over a project's runs, and the Run it yields."""

from __future__ import annotations

import copy
import os
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

from runbase.api import buckets as curves
from runbase.api import history as hist
from runbase.api.client import Client, iso_time
from runbase.api.files import File, Files
from runbase.api.paginator import Paginator
from runbase.api.summary import Summary
from runbase.backend.base import (
    NewRun,
    Page,
    RunChanges,
    RunIdentity,
    RunPath,
    RunQuery,
    RunRecord,
    file_chunks,
)
from runbase.errors import InvalidFilter, NotFound, ReadOnly, Unsupported
from runbase.fields import parse_order
from runbase.names import DEFAULT_PROJECT, new_run_id

if TYPE_CHECKING:
    import pandas as pd
    import polars as pl
    import pyarrow as pa

    from runbase.api import export as export_
    from runbase.api.api import Api
    from runbase.api.sweeps import Sweep

DEFAULT_ORDER = "-created_at"
# Keys the W&B client keeps in the config for itself; they are not hyperparameters.
INTERNAL_CONFIG_KEYS = frozenset({"_wandb", "wandb_version"})
EDITABLE = ("display_name", "tags", "notes", "group", "job_type")
HISTORY_FORMATS = ("default", "pandas", "polars", "arrow")


def check_filters(filters: Any) -> dict[str, Any]:
    """``filters`` as a dict ({} for None); the backend checks what it says."""
    if filters is None:
        return {}
    if not isinstance(filters, Mapping):
        raise InvalidFilter(f"filters must be a dict, not {type(filters).__name__}: {filters!r}")
    return dict(filters)


def check_order(order: Any) -> str:
    """``order`` if it is ``[+|-]KEY`` naming a field runs can be sorted by."""
    if order is None:
        return DEFAULT_ORDER
    parse_order(order)
    return str(order)


class User(str):
    """The user who created a run: compares as the username, with W&B's ``name`` and
    ``username`` attributes."""

    @property
    def username(self) -> str:
        return str(self)

    @property
    def name(self) -> str:
        return str(self)


class Runs(Paginator["Run"]):
    """The runs of a project that match ``filters``, in ``order``, loaded ``per_page`` at a time.

    Iterating again makes no new queries; ``len()`` is one count.
    """

    def __init__(
        self,
        client: Client,
        entity: str,
        project: str,
        filters: dict[str, Any] | None = None,
        order: str | None = None,
        per_page: int = 50,
    ) -> None:
        super().__init__(per_page)
        self.client = client
        self.entity = entity
        self.project = project
        self.filters = check_filters(filters)
        self.order = check_order(order)

    def _fetch(self, cursor: str | None) -> Page[RunRecord]:
        query = RunQuery(self.entity, self.project, self.filters, self.order, self.per_page, cursor)
        page = self.client.call(self.client.backend.query_runs, query)
        if cursor is None and not page.items:
            self._check_project()
        return page

    def _convert(self, item: RunRecord) -> Run:
        return Run(self.client, self.entity, self.project, item.run_id, attrs=item)

    def _count(self) -> int:
        count = self.client.call(
            self.client.backend.count_runs, self.entity, self.project, self.filters
        )
        if not count:
            self._check_project()
        return count

    def _check_project(self) -> None:
        self.client.call(self.client.backend.get_project, self.entity, self.project)

    def _batches(self) -> Iterator[list[Run]]:
        batch: list[Run] = []
        for run in self:
            batch.append(run)
            if len(batch) == self.per_page:
                yield batch
                batch = []
        if batch:
            yield batch

    def histories(
        self,
        samples: int | None = 500,
        keys: list[str] | None = None,
        x_axis: str = "_step",
        format: str = "default",
        stream: str = "default",
    ) -> list[dict[str, Any]] | pd.DataFrame | pl.DataFrame | pa.Table:
        """Sampled history of every run (every row with ``samples=None``), each row with the
        run's ``run_id``, the runs in this collection's order; one backend call per page.

        ``format="default"`` gives a list of dicts; ``"pandas"``, ``"polars"`` and ``"arrow"``
        one table with its columns sorted.
        """
        if format not in HISTORY_FORMATS:
            raise ValueError(f"format must be one of {list(HISTORY_FORMATS)}, not {format!r}")
        wanted = hist.check_sampling(samples, keys, x_axis, stream)
        if samples is None and format != "default":
            found = hist.tables_of_runs(self.client, [(run._path, run.id) for run in self],
                                        wanted, stream)  # fmt: skip
            if found is not None:
                return hist.table_as(found, format)
        rows: list[dict[str, Any]] = []
        for batch in self._batches():
            paths = [run._path for run in batch]
            found = hist.sample_many(self.client, paths, samples, wanted, stream)
            for run in batch:
                rows.extend({**row, "run_id": run.id} for row in found[run._path])
        if format == "pandas":
            return hist.to_frame(rows, sort_columns=True)
        if format == "polars":
            return hist.to_polars(rows, sort_columns=True)
        if format == "arrow":
            return hist.to_arrow(rows, sort_columns=True)
        return rows

    def bucketed_histories(
        self,
        key: str,
        buckets: int = 1000,
        x_axis: str = "_step",
        x_min: float | None = None,
        x_max: float | None = None,
        pandas: bool = True,
        stream: str = "default",
    ) -> pd.DataFrame | list[dict[str, Any]]:
        """``Run.bucketed_history`` of every run, each row after its run's ``run_id``, the
        runs in this collection's order; one backend call per page of runs."""
        curve = curves.Curve(key, buckets, x_axis, x_min, x_max, stream)
        rows: list[dict[str, Any]] = []
        for batch in self._batches():
            found = curve.read(self.client, [run._path for run in batch])
            for run in batch:
                rows.extend(curves.rows(found[run._path], run.id))
        return curves.to_frame(rows, ("run_id", *curves.COLUMNS)) if pandas else rows

    def to_arrow(self) -> pa.Table:
        """The runs table, one row per run in this collection's order: ``id name state
        created_at heartbeat_at tags group job_type user``, then ``config.KEY`` and
        ``summary.KEY`` columns (nested dicts flattened with dots); see docs/api.md."""
        from runbase.api import export

        return export.runs_table(self)

    def to_pandas(self) -> pd.DataFrame:
        """``to_arrow()`` as a DataFrame (ints as ``Int64``, bools as ``boolean``)."""
        from runbase.api import export

        return export.runs_frame(self)

    def export(
        self,
        dir: str | os.PathLike[str],
        format: str = "parquet",
        keys: list[str] | None = None,
        stream: str = "default",
        progress: export_.Progress | None = None,
    ) -> export_.Exported:
        """Write ``runs.<format>`` (``to_arrow()``) and ``history.<format>`` (every row of
        every run, unsampled: ``run_id``, ``_step`` and the keys, or just ``keys``) into
        ``dir``; ``format`` is ``parquet``, ``csv`` or ``jsonl``. Memory stays flat."""
        from runbase.api import export

        return export.export(self, Path(dir), format, keys, stream, progress)

    def __repr__(self) -> str:
        return f"<Runs {self.entity}/{self.project}>"


class Run(RunIdentity):
    """One run: its attributes as fetched, its history and files."""

    def __init__(
        self,
        client: Client,
        entity: str,
        project: str,
        run_id: str,
        attrs: RunRecord | Mapping[str, Any] | None = None,
    ) -> None:
        self.client = client
        self._path = RunPath(entity, project, run_id)
        self._attrs: dict[str, Any] = {}
        self._config: dict[str, Any] = {}
        self._summary: Summary | None = None
        self._stored: dict[str, Any] = {}
        if attrs:
            self._set_attrs(attrs)
        else:
            self.load(force=True)

    @classmethod
    def create(
        cls,
        api: Api,
        run_id: str | None = None,
        project: str | None = None,
        entity: str | None = None,
    ) -> Run:
        """Create a run in the project (the Api's default, else ``uncategorized``)."""
        run_id = run_id or new_run_id()
        project = project or api.settings.get("project") or DEFAULT_PROJECT
        entity = entity or api.default_entity
        record = api.client.call(
            api.client.backend.create_run, RunPath(entity, project, run_id), NewRun()
        )
        return cls(api.client, entity, project, run_id, attrs=record)

    def load(self, force: bool = False) -> dict[str, Any]:
        """Fetch the run's attributes (again, with ``force``)."""
        if force or not self._attrs:
            self._set_attrs(self.client.call(self.client.backend.get_run, self._path))
        return self._attrs

    def _set_attrs(self, attrs: RunRecord | Mapping[str, Any]) -> None:
        values = dict(attrs) if isinstance(attrs, Mapping) else dict(vars(attrs))
        values["tags"] = list(values.get("tags") or [])
        self._attrs = values
        config = values.get("config") or {}
        user_config = {k: v for k, v in config.items() if k not in INTERNAL_CONFIG_KEYS}
        self._config.clear()
        self._config.update(user_config)
        summary = dict(values.get("summary") or {})
        if self._summary is None:
            self._summary = Summary(summary, self._merge_summary, self._replace_summary)
        else:
            self._summary._reset(summary)
        self._stored = copy.deepcopy({k: values.get(k) for k in EDITABLE})
        self._stored["config"] = copy.deepcopy(user_config)

    # identity
    @property
    def storage_id(self) -> Any:
        return self._attrs.get("storage_id")

    @property
    def url(self) -> str:
        return self.client.url(self.entity, self.project, "runs", self.id)

    @property
    def user(self) -> User:
        return User(self._attrs.get("username") or self.entity)

    @property
    def username(self) -> str:
        return str(self.user)

    # editable attributes
    @property
    def name(self) -> str:
        """The display name; set it and call ``update()`` to store it."""
        return self._attrs.get("display_name") or self.id

    @name.setter
    def name(self, value: str) -> None:
        self._attrs["display_name"] = value

    display_name = name

    @property
    def tags(self) -> list[str]:
        tags = self._attrs.get("tags")
        if tags is None:
            tags = self._attrs["tags"] = []
        return tags

    @tags.setter
    def tags(self, value: list[str]) -> None:
        self._attrs["tags"] = list(value)

    @property
    def notes(self) -> str | None:
        return self._attrs.get("notes")

    @notes.setter
    def notes(self, value: str | None) -> None:
        self._attrs["notes"] = value

    @property
    def group(self) -> str | None:
        return self._attrs.get("group")

    @group.setter
    def group(self, value: str | None) -> None:
        self._attrs["group"] = value

    @property
    def job_type(self) -> str | None:
        return self._attrs.get("job_type")

    @job_type.setter
    def job_type(self, value: str | None) -> None:
        self._attrs["job_type"] = value

    @property
    def config(self) -> dict[str, Any]:
        """Hyperparameters as plain values; edit them and call ``update()`` to store them."""
        return self._config

    @property
    def rawconfig(self) -> dict[str, Any]:
        """The stored config, keys kept for the W&B client included."""
        return dict(self._attrs.get("config") or {})

    @property
    def summary(self) -> Summary:
        """The last value of each metric; its writes are stored at once."""
        assert self._summary is not None
        return self._summary

    @property
    def summary_metrics(self) -> dict[str, Any]:
        return dict(self.summary)

    # read-only attributes
    @property
    def state(self) -> str:
        return str(self._attrs.get("state", "not found"))

    @property
    def created_at(self) -> str | None:
        return iso_time(self._attrs.get("created_at"))

    @property
    def heartbeat_at(self) -> str | None:
        return iso_time(self._attrs.get("heartbeat_at"))

    @property
    def system_metrics(self) -> dict[str, Any]:
        return dict(self._attrs.get("system_metrics") or {})

    @property
    def metadata(self) -> dict[str, Any]:
        return dict(self._attrs.get("metadata") or {})

    @property
    def read_only(self) -> bool:
        return bool(self._attrs.get("read_only", False))

    @property
    def sweep_name(self) -> str | None:
        return self._attrs.get("sweep")

    @property
    def sweep(self) -> Sweep | None:
        from runbase.api.sweeps import Sweep

        if not self.sweep_name:
            return None
        path = RunPath(self.entity, self.project, self.sweep_name)
        return self.client.cached(("sweep", path), lambda: Sweep(self.client, *path))

    @property
    def history_line_count(self) -> int:
        return self._attrs.get("history_line_count") or 0

    @property
    def lastHistoryStep(self) -> int:  # noqa: N802 (W&B's name)
        last = self._attrs.get("last_step")
        return -1 if last is None else last

    @property
    def history_keys(self) -> dict[str, Any]:
        """W&B's shape: ``{"keys": {key: {"typeCounts": [...]}}, "lastStep": step}``."""
        found = self.client.cached(
            ("history_keys", self._path, "default"),
            lambda: self.client.call(self.client.backend.history_keys, self._path, "default"),
        )
        keys = {
            key: {"typeCounts": [{"type": "number", "count": count}]}
            for key, count in found.keys.items()
        }
        return {"keys": keys, "lastStep": -1 if found.last_step is None else found.last_step}

    # writes
    def _check_writable(self) -> None:
        if self.read_only:
            raise ReadOnly(f"run {self.path} is read-only")

    def _merge_summary(self, changes: dict[str, Any]) -> None:
        self._check_writable()
        self.client.call(self.client.backend.update_summary, self._path, changes)

    def _replace_summary(self, values: dict[str, Any]) -> None:
        self._check_writable()
        self.client.call(self.client.backend.update_run, self._path, RunChanges(summary=values))

    def update(self) -> None:
        """Store changes to name, tags, notes, group, job_type, config and summary."""
        self._check_writable()
        edited = {k: copy.deepcopy(self._attrs.get(k)) for k in EDITABLE}
        changes: dict[str, Any] = {k: v for k, v in edited.items() if v != self._stored.get(k)}
        if self._config != self._stored["config"]:
            internal = {k: v for k, v in self.rawconfig.items() if k in INTERNAL_CONFIG_KEYS}
            changes["config"] = {**internal, **copy.deepcopy(self._config)}
        if self.summary.dirty:
            changes["summary"] = copy.deepcopy(self.summary._json_dict)
        if "tags" in changes:
            changes["tags"] = tuple(changes["tags"])
        if changes:
            update_run = self.client.backend.update_run
            self._set_attrs(self.client.call(update_run, self._path, RunChanges(**changes)))
            self.client.forget(self._path)

    def delete(self, delete_artifacts: bool = False) -> None:
        """Delete the run: its history, files and fields. runbase keeps the artifacts a run
        logged (they stay, without it): ``delete_artifacts=True`` is refused."""
        if delete_artifacts:
            raise Unsupported("runbase does not delete artifacts with their run")
        self._check_writable()
        self.client.call(self.client.backend.delete_run, self._path)
        self.client.forget(self._path)

    # files
    def files(self, names: list[str] | None = None, per_page: int = 50) -> Files:
        """The run's files (only ``names`` when given)."""
        names = list(names or [])
        key = ("files", self._path, tuple(names), per_page)
        return self.client.cached(key, lambda: Files(self.client, self, names, per_page))

    def file(self, name: str) -> File:
        """One file of the run, by name."""
        found = self.client.cached(
            ("file", self._path, name),
            lambda: self.client.call(self.client.backend.list_files, self._path, [name], 1, None),
        )
        if not found.items:
            raise NotFound(f"file {name!r} not found in run {self.path}")
        return File(self.client, found.items[0], run=self)

    def upload_file(self, path: str | os.PathLike[str], root: str = ".") -> File:
        """Store a local file with the run, named by its path relative to ``root``."""
        self._check_writable()
        local = Path(path)
        name = os.path.relpath(local.resolve(), Path(root).resolve()).replace(os.sep, "/")
        with open(local, "rb") as stream:
            record = self.client.call(
                self.client.backend.put_file, self._path, name, file_chunks(stream)
            )
        self.client.forget(self._path)
        return File(self.client, record, run=self)

    # history
    def history(
        self,
        samples: int | None = 500,
        keys: list[str] | None = None,
        x_axis: str = "_step",
        pandas: bool = True,
        stream: str = "default",
    ) -> pd.DataFrame | list[dict[str, Any]]:
        """At most ``samples`` rows evenly spread over the run, first and last included
        (``samples=None``: every row).

        With ``keys``, only rows holding all of them (and ``x_axis``), with just those keys.
        """
        wanted = hist.check_sampling(samples, keys, x_axis, stream)
        if pandas:
            return hist.frame(self.client, self._path, samples, wanted, stream)
        return hist.sample(self.client, self._path, samples, wanted, stream)

    def scan_history(
        self,
        keys: list[str] | None = None,
        page_size: int = 1000,
        min_step: int | None = None,
        max_step: int | None = None,
    ) -> hist.HistoryScan:
        """Every row in step order, unsampled, ``page_size`` rows per fetch.

        With ``keys``, only rows holding all of them, with just those keys. ``min_step`` is
        inclusive, ``max_step`` exclusive.
        """
        return hist.HistoryScan(self.client, self._path, keys, page_size, min_step, max_step)

    def bucketed_history(
        self,
        key: str,
        buckets: int = 1000,
        x_axis: str = "_step",
        x_min: float | None = None,
        x_max: float | None = None,
        pandas: bool = True,
        stream: str = "default",
    ) -> pd.DataFrame | list[dict[str, Any]]:
        """The curve of ``key`` over ``x_axis`` for a chart, spikes kept: at most ``buckets``
        rows in x order, each a bucket's last point (``x``, ``y``), its least and greatest y
        (``y_min``, ``y_max``) and its number of points (``count``); every point, as a
        bucket of its own, when the range holds no more than ``buckets``.

        A point is a row holding both keys as finite numbers (not bools); ``x_min`` and
        ``x_max`` are inclusive. ``Backend.bucketed_histories`` says how buckets are cut.
        """
        curve = curves.Curve(key, buckets, x_axis, x_min, x_max, stream)
        rows = curves.rows(curve.read(self.client, [self._path])[self._path])
        return curves.to_frame(rows) if pandas else rows

    def __repr__(self) -> str:
        return f"<Run {self.path} ({self.state})>"
