"""The backend interface: the operations the SDK and the public API need, and their values.

``LocalBackend`` implements it over a store in this process; an HTTP implementation speaks the
same operations to a server. The SDK and the public API are written once, against this.
"""

from __future__ import annotations

import abc
import enum
import math
from collections.abc import Generator, Iterable, Iterator
from dataclasses import dataclass, field, fields, replace
from typing import TYPE_CHECKING, Any, BinaryIO, Generic, NamedTuple, TypeVar

from runbase import checks
from runbase.errors import InvalidInput, Unsupported

if TYPE_CHECKING:
    from runbase.backend.artifacts import Artifacts

T = TypeVar("T")

STREAMS = checks.STREAMS
RUN_STATES = ("running", "finished", "crashed", "failed", "aborted", "killed")
RESUME_MODES = (None, "allow", "must", "never", "auto")


class RunPath(NamedTuple):
    """``entity/project/run_id``: how a run is named everywhere outside the store."""

    entity: str
    project: str
    run_id: str

    def __str__(self) -> str:
        return f"{self.entity}/{self.project}/{self.run_id}"


class RunIdentity:
    """``id``, ``entity``, ``project`` and ``path`` of an object that holds a ``_path``."""

    _path: RunPath

    @property
    def id(self) -> str:
        return self._path.run_id

    @property
    def entity(self) -> str:
        return self._path.entity

    @property
    def project(self) -> str:
        return self._path.project

    @property
    def path(self) -> str:
        """``entity/project/run_id``."""
        return str(self._path)


@dataclass(frozen=True)
class RunRecord:
    """A run as stored. Times are seconds since the epoch (UTC). ``state`` is derived when
    read: a running run whose heartbeat is older than the backend's timeout reads
    ``crashed``. ``read_only`` tells whether the caller may not change the run."""

    storage_id: int
    entity: str
    project: str
    run_id: str
    display_name: str
    state: str
    config: dict[str, Any]
    summary: dict[str, Any]
    system_metrics: dict[str, Any]
    metadata: dict[str, Any]
    tags: tuple[str, ...]
    notes: str | None
    group: str | None
    job_type: str | None
    sweep: str | None
    username: str
    created_at: float
    heartbeat_at: float
    updated_at: float
    history_line_count: int
    system_line_count: int
    last_step: int | None
    exit_code: int | None
    read_only: bool = False

    @property
    def path(self) -> RunPath:
        return RunPath(self.entity, self.project, self.run_id)


@dataclass(frozen=True)
class NewRun:
    """What ``create_run`` needs beyond the path."""

    display_name: str | None = None
    config: dict[str, Any] = field(default_factory=dict)
    tags: tuple[str, ...] = ()
    notes: str | None = None
    group: str | None = None
    job_type: str | None = None
    sweep: str | None = None
    username: str | None = None
    metadata: dict[str, Any] = field(default_factory=dict)
    resume: str | None = None


class Unset(enum.Enum):
    """The value of a ``RunChanges`` field that does not change."""

    UNSET = "unset"


UNSET = Unset.UNSET


@dataclass(frozen=True)
class RunChanges:
    """Fields of a run to set; a field left ``UNSET`` keeps its stored value. ``config`` and
    ``summary`` replace the stored documents (merges are ``update_config``/``update_summary``)."""

    display_name: str | Unset = UNSET
    tags: tuple[str, ...] | Unset = UNSET
    notes: str | None | Unset = UNSET
    group: str | None | Unset = UNSET
    job_type: str | None | Unset = UNSET
    sweep: str | None | Unset = UNSET
    config: dict[str, Any] | Unset = UNSET
    summary: dict[str, Any] | Unset = UNSET
    metadata: dict[str, Any] | Unset = UNSET
    system_metrics: dict[str, Any] | Unset = UNSET
    state: str | Unset = UNSET
    exit_code: int | None | Unset = UNSET

    def values(self) -> dict[str, Any]:
        """The fields that are set, by name."""
        return {
            f.name: getattr(self, f.name)
            for f in fields(self)
            if getattr(self, f.name) is not UNSET
        }

    def __bool__(self) -> bool:
        return bool(self.values())


TEXT_FIELDS = {"display_name": 256, "group": 256, "job_type": 256, "sweep": 128, "notes": None}


def check_path(path: RunPath) -> RunPath:
    """``InvalidInput`` unless each part is a non-empty string without '/' of fitting length."""
    for part in RunPath._fields:
        checks.name_part(getattr(path, part), part)
    return path


def _check_text(name: str, value: Any) -> None:
    limit = TEXT_FIELDS[name]
    if value is not None and (not isinstance(value, str) or (limit and len(value) > limit)):
        size = f" of at most {limit} characters" if limit else ""
        raise InvalidInput(f"{name} must be a string{size}, not {value!r}")


