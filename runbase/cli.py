"""The ``runbase`` command: demo, ls, export, server, sync, login, user, team, key, version."""

from __future__ import annotations

import datetime as dt
import signal
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any, NoReturn

import typer
from rich.console import Console
from rich.markup import escape
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

import runbase
from runbase.api import Run as ApiRun
from runbase.errors import InvalidInput, RunbaseError
from runbase.settings import DEFAULT_APP_URL, Settings, write_credentials

if TYPE_CHECKING:
    from runbase.backend.accounts import Accounts

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
    entity = best[0].entity if best else runbase.Api().default_entity
    console.print(f"Open the dashboard on these runs: [bold]runbase ui[/bold], then "
                  f"http://127.0.0.1:8080/{entity}/{project}")  # fmt: skip


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


@app.command("export")
def export_runs(
    path: Annotated[str, typer.Argument(help="[ENTITY/]PROJECT")],
    out: Annotated[
        Path, typer.Option("--out", help="Directory for runs.EXT and history.EXT (made if absent).")
    ],
    filters: Annotated[
        str | None, typer.Option(help='MongoDB-style filters as JSON: \'{"state": "finished"}\'.')
    ] = None,
    order: Annotated[str, typer.Option(help="Sort order, e.g. -created_at.")] = "-created_at",
    keys: Annotated[
        str | None, typer.Option(help="Only these history keys, comma-separated.")
    ] = None,
    stream: Annotated[str, typer.Option(help="History stream: default or system.")] = "default",
    format: Annotated[str, typer.Option(help="parquet, csv or jsonl.")] = "parquet",
) -> None:
    """Write a project's runs table and every history row of its runs to files."""
    import gc
    import json

    try:
        query = None if filters is None else json.loads(filters)
    except json.JSONDecodeError as exc:
        _fail(f"--filters is not JSON: {exc}")
    wanted = None if keys is None else [key.strip() for key in keys.split(",") if key.strip()]
    bars = _ExportBars()
    # what exists by now is no garbage: the collector skips it while pages of rows come and go
    gc.freeze()
    try:
        runs = runbase.Api().runs(path, query, order=order, per_page=500)
        done = runs.export(out, format, wanted, stream, progress=bars)
    except (RunbaseError, ValueError, OSError) as exc:
        bars.stop()
        _fail(str(exc))
    finally:
        gc.unfreeze()
    bars.stop()
    files = " and ".join(str(file) for file in done.files)
    console.print(f"exported {done.runs} runs and {done.rows} history rows to {files}",
                  soft_wrap=True)  # fmt: skip


class _ExportBars:
    """An export's progress as rich progress bars, one per task, shown from the first task
    on (an export refused at once shows none)."""

    def __init__(self) -> None:
        columns = (TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(),
                   TimeElapsedColumn())  # fmt: skip
        self.progress = Progress(*columns, console=console)
        self.tasks: dict[str, Any] = {}

    def start(self, task: str, total: int) -> None:
        if not self.tasks:
            self.progress.start()
        self.tasks[task] = self.progress.add_task(task, total=total)

    def advance(self, task: str, steps: int) -> None:
        self.progress.advance(self.tasks[task], steps)

    def stop(self) -> None:
        if self.tasks:
            self.progress.stop()


def _fail(message: str) -> NoReturn:
    """Say what went wrong in one line on stderr, and exit with status 1."""
    errors.print(f"[red]error:[/red] {escape(message)}", soft_wrap=True)
    raise typer.Exit(1)


DbOption = Annotated[
    str | None, typer.Option("--db", help="Database URL (default: SQLite in the data dir).")
]
DataDirOption = Annotated[
    Path | None, typer.Option("--data-dir", help="Data directory (default: RUNBASE_DIR).")
]


