"""W&B reads through runbase server: the real ``wandb`` client's ``scan_history()`` of a
100,000-row run, read by wandb-core's Parquet reader (``parquetHistory``) and by pages of
``history`` (``parquetHistory`` off), and ``api.runs(path, filters)`` at 100,000 runs.

    .venv/bin/python benchmarks/bench_wandb_reads.py [--quick] [--keep DIR]

The run (10 metrics a row, through the SDK in local mode, compacted) and the runs (straight
into the store, as ``bench_query`` builds them) are written before a server starts over them.
The reads of each server run in one fresh ``wandb`` client process, whose history cache
starts empty; runbase's own ``Api`` over HTTP reads the same, for reference. Parquet is
turned off in a server started here (``history.PARQUET_HISTORY``), not by a setting.
"""

from __future__ import annotations

import argparse
import itertools
import json
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import _common as c
import bench_query as q
import bench_server
from bench_server import USER, Server, base_env, local_env, wait_until_healthy

HERE = Path(__file__).resolve().parent
PROJECT = "wandb-reads"
KEYS = ["m0", "m1"]
REPEAT = 5
BIG_PAGE = 10_000


# ---------------------------------------------------------------- the server


class WandbServer(Server):
    """A server over ``store_dir`` whose ``parquetHistory`` answers URLs or, with
    ``parquet`` false, none (so the client pages)."""

    def __init__(self, store_dir: Path, parquet: bool, key: str | None = None) -> None:
        super().__init__(store_dir, key=key)
        self.parquet = parquet

    def start(self) -> WandbServer:
        command = [sys.executable, __file__, "--serve", str(self.port), str(int(self.parquet))]
        env = {**local_env(self.store_dir), "PYTHONPATH": str(HERE)}
        with open(self.log, "ab") as log:
            self.process = subprocess.Popen(command, env=env, stdout=log, stderr=subprocess.STDOUT)
        wait_until_healthy(self.url + "/healthz", self.process)
        return self

    def wandb_env(self, home: Path) -> dict[str, str]:
        """A wandb client's environment: this server, the key, a home of its own."""
        env = {k: v for k, v in base_env().items() if not k.startswith("WANDB_")}
        return {
            **env,
            "HOME": str(home),
            "WANDB_BASE_URL": self.url,
            "WANDB_API_KEY": self.key,
            "WANDB_CONFIG_DIR": str(home / "config"),
            "WANDB_CACHE_DIR": str(home / "cache"),
            "WANDB_DATA_DIR": str(home / "data"),
            "WANDB_DISABLE_GIT": "true",
            "WANDB_SILENT": "true",
        }


def serve(port: int, parquet: bool) -> None:
    import uvicorn

    from runbase.server.app import app_from_environment
    from runbase.server.wandb import history

    history.PARQUET_HISTORY = parquet
    uvicorn.run(app_from_environment(), host="127.0.0.1", port=port, log_level="warning")


def in_process(worker: str, env: dict[str, str], timeout: float = 1800, **kwargs: Any) -> dict:
    """Run ``worker`` of this script in a fresh process with ``env``; its result."""
    return bench_server.in_process(worker, env, timeout, script=__file__, **kwargs)


# ---------------------------------------------------------------- workers: data


def build_history(rows: int) -> dict:
    """One finished run of ``rows`` rows of 10 metrics, every row in a segment."""
    import runbase
    from runbase.backend import open_backend
    from runbase.settings import Settings

    start = time.perf_counter()
    run = runbase.init(project=PROJECT)
    for i in range(rows):
        run.log(c.metrics(i))
    run.finish()
    backend = open_backend(Settings.load())
    backend.wait_for_compaction()
    hot = backend.hot_runs()  # type: ignore[attr-defined]
    path = f"{run.entity}/{run.project}/{run.id}"
    return {"seconds": time.perf_counter() - start, "path": path, "hot": len(hot)}


def build_runs(n: int) -> dict:
    return q.build_runbase_runs("", n)


# ---------------------------------------------------------------- workers: reads


