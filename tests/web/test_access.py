"""Who may see the dashboard: login, sessions, CSRF, another entity's pages, ``runbase ui``."""

from __future__ import annotations

import contextlib
import time
from collections.abc import Iterator

import httpx
import pytest
from sqlalchemy import func, select
from typer.testing import CliRunner

from runbase.backend.base import NewRun, RunChanges, RunPath
from runbase.backend.sessions import Sessions
from runbase.cli import app, is_loopback
from runbase.errors import Unauthorized
from runbase.server.web.login import safe_next
from runbase.store.schema import sessions as session_table

RUN = RunPath("tester", "vision", "r1")


def client(server, **kwargs) -> httpx.Client:
    return httpx.Client(base_url=server.url, timeout=10, **kwargs)


@contextlib.contextmanager
def logged_in(server) -> Iterator[httpx.Client]:
    with client(server) as http:
        answer = http.post("/login", data={"key": server.key, "next": "/"})
        assert answer.status_code == 303, answer.text
        yield http


def test_pages_redirect_to_login_and_a_key_starts_a_strict_session(web_server, backend):
    backend.create_run(RUN, NewRun())
    with client(web_server) as http:
        answer = http.get("/tester/vision?x=1")
        assert answer.status_code == 303
        assert answer.headers["location"] == "/login?next=/tester/vision%3Fx%3D1"
        form = http.get("/login?next=/tester/vision")
        assert 'type="password"' in form.text and 'value="/tester/vision"' in form.text
        assert form.headers["content-security-policy"].startswith("default-src 'self'")
        answer = http.post("/login", data={"key": web_server.key, "next": "/tester/vision"})
        assert answer.status_code == 303 and answer.headers["location"] == "/tester/vision"
        cookie = answer.headers["set-cookie"].lower()
        assert "httponly" in cookie and "samesite=strict" in cookie and "secure" not in cookie
        assert web_server.key not in answer.text + answer.headers["location"]
        shell = http.get("/tester/vision")
        assert shell.status_code == 200 and web_server.key not in shell.text
        session = http.get("/api/v1/session").json()
        assert session["user"] == "tester" and session["login"] is True
        assert f'<meta name="runbase-csrf" content="{session["csrf"]}">' in shell.text


def test_a_wrong_key_answers_the_form_again_then_waits(web_server):
    with client(web_server) as http:
        for _ in range(10):
            answer = http.post("/login", data={"key": "rb_wrong", "next": "/"})
            assert answer.status_code == 401 and "not valid" in answer.text
            assert "set-cookie" not in answer.headers
        answer = http.post("/login", data={"key": web_server.key, "next": "/"})
        assert answer.status_code == 429 and "try again" in answer.text


def test_changes_by_cookie_need_the_csrf_token_and_the_same_origin(web_server, backend):
    backend.create_run(RUN, NewRun())
    where = "/api/v1/runs/tester/vision/r1"
    with logged_in(web_server) as http:
        csrf = http.get("/api/v1/session").json()["csrf"]
        refused = http.patch(where, json={"notes": "x"})
        assert refused.status_code == 403 and "X-Runbase-CSRF" in refused.json()["message"]
        wrong = http.patch(where, json={"notes": "x"}, headers={"X-Runbase-CSRF": "nope"})
        assert wrong.status_code == 403
        other = {"X-Runbase-CSRF": csrf, "Origin": "https://evil.example"}
        assert http.patch(where, json={"notes": "x"}, headers=other).status_code == 403
        same = {"X-Runbase-CSRF": csrf, "Origin": web_server.url}
        assert http.patch(where, json={"notes": "kept"}, headers=same).status_code == 200
    assert backend.get_run(RUN).notes == "kept"
    with client(web_server, auth=("api", web_server.key)) as http:  # a key needs no token
        assert http.patch(where, json={"notes": "by key"}).status_code == 200


def test_logout_ends_the_session(web_server):
    with logged_in(web_server) as http:
        cookie = http.cookies["runbase_session"]
        csrf = http.get("/api/v1/session").json()["csrf"]
        assert http.post("/logout").status_code == 403
        answer = http.post("/logout", headers={"X-Runbase-CSRF": csrf})
        assert answer.status_code == 303 and answer.headers["location"] == "/login"
    with client(web_server, cookies={"runbase_session": cookie}) as http:
        assert http.get("/api/v1/session").status_code == 401
        assert http.get("/").headers["location"] == "/login?next=/"


