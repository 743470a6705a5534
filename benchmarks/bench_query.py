"""Query: filter 100,000 runs, scan a 1,000,000-row history, sample, read many histories.

Run with the benchmark environment (``benchmarks/setup_peers.sh``):

    .bench-venv/bin/python benchmarks/bench_query.py [--quick] [--keep DIR]

Peers: MLflow ``search_runs`` on the same runs in its SQLite store; trackio reading the same
history; a bare loop over the rows' JSON text in SQLite as the floor of a history scan.
"""

from __future__ import annotations

import argparse
import itertools
import random
import shutil
import sqlite3
import statistics
import tempfile
import time
import uuid
from pathlib import Path
from typing import Any

import _common as c
import orjson

PROJECT = "bench"
FILTERS = {"config.optimizer": "adam", "summary_metrics.acc": {"$gt": 0.5}}
ORDER = "+summary_metrics.loss"
MLFLOW_FILTER = "params.optimizer = 'adam' and metrics.acc > 0.5"
MLFLOW_ORDER = ["metrics.loss ASC"]
PAGE = 50
RARE_ROWS = 26
GOAL_SCAN_SHARE = 0.70
GOAL_SAMPLE_S = 0.020
GOAL_RARE_S = 0.010


# ---------------------------------------------------------------- data


def run_values(i: int) -> tuple[dict, dict]:
    """Config (6 keys) and summary (3 keys) of run ``i``; the same for every tracker."""
    rng = random.Random(i)
    config = {
        "lr": rng.choice([1e-4, 3e-4, 1e-3, 3e-3, 1e-2]),
        "optimizer": rng.choice(["adam", "adamw", "sgd", "lion"]),
        "batch_size": rng.choice([16, 32, 64, 128]),
        "layers": rng.randint(2, 12),
        "dropout": round(rng.random() * 0.5, 2),
        "seed": i,
    }
    summary = {"loss": rng.random(), "acc": rng.random(), "epoch": rng.randint(1, 100)}
    return config, summary


def expected_page(n: int) -> tuple[int, list[str]]:
    """How many runs match ``FILTERS`` and the ids of the first page, computed in Python."""
    matching = []
    for i in range(n):
        config, summary = run_values(i)
        if config["optimizer"] == "adam" and summary["acc"] > 0.5:
            matching.append((summary["loss"], run_name(i)))
    return len(matching), [name for _, name in sorted(matching)[:PAGE]]


def chunks(n: int, size: int) -> list[range]:
    return [range(start, min(start + size, n)) for start in range(0, n, size)]


def run_name(i: int) -> str:
    return f"r{i:06d}"


