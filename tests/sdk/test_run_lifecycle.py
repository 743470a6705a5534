"""init defaults, resume, finish states, heartbeat-based crash detection, files, modes."""

from __future__ import annotations

import re
import time

import pytest

import runbase
from runbase.backend.base import RunPath
from runbase.errors import Conflict, NotFound
from tests.sdk.stored import file_bytes, stored_texts

pytestmark = pytest.mark.usefixtures("sdk_transport")


def test_init_defaults(backend, monkeypatch):
    monkeypatch.setenv("RUNBASE_PROJECT", "from-env")
    with runbase.init() as run:
        assert re.fullmatch(r"[a-z0-9]{8}", run.id)
        assert run.project == "from-env" and run.entity == "tester"
        assert run.path == f"tester/from-env/{run.id}"
        assert re.fullmatch(r"[a-z]+-[a-z]+-1", run.name)
        assert run.url.endswith(f"/tester/from-env/runs/{run.id}")
    monkeypatch.delenv("RUNBASE_PROJECT")
    with runbase.init() as second:
        assert second.project == "uncategorized"


def test_init_arguments_are_stored(backend, tmp_path):
    with runbase.init(
        project="p", entity="team", name="my run", id="abc123", config={"lr": 1},
        tags=["a", "b"], notes="n", group="g", job_type="train", dir=tmp_path / "d",
    ) as run:  # fmt: skip
        assert run.dir == str(tmp_path / "d")
    record = backend.get_run(RunPath("team", "p", "abc123"))
    assert (record.display_name, record.tags, record.notes, record.group, record.job_type) == (
        "my run", ("a", "b"), "n", "g", "train",
    )  # fmt: skip
    assert record.config == {"lr": 1} and record.state == "finished"
    assert record.metadata["python"] and "host" in record.metadata


@pytest.mark.parametrize(
    "kwargs, error",
    [
        ({"tags": "not-a-list"}, TypeError),
        ({"resume": "sometimes"}, ValueError),
        ({"resume": "must"}, ValueError),
        ({"id": "a/b"}, ValueError),
        ({"mode": "loud"}, ValueError),
        ({"config": 3}, TypeError),
        ({"project": "a/b"}, ValueError),
        ({"project": 123}, ValueError),
        ({"entity": "x" * 200}, ValueError),
        ({"name": 5}, ValueError),
        ({"group": ["x"]}, ValueError),
        ({"notes": b"bytes"}, ValueError),
    ],
)
def test_init_rejects_bad_arguments(backend, kwargs, error):
    with pytest.raises(error) as caught:
        runbase.init(**{"project": "p", **kwargs})
    assert next(iter(kwargs)) in str(caught.value)  # the message names the argument
    assert backend.list_projects("tester", 10, None).items == []


def test_resume_continues_at_the_next_step_keeping_config_and_summary(backend):
    with runbase.init(project="p", id="res1", config={"lr": 0.1}) as run:
        run.log({"loss": 3})
        run.log({"loss": 2})
    with runbase.init(project="p", id="res1", resume="allow", config={"extra": 1}) as again:
        assert again.step == 2 and again.config.lr == 0.1 and again.summary["loss"] == 2
        again.log({"loss": 1})
    record = backend.get_run(run._path)
    assert record.config == {"lr": 0.1, "extra": 1}
    assert record.last_step == 2 and record.history_line_count == 3
    steps = stored_texts(backend, run._path)
    assert [s.count('"loss"') for s in steps] == [1, 1, 1]


def test_resume_modes(backend):
    with pytest.raises(NotFound, match="res2"):
        runbase.init(project="p", id="res2", resume="must")
    runbase.init(project="p", id="res2", resume="never").finish()
    with pytest.raises(Conflict, match="already exists"):
        runbase.init(project="p", id="res2", resume="never")
    with pytest.raises(Conflict, match="resume="):
        runbase.init(project="p", id="res2")
    runbase.init(project="p", id="res2", resume="must").finish()
    runbase.init(project="p", id="res3", resume="allow").finish()
    assert backend.get_run(RunPath("tester", "p", "res3")).state == "finished"


def test_finish_states(backend):
    with runbase.init(project="p", id="ok") as run:
        pass
    runbase.init(project="p", id="bad").finish(exit_code=3)
    with pytest.raises(RuntimeError), runbase.init(project="p", id="raised"):
        raise RuntimeError("boom")
    with pytest.raises(KeyboardInterrupt), runbase.init(project="p", id="interrupted"):
        raise KeyboardInterrupt
    states = {
        rid: (backend.get_run(RunPath("tester", "p", rid)).state,
              backend.get_run(RunPath("tester", "p", rid)).exit_code)
        for rid in ("ok", "bad", "raised", "interrupted")
    }  # fmt: skip
    assert states == {
        "ok": ("finished", 0), "bad": ("crashed", 3), "raised": ("crashed", 1),
        "interrupted": ("aborted", 255),
    }  # fmt: skip
    assert run.summary["_wandb"]["runtime"] >= 0