def _check_tags(value: Any) -> None:
    if not isinstance(value, (list, tuple)) or not all(isinstance(tag, str) for tag in value):
        raise InvalidInput(f"tags must be a list of strings, not {value!r}")


def _check_dict(name: str, value: Any) -> None:
    if not isinstance(value, dict):
        raise InvalidInput(f"{name} must be a dict, not {type(value).__name__}")
    check_document(name, value)


def check_new_run(new: NewRun) -> NewRun:
    """``InvalidInput`` naming the first field of a new run that has the wrong type."""
    for name in TEXT_FIELDS:
        _check_text(name, getattr(new, name))
    _check_tags(new.tags)
    _check_dict("config", new.config)
    _check_dict("metadata", new.metadata)
    if new.resume not in RESUME_MODES:
        raise InvalidInput(f"resume must be one of {RESUME_MODES[1:]} or None, not {new.resume!r}")
    return new


JSON_SCALARS = (str, int, float, bool, type(None))


def check_document(name: str, value: Any) -> Any:
    """``InvalidInput`` naming the first place in ``value`` that JSON cannot hold."""
    if isinstance(value, JSON_SCALARS):
        return value
    if isinstance(value, dict):
        for key, item in value.items():
            if not isinstance(key, str):
                raise InvalidInput(f"{name}: keys must be strings, not {key!r}")
            check_document(f"{name}.{key}", item)
        return value
    if isinstance(value, (list, tuple)):
        for index, item in enumerate(value):
            check_document(f"{name}[{index}]", item)
        return value
    raise InvalidInput(f"{name} cannot be stored: {type(value).__name__} is not a JSON value")


def check_run_changes(changes: RunChanges) -> RunChanges:
    """``InvalidInput`` naming the first change to a run's fields that has the wrong type."""
    if not isinstance(changes, RunChanges):
        raise InvalidInput(f"run changes must be a RunChanges, not {type(changes).__name__}")
    for name, value in changes.values().items():
        if name in TEXT_FIELDS:
            _check_text(name, value)
            if name == "display_name" and value is None:
                raise InvalidInput("display_name must be a string, not None")
        elif name == "tags":
            _check_tags(value)
        elif name in ("config", "summary", "metadata", "system_metrics"):
            _check_dict(name, value)
        elif name == "state" and value not in RUN_STATES:
            raise InvalidInput(f"state must be one of {RUN_STATES}, not {value!r}")
        elif name == "exit_code" and not (value is None or type(value) is int):
            raise InvalidInput(f"exit_code must be an integer or None, not {value!r}")
    return changes


@dataclass(frozen=True)
class ProjectRecord:
    entity: str
    name: str
    created_at: float
    run_count: int = 0


@dataclass(frozen=True)
class ProjectActivity:
    """A project as the dashboard lists it; ``last_activity`` is None without runs."""

    entity: str
    name: str
    run_count: int
    last_activity: float | None


@dataclass(frozen=True)
class KeyList:
    """Some of a project's document keys, and how many match in all."""

    keys: list[str]
    total: int


@dataclass(frozen=True)
class FileRecord:
    name: str
    size: int
    md5: str
    mimetype: str
    updated_at: float


@dataclass(frozen=True)
class SweepRecord:
    entity: str
    project: str
    sweep_id: str
    name: str
    config: dict[str, Any]
    state: str
    created_at: float


# A history row as a read gives it: its JSON text (the hot tier; NaN and infinities as tokens)
# or, read from a segment in this process, the decoded row. Rows never cross HTTP as dicts.
StoredRow = str | dict[str, Any]


class HistoryRow(NamedTuple):
    """One history row ready to store: ``keys`` its sorted leaf keys, ``row`` its JSON text.

    Rows of a stream have dense indexes (0, 1, 2, ...) and steps that grow with the index."""

    idx: int
    step: int
    keys: tuple[str, ...]
    row: str


@dataclass(frozen=True)
class RunQuery:
    """A page request for runs of one project. ``cursor`` is the previous page's
    ``next_cursor``; ``columns`` (``config.X``, ``summary_metrics.X``) keeps only those leaves
    of each run's config and summary, keyed by their path, and drops the other documents."""

    entity: str
    project: str
    filters: dict[str, Any] = field(default_factory=dict)
    order: str = "-created_at"
    per_page: int = 50
    cursor: str | None = None
    columns: tuple[str, ...] | None = None


@dataclass(frozen=True)
class HistoryQuery:
    """A page request for a run's history rows in index order.

    ``keys``: only rows that hold all of them. ``min_step`` is inclusive, ``max_step``
    exclusive. ``cursor`` is the previous page's ``next_cursor``: it carries the resolved
    index bounds, so later pages do not look the steps up again.
    """

    path: RunPath
    stream: str = "default"
    keys: tuple[str, ...] | None = None
    min_step: int | None = None
    max_step: int | None = None
    page_size: int = 1000
    cursor: str | None = None


