"""A run being logged: ``init`` creates or resumes it, ``log`` records, ``finish`` ends it.

``init`` does not wait long for a backend that cannot be reached: after ``init_timeout``
seconds (a setting) it goes on with a stand-in record and the run is created by its writer, as
the first batch of its spool, when the backend answers. ``mode="offline"`` opens no backend
at all: the run and everything it logs go to its spool, for ``runbase sync``.
"""

from __future__ import annotations

import atexit
import glob
import os
import sys
import threading
import time
import warnings
from dataclasses import replace
from pathlib import Path
from types import TracebackType
from typing import Any, cast

from runbase import checks
from runbase.backend import open_backend
from runbase.backend.base import (
    RESUME_MODES,
    Backend,
    NewRun,
    RunChanges,
    RunIdentity,
    RunPath,
    RunRecord,
    check_path,
    check_run_changes,
)
from runbase.errors import CommError, InvalidInput, RunbaseError
from runbase.names import new_run_id
from runbase.sdk.config import Config, Summary
from runbase.sdk.metadata import collect_metadata
from runbase.sdk.spool import ConfigChange, FileSave, Finish, RunChange, Spool
from runbase.sdk.system import SystemSampler
from runbase.sdk.values import (
    HAS_NONE,
    NESTED,
    clean_document,
    clean_row,
    copy_document,
    merge_leaves,
)
from runbase.sdk.writer import (
    KeyIndex,
    SummaryChange,
    Writer,
    encode_row,
    halted_message,
    replay,
)
from runbase.settings import Settings

SAVE_POLICIES = ("live", "now", "end")
ABORTED_EXIT_CODE = 255
# seconds init tries to create a run before it goes on with the run spooled locally


class UnstoredWarning(RuntimeWarning):
    """What a run logged is not stored yet: it waits in memory or in the run's spool."""


