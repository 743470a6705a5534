"""File bytes behind ``BlobStore``: the data directory and S3-compatible object storage (a real
S3-protocol server on 127.0.0.1) behave alike, and so does the backend over either."""

from __future__ import annotations

import hashlib
from urllib.parse import urlsplit

import boto3
import pytest

from runbase.backend.base import NewRun, RunPath
from runbase.backend.local import LocalBackend
from runbase.errors import InvalidInput, NotFound
from runbase.store import Store
from runbase.store.blobs import PART_SIZE, LocalBlobs, S3Blobs, open_blobs

PATH = RunPath("tester", "proj", "r1")


@pytest.fixture(params=["local", "s3"])
def files(request, tmp_path):
    """None (the data directory) or the ``s3://`` URL of a prefix of the test S3 server."""
    if request.param == "local":
        return None
    return request.getfixturevalue("s3_files")


@pytest.fixture
def blobs(files, tmp_path):
    return open_blobs(files, tmp_path / "files")


def failing(chunks):
    yield from chunks
    raise InvalidInput("the upload broke off")


def test_open_blobs_picks_the_store(files, tmp_path):
    blobs = open_blobs(files, tmp_path / "files")
    assert isinstance(blobs, LocalBlobs if files is None else S3Blobs)
    with pytest.raises(InvalidInput, match="s3://bucket/prefix"):
        open_blobs("gs://bucket/x", tmp_path)


def test_write_read_delete(blobs):
    chunks = [b"ab", b"", bytearray(b"cd"), memoryview(b"ef")]
    assert blobs.write("1/dir/a.bin", chunks) == (6, hashlib.md5(b"abcdef").hexdigest())
    assert blobs.exists("1/dir/a.bin") and not blobs.exists("1/dir/b.bin")
    assert b"".join(blobs.read("1/dir/a.bin", 4)) == b"abcdef"
    assert blobs.write("1/empty", []) == (0, hashlib.md5(b"").hexdigest())
    assert b"".join(blobs.read("1/empty", 4)) == b""
    blobs.delete("1/dir/a.bin")
    blobs.delete("1/dir/a.bin")
    assert not blobs.exists("1/dir/a.bin")
    with pytest.raises(NotFound, match="dir/a.bin"):
        blobs.read("1/dir/a.bin", 4)


def test_a_multipart_file_streams_and_reads_in_chunks(blobs):
    payload = bytes(range(256)) * ((PART_SIZE + 300_000) // 256)
    pieces = [payload[i : i + 1_000_000] for i in range(0, len(payload), 1_000_000)]
    size, md5 = blobs.write("2/big.bin", iter(pieces))
    assert (size, md5) == (len(payload), hashlib.md5(payload).hexdigest())
    read = list(blobs.read("2/big.bin", 1 << 20))
    assert len(read) > 1 and b"".join(read) == payload


@pytest.mark.parametrize("size", [10, PART_SIZE + 10], ids=["one part", "multipart"])
def test_a_broken_upload_keeps_the_older_version(blobs, size):
    blobs.write("3/f.bin", [b"old"])
    with pytest.raises(InvalidInput, match="broke off"):
        blobs.write("3/f.bin", failing([b"n" * size]))
    assert b"".join(blobs.read("3/f.bin", 100)) == b"old"
    with pytest.raises(InvalidInput, match="broke off"):
        blobs.write("3/g.bin", failing([b"n" * size]))
    assert not blobs.exists("3/g.bin")
    with pytest.raises(InvalidInput, match="bytes, not str"):
        blobs.write("3/f.bin", ["text"])


def test_an_s3_prefix_holds_the_objects(s3_files, s3_endpoint):
    where = urlsplit(s3_files)
    open_blobs(s3_files, None).write("7/x.txt", [b"x"])  # type: ignore[arg-type]
    client = boto3.client("s3")
    found = client.list_objects_v2(Bucket=where.netloc, Prefix=where.path.strip("/"))
    assert [item["Key"] for item in found["Contents"]] == [where.path.strip("/") + "/7/x.txt"]
    client.close()


def test_the_backend_keeps_files_in_either_store(files, data_dir, database_url):
    backend = LocalBackend(Store.open(database_url, data_dir, files), "tester")
    try:
        backend.create_run(PATH, NewRun())
        payload = b"0123456789" * 200_000
        record = backend.put_file(PATH, "media/weights.bin", [payload[:5], payload[5:]])
        assert record.size == len(payload) and record.md5 == hashlib.md5(payload).hexdigest()
        backend.put_file(PATH, "a.txt", [b"first"])
        backend.put_file(PATH, "a.txt", [b"second"])
        with pytest.raises(InvalidInput):
            backend.put_file(PATH, "a.txt", failing([b"third"]))
        assert b"".join(backend.read_file(PATH, "media/weights.bin")) == payload
        assert b"".join(backend.read_file(PATH, "a.txt")) == b"second"
        assert [f.name for f in backend.list_files(PATH, [], 10, None).items] == [
            "a.txt",
            "media/weights.bin",
        ]
        assert backend.count_files(PATH, []) == 2
        backend.delete_file(PATH, "a.txt")
        with pytest.raises(NotFound):
            backend.read_file(PATH, "a.txt")
        with pytest.raises(NotFound):
            backend.delete_file(PATH, "a.txt")
        assert backend.count_files(PATH, []) == 1
        assert (data_dir / "files").exists() == (files is None)
    finally:
        backend.store.close()
