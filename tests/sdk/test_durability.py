"""Flush at exit, SIGKILL durability, and several processes writing one store."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
import time

import pytest

from runbase.backend.base import RunPath
from runbase.store.engine import sqlite_module
from tests.sdk.stored import stored_rows, stored_texts

pytestmark = pytest.mark.slow


def run_script(code: str, env: dict) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-c", textwrap.dedent(code)],
        env={**os.environ, **env},
        capture_output=True,
        text=True,
        timeout=120,
    )


def env_for(data_dir) -> dict:
    return {
        "RUNBASE_DIR": str(data_dir),
        "RUNBASE_SYSTEM_INTERVAL": "0",
        "RUNBASE_ENTITY": "tester",
    }


def test_rows_are_flushed_at_exit_without_finish(data_dir, backend):
    proc = run_script(
        """
        import runbase
        run = runbase.init(project="p", id="noflush")
        for i in range(5000):
            run.log({"i": i})
        run.log({"last": True}, commit=False)
        """,
        env_for(data_dir),
    )
    assert proc.returncode == 0, proc.stderr
    record = backend.get_run(RunPath("tester", "p", "noflush"))
    assert record.history_line_count == 5001 and record.state == "finished"
    assert record.summary["i"] == 4999 and record.summary["last"] is True


def test_an_uncaught_exception_marks_the_run_crashed(data_dir, backend):
    proc = run_script(
        """
        import runbase
        run = runbase.init(project="p", id="boom")
        run.log({"i": 1})
        raise SystemError("boom")
        """,
        env_for(data_dir),
    )
    assert proc.returncode == 1, proc.stderr
    record = backend.get_run(RunPath("tester", "p", "boom"))
    assert (record.state, record.exit_code, record.history_line_count) == ("crashed", 1, 1)


def test_rows_logged_a_second_before_sigkill_survive(data_dir, backend):
    code = """
        import sys, time
        import runbase
        run = runbase.init(project="p", id="killed")
        print("ready", flush=True)
        i = 0
        while True:
            run.log({"i": i, "t": time.time()})
            i += 1
            if i % 100 == 0:
                time.sleep(0.001)
        """
    with subprocess.Popen(
        [sys.executable, "-c", textwrap.dedent(code)],
        env={**os.environ, **env_for(data_dir)},
        stdout=subprocess.PIPE,
        text=True,
    ) as proc:
        assert proc.stdout is not None
        assert proc.stdout.readline().strip() == "ready"
        time.sleep(2.5)
        killed_at = time.time()
        proc.send_signal(signal.SIGKILL)
        proc.wait(30)
    path = RunPath("tester", "p", "killed")
    values = stored_rows(backend, path)
    assert [v["i"] for v in values] == list(range(len(values)))  # no gaps, nothing twice
    assert values[-1]["t"] >= killed_at - 1.0
    if backend.store.dialect == "sqlite":
        db = sqlite_module().connect(str(data_dir / "runbase.db"))
        assert db.execute("PRAGMA integrity_check").fetchall() == [("ok",)]
        db.close()


def test_four_processes_log_into_one_store_at_once(data_dir, backend):
    code = """
        import sys
        import runbase
        with runbase.init(project="shared", id=sys.argv[1], config={"worker": sys.argv[1]}) as run:
            for i in range(3000):
                run.log({"i": i, "loss": 1.0 / (i + 1)})
                if i % 500 == 0:
                    run.summary["checkpoint"] = i
        """
    procs = [
        subprocess.Popen(
            [sys.executable, "-c", textwrap.dedent(code), f"w{n}"],
            env={**os.environ, **env_for(data_dir)},
        )
        for n in range(4)
    ]
    assert [proc.wait(120) for proc in procs] == [0, 0, 0, 0]
    for n in range(4):
        record = backend.get_run(RunPath("tester", "shared", f"w{n}"))
        assert record.history_line_count == 3000 and record.last_step == 2999
        assert record.summary["i"] == 2999 and record.summary["checkpoint"] == 2500
        assert record.state == "finished"
        assert len(stored_texts(backend, record.path)) == 3000