@dataclass(frozen=True)
class Page(Generic[T]):
    """Items of one page; ``next_cursor`` asks for the next one, None after the last."""

    items: list[T]
    next_cursor: str | None


@dataclass(frozen=True)
class HistoryKeys:
    """Which keys a stream holds (with the number of rows that hold each) and its last step."""

    keys: dict[str, int]
    last_step: int | None
    line_count: int


class Bucket(NamedTuple):
    """One bucket of a chart's curve: its last point (``x``, ``y``: the point of greatest x,
    the later row on a tie), the least and greatest y of its points (floats) and how many
    points it holds. A raw point is a bucket of its own: ``y_min == y_max == y``, count 1.
    A tuple, not a dataclass: a curve holds thousands, and tuples of numbers cost the
    garbage collector nothing once seen. On the wire, an object like the records."""

    x: float
    y: float
    y_min: float
    y_max: float
    count: int  # type: ignore[assignment]  # the field, not tuple.count


def check_bucketing(
    stream: Any, key: Any, x_axis: Any, buckets: Any, x_min: Any, x_max: Any
) -> None:
    """``InvalidInput`` naming the first argument of a bucketed read that is wrong."""
    checks.stream(stream)
    for name, value in (("key", key), ("x_axis", x_axis)):
        if not isinstance(value, str):
            raise InvalidInput(f"{name} must be a string, not {value!r}")
    checks.positive_int(buckets, "buckets")
    for name, value in (("x_min", x_min), ("x_max", x_max)):
        if value is not None and not _is_finite_number(value):
            raise InvalidInput(f"{name} must be a finite number or None, not {value!r}")
    if x_min is not None and x_max is not None and x_min > x_max:
        raise InvalidInput(f"x_min must not be greater than x_max, not {x_min!r} > {x_max!r}")


def _is_finite_number(value: Any) -> bool:
    if not isinstance(value, (int, float)) or isinstance(value, bool):
        return False
    try:
        return math.isfinite(value)
    except OverflowError:  # an int too large for a float
        return False


Chunks = Iterable[bytes]
CHUNK_SIZE = 1 << 20


def file_chunks(file: BinaryIO, size: int = CHUNK_SIZE) -> Iterator[bytes]:
    """The bytes of an open binary file, ``size`` at a time."""
    while chunk := file.read(size):
        yield chunk