@app.command()
def server(
    host: Annotated[str, typer.Option(help="Address to listen on.")] = "127.0.0.1",
    port: Annotated[int, typer.Option(min=0, max=65535, help="Port to listen on.")] = 8080,
    db: DbOption = None,
    data_dir: DataDirOption = None,
    files: Annotated[
        str | None,
        typer.Option("--files", help="s3://bucket/prefix for file bytes (default: the data dir)."),
    ] = None,
    max_file_size: Annotated[
        int | None, typer.Option("--max-file-size", min=0, help="Largest upload, in bytes.")
    ] = None,
    workers: Annotated[int, typer.Option(min=1, help="Server processes.")] = 1,
) -> None:
    """Serve the store over HTTP (the native API under /api/v1) until stopped."""
    import uvicorn

    from runbase.backend import close_backends, open_accounts, open_backend
    from runbase.server import create_app
    from runbase.server.access import log_to_stderr

    # the server itself always works on the store, whatever base URL its environment names
    settings = Settings.load(
        database_url=db, dir=data_dir, files=files, max_file_size=max_file_size
    ).with_(base_url=None)
    backend = open_backend(settings)
    accounts = open_accounts(settings)
    admin_key = accounts.bootstrap(settings.default_entity)
    if admin_key is not None:
        typer.echo(f"Created the admin user {settings.default_entity!r}. Its API key, shown only "
                   f"this once (`runbase key create` makes more):\n{admin_key}")  # fmt: skip
    log_to_stderr()
    app: Any = APP_FACTORY  # each worker process builds its app from the settings passed on
    if workers > 1:
        close_backends()
        _pass_on(settings)
    else:
        app = create_app(backend, accounts, max_file_size=settings.max_file_size)
    # uvicorn stops on SIGINT/SIGTERM, then raises the signal again for the handler it found:
    # a handler that does nothing lets the stop end here, backends closed, with status 0
    stops = (signal.SIGINT, signal.SIGTERM)
    previous = {stop: signal.signal(stop, _stopped) for stop in stops}
    try:
        uvicorn.run(app, host=host, port=port, log_level="info", access_log=False,
                    workers=workers, factory=workers > 1)  # fmt: skip
    finally:
        for stop, handler in previous.items():
            signal.signal(stop, handler)
        close_backends()


@app.command()
def ui(
    port: Annotated[int, typer.Option(min=0, max=65535, help="Port to listen on.")] = 8080,
    host: Annotated[str, typer.Option(help="Address to listen on (loopback).")] = "127.0.0.1",
    db: DbOption = None,
    data_dir: DataDirOption = None,
) -> None:
    """Serve the dashboard over this machine's store: no login, on loopback only."""
    import uvicorn

    from runbase.backend import close_backends, open_accounts, open_backend
    from runbase.server import create_app

    settings = Settings.load(database_url=db, dir=data_dir).with_(base_url=None)
    backend = open_backend(settings)
    accounts = open_accounts(settings)
    login = None
    if not is_loopback(host):
        if not any(not key.revoked for key in accounts.list_keys()):
            close_backends()
            _fail(
                f"runbase ui serves loopback only, not {host}: for another host, make users "
                "with API keys to log in with (`runbase user create`, `runbase key create`)"
            )
        login = accounts
    typer.echo(f"runbase dashboard on http://{host}:{port}/ (Ctrl-C stops it)")
    try:
        app_ = create_app(backend, login, max_file_size=settings.max_file_size)
        uvicorn.run(app_, host=host, port=port, log_level="warning")
    finally:
        close_backends()


def is_loopback(host: str) -> bool:
    """Whether ``host`` is a loopback address or ``localhost``."""
    import ipaddress

    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


APP_FACTORY = "runbase.server.app:app_from_environment"


def _pass_on(settings: Settings) -> None:
    """Put the server's settings in the environment its worker processes inherit."""
    import os

    values = {"dir": settings.data_dir, "database_url": settings.database_url,
              "files": settings.files, "max_file_size": settings.max_file_size}  # fmt: skip
    for name, value in values.items():
        if value is not None:
            os.environ[f"RUNBASE_{name.upper()}"] = str(value)
    os.environ.pop("RUNBASE_BASE_URL", None)


def _stopped(signum: int, frame: Any) -> None:
    """The server has already stopped when this runs."""


# Accounts: users, teams and API keys, on the server's database ----------------------------
user_app = typer.Typer(help="Users of the server's database.", no_args_is_help=True)
team_app = typer.Typer(help="Teams: entities whose projects their members share.",
                       no_args_is_help=True)  # fmt: skip
key_app = typer.Typer(help="API keys: shown once when made, stored as hashes.",
                      no_args_is_help=True)  # fmt: skip
app.add_typer(user_app, name="user")
app.add_typer(team_app, name="team")
app.add_typer(key_app, name="key")
errors = Console(stderr=True)


