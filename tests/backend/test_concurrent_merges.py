"""Merges into a run's summary and config from several threads and several processes at once
keep every key (each read-modify-write holds the run's row lock)."""

from __future__ import annotations

import subprocess
import sys
import textwrap
import threading

from runbase.backend.base import HistoryRow, NewRun, RunPath

KEYS = 25
CHILD = textwrap.dedent(
    """
    import sys
    from runbase.backend import close_backends, open_backend
    from runbase.backend.base import RunPath
    from runbase.settings import Settings

    backend = open_backend(Settings.load())
    path = RunPath(*sys.argv[1].split("/"))
    for i in range(int(sys.argv[3])):
        key = f"{sys.argv[2]}_{i}"
        backend.update_summary(path, {key: i})
        backend.update_config(path, {key: i})
    close_backends()
    """
)


def merge(backend, path: RunPath, prefix: str) -> None:
    for i in range(KEYS):
        backend.update_summary(path, {f"{prefix}_{i}": i})
        backend.update_config(path, {f"{prefix}_{i}": i})


def log_latest(backend, path: RunPath) -> None:
    for i in range(KEYS):
        row = HistoryRow(i, i, ("_step",), f'{{"_step": {i}}}')
        backend.append_history(path, "default", [row], {f"logged_{i}": i})


def test_threads_and_processes_merging_keys_keep_them_all(backend):
    path = RunPath("tester", "p", "merged")
    backend.create_run(path, NewRun())
    children = [
        subprocess.Popen([sys.executable, "-c", CHILD, str(path), f"proc{n}", str(KEYS)])
        for n in range(3)
    ]
    threads = [threading.Thread(target=merge, args=(backend, path, f"thread{n}")) for n in range(4)]
    threads.append(threading.Thread(target=log_latest, args=(backend, path)))
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert [child.wait(timeout=120) for child in children] == [0, 0, 0]

    run = backend.get_run(path)
    prefixes = [f"thread{n}" for n in range(4)] + [f"proc{n}" for n in range(3)]
    merged = {f"{prefix}_{i}": i for prefix in prefixes for i in range(KEYS)}
    logged = {f"logged_{i}": i for i in range(KEYS)}
    assert run.config == merged
    assert run.summary == {**merged, **logged}
    assert run.history_line_count == KEYS
