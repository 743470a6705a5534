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
