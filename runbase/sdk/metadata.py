"""The metadata document of a run: host, Python, program, hardware and git state.

Keys follow W&B's ``wandb-metadata.json`` where it has one. Collecting never raises: a part
that cannot be read (no git, no NVIDIA driver, no user name) is left out.
"""

from __future__ import annotations

import contextlib
import getpass
import os
import platform
import socket
import subprocess
import sys
from collections.abc import Callable
from datetime import datetime, timezone
from typing import Any
from urllib.parse import urlsplit, urlunsplit

import psutil

from runbase.sdk.system import nvml_session, pynvml

__all__ = ["collect_metadata"]

GIT_TIMEOUT = 1.0
"""Seconds each git command may take (a repository on a slow network share)."""

NO_PROGRAM = "<python with no main file>"


def collect_metadata(program: str | None = None) -> dict[str, Any]:
    """Describe this process for a run's metadata; ``program`` defaults to ``__main__``'s file."""
    program = program or _main_file() or NO_PROGRAM
    cwd = _cwd()
    git_root = _git("rev-parse", "--show-toplevel", cwd=cwd) if cwd else None
    metadata: dict[str, Any] = {
        "startedAt": datetime.now(timezone.utc).strftime("%Y-%m-%dT%H:%M:%S.%fZ"),
        "args": sys.argv[1:],
        "program": program,
        "executable": sys.executable,
        "root": git_root or cwd,
    }
    metadata.update(_try(_platform))
    metadata.update(_try(_username))
    metadata.update(_try(_code_paths, program, cwd, git_root))
    metadata.update(_try(_cpu))
    metadata.update(_try(_memory))
    metadata.update(_try(_disk))
    metadata.update(_try(_gpus))
    git = _git_state(cwd) if git_root and cwd else {}
    if git:
        metadata["git"] = git
    return metadata


def _try(part: Callable[..., dict[str, Any]], *args: Any) -> dict[str, Any]:
    try:
        return part(*args)
    except Exception:
        return {}


def _cwd() -> str | None:
    try:
        return os.getcwd()
    except OSError:  # the working directory was deleted
        return None


def _main_file() -> str | None:
    main = sys.modules.get("__main__")
    return getattr(main, "__file__", None)


def _platform() -> dict[str, Any]:
    return {
        "os": platform.platform(aliased=True),
        "python": platform.python_version(),
        "host": socket.gethostname(),
    }


def _username() -> dict[str, Any]:
    return {"username": getpass.getuser()}


def _code_paths(program: str, cwd: str | None, git_root: str | None) -> dict[str, Any]:
    if not cwd or not os.path.isfile(program):
        return {}
    path = os.path.abspath(program)
    paths = {"codePathLocal": os.path.relpath(path, cwd)}
    paths["codePath"] = os.path.relpath(path, git_root) if git_root else paths["codePathLocal"]
    return paths


def _cpu() -> dict[str, Any]:
    cpu: dict[str, Any] = {"cpu_count_logical": psutil.cpu_count(logical=True)}
    physical = psutil.cpu_count(logical=False)
    if physical:
        cpu["cpu_count"] = physical
    return cpu


def _memory() -> dict[str, Any]:
    return {"memory": {"total": psutil.virtual_memory().total}}


def _disk() -> dict[str, Any]:
    usage = psutil.disk_usage("/")
    return {"disk": {"/": {"total": usage.total, "used": usage.used}}}


def _gpus() -> dict[str, Any]:
    with nvml_session() as ok:
        if not ok:
            return {}
        devices = []
        for index in range(pynvml.nvmlDeviceGetCount()):
            handle = pynvml.nvmlDeviceGetHandleByIndex(index)
            name = pynvml.nvmlDeviceGetName(handle)
            total = pynvml.nvmlDeviceGetMemoryInfo(handle).total
            devices.append({"name": _text(name), "memory_total": total})
        if not devices:
            return {}
        gpus: dict[str, Any] = {
            "gpu": devices[0]["name"],
            "gpu_count": len(devices),
            "gpu_devices": devices,
        }
        with contextlib.suppress(Exception):
            version = pynvml.nvmlSystemGetCudaDriverVersion()
            gpus["cuda"] = f"{version // 1000}.{version % 1000 // 10}"
        return gpus


def _text(value: str | bytes) -> str:
    return value.decode() if isinstance(value, bytes) else value


def _git_state(cwd: str) -> dict[str, str]:
    state = {}
    commit = _git("rev-parse", "HEAD", cwd=cwd)
    if commit:
        state["commit"] = commit
    remote = _git("remote", "get-url", "origin", cwd=cwd)
    if remote:
        state["remote"] = _without_credentials(remote)
    return state


def _git(*args: str, cwd: str) -> str | None:
    """The output of one git command, or None when git is missing, fails or is too slow."""
    try:
        done = subprocess.run(
            ["git", *args],
            cwd=cwd,
            capture_output=True,
            text=True,
            timeout=GIT_TIMEOUT,
            check=False,
        )
    except (OSError, subprocess.SubprocessError):
        return None
    output = done.stdout.strip()
    return output if done.returncode == 0 and output else None


def _without_credentials(url: str) -> str:
    """Drop a user and password from an http(s) remote: a token must not reach the server."""
    with contextlib.suppress(ValueError):
        parts = urlsplit(url)
        if parts.scheme in ("http", "https") and "@" in parts.netloc:
            host = parts.netloc.rsplit("@", 1)[1]
            return urlunsplit(parts._replace(netloc=host))
    return url
