"""The dashboard in a real browser (Debian's chromium through playwright), over a live
server seeded through the backend. Assertions are on data in the DOM, not on pixels."""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

import pytest

from runbase.backend.base import HistoryRow, NewRun, RunPath
from runbase.backend.local import LocalBackend
from runbase.server import create_app
from runbase.store import Store
from tests.server.test_live import serve
from tests.web._browser import page_expecting

ENTITY = "tester"
BIG = 10_000
pytestmark = pytest.mark.slow


@dataclass(frozen=True)
class Seeded:
    url: str
    backend: LocalBackend


def log(backend: LocalBackend, path: RunPath, rows: list[dict[str, Any]], stream: str) -> None:
    history = [HistoryRow(i, row["_step"], tuple(sorted(row)), json.dumps(row))
               for i, row in enumerate(rows)]  # fmt: skip
    backend.append_history(path, stream, history, rows[-1])


@pytest.fixture(scope="module")
def seeded(tmp_path_factory):
    """``runbase ui`` over a store made once for the module (10,000 runs take seconds).
    Project ``big``: 10,000 runs (config.lr = i/10000). Project ``small``: four runs with
    100 steps of ``loss``, in two groups by ``config.opt``; ``s0`` has a file; ``s3`` a nested
    config (``model.depth``, ``model.act``) and a text key in its history (``phase``)."""
    backend = LocalBackend(Store.open(None, tmp_path_factory.mktemp("web-pages")), ENTITY)
    for i in range(BIG):
        backend.create_run(RunPath(ENTITY, "big", f"b{i:05d}"), NewRun(config={"lr": i / BIG}))
    for i, (opt, level) in enumerate([("adam", 1.0), ("adam", 3.0), ("sgd", 10.0), ("sgd", 20.0)]):
        path = RunPath(ENTITY, "small", f"s{i}")
        config: dict[str, Any] = {"opt": opt, "i": i, "epochs": 10}
        phase: dict[str, str] = {}
        if i == 3:
            config["model"] = {"depth": 4, "act": "relu"}
            phase = {"phase": "train"}
        backend.create_run(path, NewRun(display_name=f"run-{i}", config=config, tags=("base",)))
        rows = [{"_step": s, "loss": level + (s if i == 0 else 0), **phase} for s in range(100)]
        log(backend, path, rows, "default")
        log(backend, path, [{"_step": s, "cpu": 50.0} for s in range(10)], "system")
    backend.put_file(RunPath(ENTITY, "small", "s0"), "model.txt", iter([b"weights"]))
    with serve(create_app(backend)) as url:
        yield Seeded(url, backend)
    backend.close()


def open_page(page, seeded, path):
    page.goto(seeded.url + path)
    return page


def rows_in_dom(page):
    return page.locator(".tbody .tr").count()


def test_projects_page_lists_run_counts(page, seeded):
    open_page(page, seeded, "/")
    row = page.locator('tr[data-project="tester/big"]')
    row.wait_for()
    assert row.locator(".run-count").inner_text() == str(BIG)
    assert page.locator('tr[data-project="tester/small"] .run-count').inner_text() == "4"
    row.locator("a").click()
    page.wait_for_url("**/tester/big")
    page.locator(".run-count", has_text=f"{BIG} runs").wait_for()


def test_ten_thousand_runs_scroll_with_few_rows_in_the_dom(page, seeded):
    open_page(page, seeded, "/tester/big")
    page.locator(".run-count", has_text=f"{BIG} runs").wait_for()
    page.locator(".run-row").first.wait_for()
    assert page.locator(".run-row").first.get_attribute("data-run") == f"b{BIG - 1:05d}"
    most = rows_in_dom(page)
    body = page.locator(".tbody")
    for _ in range(60):
        body.evaluate("el => { el.scrollTop = el.scrollHeight; }")
        page.wait_for_timeout(100)
        most = max(most, rows_in_dom(page))
        if page.locator('.run-row[data-run="b00000"]').count():
            break
    assert page.locator('.run-row[data-run="b00000"]').count() == 1
    assert most <= 100
    # the same, as assistive tools see it: a table of 10,001 rows, a few of them present
    table = page.get_by_role("table", name="runs")
    assert table.get_attribute("aria-rowcount") == str(BIG + 1)
    assert table.get_by_role("row").count() <= 101
    assert table.get_by_role("row").last.get_attribute("aria-rowindex") == str(BIG + 1)


def test_sort_by_a_column_asks_the_server(page, seeded):
    open_page(page, seeded, "/tester/big")
    page.locator(".run-row").first.wait_for()
    header = page.locator('.th .col[data-key="config.lr"]')
    header.click()  # descending
    page.locator('.run-row[data-run="b09999"]').first.wait_for()
    header.click()  # ascending
    page.wait_for_function("() => document.querySelector('.run-row')?.dataset.run === 'b00000'")


