"""Server: remote ingest vs MLflow's tracking server, remote history scan, remote run queries,
and a bounded loopback load test, all against ``runbase server`` processes on 127.0.0.1.

Run with the benchmark environment (``benchmarks/setup_peers.sh``):

    .bench-venv/bin/python benchmarks/bench_server.py [--quick] [--skip ingest,scan,runs,load]
        [--loggers 50] [--queriers 10] [--seconds 60] [--postgres URL]

Every server runs over a fresh data directory (SQLite); the load test runs again against two
server processes sharing a fresh PostgreSQL database (``--postgres URL`` of a server, or
``RUNBASE_TEST_POSTGRES`` as ``scripts/with-postgres.sh`` sets it, as ``make bench`` does).
The clients are other processes with ``RUNBASE_BASE_URL``/``RUNBASE_API_KEY`` set and no
``RUNBASE_DATABASE_URL``. The 1,000,000-row
history and the 100,000 runs are written straight into the server's store before the server
starts (through the SDK in local mode and ``bench_query.build_runbase_runs``); only the reads
go over HTTP.
"""

from __future__ import annotations

import argparse
import contextlib
import itertools
import json
import os
import random
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import _common as c

HERE = Path(__file__).resolve().parent
USER = "bench"
GOAL_INGEST_S = 4.0
GOAL_LOG_MEDIAN_US = 5.0
GOAL_SCAN_ROWS_S = 300_000
GOAL_PAGE_S = 0.100
GOAL_COUNT_S = 0.150
LOAD_BATCH = 100  # rows per append in the load test
HISTORY_PROJECT = "scan"


# ---------------------------------------------------------------- servers


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def wait_until_healthy(url: str, process: subprocess.Popen, deadline: float = 60.0) -> None:
    import httpx

    stop = time.monotonic() + deadline
    while time.monotonic() < stop:
        if process.poll() is not None:
            raise RuntimeError(f"server at {url} exited with {process.returncode}")
        try:
            if httpx.get(url, timeout=1.0).status_code < 500:
                return
        except httpx.HTTPError:
            time.sleep(0.1)
    raise RuntimeError(f"no server at {url} after {deadline:.0f} s")


