"""The dashboard's pages and JSON endpoints as the server answers them."""

from __future__ import annotations

import json
import time

import httpx
import pytest

from runbase.backend.base import HistoryRow, NewRun, RunChanges, RunPath, RunQuery
from runbase.server.web import pages
from runbase.server.web.pages import CSP
from tests.web._browser import page_expecting
from tests.web.conftest import login

RUN = RunPath("tester", "vision", "r1")


@pytest.fixture
def http(ui_server):
    with httpx.Client(base_url=ui_server.url, timeout=30) as client:
        yield client


def test_every_page_answers_the_shell_with_security_headers(http, backend):
    backend.create_run(RUN, NewRun())
    for path in ("/", "/tester/vision", "/tester/vision/runs/r1", "/tester/vision/compare"):
        answer = http.get(path)
        assert answer.status_code == 200, path
        assert answer.headers["content-security-policy"] == CSP
        assert answer.headers["x-content-type-options"] == "nosniff"
        assert answer.headers["referrer-policy"] == "same-origin"
        assert '<script defer src="/static/app.js?v=' in answer.text
        assert "<style" not in answer.text and "<script>" not in answer.text


def test_the_bundle_is_cached_by_version_and_revalidated_by_etag(http):
    version = http.get("/").text.split("app.js?v=")[1].split('"')[0]
    versioned = http.get(f"/static/app.js?v={version}")
    assert versioned.status_code == 200 and "immutable" in versioned.headers["cache-control"]
    plain = http.get("/static/app.js")
    assert plain.headers["cache-control"] == "no-cache"
    again = http.get("/static/app.js", headers={"If-None-Match": plain.headers["etag"]})
    assert again.status_code == 304
    assert http.get("/static/nothing.js").status_code == 404


def test_api_paths_are_never_pages(http):
    assert http.get("/api/v1").json()["code"] == "not_found"
    assert http.get("/graphql/x").status_code == 404
    assert http.get("/healthz").json() == {"ok": True}
    assert http.get("/docs").status_code == 200
    paths = http.get("/openapi.json").json()["paths"]
    assert {"/api/v1/session", "/api/v1/overview", "/api/v1/keys"} <= set(paths)
    assert not any(path.startswith("/{entity}") for path in paths)


def test_a_server_without_the_bundle_says_how_to_build_it(http, monkeypatch, tmp_path):
    monkeypatch.setattr(pages, "STATIC", tmp_path / "static")
    answer = http.get("/")
    assert answer.status_code == 503 and "npm ci &amp;&amp; npm run build" in answer.text
    assert "pip install -e ." in answer.text
    assert http.get("/static/app.js").status_code == 404


def test_overview_lists_projects_by_last_activity(http, backend):
    backend.create_run(RunPath("tester", "old", "a"), NewRun())
    backend.create_run(RunPath("tester", "empty", "a"), NewRun())
    backend.delete_run(RunPath("tester", "empty", "a"))
    time.sleep(0.01)
    backend.create_run(RUN, NewRun())
    backend.create_run(RunPath("tester", "vision", "r2"), NewRun())
    projects = http.get("/api/v1/overview").json()["projects"]
    assert [(p["name"], p["run_count"]) for p in projects] == [
        ("vision", 2), ("old", 1), ("empty", 0)
    ]  # fmt: skip
    assert projects[0]["last_activity"] >= projects[1]["last_activity"]
    assert projects[2]["last_activity"] is None


def test_keys_lists_distinct_leaves_filtered(http, backend):
    config = {"lr": 0.1, "optimizer": {"name": "adam", "betas": [0.9, 0.99]}, "a.b": 1}
    backend.create_run(RUN, NewRun(config=config))
    backend.create_run(RunPath("tester", "vision", "r2"), NewRun(config={"lr": 0.2, "seed": 1}))
    backend.update_summary(RUN, {"loss": 0.5, "val": {"acc": 0.9}})
    params = {"entity": "tester", "project": "vision"}
    keys = http.get("/api/v1/keys", params=params).json()
    assert keys == {"keys": ["a\\.b", "lr", "optimizer.betas", "optimizer.name", "seed"],
                    "total": 5}  # fmt: skip
    found = http.get("/api/v1/keys", params={**params, "q": "OPT", "limit": 1}).json()
    assert found == {"keys": ["optimizer.betas"], "total": 2}
    summary = http.get("/api/v1/keys", params={**params, "kind": "summary"}).json()
    assert summary["keys"] == ["loss", "val.acc"]
    backend.update_config(RUN, {"new": 1})  # the cache sees changes
    assert "new" in http.get("/api/v1/keys", params=params).json()["keys"]


def test_metrics_are_the_logged_keys_whose_values_are_numbers(http, backend):
    """As wandb logs them: numbers, NaN, text, a histogram (a dict), and a summary-only value."""
    other = RunPath("tester", "vision", "r2")
    histogram = {"_type": "histogram", "bins": [0, 1], "values": [3]}
    for path, extra in ((RUN, {"acc": 0.5}), (other, {"grad": float("nan")})):
        backend.create_run(path, NewRun())
        row = {"_step": 0, "_runtime": 1.0, "loss": 1.0, "phase": "warmup", "hist": histogram}
        row.update(extra)
        backend.append_history(
            path, "default", [HistoryRow(0, 0, tuple(sorted(row)), json.dumps(row))], row
        )
        backend.update_summary(path, {"best": 0.9})
    elsewhere = RunPath("tester", "other", "r3")
    backend.create_run(elsewhere, NewRun())
    row = {"_step": 0, "theirs": 1.0}
    rows = [HistoryRow(0, 0, ("_step", "theirs"), json.dumps(row))]
    backend.append_history(elsewhere, "default", rows, row)
    params = {"entity": "tester", "project": "vision", "kind": "metrics"}
    assert http.get("/api/v1/keys", params=params).json() == {
        "keys": ["acc", "grad", "loss"],
        "total": 3,
    }
    assert http.get("/api/v1/keys", params={**params, "q": "LO"}).json()["keys"] == ["loss"]