class Run(RunIdentity):
    """A run in progress. Use ``runbase.init`` to make one; it is also a context manager."""

    def __init__(
        self,
        backend: Backend | None,
        settings: Settings,
        record: RunRecord,
        dir: Path | None,
        create: NewRun | None = None,
    ) -> None:
        self._backend = backend
        self._settings = settings
        self._record = record
        self._name = record.display_name
        self._path = record.path
        self._step = 0 if record.last_step is None else record.last_step + 1
        self._pending: dict[str, Any] = {}
        self._pending_flags = 0
        self._finished = False
        self._warned_halt = False
        self._runtime_offset = float(record.summary.get("_runtime") or 0.0)
        self._start = time.time()
        # saved file -> (name, policy, modification time when stored; None if not yet)
        self._saved: dict[Path, tuple[str, str, float | None]] = {}
        self._dir = (
            Path(dir) if dir else settings.data_dir / "runs" / str(self._path).replace("/", "_")
        )
        self._dir.mkdir(parents=True, exist_ok=True)
        self.config = Config(record.config, persist=self._persist_config)
        self.summary = Summary(dict(record.summary), persist=self._persist_summary)
        self._keys = KeyIndex()
        self._next_index = record.history_line_count
        self._next_system_index = record.system_line_count
        self._writer = Writer(
            backend,
            self._path,
            summary=record.summary,
            spool=Spool(settings.data_dir, self._path),
            heartbeat=settings.heartbeat_interval,
            drain_timeout=settings.finish_timeout,
            create=create,
        )
        self._sampler = SystemSampler(self._log_system, interval=settings.system_interval)
        self._sampler.start()

    # identity
    @property
    def name(self) -> str:
        return self._name

    @name.setter
    def name(self, value: str) -> None:
        name = str(value)
        check_run_changes(RunChanges(display_name=name))
        self._writer.items.append(RunChange(name))
        self._name = name

    @property
    def url(self) -> str:
        return self._settings.run_url(*self._path)

    @property
    def dir(self) -> str:
        return str(self._dir)

    @property
    def step(self) -> int:
        return self._step

    @property
    def tags(self) -> tuple[str, ...]:
        return tuple(self._record.tags)

    @property
    def notes(self) -> str | None:
        return self._record.notes

    @property
    def group(self) -> str | None:
        return self._record.group

    @property
    def job_type(self) -> str | None:
        return self._record.job_type

    @property
    def sweep_id(self) -> str | None:
        return self._record.sweep

    @property
    def resumed(self) -> bool:
        return self._step > 0

    # logging
    def log(
        self, data: dict[str, Any], step: int | None = None, commit: bool | None = None
    ) -> None:
        """Record metrics at the current step (wandb's step rules)."""
        if self._finished:
            raise InvalidInput(f"run {self.path} is finished; start a new one with init()")
        row, flags = clean_row(data)
        if step is not None:
            if type(step) is not int and not _is_integer(step):
                raise TypeError(f"step must be an integer, not {step!r}")
            step = int(step)
            if step < self._step:
                self._warn_step(step)
                return
            if step > self._step:
                if self._pending:
                    self._commit()
                self._step = step
        if not self._pending:
            self._pending = row
        elif flags & NESTED:
            merge_leaves(self._pending, row)
        else:
            self._pending.update(row)
        self._pending_flags |= flags
        if commit or (commit is None and step is None):
            self._commit()

    def _commit(self) -> None:
        now = time.time()
        row = self._pending
        step = self._step
        row["_step"] = step
        row["_runtime"] = now - self._start + self._runtime_offset
        row["_timestamp"] = now
        flags = self._pending_flags
        idx = self._next_index
        # the writer gets the row's text: it keeps its summary from that, sharing nothing
        hrow = (idx, step, self._keys(row, flags), encode_row(row, flags))
        self._writer.items.append((hrow, flags))
        if flags & (NESTED | HAS_NONE):
            merge_leaves(self.summary._items, row)
        else:
            self.summary._items.update(row)
        self._next_index = idx + 1
        self._pending = {}
        self._pending_flags = 0
        self._step = step + 1
        if self._writer.halted is not None and not self._warned_halt:
            self._warn_halted(stacklevel=4)

    def _warn_halted(self, stacklevel: int) -> None:
        """Say once that the backend refused the run for good and where its data waits."""
        self._warned_halt = True
        warnings.warn(
            halted_message(self._path, str(self._writer.halted), self._writer.spool.dir),
            UnstoredWarning,
            stacklevel=stacklevel,
        )

    def _warn_step(self, step: int) -> None:
        warnings.warn(
            f"runbase: step {step} is less than the current step {self._step}; steps must "
            "increase, so this data is dropped",
            UserWarning,
            stacklevel=3,
        )

    def _log_system(self, metrics: dict[str, float]) -> None:
        now = time.time()
        row = {**metrics, "_runtime": now - self._start + self._runtime_offset, "_timestamp": now}
        idx = self._next_system_index
        self._next_system_index = idx + 1
        hrow = (idx, idx, self._keys(row, 0), encode_row(row, 0))
        self._writer.system.append((hrow, row))

    def _persist_config(self, changes: dict[str, Any]) -> None:
        self._writer.items.append(ConfigChange(copy_document(changes)))

    def _persist_summary(self, changes: dict[str, Any]) -> None:
        self._writer.items.append(SummaryChange(copy_document(changes)))

    # files
    def save(self, glob_str: str, base_path: str | None = None, policy: str = "live") -> list[str]:
        """Store files matching ``glob_str`` with the run; their names are relative to
        ``base_path`` (default: the glob's directory). ``live`` also re-saves changed files at
        ``finish``; ``end`` saves only then. Returns the stored names."""
        if policy not in SAVE_POLICIES:
            raise ValueError(f"policy must be one of {SAVE_POLICIES}, not {policy!r}")
        if not isinstance(glob_str, (str, os.PathLike)):
            raise TypeError(f"glob_str must be a path or pattern, not {type(glob_str).__name__}")
        pattern = os.fspath(glob_str)
        if base_path is None:
            base_path = os.path.dirname(pattern.split("*")[0]) if os.path.isabs(pattern) else "."
        matches = [Path(p) for p in glob.glob(pattern, recursive=True) if os.path.isfile(p)]
        names = []
        for file in matches:
            name = os.path.relpath(file, base_path).replace(os.sep, "/")
            if name.startswith("../"):
                name = file.name
            stored = self._put(file, name) if policy != "end" else None
            self._saved[file.resolve()] = (name, policy, stored)
            names.append(name)
        return names

    def _put(self, file: Path, name: str) -> float:
        """Queue the file for storing (the writer reads it); returns its modification time."""
        modified = file.stat().st_mtime
        self._writer.items.append(FileSave(name, str(file.resolve())))
        return modified

    def _save_at_finish(self) -> None:
        """Store ``end`` files, and ``live`` files changed since they were stored."""
        for file, (name, policy, stored) in self._saved.items():
            if policy == "now" or not file.is_file():
                continue
            if stored is None or file.stat().st_mtime != stored:
                self._put(file, name)
        for file in sorted(self._dir.rglob("*")):
            if file.is_file() and file.resolve() not in self._saved:
                self._put(file, file.relative_to(self._dir).as_posix())

    # ending
    def finish(self, exit_code: int | None = None, quiet: bool | None = None) -> None:
        """Store everything and mark the run finished (0) or crashed (non-zero)."""
        state = "finished" if not exit_code else "crashed"
        self._end(state, exit_code or 0)

    def _end(self, state: str, exit_code: int) -> None:
        """Store everything, then the state; what cannot be stored within the writer's
        ``drain_timeout`` stays in the run's spool, the run is not marked ended, and an
        ``UnstoredWarning`` says how much and where."""
        if self._finished:
            return
        self._finished = True
        self._sampler.stop()
        if self._pending:
            self._commit()
        runtime = int(time.time() - self._start + self._runtime_offset)
        self.summary.update({"_runtime": runtime, "_wandb": {"runtime": runtime}})
        try:
            self._save_at_finish()
        finally:
            self._writer.items.append(Finish(state, exit_code))
            unstored = self._writer.close()
            _ACTIVE.discard(self)
            _set_current_after_finish(self)
        if self._backend is None:
            print(
                f"runbase: {self._path} was logged offline to {unstored.spool}; upload it with "
                f"`runbase sync {unstored.spool}`",
                file=sys.stderr,
            )
        elif unstored and not (unstored.halted and self._warned_halt):
            self._warned_halt = True
            warnings.warn(unstored.message(self._path), UnstoredWarning, stacklevel=3)

    def flush(self) -> None:
        """Wait until everything logged so far is stored. If the backend cannot store it
        within the writer's ``drain_timeout``, warn (``UnstoredWarning``) and return; the
        writer keeps retrying. Offline, or once the backend refused the run for good, it
        returns once everything is in the run's spool."""
        stored = self._writer.flush()
        if self._writer.halted is not None:
            if not self._warned_halt:
                self._warn_halted(stacklevel=3)
        elif not stored:
            warnings.warn(
                f"runbase: what {self.path} logged is not all stored after "
                f"{self._writer.drain_timeout:g}s (last error: {self._writer.last_error}); it "
                "waits, in memory or in the run's spool, and is retried",
                UnstoredWarning,
                stacklevel=2,
            )

    def __enter__(self) -> Run:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        if exc_type is None:
            self.finish()
        elif issubclass(exc_type, KeyboardInterrupt):
            self._end("aborted", ABORTED_EXIT_CODE)
        else:
            self._end("crashed", 1)

    def __repr__(self) -> str:
        return f"<Run {self.path} ({'finished' if self._finished else 'running'})>"


