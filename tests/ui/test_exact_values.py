"""Numbers the dashboard rounds keep their every digit in a tooltip, and every date or
time it shows says its zone (UTC, whatever the browser's zone: these pages run in
Asia/Kolkata, UTC+05:30, so a local time would read 5 h 30 min off).  A database of its
own, written through the real SQLLogger and Registry; Debian's Chromium via Playwright."""

from __future__ import annotations

import csv
import json
import os
from datetime import datetime, timezone

import pytest

from ato.adict import ADict

FULL = 0.123456789012  # shown as 0.123457
ZONE = "Asia/Kolkata"


def populate(url: str, root) -> dict:
    """Project ``exact``: run ``a`` (lr = FULL, loss ending at FULL, a dataset used and a
    model logged with score FULL, alias ``best``) and run ``b`` (lr 0.5, loss ending at
    0.25)."""
    from ato.db_routers.sql.manager import SQLLogger

    store = str(root / "store")

    def logger(**values):
        config = ADict(experiment={"project_name": "exact", "sql": {"db_path": url, "store": store}},
                       **values)
        return SQLLogger(config, flush_interval=60, heartbeat_interval=3600, handle_signals=False)

    data = root / "data.bin"
    data.write_bytes(b"d" * 5000)
    weights = root / "w.pt"
    weights.write_bytes(b"w" * 3000)
    ids = {}
    for name, lr, last in (("a", FULL, FULL), ("b", 0.5, 0.25)):
        log = logger(lr=lr, seed=1)
        with log:
            ids[name] = log.get_current_run_id()
            for step, v in enumerate([1.0, 0.5, last]):
                log.log_metric("loss", v, step)
            if name == "a":
                log.use_dataset("samples", data)
                log.log_model("net", weights, step=2, score=FULL, aliases=["best"])
    return ids


@pytest.fixture(scope="module")
def exact_server(tmp_path_factory):
    from tests.ui.conftest import served

    root = tmp_path_factory.mktemp("exact")
    before = os.environ.get("ATO_CACHE_DIR")
    os.environ["ATO_CACHE_DIR"] = str(root / "statcache")
    try:
        url = f"sqlite:///{root / 'experiments.db'}"
        info = populate(url, root)
    finally:
        if before is None:
            os.environ.pop("ATO_CACHE_DIR", None)
        else:
            os.environ["ATO_CACHE_DIR"] = before
    yield from served(url, info)


@pytest.fixture
def xpage(browser, exact_server, artifacts):
    from tests.ui.conftest import browser_page

    yield from browser_page(browser, exact_server.base, artifacts, accept_downloads=True,
                            timezone_id=ZONE)


def _run(server, run_id) -> dict:
    import urllib.request

    with urllib.request.urlopen(f"{server.base}api/run/{run_id}") as r:
        return json.loads(r.read())


def _utc(t: float) -> str:
    return datetime.fromtimestamp(t, timezone.utc).strftime("%Y-%m-%d %H:%M:%S")


def _cell(page, run_id, column):
    """The text and tooltip of the runs table's cell of ``column`` (a column id) in the
    row of ``run_id``."""
    return page.evaluate("""([run, col]) => {
        const heads = [...document.querySelector('.thead').children];
        const i = heads.findIndex((h) => h.dataset.testid === 'col-' + col);
        const td = document.querySelector(`[data-testid='row-${run}']`).children[i];
        return { text: td.textContent, title: td.title };
    }""", [run_id, column])


def test_runs_table_cells_carry_the_full_value_and_times_say_utc(xpage, exact_server):
    a = exact_server.info["a"]
    xpage.open("#/runs?project=exact")
    xpage.wait_for_selector("[data-testid='runs-table'][data-ready='1']")
    assert _cell(xpage, a, "c:lr") == {"text": "0.123457", "title": repr(FULL)}
    assert _cell(xpage, a, "m:last:loss") == {"text": "0.123457", "title": repr(FULL)}
    # a value shown whole keeps itself as its tooltip
    assert _cell(xpage, exact_server.info["b"], "c:lr") == {"text": "0.5", "title": "0.5"}
    # the start column says UTC, and its time is UTC although the browser is at +05:30
    assert xpage.inner_text("[data-testid='col-start']").strip() == "start (UTC)"
    start = _run(exact_server, a)["start"]
    cell = _cell(xpage, a, "start")
    assert cell["text"] == _utc(start)
    assert datetime.fromisoformat(cell["title"]).timestamp() == pytest.approx(start, abs=1e-3)
    assert cell["title"].endswith("+00:00")
    xpage.shot("exact-runs")


def test_csv_has_iso_times_with_offset_and_every_digit(xpage, exact_server):
    a = exact_server.info["a"]
    xpage.open("#/runs?project=exact")
    xpage.wait_for_selector("[data-testid='runs-table'][data-ready='1']")
    with xpage.expect_download() as download:
        xpage.click("[data-testid='export-csv']")
    rows = list(csv.DictReader(open(download.value.path(), encoding="utf-8", newline="")))
    row = next(r for r in rows if r["id"] == str(a))
    start = datetime.fromisoformat(row["start"])
    assert row["start"].endswith("+00:00") and start.utcoffset().total_seconds() == 0
    assert start.timestamp() == pytest.approx(_run(exact_server, a)["start"], abs=1e-3)
    assert float(row["lr"]) == FULL and float(row["loss last"]) == FULL