@pytest.mark.parametrize(
    ("params", "named"),
    [({"kind": "history"}, "kind"), ({"limit": 0}, "limit"), ({"limit": "x"}, "limit"),
     ({"entity": None}, "entity")],
)  # fmt: skip
def test_bad_key_requests_name_the_parameter(http, backend, params, named):
    backend.create_run(RUN, NewRun())
    query = {"entity": "tester", "project": "vision", **params}
    answer = http.get("/api/v1/keys", params={k: v for k, v in query.items() if v is not None})
    assert answer.status_code == 400 and named in answer.json()["message"]


def test_keys_are_searched_among_100000_distinct_keys(backend):
    for i in range(10):
        config = {f"group{i}": {f"key{j}": j for j in range(10_000)}}
        backend.create_run(RunPath("tester", "wide", f"r{i}"), NewRun(config=config))
    first = backend.document_keys("tester", "wide", "config", "", 200)
    found = backend.document_keys("tester", "wide", "config", "key9999", 200)
    assert first.total == 100_000 and len(first.keys) == 200
    assert found.total == 10 and found.keys == [f"group{i}.key9999" for i in range(10)]


def test_query_keeps_only_the_columns_asked_for(http, backend):
    backend.create_run(RUN, NewRun(config={"lr": 0.1, "opt": {"lr": 2}, "big": "x" * 1000}))
    backend.update_summary(RUN, {"loss": 0.5, "other": 1})
    body = {
        "entity": "tester",
        "project": "vision",
        "columns": ["config.lr", "config.opt.lr", "summary_metrics.loss", "config.none"],
    }
    (item,) = http.post("/api/v1/runs/query", json=body).json()["items"]
    assert item["config"] == {"lr": 0.1, "opt.lr": 2} and item["summary"] == {"loss": 0.5}
    assert item["metadata"] == {} and item["run_id"] == "r1"
    bad = http.post("/api/v1/runs/query", json={**body, "columns": ["state"]})
    assert bad.status_code == 400 and "columns" in bad.json()["message"]
    bad = http.post("/api/v1/runs/query", json={**body, "columns": "config.lr"})
    assert bad.status_code == 400 and "columns" in bad.json()["message"]


def test_polling_by_updated_at_with_a_cursor_sees_only_changes(backend):
    for i in range(5):
        backend.create_run(RunPath("tester", "vision", f"r{i}"), NewRun())
    seen = max(r.updated_at for r in backend.query_runs(RunQuery("tester", "vision")).items)
    time.sleep(0.01)
    for i in (1, 3, 4):
        backend.update_run(RunPath("tester", "vision", f"r{i}"), RunChanges(notes="x"))
    changed, cursor = [], None
    while True:
        query = RunQuery("tester", "vision", {"updated_at": {"$gt": seen}}, "+updated_at", 2,
                         cursor)  # fmt: skip
        page = backend.query_runs(query)
        changed += [record.run_id for record in page.items]
        if (cursor := page.next_cursor) is None:
            break
    assert changed == ["r1", "r3", "r4"]


def test_logging_in_through_the_browser(web_server, backend, page):
    backend.create_run(RUN, NewRun())
    page.goto(web_server.url + "/tester/vision")
    assert "/login?next=" in page.url
    login(page, web_server, "/tester/vision")
    assert page.locator('meta[name="runbase-csrf"]').get_attribute("content")


def test_another_entitys_project_is_not_found_in_the_browser(web_server, backend, browser):
    backend.create_run(RunPath("other", "secret", "r1"), NewRun(config={"a": 1}))
    with page_expecting(browser, "404") as page:
        login(page, web_server, "/")
        answer = page.goto(web_server.url + "/other/secret")
        assert answer is not None and answer.status == 404
        assert "Not found" in page.locator("body").inner_text()


def test_logging_out_through_the_browser(web_server, backend, page):
    backend.create_run(RUN, NewRun())
    login(page, web_server, "/tester/vision")
    assert any(c["name"] == "runbase_session" for c in page.context.cookies())
    page.locator("button.logout").click()
    page.wait_for_url(web_server.url + "/login")
    page.locator("input[name=key]").wait_for()
    assert not any(c["name"] == "runbase_session" for c in page.context.cookies())
    assert page.request.get(web_server.url + "/api/v1/session").status == 401


def test_the_icon_is_served_before_login(web_server):
    answer = httpx.get(web_server.url + "/favicon.ico")
    assert answer.status_code == 200
    assert answer.headers["content-type"] == "image/svg+xml"
    assert answer.content.startswith(b"<svg")
    login_page = httpx.get(web_server.url + "/login").text
    assert '<link rel="icon" href="/favicon.ico"' in login_page