def base_env() -> dict[str, str]:
    """This environment without any runbase or MLflow destination."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("RUNBASE_", "MLFLOW_"))}
    env.update(RUNBASE_SYSTEM_INTERVAL="0")
    return env


def local_env(store_dir: Path) -> dict[str, str]:
    """A process that writes straight into the store in ``store_dir`` as the bench user."""
    return {**base_env(), "RUNBASE_DIR": str(store_dir), "RUNBASE_ENTITY": USER}


def cli(*args: str, env: dict[str, str]) -> str:
    runbase_cli = str(Path(sys.executable).parent / "runbase")
    done = subprocess.run([runbase_cli, *args], env=env, capture_output=True, text=True)
    if done.returncode:
        raise RuntimeError(f"runbase {' '.join(args)}: {done.stderr[-2000:]}")
    return done.stdout.strip()


class Server:
    """``runbase server`` over ``store_dir`` (SQLite), or over the PostgreSQL database
    ``database_url`` with its files in ``store_dir``, on a free loopback port. It makes the
    bench user and a key, unless given the ``key`` another server over the same database made."""

    def __init__(
        self, store_dir: Path, database_url: str | None = None, key: str | None = None
    ) -> None:
        self.store_dir = store_dir
        store_dir.mkdir(parents=True, exist_ok=True)
        env = local_env(store_dir)
        where = ["--data-dir", str(store_dir)] + (["--db", database_url] if database_url else [])
        if key is None:
            cli("user", "create", USER, *where, env=env)
            key = cli("key", "create", "--user", USER, *where, env=env).splitlines()[-1]
        self.key = key
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.where = where
        self.process: subprocess.Popen | None = None
        self.log = store_dir.parent / f"server-{self.port}.log"

    def start(self) -> Server:
        runbase_cli = str(Path(sys.executable).parent / "runbase")
        command = [
            runbase_cli,
            "server",
            "--host",
            "127.0.0.1",
            "--port",
            str(self.port),
            *self.where,
        ]
        with open(self.log, "ab") as log:
            self.process = subprocess.Popen(
                command, env=local_env(self.store_dir), stdout=log, stderr=subprocess.STDOUT
            )
        wait_until_healthy(self.url + "/healthz", self.process)
        return self

    def rss_mb(self) -> float:
        """The server's RSS with its children's, in MB."""
        import psutil

        proc = psutil.Process(self.process.pid)
        total = proc.memory_info().rss
        for child in proc.children(recursive=True):
            with contextlib.suppress(psutil.Error):
                total += child.memory_info().rss
        return total / 2**20

    def cpu_s(self) -> float:
        """CPU seconds (user + system) the server and its children have used so far."""
        import psutil

        proc = psutil.Process(self.process.pid)
        times = proc.cpu_times()
        total = times.user + times.system
        for child in proc.children(recursive=True):
            with contextlib.suppress(psutil.Error):
                times = child.cpu_times()
                total += times.user + times.system
        return total

    def stop(self) -> None:
        process, self.process = self.process, None
        if process is not None and process.poll() is None:
            process.send_signal(signal.SIGTERM)
            try:
                process.wait(30)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()

    def client_env(self, client_dir: Path) -> dict[str, str]:
        return {
            **base_env(),
            "RUNBASE_BASE_URL": self.url,
            "RUNBASE_API_KEY": self.key,
            "RUNBASE_ENTITY": USER,
            "RUNBASE_DIR": str(client_dir),
        }


@contextlib.contextmanager
def serving(store_dir: Path, database_url: str | None = None) -> Iterator[list[Server]]:
    """One server over SQLite in ``store_dir``; or, with ``database_url``, two servers over
    that PostgreSQL database sharing the files in ``store_dir``."""
    servers = [Server(store_dir, database_url)]
    if database_url:
        servers.append(Server(store_dir, database_url, servers[0].key))
    try:
        yield [server.start() for server in servers]
    finally:
        for server in servers:
            server.stop()


def fresh_database(server_url: str) -> str:
    """A new, empty database on the PostgreSQL server of ``server_url``; its URL."""
    import sqlalchemy as sa

    name = f"runbase_bench_{os.getpid()}_{int(time.time())}"
    engine = sa.create_engine(server_url, isolation_level="AUTOCOMMIT")
    with engine.connect() as conn:
        conn.execute(sa.text(f'CREATE DATABASE "{name}"'))
    engine.dispose()
    return str(sa.engine.make_url(server_url).set(database=name).render_as_string(False))


def in_process(
    worker: str, env: dict[str, str], timeout: float = 900, script: str = __file__, **kwargs: Any
) -> dict:
    """Run ``worker`` of ``script`` (this one by default) in a fresh process with ``env``; its
    result."""
    cwd = tempfile.mkdtemp(prefix="runbase-bench-cwd-")
    try:
        proc = subprocess.run(
            [sys.executable, script, "--worker", worker, json.dumps(kwargs)],
            env={**env, "PYTHONPATH": str(HERE)},
            cwd=cwd,
            capture_output=True,
            text=True,
            timeout=timeout,
        )
    finally:
        shutil.rmtree(cwd, ignore_errors=True)
    for line in reversed(proc.stdout.splitlines()):
        if line.startswith(c.RESULT_MARK):
            return json.loads(line[len(c.RESULT_MARK) :])
    raise RuntimeError(f"worker {worker} failed (exit {proc.returncode}):\n{proc.stderr[-4000:]}")


# ---------------------------------------------------------------- workers: ingest


def remote_steps(steps: int) -> dict:
    """Init, ``steps`` logs of 10 metrics, finish, against the server; then check the count."""
    import runbase

    start = time.perf_counter()
    run = runbase.init(project="steps", config={"lr": 0.001, "batch_size": 64})
    for i in range(steps):
        run.log(c.metrics(i))
    run.finish()
    seconds = time.perf_counter() - start
    return {"seconds": seconds, "stored": stored_rows(run)}


def stored_rows(run: Any) -> int:
    """The history rows the server holds for ``run`` (asked over HTTP)."""
    from runbase.backend import open_backend
    from runbase.backend.base import RunPath
    from runbase.settings import Settings

    backend = open_backend(Settings.load())
    return backend.history_keys(RunPath(run.entity, run.project, run.id)).line_count


def remote_latency(calls: int) -> dict:
    """Each ``run.log()`` timed on the caller's thread, in remote mode."""
    import runbase

    run = runbase.init(project="latency")
    return c.time_log_calls(run, calls)


