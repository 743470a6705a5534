"""Changes through the API with values that cannot be stored: a clear error, nothing written."""

from __future__ import annotations

import pytest

import runbase
from runbase.errors import InvalidInput


@pytest.fixture
def stored(data_dir):
    with runbase.init(project="proj", id="kept", name="original", config={"lr": 0.1}) as run:
        run.log({"loss": 1.0})
    return runbase.Api()


@pytest.mark.parametrize(
    "field, value, named",
    [
        ("name", 5, "display_name"),
        ("notes", [1], "notes"),
        ("group", {"a": 1}, "group"),
        ("job_type", 3.5, "job_type"),
    ],
)
def test_update_refuses_fields_of_the_wrong_type(stored, field, value, named):
    run = stored.run("proj/kept")
    setattr(run, field, value)
    with pytest.raises(InvalidInput, match=named):
        run.update()
    stored.flush()
    again = stored.run("proj/kept")
    assert (again.name, again.notes, again.group, again.job_type) == ("original", None, None, None)


def test_update_refuses_config_values_json_cannot_hold(stored):
    run = stored.run("proj/kept")
    run.config["bad"] = {"deep": object()}
    with pytest.raises(InvalidInput, match=r"config\.bad\.deep"):
        run.update()
    stored.flush()
    assert stored.run("proj/kept").config == {"lr": 0.1}


def test_summary_update_refuses_values_json_cannot_hold(stored):
    run = stored.run("proj/kept")
    with pytest.raises(ValueError, match=r"summary\.x"):
        run.summary.update({"x": object()})
    stored.flush()
    assert "x" not in stored.run("proj/kept").summary