def test_filter_shows_the_result_count_and_the_servers_message(browser, seeded):
    with page_expecting(browser, "status of 400") as page:  # the refused filter's request
        filter_runs(page, seeded)


def filter_runs(page, seeded):
    open_page(page, seeded, "/tester/big")
    page.locator(".run-count", has_text=f"{BIG} runs").wait_for()
    page.locator(".raw-filter").fill(json.dumps({"config.lr": {"$lt": 0.25}}))
    page.locator(".apply-filter").click()
    page.locator(".run-count", has_text="2500 runs").wait_for()
    page.locator(".add-condition").click()
    page.locator(".condition .field").fill("config.lr")
    page.locator(".condition .op").select_option(">=")
    page.locator(".condition .value").fill("0.2")
    page.locator(".apply-filter").click()
    page.locator(".run-count", has_text="500 runs").wait_for()
    page.locator(".raw-filter").fill(json.dumps({"config.lr": {"$size": -1}}))
    page.locator(".apply-filter").click()
    error = page.locator(".filter-error")
    error.wait_for()
    assert "non-negative integer" in error.inner_text()


def chart(page, metric):
    locator = page.locator(f'.chart[data-metric="{metric}"][data-state="painted"]')
    locator.wait_for()
    page.wait_for_timeout(50)
    return locator


def hover_at_x(page, chart_locator, fraction):
    box = chart_locator.locator(".u-over").bounding_box()
    page.mouse.move(box["x"] + box["width"] * fraction, box["y"] + box["height"] / 2)


def test_legend_shows_each_runs_value_under_the_mouse(page, seeded):
    open_page(page, seeded, "/tester/small")
    loss = chart(page, "loss")
    hover_at_x(page, loss, 0.5)
    x = float(loss.locator(".legend-x").inner_text().split()[-1])
    values = {
        item.get_attribute("data-curve"): float(item.locator(".legend-value").inner_text())
        for item in loss.locator(".legend-item").all()
    }
    step = round(x)
    assert values == {"s0": 1.0 + step, "s1": 3.0, "s2": 10.0, "s3": 20.0}


def test_drag_to_zoom_refetches_the_range(page, seeded):
    requests: list[Any] = []
    page.on("request", lambda r: requests.append(r) if "/history/buckets" in r.url else None)
    open_page(page, seeded, "/tester/small")
    loss = chart(page, "loss")
    before = len(requests)
    box = loss.locator(".u-over").bounding_box()
    y = box["y"] + box["height"] / 2
    page.mouse.move(box["x"] + box["width"] * 0.2, y)
    page.mouse.down()
    page.mouse.move(box["x"] + box["width"] * 0.4, y, steps=5)
    page.mouse.up()
    page.locator('.chart[data-metric="loss"] .chart-head button', has_text="reset zoom").wait_for()
    page.wait_for_timeout(300)
    zooms = [json.loads(r.post_data) for r in requests[before:]]
    assert len(zooms) == 1
    assert 15 <= zooms[0]["x_min"] <= 25 and 35 <= zooms[0]["x_max"] <= 45


def test_grouping_draws_each_groups_mean(page, seeded):
    open_page(page, seeded, "/tester/small")
    chart(page, "loss")
    page.locator(".group-by").select_option("config.opt")
    page.locator('.group-row[data-group="adam"]').wait_for()
    loss = page.locator('.chart[data-metric="loss"]')
    page.locator('.chart[data-metric="loss"] .legend-item[data-curve="group:sgd"]').count()
    page.wait_for_timeout(300)
    hover_at_x(page, loss, 0.999)
    sgd = loss.locator('.legend-item[data-curve="group:sgd"] .legend-value')
    sgd.wait_for()
    assert float(sgd.inner_text()) == 15.0
    adam = float(loss.locator('.legend-item[data-curve="group:adam"] .legend-value').inner_text())
    assert adam == pytest.approx((1.0 + 99 + 3.0) / 2)
    assert "(2)" in page.locator('.group-row[data-group="sgd"]').inner_text()


def test_run_page_edits_name_and_tags_and_lists_files(page, seeded):
    open_page(page, seeded, "/tester/small/runs/s1")
    page.locator(".edit-name").fill("renamed")
    page.locator(".edit-tags").fill("base, best")
    page.locator(".save-run").click()
    page.locator(".save-status", has_text="saved").wait_for()
    run = seeded.backend.get_run(RunPath(ENTITY, "small", "s1"))
    assert run.display_name == "renamed" and run.tags == ("base", "best")
    chart(page, "loss")
    chart(page, "cpu")
    assert page.locator('.doc-tree[data-doc="config"] tr[data-key="opt"] td').inner_text() == "adam"
    open_page(page, seeded, "/tester/small/runs/s0")
    link = page.locator('tr[data-file="model.txt"] a')
    link.wait_for()
    answer = page.request.get(seeded.url + link.get_attribute("href"))
    assert answer.body() == b"weights"


