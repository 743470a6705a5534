"""Uploading spools: what runs logged offline, or could not store, waiting on disk.

A spool is a folder of batches (``runbase.sdk.spool``). ``find_spools`` finds them under the
places it is given; ``pending`` tells what one holds; ``upload`` stores it through a backend,
in order, removing each batch once stored. Uploading is idempotent: history rows carry their
index (a repeated index is ignored), and a run's ``create`` batch creates it as
``resume="allow"`` would, so a spool uploaded twice stores nothing twice.

Do not upload the spool of a run that is still being logged: its writer sends the same
batches.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path

from runbase.backend.base import Backend, RunPath
from runbase.errors import InvalidInput
from runbase.sdk.spool import Create, History, Spool
from runbase.sdk.writer import send


@dataclass(frozen=True)
class Pending:
    """What waits in one spool: ``batches``, of which ``rows`` history and system rows;
    ``created`` is False while the run itself is not created yet (logged offline, or its
    backend could not be reached when it started)."""

    path: RunPath
    dir: Path
    batches: int
    rows: int
    created: bool


def find_spools(places: Iterable[Path]) -> list[Spool]:
    """The spools in ``places``, each a run's spool folder, a ``spool`` folder, or a data
    directory (its ``spool`` folder); ``InvalidInput`` for a place that does not exist."""
    found: dict[Path, Spool] = {}
    for place in map(Path, places):
        if not place.is_dir():
            raise InvalidInput(f"{place} is not a folder")
        if _holds_batches(place):
            folders = [place]
        else:
            root = place / "spool" if (place / "spool").is_dir() else place
            folders = sorted(folder for folder in root.glob("*/*/*") if _holds_batches(folder))
        for folder in folders:
            found.setdefault(folder.resolve(), Spool.at(folder))
    return list(found.values())


def _holds_batches(folder: Path) -> bool:
    return folder.is_dir() and any(folder.glob("*-*.json"))


def pending(spool: Spool) -> Pending:
    """What waits in ``spool`` (each batch is read)."""
    batches = rows = 0
    created = True
    for _, batch in spool:
        batches += 1
        if isinstance(batch, History):
            rows += len(batch.rows)
        elif isinstance(batch, Create):
            created = False
    return Pending(spool.path, spool.dir, batches, rows, created)


def upload(backend: Backend, spool: Spool, stored: Callable[[], object] = lambda: None) -> int:
    """Store what waits in ``spool``, in order (a recorded finish too), removing each batch
    once stored and calling ``stored()`` after each; returns how many were stored. The first
    error is raised, and that batch and those behind it stay."""
    count = 0
    for seq, _ in spool.entries():
        send(backend, spool.path, spool.read(seq))
        with contextlib.suppress(FileNotFoundError):  # removed meanwhile by another upload
            spool.remove(seq)
        count += 1
        stored()
    return count
