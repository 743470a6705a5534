"""Bucketed chart curves: ``Run.bucketed_history`` of a 1,000,000-point run and
``Runs.bucketed_histories`` of 20 runs x 100,000 points, 1,000 buckets, compacted runs.

    .venv/bin/python benchmarks/bench_curves.py [--quick]

The runs are logged through the SDK and compacted with ``runbase compact``; each read is then
timed in a fresh process: the first call (cold: the segments are read and decoded) and the
median of 20 more (warm: the API's answer cache is flushed before each, the store's caches of
segment points are kept, as in a server drawing charts). Peer: numpy alone cutting the same
1,000,000 points into 1,000 buckets (min, max and last point per bucket) from arrays already in
memory, the least a curve can cost.
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import _common as c

GOAL_ONE_MS = 20.0
GOAL_MANY_MS = 50.0
BUCKETS = 1000
WARM_CALLS = 20


def log_runs(data_dir: str, project: str, runs: int, rows: int) -> dict:
    import runbase

    for n in range(runs):
        with runbase.init(project=project, id=f"r{n}") as run:
            for i in range(rows):
                run.log(c.metrics(i))
    return {}


def timed(fn) -> dict:
    """The first call's time and the median of ``WARM_CALLS`` more, in milliseconds."""
    start = time.perf_counter()
    fn()
    cold = time.perf_counter() - start
    took = []
    for _ in range(WARM_CALLS):
        start = time.perf_counter()
        fn()
        took.append(time.perf_counter() - start)
    return {"cold_ms": cold * 1e3, "warm_ms": statistics.median(took) * 1e3}


def one_run(data_dir: str, project: str) -> dict:
    import runbase

    api = runbase.Api()
    run = api.runs(project)[0]

    def read() -> None:
        api.flush()
        assert len(run.bucketed_history("m3", buckets=BUCKETS, pandas=False)) == BUCKETS

    return timed(read)


def many_runs(data_dir: str, project: str, runs: int) -> dict:
    import runbase

    api = runbase.Api()

    def read() -> None:
        api.flush()
        found = api.runs(project).bucketed_histories("m3", buckets=BUCKETS, pandas=False)
        assert len(found) == runs * BUCKETS

    return timed(read)


def numpy_peer(data_dir: str, rows: int) -> dict:
    import numpy as np

    x = np.arange(rows, dtype=np.float64)
    y = x * 0.001 + 3
    edges = np.linspace(x[0], x[-1], BUCKETS + 1)

    def cut() -> None:
        starts = np.searchsorted(x, edges[:-1], side="left")
        np.minimum.reduceat(y, starts)
        np.maximum.reduceat(y, starts)
        ends = np.append(starts[1:], len(x)) - 1
        _ = x[ends], y[ends]

    return timed(cut)


WORKERS = {"log_runs": log_runs, "one_run": one_run, "many_runs": many_runs,
           "numpy_peer": numpy_peer}  # fmt: skip


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="10x fewer points")
    args = parser.parse_args()
    scale = 10 if args.quick else 1
    one_rows, many, many_rows = 1_000_000 // scale, 20, 100_000 // scale
    print(c.versions())
    with tempfile.TemporaryDirectory(prefix="runbase-bench-curves-") as tmp:
        where = str(Path(tmp) / "data")
        env = c.tracker_env(Path(where))
        c.note(f"log 1 run x {one_rows:,} rows and {many} runs x {many_rows:,} rows")
        c.in_subprocess(__file__, "log_runs", data_dir=where, project="one", runs=1, rows=one_rows)
        c.in_subprocess(__file__, "log_runs", data_dir=where, project="many", runs=many,
                        rows=many_rows)  # fmt: skip
        runbase_cli = str(Path(sys.executable).parent / "runbase")
        subprocess.run([runbase_cli, "compact"], env=env, check=True, capture_output=True)
        one = c.in_subprocess(__file__, "one_run", data_dir=where, project="one")
        lots = c.in_subprocess(__file__, "many_runs", data_dir=where, project="many", runs=many)
        peer = c.in_subprocess(__file__, "numpy_peer", data_dir=where, rows=one_rows)
    c.print_table(
        "Bucketed curves, 1,000 buckets, compacted runs (SQLite, local)",
        ["curve", "cold", "warm (median of 20)", "peer: numpy on arrays in memory", "goal"],
        [
            [
                f"1 run x {one_rows:,} points",
                f"{one['cold_ms']:.1f} ms",
                f"{one['warm_ms']:.2f} ms",
                f"{peer['warm_ms']:.2f} ms ({c.ratio(one['warm_ms'], peer['warm_ms'])})",
                f"<= {GOAL_ONE_MS:.0f} ms {c.verdict(one['warm_ms'] <= GOAL_ONE_MS)}",
            ],
            [
                f"{many} runs x {many_rows:,} points",
                f"{lots['cold_ms']:.1f} ms",
                f"{lots['warm_ms']:.2f} ms",
                "",
                f"<= {GOAL_MANY_MS:.0f} ms {c.verdict(lots['warm_ms'] <= GOAL_MANY_MS)}",
            ],
        ],  # fmt: skip
        caption="Cold: the first call in a fresh process. Warm: the API's cache flushed before "
        "each call, the store's cached segment points kept.",
    )


if __name__ == "__main__":
    os.environ.setdefault("RUNBASE_SYSTEM_INTERVAL", "0")
    if not c.worker_main(WORKERS):
        main()
