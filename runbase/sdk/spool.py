"""A run's spool: what its writer could not store yet, waiting on disk, in order.

One file per batch, under ``<data dir>/spool/<entity>/<project>/<run_id>/``, named
``<sequence>-<kind>.json`` so that a sorted listing is the order to store them in. A file is
written to a temporary name, fsync'd and renamed, so a listed file is always whole; it is
removed once its batch is stored. Each file is self-describing JSON (encoded with
``runbase.documents``, so NaN and ±Infinity survive)::

    {"format": "runbase-spool/1", "kind": "history", "path": {"entity": ..., "project": ...,
     "run_id": ...}, "stream": "default", "rows": [[idx, step, [keys], text], ...],
     "latest": {...}}

Other kinds: ``create`` (the ``NewRun`` fields: the run was started offline or while its
server could not be reached, and must be created before anything else is stored), ``config``
(``changes``), ``run`` (``display_name``), ``file`` (``name``, and ``source``: the local file,
read when stored), ``finish`` (``state``, ``exit_code``).
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterator
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import orjson
from typing_extensions import assert_never

from runbase import documents
from runbase.backend.base import HistoryRow, NewRun, RunPath
from runbase.errors import InvalidInput

FORMAT = "runbase-spool/1"


@dataclass(frozen=True)
class History:
    """Rows of one stream and the latest values of the summary keys they (or summary changes
    made among them) touched."""

    stream: str
    rows: list[HistoryRow]
    latest: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class Create:
    """The run itself, to create before its other batches (its ``resume`` is None)."""

    new: NewRun


@dataclass(frozen=True)
class ConfigChange:
    changes: dict[str, Any]


@dataclass(frozen=True)
class RunChange:
    display_name: str


@dataclass(frozen=True)
class FileSave:
    """A local file to store as ``name``; read when it is stored."""

    name: str
    source: str


@dataclass(frozen=True)
class Finish:
    state: str
    exit_code: int


Batch = Create | History | ConfigChange | RunChange | FileSave | Finish
KINDS: dict[type[Any], str] = {
    Create: "create",
    History: "history",
    ConfigChange: "config",
    RunChange: "run",
    FileSave: "file",
    Finish: "finish",
}


def spool_dir(data_dir: Path, path: RunPath) -> Path:
    """Where the spool of the run ``path`` lives."""
    return Path(data_dir) / "spool" / path.entity / path.project / path.run_id


def to_record(path: RunPath, batch: Batch) -> dict[str, Any]:
    """The JSON document of one batch."""
    record: dict[str, Any] = {"format": FORMAT, "kind": KINDS[type(batch)], "path": path._asdict()}
    match batch:
        case History():
            record.update(
                stream=batch.stream,
                rows=[[idx, step, list(keys), text] for idx, step, keys, text in batch.rows],
                latest=documents.tag(batch.latest),
            )
        case Create():
            fields = asdict(batch.new)
            fields.update(
                tags=list(batch.new.tags),
                config=documents.tag(batch.new.config),
                metadata=documents.tag(batch.new.metadata),
            )
            record["run"] = fields
        case ConfigChange():
            record["changes"] = documents.tag(batch.changes)
        case RunChange():
            record["display_name"] = batch.display_name
        case FileSave():
            record.update(name=batch.name, source=batch.source)
        case Finish():
            record.update(state=batch.state, exit_code=batch.exit_code)
        case _:
            assert_never(batch)
    return record


def from_record(record: dict[str, Any]) -> tuple[RunPath, Batch]:
    """The run and the batch of a spool document; ``InvalidInput`` for what is not one."""
    if not isinstance(record, dict) or record.get("format") != FORMAT:
        raise InvalidInput(f"not a runbase spool record (format {FORMAT!r} expected)")
    path = RunPath(**record["path"])
    kind = record.get("kind")
    batch: Batch
    if kind == "create":
        fields = record["run"]
        batch = Create(NewRun(**{**fields, "tags": tuple(fields["tags"])}))
    elif kind == "history":
        rows = [HistoryRow(i, step, tuple(keys), text) for i, step, keys, text in record["rows"]]
        batch = History(record["stream"], rows, record["latest"])
    elif kind == "config":
        batch = ConfigChange(record["changes"])
    elif kind == "run":
        batch = RunChange(record["display_name"])
    elif kind == "file":
        batch = FileSave(record["name"], record["source"])
    elif kind == "finish":
        batch = Finish(record["state"], record["exit_code"])
    else:
        raise InvalidInput(f"spool record of unknown kind {kind!r}")
    return path, batch


class Spool:
    """The on-disk queue of one run's batches, oldest first, keyed by sequence number."""

    def __init__(self, data_dir: Path, path: RunPath, directory: Path | None = None) -> None:
        self.path = path
        self.dir = Path(directory) if directory is not None else spool_dir(data_dir, path)
        self._files: dict[int, Path] = {}  # what this object has listed or written

    @classmethod
    def at(cls, directory: Path) -> Spool:
        """The spool in ``directory``, wherever it was moved (its records name the run);
        ``InvalidInput`` if it holds no batch."""
        files = sorted(Path(directory).glob("*-*.json"))
        if not files:
            raise InvalidInput(f"{directory} holds no spooled batch")
        path, _ = from_record(documents.decode(files[0].read_bytes()))
        return cls(Path(directory), path, directory)

    def entries(self) -> list[tuple[int, str]]:
        """``(sequence, kind)`` of every waiting batch, in order."""
        if not self.dir.is_dir():
            return []
        found = []
        for file in self.dir.glob("*-*.json"):
            number, _, kind = file.stem.partition("-")
            if number.isdigit():
                found.append((int(number), kind))
                self._files[int(number)] = file
        return sorted(found)

    def __iter__(self) -> Iterator[tuple[int, Batch]]:
        for seq, _ in self.entries():
            yield seq, self.read(seq)

    def _file(self, seq: int, kind: str) -> Path:
        return self.dir / f"{seq:012d}-{kind}.json"

    def _find(self, seq: int) -> Path:
        file = self._files.get(seq)
        if file is None:
            matches = list(self.dir.glob(f"{seq:012d}-*.json"))
            if not matches:
                raise FileNotFoundError(f"no batch {seq} in {self.dir}")
            file = self._files[seq] = matches[0]
        return file

    def write(self, seq: int, batch: Batch) -> None:
        """Store the batch durably (fsync'd) as number ``seq``."""
        self.dir.mkdir(parents=True, exist_ok=True)
        final = self._file(seq, KINDS[type(batch)])
        temporary = final.with_suffix(".tmp")
        data = orjson.dumps(to_record(self.path, batch))  # documents in it are tagged
        with open(temporary, "wb") as file:
            file.write(data)
            file.flush()
            os.fsync(file.fileno())
        os.replace(temporary, final)
        _fsync_dir(self.dir)
        self._files[seq] = final

    def read(self, seq: int) -> Batch:
        _, batch = from_record(documents.decode(self._find(seq).read_bytes()))
        return batch

    def remove(self, seq: int) -> None:
        """Forget batch ``seq`` (stored); the run's folder goes when it is empty."""
        self._find(seq).unlink()
        del self._files[seq]
        if not self._files:
            with contextlib.suppress(OSError):  # not empty: written by another process
                self.dir.rmdir()


def _fsync_dir(directory: Path) -> None:
    try:
        fd = os.open(directory, os.O_RDONLY)
    except OSError:  # some systems cannot open directories; the rename is still atomic
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)
