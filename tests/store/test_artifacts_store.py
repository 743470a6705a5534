"""Artifacts in a real store, on SQLite and PostgreSQL (and their bytes in the data directory
or S3-compatible object storage): versions and aliases, digests that make no new version,
bytes stored once per entity, commits that check the manifest, and every bad input refused."""

from __future__ import annotations

import base64
import hashlib
from collections.abc import Iterator
from pathlib import Path

import orjson
import pytest
from sqlalchemy import func, select

from runbase.backend.artifacts import ArtifactChanges, Artifacts, NewArtifact
from runbase.backend.base import NewRun, RunPath
from runbase.backend.local import LocalBackend
from runbase.errors import Conflict, InvalidInput, NotFound
from runbase.store import Store, schema

RUN = RunPath("tester", "proj", "r1")


@pytest.fixture
def local(data_dir, database_url) -> Iterator[LocalBackend]:
    backend = LocalBackend(Store.open(database_url, data_dir), "tester")
    backend.create_run(RUN, NewRun())
    yield backend
    backend.close()


@pytest.fixture
def arts(local) -> Artifacts:
    return local.artifacts()


def md5(data: bytes) -> str:
    return hashlib.md5(data).hexdigest()


def manifest(files: dict[str, bytes], refs: dict[str, str] | None = None) -> bytes:
    contents: dict[str, dict] = {
        name: {"digest": base64.b64encode(hashlib.md5(data).digest()).decode(), "size": len(data)}
        for name, data in files.items()
    }
    for name, ref in (refs or {}).items():
        contents[name] = {"digest": "etag", "ref": ref, "size": 7}
    return orjson.dumps({"version": 1, "storagePolicy": "wandb-storage-policy-v1",
                         "storagePolicyConfig": {}, "contents": contents})  # fmt: skip


def log(arts: Artifacts, name: str, files: dict[str, bytes], **new) -> int:
    """A version of ``name`` with ``files``, as the client logs it; its id."""
    digest = md5(manifest(files))
    found = arts.create(NewArtifact("tester", "proj", name, "dataset", digest, **new))
    if found.state == "COMMITTED":
        return found.id
    wanted = arts.missing_blobs(found.id, [md5(data) for data in files.values()])
    for data in files.values():
        if md5(data) in wanted:
            arts.put_blob("tester", md5(data), [data[:3], data[3:]])
    arts.put_manifest(found.id, [manifest(files)])
    return arts.commit(found.id).id


def test_a_version_is_created_uploaded_and_committed(arts):
    new = NewArtifact(
        "tester", "proj", "ds", "dataset", "d0", run_id="r1", aliases=("best",),
        metadata={"k": [1]}, description="x",
    )  # fmt: skip
    created = arts.create(new)
    assert (created.state, created.version_index, created.aliases) == ("PENDING", None, ())
    data = b"some bytes"
    assert arts.missing_blobs(created.id, [md5(data)]) == {md5(data)}
    assert arts.put_blob("tester", md5(data), [data]) == len(data)
    assert arts.missing_blobs(created.id, [md5(data)]) == set()
    arts.put_manifest(created.id, [manifest({"dir/a.txt": data}, {"remote": "s3://b/k"})])
    done = arts.commit(created.id)
    assert (done.state, done.version, done.aliases) == ("COMMITTED", "v0", ("best", "latest"))
    assert (done.size, done.file_count, done.run_path) == (len(data) + 7, 2, RUN)
    assert (done.metadata, done.description) == ({"k": [1]}, "x")
    assert arts.commit(created.id) == done  # a second commit changes nothing
    files = arts.files(created.id, [], 10, None)
    assert [(f.name, f.md5, f.size) for f in files.items] == [("dir/a.txt", md5(data), len(data))]
    assert b"".join(arts.read_blob("tester", md5(data))) == data
    assert orjson.loads(b"".join(arts.read_manifest(created.id)))["version"] == 1
    assert arts.find("tester", "proj", "ds", "best") == done
    with pytest.raises(Conflict):
        arts.put_manifest(created.id, [b"{}"])


def test_versions_count_up_and_latest_moves(arts):
    v0 = log(arts, "ds", {"a": b"one"}, aliases=("first",))
    v1 = log(arts, "ds", {"a": b"two"})
    v2 = log(arts, "ds", {"a": b"three"}, aliases=("first",))
    assert [arts.get(pk).version for pk in (v0, v1, v2)] == ["v0", "v1", "v2"]
    assert arts.find("tester", "proj", "ds", "latest").id == v2
    assert arts.find("tester", "proj", "ds", "first").id == v2  # an alias moves, too
    assert arts.find("tester", "proj", "ds", "v1").id == v1
    assert arts.get(v0).aliases == ()
    assert arts.collection("tester", "proj", "ds").latest_id == v2
    page = arts.versions("tester", "proj", "ds", 2, None)
    assert [r.version for r in page.items] == ["v2", "v1"]
    rest = arts.versions("tester", "proj", "ds", 2, page.next_cursor)
    assert [r.version for r in rest.items] == ["v0"] and rest.next_cursor is None
    for missing in ("v3", "nope"):
        with pytest.raises(NotFound):
            arts.find("tester", "proj", "ds", missing)


