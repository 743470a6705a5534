"""MLflow's UI over bench_ui's data, for bench_ui.py to time beside runbase's dashboard.

The MLflow side runs in a child process under the interpreter that has MLflow
(``.bench-venv``, benchmarks/setup_peers.sh): ``python _mlflow_ui.py --serve DIR SCALE`` seeds
a SQLite file, serves it with ``mlflow server`` (bench_server's ``mlflow_server``), prints the
ids and the URL, and serves until its stdin closes. The browser side (``measure``) drives the
pages in the chromium that bench_ui opened.

Runs, params and the runs table's metrics go through ``MlflowClient``. The long histories (10
metrics x 1,000,000 points, 20 runs x 100,000) are written straight into MLflow's ``metrics``
and ``latest_metrics`` tables, the rows ``log_batch`` would write: through the client they take
about 100 s a million points here, and the UI reads the same rows either way.
"""

from __future__ import annotations

import json
import sqlite3
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import _common as c

MLFLOW_PYTHON = Path(__file__).resolve().parent.parent / ".bench-venv" / "bin" / "python"
TIMEOUT_S = 60


# ---------------------------------------------------------------- the MLflow side (child)


def seed(db: Path, artifacts: Path, scale: float) -> dict[str, Any]:
    """bench_ui's data: 10,000 runs with params lr and layers and metrics loss and acc; one run
    with 10 metrics x 1,000,000 points; 20 runs with 5 metrics x 100,000 points."""
    from mlflow import MlflowClient
    from mlflow.entities import Metric, Param

    client = MlflowClient(tracking_uri=f"sqlite:///{db}")
    kind = {"mlflow.experimentKind": "custom_model_development"}

    def experiment(name: str) -> str:
        return client.create_experiment(name, artifact_location=str(artifacts / name), tags=kind)

    big = experiment("big")
    names: list[tuple[str, float]] = []
    for i in range(int(10_000 * scale)):
        name = f"b{i:05d}"
        run = client.create_run(big, run_name=name, start_time=1_700_000_000_000 + i)
        loss = (i * 7919) % 10_000 / 10_000
        metrics = [Metric("loss", loss, 0, 0), Metric("acc", i % 100, 0, 0)]
        params = [Param("lr", str(i / 10_000)), Param("layers", str(i % 7))]
        client.log_batch(run.info.run_id, metrics=metrics, params=params)
        client.set_terminated(run.info.run_id)
        names.append((name, loss))
        if i % 1000 == 999:
            c.note(f"  MLflow: {i + 1:,} runs")
    long = experiment("long")
    long_run = client.create_run(long, run_name="r0").info.run_id
    many = experiment("many")
    many_runs = [client.create_run(many, run_name=f"r{n:02d}").info.run_id for n in range(20)]
    with sqlite3.connect(db) as conn:
        history(conn, long_run, int(1_000_000 * scale), 10)
        for run_id in many_runs:
            history(conn, run_id, int(100_000 * scale), 5)
    for run_id in [long_run, *many_runs]:
        client.set_terminated(run_id)
    return {
        "big": big,
        "newest": names[-1][0],  # the runs table's default order: newest start time first
        "top_by_loss": max(names, key=lambda n: n[1])[0],
        "long": long,
        "long_run": long_run,
        "many": many,
        "many_runs": many_runs,
    }


def history(conn: sqlite3.Connection, run_id: str, points: int, metrics: int) -> None:
    """bench_ui's values (``(i * (k + 1)) % 997 / 997 + k`` at step and timestamp i) as
    ``log_batch`` stores them, in the primary key's order."""
    for k in range(metrics):
        key = f"m{k}"
        rows = ((key, ((i * (k + 1)) % 997) / 997 + k, i, run_id, i, False) for i in range(points))
        conn.executemany(
            "INSERT INTO metrics (key, value, timestamp, run_uuid, step, is_nan) "
            "VALUES (?, ?, ?, ?, ?, ?)",
            rows,
        )
        last = points - 1
        conn.execute(
            "INSERT INTO latest_metrics (key, value, timestamp, step, is_nan, run_uuid) "
            "VALUES (?, ?, ?, ?, ?, ?)",
            (key, ((last * (k + 1)) % 997) / 997 + k, last, last, False, run_id),
        )
    c.note(f"  MLflow: {metrics} x {points:,} points")


def serve(root: Path, scale: float) -> None:
    """Seed, serve, print the ids and the URL, and serve until stdin closes."""
    from bench_server import mlflow_server

    started = time.monotonic()
    info = seed(root / "mlflow.db", root / "artifacts", scale)
    info["seed_s"] = time.monotonic() - started
    with mlflow_server(root) as url:
        info["url"] = url
        print(c.RESULT_MARK + json.dumps(info), flush=True)
        sys.stdin.read()


# ---------------------------------------------------------------- the browser side (parent)


@contextmanager
def mlflow_ui(root: Path, scale: float, python: Path = MLFLOW_PYTHON) -> Iterator[dict[str, Any]]:
    """Seed and serve MLflow in a child process; yield its ids and URL."""
    child = subprocess.Popen(
        [str(python), __file__, "--serve", str(root), str(scale)],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )
    assert child.stdin is not None and child.stdout is not None
    try:
        for line in child.stdout:
            if line.startswith(c.RESULT_MARK):
                yield json.loads(line[len(c.RESULT_MARK) :])
                return
            print(line, end="", flush=True)
        raise RuntimeError(f"the MLflow side failed (exit {child.wait()})")
    finally:
        child.stdin.close()
        child.wait(60)


