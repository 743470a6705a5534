"""runbase: a self-hosted experiment tracker with the Weights & Biases public API.

``import runbase as wandb`` works for the common calls: ``init``, ``log``, ``config``,
``summary``, ``save``, ``finish``, ``run``, ``Api``.
"""

from __future__ import annotations

from typing import Any

from runbase.api import Api
from runbase.errors import CommError, RunbaseError
from runbase.sdk.config import Config
from runbase.sdk.run import Run, current_run, init
from runbase.sdk.sweeps import sweep

__version__ = "0.1.0"

__all__ = [
    "Api",
    "CommError",
    "Run",
    "RunbaseError",
    "__version__",
    "config",
    "finish",
    "init",
    "log",
    "run",
    "save",
    "summary",
    "sweep",
]


def _active(call: str) -> Run:
    run = current_run()
    if run is None:
        raise RunbaseError(f"call runbase.init() before runbase.{call}()")
    return run


def log(data: dict[str, Any], step: int | None = None, commit: bool | None = None) -> None:
    """``run.log`` on the current run."""
    _active("log").log(data, step=step, commit=commit)


def save(glob_str: str, base_path: str | None = None, policy: str = "live") -> list[str]:
    """``run.save`` on the current run."""
    return _active("save").save(glob_str, base_path=base_path, policy=policy)


def finish(exit_code: int | None = None, quiet: bool | None = None) -> None:
    """Finish the current run, if any."""
    run = current_run()
    if run is not None:
        run.finish(exit_code=exit_code)


def __getattr__(name: str) -> Any:
    if name == "run":
        return current_run()
    if name == "config":
        run = current_run()
        return run.config if run is not None else Config()
    if name == "summary":
        run = current_run()
        if run is None:
            raise AttributeError("runbase.summary exists once runbase.init() has been called")
        return run.summary
    raise AttributeError(f"module 'runbase' has no attribute {name!r}")