def test_run_page_shows_config_as_a_tree_and_charts_numbers_only(page, seeded):
    open_page(page, seeded, "/tester/small/runs/s3")
    config = page.locator('.doc-tree[data-doc="config"]')
    depth = config.locator('tr[data-key="model.depth"]')
    depth.wait_for()
    assert depth.locator("th").inner_text() == "depth"
    assert depth.locator("td").inner_text() == "4"
    assert config.locator('tr[data-branch="model"]').count() == 1
    config.locator(".tree-search").fill("act")
    keys = [row.get_attribute("data-key") for row in config.locator("tr[data-key]").all()]
    assert keys == ["model.act"]
    assert config.locator('tr[data-branch="model"]').count() == 1
    config.locator(".tree-search").fill("")
    config.locator('tr[data-branch="model"] .fold').click()
    assert config.locator('tr[data-key="model.depth"]').count() == 0
    assert config.locator('tr[data-key="opt"]').count() == 1
    chart(page, "loss")
    assert page.locator('.stream-default .chart[data-metric="phase"]').count() == 0


def test_compare_shows_differences_only_and_changes(page, seeded):
    open_page(page, seeded, "/tester/small/compare?runs=s0,s1,s2")
    chart(page, "loss")
    config = page.locator(".compare-config")
    config.locator('tr[data-key="opt"]').wait_for()
    assert config.locator("tr[data-key]").count() == 3  # epochs, i, opt
    page.locator(".diff-only").check()
    assert config.locator("tr[data-key]").count() == 2  # epochs is the same in all
    delta = page.locator('.compare-summary tr[data-key="loss"] td[data-run="s2"] .delta')
    assert delta.inner_text() == "-90 (-90%)"  # 10 against s0's 100
    page.locator(".baseline").select_option("s2")
    assert delta.count() == 0
    delta = page.locator('.compare-summary tr[data-key="loss"] td[data-run="s1"] .delta')
    assert delta.inner_text() == "-7 (-70%)"  # 3 against s2's 10


def drawn(page, metric, ready="u => true"):
    """The chart's uPlot data and scales, once drawn and ``ready`` (a JS predicate) holds."""
    handle = page.wait_for_function(
        f"""() => {{
          const u = document.querySelector('.chart[data-metric="{metric}"]')?.uplot;
          return u && ({ready})(u) && {{data: u.data, distr: u.scales.y.distr,
            x: [u.scales.x.min, u.scales.x.max], labels: u.series.map((s) => s.label)}};
        }}"""
    )
    return handle.json_value()


def test_log_scale_turns_the_y_axis_logarithmic(page, seeded):
    open_page(page, seeded, "/tester/small")
    assert drawn(page, "loss")["distr"] == 1
    page.locator(".log-y").check()
    assert drawn(page, "loss", "u => u.scales.y.distr === 3")["distr"] == 3


def test_ema_smoothing_draws_the_ema_over_the_raw_curve(page, seeded):
    open_page(page, seeded, "/tester/small")
    chart(page, "loss")
    page.locator(".smoothing").select_option("ema")
    # per curve: band top, band bottom, raw, smoothed (the last two labelled); s0's loss is
    # 1 + step
    found = drawn(page, "loss", "u => u.series.length === 1 + 4 * 4")
    labels = found["labels"]
    raw, smoothed = (found["data"][i] for i, label in enumerate(labels) if label == "run-0")
    weight, last, debias, expected = 0.6, 0.0, 0.0, []
    for step in range(100):
        last = last * weight + (1 - weight) * (1.0 + step)
        debias = debias * weight + (1 - weight)
        expected.append(last / debias)
    assert found["data"][0] == list(range(100))
    assert raw == [1.0 + step for step in range(100)]
    assert smoothed == pytest.approx(expected)
    assert smoothed[50] < raw[50] - 1  # lags the rising raw curve