class Backend(abc.ABC):
    """Everything the SDK and the public API ask of storage, local or remote.

    Arguments and results are immutable values that JSON can carry; a backend raises only
    ``RunbaseError``s."""

    # identity
    @abc.abstractmethod
    def default_entity(self) -> str: ...

    # runs
    @abc.abstractmethod
    def create_run(self, path: RunPath, new: NewRun) -> RunRecord:
        """Create the run, or continue it as ``new.resume`` allows (keeps config and summary)."""

    @abc.abstractmethod
    def get_run(self, path: RunPath) -> RunRecord: ...

    @abc.abstractmethod
    def update_run(self, path: RunPath, changes: RunChanges) -> RunRecord:
        """Set the fields ``changes`` sets; returns the run as stored after."""

    @abc.abstractmethod
    def update_config(self, path: RunPath, changes: dict[str, Any]) -> None:
        """Merge top-level keys into the stored config."""

    @abc.abstractmethod
    def update_summary(self, path: RunPath, changes: dict[str, Any]) -> None:
        """Merge top-level keys into the stored summary."""

    @abc.abstractmethod
    def delete_run(self, path: RunPath) -> None:
        """Delete the run: its history, files and fields (artifacts it logged stay)."""

    @abc.abstractmethod
    def heartbeat(self, path: RunPath) -> None: ...

    @abc.abstractmethod
    def finish_run(self, path: RunPath, state: str, exit_code: int | None) -> None: ...

    @abc.abstractmethod
    def query_runs(self, query: RunQuery) -> Page[RunRecord]: ...

    @abc.abstractmethod
    def count_runs(self, entity: str, project: str, filters: dict[str, Any]) -> int: ...

    # history
    @abc.abstractmethod
    def append_history(
        self, path: RunPath, stream: str, rows: list[HistoryRow], latest: dict[str, Any]
    ) -> None:
        """Store rows, in index order (a retried row, same ``idx``, is stored once), and merge
        ``latest`` into the summary (``default``) or the system metrics (``system``), in one
        transaction."""

    @abc.abstractmethod
    def history_keys(self, path: RunPath, stream: str = "default") -> HistoryKeys: ...

    @abc.abstractmethod
    def sample_history(
        self, path: RunPath, stream: str, samples: int, keys: list[str] | None
    ) -> list[str]:
        """At most ``samples`` rows (JSON text) evenly spread, first and last included; with
        ``keys``, only rows holding all of them."""

    @abc.abstractmethod
    def scan_history(self, query: HistoryQuery) -> Page[StoredRow]:
        """One page of rows in index order."""

    def scan_pages(self, query: HistoryQuery) -> Generator[Page[StoredRow], None, None]:
        """Every page of ``query`` from its cursor on, each ``query.page_size`` rows at most;
        errors are raised by iteration. A backend may send the pages ahead of the reader."""
        while True:
            page = self.scan_history(query)
            yield page
            if page.next_cursor is None:
                return
            query = replace(query, cursor=page.next_cursor)

    @abc.abstractmethod
    def history_segments(self, path: RunPath, stream: str = "default") -> Iterator[bytes]:
        """Every row of the stream in index order as Parquet blobs in the segment format of
        ``runbase.columnar``: the stored segments' bytes as they are, then the hot rows
        encoded alike. A blob may begin with rows an earlier one held (a compaction ran
        meanwhile): keep only rows past the last index read. An unknown run raises at once;
        errors met later are raised by iteration."""

    @abc.abstractmethod
    def sample_histories(
        self, paths: list[RunPath], stream: str, samples: int, keys: list[str] | None
    ) -> list[list[str]]:
        """``sample_history`` for many runs at once, in the order of ``paths``."""

    @abc.abstractmethod
    def bucketed_histories(
        self,
        paths: list[RunPath],
        stream: str,
        key: str,
        x_axis: str,
        buckets: int,
        x_min: float | None,
        x_max: float | None,
    ) -> list[list[Bucket]]:
        """A chart's curve of ``key`` over ``x_axis`` for each run, in the order of ``paths``:
        at most ``buckets`` buckets in x order, or each point as its own bucket when the
        range holds no more than ``buckets`` points.

        A point is a row of the stream holding both keys with real numbers (int or float,
        not bool), both finite: rows whose x or y is missing, None, NaN, infinite or of
        another type are no points. ``x_min`` and ``x_max`` are inclusive. The buckets split
        ``[lo, hi]`` (``x_min``/``x_max``, else the least/greatest x of the points) into
        equal widths: a point goes to ``floor((x - lo) / (hi - lo) * buckets)``, the last
        one when ``x == hi``; empty buckets are left out."""

    # files
    @abc.abstractmethod
    def put_file(self, path: RunPath, name: str, chunks: Chunks) -> FileRecord:
        """Store a file from its bytes, given as chunks (``file_chunks`` reads an open file)."""

    @abc.abstractmethod
    def list_files(
        self, path: RunPath, names: list[str], per_page: int, cursor: str | None
    ) -> Page[FileRecord]: ...

    @abc.abstractmethod
    def count_files(self, path: RunPath, names: list[str]) -> int: ...

    @abc.abstractmethod
    def read_file(self, path: RunPath, name: str) -> Iterator[bytes]:
        """The file's bytes as chunks; ``NotFound`` is raised by the call, not by iteration."""

    @abc.abstractmethod
    def delete_file(self, path: RunPath, name: str) -> None: ...

    # projects
    @abc.abstractmethod
    def list_projects(
        self, entity: str, per_page: int, cursor: str | None
    ) -> Page[ProjectRecord]: ...

    @abc.abstractmethod
    def get_project(self, entity: str, project: str) -> ProjectRecord: ...

    # the dashboard
    @abc.abstractmethod
    def entities(self) -> list[str]:
        """The entities whose projects the caller may see."""

    @abc.abstractmethod
    def project_activity(self) -> list[ProjectActivity]:
        """The projects the caller may see, with run counts, most recently active first."""

    @abc.abstractmethod
    def document_keys(
        self, entity: str, project: str, kind: str, q: str = "", limit: int = 200
    ) -> KeyList:
        """The project's distinct dotted leaf keys of config (``kind="config"``) or summary
        (``"summary"``), or its metrics (``"metrics"``: the history keys whose last value is a
        number, as is), in order, those containing ``q`` (ignoring case), at most ``limit``."""

    # sweeps
    @abc.abstractmethod
    def create_sweep(self, entity: str, project: str, config: dict[str, Any]) -> SweepRecord: ...

    @abc.abstractmethod
    def get_sweep(self, entity: str, project: str, sweep_id: str) -> SweepRecord: ...

    # artifacts
    def artifacts(self) -> Artifacts:
        """The artifacts this backend keeps (``runbase.backend.artifacts``); a backend that
        keeps none raises ``Unsupported``."""
        raise Unsupported(f"{type(self).__name__} keeps no artifacts: log them to a runbase server")

    @abc.abstractmethod
    def close(self) -> None:
        """Release connections."""
