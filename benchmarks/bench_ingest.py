"""Ingest: import time, log() latency, 100,000 steps x 10 metrics, 1,000 short runs; runbase vs
peers.

Run with the benchmark environment (``benchmarks/setup_peers.sh``):

    .bench-venv/bin/python benchmarks/bench_ingest.py [--quick] [--only runbase,wandb]

wandb runs offline, trackio locally, MLflow into SQLite; none samples system metrics.
"""

from __future__ import annotations

import argparse
import statistics
import subprocess
import sys
import time

import _common as c

GOAL_LOG_MEDIAN_US = 5.0
GOAL_STEPS_S = 1.5
GOAL_RSS_MB = 150.0
GOAL_RUNS_S = 10.0
GOAL_VS = {"wandb": 10.0, "trackio": 5.0}
IMPORT_REPEAT = 7


# ---------------------------------------------------------------- workers (one per process)


def latency(tracker: str, calls: int, data_dir: str) -> dict:
    """Time each ``run.log()`` on the caller's thread."""
    c.import_tracker(tracker)
    run = c.start_run(tracker, "latency")
    return c.time_log_calls(run, calls)


def steps(tracker: str, steps: int, data_dir: str) -> dict:
    """Init, ``steps`` logs of 10 metrics, finish: wall time and the service's RSS."""
    c.import_tracker(tracker)
    with c.ChildrenRSS() as children:
        start = time.perf_counter()
        run = c.start_run(tracker, "steps", {"lr": 0.001, "batch_size": 64})
        for i in range(steps):
            run.log(c.metrics(i))
        run.finish()
        seconds = time.perf_counter() - start
    return {"seconds": seconds, "children_rss_mb": children.peak_mb}


def mlflow_steps(steps: int, data_dir: str) -> dict:
    """MLflow: one ``log_batch`` of 10 metrics a step into SQLite (schema creation excluded)."""
    from mlflow import MlflowClient
    from mlflow.entities import Metric

    client = MlflowClient()
    experiment = client.create_experiment("steps", artifact_location=f"{data_dir}/artifacts")
    start = time.perf_counter()
    run_id = client.create_run(experiment).info.run_id
    for i in range(steps):
        now = int(time.time() * 1000)
        batch = [Metric(k, v, now, i) for k, v in c.metrics(i).items()]
        client.log_batch(run_id, metrics=batch)
    client.set_terminated(run_id)
    return {"seconds": time.perf_counter() - start, "children_rss_mb": 0.0}


def short_runs(tracker: str, runs: int, data_dir: str) -> dict:
    """``runs`` times: init, 3 logs, finish, all in this one process."""
    c.import_tracker(tracker)
    start = time.perf_counter()
    for n in range(runs):
        run = c.start_run(tracker, "short", {"n": n})
        for i in range(3):
            run.log(c.metrics(i))
        run.finish()
    return {"seconds": time.perf_counter() - start}


WORKERS = {"latency": latency, "steps": steps, "mlflow_steps": mlflow_steps, "runs": short_runs}


# ---------------------------------------------------------------- the report


def measure(script: str, worker: str, trackers: list[str], **kwargs) -> dict[str, dict]:
    results = {}
    for tracker in trackers:
        print(f"  {worker}: {tracker} ...", flush=True)
        results[tracker] = c.in_subprocess(script, worker, tracker=tracker, **kwargs)
    return results


def import_seconds(module: str) -> float:
    """Median wall time of ``import module`` in a fresh interpreter (the interpreter's own
    start-up excluded)."""
    code = f"import time; t = time.perf_counter(); import {module}; print(time.perf_counter() - t)"
    times = [
        float(subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                             check=True).stdout)
        for _ in range(IMPORT_REPEAT)
    ]  # fmt: skip
    return statistics.median(times)


def report_import(trackers: list[str]) -> None:
    results = {tracker: import_seconds(tracker) for tracker in [*trackers, "mlflow"]}
    ours = results.get("runbase")
    rows = [
        [tracker, f"{seconds * 1000:.0f}", ratio_vs(tracker, ours, seconds)]
        for tracker, seconds in results.items()
    ]
    c.print_table(
        f"import time, median of {IMPORT_REPEAT} fresh interpreters",
        ["tracker", "ms", "speed-up"],
        rows,
    )


