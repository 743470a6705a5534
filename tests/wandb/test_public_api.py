"""The same reads through the real ``wandb.Api()`` (in a client process, which prints them as
JSON) and through runbase's own ``Api``, against one live server: they must agree.

Runs are logged by the real client or written through the backend: finished runs whose
history is in segments (read by wandb-core's Parquet reader when their rows share one key
set, else paged), and a live run with hot rows (paged).

Where the two APIs differ by design, the comparison says so: wandb's ``Run.path`` is a list,
its scans with ``keys`` always hold ``_step``, a missing run raises its ``CommError``, and a
NaN or infinity in ``sampledHistory``'s rows arrives as its name (the answer is JSON)."""

from __future__ import annotations

import io
import json
import math
import textwrap
from pathlib import Path
from typing import Any

import httpx
import pyarrow.parquet as pq
import pytest

from runbase.backend.base import HistoryRow, NewRun, RunChanges, RunPath
from runbase.documents import encode_row, leaf_keys
from runbase.errors import InvalidFilter, NotFound
from runbase.server.wandb import history

SQLITE = pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)
MARK = "@@json "

CLIENT_HEAD = """
import json, wandb

def plain(value):
    if type(value).__name__ == "DataFrame":
        return {"frame": value[sorted(value.columns)].to_dict(orient="split")}
    if hasattr(value, "items"):
        return {key: plain(item) for key, item in value.items()}
    if isinstance(value, (list, tuple)):
        return [plain(item) for item in value]
    return value

def error(call):
    try:
        call()
    except Exception as exc:
        return type(exc).__name__ + ": " + str(exc)

def fields(run):
    return {
        "id": run.id, "name": run.name, "display_name": run.display_name, "state": run.state,
        "tags": sorted(run.tags), "notes": run.notes, "group": run.group,
        "job_type": run.job_type, "created_at": run.created_at, "user": run.user.username,
        "url": run.url, "path": "/".join(run.path), "config": run.config,
        "summary": dict(run.summary), "system_metrics": run.system_metrics,
        "history_keys": run.history_keys, "last_step": run.lastHistoryStep,
        "sweep_name": run.sweep_name,
    }

api = wandb.Api(timeout=60)
out = {}
"""


def client(wandb_server: Any, body: str, **given: Any) -> dict[str, Any]:
    """``body`` run by a wandb client process after ``CLIENT_HEAD``, with ``given`` as a dict
    of that name; what it put in ``out``."""
    script = (
        CLIENT_HEAD + f"given = json.loads({json.dumps(given)!r})\n" + textwrap.dedent(body)
        + f"\nprint({MARK!r} + json.dumps(plain(out)))\n"
    )  # fmt: skip
    done = wandb_server.python(script)
    line = next(line for line in done.stdout.splitlines() if line.startswith(MARK))
    found: dict[str, Any] = json.loads(line[len(MARK) :])
    return found


def canon(value: Any) -> Any:
    """``value`` with NaN and infinities as their names (NaN equals nothing) and tuples as
    lists."""
    if isinstance(value, float) and not math.isfinite(value):
        return "NaN" if math.isnan(value) else ("Infinity" if value > 0 else "-Infinity")
    if isinstance(value, dict):
        return {key: canon(item) for key, item in value.items()}
    if isinstance(value, (list, tuple)):
        return [canon(item) for item in value]
    return value


def runbase_fields(run: Any) -> dict[str, Any]:
    return {
        "id": run.id, "name": run.name, "display_name": run.display_name, "state": run.state,
        "tags": sorted(run.tags), "notes": run.notes, "group": run.group,
        "job_type": run.job_type, "created_at": run.created_at, "user": run.username,
        "url": run.url, "path": run.path, "config": run.config, "summary": dict(run.summary),
        "system_metrics": run.system_metrics, "history_keys": run.history_keys,
        "last_step": run.lastHistoryStep, "sweep_name": run.sweep_name,
    }  # fmt: skip