def _is_integer(value: Any) -> bool:
    try:
        return int(value) == value and not isinstance(value, bool)
    except (TypeError, ValueError):
        return False


# active runs of this process, finished at exit
_ACTIVE: set[Run] = set()
_CURRENT: list[Run | None] = [None]
_EXIT: dict[str, type[BaseException] | None] = {"exception": None}
_LOCK = threading.Lock()
_STATIC_METADATA: dict[str, Any] = {}


def current_run() -> Run | None:
    return _CURRENT[0]


def _set_current_after_finish(run: Run) -> None:
    if _CURRENT[0] is run:
        _CURRENT[0] = None


def _excepthook(
    exc_type: type[BaseException], exc: BaseException, tb: TracebackType | None
) -> None:
    _EXIT["exception"] = exc_type
    _previous_excepthook(exc_type, exc, tb)


_previous_excepthook = sys.excepthook


def _finish_all_at_exit() -> None:
    exc_type = _EXIT["exception"]
    for run in list(_ACTIVE):
        try:
            if exc_type is None:
                run.finish()
            elif issubclass(exc_type, KeyboardInterrupt):
                run._end("aborted", ABORTED_EXIT_CODE)
            else:
                run._end("crashed", 1)
        except Exception as exc:  # noqa: BLE001 - report and go on with the other runs
            print(f"runbase: could not finish {run.path}: {exc}", file=sys.stderr)


