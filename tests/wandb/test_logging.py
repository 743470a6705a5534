"""Flows 1-3 of the W&B drop-in: login, an online run, a crashed run, resume, offline + sync;
everything read back with runbase's own API."""

from __future__ import annotations

import pytest

from runbase.backend import open_accounts
from runbase.backend.base import RunPath
from runbase.errors import NotFound
from runbase.settings import Settings

ONLINE_RUN = """
    import time, wandb
    run = wandb.init(project="flows", id="online1", config={"lr": 0.1, "net": {"depth": 3}},
                     tags=["a", "b"], notes="first try", group="grid", job_type="train",
                     settings=wandb.Settings(x_stats_sampling_interval=0.2))
    for i in range(30):
        run.log({"loss": 1.0 / (i + 1), "acc": i / 30})
    run.log({"hist": wandb.Histogram([1, 2, 2, 3])}, commit=False)
    time.sleep(1.5)
    run.log({"late": 1}, commit=False)
    run.log({"loss": 0.01}, step=40)
    run.log({"loss": float("nan"), "big": {"inner": 2}}, step=41)
    run.summary["best"] = 0.99
    run.config.update({"batch": 32})
    open("weights.txt", "w").write("weights")
    wandb.save("weights.txt", policy="now")
    print("to stdout")
    run.finish()
"""


def test_login_accepts_the_key_and_refuses_a_wrong_one(wandb_server):
    done = wandb_server.run("wandb", "login", "--host", wandb_server.url, wandb_server.key)
    assert "alice" in done.stdout + done.stderr
    netrc = (wandb_server.home / ".netrc").read_text()
    assert wandb_server.key in netrc
    wrong = "x" * 40
    refused = wandb_server.run("wandb", "login", "--relogin", "--host", wandb_server.url, wrong,
                               check=False)  # fmt: skip
    assert refused.returncode != 0
    assert "invalid API key" in refused.stdout + refused.stderr
    script = f"""
        import wandb
        assert wandb.login(key={wandb_server.key!r}, host={wandb_server.url!r}, verify=True)
        try:
            wandb.login(key={wrong!r}, host={wandb_server.url!r}, verify=True, relogin=True)
        except Exception as exc:
            print("REFUSED", exc)
    """
    assert "REFUSED" in wandb_server.python(script).stdout


def test_an_online_run_lands_whole(wandb_server):
    wandb_server.python(ONLINE_RUN)
    run = wandb_server.api().run("alice/flows/online1")
    assert run.state == "finished"
    assert run.config == {"lr": 0.1, "net": {"depth": 3}, "batch": 32}
    assert sorted(run.tags) == ["a", "b"]
    assert (run.notes, run.group, run.job_type) == ("first try", "grid", "train")
    rows = run.history(samples=1000, pandas=False)
    assert [row["_step"] for row in rows] == [*range(31), 40, 41]
    assert rows[30]["late"] == 1 and rows[31]["loss"] == 0.01
    assert rows[30]["hist"]["_type"] == "histogram"  # media rows as the client sent them
    system = run.history(stream="system", pandas=False)
    assert system and any(key.startswith("system.") for key in system[0])
    assert rows[32]["big"] == {"inner": 2}
    assert run.summary["best"] == 0.99 and run.summary["_step"] == 41
    assert run.summary["acc"] == pytest.approx(29 / 30)
    names = {file.name for file in run.files()}
    assert {"weights.txt", "output.log", "config.yaml", "wandb-metadata.json"} <= names
    assert downloaded(run, "weights.txt", wandb_server.home / "dl") == "weights"
    output = downloaded(run, "output.log", wandb_server.home / "out")
    assert "to stdout" in output
    assert run.metadata["python"] and "_wandb" not in run.config
    stored = wandb_server.backend.get_run(RunPath("alice", "flows", "online1"))
    assert stored.history_line_count == 33


def downloaded(run, name, root):
    with run.file(name).download(root=str(root), replace=True) as file:
        return file.read()


def test_a_run_that_raises_is_crashed(wandb_server):
    script = """
        import wandb
        run = wandb.init(project="flows", id="raises1")
        run.log({"x": 1})
        raise ValueError("boom")
    """
    wandb_server.python(script, check=False)
    run = wandb_server.api().run("alice/flows/raises1")
    assert run.state == "crashed"
    assert [row["x"] for row in run.history(pandas=False)] == [1]


def test_resume_continues_at_the_stored_history_line(wandb_server):
    first = """
        import wandb
        run = wandb.init(project="flows", id="resumed1", config={"lr": 0.1})
        for i in range(10):
            run.log({"x": i})
        print("to stdout")
        run.finish()
    """
    wandb_server.python(first)
    again = """
        import wandb
        run = wandb.init(project="flows", id="resumed1", resume="must")
        assert run.config["lr"] == 0.1, dict(run.config)
        for i in range(10, 15):
            run.log({"x": i})
        run.config.update({"epochs": 2})
        run.finish()
    """
    wandb_server.python(again)
    run = wandb_server.api().run("alice/flows/resumed1")
    rows = run.history(pandas=False)
    assert [(row["_step"], row["x"]) for row in rows] == [(i, i) for i in range(15)]
    assert run.config == {"lr": 0.1, "epochs": 2} and run.state == "finished"
    assert run.summary["x"] == 14


def test_resume_must_refuses_a_run_that_does_not_exist(wandb_server):
    script = """
        import wandb
        try:
            wandb.init(project="flows", id="nosuchrun", resume="must")
        except Exception as exc:
            print("REFUSED", type(exc).__name__)
    """
    assert "REFUSED" in wandb_server.python(script).stdout
    allowed = """
        import wandb
        run = wandb.init(project="flows", id="newrun1", resume="allow")
        run.log({"x": 1})
        run.finish()
    """
    wandb_server.python(allowed)
    assert wandb_server.api().run("alice/flows/newrun1").state == "finished"


def test_an_offline_run_lands_with_wandb_sync(wandb_server):
    offline = wandb_server.env(WANDB_MODE="offline")
    wandb_server.python(ONLINE_RUN.replace('id="online1"', 'id="offline1"'), env=offline)
    [run_dir] = (wandb_server.home / "wandb").glob("offline-run-*")
    with pytest.raises(NotFound):
        wandb_server.backend.get_run(RunPath("alice", "flows", "offline1"))
    wandb_server.run("wandb", "sync", str(run_dir))
    run = wandb_server.api().run("alice/flows/offline1")
    assert run.state == "finished"
    assert run.config == {"lr": 0.1, "net": {"depth": 3}, "batch": 32}
    rows = run.history(samples=1000, pandas=False)
    assert [row["_step"] for row in rows] == [*range(31), 40, 41]
    assert run.summary["best"] == 0.99
    assert {"weights.txt", "output.log"} <= {file.name for file in run.files()}


def test_a_read_only_key_or_another_entity_is_refused_clearly(wandb_server):
    accounts = open_accounts(Settings.load())
    read_only = accounts.create_key("alice", read_only=True)[0]
    script = """
        import wandb
        try:
            wandb.init(project="flows", entity={entity!r})
        except Exception as exc:
            print("REFUSED", exc)
    """
    denied = wandb_server.python(script.format(entity="alice"),
                                 env=wandb_server.env(WANDB_API_KEY=read_only))  # fmt: skip
    assert "REFUSED" in denied.stdout and "read-only" in denied.stdout
    elsewhere = wandb_server.python(script.format(entity="bob"))
    assert "REFUSED" in elsewhere.stdout and "not found" in elsewhere.stdout
