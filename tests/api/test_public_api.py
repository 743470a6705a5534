"""Api and Run: defaults, paths, every seed attribute, updates, the cache, errors."""

from __future__ import annotations

import re

import pytest

import runbase
import runbase.api
from runbase.api import Api, Project, Run, Summary, User
from runbase.backend.base import RunPath
from runbase.backend.local import LocalBackend
from runbase.errors import CommError, NotFound, ReadOnly, Unsupported
from runbase.settings import Settings
from runbase.store import Store

ENTITY = "tester"
PROJECT = "proj"


ISO = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d$")


def test_exported_members():
    assert runbase.api.__all__ == [
        "Api", "File", "Files", "HistoryScan", "Project", "Projects", "Run", "Runs",
        "Summary", "Sweep", "User",
    ]  # fmt: skip
    assert runbase.Api is Api


def test_defaults_come_from_overrides_and_the_backend(backend, monkeypatch):
    monkeypatch.delenv("RUNBASE_ENTITY")
    api = Api(backend=backend)
    assert api.settings["entity"] is None
    assert api.default_entity == ENTITY
    assert backend.calls["default_entity"] == 1
    assert api.settings["project"] is None
    assert api.settings["base_url"] == "http://127.0.0.1:8080"
    api = Api({"entity": "team", "project": "p", "run": "r1", "base_url": "http://h:1/"},
              backend=backend)  # fmt: skip
    assert (api.default_entity, api.settings["project"], api.settings["run"]) == ("team", "p", "r1")
    assert api.settings["base_url"] == "http://h:1/"


def test_api_without_a_backend_opens_the_configured_store(data_dir):
    api = Api({"project": "p"})
    run = Run.create(api, run_id="r1")
    assert api.run("p/r1").id == "r1"
    assert run.entity == "tester"


@pytest.mark.parametrize(
    "path",
    [f"{ENTITY}/{PROJECT}/abc", f"{ENTITY}/{PROJECT}/runs/abc", f"{PROJECT}/abc", "abc",
     f"/{ENTITY}/{PROJECT}/runs/abc/", f"http://127.0.0.1:8080/{ENTITY}/{PROJECT}/runs/abc"],
)  # fmt: skip
def test_run_paths(api, make, path):
    make.create("abc")
    assert api.run(path).path == f"{ENTITY}/{PROJECT}/abc"


def test_run_uses_the_default_run(backend, make):
    make.create("abc")
    assert Api({"project": PROJECT, "run": "abc"}, backend=backend).run().id == "abc"


@pytest.mark.parametrize("path", ["", "a/b/c/d/e", "a/b/x/c"])
def test_bad_run_paths_name_the_path(api, path):
    with pytest.raises(ValueError, match="run path"):
        api.run(path)


def test_missing_run_is_a_value_error_naming_it(api):
    with pytest.raises(ValueError, match=f"{ENTITY}/{PROJECT}/nope") as info:
        api.run("nope")
    assert isinstance(info.value, NotFound)


def test_every_seed_attribute(api, make):
    path = make.create(
        "r1", display_name="first", config={"lr": 0.1, "nested": {"a": 1}, "_wandb": {"x": 1}},
        tags=["a", "b"], notes="some notes", group="g", job_type="train",
    )  # fmt: skip
    make.log(path, [{"_step": 0, "loss": 1.0}, {"_step": 1, "loss": 0.5, "acc": 0.9}])
    make.log(path, [{"system.cpu": 12.5, "_timestamp": 1.0}], stream="system")
    run = api.run("r1")
    assert run.id == "r1"
    assert run.name == "first"
    assert run.display_name == "first"
    assert run.tags == ["a", "b"]
    assert run.url == f"http://127.0.0.1:8080/{ENTITY}/{PROJECT}/runs/r1"
    assert run.state == "running"
    assert run.config == {"lr": 0.1, "nested": {"a": 1}}
    assert run.rawconfig["_wandb"] == {"x": 1}
    assert ISO.match(run.created_at) and ISO.match(run.heartbeat_at)
    assert run.system_metrics == {"system.cpu": 12.5, "_timestamp": 1.0}
    assert isinstance(run.summary, Summary)
    assert run.summary["loss"] == 0.5 and run.summary["acc"] == 0.9
    assert (run.project, run.entity, run.path) == (PROJECT, ENTITY, f"{ENTITY}/{PROJECT}/r1")
    assert run.user == ENTITY and isinstance(run.user, User)
    assert run.user.username == ENTITY and run.user.name == ENTITY
    assert run.notes == "some notes"
    assert run.read_only is False
    assert run.history_keys == {
        "keys": {
            "_step": {"typeCounts": [{"type": "number", "count": 2}]},
            "loss": {"typeCounts": [{"type": "number", "count": 2}]},
            "acc": {"typeCounts": [{"type": "number", "count": 1}]},
        },
        "lastStep": 1,
    }
    assert isinstance(run.storage_id, int)
    assert (run.group, run.job_type, run.lastHistoryStep) == ("g", "train", 1)
    assert run.history_line_count == 2
    assert run.sweep is None
    assert repr(run) == f"<Run {ENTITY}/{PROJECT}/r1 (running)>"