# MLflow 3 asks which workflow an experiment belongs to (GenAI or model training) and shows a
# loading skeleton until it knows; a user picks "Model training" once and MLflow remembers it in
# localStorage. Set it (and keep the assistant panel shut) before every load, and forget the
# runs table's remembered sort so that each load starts from the default order.
INIT = """
Object.keys(localStorage).filter((k) => k.startsWith("MLflowLocalStorage-"))
  .forEach((k) => localStorage.removeItem(k));
localStorage.setItem("mlflow.workflowType_v1", JSON.stringify("machine_learning"));
localStorage.setItem("mlflow.assistant.panelOpen_v1", "false");
localStorage.setItem("mlflow.assistant.fab.autoOpenedOnFirstLoad_v1", "true");
"""

# Painted: the runs table (ag-grid) has a first row (row-index 0) whose text holds the expected
# run's name, then one more frame, as bench_ui's FIRST_ROW.
FIRST_ROW = """async ([name, limit]) => {
  const frame = () => new Promise((r) => requestAnimationFrame(() => r()));
  const first = () => [...document.querySelectorAll('.ag-row[row-index="0"]')]
    .some((row) => row.textContent.includes(name));
  while (!first()) { if (performance.now() > limit) return null; await frame(); }
  await frame();
  return performance.now();
}"""

# Sorted: from the click on "loss" in the open Sort menu (descending is the default direction,
# as bench_ui's -summary_metrics.loss) to the frame where the first row is the top run by loss.
SORT = """async ([name, limit]) => {
  const frame = () => new Promise((r) => requestAnimationFrame(() => r()));
  const first = () => [...document.querySelectorAll('.ag-row[row-index="0"]')]
    .some((row) => row.textContent.includes(name));
  const start = performance.now();
  document.querySelector('[data-testid="sort-select-loss"]').click();
  while (!first()) { if (performance.now() - start > limit) return null; await frame(); }
  await frame();
  return performance.now() - start;
}"""

# Charts painted: ``count`` plotly charts, each with ``traces`` lines drawn (scatter traces whose
# line path has a non-empty ``d``), then one more frame. MLflow mounts a chart only once it
# scrolls into view: bench_ui's viewport holds all ten of the run page.
CHARTS = """async ([[count, traces], limit]) => {
  const frame = () => new Promise((r) => requestAnimationFrame(() => r()));
  const drawn = (plot) => [...plot.querySelectorAll('.scatterlayer .trace')].filter((trace) =>
    [...trace.querySelectorAll('path.js-line')].some((p) => (p.getAttribute('d') || '').length > 1)
  ).length;
  const charts = () => [...document.querySelectorAll('.js-plotly-plot')]
    .filter((plot) => drawn(plot) >= traces).length;
  while (charts() < count) { if (performance.now() > limit) return null; await frame(); }
  await frame();
  return performance.now();
}"""


def measure(page: Any, info: dict[str, Any], timings: Callable[..., Any]) -> dict[str, Any]:
    """Time MLflow's pages as bench_ui times runbase's: the runs table and its sort, the run
    page, the experiment's chart view (the workspace: it draws the first 10 runs unless told
    otherwise, so 10 of the 20) and the metric page of 20 runs (compare). A load that does not
    get there within TIMEOUT_S is None."""
    limit = TIMEOUT_S * 1000
    url = info["url"]
    page.add_init_script(INIT)
    page.set_default_timeout(limit)

    def goto(target: str) -> None:
        # MLflow's routes live in the URL's hash: going from one to another is no new document
        # (performance.now() would not restart), so leave the page first.
        page.goto("about:blank")
        page.goto(url + target)

    def load(target: str, script: str, arg: Any) -> float | None:
        goto(target)
        return page.evaluate(script, [arg, limit])

    runs = f"/#/experiments/{info['big']}/runs"

    def sort() -> float | None:
        goto(runs)
        if page.evaluate(FIRST_ROW, [info["newest"], limit]) is None:
            return None
        page.get_by_text("Sort: Created").first.click()
        page.wait_for_selector('[data-testid="sort-select-loss"]')
        return page.evaluate(SORT, [info["top_by_loss"], limit])

    run = f"/#/experiments/{info['long']}/runs/{info['long_run']}/model-metrics"
    workspace = f"/#/experiments/{info['many']}/runs?compareRunsMode=CHART"
    ids = json.dumps(info["many_runs"], separators=(",", ":"))
    compare = (
        f'/#/metric?runs={ids}&metric="m0"&experiments=["{info["many"]}"]'
        '&plot_metric_keys=["m0"]&plot_layout={}&x_axis=step&y_axis_scale=linear'
        "&line_smoothness=1&show_point=false&deselected_curves=[]&last_linear_y_axis_range=[]"
    )
    return {
        "project": timings(lambda: load(runs, FIRST_ROW, info["newest"])),
        "sort": timings(sort),
        "run": timings(lambda: load(run, CHARTS, [10, 1])),
        "workspace": timings(lambda: load(workspace, CHARTS, [5, 10])),
        "compare": timings(lambda: load(compare, CHARTS, [1, 20])),
    }


if __name__ == "__main__":
    serve(Path(sys.argv[2]), float(sys.argv[3]))
