"""The native API as raw HTTP: health, OpenAPI, gzip bodies, and bad input answered 4xx."""

from __future__ import annotations

import gzip
import json

import httpx
import pytest

from runbase.backend.base import RunPath
from runbase.backend.http import HttpBackend
from runbase.errors import CommError
from runbase.server import create_app
from tests.server.conftest import TestClient

RUN = "/api/v1/runs/tester/proj/r1"


def test_health_and_openapi(client):
    assert client.get("/healthz").json() == {"ok": True}
    paths = client.get("/openapi.json").json()["paths"]
    assert "/api/v1/runs/{entity}/{project}/{run_id}" in paths
    assert "/api/v1/runs/{entity}/{project}/{run_id}/history/scan" in paths


def test_history_batches_may_be_gzip(client, backend):
    assert client.put(RUN, json={}).status_code == 200
    rows = [[i, i, ["_step", "x"], json.dumps({"_step": i, "x": i})] for i in range(3)]
    body = gzip.compress(json.dumps({"rows": rows, "latest": {"x": 2}}).encode())
    headers = {"content-type": "application/json", "content-encoding": "gzip"}
    assert client.post(RUN + "/history", content=body, headers=headers).status_code == 200
    scanned = client.post(RUN + "/history/scan", json={"page_size": 2})
    assert scanned.headers["content-type"] == "application/x-ndjson"
    head, *rows, end = scanned.text.split("\n")
    assert json.loads(head)["rows"] == 2 and json.loads(head)["next_cursor"] and end == ""
    assert [json.loads(row)["x"] for row in rows] == [0, 1]
    bad = client.post(RUN + "/history", content=b"not gzip", headers=headers)
    assert bad.status_code == 400 and bad.json()["code"] == "invalid_input"


@pytest.mark.parametrize(
    ("method", "url", "body", "names"),
    [
        ("PUT", RUN, b"{not json", "body"),
        ("PUT", RUN, b"[1, 2]", "body"),
        ("PUT", RUN, b'{"tags": "abc"}', "tags"),
        ("PUT", RUN, b'{"colour": "red"}', "colour"),
        ("PATCH", RUN, b'{"exit_code": "3"}', "exit_code"),
        ("POST", RUN + "/finish", b'{"exit_code": 1}', "state"),
        ("POST", RUN + "/history", b'{"rows": [[0, 0, ["a"]]]}', "rows"),
        ("POST", RUN + "/history/scan", b'{"page_size": true}', "page_size"),
        ("POST", RUN + "/history/scan", b'{"page_size": 0}', "page_size"),
        ("POST", RUN + "/history/scan", b'{"cursor": "%%%"}', "cursor"),
        ("POST", "/api/v1/runs/query", b'{"entity": "tester"}', "project"),
        ("POST", "/api/v1/runs/query", b'{"entity": "t", "project": "p", "filters": 3}', "filters"),
        ("GET", "/api/v1/projects?entity=tester&per_page=many", b"", "per_page"),
        ("POST", "/api/v1/history/samples", b'{"samples": 2, "paths": [["a", "b"]]}', "paths"),
    ],
)
def test_bad_input_is_a_400_naming_the_problem(client, method, url, body, names):
    client.put(RUN, json={})
    headers = {"content-type": "application/json"}
    answer = client.request(method, url, content=body, headers=headers)
    assert answer.status_code == 400, answer.text
    error = answer.json()
    assert set(error) == {"code", "message"} and error["code"] == "invalid_input"
    assert names in error["message"]


def test_unknown_routes_and_runs_are_404_json(client):
    assert client.get("/api/v1/nothing").json()["code"] == "not_found"
    answer = client.get(RUN)
    assert answer.status_code == 404
    assert answer.json() == {"code": "not_found", "message": "run tester/proj/r1 not found"}


def test_a_bad_filter_is_its_own_code(client):
    body = {"entity": "tester", "project": "proj", "filters": {"$nope": 1}}
    answer = client.post("/api/v1/runs/count", json=body)
    assert (answer.status_code, answer.json()["code"]) == (400, "invalid_filter")


class Broken:
    """A backend whose every call fails with a bug."""

    def __getattr__(self, name):
        def fail(*args, **kwargs):
            raise RuntimeError("a bug")

        return fail


def test_a_bug_is_a_500_json_and_a_comm_error_for_the_client():
    app = create_app(Broken())  # type: ignore[arg-type]
    with TestClient(app, raise_server_exceptions=False) as client:
        answer = client.get(RUN)
        assert answer.status_code == 500
        assert answer.json() == {"code": "internal", "message": "internal server error"}
        with pytest.raises(CommError) as raised:
            HttpBackend(str(client.base_url), client=client).get_run(RunPath("e", "p", "r"))
    assert isinstance(raised.value.exc, httpx.HTTPStatusError)