def _install_exit_hooks() -> None:
    with _LOCK:
        if sys.excepthook is not _excepthook:
            globals()["_previous_excepthook"] = sys.excepthook
            sys.excepthook = _excepthook
        if not _STATIC_METADATA.get("_hooked"):
            atexit.register(_finish_all_at_exit)
            _STATIC_METADATA["_hooked"] = True


def _metadata() -> dict[str, Any]:
    if "document" not in _STATIC_METADATA:
        _STATIC_METADATA["document"] = collect_metadata()
    doc = dict(_STATIC_METADATA["document"])
    doc["startedAt"] = time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime()) + "Z"
    return doc


def init(
    project: str | None = None,
    entity: str | None = None,
    name: str | None = None,
    id: str | None = None,
    config: dict[str, Any] | Any | None = None,
    tags: list[str] | tuple[str, ...] | None = None,
    notes: str | None = None,
    group: str | None = None,
    job_type: str | None = None,
    resume: str | bool | None = None,
    dir: str | os.PathLike[str] | None = None,
    mode: str | None = None,
    sweep_id: str | None = None,
    allow_val_change: bool = False,
    reinit: bool | str | None = None,
    settings: Settings | None = None,
) -> Run:
    """Start a run (or continue one with ``id`` and ``resume``), as ``wandb.init`` does."""
    base = settings or Settings.load()
    if mode is not None:
        checks.mode(mode)
        base = base.with_(mode=mode)
    if base.mode == "disabled":
        from runbase.sdk.disabled import DisabledRun

        # a stand-in that answers the same calls and stores nothing
        disabled = cast(Run, DisabledRun(project or base.project, entity, name, id, config))
        _CURRENT[0] = disabled
        return disabled
    resume = _check_init_arguments(resume, tags, id)
    path = RunPath(
        entity or base.default_entity, project or base.default_project, id or new_run_id()
    )
    config_dict = _config_dict(config)
    new = NewRun(
        display_name=name,
        config=config_dict,
        tags=tuple(tags or ()),
        notes=notes,
        group=group,
        job_type=job_type,
        sweep=sweep_id or base.sweep_id,
        username=base.default_entity,
        metadata=_metadata(),
        resume=resume,
    )
    spool = Spool(base.data_dir, check_path(path))
    backend: Backend | None = None
    create: NewRun | None = None
    if base.mode == "offline":
        _check_spooled_start(path, resume, spool, InvalidInput("the run is offline"))
        record, create = _stand_in(path, new), new
    else:
        backend = open_backend(base)
        named = entity is not None or base.entity is not None
        created = _create(backend, path, new, base.init_timeout, ask_entity=not named)
        if isinstance(created, CommError):
            _check_spooled_start(path, resume, spool, created)
            warnings.warn(
                f"runbase: could not create {path} within {base.init_timeout:g}s ({created}); "
                f"logging goes on into its spool, {spool.dir}, which is uploaded when the "
                "backend answers (or with `runbase sync`)",
                UnstoredWarning,
                stacklevel=2,
            )
            record, create = _stand_in(path, new), new
        else:
            record = created
            if _store_spooled(backend, Spool(base.data_dir, record.path)):
                record = backend.get_run(record.path)
    _install_exit_hooks()
    run = Run(backend, base, record, Path(dir) if dir else None, create)
    _ACTIVE.add(run)
    _CURRENT[0] = run
    return run


