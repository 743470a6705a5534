"""Offline runs and ``runbase sync``: a run logged with no backend at all, uploaded later,
once and only once."""

from __future__ import annotations

import math
import shutil
import threading

import pytest
import uvicorn
from typer.testing import CliRunner

import runbase
from runbase.backend.base import HistoryRow, NewRun, RunPath
from runbase.cli import app
from runbase.errors import InvalidInput, NotFound
from runbase.sdk import run as sdk_run
from runbase.sdk.spool import Create, Spool
from runbase.sdk.sync import find_spools, pending, upload
from runbase.server import create_app
from tests.sdk.test_writer import assert_dense
from tests.server.test_live import free_port, wait_until_healthy

runner = CliRunner()
PATH = RunPath("tester", "p", "off")


def nothing_opened(settings):
    raise AssertionError("an offline run opened a backend")


def log_offline(run_id: str = "off", rows: int = 100) -> runbase.Run:
    with runbase.init(project="p", id=run_id, mode="offline", config={"lr": 0.5}) as run:
        for i in range(rows):
            run.log({"i": i})
        run.summary["best"] = 3
    return run


def test_an_offline_run_writes_only_its_spool(data_dir, monkeypatch, capsys):
    monkeypatch.setattr(sdk_run, "open_backend", nothing_opened)
    run = log_offline()
    assert run.config.lr == 0.5 and run.step == 100
    spool = Spool(data_dir, PATH)
    kinds = [kind for _, kind in spool.entries()]
    assert kinds[0] == "create" and kinds[-1] == "finish" and "history" in kinds
    first = spool.read(spool.entries()[0][0])
    assert isinstance(first, Create) and first.new.config == {"lr": 0.5}
    assert not (data_dir / "runbase.db").exists()  # no store was opened
    assert "runbase sync" in capsys.readouterr().err


def test_offline_runs_cannot_resume(data_dir):
    with pytest.raises(InvalidInput, match="cannot resume"):
        runbase.init(project="p", id="off", mode="offline", resume="allow")


def test_sync_uploads_an_offline_run_once(data_dir, backend, tmp_path):
    log_offline()
    with pytest.raises(NotFound):
        backend.get_run(PATH)
    spool = Spool(data_dir, PATH)
    copy = tmp_path / "copy"
    shutil.copytree(spool.dir, copy)

    status = runner.invoke(app, ["sync", "--status"])
    assert status.exit_code == 0, status.output
    assert "tester/p/off" in status.output and "100" in status.output

    result = runner.invoke(app, ["sync"])
    assert result.exit_code == 0, result.output
    assert "uploaded 1 of 1 runs" in result.output
    record = backend.get_run(PATH)
    assert record.state == "finished" and record.config == {"lr": 0.5}
    assert record.summary["best"] == 3 and record.summary["i"] == 99
    assert_dense(backend, PATH, 100)
    assert spool.entries() == []

    # a second sync finds nothing; the same spool uploaded again stores nothing twice
    again = runner.invoke(app, ["sync", "--status"])
    assert "0 runs wait" in again.output
    assert runner.invoke(app, ["sync"]).exit_code == 0
    result = runner.invoke(app, ["sync", str(copy)])
    assert result.exit_code == 0, result.output
    assert_dense(backend, PATH, 100)
    assert backend.get_run(PATH).state == "finished"


def test_sync_finds_spools_in_folders_and_data_dirs(data_dir, tmp_path):
    log_offline("one", rows=3)
    log_offline("two", rows=5)
    by_data_dir = find_spools([data_dir])
    assert sorted(s.path.run_id for s in by_data_dir) == ["one", "two"]
    moved = tmp_path / "elsewhere"
    shutil.move(str(Spool(data_dir, RunPath("tester", "p", "two")).dir), moved)
    (found,) = find_spools([moved])
    assert found.path == RunPath("tester", "p", "two")
    waiting = pending(found)
    assert (waiting.rows, waiting.created) == (5, False)
    with pytest.raises(InvalidInput):
        find_spools([tmp_path / "missing"])


def test_sync_stops_at_an_error_and_keeps_the_rest(data_dir, backend):
    log_offline("clash", rows=4)
    # another run already holds history under that path: its rows would collide
    clash = RunPath("tester", "p", "clash")
    backend.create_run(clash, NewRun())
    backend.append_history(clash, "default", [HistoryRow(0, 0, ("x",), '{"x":1}')], {"x": 1})
    spool = Spool(data_dir, clash)
    before = pending(spool).batches
    result = runner.invoke(app, ["sync", str(spool.dir)])
    assert result.exit_code == 1 and "already exists" in result.output
    assert pending(spool).batches == before


def test_sync_goes_to_the_server_of_the_base_url(data_dir, backend, monkeypatch):
    log_offline(rows=50)
    port = free_port()
    config = uvicorn.Config(create_app(backend), host="127.0.0.1", port=port, log_level="error")
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    try:
        url = f"http://127.0.0.1:{port}"
        wait_until_healthy(url)
        monkeypatch.setenv("RUNBASE_BASE_URL", url)
        monkeypatch.delenv("RUNBASE_DATABASE_URL", raising=False)
        monkeypatch.setenv("RUNBASE_DIR", str(data_dir))
        result = runner.invoke(app, ["sync", str(data_dir)])
        assert result.exit_code == 0, result.output
    finally:
        server.should_exit = True
        thread.join(10)
    assert_dense(backend, PATH, 50)
    assert backend.get_run(PATH).state == "finished"


def test_upload_is_the_same_through_the_function(data_dir, backend):
    log_offline(rows=10)
    (spool,) = find_spools([data_dir / "spool"])
    seen = []
    assert upload(backend, spool, lambda: seen.append(1)) == len(seen) > 2
    assert upload(backend, spool) == 0
    assert_dense(backend, PATH, 10)


def test_a_create_record_keeps_every_field(tmp_path):
    new = NewRun(
        display_name="n", config={"lr": float("nan"), "x": [1]}, tags=("a",), notes="t",
        group="g", metadata={"host": "h"},
    )  # fmt: skip
    spool = Spool(tmp_path, PATH)
    spool.write(0, Create(new))
    ((_, back),) = spool
    assert isinstance(back, Create) and math.isnan(back.new.config.pop("lr"))
    assert back.new == NewRun(
        display_name="n", config={"x": [1]}, tags=("a",), notes="t", group="g",
        metadata={"host": "h"},
    )  # fmt: skip
