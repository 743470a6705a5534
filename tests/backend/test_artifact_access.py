"""Artifacts follow the access rules of runs: another entity's are not found, a read-only key
reads but cannot write; and a backend that keeps no artifacts says so."""

from __future__ import annotations

import hashlib

import pytest

from runbase.backend.accounts import Principal
from runbase.backend.artifacts import ArtifactChanges, NewArtifact
from runbase.backend.authorized import AuthorizedBackend
from runbase.backend.base import NewRun, RunPath
from runbase.backend.http import HttpBackend
from runbase.errors import Forbidden, NotFound, Unsupported

SQLITE = pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)
DATA = b"alice's bytes"
MD5 = hashlib.md5(DATA).hexdigest()


@pytest.fixture
def alices(backend):
    """A committed version of alice's, in a run of hers; its id."""
    backend.create_run(RunPath("alice", "p", "r"), NewRun())
    backend.create_run(RunPath("bob", "p", "r"), NewRun())
    arts = backend.artifacts()
    found = arts.create(NewArtifact("alice", "p", "ds", "dataset", "d", run_id="r"))
    arts.put_blob("alice", MD5, [DATA])
    arts.put_manifest(found.id, [b'{"version": 1, "contents": {}}'])
    return arts.commit(found.id).id


def as_(backend, user, read_only=False):
    return AuthorizedBackend(backend, Principal(user, read_only=read_only)).artifacts()


@SQLITE
def test_another_entitys_artifacts_are_not_found(backend, alices):
    bob = as_(backend, "bob")
    for call in (
        lambda: bob.get(alices),
        lambda: bob.find("alice", "p", "ds", "latest"),
        lambda: bob.collection("alice", "p", "ds"),
        lambda: bob.versions("alice", "p", "ds", 10, None),
        lambda: bob.read_blob("alice", MD5),
        lambda: bob.read_manifest(alices),
        lambda: bob.files(alices, [], 10, None),
        lambda: bob.commit(alices),
        lambda: bob.use(RunPath("bob", "p", "r"), alices),
        lambda: bob.put_blob("alice", MD5, [DATA]),
        lambda: bob.create(NewArtifact("alice", "p", "ds", "dataset", "x")),
        lambda: bob.of_run(RunPath("alice", "p", "r"), False, 10, None),
    ):
        with pytest.raises(NotFound):
            call()
    assert as_(backend, "alice").get(alices).version == "v0"


@SQLITE
def test_a_read_only_key_reads_but_cannot_write(backend, alices):
    reader = as_(backend, "alice", read_only=True)
    assert reader.find("alice", "p", "ds", "v0").id == alices
    assert b"".join(reader.read_blob("alice", MD5)) == DATA
    for call in (
        lambda: reader.create(NewArtifact("alice", "p", "ds", "dataset", "x")),
        lambda: reader.put_blob("alice", MD5, [DATA]),
        lambda: reader.missing_blobs(alices, [MD5]),
        lambda: reader.commit(alices),
        lambda: reader.update(alices, ArtifactChanges(add_aliases=("best",))),
        lambda: reader.use(RunPath("alice", "p", "r"), alices),
    ):
        with pytest.raises(Forbidden):
            call()


def test_a_backend_without_artifacts_says_so():
    with pytest.raises(Unsupported, match="keeps no artifacts"):
        HttpBackend("http://127.0.0.1:9").artifacts()
