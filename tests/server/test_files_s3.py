"""The server with file bytes in S3-compatible object storage (a real S3-protocol server on
127.0.0.1): in-process through the HTTP backend, and ``runbase server --files s3://...
--workers 2``, whose processes share the files."""

from __future__ import annotations

import hashlib
import os
import signal
import subprocess
import sys
from pathlib import Path

import httpx
import pytest
from typer.testing import CliRunner

from runbase.backend import close_backends
from runbase.backend.base import NewRun, RunPath
from runbase.backend.http import HttpBackend
from runbase.backend.local import LocalBackend
from runbase.cli import app as cli
from runbase.errors import InvalidInput, NotFound
from runbase.server import create_app
from runbase.store import Store
from tests.server.conftest import TestClient
from tests.server.test_live import free_port, wait_until_healthy

PATH = RunPath("tester", "proj", "r1")


@pytest.fixture
def s3_backend(s3_files, data_dir, database_url):
    backend = LocalBackend(Store.open(database_url, data_dir, s3_files), "tester")
    yield backend
    backend.store.close()


def test_files_through_the_server_into_object_storage(s3_backend, data_dir):
    with TestClient(create_app(s3_backend)) as client:
        http = HttpBackend(str(client.base_url), client=client)
        http.create_run(PATH, NewRun())
        payload = os.urandom(3_000_000)
        record = http.put_file(PATH, "ckpt/model.pt", iter([payload[:10], payload[10:]]))
        assert record.md5 == hashlib.md5(payload).hexdigest()
        http.put_file(PATH, "a.txt", [b"one"])
        http.put_file(PATH, "a.txt", [b"two"])
        answer = client.put(FILE_A, content=b"three", headers={"x-runbase-md5": "0" * 32})
        assert answer.status_code == 400
        assert b"".join(http.read_file(PATH, "ckpt/model.pt")) == payload
        assert b"".join(http.read_file(PATH, "a.txt")) == b"two"
        assert [f.name for f in http.list_files(PATH, [], 10, None).items] == [
            "a.txt",
            "ckpt/model.pt",
        ]
        http.delete_file(PATH, "a.txt")
        with pytest.raises(NotFound):
            http.read_file(PATH, "a.txt")
        with pytest.raises(InvalidInput):
            http.put_file(PATH, "../escape", [b"x"])
    assert not (data_dir / "files").exists()


FILE_A = "/api/v1/runs/tester/proj/r1/files/a.txt"


@pytest.mark.slow
def test_runbase_server_workers_share_files_in_object_storage(
    s3_files, data_dir, database_url, tmp_path
):
    if database_url is None:
        pytest.skip("several server processes share a PostgreSQL database")
    port = free_port()
    where = ["--data-dir", str(tmp_path / "served"), "--db", database_url]
    runner = CliRunner()
    assert runner.invoke(cli, ["user", "create", "tester", *where]).exit_code == 0
    key = runner.invoke(cli, ["key", "create", "--user", "tester", *where]).stdout.strip()
    close_backends()
    runbase = str(Path(sys.executable).parent / "runbase")
    command = [runbase, "server", "--port", str(port), "--files", s3_files, "--workers", "2",
               "--max-file-size", "5000000", *where]  # fmt: skip
    server = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    try:
        url = f"http://127.0.0.1:{port}"
        wait_until_healthy(url)
        payload = os.urandom(2_000_000)
        # new connections, so that both workers answer some of them
        for n in range(6):
            with httpx.Client(timeout=20) as client:
                remote = HttpBackend(url, client=client, api_key=key)
                remote.create_run(RunPath("tester", "proj", f"r{n}"), NewRun())
                remote.put_file(RunPath("tester", "proj", f"r{n}"), "w.bin", [payload])
        for n in range(6):
            with httpx.Client(timeout=20) as client:
                remote = HttpBackend(url, client=client, api_key=key)
                path = RunPath("tester", "proj", f"r{n}")
                assert b"".join(remote.read_file(path, "w.bin")) == payload
        with httpx.Client(timeout=20) as client:
            answer = client.put(
                url + "/api/v1/runs/tester/proj/r0/files/big.bin",
                content=b"x" * 5_000_001,
                auth=("api", key),
            )
            assert answer.status_code == 413
    finally:
        server.send_signal(signal.SIGTERM)
        output = server.communicate(timeout=30)[0].decode()
    assert server.returncode == 0, output
    assert key not in output, "a key in the log"
    workers = {line for line in output.splitlines() if "Started server process" in line}
    assert len(workers) == 2, output
    assert "PUT /api/v1/runs/tester/proj/r0/files/w.bin 200" in output and " tester" in output
