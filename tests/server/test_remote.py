"""The public Api and the SDK over the HTTP backend: the same results as embedded."""

from __future__ import annotations

import json
import math

import pandas as pd
import pytest

import runbase
from runbase.api import Api
from runbase.backend.base import HistoryRow, NewRun, RunPath
from runbase.sdk import run as sdk_run
from tests.sdk.stored import file_bytes, stored_rows

ENTITY = "tester"


@pytest.fixture
def stored(backend):
    """Six runs in ``proj`` with config, summary, history and a file."""
    for n in range(6):
        path = RunPath(ENTITY, "proj", f"r{n}")
        backend.create_run(path, NewRun(config={"lr": 0.1 * n, "opt": "adam" if n % 2 else "sgd"}))
        rows = [{"_step": s, "loss": 1.0 / (s + 1 + n), "nan": math.nan} for s in range(40)]
        history = [
            HistoryRow(s, s, tuple(sorted(row)), json.dumps(row)) for s, row in enumerate(rows)
        ]
        backend.append_history(path, "default", history, {"loss": rows[-1]["loss"], "n": n})
        backend.put_file(path, "weights.bin", [bytes([n]) * 3000])
    return backend


def both(backend, http) -> list[Api]:
    return [Api({"project": "proj"}, backend=b) for b in (backend, http)]


def test_runs_with_filters_and_order(stored, http):
    seen = []
    for api in both(stored, http):
        runs = api.runs("proj", {"config.opt": "adam", "summary_metrics.n": {"$gt": 1}},
                        order="-summary_metrics.loss", per_page=1)  # fmt: skip
        seen.append((len(runs), [(r.id, r.config, dict(r.summary)) for r in runs]))
    assert seen[0] == seen[1] and seen[0][0] == 2


def test_history_and_scan_history(stored, http):
    local, remote = both(stored, http)
    a, b = local.run("proj/r3"), remote.run("proj/r3")
    sampled = [json.dumps(run.history(samples=10, pandas=False)) for run in (a, b)]
    assert sampled[0] == sampled[1] and "NaN" in sampled[0]
    frame, remote_frame = a.history(keys=["loss"]), b.history(keys=["loss"])
    assert isinstance(frame, pd.DataFrame) and isinstance(remote_frame, pd.DataFrame)
    assert frame.equals(remote_frame) and len(frame) == 40
    scanned = [list(run.scan_history(keys=["loss"], page_size=7, min_step=5)) for run in (a, b)]
    assert scanned[0] == scanned[1] and len(scanned[0]) == 35
    assert a.history_keys == b.history_keys


def test_files_download(stored, http, tmp_path):
    for n, api in enumerate(both(stored, http)):
        run = api.run("proj/r2")
        assert [f.name for f in run.files()] == ["weights.bin"]
        run.file("weights.bin").download(root=str(tmp_path / str(n))).close()
        assert (tmp_path / str(n) / "weights.bin").read_bytes() == bytes([2]) * 3000


def test_the_sdk_logs_through_the_server(backend, http, monkeypatch):
    monkeypatch.setattr(sdk_run, "open_backend", lambda settings: http)
    run = runbase.init(project="remote", config={"lr": 0.01, "bad": math.nan})
    for step in range(50):
        run.log({"loss": 1.0 / (step + 1), "acc": step / 50})
    run.summary["best"] = math.inf
    run.config.update({"epochs": 3})
    run.finish()
    path = RunPath(ENTITY, "remote", run.id)
    stored = backend.get_run(path)
    assert stored.state == "finished"
    assert stored.config["lr"] == 0.01 and math.isnan(stored.config["bad"])
    assert stored.config["epochs"] == 3
    assert stored.summary["best"] == math.inf and stored.summary["loss"] == 1.0 / 50
    rows = stored_rows(backend, path)
    assert [row["_step"] for row in rows] == list(range(50))
    assert rows[-1]["acc"] == 49 / 50


def test_run_save_uploads_through_the_server(backend, http, monkeypatch, tmp_path):
    monkeypatch.setattr(sdk_run, "open_backend", lambda settings: http)
    monkeypatch.chdir(tmp_path)
    (tmp_path / "notes.txt").write_bytes(b"remote bytes")
    with runbase.init(project="remote") as run:
        run.save("notes.txt")
    assert file_bytes(backend, RunPath(ENTITY, "remote", run.id), "notes.txt") == b"remote bytes"
