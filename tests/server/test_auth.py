"""The server with accounts: API keys, 401/429, and who may read and write what, walked over
every route of the OpenAPI document."""

from __future__ import annotations

import json
import threading

import httpx
import pytest

import runbase
from runbase.api import Api
from runbase.backend import open_accounts
from runbase.backend.base import HistoryRow, NewRun, RunPath
from runbase.backend.http import HttpBackend
from runbase.errors import CommError, Forbidden, NotFound, RateLimited, Unauthorized
from runbase.sdk import run as sdk_run
from runbase.server import create_app
from runbase.server.auth import FailureLimiter
from runbase.settings import Settings
from tests.server.test_live import serve

OWNED = RunPath("alice", "proj", "r1")
SHARED = RunPath("crew", "shared", "t1")
BOBS = RunPath("bob", "mine", "b1")


@pytest.fixture
def keys(backend):
    """alice (read-write and read-only keys, member of crew), bob, and the admin root; a run
    of each entity with history, a file and a sweep."""
    accounts = open_accounts(Settings.load())
    for name in ("alice", "bob"):
        accounts.create_user(name)
    accounts.create_user("root", admin=True)
    accounts.create_team("crew")
    accounts.add_member("crew", "alice")
    made = {
        "alice": accounts.create_key("alice")[0],
        "alice-ro": accounts.create_key("alice", read_only=True)[0],
        "bob": accounts.create_key("bob")[0],
        "root": accounts.create_key("root")[0],
    }
    for path in (OWNED, SHARED, BOBS):
        backend.create_run(path, NewRun(config={"lr": 0.1}))
        row = json.dumps({"_step": 0, "x": 1})
        backend.append_history(path, "default", [HistoryRow(0, 0, ("_step", "x"), row)], {"x": 1})
        backend.put_file(path, "f.txt", [b"bytes"])
    sweep = backend.create_sweep("alice", "proj", {"method": "grid"})
    made["sweep"] = sweep.sweep_id
    return made


@pytest.fixture
def app(backend, keys):
    return create_app(backend, open_accounts(Settings.load()))


def bearer(key: str) -> dict[str, str]:
    return {"authorization": f"Bearer {key}"}


def test_no_key_or_a_wrong_key_is_a_401(client, keys):
    for headers in ({}, bearer("rb_" + "0" * 40), {"authorization": "Basic !!"}):
        answer = client.get("/api/v1/entity", headers=headers)
        assert answer.status_code == 401 and answer.json()["code"] == "unauthorized"
    assert client.get("/healthz").json() == {"ok": True}  # no key needed


def test_basic_auth_and_bearer_both_work(client, keys):
    assert client.get("/api/v1/entity", auth=("api", keys["alice"])).json() == {"entity": "alice"}
    assert client.get("/api/v1/entity", headers=bearer(keys["bob"])).json() == {"entity": "bob"}


def test_failed_authentications_are_slowed_down(client, keys):
    wrong = "rb_" + "1" * 40
    for _ in range(10):
        assert client.get("/api/v1/entity", headers=bearer(wrong)).status_code == 401
    for key in (wrong, keys["alice"]):
        answer = client.get("/api/v1/entity", headers=bearer(key))
        assert answer.status_code == 429 and answer.json()["code"] == "rate_limited"
        assert 0 < int(answer.headers["retry-after"]) <= 60
        assert key not in answer.text


def test_a_client_slowed_down_gets_rate_limited_a_comm_error(client, keys):
    wrong = HttpBackend("http://testserver", client=client, api_key="rb_" + "2" * 40)
    for _ in range(10):
        with pytest.raises(Unauthorized):
            wrong.default_entity()
    with pytest.raises(RateLimited) as caught:
        wrong.default_entity()
    assert isinstance(caught.value, CommError) and caught.value.status == 429


def test_the_limiter_forgets_failures_after_its_window():
    limiter = FailureLimiter(limit=2, window=0.05)
    limiter.failed("a")
    assert limiter.retry_after("a") is None
    limiter.failed("a")
    assert limiter.retry_after("a") == 1 and limiter.retry_after("b") is None
    threading.Event().wait(0.06)
    assert limiter.retry_after("a") is None


