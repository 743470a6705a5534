"""The runbase command, run in-process on a real store."""

from __future__ import annotations

from typer.testing import CliRunner

import runbase
from runbase.cli import app

runner = CliRunner()


def test_version():
    result = runner.invoke(app, ["--version"])
    assert result.exit_code == 0
    assert result.output.strip() == f"runbase {runbase.__version__}"


def test_demo_trains_the_grid_and_shows_the_best_runs(data_dir):
    result = runner.invoke(app, ["demo", "--project", "grid", "--epochs", "1"])
    assert result.exit_code == 0, result.output
    assert "Best runs of 18 in 'grid'" in result.output
    runs = runbase.Api().runs("grid", order="-summary_metrics.final_val_acc")
    assert len(runs) == 18
    best = runs[0]
    assert best.state == "finished" and 0.5 < best.summary["final_val_acc"] <= 1.0
    assert set(best.config) == {"learning_rate", "batch_size", "optimizer"}
    history = best.history(keys=["train/loss"], pandas=False)
    assert history and history[-1]["train/loss"] < history[0]["train/loss"]


def test_ls_prints_a_projects_runs(data_dir):
    with runbase.init(project="listed", name="first-run", config={"lr": 0.1}) as run:
        run.log({"acc": 0.5})
    result = runner.invoke(app, ["ls", "listed"])
    assert result.exit_code == 0, result.output
    assert run.id in result.output and "first-run" in result.output
    assert runner.invoke(app, ["ls", "tester/listed"]).exit_code == 0


def test_ls_rejects_bad_paths_and_unknown_projects(data_dir):
    bad = runner.invoke(app, ["ls", "a/b/c"])
    assert bad.exit_code == 2 and "ENTITY/]PROJECT" in bad.output
    missing = runner.invoke(app, ["ls", "nowhere"])
    assert missing.exit_code == 1 and "nowhere" in missing.output


def test_compact_moves_hot_history_into_segments(data_dir, monkeypatch):
    monkeypatch.setenv("RUNBASE_COMPACT_ROWS", "0")  # runs stay hot until compacted
    with runbase.init(project="cold", id="a") as run:
        for i in range(300):
            run.log({"loss": 1 / (i + 1), "note": f"n{i}" if i % 5 == 0 else None})
    with runbase.init(project="other", id="b") as other:
        other.log({"x": 1})
    api = runbase.Api()
    before = list(api.run("cold/a").scan_history())
    result = runner.invoke(app, ["compact", "tester/cold"])
    assert result.exit_code == 0, result.output
    assert "compacted 300 history rows of 1 runs" in result.output
    api.flush()
    assert list(api.run("cold/a").scan_history()) == before
    again = runner.invoke(app, ["compact"])  # the rest: run b (and a's nothing)
    assert again.exit_code == 0 and "compacted 1 history rows of 1 runs" in again.output
    bad = runner.invoke(app, ["compact", "a/b/c/d"])
    assert bad.exit_code == 1 and "ENTITY/PROJECT/RUN_ID" in bad.output