def test_run_without_history(api, make):
    make.create("empty")
    run = api.run("empty")
    assert run.lastHistoryStep == -1
    assert run.history_keys == {"keys": {}, "lastStep": -1}
    assert run.summary == {}


def test_create(api):
    run = Run.create(api, run_id="new1", project="other")
    assert (run.id, run.project, run.entity, run.state) == ("new1", "other", ENTITY, "running")
    generated = Run.create(api)
    assert re.fullmatch(r"[a-z0-9]{8}", generated.id) and generated.project == PROJECT
    assert api.create_run(run_id="new2").path == f"{ENTITY}/{PROJECT}/new2"
    api.flush()
    assert api.run("other/new1").id == "new1"


def test_update_persists_editable_fields(api, make, backend):
    make.create("r1", config={"lr": 0.1, "_wandb": {"keep": True}})
    run = api.run("r1")
    run.name = "renamed"
    run.tags.append("new")
    run.notes = "n"
    run.group = "g2"
    run.job_type = "eval"
    run.config["lr"] = 0.2
    run.config["extra"] = [1, 2]
    run.summary._json_dict["direct"] = 3
    run.update()
    stored = backend.get_run(RunPath(ENTITY, PROJECT, "r1"))
    assert stored.display_name == "renamed"
    assert stored.tags == ("new",)
    assert (stored.notes, stored.group, stored.job_type) == ("n", "g2", "eval")
    assert stored.config == {"lr": 0.2, "extra": [1, 2], "_wandb": {"keep": True}}
    assert stored.summary == {"direct": 3}
    api.flush()
    again = api.run("r1")
    assert (again.name, again.tags, again.config) == (
        "renamed",
        ["new"],
        {"lr": 0.2, "extra": [1, 2]},
    )


def test_update_without_changes_writes_nothing(api, make, backend):
    make.create("r1")
    run = api.run("r1")
    run.update()
    assert backend.calls["update_run"] == 0


def test_summary_writes_are_stored_at_once(api, make, backend):
    path = make.create("r1")
    make.log(path, [{"_step": 0, "loss": 1.0}])
    run = api.run("r1")
    run.summary.update({"best": {"acc": 0.9, "epoch": 3}, "note": "x"})
    assert backend.get_run(path).summary == {
        "_step": 0, "loss": 1.0, "best": {"acc": 0.9, "epoch": 3}, "note": "x",
    }  # fmt: skip
    run.summary["loss"] = 0.25
    del run.summary["note"]
    assert backend.get_run(path).summary == {
        "_step": 0,
        "loss": 0.25,
        "best": {"acc": 0.9, "epoch": 3},
    }
    assert run.summary["best"]["acc"] == 0.9
    assert run.summary.loss == 0.25
    assert "note" not in run.summary and len(run.summary) == 3
    assert str(run.summary) == repr(dict(run.summary))
    run.summary["best"]["acc"] = 0.95
    assert run.summary.dirty
    run.summary.update()
    assert backend.get_run(path).summary["best"] == {"acc": 0.95, "epoch": 3}
    with pytest.raises(KeyError):
        del run.summary["absent"]


def test_read_only_run_refuses_writes(api, make, backend):
    path = make.create("r1")
    before = backend.get_run(path)
    run = make.read_only(api, path)
    assert run.read_only is True
    run.name = "changed"
    with pytest.raises(ReadOnly, match="r1 is read-only"):
        run.update()
    with pytest.raises(ReadOnly):
        run.summary["x"] = 1
    after = backend.get_run(path)
    assert (after.display_name, after.summary) == (before.display_name, before.summary)


def test_one_api_caches_until_flush(api, make, backend):
    path = make.create("r1")
    make.log(path, [{"_step": 0, "loss": 1.0}])
    run = api.run("r1")
    assert api.run(f"{ENTITY}/{PROJECT}/r1") is run
    assert len(run.history(pandas=False)) == 1
    runs = api.runs(PROJECT)
    assert [r.id for r in runs] == ["r1"]
    assert api.runs(PROJECT) is runs
    make.create("r2")
    make.log(path, [{"_step": 1, "loss": 0.5}])
    calls = dict(backend.calls)
    assert [r.id for r in api.runs(PROJECT)] == ["r1"]
    assert len(api.run("r1").history(pandas=False)) == 1
    assert dict(backend.calls) == calls
    api.flush()
    assert [r.id for r in api.runs(PROJECT)] == ["r2", "r1"]
    assert len(run.history(pandas=False)) == 2
    assert api.run("r1").lastHistoryStep == 1
    assert run.lastHistoryStep == 0
    run.load(force=True)
    assert run.lastHistoryStep == 1