def cached_files(wandb_server: Any) -> list[str]:
    """The history files wandb-core downloaded and keeps (by run and position)."""
    cache = Path(wandb_server.env()["WANDB_CACHE_DIR"])
    return sorted(path.name for path in cache.glob("*.runhistory.parquet"))


# ------------------------------------------------------------------ runs and their fields

LOGGED_RUNS = """
import wandb
for i, (lr, opt) in enumerate([(0.1, "adam"), (0.01, "sgd"), (0.001, "adam")]):
    run = wandb.init(project="q", id=f"run{i}", name=f"name-{i}", tags=[f"t{i}", "common"],
                     config={"lr": lr, "opt": opt, "net": {"depth": i}}, notes=f"note {i}",
                     group="g" if i < 2 else None, job_type="train")
    for step in range(20):
        run.log({"loss": 1.0 / (step + 1 + i), "acc": step / 20})
        if i == 0 and step % 5 == 0:
            run.log({"val_loss": 0.5 / (step + 1)}, commit=False)
    run.summary["best"] = i
    if i == 0:
        open("weights.txt", "w").write("weights of run0")
        wandb.save("weights.txt", policy="now")
    run.finish()
"""

QUERIES: dict[str, tuple[dict[str, Any], str]] = {
    "all": ({}, "-created_at"),
    "lr_gt": ({"config.lr": {"$gt": 0.005}}, "+config.lr"),
    "or_in": ({"$or": [{"config.opt": "sgd"}, {"tags": {"$in": ["t2"]}}]}, "-config.lr"),
    "regex": ({"display_name": {"$regex": "name-[01]"}}, "+summary_metrics.loss"),
    "state": ({"state": "finished", "summary_metrics.best": {"$gte": 1}}, "+created_at"),
}

RUN_READS = """
out["projects"] = sorted(project.name for project in api.projects("alice"))
for name, (filters, order) in given["queries"].items():
    runs = api.runs("alice/q", filters=filters, order=order, per_page=2)
    out[name] = {"len": len(runs), "ids": [run.id for run in runs]}
run = api.run("alice/q/run0")
out["run"] = fields(run)
out["metadata"] = run.metadata
out["listed"] = fields(api.runs("alice/q", {"display_name": "name-1"})[0])
out["files"] = sorted(file.name for file in run.files())
out["file_count"] = len(run.files())
with run.file("weights.txt").download(root=given["root"]) as file:
    out["weights"] = file.read()
sweep = api.sweep("alice/q/" + given["sweep"])
out["sweep"] = {"id": sweep.id, "name": sweep.name, "state": sweep.state,
                "config": dict(sweep.config), "runs": [r.id for r in sweep.runs],
                "best": sweep.best_run().id}
api.flush()
out["scans"] = [list(api.run("alice/q/run0").scan_history()),
                list(api.run("alice/q/run1").scan_history()),
                list(api.run("alice/q/run1").scan_history(keys=["_step", "loss"], page_size=6))]
out["missing"] = error(lambda: api.run("alice/q/nothing"))
out["bad_filter"] = error(lambda: list(api.runs("alice/q", {"$foo": 1})))
"""