def mlflow_remote_steps(steps: int) -> dict:
    """MLflow through its tracking server: one ``log_batch`` of 10 metrics a step."""
    from mlflow import MlflowClient
    from mlflow.entities import Metric

    client = MlflowClient()
    experiment = client.create_experiment("steps")
    start = time.perf_counter()
    run_id = client.create_run(experiment).info.run_id
    for i in range(steps):
        now = int(time.time() * 1000)
        client.log_batch(run_id, metrics=[Metric(k, v, now, i) for k, v in c.metrics(i).items()])
    client.set_terminated(run_id)
    seconds = time.perf_counter() - start
    stored = len(client.get_metric_history(run_id, "m0"))
    return {"seconds": seconds, "stored": stored}


# ---------------------------------------------------------------- workers: scan and runs


def build_history(rows: int) -> dict:
    """One run of ``rows`` rows of 10 metrics through the SDK in local mode."""
    import runbase

    start = time.perf_counter()
    run = runbase.init(project=HISTORY_PROJECT)
    for i in range(rows):
        run.log(c.metrics(i))
    run.finish()
    return {"seconds": time.perf_counter() - start, "path": f"{run.entity}/{run.project}/{run.id}"}


def remote_scan(path: str, times: int) -> dict:
    """``scan_history()`` of the run with the default page size, ``times`` times, fresh cache."""
    import runbase

    api = runbase.Api()
    run = api.run(path)
    results = []
    for _ in range(times):
        api.flush()
        start = time.perf_counter()
        rows = sum(1 for _ in run.scan_history())
        results.append([time.perf_counter() - start, rows])
    return {"scans": results}


def build_runs(n: int) -> dict:
    import bench_query as q

    return q.build_runbase_runs("", n)


def remote_runs(n: int) -> dict:
    import bench_query as q

    result = q.query_runbase("")
    total, ids = q.expected_page(n)
    result["correct"] = result["total"] == total and result["ids"] == ids
    return result


# ---------------------------------------------------------------- workers: load


def load_clients(
    urls: list[str],
    key: str,
    loggers: list[int],
    queriers: list[int],
    seconds: float,
    batch: int,
    tag: str,
) -> dict:
    """This process's share of the load test: logger and querier threads, each with its own
    ``HttpBackend`` (and ``httpx.Client``) to one of ``urls`` in turn, all started together,
    all stopped after ``seconds``."""
    from runbase.backend.base import HistoryQuery, HistoryRow, NewRun, RunPath, RunQuery
    from runbase.backend.http import HttpBackend
    from runbase.backend.wire import dumps

    barrier = threading.Barrier(len(loggers) + len(queriers))
    out: dict[str, Any] = {
        "append_ms": [],
        "query_ms": [],
        "rows": 0,
        "queries": 0,
        "errors": 0,
        "error": "",
        "paths": {},
    }
    lock = threading.Lock()
    keys = tuple(sorted(["_step", *c.metrics(0)]))

    def fail(exc: BaseException) -> None:
        with lock:
            out["errors"] += 1
            out["error"] = out["error"] or f"{type(exc).__name__}: {exc}"[:300]

    def logger(n: int) -> None:
        backend = HttpBackend(urls[n % len(urls)], entity=USER, api_key=key, timeout=60)
        path = RunPath(USER, "load", f"{tag}-log{n}")
        took, done = [], 0
        try:
            backend.create_run(path, NewRun(config={"client": n, "lr": 0.001}))
            barrier.wait()
            stop = time.perf_counter() + seconds
            while time.perf_counter() < stop:
                rows = []
                for i in range(done, done + batch):
                    row = {"_step": i, **c.metrics(i)}
                    rows.append(HistoryRow(i, i, keys, dumps(row).decode()))
                start = time.perf_counter()
                try:
                    backend.append_history(path, "default", rows, c.metrics(done + batch - 1))
                except Exception as exc:  # noqa: BLE001 (counted, reported)
                    fail(exc)
                    continue
                took.append((time.perf_counter() - start) * 1000)
                done += batch
            backend.finish_run(path, "finished", 0)
        except Exception as exc:  # noqa: BLE001
            fail(exc)
        finally:
            backend.close()
        with lock:
            out["append_ms"] += took
            out["rows"] += done
            out["paths"][path.run_id] = done

    def querier(n: int) -> None:
        backend = HttpBackend(urls[n % len(urls)], entity=USER, api_key=key, timeout=60)
        rng = random.Random(n)
        took = []
        try:
            barrier.wait()
            stop = time.perf_counter() + seconds
            for k in itertools.count():
                if time.perf_counter() >= stop:
                    break
                start = time.perf_counter()
                try:
                    if k % 3 == 0:
                        filters = {"config.lr": 0.001, "summary_metrics.m0": {"$gt": 1.0}}
                        backend.query_runs(RunQuery(USER, "load", filters, "-summary_metrics.m0"))
                    elif k % 3 == 1:
                        backend.count_runs(USER, "load", {"config.lr": 0.001})
                    else:
                        victim = rng.choice(loggers or [0])
                        query = HistoryQuery(RunPath(USER, "load", f"{tag}-log{victim}"))
                        backend.scan_history(query)
                except Exception as exc:  # noqa: BLE001
                    fail(exc)
                    continue
                took.append((time.perf_counter() - start) * 1000)
        except Exception as exc:  # noqa: BLE001
            fail(exc)
        finally:
            backend.close()
        with lock:
            out["query_ms"] += took
            out["queries"] += len(took)

    threads = [threading.Thread(target=logger, args=(n,)) for n in loggers]
    threads += [threading.Thread(target=querier, args=(n,)) for n in queriers]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return out


