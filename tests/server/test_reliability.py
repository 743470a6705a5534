"""The remote SDK against real ``runbase server`` processes that die, stop and come back: every
row lands once. Training scripts are child processes (``runbase.init``/``log`` with
``RUNBASE_BASE_URL`` and ``RUNBASE_API_KEY``), as in real use.
The outages are full length: a server away for 20 s mid-run, and one that starts 10 s after
``init``. The children retry with the writer's default backoff."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from typer.testing import CliRunner

import runbase
from runbase.backend import close_backends, open_backend
from runbase.backend.base import Backend, HistoryQuery, RunPath
from runbase.backend.http import HttpBackend
from runbase.cli import app
from runbase.settings import Settings
from tests.sdk.test_writer import assert_dense
from tests.server.test_live import free_port, wait_until_healthy

OUTAGE = 20.0  # seconds a server stays away mid-run
LATE_START = 10.0  # seconds after init that a server starts
DEADLINE = 60.0  # the most any wait here lasts

# A training script: logs ``rows`` rows in chunks, pausing after each; prints how many rows the
# server has acknowledged whenever a short flush finds everything stored, and at the end the
# slowest ``log()`` call, then finishes.
TRAINING = """
import sys, time
import runbase

run_id, rows, chunk, pause = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), float(sys.argv[4])
run = runbase.init(project="rel", id=run_id)
slowest = 0.0
for start in range(0, rows, chunk):
    for i in range(start, min(rows, start + chunk)):
        began = time.perf_counter()
        run.log({"i": i})
        slowest = max(slowest, time.perf_counter() - began)
    if run._writer.flush(timeout=0.5):
        print("acked", min(rows, start + chunk), flush=True)
    time.sleep(pause)
print("slowest log", slowest, flush=True)
run.finish()
print("finished", flush=True)
"""


class ServerProcess:
    """``runbase server`` on one port, started, killed and started again at will."""

    def __init__(self, where: list[str], log: Path, port: int | None = None) -> None:
        self.where = where
        self.port = port or free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.log = log
        self.process: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        runbase_cli = str(Path(sys.executable).parent / "runbase")
        command = [runbase_cli, "server", "--port", str(self.port), *self.where]
        with open(self.log, "ab") as log:
            self.process = subprocess.Popen(command, stdout=log, stderr=subprocess.STDOUT)
        wait_until_healthy(self.url)

    def kill(self) -> None:
        self.process, process = None, self.process
        if process is not None:
            process.send_signal(signal.SIGKILL)
            process.wait(DEADLINE)

    def stop(self) -> None:
        self.process, process = None, self.process
        if process is not None:
            process.send_signal(signal.SIGTERM)
            assert process.wait(DEADLINE) == 0, self.log.read_text()


class Training:
    """The training script in a child process, logging to ``url`` with ``key``."""

    def __init__(self, tmp: Path, url: str, key: str, run_id: str, rows: int, chunk: int = 100,
                 pause: float = 0.0) -> None:  # fmt: skip
        self.output = tmp / f"{run_id}.out"
        env = {key: value for key, value in os.environ.items() if key != "RUNBASE_DATABASE_URL"}
        env.update(
            RUNBASE_BASE_URL=url, RUNBASE_API_KEY=key, RUNBASE_ENTITY="tester",
            RUNBASE_DIR=str(tmp / "client"), RUNBASE_SYSTEM_INTERVAL="0",
            RUNBASE_INIT_TIMEOUT="1", RUNBASE_FINISH_TIMEOUT=str(DEADLINE),
        )  # fmt: skip
        arguments = [run_id, str(rows), str(chunk), str(pause)]
        with open(self.output, "wb") as out:
            self.process = subprocess.Popen(
                [sys.executable, "-c", TRAINING, *arguments],
                stdout=out, stderr=subprocess.STDOUT, env=env,
            )  # fmt: skip

    def acked(self) -> int:
        """The rows the server has acknowledged so far, as the script printed them."""
        lines = self.output.read_text().split("\n")
        return max([int(line.split()[1]) for line in lines if line.startswith("acked ")] or [0])

    def wait_until_acked(self, rows: int) -> int:
        stop = time.monotonic() + DEADLINE
        while (acked := self.acked()) < rows:
            assert self.process.poll() is None, self.output.read_text()
            assert time.monotonic() < stop, self.output.read_text()
            time.sleep(0.05)
        return acked

    def wait(self) -> None:
        try:
            code = self.process.wait(DEADLINE)
        finally:
            if self.process.poll() is None:
                self.process.kill()
        output = self.output.read_text()
        assert code == 0 and "finished" in output, output
        slowest = float(output.split("slowest log ")[1].split()[0])
        assert slowest < 1.0, output  # logging never waited for the server


@pytest.fixture
def where(data_dir, database_url):
    """The server's options: the test's store (SQLite in the data directory, or PostgreSQL)."""
    return ["--data-dir", str(data_dir)] + (["--db", database_url] if database_url else [])


@pytest.fixture
def key(where):
    """A read-write API key of the user ``tester``, made with the CLI."""
    runner = CliRunner()
    assert runner.invoke(app, ["user", "create", "tester", *where]).exit_code == 0
    made = runner.invoke(app, ["key", "create", "--user", "tester", *where])
    assert made.exit_code == 0, made.output
    close_backends()
    return made.stdout.strip()


@pytest.fixture
def servers(where, tmp_path):
    """Makes ``runbase server`` processes on the test's store; stops them all at the end."""
    made: list[ServerProcess] = []

    def make(port: int | None = None, files: str | None = None) -> ServerProcess:
        options = where + (["--files", files] if files else [])
        made.append(ServerProcess(options, tmp_path / f"server-{len(made)}.log", port))
        return made[-1]

    yield make
    for server in made:
        server.kill()