@SQLITE
def test_runs_their_fields_files_and_sweeps_agree(wandb_server, tmp_path):
    wandb_server.python(LOGGED_RUNS)
    backend = wandb_server.backend
    sweep = backend.create_sweep("alice", "q", {"method": "grid", "metric": {"name": "loss"}})
    for n, loss in enumerate([0.3, 0.1, 0.2]):
        backend.create_run(RunPath("alice", "q", f"sw{n}"), NewRun(sweep=sweep.sweep_id))
        backend.update_summary(RunPath("alice", "q", f"sw{n}"), {"loss": loss})
    backend.wait_for_compaction()
    found = client(wandb_server, RUN_READS, queries=QUERIES, sweep=sweep.sweep_id,
                   root=str(tmp_path / "dl"))  # fmt: skip
    api = wandb_server.api()
    assert found["projects"] == sorted(project.name for project in api.projects("alice"))
    for name, (filters, order) in QUERIES.items():
        runs = api.runs("alice/q", filters=filters, order=order, per_page=2)
        assert found[name] == {"len": len(runs), "ids": [run.id for run in runs]}, name
    run = api.run("alice/q/run0")
    assert canon(found["run"]) == canon(runbase_fields(run))
    assert canon(found["listed"]) == canon(runbase_fields(api.run("alice/q/run1")))
    assert found["run"]["config"] == {"lr": 0.1, "opt": "adam", "net": {"depth": 0}}
    assert found["run"]["last_step"] == 19 and found["run"]["user"] == "alice"
    assert found["metadata"]["python"] and found["metadata"].items() <= run.metadata.items()
    assert found["files"] == sorted(file.name for file in run.files())
    assert found["file_count"] == len(run.files()) and "weights.txt" in found["files"]
    assert found["weights"] == "weights of run0"
    run1 = api.run("alice/q/run1")
    scans = [list(run.scan_history()), list(run1.scan_history()),
             list(run1.scan_history(keys=["_step", "loss"], page_size=6))]  # fmt: skip
    assert canon(found["scans"]) == canon(scans) and len(scans[0]) == len(scans[1]) == 20
    # run1's rows share one key set: read from its segment; run0's val_loss makes two
    assert cached_files(wandb_server) == ["alice_q_run1_0.runhistory.parquet"]
    ours = api.sweep(f"alice/q/{sweep.sweep_id}")
    assert found["sweep"] == {
        "id": ours.id, "name": ours.name, "state": ours.state.upper(), "config": ours.config,
        "runs": [r.id for r in ours.runs], "best": ours.best_run().id,
    }  # fmt: skip
    assert found["sweep"]["best"] == "sw1"
    assert found["missing"].startswith("CommError: Could not find run")
    with pytest.raises(NotFound):
        api.run("alice/q/nothing")
    with pytest.raises(InvalidFilter) as refused:
        list(api.runs("alice/q", {"$foo": 1}))
    kind, message = found["bad_filter"].split(": ", 1)
    assert kind == "WandbApiFailedError" and message.strip().endswith(refused.value.message)


# ------------------------------------------------------------------ history

OPS: list[tuple[str, str, dict[str, Any]]] = [
    ("history", "dense", {"pandas": False}),
    ("history", "dense", {"samples": 7, "pandas": False}),
    ("history", "dense", {"samples": 7, "keys": ["loss", "flag"], "pandas": False}),
    ("history", "dense", {"samples": 7}),
    ("history", "dense", {"keys": ["loss"]}),
    ("history", "dense", {"stream": "system", "pandas": False}),
    ("history", "sparse", {"keys": ["val"], "pandas": False}),
    ("history", "sparse", {"samples": 5, "pandas": False}),
    ("history", "live", {"samples": 1000, "pandas": False}),
    ("scan", "dense", {}),
    ("scan", "dense", {"page_size": 7}),
    ("scan", "dense", {"keys": ["_step", "loss", "name"], "page_size": 30}),
    ("scan", "dense", {"min_step": 75, "max_step": 163, "page_size": 16}),
    ("scan", "dense", {"keys": ["_step", "flag"], "min_step": 10, "max_step": 99}),
    ("scan", "dense", {"keys": ["_step", "maybe"], "page_size": 50, "use_cache": False}),
    ("scan", "sparse", {}),
    ("scan", "sparse", {"keys": ["_step", "val"], "page_size": 3}),
    ("scan", "sparse", {"keys": ["_step", "nested.a"]}),
    ("scan", "live", {"page_size": 25}),
    ("scan", "live", {"keys": ["_step", "loss"], "min_step": 50, "page_size": 9}),
]

HISTORY_READS = """
out["reads"] = []
for kind, name, kwargs in given["ops"]:
    run = api.run("alice/h/" + name)
    found = run.history(**kwargs) if kind == "history" else list(run.scan_history(**kwargs))
    out["reads"].append(plain(found))
"""


