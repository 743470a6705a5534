"""The real wandb client (0.31.0) logging to ``runbase server``, beside the same client offline.

Run with the benchmark environment (``benchmarks/setup_peers.sh``):

    .bench-venv/bin/python benchmarks/bench_wandb_logging.py [--steps 100000]

One script logs ``--steps`` rows of 10 metrics and finishes. Online (``WANDB_BASE_URL`` at a
runbase server on 127.0.0.1) the time is from the script's start until the run is complete on
the server (every row stored, state finished); offline it is until the client has written its
local ``.wandb`` file. The server's CPU seconds over the online run show whether it is the
bottleneck (the client's own process is the same in both).
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import textwrap
import time
from pathlib import Path

import _common as c
import httpx
from bench_server import USER, Server

SCRIPT = """
    import time, wandb
    started = time.time()
    run = wandb.init(project="bench", id="logged1")
    for i in range({steps}):
        run.log({{f"m{{k}}": i * 0.001 + k for k in range(10)}})
    run.finish()
    print("FINISHED", time.time() - started)
"""


def client_env(home: Path, **extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("WANDB_", "RUNBASE_"))}
    env.update(HOME=str(home), WANDB_DISABLE_GIT="true", WANDB_SILENT="true", **extra)
    return env


def run_client(steps: int, env: dict[str, str], cwd: Path) -> float:
    """Seconds from starting the client's process until its script returned from finish."""
    started = time.perf_counter()
    done = subprocess.run(
        [sys.executable, "-c", textwrap.dedent(SCRIPT.format(steps=steps))],
        env=env,
        cwd=cwd,
        capture_output=True,
        text=True,
    )
    if done.returncode:
        raise RuntimeError(f"the client failed:\n{done.stderr[-3000:]}")
    return time.perf_counter() - started


def stored_on_server(server: Server, steps: int, deadline: float = 600) -> float:
    """Wait until the server holds every row of the finished run; the time it returned."""
    stop = time.monotonic() + deadline
    url = f"{server.url}/api/v1/runs/{USER}/bench/logged1"
    while time.monotonic() < stop:
        answer = httpx.get(url, auth=("api", server.key), timeout=30)
        if answer.status_code == 200:
            run = answer.json()
            if run["history_line_count"] >= steps and run["state"] == "finished":
                return time.perf_counter()
        time.sleep(0.05)
    raise RuntimeError("the run never completed on the server")


def online(steps: int, root: Path) -> dict[str, float]:
    server = Server(root / "store").start()
    try:
        home = root / "online"
        home.mkdir()
        env = client_env(home, WANDB_BASE_URL=server.url, WANDB_API_KEY=server.key)
        cpu_before = server.cpu_s()
        started = time.perf_counter()
        client_s = run_client(steps, env, home)
        complete_s = stored_on_server(server, steps) - started
        server_cpu = server.cpu_s() - cpu_before
        return {"client": client_s, "complete": complete_s, "server_cpu": server_cpu}
    finally:
        server.stop()


def offline(steps: int, root: Path) -> float:
    home = root / "offline"
    home.mkdir()
    return run_client(steps, client_env(home, WANDB_MODE="offline"), home)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=100_000)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="runbase-bench-wandb-") as tmp:
        root = Path(tmp)
        local_s = offline(args.steps, root)
        remote = online(args.steps, root)
    c.print_table(
        f"wandb 0.31.0 logging {args.steps:,} steps x 10 metrics",
        ["mode", "until", "seconds", "vs offline"],
        [
            ["offline", "local .wandb file written", f"{local_s:.2f}", "1.00x"],
            [
                "online, runbase server",
                "finish() returned",
                f"{remote['client']:.2f}",
                c.ratio(remote["client"], local_s),
            ],
            [
                "online, runbase server",
                "run complete on the server",
                f"{remote['complete']:.2f}",
                c.ratio(remote["complete"], local_s),
            ],
        ],  # fmt: skip
        caption=f"runbase server CPU during the online run: {remote['server_cpu']:.2f} s",
    )


if __name__ == "__main__":
    main()
