"""Every error class crosses a wire intact: a unique code, and the class rebuilt from it."""

from __future__ import annotations

import pytest

from runbase import errors
from runbase.api import Api
from runbase.backend.base import RunPath
from runbase.backend.local import LocalBackend
from runbase.errors import RunbaseError, error_for_code


def all_error_classes() -> list[type[RunbaseError]]:
    found: list[type[RunbaseError]] = []
    stack: list[type[RunbaseError]] = [RunbaseError]
    while stack:
        cls = stack.pop()
        found.append(cls)
        stack.extend(cls.__subclasses__())
    return found


def test_codes_are_unique():
    codes = [cls.code for cls in all_error_classes()]
    assert len(codes) == len(set(codes)), codes


def test_every_documented_error_is_a_runbase_error():
    documented = [
        "CommError", "NotFound", "InvalidInput", "InvalidFilter", "ConfigError", "Conflict",
        "ReadOnly", "Unauthorized", "Forbidden",
    ]  # fmt: skip
    for name in documented:
        assert getattr(errors, name) in all_error_classes()


@pytest.mark.parametrize("cls", all_error_classes(), ids=lambda cls: cls.__name__)
def test_each_error_round_trips_through_its_code(cls):
    sent = cls(f"a {cls.__name__} happened")
    received = error_for_code(sent.code)(sent.message)
    assert type(received) is cls
    assert (received.code, received.status, received.message) == (
        cls.code,
        cls.status,
        sent.message,
    )
    assert isinstance(cls.status, int) and 400 <= cls.status < 600


def test_an_unknown_code_is_the_root_error():
    assert error_for_code("no_such_code") is RunbaseError


@pytest.mark.parametrize("cls", all_error_classes(), ids=lambda cls: cls.__name__)
def test_the_api_passes_a_backend_error_on_unchanged(cls, backend):
    raised = cls("from the backend")

    class Refusing(LocalBackend):
        def get_run(self, path: RunPath):
            raise raised

    api = Api(backend=Refusing(backend.store, "tester"))
    with pytest.raises(cls) as caught:
        api.run("tester/p/r")
    assert caught.value is raised


def test_any_other_backend_failure_becomes_a_comm_error(backend):
    class Broken(LocalBackend):
        def get_run(self, path: RunPath):
            raise OSError("disk on fire")

    with pytest.raises(errors.CommError) as caught:
        Api(backend=Broken(backend.store, "tester")).run("tester/p/r")
    assert isinstance(caught.value.exc, OSError) and "disk on fire" in str(caught.value)