def test_the_x_axis_may_be_any_history_key(page, seeded):
    open_page(page, seeded, "/tester/small")
    assert drawn(page, "loss")["x"] == [0, 99]
    page.locator('.x-axis option[value="loss"]').wait_for(state="attached")
    options = page.locator(".x-axis option").all_inner_texts()
    assert {"_step", "_runtime", "_timestamp", "loss"} <= set(options)
    assert "phase" not in options  # s3 logs it, but as text
    page.locator(".x-axis").select_option("loss")
    # loss over loss: s0 from 1 to 100, the others one value each
    found = drawn(page, "loss", "u => u.data[0][0] === 1")
    assert found["x"] == [1, 100]
    assert sorted(found["data"][0]) == [1.0 + step for step in range(100)]


def test_a_group_band_may_be_its_standard_deviation(page, seeded):
    open_page(page, seeded, "/tester/small")
    chart(page, "loss")
    page.locator(".group-by").select_option("config.epochs")  # one group of all four
    top = drawn(page, "loss", "u => u.series.length === 4")["data"][1][-1]
    assert top == 100.0  # min/max: s0's last loss
    page.locator(".band").select_option("std")
    found = drawn(page, "loss", "u => u.data[1].at(-1) !== 100")["data"]
    last = [100.0, 3.0, 10.0, 20.0]
    mean = sum(last) / 4
    sd = (sum((v - mean) ** 2 for v in last) / 4) ** 0.5
    assert (found[1][-1], found[2][-1], found[3][-1]) == pytest.approx((mean + sd, mean - sd, mean))


def test_a_running_run_updates_in_place_by_polling(page, seeded):
    path = RunPath(ENTITY, "live", "l0")
    seeded.backend.create_run(path, NewRun(display_name="live-0"))
    seeded.backend.update_summary(path, {"acc": 0.25})
    queries: list[Any] = []
    page.on("request", lambda r: queries.append(r) if r.url.endswith("/runs/query") else None)
    open_page(page, seeded, "/tester/live")
    acc = '.run-row[data-run="l0"] .td[data-key="summary_metrics.acc"]'
    cell = page.locator(acc)
    cell.wait_for()
    assert cell.inner_text() == "0.25"
    page.evaluate("window.notReloaded = true")
    seeded.backend.update_summary(path, {"acc": 0.75})
    page.wait_for_function(
        "acc => document.querySelector(acc)?.innerText === '0.75'", arg=acc, timeout=15_000
    )
    assert page.evaluate("window.notReloaded") is True
    assert len(queries) <= 5  # the first page(s), then one small poll every 5 s


def test_runs_made_after_the_page_loaded_are_offered_then_shown(page, seeded):
    first = RunPath(ENTITY, "growing", "g0")
    seeded.backend.create_run(first, NewRun(display_name="growing-0"))
    open_page(page, seeded, "/tester/growing")
    page.locator('.run-row[data-run="g0"]').wait_for()
    assert page.locator(".new-runs").count() == 0
    for n in (1, 2):
        seeded.backend.create_run(RunPath(ENTITY, "growing", f"g{n}"), NewRun())
    offer = page.locator(".new-runs", has_text="2 new runs")
    offer.wait_for(timeout=15_000)  # the next poll (every 5 s) counts them
    assert page.locator(".run-row").count() == 1  # not pushed under the reader
    offer.click()
    page.locator(".run-count", has_text="3 runs").wait_for()
    page.locator('.run-row[data-run="g2"]').wait_for()
    assert [row.get_attribute("data-run") for row in page.locator(".run-row").all()] == [
        "g2",
        "g1",
        "g0",
    ]
    assert page.locator(".new-runs").count() == 0


def test_the_workspace_charts_the_logged_numbers_only(page, seeded):
    open_page(page, seeded, "/tester/small")
    chart(page, "loss")
    charted = [c.get_attribute("data-metric") for c in page.locator(".charts .chart").all()]
    assert charted == ["loss"]  # not s3's text key "phase", nor the system stream's "cpu"


def test_run_and_compare_pages_have_the_chart_controls(page, seeded):
    open_page(page, seeded, "/tester/small/runs/s0")
    charts = page.locator(".stream-default")
    assert drawn(page, "loss")["distr"] == 1
    charts.locator(".log-y").check()
    assert drawn(page, "loss", "u => u.scales.y.distr === 3")["distr"] == 3
    charts.locator('.x-axis option[value="loss"]').wait_for(state="attached")
    charts.locator(".x-axis").select_option("loss")
    assert drawn(page, "loss", "u => u.data[0][0] === 1")["x"] == [1, 100]  # loss over loss
    open_page(page, seeded, "/tester/small/compare?runs=s0,s2")
    chart(page, "loss")
    page.locator(".smoothing").select_option("ema")
    labels = drawn(page, "loss", "u => u.series.length === 9")["labels"]
    # per run: its band's two edges, the faint raw curve, the smoothed one
    assert labels[3:5] == ["run-0", "run-0"] and labels[7:9] == ["run-2", "run-2"]
