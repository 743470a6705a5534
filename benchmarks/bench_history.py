"""Columnar history: compaction, storage, and reads of a compacted 1,000,000-row run.

    .venv/bin/python benchmarks/bench_history.py [--quick]

One run of 1,000,000 rows x 10 metrics is logged with automatic compaction off, measured hot,
compacted with ``runbase compact`` (timed), and measured again; a live run is logged while its
tail is compacted (``log()`` latency). Peers: the hot tier's floor (the rows' JSON text read
from SQLite, ``orjson.loads`` each) and pyarrow reading the same data from one local Parquet
file. Each part runs in a fresh process.
"""

from __future__ import annotations

import argparse
import os
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import _common as c

PROJECT = "columnar"
GOAL_COMPACT_S = 3.0
GOAL_FRAME_S = 0.5
GOAL_LOG_US = 5.0


def log_run(data_dir: str, rows: int) -> dict:
    """One run of ``rows`` rows of 10 metrics, left hot (RUNBASE_COMPACT_ROWS=0)."""
    import runbase

    run = runbase.init(project=PROJECT, id="big")
    for i in range(rows):
        run.log(c.metrics(i))
    run.finish()
    return {"path": f"{run.entity}/{run.project}/{run.id}"}


def sizes(data_dir: str) -> dict:
    """Bytes of the run's hot rows (text and keys) and of its segments."""
    db = sqlite3.connect(Path(data_dir) / "runbase" / "runbase.db")
    hot = db.execute(
        "SELECT count(*), coalesce(sum(length(row)), 0) + 24 * count(*) FROM history"
        " WHERE stream = 0"
    ).fetchone()
    cold = db.execute(
        "SELECT coalesce(sum(row_count), 0), coalesce(sum(length(data)), 0) FROM history_segments"
        " WHERE stream = 0"
    ).fetchone()
    return {"hot_rows": hot[0], "hot_bytes": hot[1], "cold_rows": cold[0], "cold_bytes": cold[1]}


def reads(data_dir: str, path: str) -> dict:
    """scan_history() and history(samples=None, pandas=True), each the median of 3."""
    import pandas  # noqa: F401 (import time stays out of the timings)

    import runbase

    api = runbase.Api()
    run = api.run(path)

    def median(fn) -> tuple[float, int]:
        took, n = [], 0
        for _ in range(3):
            api.flush()
            start = time.perf_counter()
            n = fn()
            took.append(time.perf_counter() - start)
        return statistics.median(took), n

    scan_s, scanned = median(lambda: sum(1 for _ in run.scan_history()))
    frame_s, framed = median(lambda: len(run.history(samples=None, pandas=True)))
    return {"scan_s": scan_s, "rows": scanned, "frame_s": frame_s, "frame_rows": framed}


