"""Export: ``runbase export`` of 100 runs x 100,000 history rows of 10 metrics to Parquet.

    .venv/bin/python benchmarks/bench_export.py [--quick] [--keep DIR]

The runs are logged through the SDK first (``--quick``: 10,000 rows a run, 10x less). The
export runs in a fresh process (the command's own code, in-process, after its imports), so its
peak RSS is the export's alone. Beside it, a plain ``scan_history`` of every run in another
fresh process: the read the export cannot go below.
"""

from __future__ import annotations

import argparse
import shutil
import tempfile
import time
from pathlib import Path

import _common as c

PROJECT = "bench"
RUNS = 100
ROWS = 100_000
GOAL_ROWS_PER_S = 2_000_000
GOAL_RSS_MB = 500


def build(data_dir: str, runs: int, rows: int) -> dict:
    """``runs`` runs of ``rows`` rows of 10 metrics each, through the SDK."""
    import runbase

    start = time.perf_counter()
    for n in range(runs):
        with runbase.init(project=PROJECT, config={"seed": n, "lr": 0.001 * (n + 1)}) as run:
            for i in range(rows):
                run.log(c.metrics(i))
    return {"seconds": time.perf_counter() - start}


def export(data_dir: str, out: str) -> dict:
    """``runbase export PROJECT --out OUT`` (Parquet), timed after the imports."""
    import pyarrow.parquet as pq

    from runbase.cli import app

    start = time.perf_counter()
    app(["export", PROJECT, "--out", out], standalone_mode=False)
    seconds = time.perf_counter() - start
    history = pq.ParquetFile(Path(out) / "history.parquet").metadata
    runs = pq.ParquetFile(Path(out) / "runs.parquet").metadata
    return {"seconds": seconds, "rows": history.num_rows, "runs": runs.num_rows,
            "row_groups": history.num_row_groups}  # fmt: skip


def scan(data_dir: str) -> dict:
    """Every row of every run through ``scan_history``, decoded and dropped."""
    import runbase

    api = runbase.Api()
    start = time.perf_counter()
    rows = 0
    for run in api.runs(PROJECT, per_page=500):
        rows += sum(1 for _ in run.scan_history(page_size=10_000))
    return {"seconds": time.perf_counter() - start, "rows": rows}


WORKERS = {"build": build, "export": export, "scan": scan}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="10x fewer rows per run")
    parser.add_argument("--keep", metavar="DIR", help="build the data under DIR and keep it")
    args = parser.parse_args()
    rows = ROWS // 10 if args.quick else ROWS
    if args.quick:
        c.note(f"--quick: {RUNS} runs x {rows:,} rows, 10x fewer than the goal's workload")
    print(c.versions())
    root = Path(args.keep or tempfile.mkdtemp(prefix="runbase-bench-"))
    where = str(root / "data")
    try:
        print(f"  logging {RUNS} runs x {rows:,} rows ...", flush=True)
        built = c.in_subprocess(__file__, "build", data_dir=where, runs=RUNS, rows=rows)
        print("  exporting ...", flush=True)
        done = c.in_subprocess(__file__, "export", data_dir=where, out=str(root / "out"))
        print("  scanning ...", flush=True)
        read = c.in_subprocess(__file__, "scan", data_dir=where)
    finally:
        if not args.keep:
            shutil.rmtree(root, ignore_errors=True)
    total = RUNS * rows
    rate, scan_rate = done["rows"] / done["seconds"], read["rows"] / read["seconds"]
    c.print_table(
        f"runbase export to Parquet: {RUNS} runs x {rows:,} rows x 10 metrics",
        ["", "rows", "seconds", "rows/s", "peak RSS MB", "goal"],
        [
            [
                "runbase export --format parquet",
                f"{done['rows']:,}",
                f"{done['seconds']:.2f}",
                f"{rate:,.0f}",
                f"{done['peak_rss_mb']:.0f}",
                f"rows/s >= {GOAL_ROWS_PER_S:,} {c.verdict(rate >= GOAL_ROWS_PER_S)}; "
                f"RSS <= {GOAL_RSS_MB} MB {c.verdict(done['peak_rss_mb'] <= GOAL_RSS_MB)}",
            ],
            [
                "scan_history() of every run (the read alone)",
                f"{read['rows']:,}",
                f"{read['seconds']:.2f}",
                f"{scan_rate:,.0f}",
                f"{read['peak_rss_mb']:.0f}",
                "-",
            ],
        ],
        caption=f"{done['runs']} runs and {done['row_groups']} row groups written; "
        f"{'all' if done['rows'] == total else 'NOT all'} {total:,} rows exported. "
        f"Logging took {built['seconds']:.1f} s.",
    )


if __name__ == "__main__" and not c.worker_main(WORKERS):
    main()