def test_a_silent_run_is_shown_crashed_after_the_heartbeat_timeout(data_dir, monkeypatch):
    monkeypatch.setenv("RUNBASE_HEARTBEAT_TIMEOUT", "2")
    monkeypatch.setenv("RUNBASE_HEARTBEAT_INTERVAL", "0.1")
    from runbase.backend import open_backend
    from runbase.backend.local import LocalBackend
    from runbase.settings import Settings
    from runbase.store import schema

    backend = open_backend(Settings.load())
    assert isinstance(backend, LocalBackend)  # the test's store: its heartbeats can be aged
    run = runbase.init(project="p", id="hb")
    time.sleep(2.5)  # past the timeout: only the heartbeats (20 of them) keep it alive
    assert backend.get_run(run._path).state == "running"
    run._writer.heartbeat_every = float("inf")  # the process "hangs": no more heartbeats
    time.sleep(0.3)  # a heartbeat already on its way lands
    with backend.store.engine.begin() as conn:  # two silent minutes, without waiting them
        conn.execute(schema.runs.update().values(heartbeat_at=time.time() - 120))
    assert backend.get_run(run._path).state == "crashed"
    run.finish()  # the run's own ending still stores its state
    assert backend.get_run(run._path).state == "finished"


def test_log_after_finish_is_refused(backend):
    run = runbase.init(project="p")
    run.finish()
    with pytest.raises(ValueError, match="finished"):
        run.log({"a": 1})


def test_save_stores_files_with_metadata(backend, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "ckpt").mkdir()
    (tmp_path / "ckpt" / "model.bin").write_bytes(b"\x00\x01weights")
    (tmp_path / "notes.txt").write_text("hello")
    with runbase.init(project="p") as run:
        assert run.save("ckpt/*.bin") == ["ckpt/model.bin"]
        assert run.save(str(tmp_path / "notes.txt")) == ["notes.txt"]
        (tmp_path / "notes.txt").write_text("hello again")  # live: re-saved at finish
        (tmp_path / "late.txt").write_text("end")
        run.save("late.txt", policy="end")
        (tmp_path / "once.txt").write_text("first")
        run.save("once.txt", policy="now")
        run.flush()  # the writer reads a saved file when it stores it
        (tmp_path / "once.txt").write_text("changed later")  # now: not stored again
        with pytest.raises(ValueError, match="policy"):
            run.save("late.txt", policy="sometimes")
        (__import__("pathlib").Path(run.dir) / "in-run-dir.txt").write_text("auto")
    page = backend.list_files(run._path, [], 50, None)
    by_name = {f.name: f for f in page.items}
    assert set(by_name) == {
        "ckpt/model.bin", "notes.txt", "late.txt", "once.txt", "in-run-dir.txt",
    }  # fmt: skip
    assert file_bytes(backend, run._path, "once.txt") == b"first"
    assert by_name["notes.txt"].size == len("hello again")
    assert by_name["notes.txt"].mimetype == "text/plain"
    assert file_bytes(backend, run._path, "ckpt/model.bin") == b"\x00\x01weights"
    import hashlib

    assert by_name["late.txt"].md5 == hashlib.md5(b"end").hexdigest()


def test_disabled_mode_stores_nothing(data_dir):
    run = runbase.init(project="p", mode="disabled", config={"a": 1})
    run.log({"x": 1})
    run.summary["y"] = 2
    assert run.config.a == 1
    run.finish()
    assert not (data_dir / "runbase.db").exists()


def test_system_metrics_stream(data_dir, monkeypatch):
    monkeypatch.setenv("RUNBASE_SYSTEM_INTERVAL", "0.05")
    from runbase.backend import open_backend
    from runbase.settings import Settings

    backend = open_backend(Settings.load())
    with runbase.init(project="p") as run:
        time.sleep(0.4)
    rows = stored_texts(backend, run._path, "system")
    assert len(rows) >= 2
    record = backend.get_run(run._path)
    assert record.system_metrics["system.memory_percent"] > 0
    assert "system.proc.memory.rssMB" in record.system_metrics
    assert "system.cpu" in backend.history_keys(run._path, "system").keys
