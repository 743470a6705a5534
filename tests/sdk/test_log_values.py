"""What run.log accepts, how it comes back, and what it refuses."""

from __future__ import annotations

import math

import numpy as np
import pytest

import runbase
from tests.sdk import stored

pytestmark = pytest.mark.usefixtures("sdk_transport")


def stored_rows(backend, run):
    return stored.stored_rows(backend, run._path)


def test_nan_and_infinities_round_trip_exactly(backend):
    with runbase.init(project="p") as run:
        run.log({"nan": float("nan"), "inf": float("inf"), "ninf": float("-inf"), "x": 1.5})
    (row,) = stored_rows(backend, run)
    assert math.isnan(row["nan"])
    assert row["inf"] == math.inf and row["ninf"] == -math.inf
    assert row["x"] == 1.5
    summary = backend.get_run(run._path).summary
    assert (
        math.isnan(summary["nan"]) and summary["inf"] == math.inf and summary["ninf"] == -math.inf
    )


def test_numpy_scalars_become_plain_numbers(backend):
    with runbase.init(project="p") as run:
        run.log({"f32": np.float32(0.5), "i64": np.int64(7), "b": np.bool_(True),
                 "arr0": np.array(2.5), "nan32": np.float32("nan")})  # fmt: skip
    (row,) = stored_rows(backend, run)
    assert row["f32"] == 0.5 and type(row["f32"]) is float
    assert row["i64"] == 7 and type(row["i64"]) is int
    assert row["b"] is True
    assert row["arr0"] == 2.5
    assert math.isnan(row["nan32"])


def test_torch_scalars_become_plain_numbers(backend):
    torch = pytest.importorskip("torch")
    with runbase.init(project="p") as run:
        run.log({"loss": torch.tensor(0.25), "n": torch.tensor(3)})
    (row,) = stored_rows(backend, run)
    assert row["loss"] == 0.25 and row["n"] == 3


def test_scalars_strings_none_bools_and_lists(backend):
    with runbase.init(project="p") as run:
        run.log({"i": 3, "s": "text", "none": None, "t": True, "list": [1, 2.5, np.float64(3)],
                 "tuple": (4, 5)})  # fmt: skip
    (row,) = stored_rows(backend, run)
    assert row["i"] == 3 and type(row["i"]) is int
    assert row["s"] == "text" and row["none"] is None and row["t"] is True
    assert row["list"] == [1, 2.5, 3.0] and row["tuple"] == [4, 5]


def test_nested_dicts_stay_nested_and_merge_into_the_summary_by_leaf(backend):
    with runbase.init(project="p") as run:
        run.log({"a": {"b": 1, "c": {"d": 2}}, "x": 1, "e": {}})
        run.log({"a": {"b": 3}, "a.z": 4})
    first, second = stored_rows(backend, run)
    assert first["a"] == {"b": 1, "c": {"d": 2}} and "e" not in first
    assert second["a"] == {"b": 3} and second["a.z"] == 4
    summary = backend.get_run(run._path).summary
    assert summary["a"] == {"b": 3, "c": {"d": 2}} and summary["a.z"] == 4
    keys = backend.history_keys(run._path).keys
    assert keys["a.b"] == 2 and keys["a.c.d"] == 1 and keys["a.z"] == 1


def test_none_is_kept_in_the_row_but_not_written_to_the_summary(backend):
    with runbase.init(project="p") as run:
        run.log({"a": 1})
        run.log({"a": None})
    assert [r["a"] for r in stored_rows(backend, run)] == [1, None]
    assert backend.get_run(run._path).summary["a"] == 1


@pytest.mark.parametrize(
    "bad, key",
    [
        ({"obj": object()}, "obj"),
        ({"set": {1, 2}}, "set"),
        ({"nested": {"deep": object()}}, "nested.deep"),
        ({"strs": ["a", "b"]}, "strs"),
        ({"arr": np.zeros(3)}, "arr"),
        ({"bytes": b"xx"}, "bytes"),
    ],
)
def test_bad_values_raise_type_error_naming_the_key_and_lose_nothing(backend, bad, key):
    with runbase.init(project="p") as run:
        run.log({"a": 1})
        with pytest.raises(TypeError, match=key.replace(".", r"\.")):
            run.log({"ok": 2, **bad})
        run.log({"a": 3})
    assert [(r["_step"], r.get("a"), r.get("ok")) for r in stored_rows(backend, run)] == [
        (0, 1, None),
        (1, 3, None),
    ]


def test_non_dict_and_non_string_keys_are_refused(backend):
    with runbase.init(project="p") as run:
        with pytest.raises(TypeError, match="dict"):
            run.log([1, 2])  # type: ignore[arg-type]
        with pytest.raises(TypeError, match="keys must be strings"):
            run.log({1: 2})  # type: ignore[dict-item]