def parquet_peer(data_dir: str, path: str, out: str) -> dict:
    """The same rows written to one local Parquet file, then read with pyarrow into pandas."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    import runbase

    rows = list(runbase.Api().run(path).scan_history())
    pq.write_table(pa.Table.from_pylist(rows), out)
    took = []
    for _ in range(3):
        start = time.perf_counter()
        frame = pq.read_table(out).to_pandas()
        took.append(time.perf_counter() - start)
    return {"seconds": statistics.median(took), "rows": len(frame)}


def live_log(data_dir: str, rows: int) -> dict:
    """log() latency of a live run whose tail is compacted every 100,000 rows meanwhile."""
    import runbase

    run = runbase.init(project=PROJECT, id="live")
    took = []
    clock = time.perf_counter
    for i in range(rows):
        start = clock()
        run.log(c.metrics(i))
        took.append(clock() - start)
    run.finish()
    took.sort()
    return {"median_us": took[len(took) // 2] * 1e6, "p99_us": took[int(len(took) * 0.99)] * 1e6}


WORKERS = {"log_run": log_run, "sizes": sizes, "reads": reads, "parquet_peer": parquet_peer,
           "live_log": live_log}  # fmt: skip


def run_cli(*args: str, env: dict[str, str]) -> float:
    start = time.perf_counter()
    runbase_cli = str(Path(sys.executable).parent / "runbase")
    subprocess.run([runbase_cli, *args], env=env, check=True, capture_output=True)
    return time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="100,000 rows instead of 1,000,000")
    args = parser.parse_args()
    rows = 100_000 if args.quick else 1_000_000
    print(c.versions())
    with tempfile.TemporaryDirectory(prefix="runbase-bench-history-") as tmp:
        data = Path(tmp) / "data"
        where = str(data)
        os.environ["RUNBASE_COMPACT_ROWS"] = "0"
        env = c.tracker_env(data)
        script = __file__
        c.note(f"log {rows:,} rows, hot")
        path = c.in_subprocess(script, "log_run", data_dir=where, rows=rows)["path"]
        import bench_query as q

        hot = c.in_subprocess(script, "reads", data_dir=where, path=path)
        floor = c.in_subprocess(q.__file__, "scan_floor", data_dir=where, path=path, rows=rows)
        before = c.in_subprocess(script, "sizes", data_dir=where)
        c.note("runbase compact")
        compact_s = run_cli("compact", env=env)
        after = c.in_subprocess(script, "sizes", data_dir=where)
        cold = c.in_subprocess(script, "reads", data_dir=where, path=path)
        out = str(Path(tmp) / "peer.parquet")
        peer = c.in_subprocess(script, "parquet_peer", data_dir=where, path=path, out=out)
        os.environ["RUNBASE_COMPACT_ROWS"] = "100000"
        c.note("a live run, compacted as it grows")
        live = c.in_subprocess(script, "live_log", data_dir=where, rows=rows)

    def rate(seconds: float) -> str:
        return f"{rows / seconds:,.0f}"

    frame_ok = cold["frame_s"] <= GOAL_FRAME_S and cold["frame_s"] <= 3 * peer["seconds"]
    hot_per_row = before["hot_bytes"] / max(1, before["hot_rows"])
    cold_per_row = after["cold_bytes"] / max(1, after["cold_rows"])
    c.print_table(
        f"Columnar history of a {rows:,}-row run (10 metrics a row)",
        ["measure", "runbase", "peer", "goal"],
        [
            [
                "compaction (`runbase compact`, a process)",
                f"{compact_s:.2f} s",
                "",
                f"<= {GOAL_COMPACT_S:.0f} s {c.verdict(compact_s <= GOAL_COMPACT_S)}",
            ],
            [
                "scan_history(), compacted",
                f"{cold['scan_s']:.2f} s ({rate(cold['scan_s'])}/s)",
                f"floor {floor['scan_s']:.2f} s ({rate(floor['scan_s'])}/s)",
                f">= floor {c.verdict(cold['scan_s'] <= floor['scan_s'])}",
            ],
            ["scan_history(), hot", f"{hot['scan_s']:.2f} s ({rate(hot['scan_s'])}/s)", "", ""],
            [
                "history(samples=None, pandas=True), compacted",
                f"{cold['frame_s']:.2f} s",
                f"pyarrow read_table().to_pandas() {peer['seconds']:.2f} s "
                f"({c.ratio(cold['frame_s'], peer['seconds'])})",
                f"<= {GOAL_FRAME_S} s and <= 3x {c.verdict(frame_ok)}",
            ],
            ["history(samples=None, pandas=True), hot", f"{hot['frame_s']:.2f} s", "", ""],
            [
                "bytes per row",
                f"{cold_per_row:.1f} compacted",
                f"{hot_per_row:.1f} hot",
                f"<= 1/3 {c.verdict(cold_per_row * 3 <= hot_per_row)}",
            ],
            [
                "log() median / p99 while the tail is compacted",
                f"{live['median_us']:.2f} / {live['p99_us']:.1f} us",
                "",
                f"median <= {GOAL_LOG_US:.0f} us {c.verdict(live['median_us'] <= GOAL_LOG_US)}",
            ],
        ],  # fmt: skip
        caption=f"Rows checked: {cold['rows']:,} scanned, {cold['frame_rows']:,} in the frame, "
        f"{peer['rows']:,} in the peer's. Hot bytes: each row's JSON text plus ~24 bytes of "
        "index, step and key set (the table's own overhead not counted); compacted: the "
        "segments' Parquet bytes.",
    )


if __name__ == "__main__":
    if not c.worker_main(WORKERS):
        main()