RUN = "/api/v1/runs/{entity}/{project}/{run_id}"
# Every operation of the API: (method, path) -> (query, JSON body, a write?). Ordered so
# that the owner's writes leave what later requests need (the file is deleted last).
# the routes that name no entity: every caller with a key gets an answer of its own
UNOWNED = ("/api/v1/entity", "/api/v1/session", "/api/v1/overview")
OPERATIONS: dict[tuple[str, str], tuple[dict, object, bool]] = {
    ("GET", "/api/v1/entity"): ({}, None, False),
    ("GET", RUN): ({}, None, False),
    ("PUT", RUN): ({}, {"resume": "allow"}, True),
    ("PATCH", RUN): ({}, {"notes": "n"}, True),
    ("POST", RUN + "/config"): ({}, {"changes": {"a": 1}}, True),
    ("POST", RUN + "/summary"): ({}, {"changes": {"a": 1}}, True),
    ("POST", RUN + "/heartbeat"): ({}, None, True),
    ("POST", RUN + "/history"): ({}, {"rows": [[1, 1, ["_step"], '{"_step": 1}']]}, True),
    ("GET", RUN + "/history/keys"): ({}, None, False),
    ("POST", RUN + "/history/sample"): ({}, {"samples": 5}, False),
    ("POST", RUN + "/history/scan"): ({}, {}, False),
    ("POST", RUN + "/history/pages"): ({}, {}, False),
    ("GET", RUN + "/history/segments"): ({}, None, False),
    ("POST", "/api/v1/history/samples"): ({}, "samples", False),
    ("POST", "/api/v1/history/buckets"): ({}, "buckets", False),
    ("POST", "/api/v1/runs/query"): ({}, "project", False),
    ("POST", "/api/v1/runs/count"): ({}, "project", False),
    ("GET", RUN + "/files"): ({}, None, False),
    ("GET", RUN + "/file-count"): ({}, None, False),
    ("PUT", RUN + "/files/{name}"): ({}, b"new bytes", True),
    ("GET", RUN + "/files/{name}"): ({}, None, False),
    ("GET", "/api/v1/projects"): ({"entity": "{entity}"}, None, False),
    ("GET", "/api/v1/project"): ({"entity": "{entity}", "project": "{project}"}, None, False),
    ("POST", "/api/v1/sweeps"): ({}, "sweep", True),
    ("GET", "/api/v1/sweep"): ({"entity": "{entity}", "project": "{project}"}, None, False),
    ("GET", "/api/v1/keys"): ({"entity": "{entity}", "project": "{project}"}, None, False),
    ("GET", "/api/v1/session"): ({}, None, False),
    ("GET", "/api/v1/overview"): ({}, None, False),
    ("POST", RUN + "/finish"): ({}, {"state": "finished"}, True),
    ("DELETE", RUN + "/files/{name}"): ({}, None, True),
    ("DELETE", RUN): ({}, None, True),  # last: the owner deletes the run
}


def request_of(operation, keys, path: RunPath) -> tuple[str, str, dict]:
    (method, template), (query, body, _) = operation
    values = {**path._asdict(), "name": "f.txt"}
    url = template.replace("{run_id}", path.run_id)
    for name, value in values.items():
        url = url.replace("{" + name + "}", value)
    params = {name: value.format(**values) for name, value in query.items()}
    if template == "/api/v1/sweep":
        params["sweep_id"] = keys["sweep"]
    kwargs: dict = {"params": params}
    if body == "project":
        kwargs["json"] = {"entity": path.entity, "project": path.project}
    elif body == "sweep":
        kwargs["json"] = {"entity": path.entity, "project": path.project, "config": {}}
    elif body == "samples":
        kwargs["json"] = {"samples": 3, "paths": [list(path)]}
    elif body == "buckets":
        kwargs["json"] = {"key": "x", "buckets": 3, "paths": [list(path)]}
    elif isinstance(body, bytes):
        kwargs["content"] = body
    elif body is not None:
        kwargs["json"] = body
    return method, url, kwargs


def test_every_route_answers_each_caller_as_it_may(app, client, keys):
    app.state.failures = FailureLimiter(limit=10**6)
    routes = {
        (method.upper(), path)
        for path, methods in app.openapi()["paths"].items()
        for method in methods
        if path.startswith("/api/")
    }
    assert routes == set(OPERATIONS), "a new route needs its line in OPERATIONS"
    callers = [
        ("no key", {}, lambda write, own: 401),
        ("wrong key", bearer("rb_" + "2" * 40), lambda write, own: 401),
        ("another user", bearer(keys["bob"]), lambda write, own: 404 if own else 200),
        (
            "read-only owner",
            {"authorization": None, "key": keys["alice-ro"]},
            lambda write, own: 403 if write else 200,
        ),  # fmt: skip
        ("owner", bearer(keys["alice"]), lambda write, own: 200),
    ]
    for caller, headers, expected in callers:
        auth = ("api", headers.pop("key")) if "key" in headers else None
        headers = {k: v for k, v in headers.items() if v is not None}
        for operation in OPERATIONS.items():
            write = operation[1][2]
            own = operation[0][1] not in UNOWNED
            method, url, kwargs = request_of(operation, keys, OWNED)
            answer = client.request(method, url, headers=headers, auth=auth, **kwargs)
            assert answer.status_code == expected(write, own), (caller, method, url, answer.text)
            if answer.status_code >= 400:
                assert set(answer.json()) == {"code", "message"}


