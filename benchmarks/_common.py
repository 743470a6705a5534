"""Helpers shared by the benchmark scripts: workers in subprocesses, trackers, timing, tables.

Each measurement runs in a fresh subprocess (``python SCRIPT --worker NAME JSON``) with its own
data directory, so that peak RSS (``ru_maxrss``) belongs to that measurement alone.
"""

from __future__ import annotations

import contextlib
import json
import os
import resource
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

RESULT_MARK = "@@result "
TRACKERS = ("runbase", "wandb", "trackio")


# ---------------------------------------------------------------- workers


def worker_main(workers: dict[str, Callable[..., dict]]) -> bool:
    """Run the worker named on the command line, if any, print its result; True if one ran."""
    if len(sys.argv) < 4 or sys.argv[1] != "--worker":
        return False
    result = workers[sys.argv[2]](**json.loads(sys.argv[3]))
    result["peak_rss_mb"] = peak_rss_mb()
    print(RESULT_MARK + json.dumps(result), flush=True)
    return True


def in_subprocess(script: str, worker: str, timeout: float = 1800, **kwargs: Any) -> dict:
    """Run ``worker`` of ``script`` in a fresh process with a fresh data directory."""
    with tempfile.TemporaryDirectory(prefix="runbase-bench-") as tmp:
        kwargs.setdefault("data_dir", tmp)
        Path(kwargs["data_dir"]).mkdir(parents=True, exist_ok=True)
        proc = subprocess.run(
            [sys.executable, script, "--worker", worker, json.dumps(kwargs)],
            env=tracker_env(Path(kwargs["data_dir"])),
            cwd=tmp,
            capture_output=True,
            text=True,
            timeout=timeout,
        )
    for line in reversed(proc.stdout.splitlines()):
        if line.startswith(RESULT_MARK):
            return json.loads(line[len(RESULT_MARK) :])
    raise RuntimeError(f"worker {worker} failed (exit {proc.returncode}):\n{proc.stderr[-4000:]}")


def tracker_env(data_dir: Path) -> dict[str, str]:
    """The environment of a worker: every tracker writes under ``data_dir``, quietly, offline,
    and without a system-metrics sampler."""
    env = dict(os.environ)
    env.update(
        RUNBASE_DIR=str(data_dir / "runbase"),
        RUNBASE_SYSTEM_INTERVAL="0",
        WANDB_MODE="offline",
        WANDB_DIR=str(data_dir),
        WANDB_SILENT="true",
        WANDB__DISABLE_STATS="true",
        TRACKIO_DIR=str(data_dir / "trackio"),
        MLFLOW_TRACKING_URI=f"sqlite:///{data_dir / 'mlflow.db'}",
    )
    return env


def peak_rss_mb() -> float:
    """Peak resident set size of this process, in MB (Linux reports KiB)."""
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


class ChildrenRSS:
    """Samples the summed RSS of this process's children (wandb's service) in a thread."""

    def __init__(self, interval: float = 0.1) -> None:
        self.interval = interval
        self.peak_mb = 0.0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def __enter__(self) -> ChildrenRSS:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.sample()
        self._stop.set()
        self._thread.join()

    def _run(self) -> None:
        while not self._stop.wait(self.interval):
            self.sample()

    def sample(self) -> None:
        import psutil

        total = 0
        for child in psutil.Process().children(recursive=True):
            with contextlib.suppress(psutil.Error):
                total += child.memory_info().rss
        self.peak_mb = max(self.peak_mb, total / 2**20)


# ---------------------------------------------------------------- trackers


def start_run(tracker: str, project: str, config: dict | None = None) -> Any:
    """A run of ``tracker`` with ``log(dict)`` and ``finish()``; settings come from the env."""
    if tracker == "runbase":
        import runbase

        return runbase.init(project=project, config=config)
    if tracker == "wandb":
        import wandb

        return wandb.init(project=project, config=config)
    if tracker == "trackio":
        import trackio

        return trackio.init(
            project=project, config=config, auto_log_cpu=False, auto_log_gpu=False, embed=False
        )
    raise ValueError(f"unknown tracker {tracker!r}")


def time_log_calls(run: Any, calls: int) -> dict[str, float]:
    """Each of ``calls`` ``run.log()`` of a 10-metric row timed on the caller's thread, then
    ``run.finish()``: median and p99 in microseconds."""
    took = [0] * calls
    clock = time.perf_counter_ns
    for i in range(calls):
        row = metrics(i)
        start = clock()
        run.log(row)
        took[i] = clock() - start
    run.finish()
    took.sort()
    return {"median_us": took[calls // 2] / 1e3, "p99_us": percentile(took, 0.99) / 1e3}


def import_tracker(tracker: str) -> None:
    """Import the tracker's package, so that import time stays out of the timings."""
    __import__(tracker)


def metrics(i: int, width: int = 10) -> dict[str, float]:
    """The logged row: ``width`` float metrics that change with ``i``."""
    return {f"m{j}": i * 0.001 + j for j in range(width)}


def versions() -> str:
    """Versions of the trackers at hand, for the table captions."""
    from importlib.metadata import PackageNotFoundError, version

    found = []
    for name in ("runbase", "wandb", "trackio", "mlflow"):
        with contextlib.suppress(PackageNotFoundError):
            found.append(f"{name} {version(name)}")
    return ", ".join(found)


# ---------------------------------------------------------------- timing and output


def timed(fn: Callable[[], Any], repeat: int = 5) -> tuple[float, float | None, Any]:
    """(first call seconds, median of ``repeat`` later calls or None, first result)."""
    start = time.perf_counter()
    result = fn()
    first = time.perf_counter() - start
    later = []
    for _ in range(repeat):
        start = time.perf_counter()
        fn()
        later.append(time.perf_counter() - start)
    return first, statistics.median(later) if later else None, result


def percentile(sorted_values: list[float], q: float) -> float:
    return sorted_values[min(len(sorted_values) - 1, int(q * len(sorted_values)))]


def ratio(numerator: float | None, denominator: float | None) -> str:
    if not numerator or not denominator:
        return "-"
    return f"{numerator / denominator:.1f}x"


def verdict(ok: bool | None) -> str:
    return "-" if ok is None else ("ok" if ok else "MISSED")


def print_table(title: str, headers: list[str], rows: list[list[Any]], caption: str = "") -> None:
    from rich.console import Console
    from rich.table import Table

    table = Table(title=title, caption=caption or None)
    for i, header in enumerate(headers):
        table.add_column(header, justify="left" if i == 0 else "right")
    for row in rows:
        table.add_row(*(str(cell) for cell in row))
    Console(width=120).print(table)


def note(text: str) -> None:
    print(f"note: {text}", flush=True)
