"""open_backend: one backend per distinct Settings, one store per database, closed at the end."""

from __future__ import annotations

from runbase.backend import close_backends, open_backend
from runbase.settings import Settings


def test_the_whole_settings_are_the_key(data_dir):
    short = open_backend(Settings.load(heartbeat_timeout=1.0))
    long = open_backend(Settings.load(heartbeat_timeout=999.0))
    assert short is not long
    assert (short.stale_after, long.stale_after) == (1.0, 999.0)  # type: ignore[attr-defined]
    assert open_backend(Settings.load(heartbeat_timeout=1.0)) is short
    other_url = open_backend(Settings.load(base_url="http://example.invalid"))
    assert other_url is not open_backend(Settings.load())


def test_backends_of_one_database_share_its_store(data_dir):
    a = open_backend(Settings.load(heartbeat_timeout=1.0))
    b = open_backend(Settings.load(heartbeat_timeout=2.0))
    assert a.store is b.store  # type: ignore[attr-defined]


def test_close_backends_closes_what_was_opened(data_dir):
    first = open_backend(Settings.load())
    close_backends()
    second = open_backend(Settings.load())
    assert second is not first
    assert second.store is not first.store  # type: ignore[attr-defined]