def stored(run_id: str) -> tuple[Backend, RunPath]:
    """The test's store, opened here (the servers' own), and the run's path in it."""
    return open_backend(Settings.load()), RunPath("tester", "rel", run_id)


def test_a_sigkilled_server_loses_no_acknowledged_batch(key, servers, tmp_path):
    server = servers()
    server.start()
    training = Training(tmp_path, server.url, key, "killed", rows=2000, pause=0.02)
    acked = training.wait_until_acked(500)
    server.kill()
    backend, path = stored("killed")
    rows = backend.scan_history(HistoryQuery(path, page_size=acked)).items
    assert len(rows) >= acked  # every row acknowledged before the kill is stored
    close_backends()
    time.sleep(0.5)  # the script's requests fail meanwhile
    server.start()  # the same port, the same store
    training.wait()
    backend, path = stored("killed")
    assert_dense(backend, path, 2000)
    assert backend.get_run(path).state == "finished"


def test_a_server_away_for_seconds_mid_run_loses_nothing(key, servers, tmp_path):
    server = servers()
    server.start()
    training = Training(tmp_path, server.url, key, "outage", rows=5000, pause=0.5)
    training.wait_until_acked(300)
    server.stop()
    time.sleep(OUTAGE)  # the script logs on meanwhile
    assert training.process.poll() is None
    server.start()
    training.wait()
    backend, path = stored("outage")
    assert_dense(backend, path, 5000)
    assert backend.get_run(path).state == "finished"


def test_init_with_the_server_down_lands_whole_once_it_starts(key, servers, tmp_path):
    server = servers()
    training = Training(tmp_path, server.url, key, "late", rows=3000, pause=0.5)
    time.sleep(LATE_START)  # the script logs on meanwhile
    assert training.process.poll() is None
    server.start()
    training.wait()
    assert training.output.read_text().count("could not create") == 1  # the one warning
    backend, path = stored("late")
    assert_dense(backend, path, 3000)
    assert backend.get_run(path).state == "finished"


def test_twenty_processes_at_once_lose_nothing(key, servers, tmp_path):
    server = servers()
    server.start()
    trainings = [
        Training(tmp_path, server.url, key, f"many{n}", rows=200, chunk=50) for n in range(20)
    ]
    for training in trainings:
        training.wait()
    backend, _ = stored("many0")
    for n in range(20):
        path = RunPath("tester", "rel", f"many{n}")
        assert_dense(backend, path, 200)
        assert backend.get_run(path).state == "finished"


def test_two_servers_share_one_postgresql_database_and_object_store(
    key, servers, database_url, s3_files, monkeypatch
):
    if database_url is None:
        pytest.skip("several servers share a PostgreSQL database, not a SQLite file")
    one, two = servers(files=s3_files), servers(files=s3_files)
    one.start()
    two.start()
    first = HttpBackend(one.url, entity="tester", api_key=key)
    second = HttpBackend(two.url, entity="tester", api_key=key)
    api = runbase.Api(backend=second)

    monkeypatch.delenv("RUNBASE_DATABASE_URL")  # the SDK logs to the servers, not the database
    with runbase.init(project="rel", id="halves", config={"lr": 0.1},
                      settings=Settings.load(base_url=one.url, api_key=key)) as run:  # fmt: skip
        for i in range(500):
            run.log({"i": i})
    assert api.run("tester/rel/halves").config == {"lr": 0.1}  # written via one, read via two
    with runbase.init(project="rel", id="halves", resume="must",
                      settings=Settings.load(base_url=two.url, api_key=key)) as run:  # fmt: skip
        for i in range(500, 1000):
            run.log({"i": i})
    path = RunPath("tester", "rel", "halves")
    weights = os.urandom(3 * 1024 * 1024)
    first.put_file(path, "weights.bin", [weights[:1000], weights[1000:]])
    assert b"".join(second.read_file(path, "weights.bin")) == weights  # the shared store
    assert api.run("tester/rel/halves").file("weights.bin").size == len(weights)
    second.delete_file(path, "weights.bin")
    assert [f.name for f in first.list_files(path, [], 50, None).items] == []
    for remote in (first, second):
        assert_dense(remote, path, 1000)
        assert remote.get_run(path).state == "finished"
        remote.close()