def test_run_page_numbers_and_times(xpage, exact_server):
    a = exact_server.info["a"]
    run = _run(exact_server, a)
    xpage.open(f"#/run/{a}")
    xpage.wait_for_selector("[data-testid='chart-card']:first-child[data-drawn]")
    lr = xpage.locator("[data-testid='config-value']", has_text="0.123457")
    assert lr.count() == 1 and lr.get_attribute("title") == repr(FULL)
    last = xpage.locator("[data-testid='run-metrics'] td.num").first  # loss: last
    assert last.inner_text() == "0.123457" and last.get_attribute("title") == repr(FULL)
    facts = xpage.inner_text("[data-testid='run-facts']")
    assert "started (UTC)" in facts and "ended (UTC)" in facts
    assert xpage.inner_text("[data-testid='run-started']") == _utc(run["start"])
    assert xpage.inner_text("[data-testid='run-ended']") == _utc(run["end"])
    assert xpage.get_attribute("[data-testid='run-duration']", "title") == f"{run['duration']!r} s"
    # the hover value of a chart is the full value too (its legend), not uPlot's 3 decimals
    over = xpage.locator("[data-testid='chart-card'] .u-over").bounding_box()
    xpage.mouse.move(over["x"] + over["width"] - 2, over["y"] + over["height"] / 2)  # step 2
    value = xpage.locator("[data-testid='chart-card'] .u-legend .u-series").nth(1).locator(".u-value")
    xpage.wait_for_function("v => document.querySelectorAll(\"[data-testid='chart-card'] .u-legend .u-value\")[1]"
                            "?.textContent === v", arg=repr(FULL))
    assert value.inner_text() == repr(FULL)
    xpage.shot("exact-run")


def test_run_io_box_is_as_wide_as_the_boxes_above(xpage, exact_server):
    xpage.set_viewport_size({"width": 1900, "height": 900})  # wider than the old 1100px cap
    xpage.open(f"#/run/{exact_server.info['a']}")
    xpage.wait_for_selector("[data-testid='input-row']")
    above = xpage.locator(".two-col").bounding_box()
    io = xpage.locator("[data-testid='run-io']").bounding_box()
    assert io["width"] == pytest.approx(above["width"], abs=1)
    assert io["x"] == pytest.approx(above["x"], abs=1)
    xpage.shot("exact-run-io-width")


def test_compare_values_and_deltas_carry_the_full_value(xpage, exact_server):
    a, b = exact_server.info["a"], exact_server.info["b"]
    xpage.open(f"#/compare?runs={a},{b}")
    xpage.wait_for_selector("[data-testid='metric-compare']")
    final = xpage.locator("[data-testid='metric-row']", has_text="loss final").locator("td.num")
    assert final.nth(0).inner_text() == "0.123457"
    assert final.nth(0).get_attribute("title") == repr(FULL)
    d = 0.25 - FULL
    assert final.nth(1).inner_text() == "0.25 (+0.126543)"
    assert final.nth(1).get_attribute("title") == f"0.25 (+{d!r})"
    # equal values: no tooltip is needed (nothing was rounded)
    first = xpage.locator("[data-testid='metric-row']", has_text="loss max").locator("td.num")
    assert first.nth(1).inner_text() == "1 (±0)" and first.nth(1).get_attribute("title") is None
    lr = xpage.locator("[data-testid='diff-row']", has_text="lr").locator("td").nth(1)
    assert lr.inner_text() == "0.123457" and lr.get_attribute("title") == repr(FULL)
    xpage.shot("exact-compare")


def test_models_page_scores_sizes_and_times(xpage, exact_server):
    xpage.open("#/models/model/net?project=exact")
    xpage.wait_for_selector("[data-testid='versions']")
    score = xpage.locator("[data-testid='version-score']").first
    assert score.inner_text() == "0.123457" and score.get_attribute("title") == repr(FULL)
    headers = xpage.locator("[data-testid='versions'] th").all_inner_texts()
    assert "created (UTC)" in headers and "created" not in headers
    size = xpage.locator("[data-testid='version-row'] td.num").first
    assert size.inner_text() == "2.93 KiB" and size.get_attribute("title") == "3,000 bytes"
    history = xpage.locator("[data-testid='alias-history'] th").all_inner_texts()
    assert history[0] == "when (UTC)"
    when = xpage.locator("[data-testid='alias-move'] td").first
    assert datetime.fromisoformat(when.get_attribute("title")).strftime("%Y-%m-%d %H:%M:%S") \
        == when.inner_text()
    produced = xpage.inner_text("[data-testid='produced-started']")
    assert produced.endswith(" UTC")
    run = _run(exact_server, exact_server.info["a"])
    assert produced == _utc(run["start"]) + " UTC"
    # the dataset's page: the runs that used it, their start in UTC
    xpage.open("#/models/dataset/samples?project=exact")
    xpage.wait_for_selector("[data-testid='lineage-runs']")
    assert xpage.locator("[data-testid='lineage-runs'] th").all_inner_texts()[-1] == "started (UTC)"
    assert xpage.locator("[data-testid='lineage-runs'] td").last.inner_text() == _utc(run["start"])
    xpage.shot("exact-models")


