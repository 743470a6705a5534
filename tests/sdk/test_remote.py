"""Logging to a server that goes away: the run goes on, nothing is lost, nothing is stored
twice. A real server (the app over the test's store, uvicorn on 127.0.0.1) that the tests stop
and start again on the same port; the SDK reaches it through ``HttpBackend``."""

from __future__ import annotations

import threading
import time
import warnings

import httpx
import pytest
import uvicorn

import runbase
from runbase.backend.base import RunPath
from runbase.backend.http import HttpBackend
from runbase.backend.local import LocalBackend
from runbase.errors import Forbidden
from runbase.sdk import run as sdk_run
from runbase.sdk.run import UnstoredWarning
from runbase.sdk.spool import Create, History, Spool
from runbase.sdk.sync import pending, upload
from runbase.server import create_app
from tests.sdk.test_writer import assert_dense, quick
from tests.server.test_live import free_port, wait_until_healthy

WAIT = 0.5  # init's wait for an unreachable server, in these tests


class Refusing(LocalBackend):
    """The test's store, refusing history for good (403) while ``refuse`` is set."""

    refuse = False
    refused = 0

    def append_history(self, path, stream, rows, latest):
        if self.refuse:
            self.refused += 1
            raise Forbidden("this API key is read-only")
        return super().append_history(path, stream, rows, latest)


class Server:
    """The app over ``backend``, served on one port, stopped and started at will."""

    def __init__(self, backend) -> None:
        self.backend = backend
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self._server: uvicorn.Server | None = None
        self._thread: threading.Thread | None = None

    def start(self) -> None:
        config = uvicorn.Config(
            create_app(self.backend), host="127.0.0.1", port=self.port, log_level="error"
        )
        self._server = uvicorn.Server(config)
        self._thread = threading.Thread(target=self._server.run, daemon=True)
        self._thread.start()
        wait_until_healthy(self.url)

    def stop(self) -> None:
        if self._server is not None and self._thread is not None:
            self._server.should_exit = True
            self._thread.join(10)
            self._server = self._thread = None


@pytest.fixture
def server(backend):
    """A server over the test's store, not started."""
    served = Server(Refusing(backend.store, backend.entity, backend.stale_after))
    yield served
    served.stop()


@pytest.fixture
def remote(server, monkeypatch):
    """The ``HttpBackend`` that ``runbase.init`` will use, to ``server``; init waits ``WAIT``."""
    with httpx.Client(timeout=2.0) as client:
        found = HttpBackend(server.url, client=client)
        monkeypatch.setattr(sdk_run, "open_backend", lambda settings: found)
        monkeypatch.setenv("RUNBASE_INIT_TIMEOUT", str(WAIT))
        yield found


def wait_for(condition, deadline: float = 10.0) -> None:
    stop = time.monotonic() + deadline
    while not condition():
        assert time.monotonic() < stop, "timed out"
        time.sleep(0.01)


def test_init_with_the_server_down_goes_on_and_the_run_lands_whole(
    server, remote, backend, data_dir
):
    started = time.monotonic()
    with pytest.warns(UnstoredWarning, match="could not create tester/p/down") as caught:
        run = quick(runbase.init(project="p", id="down", config={"lr": 0.1}))
    assert time.monotonic() - started < WAIT + 1.5
    assert len(caught) == 1
    path = RunPath("tester", "p", "down")
    spool = Spool(data_dir, path)
    assert isinstance(spool.read(spool.entries()[0][0]), Create)
    assert run.step == 0 and run.config.lr == 0.1

    for i in range(1000):
        run.log({"i": i})
    run.summary["best"] = 7
    time.sleep(0.2)  # the writer retries meanwhile
    server.start()
    run.finish()

    record = backend.get_run(path)
    assert record.state == "finished" and record.config == {"lr": 0.1}
    assert record.summary["best"] == 7 and record.summary["i"] == 999
    assert_dense(backend, path, 1000)
    assert spool.entries() == []


def test_resuming_with_the_server_down_is_refused(server, remote):
    with pytest.raises(runbase.CommError, match="cannot resume"):
        runbase.init(project="p", id="old", resume="allow")


def test_the_server_down_mid_run_loses_nothing_and_stores_nothing_twice(
    server, remote, backend, data_dir
):
    server.start()
    run = quick(runbase.init(project="p", id="outage"), memory_rows=100)
    for i in range(300):
        run.log({"i": i})
    run.flush()
    server.stop()
    for i in range(300, 600):
        run.log({"i": i})
    wait_for(lambda: run._writer._failures > 1)
    wait_for(lambda: Spool(data_dir, run._path).entries() != [])  # past the memory limit
    server.start()
    for i in range(600, 900):
        run.log({"i": i})
    run.finish()
    assert_dense(backend, run._path, 900)
    assert backend.get_run(run._path).state == "finished"


def test_a_permanent_refusal_stops_the_upload_with_one_warning(server, remote, backend, data_dir):
    server.start()
    run = quick(runbase.init(project="p", id="refused"))
    server.backend.refuse = True
    for i in range(10):
        run.log({"i": i})
    wait_for(lambda: run._writer.halted is not None)
    spool = Spool(data_dir, run._path)
    with pytest.warns(UnstoredWarning, match=r"Forbidden.*read-only.*runbase sync") as caught:
        for i in range(10, 500):
            run.log({"i": i})  # never raises, never blocks
    assert len(caught) == 1 and str(spool.dir) in str(caught[0].message)
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # no second warning
        run.flush()
        run.finish()
    assert server.backend.refused == 1  # not retried
    waiting = pending(spool)
    assert waiting.rows == 500 and waiting.created
    assert sum(len(b.rows) for _, b in spool if isinstance(b, History)) == 500
    assert backend.get_run(run._path).state == "running"

    server.backend.refuse = False  # e.g. a read-write key now: runbase sync uploads the rest
    upload(remote, spool)
    assert_dense(backend, run._path, 500)
    assert backend.get_run(run._path).state == "finished"


def test_heartbeats_keep_a_remote_run_running(server, remote, backend, monkeypatch):
    server.backend = LocalBackend(backend.store, backend.entity, stale_after=1.0)
    server.start()
    monkeypatch.setenv("RUNBASE_HEARTBEAT_INTERVAL", "0.1")
    run = runbase.init(project="p", id="beating")
    run.log({"i": 0})
    run.flush()
    time.sleep(1.5)  # longer than the server's timeout: only heartbeats keep it running
    assert server.backend.get_run(run._path).state == "running"
    run._writer.heartbeat_every = 3600.0  # the process hangs: no more heartbeats
    time.sleep(1.5)
    assert server.backend.get_run(run._path).state == "crashed"
    run.finish()
    assert server.backend.get_run(run._path).state == "finished"
