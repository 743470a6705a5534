"""run.config and run.summary: access, change rules, persistence."""

from __future__ import annotations

import argparse

import pytest

import runbase
from runbase.errors import ConfigError

pytestmark = pytest.mark.usefixtures("sdk_transport")


def test_config_attribute_and_item_access_persist(backend):
    run = runbase.init(project="p", config={"lr": 0.1, "layers": [64, 32]})
    assert run.config.lr == 0.1 and run.config["layers"] == [64, 32]
    run.config.batch = 32
    run.config["opt"] = "adam"
    run.config.update({"dropout": 0.5})
    run.flush()
    assert backend.get_run(run._path).config == {
        "lr": 0.1, "layers": [64, 32], "batch": 32, "opt": "adam", "dropout": 0.5,
    }  # fmt: skip
    run.finish()


def test_changing_a_config_value_needs_allow_val_change(backend):
    with runbase.init(project="p", config={"lr": 0.1}) as run:
        with pytest.raises(ConfigError, match="allow_val_change"):
            run.config.update({"lr": 0.2})
        with pytest.raises(ValueError, match="lr"):
            run.config.lr = 0.3
        run.config.update({"lr": 0.1})  # the same value is no change
        run.config.update({"lr": 0.2}, allow_val_change=True)
    assert backend.get_run(run._path).config == {"lr": 0.2}


def test_config_accepts_argparse_namespaces_and_rejects_bad_values(backend):
    with runbase.init(project="p", config=argparse.Namespace(lr=0.5, name="x")) as run:
        assert run.config.as_dict() == {"lr": 0.5, "name": "x"}
        with pytest.raises(TypeError, match="config.bad"):
            run.config.update({"bad": object()})
        with pytest.raises(AttributeError):
            run.config.missing  # noqa: B018
    assert backend.get_run(run._path).config == {"lr": 0.5, "name": "x"}


def test_summary_holds_the_last_logged_value(backend):
    with runbase.init(project="p") as run:
        run.log({"loss": 1.0, "acc": 0.1})
        run.log({"loss": 0.5})
        assert run.summary["loss"] == 0.5
    summary = backend.get_run(run._path).summary
    assert summary["loss"] == 0.5 and summary["acc"] == 0.1 and summary["_step"] == 1


def test_summary_overrides_persist_until_logged_again(backend):
    with runbase.init(project="p") as run:
        run.log({"loss": 1.0})
        run.summary["loss"] = 0.01
        run.summary.update({"best": {"epoch": 3, "acc": 0.9}})
    summary = backend.get_run(run._path).summary
    assert summary["loss"] == 0.01
    assert summary["best"] == {"epoch": 3, "acc": 0.9}
    with runbase.init(project="p", id=run.id, resume="allow") as again:
        assert again.summary["loss"] == 0.01
        again.log({"loss": 0.7})
    assert backend.get_run(run._path).summary["loss"] == 0.7


def test_summary_refuses_unstorable_values(backend):
    with runbase.init(project="p") as run, pytest.raises(TypeError, match="summary.x"):
        run.summary["x"] = object()
