"""MLflow's UI beside runbase's dashboard (issue 10): the same pages, the same data, the same
chromium (Debian's, through playwright, requests to other hosts aborted).

    bash scripts/with-chromium.sh .venv/bin/python benchmarks/bench_ui_mlflow.py [--quick]

Two interpreters: this one drives chromium (playwright lives in ``.venv``); a child process
under ``--mlflow-python`` (default ``.bench-venv/bin/python``, which has MLflow) seeds a SQLite
file through ``MlflowClient.log_batch`` and serves it with ``mlflow server`` (bench_server's
``mlflow_server``) until this one closes its stdin.
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import _common as c

HERE = Path(__file__).resolve().parent
MLFLOW_PYTHON = HERE.parent / ".bench-venv" / "bin" / "python"
TIMEOUT_S = 60
# runbase's figures, docs/benchmarks.md "The dashboard (issue 10)": (first load, median of 5).
RUNBASE_MS = {
    "runs": (240, 192),
    "sort": (48, 56),
    "run": (896, 562),
    "compare": (337, 208),
}


# ---------------------------------------------------------------- the MLflow side (child)


def seed(db: Path, artifacts: Path, scale: float) -> dict[str, Any]:
    """bench_ui's data in MLflow: 10,000 runs with two params and two metrics; one run with 10
    metrics x ``LONG_POINTS``; 20 runs with metric m0 x 100,000 points (bench_ui logs five
    metrics on those, but the compare page plots m0 alone)."""
    from mlflow import MlflowClient
    from mlflow.entities import Metric, Param

    client = MlflowClient(tracking_uri=f"sqlite:///{db}")
    kind = {"mlflow.experimentKind": "custom_model_development"}
    big = client.create_experiment("big", artifact_location=str(artifacts / "big"), tags=kind)
    names: list[tuple[str, float]] = []
    n_runs = int(10_000 * scale)
    for i in range(n_runs):
        name = f"b{i:05d}"
        run = client.create_run(big, run_name=name, start_time=1_700_000_000_000 + i)
        loss = (i * 7919) % 10_000 / 10_000
        metrics = [Metric("loss", loss, 0, 0), Metric("acc", i % 100, 0, 0)]
        params = [Param("lr", str(i / 10_000)), Param("layers", str(i % 7))]
        client.log_batch(run.info.run_id, metrics=metrics, params=params)
        client.set_terminated(run.info.run_id)
        names.append((name, loss))
        if i % 1000 == 999:
            c.note(f"  {i + 1:,} runs")
    long = client.create_experiment("long", artifact_location=str(artifacts / "long"), tags=kind)
    long_run = client.create_run(long, run_name="r0").info.run_id
    history(client, long_run, int(LONG_POINTS * scale), [f"m{k}" for k in range(10)])
    many = client.create_experiment("many", artifact_location=str(artifacts / "many"), tags=kind)
    many_runs = []
    for n in range(20):
        run_id = client.create_run(many, run_name=f"r{n:02d}").info.run_id
        history(client, run_id, int(100_000 * scale), ["m0"])
        many_runs.append(run_id)
    return {
        "big": big,
        "newest": names[-1][0],  # the runs table's default order: newest start time first
        "top_by_loss": max(names, key=lambda n: n[1])[0],
        "long": long,
        "long_run": long_run,
        "many": many,
        "many_runs": many_runs,
    }


LONG_POINTS = 100_000  # a tenth of bench_ui's 1,000,000: see the caption


def history(client: Any, run_id: str, points: int, keys: list[str]) -> None:
    """bench_ui's values (``(i * (k + 1)) % 997 / 997 + k``), 1,000 metrics a log_batch."""
    from mlflow.entities import Metric

    batch: list[Metric] = []
    for i in range(points):
        for k, key in enumerate(keys):
            batch.append(Metric(key, ((i * (k + 1)) % 997) / 997 + k, i, i))
            if len(batch) == 1000:
                client.log_batch(run_id, metrics=batch)
                batch = []
    if batch:
        client.log_batch(run_id, metrics=batch)
    client.set_terminated(run_id)


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

# Charts painted: ``count`` plotly charts each with a drawn line (a scatter trace's path with a
# non-empty ``d``), then one more frame.
CHARTS = """async ([count, limit]) => {
  const frame = () => new Promise((r) => requestAnimationFrame(() => r()));
  const drawn = () => [...document.querySelectorAll('.js-plotly-plot')].filter((plot) =>
    [...plot.querySelectorAll('.scatterlayer .trace path.js-line')]
      .some((p) => (p.getAttribute('d') || '').length > 1)).length;
  while (drawn() < count) { if (performance.now() > limit) return null; await frame(); }
  await frame();
  return performance.now();
}"""