WORKERS = {
    "remote_steps": remote_steps,
    "remote_latency": remote_latency,
    "mlflow_remote_steps": mlflow_remote_steps,
    "build_history": build_history,
    "remote_scan": remote_scan,
    "build_runs": build_runs,
    "remote_runs": remote_runs,
    "load_clients": load_clients,
}


# ---------------------------------------------------------------- the report


def step(text: str) -> None:
    print(f"  {text} ...", flush=True)


@contextlib.contextmanager
def mlflow_server(root: Path) -> Iterator[str]:
    port = free_port()
    mlflow_cli = str(Path(sys.executable).parent / "mlflow")
    command = [
        mlflow_cli,
        "server",
        "--backend-store-uri",
        f"sqlite:///{root / 'mlflow.db'}",
        "--default-artifact-root",
        str(root / "artifacts"),
        "--host",
        "127.0.0.1",
        "--port",
        str(port),
        "--workers",
        "1",
    ]
    with open(root / "mlflow-server.log", "ab") as log:
        process = subprocess.Popen(
            command, env=base_env(), stdout=log, stderr=subprocess.STDOUT, start_new_session=True
        )
    url = f"http://127.0.0.1:{port}"
    try:
        wait_until_healthy(url + "/health", process, deadline=120)
        yield url
    finally:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(process.pid, signal.SIGTERM)
        try:
            process.wait(30)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait()


