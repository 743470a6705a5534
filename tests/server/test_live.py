"""A real server on a socket: uvicorn in a thread, and ``runbase server`` as a process."""

from __future__ import annotations

import contextlib
import json
import os
import signal
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path

import httpx
import pytest
import uvicorn
from typer.testing import CliRunner

import runbase
from runbase.backend import close_backends, open_backend, wire
from runbase.backend.base import HistoryQuery, HistoryRow, NewRun, Page, RunPath
from runbase.backend.http import HttpBackend, _read_frames
from runbase.backend.local import LocalBackend
from runbase.cli import app
from runbase.documents import decode_row
from runbase.errors import CommError, InvalidInput, NotFound
from runbase.server import create_app
from runbase.settings import Settings

PATH = RunPath("tester", "live", "r1")


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def wait_until_healthy(url: str, deadline: float = 20.0) -> None:
    stop = time.monotonic() + deadline
    while time.monotonic() < stop:
        try:
            if httpx.get(url + "/healthz", timeout=1.0).json() == {"ok": True}:
                return
        except httpx.HTTPError:
            time.sleep(0.05)
    raise AssertionError(f"no server at {url}")


@pytest.fixture
def live_url(backend):
    """The app over the test's store, served by uvicorn on 127.0.0.1 in a thread."""
    with serve(create_app(backend)) as url:
        yield url


@contextlib.contextmanager
def serve(app):
    """``app`` served by uvicorn on a free port of 127.0.0.1 in a thread; yields its URL."""
    port = free_port()
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="error"))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    url = f"http://127.0.0.1:{port}"
    wait_until_healthy(url)
    try:
        yield url
    finally:
        server.should_exit = True
        thread.join(10)


def test_a_run_over_a_socket(live_url, backend):
    with httpx.Client(timeout=10) as client:
        remote = HttpBackend(live_url, client=client)
        remote.create_run(PATH, NewRun(config={"lr": 0.5}))
        rows = [
            HistoryRow(i, i, ("_step", "x"), json.dumps({"_step": i, "x": i})) for i in range(5)
        ]
        remote.append_history(PATH, "default", rows, {"x": 4})
        remote.put_file(PATH, "big.bin", [b"x" * 3_000_000, b"y"])
        page = remote.scan_history(HistoryQuery(PATH, page_size=3))
        assert [decode_row(row)["x"] for row in page.items] == [0, 1, 2] and page.next_cursor
        assert b"".join(remote.read_file(PATH, "big.bin")) == b"x" * 3_000_000 + b"y"
        with pytest.raises(NotFound):
            remote.get_run(RunPath("tester", "live", "missing"))
    assert backend.get_run(PATH).summary == {"x": 4}
    assert backend.history_keys(PATH).line_count == 5


class FailingScans(LocalBackend):
    """The local backend over the test's store, failing every page after the first
    ``pages`` of a scan: a database that goes away while a scan streams."""

    def __init__(self, backend: LocalBackend, pages: int, error: Exception) -> None:
        super().__init__(backend.store, backend.entity)
        self.pages, self.error = pages, error

    def scan_pages(self, query):
        for page in super().scan_pages(query):
            if self.pages <= 0:
                raise self.error
            self.pages -= 1
            yield page


@pytest.mark.parametrize(
    ("error", "raised"),
    [(InvalidInput("the cursor is stale"), InvalidInput), (RuntimeError("disk"), CommError)],
)
def test_a_scan_that_fails_midway_raises_at_the_page_that_failed(backend, error, raised):
    backend.create_run(PATH, NewRun())
    rows = [HistoryRow(i, i, ("_step",), json.dumps({"_step": i})) for i in range(20)]
    backend.append_history(PATH, "default", rows, {})
    with serve(create_app(FailingScans(backend, 2, error))) as url:
        remote = HttpBackend(url, entity="tester")
        api = runbase.Api(backend=remote)
        seen = []
        with pytest.raises(raised):
            for row in api.run("tester/live/r1").scan_history(page_size=5):
                seen.append(row["_step"])
        remote.close()
        assert seen == list(range(10))  # the pages sent before the failure, then the error


