"""Files saved with a run: a paginated list, and each file's metadata and bytes."""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path
from typing import IO, TYPE_CHECKING, Any

from runbase.api.client import Client, iso_time
from runbase.api.paginator import Paginator
from runbase.backend.base import FileRecord, Page
from runbase.errors import CommError, RunbaseError

if TYPE_CHECKING:
    from runbase.api.runs import Run


class Files(Paginator["File"]):
    """A run's files in name order (only ``names`` when given), ``per_page`` at a time."""

    def __init__(
        self,
        client: Client,
        run: Run,
        names: list[str] | None = None,
        per_page: int = 50,
        upload: bool = False,
    ) -> None:
        super().__init__(per_page)
        self.client = client
        self.run = run
        self.names = list(names or [])

    def _fetch(self, cursor: str | None) -> Page[FileRecord]:
        return self.client.call(
            self.client.backend.list_files, self.run._path, self.names, self.per_page, cursor
        )

    def _convert(self, item: FileRecord) -> File:
        return File(self.client, item, run=self.run)

    def _count(self) -> int:
        return self.client.call(self.client.backend.count_files, self.run._path, self.names)

    def __repr__(self) -> str:
        return f"<Files {self.run.path} ({len(self)})>"


class File:
    """A file saved with a run: ``name``, ``size``, ``mimetype``, ``md5``, ``updated_at``,
    ``url``; ``download()`` and ``delete()``."""

    def __init__(
        self, client: Client, attrs: FileRecord | Mapping[str, Any], run: Run | None = None
    ) -> None:
        self.client = client
        self._attrs = dict(attrs) if isinstance(attrs, Mapping) else dict(vars(attrs))
        self.run = run

    @property
    def name(self) -> str:
        return str(self._attrs["name"])

    @property
    def size(self) -> int:
        return int(self._attrs.get("size", 0))

    @property
    def mimetype(self) -> str | None:
        return self._attrs.get("mimetype")

    @property
    def md5(self) -> str | None:
        return self._attrs.get("md5")

    @property
    def updated_at(self) -> str | None:
        return iso_time(self._attrs.get("updated_at"))

    @property
    def url(self) -> str:
        return self._owner().url + "/files/" + self.name

    direct_url = url

    def _owner(self) -> Run:
        if self.run is None:
            raise ValueError(f"file {self.name!r} was built without its run")
        return self.run

    def download(self, root: str = ".", replace: bool = False, exist_ok: bool = False) -> IO[str]:
        """Write the file under ``root`` and return it opened for reading.

        An existing local file is kept: a ValueError, unless ``replace`` (overwrite it) or
        ``exist_ok`` (return it as it is).
        """
        target = _local_path(root, self.name)
        if target.exists() and not replace:
            if exist_ok:
                return open(target)
            raise ValueError(
                f"{target} already exists: pass replace=True to overwrite it "
                "or exist_ok=True to keep it"
            )
        chunks = self.client.call(self.client.backend.read_file, self._owner()._path, self.name)
        target.parent.mkdir(parents=True, exist_ok=True)
        tmp = target.with_name(target.name + ".part")
        try:
            with open(tmp, "wb") as out:
                for chunk in chunks:
                    out.write(chunk)
        except RunbaseError:
            tmp.unlink(missing_ok=True)
            raise
        except Exception as exc:
            tmp.unlink(missing_ok=True)
            raise CommError(f"download of {self.name!r} failed: {exc}", exc=exc) from exc
        os.replace(tmp, target)
        return open(target)

    def delete(self) -> None:
        """Delete the file from the run."""
        run = self._owner()
        run._check_writable()
        self.client.call(self.client.backend.delete_file, run._path, self.name)
        self.client.forget(run._path)

    def __repr__(self) -> str:
        return f"<File {self.name} ({self.mimetype}) {self.size} bytes>"


def _local_path(root: str | os.PathLike[str], name: str) -> Path:
    base = Path(root).resolve()
    target = (base / name).resolve()
    if base != target and base not in target.parents:
        raise ValueError(f"file name {name!r} points outside {root!r}")
    return target
