"""The ``runbase`` command: demo, ls, server, version."""

from __future__ import annotations

import datetime as dt
import signal
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

import runbase
from runbase.api import Run as ApiRun
from runbase.errors import RunbaseError
from runbase.settings import Settings

GRID_COLUMNS = ("learning_rate", "batch_size", "optimizer")
app = typer.Typer(help="runbase: a self-hosted experiment tracker.", no_args_is_help=True)
console = Console()


def _version(value: bool) -> None:
    if value:
        console.print(f"runbase {runbase.__version__}")
        raise typer.Exit()


@app.callback()
def main(
    version: Annotated[
        bool, typer.Option("--version", callback=_version, is_eager=True, help="Print the version.")
    ] = False,
) -> None:
    """runbase: a self-hosted experiment tracker."""


@app.command()
def demo(
    project: Annotated[str, typer.Option(help="Project to log into.")] = "demo",
    epochs: Annotated[int, typer.Option(min=1, help="Epochs per run.")] = 5,
) -> None:
    """Train a small model over a grid of hyperparameters, then show the best runs."""
    from runbase.demo import grid, make_dataset, train

    data = make_dataset()
    configs = grid()
    steps_per_run = {
        b: epochs * (-(-len(data.y_train) // b) + 1) for b in {c["batch_size"] for c in configs}
    }
    total = sum(steps_per_run[c["batch_size"]] for c in configs)
    columns = (TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(),
               TimeElapsedColumn())  # fmt: skip
    with Progress(*columns, console=console) as progress:
        task = progress.add_task("training", total=total)
        for config in configs:
            label = f"lr={config['learning_rate']} bs={config['batch_size']} {config['optimizer']}"
            progress.update(task, description=label)
            with runbase.init(project=project, config=config, job_type="demo") as run:

                def log(metrics: dict[str, float], run: runbase.Run = run) -> None:
                    run.log(metrics)
                    progress.advance(task)

                run.summary["final_val_acc"] = train(config, data, epochs, log)
    api = runbase.Api()
    best = api.runs(project, order="-summary_metrics.final_val_acc", per_page=5)[:5]
    table = Table(title=f"Best runs of {len(api.runs(project))} in {project!r}")
    for column in ("run", "name", *GRID_COLUMNS, "final_val_acc"):
        table.add_column(column, justify="right" if column != "name" else "left")
    for best_run in best:
        values = [str(best_run.config.get(key)) for key in GRID_COLUMNS]
        accuracy = f"{best_run.summary['final_val_acc']:.4f}"
        table.add_row(best_run.id, best_run.name, *values, accuracy)
    console.print(table)


@app.command("ls")
def list_runs(
    path: Annotated[str, typer.Argument(help="[ENTITY/]PROJECT")],
    limit: Annotated[int, typer.Option(min=1, help="Show at most this many runs.")] = 50,
    order: Annotated[str, typer.Option(help="Sort order, e.g. -created_at.")] = "-created_at",
) -> None:
    """List a project's runs."""
    if path.count("/") > 1 or not path.strip("/"):
        raise typer.BadParameter(f"expected [ENTITY/]PROJECT, got {path!r}", param_hint="PATH")
    try:
        runs = runbase.Api().runs(path, order=order, per_page=min(limit, 1000))
        shown = runs[:limit]
        console.print(_runs_table(f"{len(runs)} runs in {path}", shown))
    except RunbaseError as exc:
        console.print(f"[red]error:[/red] {exc}")
        raise typer.Exit(1) from None


@app.command()
def server(
    host: Annotated[str, typer.Option(help="Address to listen on.")] = "127.0.0.1",
    port: Annotated[int, typer.Option(min=0, max=65535, help="Port to listen on.")] = 8080,
    db: Annotated[
        str | None, typer.Option("--db", help="Database URL (default: SQLite in the data dir).")
    ] = None,
    data_dir: Annotated[
        Path | None, typer.Option("--data-dir", help="Data directory (default: RUNBASE_DIR).")
    ] = None,
) -> None:
    """Serve the store over HTTP (the native API under /api/v1) until stopped."""
    import uvicorn

    from runbase.backend import close_backends, open_backend
    from runbase.server import create_app

    # the server itself always works on the store, whatever base URL its environment names
    settings = Settings.load(database_url=db, dir=data_dir).with_(base_url=None)
    backend = open_backend(settings)
    # uvicorn stops on SIGINT/SIGTERM, then raises the signal again for the handler it found:
    # a handler that does nothing lets the stop end here, backends closed, with status 0
    stops = (signal.SIGINT, signal.SIGTERM)
    previous = {stop: signal.signal(stop, _stopped) for stop in stops}
    try:
        uvicorn.run(create_app(backend), host=host, port=port, log_level="info")
    finally:
        for stop, handler in previous.items():
            signal.signal(stop, handler)
        close_backends()


def _stopped(signum: int, frame: Any) -> None:
    """The server has already stopped when this runs."""


def _runs_table(title: str, runs: list[ApiRun]) -> Table:
    rows = []
    for run in runs:
        summary = {k: v for k, v in run.summary.items() if not k.startswith("_")}
        rows.append((run.id, run.name, run.state, _when(run.created_at), _short(run.config),
                     _short(summary)))  # fmt: skip
    table = Table(title=title)
    fixed = 0
    for n, column in enumerate(("id", "name", "state", "created")):
        width = max([len(column), *(len(row[n]) for row in rows)])
        table.add_column(column, no_wrap=True, min_width=width)
        fixed += width + 3
    # config and summary share what is left of the terminal, cut with an ellipsis
    shared = max(10, (console.width - fixed - 7) // 2)
    for column in ("config", "summary"):
        table.add_column(column, overflow="ellipsis", no_wrap=True, max_width=shared)
    for row in rows:
        table.add_row(*row)
    return table


def _when(created_at: str | None) -> str:
    try:
        return dt.datetime.fromisoformat(created_at or "").strftime("%Y-%m-%d %H:%M:%S")
    except ValueError:
        return str(created_at)


def _short(values: dict[str, Any]) -> str:
    parts = []
    for key, value in values.items():
        shown = f"{value:.4g}" if isinstance(value, float) else str(value)
        parts.append(f"{key}={shown}")
    return ", ".join(parts)