@contextmanager
def _accounts(db: str | None, data_dir: Path | None) -> Iterator[Accounts]:
    """The accounts of the database the options (or the settings) name; a runbase error is
    printed and exits with status 1."""
    from runbase.backend import open_accounts

    try:
        yield open_accounts(Settings.load(database_url=db, dir=data_dir))
    except RunbaseError as exc:
        errors.print(f"[red]error:[/red] {exc}")
        raise typer.Exit(1) from None


@user_app.command("create")
def user_create(
    name: str,
    admin: Annotated[bool, typer.Option("--admin", help="May see and change everything.")] = False,
    db: DbOption = None,
    data_dir: DataDirOption = None,
) -> None:
    """Create a user (an entity of its own)."""
    with _accounts(db, data_dir) as accounts:
        accounts.create_user(name, admin=admin)
    console.print(f"created {'admin ' if admin else ''}user {name}")


@user_app.command("list")
def user_list(db: DbOption = None, data_dir: DataDirOption = None) -> None:
    """List the users, their teams and whether they are admins."""
    with _accounts(db, data_dir) as accounts:
        users = accounts.list_users()
    table = Table(title=f"{len(users)} users")
    for column in ("name", "admin", "teams", "created"):
        table.add_column(column)
    for user in users:
        table.add_row(user.name, "yes" if user.admin else "", ", ".join(user.teams),
                      _timestamp(user.created_at))  # fmt: skip
    console.print(table)


@team_app.command("create")
def team_create(name: str, db: DbOption = None, data_dir: DataDirOption = None) -> None:
    """Create a team (an entity its members share)."""
    with _accounts(db, data_dir) as accounts:
        accounts.create_team(name)
    console.print(f"created team {name}")


@team_app.command("add")
def team_add(team: str, user: str, db: DbOption = None, data_dir: DataDirOption = None) -> None:
    """Make USER a member of TEAM."""
    with _accounts(db, data_dir) as accounts:
        accounts.add_member(team, user)
    console.print(f"{user} is a member of {team}")


@key_app.command("create")
def key_create(
    user: Annotated[str | None, typer.Option(help="Whose key (default: RUNBASE_ENTITY).")] = None,
    name: Annotated[str, typer.Option("--name", help="A label to recognise the key by.")] = "",
    read_only: Annotated[bool, typer.Option("--read-only", help="Reads only.")] = False,
    key: Annotated[
        str | None,
        typer.Option(help="Use this key (40+ characters, e.g. a W&B key) instead of a new one."),
    ] = None,
    db: DbOption = None,
    data_dir: DataDirOption = None,
) -> None:
    """Make an API key and print it, and nothing else: it is not shown again."""
    owner = user or Settings.load().default_entity
    with _accounts(db, data_dir) as accounts:
        key, _ = accounts.create_key(owner, label=name, read_only=read_only, key=key)
    typer.echo(key)


@key_app.command("list")
def key_list(
    user: Annotated[str | None, typer.Option(help="Only this user's keys.")] = None,
    db: DbOption = None,
    data_dir: DataDirOption = None,
) -> None:
    """List API keys (never the keys themselves: they are not stored)."""
    with _accounts(db, data_dir) as accounts:
        keys = accounts.list_keys(user)
    table = Table(title=f"{len(keys)} API keys")
    for column in (
        "id",
        "starts with",
        "user",
        "label",
        "scope",
        "created",
        "last used",
        "revoked",
    ):
        table.add_column(column)
    for key in keys:
        last_used = "" if key.last_used_at is None else _timestamp(key.last_used_at)
        scope = "read" if key.read_only else "read-write"
        revoked = "yes" if key.revoked else ""
        created = _timestamp(key.created_at)
        shown = f"{key.prefix}..." if key.prefix else ""
        table.add_row(str(key.id), shown, key.user, key.label, scope, created, last_used, revoked)
    console.print(table)


@key_app.command("revoke")
def key_revoke(key_id: int, db: DbOption = None, data_dir: DataDirOption = None) -> None:
    """Revoke the API key with this id: requests with it fail from now on."""
    with _accounts(db, data_dir) as accounts:
        key = accounts.revoke_key(key_id)
    console.print(f"revoked key {key.id} of {key.user}")