def run_browser(info: dict[str, Any], scale: float) -> dict[str, list[float | None]]:
    from bench_ui import REPEAT, chromium_path
    from playwright.sync_api import sync_playwright

    limit = TIMEOUT_S * 1000
    url = info["url"]
    results: dict[str, list[float | None]] = {}

    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=chromium_path(), args=["--no-sandbox"])
        page = browser.new_page(viewport={"width": 1600, "height": 1000})
        page.add_init_script(INIT)
        page.route("**/*", lambda r: r.continue_() if "127.0.0.1" in r.request.url else r.abort())
        page.set_default_timeout(limit)

        def loads(key: str, fn) -> None:
            """The cold load and REPEAT more; stop at the first that misses the timeout."""
            times: list[float | None] = []
            for _ in range(1 + REPEAT):
                try:
                    t = fn()
                except Exception as exc:  # noqa: BLE001 - a page that never gets there
                    c.note(f"{key}: {type(exc).__name__}: {str(exc)[:200]}")
                    t = None
                times.append(t)
                c.note(f"{key}: {t if t is None else round(t)} ms")
                if t is None:
                    break
            results[key] = times

        def goto(target: str) -> None:
            # MLflow's routes live in the URL's hash: going from one to another is no new
            # document (performance.now() would not restart), so leave the page first.
            page.goto("about:blank")
            page.goto(url + target)

        def measure(target: str, script: str, arg: Any) -> float | None:
            goto(target)
            return page.evaluate(script, [arg, limit])

        runs = f"/#/experiments/{info['big']}/runs"
        loads("runs", lambda: measure(runs, FIRST_ROW, info["newest"]))

        def sort() -> float | None:
            goto(runs)
            page.evaluate(FIRST_ROW, [info["newest"], limit])
            page.get_by_text("Sort: Created").first.click()
            page.wait_for_selector('[data-testid="sort-select-loss"]')
            return page.evaluate(SORT, [info["top_by_loss"], limit])

        loads("sort", sort)

        run = f"/#/experiments/{info['long']}/runs/{info['long_run']}/model-metrics"
        loads("run", lambda: measure(run, CHARTS, 10))

        ids = ",".join(f'"{r}"' for r in info["many_runs"])
        compare = f'/#/metric?runs=[{ids}]&metric="m0"&experiments=["{info["many"]}"]'
        loads("compare", lambda: measure(compare, CHARTS, 1))
        browser.close()
    return results


def cell(times: list[float | None], warm: bool) -> str:
    if not warm:
        return "-" if times[0] is None else f"{times[0]:.0f}"
    rest = times[1:]
    if not rest or any(t is None for t in rest):
        return "-"
    return f"{statistics.median(rest):.0f}"


def main() -> None:
    from bench_ui import REPEAT, chromium_path

    parser = argparse.ArgumentParser()
    parser.add_argument("--quick", action="store_true", help="a tenth of the data")
    parser.add_argument("--mlflow-python", default=str(MLFLOW_PYTHON))
    args = parser.parse_args()
    if chromium_path() is None:
        sys.exit("no chromium: apt-get install chromium")
    scale = 0.1 if args.quick else 1.0
    with tempfile.TemporaryDirectory(prefix="runbase-bench-ui-mlflow-") as tmp:
        c.note("seeding MLflow (10,000 runs, a 10 x 100k-point run, 20 x 100k-point runs)")
        child = subprocess.Popen(
            [args.mlflow_python, __file__, "--serve", tmp, str(scale)],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
        )
        info = None
        for line in child.stdout:
            if line.startswith(c.RESULT_MARK):
                info = json.loads(line[len(c.RESULT_MARK) :])
                break
            print(line, end="", flush=True)
        if info is None:
            sys.exit(f"the MLflow side failed (exit {child.wait()})")
        c.note(f"seeded in {info['seed_s']:.0f} s; MLflow at {info['url']}")
        try:
            results = run_browser(info, scale)
        finally:
            child.stdin.close()
            child.wait(60)
    n = lambda k: f"{int(k * scale):,}"  # noqa: E731
    pages = [
        ("runs", f"runs table, {n(10_000)} runs: first rows"),
        ("sort", "runs table: sort by a metric (loss)"),
        ("run", f"run page, 10 metrics x {n(LONG_POINTS)} points"),
        ("compare", f"compare, 20 runs x 1 metric x {n(100_000)}"),
    ]
    rows = []
    for key, name in pages:
        times = results.get(key, [None])
        ours_cold, ours_warm = RUNBASE_MS[key]
        if times[0] is None:
            rows.append([name, ours_cold, ours_warm, f"did not load within {TIMEOUT_S} s", "", ""])
            continue
        warm = cell(times, True)
        ratio = f"{float(warm) / ours_warm:.1f}x" if warm != "-" else "-"
        rows.append([name, ours_cold, ours_warm, cell(times, False), warm, ratio])
    c.print_table(
        "runbase's dashboard and MLflow's UI in chromium (ms)",
        [
            "page",
            "runbase first",
            "runbase median",
            "MLflow first",
            f"MLflow median of {REPEAT}",
            "MLflow / runbase",
        ],
        rows,
        caption=(
            "runbase: docs/benchmarks.md (10,000 runs; run page 10 x 1,000,000 points); MLflow "
            f"{'(--quick: a tenth) ' if args.quick else ''}measured here, its run page with "
            f"10 x {n(LONG_POINTS)} points (logging 10M points into MLflow's SQLite store "
            "takes too long); same chromium, navigation start to the frame after rows/charts"
        ),
    )


if __name__ == "__main__":
    if len(sys.argv) == 4 and sys.argv[1] == "--serve":
        serve(Path(sys.argv[2]), float(sys.argv[3]))
    else:
        main()