def write_rows(backend: Any, path: RunPath, stream: str, start: int, rows: list[dict]) -> None:
    history_rows = [
        HistoryRow(start + n, row.get("_step", start + n), tuple(sorted(leaf_keys(row))),
                   encode_row(row))
        for n, row in enumerate(rows)
    ]  # fmt: skip
    backend.append_history(path, stream, history_rows, {})


def dense_row(i: int) -> dict[str, Any]:
    """A row of every key (one key set); values of each kind a segment keeps, an int among
    floats, NaN, infinities, None."""
    loss = [float("nan"), float("inf"), -float("inf")][i % 3] if i % 17 == 5 else 1 / (i + 1)
    return {
        "_step": 2 * i, "loss": 1 if i == 0 else loss, "epoch": i // 10, "flag": i % 3 == 0,
        "name": f"row {i}", "maybe": None if i % 4 else i * 0.5, "_timestamp": 1.7e9 + i,
    }  # fmt: skip


def sparse_row(i: int) -> dict[str, Any]:
    if i % 5:
        return {"_step": i, "loss": 1 / (i + 1)}
    return {"_step": i, "loss": 0.5, "val": i / 10, "nested": {"a": i}}


def seed_history(backend: Any) -> None:
    """``dense``: 100 rows of one key set in three segments, and system rows; ``sparse``:
    rows of two key sets, one nested, in a segment; ``live``: a running run, a segment and
    a hot tail."""
    dense = RunPath("alice", "h", "dense")
    backend.create_run(dense, NewRun())
    for start, stop in [(0, 40), (40, 80), (80, 100)]:
        write_rows(backend, dense, "default", start, [dense_row(i) for i in range(start, stop)])
        backend.compact(dense)
    system = [{"system.cpu": 10.0 + i, "_timestamp": 1.7e9 + i} for i in range(12)]
    write_rows(backend, dense, "system", 0, system)
    backend.finish_run(dense, "finished", 0)
    sparse = RunPath("alice", "h", "sparse")
    backend.create_run(sparse, NewRun())
    write_rows(backend, sparse, "default", 0, [sparse_row(i) for i in range(30)])
    backend.finish_run(sparse, "finished", 0)
    live = RunPath("alice", "h", "live")
    backend.create_run(live, NewRun())
    write_rows(backend, live, "default", 0, [{"_step": i, "loss": i / 3} for i in range(60)])
    backend.compact(live)
    write_rows(backend, live, "default", 60, [{"_step": i, "loss": i / 3} for i in range(60, 90)])
    backend.wait_for_compaction()
    backend.update_run(live, RunChanges(state="running"))


def runbase_reads(api: Any) -> list[Any]:
    found = []
    for kind, name, kwargs in OPS:
        run = api.run("alice/h/" + name)
        if kind == "history":
            rows = run.history(**kwargs)
            if hasattr(rows, "columns"):  # a DataFrame, as the client prints it
                rows = {"frame": rows[sorted(rows.columns)].to_dict(orient="split")}
            found.append(rows)
        else:  # runbase keeps no files to reuse: no use_cache
            kwargs = {key: value for key, value in kwargs.items() if key != "use_cache"}
            found.append(list(run.scan_history(**kwargs)))
    return found