def wandb_scan(path: str) -> dict:
    """``scan_history()`` twice (the second reads the files the first downloaded, when there
    are some), then of ``KEYS`` (without the files: ranges of the URLs)."""
    import wandb

    api = wandb.Api(timeout=600)
    run = api.run(path)
    timings = {}
    for name, scan in [
        ("first", lambda: run.scan_history()),
        ("again", lambda: run.scan_history()),
        ("keys", lambda: run.scan_history(keys=KEYS, use_cache=False)),
        ("big_pages", lambda: run.scan_history(page_size=BIG_PAGE)),
    ]:
        start = time.perf_counter()
        rows = sum(1 for _ in scan())
        timings[name] = [time.perf_counter() - start, rows]
    return timings


def client_floor(rows: int) -> dict:
    """What the client's own Python spends on rows wandb-core hands it, whatever the server:
    its ``HistoryScan`` turns each row's values from JSON texts into a dict."""
    from wandb.apis.public.history import HistoryScan
    from wandb.proto import wandb_api_pb2 as pb

    template = {"_step": 0, "_runtime": 1.5, "_timestamp": 1.79e9}
    template.update({f"m{k}": 0.001 * k for k in range(10)})
    messages = [
        pb.HistoryRow(history_items=[
            pb.ParquetHistoryItem(key=key, value_json=json.dumps(value + i))
            for key, value in template.items()
        ])
        for i in range(rows)
    ]  # fmt: skip
    start = time.perf_counter()
    for message in messages:
        HistoryScan._convert_history_row_to_dict(message)
    return {"seconds": time.perf_counter() - start, "rows": rows}


def runbase_scan(path: str) -> dict:
    import runbase

    api = runbase.Api()
    run = api.run(path)
    timings = {}
    for name, keys in [("first", None), ("keys", KEYS)]:
        api.flush()
        start = time.perf_counter()
        rows = sum(1 for _ in run.scan_history(keys=keys))
        timings[name] = [time.perf_counter() - start, rows]
    return timings


def wandb_runs(n: int) -> dict:
    """The first page of the filtered, ordered runs, and their count (``runCount`` of the
    first page's query): the first call and the median of later ones."""
    import wandb

    api = wandb.Api(timeout=600)
    path = f"{USER}/{q.PROJECT}"

    def first_page() -> list[str]:
        api.flush()
        runs = api.runs(path, filters=q.FILTERS, order=q.ORDER, per_page=q.PAGE)
        return [run.id for run in itertools.islice(runs, q.PAGE)]

    def count() -> int:
        api.flush()
        return len(api.runs(path, filters=q.FILTERS, order=q.ORDER, per_page=q.PAGE))

    page_first, page_median, ids = c.timed(first_page, REPEAT)
    count_first, count_median, total = c.timed(count, REPEAT)
    return {
        "page": [page_first, page_median],
        "count": [count_first, count_median],
        "ids": ids,
        "total": total,
    }


def runbase_runs(n: int) -> dict:
    return q.query_runbase("")


WORKERS = {
    "build_history": build_history,
    "build_runs": build_runs,
    "wandb_scan": wandb_scan,
    "runbase_scan": runbase_scan,
    "client_floor": client_floor,
    "wandb_runs": wandb_runs,
    "runbase_runs": runbase_runs,
}


# ---------------------------------------------------------------- report


def step(text: str) -> None:
    print(f"... {text}", flush=True)


def measure(root: Path, rows: int, runs: int) -> dict[str, Any]:
    store = root / "store"
    store.mkdir(parents=True)
    step(f"writing a run of {rows:,} rows and {runs:,} runs into the store")
    built = in_process("build_history", local_env(store), rows=rows)
    built_runs = in_process("build_runs", local_env(store), n=runs)
    found: dict[str, Any] = {"built": built, "built_runs": built_runs}
    key = None
    for parquet in (True, False):
        server = WandbServer(store, parquet, key)
        key = server.key
        server.start()
        try:
            step(f"reading through a server with parquetHistory {'on' if parquet else 'off'}")
            home = root / f"client-{int(parquet)}"
            home.mkdir()
            found[f"wandb_scan_{int(parquet)}"] = in_process(
                "wandb_scan", server.wandb_env(home), path=built["path"]
            )
            if parquet:
                client = server.client_env(root / "runbase-client")
                found["runbase_scan"] = in_process("runbase_scan", client, path=built["path"])
                found["wandb_runs"] = in_process("wandb_runs", server.wandb_env(home), n=runs)
                found["runbase_runs"] = in_process("runbase_runs", client, n=runs)
                found["floor"] = in_process("client_floor", server.wandb_env(home), rows=rows)
        finally:
            server.stop()
    return found