def test_projects(api, make):
    make.create("r1", project="beta")
    make.create("r2", project="alpha")
    make.create("r3", project="alpha")
    projects = api.projects()
    assert len(projects) == 2
    assert [p.name for p in projects] == ["alpha", "beta"]
    alpha = projects[0]
    assert (alpha.entity, alpha.path, alpha.run_count) == (ENTITY, f"{ENTITY}/alpha", 2)
    assert alpha.url == f"http://127.0.0.1:8080/{ENTITY}/alpha"
    assert ISO.match(alpha.created_at)
    assert [p.name for p in api.projects(ENTITY, per_page=1)] == ["alpha", "beta"]
    assert len(api.projects("nobody")) == 0
    assert api.project("beta").run_count == 1
    assert Project(ENTITY, "x", {}).path == f"{ENTITY}/x"
    with pytest.raises(ValueError, match=f"{ENTITY}/gamma"):
        api.project("gamma")


class BrokenBackend:
    """Stands in for a backend that cannot be read."""

    def __init__(self, real):
        self.real = real

    def __getattr__(self, name):
        if name in ("get_run", "query_runs", "count_runs", "sample_history"):

            def fail(*args, **kwargs):
                raise OSError("disk unplugged")

            return fail
        return getattr(self.real, name)


def test_backend_failures_raise_comm_error_with_the_cause(backend, make):
    make.create("r1")
    api = Api({"project": PROJECT}, backend=BrokenBackend(backend))  # type: ignore[arg-type]
    with pytest.raises(CommError, match="disk unplugged") as info:
        api.run("r1")
    assert isinstance(info.value.exc, OSError)
    with pytest.raises(CommError):
        len(api.runs())
    with pytest.raises(CommError):
        list(api.runs())


def test_unreadable_store_raises_comm_error(tmp_path):
    blocker = tmp_path / "file"
    blocker.write_text("not a directory")
    with pytest.raises(CommError) as info:
        Api({"dir": str(blocker / "data")})
    assert info.value.exc is not None


def test_runs_logged_with_the_sdk(api, data_dir):
    run = runbase.init(project=PROJECT, name="sdk-run", config={"lr": 0.01}, tags=["sdk"])
    for step in range(10):
        runbase.log({"loss": 1 / (step + 1), "acc": step / 10})
    run.summary["best_acc"] = 0.9
    runbase.finish()
    found = api.run(run.id)
    assert (found.name, found.state, found.tags) == ("sdk-run", "finished", ["sdk"])
    assert found.config == {"lr": 0.01}
    assert found.summary["best_acc"] == 0.9 and found.summary["acc"] == 0.9
    assert found.lastHistoryStep == 9
    assert [row["_step"] for row in found.history(samples=4, pandas=False)] == [0, 3, 6, 9]
    assert [row["acc"] for row in found.scan_history(keys=["acc"], page_size=3)][-1] == 0.9
    assert [r.id for r in api.runs(filters={"config.lr": 0.01})] == [run.id]


def test_delete_removes_the_run_its_history_and_files(api, make, backend):
    path = make.create("gone")
    make.log(path, [{"_step": i, "x": i} for i in range(20)])
    backend.compact(path)
    make.log(path, [{"_step": 20, "x": 20}])
    backend.put_file(path, "f.txt", [b"bytes"])
    kept = make.create("kept")
    make.log(kept, [{"_step": 0, "x": 1}])
    run = api.run("gone")
    with pytest.raises(Unsupported):
        run.delete(delete_artifacts=True)
    run.delete()
    with pytest.raises(NotFound):
        backend.get_run(path)
    api.flush()
    assert [r.id for r in api.runs()] == ["kept"]
    again = make.create("gone")  # the same path again: nothing of the old run shows
    assert backend.history_keys(again).line_count == 0
    assert api.run("gone").history(pandas=False) == []
    assert list(api.run("gone").files()) == []
    assert [row["x"] for row in api.run("kept").scan_history()] == [1]
    with pytest.raises(ReadOnly):
        make.read_only(api, kept).delete()


def test_a_run_deleted_by_another_process_takes_no_more_rows(make, backend, data_dir):
    path = make.create("elsewhere")
    make.log(path, [{"_step": 0, "x": 1}])  # this backend now knows the run's key
    other = LocalBackend(Store.open(Settings.load().database_url, data_dir), ENTITY)
    try:
        other.delete_run(path)
    finally:
        other.close()
    with pytest.raises(NotFound):
        make.log(path, [{"_step": 1, "x": 2}])
    make.create("elsewhere")  # made again: the next calls find the new run
    make.log(path, [{"_step": 0, "x": 3}])
    assert backend.history_keys(path).line_count == 1