def test_the_digest_of_the_latest_version_makes_no_new_one(arts):
    v0 = log(arts, "ds", {"a": b"one"})
    assert log(arts, "ds", {"a": b"one"}, aliases=("again",)) == v0
    assert arts.get(v0).aliases == ("again", "latest")
    v1 = log(arts, "ds", {"a": b"two"})
    back = log(arts, "ds", {"a": b"one"})  # like the latest only: v0 is older
    assert len({v0, v1, back}) == 3 and arts.get(back).version == "v2"
    forced = log(arts, "ds", {"a": b"one"}, dedupe=False)
    assert arts.get(forced).version == "v3"


def test_bytes_are_stored_once_per_entity(arts, local, data_dir):
    shared = b"the same bytes" * 100
    first = log(arts, "one", {"a.bin": shared, "b.bin": b"b"})
    second = log(arts, "two", {"copy/a.bin": shared})
    assert arts.missing_blobs(second, [md5(shared)]) == set()
    with local.store.read() as conn:
        stored = conn.execute(select(func.count()).select_from(schema.artifact_blobs)).scalar()
    assert stored == 2
    on_disk = [p for p in (data_dir / "files" / "artifacts").rglob("*") if p.is_file()]
    blobs = [p for p in on_disk if "manifests" not in p.parts]
    assert sorted(p.name for p in blobs) == sorted([md5(shared), md5(b"b")])
    local.create_run(RunPath("other", "proj", "r"), NewRun())
    theirs = arts.create(NewArtifact("other", "proj", "ds", "dataset", "x"))
    assert arts.missing_blobs(theirs.id, [md5(shared)]) == {md5(shared)}
    with pytest.raises(NotFound):
        arts.read_blob("other", md5(shared))
    assert arts.get(first).file_count == 2


def test_wrong_bytes_are_refused_and_keep_what_was_stored(arts):
    good = b"good bytes"
    arts.put_blob("tester", md5(good), [good])
    with pytest.raises(InvalidInput, match="md5"):
        arts.put_blob("tester", md5(good), [b"evil bytes"])
    with pytest.raises(InvalidInput, match="md5"):
        arts.put_blob("tester", md5(b"new"), [b"not new"])
    assert b"".join(arts.read_blob("tester", md5(good))) == good
    with pytest.raises(NotFound):
        arts.read_blob("tester", md5(b"new"))


def test_a_commit_checks_the_manifest(arts):
    pending = arts.create(NewArtifact("tester", "proj", "ds", "dataset", "d")).id
    with pytest.raises(InvalidInput, match="no manifest"):
        arts.commit(pending)
    for bad, message in [
        (b"not json", "not JSON"),
        (b'{"version": 2, "contents": {}}', "version 1"),
        (b'{"version": 1, "contents": []}', "contents"),
        (b'{"version": 1, "contents": {"a": {"digest": "xx", "size": 1}}}', "base64 md5"),
        (b'{"version": 1, "contents": {"a": {"digest": "", "size": -1}}}', "size"),
        (manifest({"../up": b"x"}), "invalid file name"),
        (manifest({"a": b"never uploaded"}), "never uploaded"),
    ]:
        arts.put_manifest(pending, [bad])
        with pytest.raises(InvalidInput, match=message):
            arts.commit(pending)
    arts.put_blob("tester", md5(b"abc"), [b"abc"])
    lying = orjson.loads(manifest({"a": b"abc"}))
    lying["contents"]["a"]["size"] = 4
    arts.put_manifest(pending, [orjson.dumps(lying)])
    with pytest.raises(InvalidInput, match="4 bytes"):
        arts.commit(pending)
    assert arts.get(pending).state == "PENDING"


def test_a_collection_keeps_its_type(arts):
    log(arts, "ds", {"a": b"1"})
    with pytest.raises(InvalidInput, match="of type 'dataset', not 'model'"):
        arts.create(NewArtifact("tester", "proj", "ds", "model", "d"))
    page = arts.collections("tester", "proj", "dataset", 10, None)
    assert [c.name for c in page.items] == ["ds"]
    assert arts.collections("tester", "proj", "model", 10, None).items == []


