"""Run files: listing, one file, download (refusing to overwrite), delete, upload."""

from __future__ import annotations

import hashlib
import re

import pytest

from runbase.api import File, Files
from runbase.errors import NotFound, ReadOnly

ENTITY = "tester"
PROJECT = "proj"


@pytest.fixture
def run(api, make, backend):
    path = make.create("r1")
    backend.put_file(path, "config.yaml", [b"lr: 0.1\n"])
    backend.put_file(path, "media/plot.png", [b"\x89PNG...."])
    backend.put_file(path, "output.log", [b"line 1\nline 2\n"])
    return api.run("r1")


def test_files_lists_in_name_order(run, backend):
    files = run.files(per_page=2)
    assert isinstance(files, Files)
    assert len(files) == 3
    assert backend.calls["count_files"] == 1 and backend.calls["list_files"] == 0
    assert [f.name for f in files] == ["config.yaml", "media/plot.png", "output.log"]
    assert backend.calls["list_files"] == 2
    assert [f.name for f in files] == ["config.yaml", "media/plot.png", "output.log"]
    assert backend.calls["list_files"] == 2
    assert files[-1].name == "output.log"
    assert [f.name for f in run.files(names=["output.log", "absent"])] == ["output.log"]


def test_file_attributes(run):
    f = run.file("config.yaml")
    assert isinstance(f, File)
    assert (f.name, f.size) == ("config.yaml", 8)
    assert f.md5 == hashlib.md5(b"lr: 0.1\n").hexdigest()
    assert run.file("media/plot.png").mimetype == "image/png"
    assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d", f.updated_at or "")
    assert f.url == f"http://127.0.0.1:8080/{ENTITY}/{PROJECT}/runs/r1/files/config.yaml"
    assert "config.yaml" in repr(f)


def test_missing_file_is_named(run):
    with pytest.raises(NotFound, match="absent.txt"):
        run.file("absent.txt")


def test_download_refuses_to_overwrite_unless_asked(run, tmp_path):
    root = tmp_path / "out"
    with run.file("media/plot.png").download(root=str(root)) as opened:
        assert opened.name == str(root / "media" / "plot.png")
    assert (root / "media" / "plot.png").read_bytes() == b"\x89PNG...."
    target = root / "config.yaml"
    target.write_text("local edits")
    f = run.file("config.yaml")
    with pytest.raises(ValueError, match="replace=True"):
        f.download(root=str(root))
    assert target.read_text() == "local edits"
    with f.download(root=str(root), exist_ok=True) as opened:
        assert opened.read() == "local edits"
    with f.download(root=str(root), replace=True) as opened:
        assert opened.read() == "lr: 0.1\n"


def test_download_defaults_to_the_working_directory(run, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    run.file("output.log").download().close()
    assert (tmp_path / "output.log").read_text() == "line 1\nline 2\n"


def test_delete(run, backend):
    files = run.files()
    assert len(files) == 3
    run.file("output.log").delete()
    assert [f.name for f in run.files()] == ["config.yaml", "media/plot.png"]
    with pytest.raises(NotFound):
        run.file("output.log")


def test_read_only_run_keeps_its_files(api, make, backend):
    path = make.create("ro")
    backend.put_file(path, "a.txt", [b"a"])
    ro = make.read_only(api, path)
    with pytest.raises(ReadOnly):
        ro.file("a.txt").delete()
    assert backend.count_files(path, []) == 1


def test_upload_file(run, tmp_path):
    local = tmp_path / "notes" / "readme.md"
    local.parent.mkdir()
    local.write_text("# hi")
    uploaded = run.upload_file(str(local), root=str(tmp_path))
    assert uploaded.name == "notes/readme.md"
    assert run.file("notes/readme.md").size == 4
    assert len(run.files()) == 4