def report(found: dict[str, Any], rows: int, runs: int) -> None:
    paged, columnar, ours = found["wandb_scan_0"], found["wandb_scan_1"], found["runbase_scan"]
    paged_rate = paged["first"][1] / paged["first"][0]
    floor = [found["floor"]["seconds"], found["floor"]["rows"]]

    def line(label: str, timing: list[float]) -> list[str]:
        seconds, count = timing
        rate = count / seconds
        return [label, f"{count:,}", f"{seconds:.2f}", f"{rate:,.0f}", f"{rate / paged_rate:.1f}x"]

    c.print_table(
        f"wandb.Api().run(path).scan_history() of {rows:,} rows x 10 metrics, runbase server",
        ["read", "rows", "seconds", "rows/s", "vs paged"],
        [
            line("wandb: Parquet, first read (downloads)", columnar["first"]),
            line("wandb: Parquet, again (its cached files)", columnar["again"]),
            line("wandb: paged (parquetHistory off)", paged["first"]),
            line("wandb: paged, again", paged["again"]),
            line(f"wandb: Parquet, page_size={BIG_PAGE:,}", columnar["big_pages"]),
            line(f"wandb: keys={KEYS}, Parquet (URL ranges)", columnar["keys"]),
            line(f"wandb: keys={KEYS}, paged", paged["keys"]),
            line("wandb: its Python's part alone (no server)", floor),
            line("runbase.Api over HTTP (reference)", ours["first"]),
            line(f"runbase.Api over HTTP, keys={KEYS}", ours["keys"]),
        ],
        caption=f"The run was built in {found['built']['seconds']:.1f} s through the SDK "
        f"({found['built']['hot']} runs left with hot rows). Each read is one pass over the "
        'rows in a client process started before the timing. "Its Python\'s part alone" is '
        "the client's HistoryScan turning rows already in memory into dicts: no scan through "
        "this client can be faster.",
    )
    total, ids = q.expected_page(runs)
    wb, rb = found["wandb_runs"], found["runbase_runs"]

    def ms(pair: list[float]) -> list[str]:
        return [f"{pair[0] * 1000:.0f}", f"{pair[1] * 1000:.0f}"]

    c.print_table(
        f"{runs:,} runs: filter {q.FILTERS}, order {q.ORDER}, first page of {q.PAGE}",
        ["", "first call ms", f"median of {REPEAT} ms", "result"],
        [
            ["wandb: api.runs(...) first page", *ms(wb["page"]), c.verdict(wb["ids"] == ids)],
            ["wandb: len(api.runs(...))", *ms(wb["count"]), c.verdict(wb["total"] == total)],
            ["runbase.Api: first page", *ms(rb["page"]), c.verdict(rb["ids"] == ids)],
            ["runbase.Api: len()", *ms(rb["count"]), c.verdict(rb["total"] == total)],
        ],
        caption=f"{total:,} runs match; built in {found['built_runs']['seconds']:.1f} s. The "
        "wandb client's first page also asks for the count (runCount) in the same query.",
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="10x smaller run and project")
    parser.add_argument("--keep", metavar="DIR", help="build the data under DIR and keep it")
    args = parser.parse_args()
    rows = runs = 10_000 if args.quick else 100_000
    if args.quick:
        c.note("--quick: 10,000 rows and 10,000 runs instead of 100,000")
    print(c.versions())
    root = Path(args.keep or tempfile.mkdtemp(prefix="runbase-bench-wandb-"))
    root.mkdir(parents=True, exist_ok=True)
    try:
        report(measure(root, rows, runs), rows, runs)
    finally:
        if not args.keep:
            shutil.rmtree(root, ignore_errors=True)


if __name__ == "__main__":
    if sys.argv[1:2] == ["--serve"]:
        serve(int(sys.argv[2]), sys.argv[3] == "1")
    elif not c.worker_main(WORKERS):
        main()