def test_wall_time_axis_is_utc_in_any_browser_zone(xpage, exact_server):
    xpage.open(f"#/charts?runs={exact_server.info['a']}&x=wall")
    xpage.wait_for_selector("[data-testid='chart-card'][data-xticks]")
    legend = xpage.inner_text("[data-testid='chart-card'] .u-legend")
    assert "time (UTC)" in legend
    # the formatting itself, in this +05:30 browser: the epoch is midnight UTC, and ticks
    # an hour apart fall on whole UTC hours
    got = xpage.evaluate("""async () => {
        const u = await import('/static/js/util.js');
        const c = await import('/static/js/charts.js');
        return { time: u.fmtTime(0), when: u.fmtWhen(90), iso: u.isoTime(1.5),
                 ticks: c.wallTicks([0, 3600, 7200]), offset: new Date(0).getTimezoneOffset() };
    }""")
    assert got == {"time": "1970-01-01 00:00:00", "when": "1970-01-01 00:01:30 UTC",
                   "iso": "1970-01-01T00:00:01.500+00:00", "ticks": ["00:00", "01:00", "02:00"],
                   "offset": -330}
    ticks = [t for t in json.loads(xpage.get_attribute("[data-testid='chart-card']", "data-xticks")) if t]
    start = _run(exact_server, exact_server.info["a"])["start"]
    # the run lasted well under a minute: every tick is near its UTC start time of day
    assert ticks and all(t[:5] in {_utc(start + d)[11:16] for d in (-60, 0, 60)} for t in ticks), ticks


def test_parallel_coordinates_and_scatter_name_each_axis_in_full(xpage):
    xpage.open("#/runs?project=exact&pc=1")
    box = xpage.wait_for_selector("[data-testid='parallel'][data-ready='1']")
    canvas = box.query_selector("canvas")
    frame = canvas.bounding_box()
    xpage.mouse.move(frame["x"] + 50, frame["y"] + 150)  # on the first axis, lr
    assert canvas.get_attribute("title") == f"lr: {FULL!r} to 0.5"
    xpage.mouse.move(frame["x"] + frame["width"] - 50, frame["y"] + 150)  # the metric's
    assert canvas.get_attribute("title") == f"loss (last): {FULL!r} to 0.25"
    xpage.mouse.move(frame["x"] + frame["width"] / 2, frame["y"] + 150)  # between axes
    assert canvas.get_attribute("title") == "drag along an axis to brush a range"
    scatter = xpage.wait_for_selector("[data-testid='scatter'][data-ready='1'] canvas")
    assert scatter.get_attribute("title").splitlines()[1:] == [
        f"lr: {FULL!r} to 0.5", f"loss (last): {FULL!r} to 0.25"]


def test_values_that_round_alike_are_two_groups_and_legend_labels_are_full(xpage, exact_server):
    xpage.open(f"#/charts?runs={exact_server.info['a']}")
    got = xpage.evaluate("""async () => {
        const c = await import('/static/js/charts.js');
        const run = (lr) => ({ config: { lr } });
        return [c.groupKey(run(0.1234567), 'c:lr'), c.groupKey(run(0.1234568), 'c:lr'),
                c.groupKey(run(0.5), 'c:lr')];
    }""")
    assert got == ["lr=0.1234567", "lr=0.1234568", "lr=0.5"]
    a, b = exact_server.info["a"], exact_server.info["b"]
    xpage.open(f"#/charts?runs={a},{b}&legend=lr")
    xpage.wait_for_selector("[data-testid='chart-card']:first-child[data-drawn]")
    legend = xpage.inner_text("[data-testid='chart-card'] .u-legend")
    assert f"#{a} lr={FULL!r}" in legend and f"#{b} lr=0.5" in legend


def test_a_step_past_2_53_shows_exactly_on_the_run_page(xpage, exact_server):
    """The run page's "last step" of a metric at step 2^63 - 1 read
    9,223,372,036,854,776,000 (the JSON number through a JavaScript Number): it reads
    the exact digits the API wrote; a small step is unchanged."""
    from tests.ui.populate import logger_for

    log = logger_for(exact_server.url, "bigsteps")
    run_id = log.run()
    log.log_metric("tokens", 1.0, 2**53 + 1)
    log.log_metric("tokens", 2.0, 2**63 - 1)
    log.log_metric("loss", 0.5, 7)
    log.finish("completed")
    xpage.open(f"#/run/{run_id}")
    table = xpage.wait_for_selector("[data-testid='run-metrics']")
    rows = {r[0]: r for r in (row.split("\t") for row in table.inner_text().splitlines()[1:])}
    assert rows["tokens"][-1] == "9,223,372,036,854,775,807", rows
    assert rows["tokens"][-2] == "2" and rows["loss"][-1] == "7", rows