def test_team_members_and_admins_see_what_they_share(client, keys):
    member, outsider, admin = (bearer(keys[name]) for name in ("alice", "bob", "root"))
    shared = "/api/v1/runs/crew/shared/t1"
    assert client.get(shared, headers=member).json()["read_only"] is False
    hidden = client.get(shared, headers=outsider)
    missing = client.get("/api/v1/runs/nobody/shared/t1", headers=outsider)
    assert hidden.status_code == missing.status_code == 404
    assert hidden.json()["message"] == missing.json()["message"].replace("nobody", "crew")
    for url in (shared, "/api/v1/runs/alice/proj/r1", "/api/v1/runs/bob/mine/b1"):
        assert client.get(url, headers=admin).status_code == 200
    assert client.patch(shared, json={"notes": "x"}, headers=member).status_code == 200
    listed = client.get("/api/v1/projects", params={"entity": "crew"}, headers=member).json()
    assert [p["name"] for p in listed["items"]] == ["shared"]
    read_only = client.get(shared, auth=("api", keys["alice-ro"])).json()
    assert read_only["read_only"] is True


def test_runs_of_a_read_only_key_come_back_read_only(client, keys):
    http = HttpBackend(str(client.base_url), client=client, api_key=keys["alice-ro"])
    assert http.get_run(OWNED).read_only
    assert all(run.read_only for run in Api(backend=http).runs("alice/proj"))
    with pytest.raises(Forbidden):
        http.update_summary(OWNED, {"x": 2})
    with pytest.raises(NotFound):
        http.get_run(BOBS)


def test_the_api_and_the_sdk_work_with_a_key(client, keys, backend, monkeypatch):
    monkeypatch.delenv("RUNBASE_ENTITY")
    http = HttpBackend(str(client.base_url), client=client, api_key=keys["alice"])
    api = Api(backend=http)
    assert api.default_entity == "alice"
    runs = api.runs("alice/proj")
    assert len(runs) == 1 and runs[0].config == {"lr": 0.1} and not runs[0].read_only
    monkeypatch.setattr(sdk_run, "open_backend", lambda settings: http)
    with runbase.init(project="remote", config={"a": 1}) as run:  # the key's user's entity
        run.log({"loss": 0.5})
    assert run.entity == "alice"
    stored = backend.get_run(RunPath("alice", "remote", run.id))
    assert stored.summary["loss"] == 0.5 and stored.username == "alice"
    with runbase.init(entity="crew", project="remote") as run:  # a team alice is in
        run.log({"loss": 0.25})
    assert backend.get_run(RunPath("crew", "remote", run.id)).username == "alice"
    unauthorized = HttpBackend(str(client.base_url), client=client, api_key="rb_" + "3" * 40)
    with pytest.raises(Unauthorized):
        unauthorized.get_run(OWNED)


@pytest.fixture
def live_url(backend, keys):
    """The app with accounts, served by uvicorn on 127.0.0.1 in a thread."""
    with serve(create_app(backend, open_accounts(Settings.load()))) as url:
        yield url


def test_the_key_reaches_the_server_from_the_settings(live_url, keys, monkeypatch):
    monkeypatch.delenv("RUNBASE_DATABASE_URL", raising=False)
    monkeypatch.delenv("RUNBASE_ENTITY")
    monkeypatch.setenv("RUNBASE_BASE_URL", live_url)
    assert len(Api(api_key=keys["alice"]).runs("alice/proj")) == 1
    monkeypatch.setenv("RUNBASE_API_KEY", keys["bob"])
    assert Api().default_entity == "bob"  # the entity the server names
    with pytest.raises(NotFound):
        Api().run("alice/proj/r1")
    monkeypatch.delenv("RUNBASE_API_KEY")
    with pytest.raises(Unauthorized):
        Api().run("alice/proj/r1")
    assert httpx.get(live_url + "/healthz").status_code == 200