def report_ingest(
    root: Path, n_steps: int, calls: int, mlflow_n: int, full: bool, mlflow: bool
) -> None:
    with serving(root / "ingest" / "store") as (server,):
        env = server.client_env(root / "ingest" / "client")
        step(f"remote ingest: runbase, {n_steps:,} steps")
        ours = in_process("remote_steps", env, steps=n_steps)
        step(f"remote log() latency: runbase, {calls:,} calls")
        lat = in_process("remote_latency", env, calls=calls)
        rss = server.rss_mb()
    theirs = None
    if mlflow:
        step(f"remote ingest: mlflow server, {mlflow_n:,} steps")
        (root / "mlflow").mkdir()
        with mlflow_server(root / "mlflow") as url:
            env = {**base_env(), "MLFLOW_TRACKING_URI": url}
            theirs = in_process("mlflow_remote_steps", env, steps=mlflow_n)
    rows = []
    ok = ours["seconds"] <= GOAL_INGEST_S and ours["stored"] == n_steps
    goal = f"<= {GOAL_INGEST_S:.0f} s {c.verdict(ok)}" if full else "-"
    rows.append(
        [
            "runbase server",
            f"{ours['seconds']:.2f}",
            f"{n_steps / ours['seconds']:,.0f}",
            f"{ours['stored']:,}",
            f"{ours['peak_rss_mb']:.0f}",
            f"{rss:.0f}",
            "1.0x",
            goal,
        ]
    )
    caption = (
        "Init to finish in a training process with RUNBASE_BASE_URL/RUNBASE_API_KEY; "
        "'stored': rows the server holds after finish. speed-up: peer seconds / runbase seconds."
    )
    if theirs:
        scaled = theirs["seconds"] * n_steps / mlflow_n
        ratio = scaled / ours["seconds"]
        rows.append(
            [
                "mlflow server*",
                f"{scaled:.2f}",
                f"{n_steps / scaled:,.0f}",
                f"{theirs['stored']:,} of {mlflow_n:,}",
                f"{theirs['peak_rss_mb']:.0f}",
                "-",
                f"{ratio:.1f}x",
                f"> 1x {c.verdict(ratio > 1)}",
            ]
        )
        caption += (
            f" * MLflow: `mlflow server` (SQLite backend) through MlflowClient.log_batch, one "
            f"batch of 10 metrics per step; {mlflow_n:,} steps measured, time scaled to "
            f"{n_steps:,}."
        )
    c.print_table(
        f"remote ingest: {n_steps:,} steps x 10 metrics, init to finish, durable on the server",
        [
            "tracker",
            "seconds",
            "rows/s",
            "stored",
            "client peak RSS MB",
            "server RSS MB",
            "speed-up",
            "goal",
        ],
        rows,
        caption=caption,
    )
    ok = lat["median_us"] < GOAL_LOG_MEDIAN_US
    c.print_table(
        f"run.log() of 10 metrics in remote mode, on the caller's thread ({calls:,} calls)",
        ["tracker", "median us", "p99 us", f"goal < {GOAL_LOG_MEDIAN_US:.0f} us"],
        [["runbase (remote)", f"{lat['median_us']:.2f}", f"{lat['p99_us']:.2f}", c.verdict(ok)]],
    )