def _check_init_arguments(resume: Any, tags: Any, run_id: Any) -> str | None:
    if resume is True:
        resume = "allow"
    elif resume is False:
        resume = None
    if resume not in RESUME_MODES:
        raise InvalidInput(f"resume must be one of {RESUME_MODES[1:]} or None, not {resume!r}")
    if resume in ("must", "never") and run_id is None:
        raise InvalidInput(f"resume={resume!r} needs an id")
    if tags is not None and (isinstance(tags, str) or not all(isinstance(t, str) for t in tags)):
        raise TypeError(f"tags must be a list of strings, not {tags!r}")
    if run_id is not None:
        checks.name_part(run_id, "id")
    return None if resume is None else str(resume)


def _create(
    backend: Backend, path: RunPath, new: NewRun, wait: float, ask_entity: bool = False
) -> RunRecord | CommError:
    """Create the run, trying again while the backend cannot be reached, for at most ``wait``
    seconds (on a thread, so that a hanging connection cannot hold ``init`` longer); the last
    ``CommError`` if it did not answer in time. Other errors are raised.

    With ``ask_entity`` the run goes to the backend's default entity (a server's: the API
    key's user), not ``path.entity``."""
    deadline = time.monotonic() + wait
    outcome: list[RunRecord | Exception] = []

    def attempt() -> None:
        delay = 0.05
        while True:
            try:
                if ask_entity:
                    entity = backend.default_entity()
                    where, made = path._replace(entity=entity), replace(new, username=entity)
                else:
                    where, made = path, new
                outcome.append(backend.create_run(where, made))
                return
            except CommError as exc:
                if time.monotonic() + delay >= deadline:
                    outcome.append(exc)
                    return
            except Exception as exc:  # noqa: BLE001 - raised on the caller's thread
                outcome.append(exc)
                return
            time.sleep(delay)
            delay = min(delay * 2, 1.0)

    thread = threading.Thread(target=attempt, name=f"runbase-init-{path.run_id}", daemon=True)
    thread.start()
    thread.join(wait)
    if not outcome:
        return CommError(f"no answer within {wait:g}s")
    result = outcome[0]
    if isinstance(result, CommError | RunRecord):
        return result
    raise result


def _check_spooled_start(
    path: RunPath, resume: str | None, spool: Spool, why: RunbaseError
) -> None:
    """A run can start without its backend only as a new run with an empty spool: resuming
    needs the stored run's last step and index, and an older spool must be stored first.
    Else ``why``'s class is raised (``CommError``: unreachable; ``InvalidInput``: offline)."""
    if resume is not None:
        raise type(why)(f"cannot resume {path} (resume={resume!r}) without the backend: {why}")
    if spool.entries():
        raise type(why)(
            f"cannot start {path} without the backend ({why}): {spool.dir} holds batches of "
            "an earlier process; upload them with `runbase sync` first"
        )


def _stand_in(path: RunPath, new: NewRun) -> RunRecord:
    """The record of a run not created yet: what ``init`` was given, nothing logged."""
    now = time.time()
    return RunRecord(
        storage_id=0,
        entity=path.entity,
        project=path.project,
        run_id=path.run_id,
        display_name=new.display_name or path.run_id,
        state="running",
        config=copy_document(new.config),
        summary={},
        system_metrics={},
        metadata=new.metadata,
        tags=new.tags,
        notes=new.notes,
        group=new.group,
        job_type=new.job_type,
        sweep=new.sweep,
        username=new.username or path.entity,
        created_at=now,
        heartbeat_at=now,
        updated_at=now,
        history_line_count=0,
        system_line_count=0,
        last_step=None,
        exit_code=None,
    )


def _store_spooled(backend: Backend, spool: Spool) -> bool:
    """Store what an earlier process of this run left in its spool, before anything new;
    whether there was any. ``CommError`` if it cannot be stored now (it stays there)."""
    waiting = spool.entries()
    if not waiting:
        return False
    try:
        replay(backend, spool)
    except RunbaseError as exc:
        raise CommError(
            f"{len(spool.entries())} batches of {spool.path} left by an earlier process wait in "
            f"{spool.dir} and could not be stored: {exc}",
            exc,
        ) from exc
    return True


def _config_dict(config: Any) -> dict[str, Any]:
    if config is None:
        return {}
    holder = Config()
    holder.update(config)
    return {k: clean_document(f"config.{k}", v) for k, v in holder.items()}
