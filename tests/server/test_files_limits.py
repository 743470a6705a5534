"""Uploads are checked: an announced size and md5 must match, a file past the server's limit
answers 413, and so does a JSON body past its own (a gzip bomb too); nothing is then stored."""

from __future__ import annotations

import base64
import gzip
import hashlib

import pytest

from runbase.backend.base import NewRun, RunPath
from runbase.backend.http import HttpBackend
from runbase.errors import InvalidInput, PayloadTooLarge
from runbase.server import create_app
from tests.server.conftest import TestClient

PATH = RunPath("tester", "proj", "r1")
FILE = "/api/v1/runs/tester/proj/r1/files/f.bin"
LIMIT = 1000


@pytest.fixture
def app(backend):
    backend.create_run(PATH, NewRun())
    backend.put_file(PATH, "f.bin", [b"old"])
    return create_app(backend, max_file_size=LIMIT, max_body_size=LIMIT)


def stored(backend) -> bytes:
    return b"".join(backend.read_file(PATH, "f.bin"))


def test_a_matching_md5_and_size_are_accepted(client, backend):
    data = b"new bytes"
    md5 = hashlib.md5(data).digest()
    for headers in ({"x-runbase-md5": md5.hex()}, {"content-md5": base64.b64encode(md5).decode()}):
        answer = client.put(FILE, content=data, headers=headers)
        assert answer.status_code == 200, answer.text
        assert answer.json()["md5"] == md5.hex() and answer.json()["size"] == len(data)
    assert stored(backend) == data


@pytest.mark.parametrize(
    ("headers", "message"),
    [
        ({"x-runbase-md5": "0" * 32}, "md5"),
        ({"content-md5": base64.b64encode(b"\0" * 16).decode()}, "md5"),
        ({"content-length": "10"}, "not the 10 announced"),
        ({"x-runbase-md5": "xyz"}, "32 hex digits"),
        ({"content-md5": "!!"}, "base64"),
    ],
)
def test_a_mismatch_is_a_400_and_the_older_version_stays(client, backend, headers, message):
    answer = client.put(FILE, content=iter([b"new ", b"bytes"]), headers=headers)
    assert answer.status_code == 400 and answer.json()["code"] == "invalid_input"
    assert message in answer.json()["message"]
    assert stored(backend) == b"old"
    assert [f.size for f in backend.list_files(PATH, [], 5, None).items] == [3]


def test_a_file_past_the_limit_is_a_413(client, backend):
    too_big = [b"x" * 600, b"x" * 600]
    answer = client.put(FILE, content=iter(too_big))  # streamed: no Content-Length
    assert answer.status_code == 413 and answer.json()["code"] == "payload_too_large"
    assert str(LIMIT) in answer.json()["message"]
    answer = client.put(FILE, content=b"".join(too_big))
    assert answer.status_code == 413
    assert client.put(FILE, content=b"x" * LIMIT).status_code == 200
    assert stored(backend) == b"x" * LIMIT
    with pytest.raises(PayloadTooLarge):
        HttpBackend(str(client.base_url), client=client).put_file(PATH, "g.bin", too_big)
    assert backend.count_files(PATH, ["g.bin"]) == 0


def test_the_http_backend_announces_what_it_knows(client, backend):
    sent = []
    client.event_hooks["request"] = [lambda request: sent.append(dict(request.headers))]
    http = HttpBackend(str(client.base_url), client=client)
    http.put_file(PATH, "a.bin", [b"ab", b"cd"])
    assert sent[-1]["x-runbase-md5"] == hashlib.md5(b"abcd").hexdigest()
    assert sent[-1]["content-length"] == "4"
    http.put_file(PATH, "b.bin", iter([b"ab", b"cd"]))  # a stream: checked once sent
    assert "x-runbase-md5" not in sent[-1]
    assert b"".join(backend.read_file(PATH, "b.bin")) == b"abcd"
    with pytest.raises(InvalidInput, match="bytes, not str"):
        http.put_file(PATH, "c.bin", iter(["text"]))  # type: ignore[arg-type]


def test_a_json_body_past_the_limit_is_a_413(client):
    query = {"entity": "tester", "project": "proj", "filters": {"config.x": "y" * LIMIT}}
    answer = client.post("/api/v1/runs/query", json=query)
    assert answer.status_code == 413 and answer.json()["code"] == "payload_too_large"
    headers = {"content-type": "application/json", "content-encoding": "gzip"}
    bomb = gzip.compress(b'{"entity": "' + b" " * 100 * LIMIT + b'"}')
    assert len(bomb) < LIMIT
    answer = client.post("/api/v1/runs/query", content=bomb, headers=headers)
    assert answer.status_code == 413 and "decompressed" in answer.json()["message"]
    for broken in (b"not gzip", gzip.compress(b'{"entity": "tester"}')[:-12]):
        answer = client.post("/api/v1/runs/query", content=broken, headers=headers)
        assert answer.status_code == 400 and "gzip" in answer.json()["message"]
    small = gzip.compress(b'{"entity": "tester", "project": "proj"}')
    assert client.post("/api/v1/runs/count", content=small, headers=headers).status_code == 200


def test_the_default_limits(backend):
    app = create_app(backend)
    assert app.state.max_file_size == 10 << 30 and app.state.max_body_size == 64 << 20
    with TestClient(app) as client:
        big = {"content-length": str((10 << 30) + 1)}
        answer = client.put(FILE, content=b"", headers=big)
        assert answer.status_code == 413