def test_revoking_the_key_ends_its_sessions(web_server, accounts):
    with logged_in(web_server) as http:
        assert http.get("/api/v1/session").status_code == 200
        (key,) = accounts.list_keys("tester")
        accounts.revoke_key(key.id)
        assert http.get("/api/v1/session").status_code == 401


def test_sessions_expire_and_are_purged_when_seen_expired(backend, accounts, user_key):
    sessions = Sessions(accounts, lifetime=1.5)  # ample for the checks before it runs out
    token, session = sessions.start(user_key)
    other, _ = sessions.start(user_key)
    assert sessions.find(token).principal.user == "tester" == session.principal.user
    assert stored_sessions(accounts) == 2
    time.sleep(1.6)
    with pytest.raises(Unauthorized):
        sessions.find(token)
    assert stored_sessions(accounts) == 0  # both expired: purged without a login
    with pytest.raises(Unauthorized):
        sessions.find(other)
    with pytest.raises(Unauthorized):
        sessions.start("rb_" + "0" * 40)


def stored_sessions(accounts) -> int:
    with accounts.store.read() as conn:
        return conn.execute(select(func.count()).select_from(session_table)).scalar_one()


def test_another_entitys_project_is_not_found(web_server, backend):
    backend.create_run(RunPath("other", "secret", "r1"), NewRun(config={"a": 1}))
    backend.create_run(RUN, NewRun(config={"a": 1}))
    with logged_in(web_server) as http:
        assert http.get("/other/secret").status_code == 404
        assert http.get("/other/secret/runs/r1").status_code == 404
        assert http.get("/other/secret/compare").status_code == 404
        assert http.get("/tester/vision/runs/r1").status_code == 200
        assert http.get("/tester/vision/runs/nope").status_code == 404
        keys = http.get("/api/v1/keys", params={"entity": "other", "project": "secret"})
        assert keys.status_code == 404
        csrf = {"X-Runbase-CSRF": http.get("/api/v1/session").json()["csrf"]}
        body = {"entity": "other", "project": "secret"}
        assert http.post("/api/v1/runs/query", json=body, headers=csrf).status_code == 404
        projects = http.get("/api/v1/overview").json()["projects"]
        assert [(p["entity"], p["name"]) for p in projects] == [("tester", "vision")]
        assert http.get("/api/v1/session").json()["entities"] == ["tester"]


def test_without_accounts_nobody_logs_in_and_other_origins_cannot_change(ui_server, backend):
    backend.create_run(RUN, NewRun())
    with client(ui_server) as http:
        assert http.get("/login").headers["location"] == "/"
        assert http.get("/").status_code == 200
        session = http.get("/api/v1/session").json()
        assert session == {"user": "tester", "entities": ["tester"], "csrf": None, "login": False}
        where = "/api/v1/runs/tester/vision/r1"
        other = {"Origin": "http://evil.example"}
        assert http.patch(where, json={"notes": "x"}, headers=other).status_code == 403
        assert http.patch(where, json={"notes": "x"}).status_code == 200


@pytest.mark.parametrize(
    ("target", "expected"),
    [("/a/b?c=1", "/a/b?c=1"), ("//evil.example", "/"), ("https://evil.example/", "/"),
     ("/\\evil", "/"), ("", "/"), (None, "/"), ("a/b", "/"), ("/x\r\nSet-Cookie: a", "/")],
)  # fmt: skip
def test_next_stays_on_the_site(target, expected):
    assert safe_next(target) == expected


@pytest.mark.parametrize(
    ("host", "loopback"),
    [("127.0.0.1", True), ("::1", True), ("localhost", True), ("127.0.0.2", True),
     ("0.0.0.0", False), ("10.0.0.1", False), ("example.com", False)],
)  # fmt: skip
def test_loopback_hosts(host, loopback):
    assert is_loopback(host) is loopback


def test_ui_refuses_another_host_without_keys(data_dir):
    result = CliRunner().invoke(app, ["ui", "--host", "0.0.0.0", "--port", "1"])
    assert result.exit_code == 1
    assert "loopback" in result.output and "runbase key create" in result.output


def test_a_run_changed_through_the_dashboard_stays_the_users(web_server, backend):
    backend.create_run(RUN, NewRun())
    backend.update_run(RUN, RunChanges(tags=("a",)))
    with logged_in(web_server) as http:
        record = http.get("/api/v1/runs/tester/vision/r1").json()
        assert record["tags"] == ["a"] and record["read_only"] is False