def test_runs_that_log_and_use_versions(arts, local):
    logged = log(arts, "ds", {"a": b"1"}, run_id="r1")
    user = RunPath("tester", "proj", "r2")
    local.create_run(user, NewRun())
    arts.use(user, logged)
    arts.use(user, logged)  # once is enough
    assert [r.id for r in arts.of_run(RUN, False, 10, None).items] == [logged]
    assert [r.id for r in arts.of_run(user, True, 10, None).items] == [logged]
    assert arts.of_run(user, False, 10, None).items == []
    assert arts.users(logged, 10, None).items == [user]
    with pytest.raises(NotFound):
        arts.use(RunPath("tester", "proj", "nope"), logged)
    with pytest.raises(NotFound):
        arts.create(NewArtifact("tester", "proj", "ds", "dataset", "x", run_id="nope"))


def test_updates_change_fields_and_aliases(arts):
    v0 = log(arts, "ds", {"a": b"1"}, aliases=("a1",))
    changed = arts.update(
        v0,
        ArtifactChanges(
            description="d", metadata={"m": 1}, add_aliases=("gold",), remove_aliases=("a1",)
        ),  # fmt: skip
    )
    assert (changed.description, changed.metadata) == ("d", {"m": 1})
    assert changed.aliases == ("gold", "latest")
    pending = arts.create(NewArtifact("tester", "proj", "ds", "dataset", "new", aliases=("x",)))
    arts.update(pending.id, ArtifactChanges(add_aliases=("y",), remove_aliases=("x",)))
    arts.put_manifest(pending.id, [manifest({})])
    assert arts.commit(pending.id).aliases == ("latest", "y")


def test_find_by_client_id(arts):
    logged = log(arts, "ds", {"a": b"1"}, client_id="client-1")
    assert arts.find_by_client_id("client-1").id == logged
    with pytest.raises(NotFound):
        arts.find_by_client_id("client-2")


@pytest.mark.parametrize(
    "call",
    [
        lambda a: a.create(NewArtifact("tester", "proj", "bad/name", "dataset", "d")),
        lambda a: a.create(NewArtifact("tester", "proj", "ds", "", "d")),
        lambda a: a.create(NewArtifact("tester", "proj", "ds", "dataset", "")),
        lambda a: a.create(NewArtifact("tester", "proj", "ds", "dataset", "d", aliases=("v1",))),
        lambda a: a.create(NewArtifact("tester", "proj", "ds", "dataset", "d", metadata=[1])),  # type: ignore[arg-type]
        lambda a: a.create(NewArtifact("tester", "proj", "ds", "dataset", "d", history_step="1")),  # type: ignore[arg-type]
        lambda a: a.create(NewArtifact("", "proj", "ds", "dataset", "d")),
        lambda a: a.put_blob("tester", "not-an-md5", [b""]),
        lambda a: a.put_blob("tester", md5(b""), ["text"]),
        lambda a: a.missing_blobs(1, ["XYZ"]),
        lambda a: a.get("1"),
        lambda a: a.versions("tester", "proj", "ds", 0, None),
        lambda a: a.versions("tester", "proj", "ds", 5, "not a cursor"),
        lambda a: a.files(1, "a", 5, None),
        lambda a: a.find("tester", "proj", "ds", ""),
        lambda a: a.update(1, ArtifactChanges(add_aliases=("a/b",))),
    ],
)
def test_bad_input_is_refused(arts, call):
    log(arts, "ds", {"a": b"1"})
    with pytest.raises(InvalidInput):
        call(arts)


def test_unknown_things_are_not_found(arts):
    for call in (
        lambda: arts.get(99),
        lambda: arts.commit(99),
        lambda: arts.read_manifest(99),
        lambda: arts.collection("tester", "proj", "nope"),
        lambda: arts.put_blob("nobody", md5(b"x"), [b"x"]),
    ):
        with pytest.raises(NotFound):
            call()


def test_bytes_in_object_storage(s3_files, data_dir, database_url):
    backend = LocalBackend(Store.open(database_url, Path(data_dir), s3_files), "tester")
    try:
        backend.create_run(RUN, NewRun())
        arts = backend.artifacts()
        payload = bytes(range(256)) * 40_000  # past one multipart part
        pk = log(arts, "big", {"blob.bin": payload})
        assert b"".join(arts.read_blob("tester", md5(payload))) == payload
        with pytest.raises(InvalidInput):
            arts.put_blob("tester", md5(payload), [payload[:-1], b"!"])
        assert b"".join(arts.read_blob("tester", md5(payload))) == payload
        assert arts.get(pk).size == len(payload)
    finally:
        backend.close()