def report_latency(results: dict[str, dict], calls: int) -> None:
    ours = results.get("runbase", {}).get("median_us")
    rows = []
    for tracker, r in results.items():
        goal = r["median_us"] <= GOAL_LOG_MEDIAN_US if tracker == "runbase" else None
        rows.append(
            [
                tracker,
                f"{r['median_us']:.2f}",
                f"{r['p99_us']:.2f}",
                ratio_vs(tracker, ours, r["median_us"]),
                c.verdict(goal),
            ]
        )
    c.print_table(
        f"run.log() of 10 metrics on the caller's thread ({calls:,} calls)",
        ["tracker", "median us", "p99 us", "speed-up", f"goal <= {GOAL_LOG_MEDIAN_US} us"],
        rows,
    )


def report_steps(results: dict[str, dict], n: int, full: bool, mlflow_note: str) -> None:
    """Goals are judged at the full 100,000 steps only."""
    ours = results.get("runbase", {}).get("seconds")
    rows = []
    for tracker, r in results.items():
        seconds = r["seconds"]
        goal = steps_goal(tracker, r, ours) if full else "-"
        service = f"{r['children_rss_mb']:.0f}" if r.get("children_rss_mb") else "-"
        rows.append(
            [
                r.get("label", tracker),
                f"{seconds:.2f}",
                f"{n / seconds:,.0f}",
                f"{r['peak_rss_mb']:.0f}",
                service,
                ratio_vs(tracker, ours, seconds),
                goal,
            ]
        )
    c.print_table(
        f"{n:,} steps x 10 metrics, init to finish, durable",
        ["tracker", "seconds", "rows/s", "peak RSS MB", "service RSS MB", "speed-up", "goal"],
        rows,
        caption="speed-up: peer seconds / runbase seconds. Service RSS: wandb's separate "
        "wandb-core process (sampled), not in peak RSS. " + mlflow_note,
    )


def steps_goal(tracker: str, r: dict, ours: float | None) -> str:
    """runbase's own goal on its row; its speed-up goal against a peer on the peer's row."""
    if tracker == "runbase":
        ok = r["seconds"] <= GOAL_STEPS_S and r["peak_rss_mb"] <= GOAL_RSS_MB
        return f"<= {GOAL_STEPS_S} s, <= {GOAL_RSS_MB:.0f} MB {c.verdict(ok)}"
    if tracker in GOAL_VS and ours:
        ok = r["seconds"] / ours >= GOAL_VS[tracker]
        return f">= {GOAL_VS[tracker]:.0f}x {c.verdict(ok)}"
    return "-"


def report_runs(results: dict[str, dict], runs: int) -> None:
    per_1000 = {t: r["seconds"] * 1000 / runs for t, r in results.items()}
    ours = per_1000.get("runbase")
    rows = []
    for tracker, r in results.items():
        goal = per_1000[tracker] <= GOAL_RUNS_S if tracker == "runbase" else None
        rows.append(
            [
                tracker,
                f"{r['seconds']:.2f}",
                f"{per_1000[tracker]:.2f}",
                ratio_vs(tracker, ours, per_1000[tracker]),
                c.verdict(goal),
            ]
        )
    c.print_table(
        f"{runs:,} short runs in one process (init, 3 logs, finish)",
        ["tracker", "seconds", "s per 1,000 runs", "speed-up", f"goal <= {GOAL_RUNS_S:.0f} s"],
        rows,
    )


def ratio_vs(tracker: str, ours: float | None, theirs: float) -> str:
    return "1.0x" if tracker == "runbase" else c.ratio(theirs, ours)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="scale every N down by 10")
    parser.add_argument("--only", default=",".join(c.TRACKERS), help="comma-separated trackers")
    parser.add_argument("--no-mlflow", action="store_true")
    args = parser.parse_args()
    trackers = [t for t in args.only.split(",") if t]
    scale = 10 if args.quick else 1
    calls, n_steps, mlflow_n = 100_000 // scale, 100_000 // scale, 5_000 // scale
    n_runs = 1_000 // scale
    if args.quick:
        c.note("--quick: every N is 10x smaller than the goals' workloads")
    print(c.versions())

    script = __file__
    report_import(trackers)
    report_latency(measure(script, "latency", trackers, calls=calls), calls)

    results = measure(script, "steps", trackers, steps=n_steps)
    mlflow_note = ""
    if not args.no_mlflow:
        print("  steps: mlflow ...", flush=True)
        r = c.in_subprocess(script, "mlflow_steps", steps=mlflow_n)
        r["seconds"] *= n_steps / mlflow_n
        r["label"] = "mlflow*"
        results["mlflow"] = r
        mlflow_note = f"* MLflow: {mlflow_n:,} steps measured, time scaled to {n_steps:,}."
    report_steps(results, n_steps, not args.quick, mlflow_note)

    report_runs(measure(script, "runs", trackers, runs=n_runs), n_runs)


if __name__ == "__main__" and not c.worker_main(WORKERS):
    main()