def test_history_reads_agree_with_and_without_parquet(wandb_server, monkeypatch):
    seed_history(wandb_server.backend)
    monkeypatch.setattr(history, "PARQUET_HISTORY", False)
    paged = client(wandb_server, HISTORY_READS, ops=OPS)["reads"]
    assert cached_files(wandb_server) == []
    monkeypatch.setattr(history, "PARQUET_HISTORY", True)
    columnar = client(wandb_server, HISTORY_READS, ops=OPS)["reads"]
    assert cached_files(wandb_server) == [
        f"alice_h_dense_{n}.runhistory.parquet" for n in (0, 1, 2)
    ]
    expected = canon(runbase_reads(wandb_server.api()))
    for op, wanted, by_pages, by_files in zip(OPS, expected, canon(paged), canon(columnar),
                                              strict=True):  # fmt: skip
        assert by_pages == wanted, op
        assert by_files == wanted, op
    whole = {name: rows for (kind, name, kwargs), rows in zip(OPS, expected, strict=True)
             if kind == "scan" and set(kwargs) <= {"page_size"}}  # fmt: skip
    assert [row["_step"] for row in whole["dense"]] == [2 * i for i in range(100)]
    losses = [whole["dense"][i]["loss"] for i in (0, 5, 22, 39)]
    assert losses == [1, "-Infinity", "Infinity", "NaN"]
    assert len(whole["sparse"]) == 30 and len(whole["live"]) == 90


@SQLITE
def test_segment_urls_answer_heads_and_byte_ranges(wandb_server):
    seed_history(wandb_server.backend)
    query = """{ project(name: "h", entityName: "alice") {
        dense: run(name: "dense") { parquetHistory(liveKeys: ["_step"]) { parquetUrls liveData } }
        live: run(name: "live") { parquetHistory(liveKeys: ["_step"]) { parquetUrls liveData } }
    } }"""
    with httpx.Client(auth=("api", wandb_server.key), timeout=30) as http:
        answer = http.post(wandb_server.url + "/graphql", json={"query": query}).json()
    project = answer["data"]["project"]
    assert project["live"]["parquetHistory"] == {"parquetUrls": [], "liveData": []}
    urls = project["dense"]["parquetHistory"]["parquetUrls"]
    assert len(urls) == 3 and project["dense"]["parquetHistory"]["liveData"] == []
    whole = httpx.get(urls[1]).content  # no credentials: the URL is signed
    table = pq.read_table(io.BytesIO(whole))
    assert table.column_names == list(dense_row(0))
    assert table.column("_step").to_pylist() == [2 * i for i in range(40, 80)]
    assert httpx.head(urls[1]).headers["content-length"] == str(len(whole))
    part = httpx.get(urls[1], headers={"Range": "bytes=4-9"})
    assert part.status_code == 206 and part.content == whole[4:10]
    assert part.headers["content-range"] == f"bytes 4-9/{len(whole)}"
    assert httpx.get(urls[1], headers={"Range": "bytes=-8"}).content == whole[-8:]
    assert httpx.get(urls[1], headers={"Range": f"bytes={len(whole)}-"}).status_code == 416
    forged = urls[1].rsplit("/", 1)[0] + "/x" + urls[1].rsplit("/", 1)[1]
    assert httpx.get(forged).status_code == 401


# ------------------------------------------------------------------ writes

EDITS = """
run = api.run("alice/w/edit")
run.summary.update({"best": 0.25, "nested": {"x": [1, 2]}})
run.tags.append("b")
run.notes = "edited"
run.name = "after"
run.group = "grid"
run.job_type = "eval"
run.config["lr"] = 0.2
run.config["extra"] = {"depth": 3}
run.update()
api.flush()
out["after"] = fields(api.run("alice/w/edit"))
"""


@SQLITE
def test_writes_through_the_wandb_api_read_back_alike(wandb_server):
    path = RunPath("alice", "w", "edit")
    new = NewRun(display_name="before", config={"lr": 0.1}, tags=("a",), notes="n")
    wandb_server.backend.create_run(path, new)
    wandb_server.backend.update_summary(path, {"loss": 0.5})
    found = client(wandb_server, EDITS)
    run = wandb_server.api().run("alice/w/edit")
    assert canon(found["after"]) == canon(runbase_fields(run))
    assert run.name == "after" and sorted(run.tags) == ["a", "b"] and run.notes == "edited"
    assert (run.group, run.job_type) == ("grid", "eval")
    assert run.config == {"lr": 0.2, "extra": {"depth": 3}}
    assert run.summary["best"] == 0.25 and run.summary["loss"] == 0.5
    assert run.summary["nested"] == {"x": [1, 2]}
