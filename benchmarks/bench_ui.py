"""The dashboard in a real browser (Debian's chromium through playwright), over a live
server on a store seeded through the backend, beside MLflow's UI (``mlflow server``) over the
same data in the same browser (_mlflow_ui.py).

    bash scripts/with-chromium.sh .venv/bin/python benchmarks/bench_ui.py [--quick] [--no-mlflow]

- project page with 10,000 runs: first rows painted after navigation; sort by a summary key
  (click to the new first row painted);
- run page with 10 metrics x 1,000,000 points: every chart painted;
- workspace charts for 20 runs x 5 metrics x 100,000 points: every chart painted;
- compare 20 runs x 1 metric x 100,000 points: the chart painted.

Histories are compacted (Parquet segments) before timing, as a finished run is. Each page is
timed from navigation start (``performance.now()`` in the page) to the frame after the last
chart's data is drawn; the median of ``REPEAT`` loads, the first (cold) one reported apart.
Every request to a host other than 127.0.0.1 is aborted. The viewport (1600 x 1600) holds all
ten charts of the run page: MLflow draws a chart only once it is in view.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import sys
import tempfile
from pathlib import Path
from typing import Any

import _common as c
import _mlflow_ui

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from runbase.backend.base import HistoryRow, NewRun, RunPath  # noqa: E402
from runbase.backend.local import LocalBackend  # noqa: E402
from runbase.server import create_app  # noqa: E402
from runbase.store import Store  # noqa: E402
from tests.server.test_live import serve  # noqa: E402

ENTITY = "bench"
REPEAT = 5
GOALS_MS = {"project": 1000, "sort": 300, "run": 1500, "workspace": 1500, "compare": 1000}
BATCH = 20_000


def chromium_path() -> str | None:
    """Debian's chromium (``apt-get install chromium``); never a downloaded build."""
    found = os.environ.get("RUNBASE_TEST_CHROMIUM") or shutil.which("chromium")
    return found if found and os.path.exists(found) else None


def log(backend: LocalBackend, path: RunPath, points: int, metrics: int) -> None:
    for start in range(0, points, BATCH):
        rows = []
        for i in range(start, min(points, start + BATCH)):
            row = {"_step": i, **{f"m{k}": ((i * (k + 1)) % 997) / 997 + k for k in range(metrics)}}
            rows.append(HistoryRow(i, i, tuple(sorted(row)), json.dumps(row)))
        backend.append_history(path, "default", rows, json.loads(rows[-1].row))
    backend.finish_run(path, "finished", 0)


def seed(backend: LocalBackend, scale: float) -> None:
    for i in range(int(10_000 * scale)):
        path = RunPath(ENTITY, "big", f"b{i:05d}")
        backend.create_run(path, NewRun(config={"lr": i / 10_000, "layers": i % 7}))
        backend.update_summary(path, {"loss": (i * 7919) % 10_000 / 10_000, "acc": i % 100})
    log(backend, backend_run(backend, "long", "r0"), int(1_000_000 * scale), 10)
    for n in range(20):
        log(backend, backend_run(backend, "many", f"r{n:02d}"), int(100_000 * scale), 5)
    backend.wait_for_compaction()


def backend_run(backend: LocalBackend, project: str, run_id: str) -> RunPath:
    path = RunPath(ENTITY, project, run_id)
    backend.create_run(path, NewRun(config={"seed": run_id}))
    return path


CHARTS_PAINTED = """async (count) => {
  const frame = () => new Promise((r) => requestAnimationFrame(() => r()));
  for (;;) {
    const painted = document.querySelectorAll('.chart[data-state="painted"] canvas').length;
    if (painted >= count) { await frame(); return performance.now(); }
    await frame();
  }
}"""

FIRST_ROW = """async () => {
  const frame = () => new Promise((r) => requestAnimationFrame(() => r()));
  while (!document.querySelector('.run-row')) await frame();
  await frame();
  return performance.now();
}"""

SORT = """async ([key, expected]) => {
  const frame = () => new Promise((r) => requestAnimationFrame(() => r()));
  const start = performance.now();
  document.querySelector(`.th .col[data-key="${key}"]`).click();
  while (document.querySelector('.run-row')?.dataset.run !== expected) await frame();
  return performance.now() - start;
}"""


Timings = tuple[float | None, float | None]  # the first load, the median of the next REPEAT


def measure(page: Any, url: str, script: str, arg: Any = None) -> float:
    page.goto(url)
    return float(page.evaluate(script, arg))


def timings(fn: Any) -> Timings:
    """The first load and the median of REPEAT more; a load that returns None (it never got
    there) ends the series and leaves what it did not measure None."""
    cold = fn()
    if cold is None:
        return None, None
    warm = []
    for _ in range(REPEAT):
        t = fn()
        if t is None:
            return cold, None
        warm.append(t)
    return cold, statistics.median(warm)