def rare_rows(rows: int) -> set[int]:
    """The ``RARE_ROWS`` row indexes that hold the key ``rare``."""
    return set(range(0, rows, -(-rows // RARE_ROWS)))


def history_row(i: int, rare: set[int]) -> dict:
    row = c.metrics(i)
    if i in rare:
        row["rare"] = float(i)
    return row


# ---------------------------------------------------------------- runbase


def build_runbase_runs(data_dir: str, n: int) -> dict:
    """Write ``n`` finished runs straight into runbase's store (100k runs through ``init``
    would take minutes); it fills every column of ``runbase.store.schema.runs``."""
    from runbase.settings import Settings
    from runbase.store import Store
    from runbase.store.projects import ensure_project
    from runbase.store.schema import runs

    settings = Settings.load()
    store = Store.open(settings.database_url, settings.data_dir)
    start = time.perf_counter()
    now = time.time()

    def fill(conn: Any) -> None:
        project_id = ensure_project(store.dialect, conn, settings.default_entity, PROJECT)
        for chunk in chunks(n, 10_000):
            conn.execute(runs.insert(), [_runbase_row(project_id, i, now) for i in chunk])

    store.write_fn(fill)
    store.close()
    return {"seconds": time.perf_counter() - start}


def _runbase_row(project_id: int, i: int, now: float) -> dict:
    config, summary = run_values(i)
    return {
        "project_id": project_id,
        "run_id": run_name(i),
        "display_name": run_name(i),
        "state": "finished",
        "config": config,
        "summary": summary,
        "system_metrics": {},
        "run_metadata": {},
        "tags": [],
        "username": "bench",
        "created_at": now + i / 1000,
        "heartbeat_at": now,
        "updated_at": now,
        "history_line_count": 0,
        "system_line_count": 0,
    }


def query_runbase(data_dir: str) -> dict:
    """First page of the filtered, ordered runs, and their count."""
    import runbase

    api = runbase.Api()

    def first_page():
        api.flush()
        return [run.id for run in itertools.islice(api.runs(PROJECT, FILTERS, ORDER, PAGE), PAGE)]

    def count():
        api.flush()
        return len(api.runs(PROJECT, FILTERS, ORDER, PAGE))

    page_first, page_median, ids = c.timed(first_page)
    count_first, count_median, total = c.timed(count)
    return {
        "page": [page_first, page_median],
        "count": [count_first, count_median],
        "ids": ids,
        "total": total,
    }


def build_history(data_dir: str, rows: int) -> dict:
    """One run of ``rows`` rows through the SDK; the key ``rare`` is in ``RARE_ROWS`` rows."""
    import runbase

    rare = rare_rows(rows)
    start = time.perf_counter()
    run = runbase.init(project=PROJECT)
    for i in range(rows):
        run.log(history_row(i, rare))
    run.finish()
    path = f"{run.entity}/{run.project}/{run.id}"
    return {"seconds": time.perf_counter() - start, "path": path}


def read_history(data_dir: str, path: str) -> dict:
    """Scan every row; sample 500; scan the rare key. Each call starts with an empty cache."""
    import pandas  # noqa: F401 (import time stays out of the timings)

    import runbase

    api = runbase.Api()
    run = api.run(path)

    def fresh(fn):
        def call():
            api.flush()
            return fn()

        return call

    scan_s, scanned = median_scan(lambda: sum(1 for _ in run.scan_history()))
    sample_first, sample_median, frame = c.timed(fresh(lambda: run.history(samples=500)))
    rare = fresh(lambda: list(run.scan_history(keys=["rare"])))
    rare_first, rare_median, found = c.timed(rare)
    return {
        "rows": scanned,
        "scan_s": scan_s,
        "sample": [sample_first, sample_median],
        "sample_rows": len(frame),
        "rare": [rare_first, rare_median],
        "rare_rows": len(found),
    }


def scan_floor(data_dir: str, path: str, rows: int) -> dict:
    """The floor of a scan: read the rows' JSON text from SQLite and ``orjson.loads`` each.

    Reads runbase's hot tier when it still holds the rows; otherwise (rows compacted away) a
    scratch table of the same layout with equivalent rows, and says so.
    """
    db_path = Path(data_dir) / "runbase" / "runbase.db"
    db = _sqlite().connect(db_path)
    pk = db.execute("SELECT storage_id FROM runs WHERE run_id = ?", (path.split("/")[-1],))
    pk = pk.fetchone()[0]
    held = db.execute("SELECT count(*) FROM history WHERE run_pk=? AND stream=0", (pk,))
    source = "runbase's history table"
    if held.fetchone()[0] < rows:
        db, pk, source = _scratch_history(Path(data_dir) / "floor.db", rows), 1, "a scratch copy"
    query = "SELECT row FROM history WHERE run_pk=? AND stream=0 ORDER BY idx"

    def scan() -> int:
        n = 0
        for (text,) in db.execute(query, (pk,)):
            orjson.loads(text)
            n += 1
        return n

    scan_s, n = median_scan(scan)
    return {"rows": n, "scan_s": scan_s, "source": source}


def median_scan(scan, times: int = 3) -> tuple[float, int]:
    """Median seconds of ``times`` full scans (the first warms caches), and the row count."""
    took = []
    for _ in range(times):
        start = time.perf_counter()
        rows = scan()
        took.append(time.perf_counter() - start)
    return statistics.median(took), rows


def _sqlite():
    try:
        import pysqlite3.dbapi2 as module  # type: ignore[import-not-found]
    except ImportError:
        module = sqlite3
    return module


def _scratch_history(db_path: Path, rows: int):
    db = _sqlite().connect(db_path)
    db.execute(
        "CREATE TABLE history (run_pk INTEGER, stream INTEGER, idx INTEGER, row TEXT,"
        " PRIMARY KEY (run_pk, stream, idx)) WITHOUT ROWID"
    )
    rare, t0 = rare_rows(rows), time.time()
    db.executemany(
        "INSERT INTO history VALUES (1, 0, ?, ?)",
        ((i, _row_text(i, rare, t0)) for i in range(rows)),
    )
    db.commit()
    return db


def _row_text(i: int, rare: set[int], t0: float) -> str:
    row = {**history_row(i, rare), "_step": i, "_runtime": i / 1e4, "_timestamp": t0 + i / 1e4}
    return orjson.dumps(row).decode()


def build_histories(data_dir: str, runs: int, rows: int) -> dict:
    """``runs`` runs of ``rows`` rows each, through the SDK."""
    import runbase

    for _ in range(runs):
        run = runbase.init(project=PROJECT)
        for i in range(rows):
            run.log(c.metrics(i))
        run.finish()
    return {}


def read_histories(data_dir: str, samples: int) -> dict:
    """Every run's history into one DataFrame with ``Runs.histories``."""
    import runbase

    api = runbase.Api()
    start = time.perf_counter()
    frame = api.runs(PROJECT, per_page=PAGE).histories(samples=samples, format="pandas")
    return {"seconds": time.perf_counter() - start, "rows": len(frame)}


# ---------------------------------------------------------------- peers


def build_mlflow_runs(data_dir: str, n: int) -> dict:
    """``n`` runs in MLflow's SQLite store: MLflow creates the schema, rows go in with SQL."""
    from mlflow import MlflowClient

    client = MlflowClient()
    experiment = client.create_experiment(PROJECT, artifact_location=f"{data_dir}/artifacts")
    start = time.perf_counter()
    db = sqlite3.connect(Path(data_dir) / "mlflow.db")
    now = int(time.time() * 1000)
    for chunk in chunks(n, 10_000):
        _insert_mlflow(db, int(experiment), chunk, now, data_dir)
    db.commit()
    seconds = time.perf_counter() - start
    found = client.search_runs([experiment], "params.seed = '7'")
    assert len(found) == 1 and found[0].data.metrics["loss"] == run_values(7)[1]["loss"]
    assert found[0].data.params["optimizer"] == run_values(7)[0]["optimizer"]
    return {"seconds": seconds, "experiment": experiment}


def _insert_mlflow(db, experiment: int, chunk, now: int, data_dir: str) -> None:
    runs, params, metrics, tags = [], [], [], []
    for i in chunk:
        config, summary = run_values(i)
        uid = uuid.UUID(int=i + 1).hex
        runs.append(
            (uid, run_name(i), now + i, now + i + 1, f"{data_dir}/artifacts/{uid}", experiment)
        )
        params += [(k, str(v), uid) for k, v in config.items()]
        metrics += [(k, float(v), now + i, uid) for k, v in summary.items()]
        tags += [("mlflow.runName", run_name(i), uid), ("mlflow.user", "bench", uid)]
    db.executemany(
        "INSERT INTO runs (run_uuid, name, source_type, source_name, entry_point_name, user_id,"
        " status, start_time, end_time, source_version, lifecycle_stage, artifact_uri,"
        " experiment_id) VALUES (?, ?, 'UNKNOWN', '', '', 'bench', 'FINISHED', ?, ?, '',"
        " 'active', ?, ?)",
        runs,
    )
    db.executemany("INSERT INTO params (key, value, run_uuid) VALUES (?, ?, ?)", params)
    for table in ("metrics", "latest_metrics"):
        db.executemany(
            f"INSERT INTO {table} (key, value, timestamp, run_uuid, step, is_nan)"
            " VALUES (?, ?, ?, ?, 0, 0)",
            metrics,
        )
    db.executemany("INSERT INTO tags (key, value, run_uuid) VALUES (?, ?, ?)", tags)


def query_mlflow(data_dir: str, experiment: str) -> dict:
    """MLflow's first page of the same query (MLflow has no count)."""
    from mlflow import MlflowClient

    client = MlflowClient()

    def first_page():
        found = client.search_runs(
            [experiment], MLFLOW_FILTER, order_by=MLFLOW_ORDER, max_results=PAGE
        )
        return [run.info.run_name for run in found]

    page_first, page_median, ids = c.timed(first_page, repeat=0)
    return {"page": [page_first, page_median], "ids": ids}


def trackio_write(data_dir: str, rows: int) -> dict:
    """One trackio run of ``rows`` rows (the same rows as runbase's)."""
    rare = rare_rows(rows)
    start = time.perf_counter()
    run = c.start_run("trackio", PROJECT)
    for i in range(rows):
        run.log(history_row(i, rare))
    run.finish()
    return {"seconds": time.perf_counter() - start, "name": run.name}


def trackio_read(data_dir: str, name: str) -> dict:
    """trackio's read of the whole run's history (``SQLiteStorage.get_logs``)."""
    from trackio.sqlite_storage import SQLiteStorage

    scan_s, rows = median_scan(lambda: len(SQLiteStorage.get_logs(PROJECT, name)))
    return {"scan_s": scan_s, "rows": rows}


WORKERS = {
    "build_runbase_runs": build_runbase_runs,
    "query_runbase": query_runbase,
    "build_mlflow_runs": build_mlflow_runs,
    "query_mlflow": query_mlflow,
    "build_history": build_history,
    "read_history": read_history,
    "scan_floor": scan_floor,
    "build_histories": build_histories,
    "read_histories": read_histories,
    "trackio_write": trackio_write,
    "trackio_read": trackio_read,
}


# ---------------------------------------------------------------- the report


def step(text: str) -> None:
    print(f"  {text} ...", flush=True)


def report_runs(root: Path, n: int) -> None:
    script = __file__
    ours, theirs = root / "runs", root / "mlflow"
    step(f"building {n:,} runs in runbase")
    built = c.in_subprocess(script, "build_runbase_runs", data_dir=str(ours), n=n)
    step(f"building {n:,} runs in MLflow")
    ml_built = c.in_subprocess(script, "build_mlflow_runs", data_dir=str(theirs), n=n)
    step("querying")
    rb = c.in_subprocess(script, "query_runbase", data_dir=str(ours))
    ml = c.in_subprocess(
        script, "query_mlflow", data_dir=str(theirs), experiment=ml_built["experiment"]
    )
    total, ids = expected_page(n)
    c.print_table(
        f"{n:,} runs: filter {FILTERS}, order {ORDER}, first page of {PAGE}",
        ["", "first call ms", "median of 5 ms", "MLflow / runbase", "result"],
        [
            [
                "runbase: first page",
                *_ms(rb["page"]),
                c.ratio(ml["page"][0], rb["page"][0]),
                _check(rb["ids"] == ids),
            ],
            ["runbase: len()", *_ms(rb["count"]), "-", _check(rb["total"] == total)],
            ["MLflow search_runs: first page", *_ms(ml["page"]), "1.0x", _check(ml["ids"] == ids)],
        ],
        caption=f"{total:,} runs match. Built in {built['seconds']:.1f} s (runbase) and "
        f"{ml_built['seconds']:.1f} s (MLflow, direct SQL into the schema MLflow created). "
        "MLflow has no count and is timed once (a call takes a minute); the ratio compares "
        "first calls.",
    )


def report_history(root: Path, rows: int, trackio_rows: int) -> None:
    script, where = __file__, str(root / "history")
    step(f"logging {rows:,} rows to runbase")
    built = c.in_subprocess(script, "build_history", data_dir=where, rows=rows)
    step("reading them back")
    rb = c.in_subprocess(script, "read_history", data_dir=where, path=built["path"])
    floor = c.in_subprocess(script, "scan_floor", data_dir=where, path=built["path"], rows=rows)
    step(f"logging {trackio_rows:,} rows to trackio and reading them back")
    tk_dir = str(root / "trackio")
    tk_built = c.in_subprocess(script, "trackio_write", data_dir=tk_dir, rows=trackio_rows)
    tk = c.in_subprocess(script, "trackio_read", data_dir=tk_dir, name=tk_built["name"])
    rate = {
        name: r["rows"] / r["scan_s"]
        for name, r in {"runbase": rb, "floor": floor, "trackio": tk}.items()
    }
    share = rate["runbase"] / rate["floor"]
    c.print_table(
        f"History of one run: {rows:,} rows x 10 metrics",
        ["read", "rows", "seconds", "rows/s", "share of floor", "goal"],
        [
            [
                "runbase scan_history()",
                f"{rb['rows']:,}",
                f"{rb['scan_s']:.2f}",
                f"{rate['runbase']:,.0f}",
                f"{share:.0%}",
                _goal(share >= GOAL_SCAN_SHARE),
            ],
            [
                f"floor: JSON text from {floor['source']} + orjson",
                f"{floor['rows']:,}",
                f"{floor['scan_s']:.2f}",
                f"{rate['floor']:,.0f}",
                "100%",
                "-",
            ],
            [
                "trackio SQLiteStorage.get_logs",
                f"{tk['rows']:,}",
                f"{tk['scan_s']:.2f}",
                f"{rate['trackio']:,.0f}",
                f"{rate['trackio'] / rate['floor']:.0%}",
                "-",
            ],
        ],
        caption=f"goal: scan >= {GOAL_SCAN_SHARE:.0%} of the floor. Logging took "
        f"{built['seconds']:.1f} s (runbase, {rows:,} rows), {tk_built['seconds']:.1f} s "
        f"(trackio, {trackio_rows:,} rows).",
    )
    c.print_table(
        "Sampled and sparse reads of the same run",
        ["read", "rows", "first call ms", "median of 5 ms", "goal"],
        [
            [
                "history(samples=500)",
                rb["sample_rows"],
                *_ms(rb["sample"]),
                _goal(rb["sample"][1] <= GOAL_SAMPLE_S, f"<= {GOAL_SAMPLE_S * 1000:.0f} ms"),
            ],
            [
                f"scan_history(keys=['rare']), {RARE_ROWS} rows hold it",
                rb["rare_rows"],
                *_ms(rb["rare"]),
                _goal(rb["rare"][1] <= GOAL_RARE_S, f"<= {GOAL_RARE_S * 1000:.0f} ms"),
            ],
        ],
        caption="goals apply to the median (warm) call",
    )


def report_histories(root: Path, runs: int, rows: int) -> None:
    script, where = __file__, str(root / "histories")
    step(f"logging {runs} runs x {rows:,} rows to runbase")
    c.in_subprocess(script, "build_histories", data_dir=where, runs=runs, rows=rows)
    r = c.in_subprocess(script, "read_histories", data_dir=where, samples=rows)
    c.print_table(
        f"Runs.histories(samples={rows:,}, format='pandas') over {runs} runs",
        ["rows in the DataFrame", "seconds", "rows/s"],
        [[f"{r['rows']:,}", f"{r['seconds']:.2f}", f"{r['rows'] / r['seconds']:,.0f}"]],
    )


def _ms(pair: list[float | None]) -> list[str]:
    return ["-" if seconds is None else f"{seconds * 1000:.1f}" for seconds in pair]


def _check(ok: bool) -> str:
    return "same as expected" if ok else "DIFFERS"


def _goal(ok: bool, text: str = "") -> str:
    return f"{text} {c.verdict(ok)}".strip()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="scale every N down by 10")
    parser.add_argument("--keep", metavar="DIR", help="build the data under DIR and keep it")
    parser.add_argument("--trackio-rows", type=int, help="rows for trackio (default: same)")
    parser.add_argument("--skip", default="", help="comma-separated: runs,history,histories")
    args = parser.parse_args()
    scale = 10 if args.quick else 1
    runs, rows = 100_000 // scale, 1_000_000 // scale
    if args.quick:
        c.note("--quick: every N is 10x smaller than the goals' workloads")
    if args.trackio_rows:
        c.note(f"trackio gets {args.trackio_rows:,} rows, not {rows:,}")
    print(c.versions())
    root = Path(args.keep or tempfile.mkdtemp(prefix="runbase-bench-"))
    skip = set(args.skip.split(","))
    try:
        if "runs" not in skip:
            report_runs(root, runs)
        if "history" not in skip:
            report_history(root, rows, args.trackio_rows or rows)
        if "histories" not in skip:
            report_histories(root, 100, 1_000)
    finally:
        if not args.keep:
            shutil.rmtree(root, ignore_errors=True)


if __name__ == "__main__" and not c.worker_main(WORKERS):
    main()
