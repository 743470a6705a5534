import os
import platform
import subprocess
import sys
from datetime import datetime, timedelta

import pytest

from runbase.sdk.metadata import collect_metadata

pytestmark = pytest.mark.usefixtures("sdk_transport")


@pytest.fixture(autouse=True)
def isolated_git(monkeypatch, tmp_path):
    """Keep the user's git configuration, and any repository above tmp_path, out of the tests."""
    monkeypatch.setenv("GIT_CONFIG_GLOBAL", os.devnull)
    monkeypatch.setenv("GIT_CONFIG_NOSYSTEM", "1")
    monkeypatch.setenv("GIT_CEILING_DIRECTORIES", str(tmp_path))


def git(*args, cwd):
    identity = ["-c", "user.name=Test", "-c", "user.email=test@example.com"]
    done = subprocess.run(
        ["git", *identity, *args], cwd=cwd, capture_output=True, text=True, check=True
    )
    return done.stdout.strip()


@pytest.fixture
def repo(tmp_path):
    root = tmp_path / "repo"
    (root / "src").mkdir(parents=True)
    (root / "src" / "train.py").write_text("print('hi')\n")
    git("init", "-q", cwd=root)
    git("add", ".", cwd=root)
    git("commit", "-q", "-m", "first", cwd=root)
    git("remote", "add", "origin", "https://someone:s3cret@example.com/org/repo.git", cwd=root)
    return root


def test_describes_the_process(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    metadata = collect_metadata()

    assert metadata["python"] == platform.python_version()
    assert metadata["args"] == sys.argv[1:]
    assert metadata["executable"] == sys.executable
    assert metadata["host"]
    assert metadata["os"]
    assert metadata["root"] == str(tmp_path)
    assert isinstance(metadata["cpu_count_logical"], int)
    assert metadata["memory"]["total"] > 0
    started = datetime.fromisoformat(metadata["startedAt"].replace("Z", "+00:00"))
    assert started.utcoffset() == timedelta(0)


def test_outside_a_repository_there_is_no_git_key(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)

    assert "git" not in collect_metadata()


def test_inside_a_repository_git_has_commit_and_remote(repo, monkeypatch):
    monkeypatch.chdir(repo / "src")
    metadata = collect_metadata(program="train.py")

    assert metadata["git"] == {
        "commit": git("rev-parse", "HEAD", cwd=repo),
        "remote": "https://example.com/org/repo.git",
    }
    assert metadata["root"] == str(repo)
    assert metadata["program"] == "train.py"
    assert metadata["codePath"] == os.path.join("src", "train.py")
    assert metadata["codePathLocal"] == "train.py"


def test_a_repository_without_commits_or_remote_has_no_git_key(tmp_path, monkeypatch):
    git("init", "-q", cwd=tmp_path)
    monkeypatch.chdir(tmp_path)

    assert "git" not in collect_metadata()


def test_without_git_installed_there_is_no_git_key(repo, monkeypatch, tmp_path):
    empty = tmp_path / "empty"
    empty.mkdir()
    monkeypatch.setenv("PATH", str(empty))
    monkeypatch.chdir(repo)

    metadata = collect_metadata()
    assert "git" not in metadata
    assert metadata["root"] == str(repo)


def test_a_deleted_working_directory_does_not_raise(tmp_path, monkeypatch):
    gone = tmp_path / "gone"
    gone.mkdir()
    monkeypatch.chdir(gone)
    gone.rmdir()

    metadata = collect_metadata()
    assert "git" not in metadata
    assert metadata["python"] == platform.python_version()