@app.command()
def login(
    key: Annotated[str | None, typer.Argument(help="API key (prompted for when omitted).")] = None,
    host: Annotated[
        str | None, typer.Option(help="Server address (default: RUNBASE_BASE_URL).")
    ] = None,
) -> None:
    """Check an API key against a server and save both in the credentials file."""
    from runbase.backend.http import HttpBackend

    settings = Settings.load(base_url=host)
    base_url = (host or settings.base_url or DEFAULT_APP_URL).rstrip("/")
    key = key or typer.prompt("API key", hide_input=True)
    remote = HttpBackend(base_url, api_key=key)
    try:
        user = remote.default_entity()
    except RunbaseError as exc:
        errors.print(f"[red]error:[/red] {base_url} refused the key: {exc}")
        raise typer.Exit(1) from None
    finally:
        remote.close()
    write_credentials(settings.credentials_path, base_url, key)
    console.print(f"logged in to {base_url} as {user}; saved in {settings.credentials_path}")


def _timestamp(seconds: float) -> str:
    return dt.datetime.fromtimestamp(seconds).strftime("%Y-%m-%d %H:%M:%S")


@app.command()
def sync(
    paths: Annotated[
        list[Path] | None,
        typer.Argument(
            help="Spool folders or data directories (default: the data directory's spools)."
        ),
    ] = None,
    status: Annotated[
        bool, typer.Option("--status", help="List what waits to be uploaded; upload nothing.")
    ] = False,
) -> None:
    """Upload offline runs and spooled batches to the store or server the settings name."""
    from runbase.backend import open_backend
    from runbase.sdk import sync as spools

    settings = Settings.load()
    try:
        found = spools.find_spools(paths or [settings.data_dir / "spool"])
        waiting = [(spool, spools.pending(spool)) for spool in found]
    except (RunbaseError, OSError) as exc:
        console.print(f"[red]error:[/red] {exc}")
        raise typer.Exit(1) from None
    if status or not waiting:
        table = Table(title=f"{len(waiting)} runs wait to be uploaded")
        for column in ("run", "batches", "rows", "created", "spool"):
            table.add_column(column, justify="right" if column in ("batches", "rows") else "left")
        for _, item in waiting:
            created = "yes" if item.created else "no"
            table.add_row(str(item.path), str(item.batches), str(item.rows), created, str(item.dir))
        console.print(table)
        return
    backend = open_backend(settings.with_(mode="online"))  # offline names where runs wait
    failed = 0
    columns = (TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(),
               TimeElapsedColumn())  # fmt: skip
    with Progress(*columns, console=console) as progress:
        task = progress.add_task("uploading", total=sum(item.batches for _, item in waiting))
        for spool, item in waiting:
            progress.update(task, description=str(item.path))
            try:
                spools.upload(backend, spool, lambda: progress.advance(task))
            except (RunbaseError, OSError) as exc:
                failed += 1
                console.print(f"[red]error:[/red] {item.path}: {exc} (it waits in {item.dir})")
    console.print(f"uploaded {len(waiting) - failed} of {len(waiting)} runs")
    if failed:
        raise typer.Exit(1)


@app.command()
def compact(
    paths: Annotated[
        list[str] | None,
        typer.Argument(help="ENTITY, ENTITY/PROJECT or ENTITY/PROJECT/RUN_ID (default: all)."),
    ] = None,
    db: DbOption = None,
    data_dir: DataDirOption = None,
) -> None:
    """Move runs' history into columnar segments (done by itself when a run finishes and
    while a long run logs). Safe while runs are live: what they log meanwhile stays hot."""
    from runbase.backend import open_backend
    from runbase.backend.base import RunPath
    from runbase.backend.local import LocalBackend

    settings = Settings.load(database_url=db, dir=data_dir).with_(base_url=None)
    try:
        backend = open_backend(settings)
        assert isinstance(backend, LocalBackend)
        if any(part.count("/") > 2 for part in paths or []):
            raise InvalidInput("a path is ENTITY, ENTITY/PROJECT or ENTITY/PROJECT/RUN_ID")
        wanted = [(part.split("/") + [None, None])[:3] for part in paths or [""]]
        found: list[RunPath] = []
        for entity, project, run_id in wanted:
            found += backend.hot_runs(entity or None, project, run_id)
        columns = (TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(),
                   TimeElapsedColumn())  # fmt: skip
        moved = 0
        with Progress(*columns, console=console) as progress:
            task = progress.add_task("compacting", total=len(found))
            for path in dict.fromkeys(found):
                progress.update(task, description=str(path))
                moved += backend.compact(path)
                progress.advance(task)
    except RunbaseError as exc:
        _fail(str(exc))
    console.print(f"compacted {moved:,} history rows of {len(set(found))} runs")


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