def new_page(browser: Any) -> Any:
    page = browser.new_page(viewport={"width": 1600, "height": 1600})
    page.route("**/*", lambda r: r.continue_() if "127.0.0.1" in r.request.url else r.abort())
    return page


def measure_runbase(page: Any, url: str, backend: LocalBackend) -> dict[str, Timings]:
    project = f"{url}/{ENTITY}/big"

    def sort() -> float:
        page.goto(project)
        page.wait_for_selector(".run-row")
        page.wait_for_selector('.th .col[data-key="summary_metrics.loss"]')
        return float(page.evaluate(SORT, ["summary_metrics.loss", top_by_loss(backend)]))

    ids = ",".join(f"r{n:02d}" for n in range(20))
    compare = f"{url}/{ENTITY}/many/compare?runs={ids}&metrics=m0"
    return {
        "project": timings(lambda: measure(page, project, FIRST_ROW)),
        "sort": timings(sort),
        "run": timings(lambda: measure(page, f"{url}/{ENTITY}/long/runs/r0", CHARTS_PAINTED, 10)),
        "workspace": timings(lambda: measure(page, f"{url}/{ENTITY}/many", CHARTS_PAINTED, 5)),
        "compare": timings(lambda: measure(page, compare, CHARTS_PAINTED, 1)),
    }


def top_by_loss(backend: LocalBackend) -> str:
    from runbase.backend.base import RunQuery

    page = backend.query_runs(RunQuery(ENTITY, "big", order="-summary_metrics.loss", per_page=1))
    return page.items[0].run_id


PAGES = {
    "project": "project page, 10,000 runs: first rows",
    "sort": "project page: sort by summary loss",
    "run": "run page, 10 metrics x 1M points",
    "workspace": "workspace, 20 runs x 5 metrics x 100k",
    "compare": "compare, 20 runs x 1 metric x 100k",
}


def ms(value: float | None) -> str:
    return "-" if value is None else f"{value:.0f}"


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--quick", action="store_true", help="a tenth of the data")
    parser.add_argument("--no-mlflow", action="store_true", help="runbase alone")
    parser.add_argument("--mlflow-python", type=Path, default=_mlflow_ui.MLFLOW_PYTHON)
    args = parser.parse_args()
    if chromium_path() is None:
        sys.exit("no chromium: apt-get install chromium")
    if not args.no_mlflow and not args.mlflow_python.exists():
        sys.exit(f"no {args.mlflow_python}: run benchmarks/setup_peers.sh, or pass --no-mlflow")
    scale = 0.1 if args.quick else 1.0
    from playwright.sync_api import sync_playwright

    theirs: dict[str, Timings] = {}
    with tempfile.TemporaryDirectory(prefix="runbase-bench-ui-") as tmp, sync_playwright() as p:
        browser = p.chromium.launch(executable_path=chromium_path(), args=["--no-sandbox"])
        backend = LocalBackend(Store.open(None, Path(tmp) / "runbase"), ENTITY)
        c.note("seeding runbase (10,000 runs, 1M-point run, 20 x 100k-point runs)")
        seed(backend, scale)
        with serve(create_app(backend)) as url:
            ours = measure_runbase(new_page(browser), url, backend)
        backend.close()
        if not args.no_mlflow:
            c.note("seeding MLflow (the same data)")
            root = Path(tmp) / "mlflow"
            root.mkdir()
            with _mlflow_ui.mlflow_ui(root, scale, args.mlflow_python) as info:
                c.note(f"MLflow seeded in {info['seed_s']:.0f} s, at {info['url']}")
                theirs = _mlflow_ui.measure(new_page(browser), info, timings)
        browser.close()

    rows = []
    for key, name in PAGES.items():
        cold, warm = ours[key]
        goal = GOALS_MS[key]
        row = [name, ms(cold), ms(warm), f"<= {goal}", c.verdict(warm is not None and warm <= goal)]
        if not args.no_mlflow:
            their_cold, their_warm = theirs.get(key, (None, None))
            if key not in theirs:
                row += ["no such page", "", ""]
            elif their_cold is None:
                row += [f"not within {_mlflow_ui.TIMEOUT_S} s", "", ""]
            else:
                row += [ms(their_cold), ms(their_warm), c.ratio(their_warm, warm)]
        rows.append(row)
    headers = ["page", "first load", f"median of {REPEAT}", "goal", ""]
    if not args.no_mlflow:
        headers += ["MLflow first", "MLflow median", "MLflow / runbase"]
    c.print_table(
        "runbase dashboard" + ("" if args.no_mlflow else " and MLflow's UI") + " in chromium (ms)",
        headers,
        rows,
        caption=(
            f"{'--quick: a tenth of the data; ' if args.quick else ''}from navigation start to "
            "the frame after the last chart or row is drawn"
            + (
                ""
                if args.no_mlflow
                else "; MLflow's workspace is its chart view, which draws 10 of the 20 runs by "
                "default; its compare is its metric page"
            )
        ),
    )


if __name__ == "__main__":
    main()