def report_scan_and_runs(
    root: Path, rows: int, n_runs: int, full: bool, do_scan: bool, do_runs: bool
) -> None:
    store_dir = root / "query" / "store"
    server = Server(store_dir)  # the user and key first; the data next; then the server
    env = local_env(store_dir)
    path = None
    if do_scan:
        step(f"build a {rows:,}-row history in the store (local SDK)")
        built = in_process("build_history", env, rows=rows)
        c.note(f"built the {rows:,}-row history locally in {built['seconds']:.1f} s")
        path = built["path"]
    if do_runs:
        step(f"build {n_runs:,} runs in the store")
        built = in_process("build_runs", env, n=n_runs)
        c.note(f"built {n_runs:,} runs in {built['seconds']:.1f} s")
    server.start()
    try:
        client_env = server.client_env(root / "query" / "client")
        scan = runs = None
        if do_scan:
            step("remote scan_history, 3 scans")
            scan = in_process("remote_scan", client_env, path=path, times=3)
        if do_runs:
            step("remote Api.runs")
            runs = in_process("remote_runs", client_env, n=n_runs)
        rss = server.rss_mb()
    finally:
        server.stop()
    if scan:
        scans = sorted(scan["scans"])
        seconds, scanned = scans[len(scans) // 2]
        rate = scanned / seconds
        ok = rate >= GOAL_SCAN_ROWS_S and scanned == rows
        c.print_table(
            f"remote scan_history() of a {rows:,}-row run (10 metrics a row), default page size",
            ["reader", "rows", "median s", "rows/s", "each scan s", "goal"],
            [
                [
                    "runbase.Api over HTTP",
                    f"{scanned:,}",
                    f"{seconds:.2f}",
                    f"{rate:,.0f}",
                    " / ".join(f"{s:.2f}" for s, _ in scan["scans"]),
                    f">= {GOAL_SCAN_ROWS_S:,} rows/s {c.verdict(ok) if full else '-'}",
                ]
            ],
            caption="Median of 3 full scans, each with an empty client cache; the rows were "
            f"written into the server's store locally beforehand. Server RSS after: {rss:.0f} MB.",
        )
    if runs:
        page_ok = runs["page"][0] <= GOAL_PAGE_S
        count_ok = runs["count"][0] <= GOAL_COUNT_S
        c.print_table(
            f"remote Api.runs over {n_runs:,} runs: filter config.optimizer = adam and "
            "summary acc > 0.5, ordered by +summary loss",
            ["call", "first ms", "median of 5 later ms", "goal"],
            [
                [
                    "first page (50 runs)",
                    f"{runs['page'][0] * 1000:.1f}",
                    f"{runs['page'][1] * 1000:.1f}",
                    f"<= {GOAL_PAGE_S * 1000:.0f} ms {c.verdict(page_ok) if full else '-'}",
                ],
                [
                    "len()",
                    f"{runs['count'][0] * 1000:.1f}",
                    f"{runs['count'][1] * 1000:.1f}",
                    f"<= {GOAL_COUNT_S * 1000:.0f} ms {c.verdict(count_ok) if full else '-'}",
                ],
            ],
            caption=f"{runs['total']:,} runs match; page and count checked against Python: "
            f"{'correct' if runs['correct'] else 'WRONG'}. Each call after Api.flush() (empty "
            "client cache); goals judged on the first call.",
        )


def report_load(
    root: Path,
    loggers: int,
    queriers: int,
    seconds: float,
    procs: int,
    database_url: str | None = None,
) -> None:
    """The load test against one server over SQLite, or, with ``database_url``, against two
    server processes over one PostgreSQL database, the clients split between them."""
    import httpx

    from runbase.backend.base import RunPath
    from runbase.backend.http import HttpBackend

    where = "postgres" if database_url else "sqlite"
    with serving(root / f"load-{where}" / "store", database_url) as servers:
        rss_start = [server.rss_mb() for server in servers]
        cpu_start = sum(server.cpu_s() for server in servers)
        peak = list(rss_start)
        stop = threading.Event()

        def sample() -> None:
            while not stop.wait(0.5):
                for n, server in enumerate(servers):
                    with contextlib.suppress(Exception):
                        peak[n] = max(peak[n], server.rss_mb())

        sampler = threading.Thread(target=sample, daemon=True)
        sampler.start()
        step(
            f"load ({where}, {len(servers)} server processes): {loggers} loggers + "
            f"{queriers} queriers for {seconds:.0f} s in {procs} client processes"
        )
        env = servers[0].client_env(root / f"load-{where}" / "client")
        jobs = []
        with tempfile.TemporaryDirectory() as tmp:
            for p in range(procs):
                mine = {
                    "urls": [server.url for server in servers],
                    "key": servers[0].key,
                    "seconds": seconds,
                    "batch": LOAD_BATCH,
                    "tag": f"p{p}",
                    "loggers": list(range(p, loggers, procs)),
                    "queriers": list(range(p, queriers, procs)),
                }
                out = open(Path(tmp) / f"{p}.out", "w+")  # noqa: SIM115
                proc = subprocess.Popen(
                    [sys.executable, __file__, "--worker", "load_clients", json.dumps(mine)],
                    env={**env, "PYTHONPATH": str(HERE)},
                    stdout=out,
                    stderr=subprocess.STDOUT,
                )
                jobs.append((proc, out))
            results = []
            for proc, out in jobs:
                proc.wait(seconds + 600)
                out.seek(0)
                text = out.read()
                marked = [ln for ln in text.splitlines() if ln.startswith(c.RESULT_MARK)]
                if not marked:
                    raise RuntimeError(f"load client failed:\n{text[-4000:]}")
                results.append(json.loads(marked[-1][len(c.RESULT_MARK) :]))
                out.close()
        cpu = sum(server.cpu_s() for server in servers) - cpu_start
        stop.set()
        sampler.join()
        time.sleep(1.0)
        rss_end = [server.rss_mb() for server in servers]
        # every acknowledged row stored, once, as the last server reads it
        checker = HttpBackend(
            servers[-1].url, client=httpx.Client(timeout=60), entity=USER, api_key=servers[0].key
        )
        missing = 0
        for r in results:
            for run_id, done in r["paths"].items():
                held = checker.history_keys(RunPath(USER, "load", run_id)).line_count
                missing += abs(held - done)
        checker.close()
    append_ms = sorted(x for r in results for x in r["append_ms"])
    query_ms = sorted(x for r in results for x in r["query_ms"])
    rows = sum(r["rows"] for r in results)
    queries = sum(r["queries"] for r in results)
    errors = sum(r["errors"] for r in results)
    first_error = next((r["error"] for r in results if r["error"]), "")
    error_note = f" (first: {first_error})" if first_error else ""

    def pct(values: list[float], q: float) -> str:
        return f"{c.percentile(values, q):.1f}" if values else "-"

    def each(values: list[float]) -> str:
        return " + ".join(f"{value:.0f}" for value in values) + " MB"

    served_by = "one server (SQLite)" if not database_url else "two servers (one PostgreSQL)"
    c.print_table(
        f"loopback load test: {loggers} logging + {queriers} querying clients, {seconds:.0f} s, "
        + served_by,
        ["", "count", "per s", "p50 ms", "p99 ms", "max ms"],
        [
            [
                f"appends ({LOAD_BATCH} rows x 10 metrics)",
                f"{len(append_ms):,}",
                f"{len(append_ms) / seconds:,.0f}",
                pct(append_ms, 0.5),
                pct(append_ms, 0.99),
                f"{append_ms[-1]:.0f}" if append_ms else "-",
            ],
            ["rows stored", f"{rows:,}", f"{rows / seconds:,.0f}", "", "", ""],
            [
                "queries (runs page / count / history page)",
                f"{queries:,}",
                f"{queries / seconds:,.1f}",
                pct(query_ms, 0.5),
                pct(query_ms, 0.99),
                f"{query_ms[-1]:.0f}" if query_ms else "-",
            ],
        ],
        caption=f"Closed loop: each client sends its next request when the last one is answered. "
        f"Errors: {errors} {c.verdict(errors == 0)}{error_note}"
        f"; acknowledged rows missing or extra in the store: {missing} {c.verdict(missing == 0)}. "
        f"Server RSS: {each(rss_start)} at start, {each(rss_end)} at end, {each(peak)} "
        f"peak (sampled). Server CPU: {cpu:.0f} s in the {seconds:.0f} s ({cpu / seconds:.0%} "
        f"of one core). Clients: {procs} processes of threads, each client its own "
        "HttpBackend and httpx.Client, all on this machine"
        + (", as is PostgreSQL." if database_url else "."),
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="small workloads, 10 s load test")
    parser.add_argument("--skip", default="", help="comma-separated: ingest,scan,runs,load")
    parser.add_argument("--no-mlflow", action="store_true")
    parser.add_argument("--loggers", type=int)
    parser.add_argument("--queriers", type=int)
    parser.add_argument("--seconds", type=float)
    parser.add_argument("--client-procs", type=int, default=2)
    parser.add_argument("--keep", help="keep the data under this directory")
    parser.add_argument("--postgres", help="a PostgreSQL server's URL for the two-server load test")
    args = parser.parse_args()
    skip = set(args.skip.split(","))
    q = args.quick
    n_steps, calls, mlflow_n = (10_000, 10_000, 500) if q else (100_000, 100_000, 2_000)
    rows, n_runs = (100_000, 10_000) if q else (1_000_000, 100_000)
    loggers = args.loggers or (10 if q else 50)
    queriers = args.queriers or (2 if q else 10)
    seconds = args.seconds or (10.0 if q else 60.0)
    if q:
        c.note(
            "--quick: 10x smaller workloads, a 10 s load test; goals are judged only at "
            "full size (except log() latency and the load test's errors)"
        )
    print(c.versions())
    root = Path(args.keep or tempfile.mkdtemp(prefix="runbase-bench-server-"))
    root.mkdir(parents=True, exist_ok=True)
    try:
        if "ingest" not in skip:
            report_ingest(root, n_steps, calls, mlflow_n, not q, not args.no_mlflow)
        if not {"scan", "runs"} <= skip:
            report_scan_and_runs(root, rows, n_runs, not q, "scan" not in skip, "runs" not in skip)
        if "load" not in skip:
            report_load(root, loggers, queriers, seconds, max(1, args.client_procs))
            postgres = args.postgres or os.environ.get("RUNBASE_TEST_POSTGRES")
            if postgres:
                database = fresh_database(postgres)
                procs = max(1, args.client_procs)
                report_load(root, loggers, queriers, seconds, procs, database)
            else:
                c.note("no PostgreSQL (--postgres URL or RUNBASE_TEST_POSTGRES): its load test "
                       "is skipped; `make bench` starts one")  # fmt: skip
    finally:
        if not args.keep:
            shutil.rmtree(root, ignore_errors=True)


if __name__ == "__main__" and not c.worker_main(WORKERS):
    main()