def test_a_stream_of_rows_cut_short_is_a_comm_error():
    frame = wire.rows_frame(Page(['{"_step": 0}', '{"_step": 1}'], "more"))
    last = wire.rows_frame(Page([], None))
    assert [p.items for p in _read_frames(iter([frame[:7], frame[7:] + last]), "t")] == [
        ['{"_step": 0}', '{"_step": 1}'], []
    ]  # fmt: skip
    for cut in (frame[:5], frame[:-3], frame, b'{"bytes": "x"}\n', b"[1]\n", b"not json\n"):
        with pytest.raises(CommError):
            list(_read_frames(iter([cut]), "t"))
    with pytest.raises(NotFound):
        list(_read_frames(iter([frame, wire.error_frame("not_found", "gone")]), "t"))


def test_an_unreachable_server_is_a_comm_error():
    remote = HttpBackend(f"http://127.0.0.1:{free_port()}")
    with pytest.raises(CommError) as raised:
        remote.get_run(PATH)
    assert isinstance(raised.value.exc, httpx.ConnectError)
    remote.close()


def test_a_base_url_opens_the_http_backend(data_dir, monkeypatch, tmp_path):
    monkeypatch.delenv("RUNBASE_DATABASE_URL", raising=False)
    remote = open_backend(Settings.load(base_url="http://127.0.0.1:9"))
    assert isinstance(remote, HttpBackend)
    offline = open_backend(Settings.load(base_url="http://127.0.0.1:9", mode="offline"))
    assert not isinstance(offline, HttpBackend)
    with_db = Settings.load(
        base_url="http://127.0.0.1:9", database_url=f"sqlite:///{tmp_path}/x.db"
    )
    assert not isinstance(open_backend(with_db), HttpBackend)


def test_runbase_server_serves_the_store_and_stops_on_sigterm(data_dir, database_url, tmp_path):
    port = free_port()
    where = ["--data-dir", str(tmp_path / "served")] + (
        ["--db", database_url] if database_url else []
    )
    runner = CliRunner()
    assert runner.invoke(app, ["user", "create", "tester", *where]).exit_code == 0
    key = runner.invoke(app, ["key", "create", "--user", "tester", *where]).stdout.strip()
    close_backends()
    command = [str(Path(sys.executable).parent / "runbase"), "server", "--port", str(port), *where]
    env = {**os.environ, "RUNBASE_BASE_URL": "http://ignored.invalid"}
    server = subprocess.Popen(command, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    try:
        url = f"http://127.0.0.1:{port}"
        wait_until_healthy(url)
        assert httpx.get(url + "/api/v1/entity").status_code == 401
        api = runbase.Api(backend=HttpBackend(url, entity="tester", api_key=key))
        api.backend.create_run(PATH, NewRun(config={"a": 1}))
        assert api.run("tester/live/r1").config == {"a": 1}
        api.backend.close()
    finally:
        server.send_signal(signal.SIGTERM)
        output = server.communicate(timeout=20)[0].decode()
    assert server.returncode == 0, output


def test_api_timeout_bounds_each_request(monkeypatch, tmp_path):
    """``Api(timeout=...)``: a server slower than the timeout is a CommError holding it."""
    listener = socket.socket()  # accepts connections, never answers
    listener.bind(("127.0.0.1", 0))
    listener.listen()
    monkeypatch.setenv("RUNBASE_DIR", str(tmp_path))
    monkeypatch.delenv("RUNBASE_DATABASE_URL", raising=False)
    url = f"http://127.0.0.1:{listener.getsockname()[1]}"
    try:
        api = runbase.Api({"base_url": url, "entity": "tester"}, timeout=0.3)
        assert isinstance(api.backend, HttpBackend)
        started = time.monotonic()
        with pytest.raises(CommError) as raised:
            api.project("p")
        assert isinstance(raised.value.exc, httpx.TimeoutException)
        assert time.monotonic() - started < 10  # not the default 30 s
    finally:
        listener.close()
