"""The dashboard in Debian's Chromium (Playwright): every row, filter and sort, charts,
compare, live points, escaping, parallel coordinates, the search ladder, exports.
Each test waits on explicit ready markers, never on network idle, and saves a screenshot."""

from __future__ import annotations

import json
import time
from urllib.parse import quote

import pytest

from tests.ui.populate import XSS_IMG, XSS_SCRIPT, config_for, logger_for

COUNT = "[data-testid='row-count']"


def drag_x(page, card, start: float, end: float) -> None:
    """Drag across ``card``'s plot from ``start`` to ``end`` (fractions of its width)."""
    box = card.locator(".u-over").bounding_box()
    page.mouse.move(box["x"] + box["width"] * start, box["y"] + 40)
    page.mouse.down()
    page.mouse.move(box["x"] + box["width"] * end, box["y"] + 40, steps=5)
    page.mouse.up()


def test_runs_table_shows_all_1000_rows(page, server):
    page.open("#/runs?project=sweep")
    page.wait_for_selector("[data-testid='runs-table'][data-ready='1']")
    assert page.get_attribute(COUNT, "data-count") == "1000"
    rendered = page.locator(".tr").count()
    assert 20 < rendered < 150  # virtualised: only what is on screen
    page.shot("runs-top")
    last = server.info["sweep"][-1]
    page.eval_on_selector("[data-testid='runs-table']", "t => t.scrollTop = t.scrollHeight")
    page.wait_for_selector(f"[data-testid='row-{last}']")
    page.shot("runs-bottom")
    # varying config keys are columns; the constant ones are counted, not shown
    headers = page.locator(".thead .th").all_inner_texts()
    assert {"lr", "batch_size", "seed", "model.name"} <= {h.strip() for h in headers}
    assert "model.dropout" not in {h.strip() for h in headers}
    assert "constant config keys hidden" in page.inner_text("[data-testid='toggle-constant']")
    assert "loss last" in {h.strip() for h in headers}


def test_the_id_column_stays_in_view_when_the_table_scrolls_sideways(page, server):
    page.set_viewport_size({"width": 700, "height": 800})
    page.open("#/runs?project=sweep")
    page.wait_for_selector("[data-testid='runs-table'][data-ready='1']")
    first = server.info["sweep"][0]
    link = page.locator(f"[data-testid='row-{first}'] [data-testid='run-link']")
    before = link.bounding_box()
    page.eval_on_selector("[data-testid='runs-table']", "t => t.scrollLeft = t.scrollWidth")
    page.wait_for_function("document.querySelector(\"[data-testid='runs-table']\").scrollLeft > 300")
    after = link.bounding_box()
    assert abs(after["x"] - before["x"]) < 1, (before, after)
    # and nothing scrolled under it shows through: the id is what is at its place
    hit = page.evaluate("([x, y]) => document.elementFromPoint(x, y).closest('.td')?.textContent",
                        [after["x"] + 4, after["y"] + after["height"] / 2])
    assert hit == str(first)
    page.shot("runs-scrolled-sideways")


def test_numbers_in_the_runs_table_are_never_cut(page, server):
    log = logger_for(server.url, "narrow")
    for value in (0.00543812345, -0.000174512345, 123456.789, 1.5e-300):
        log.run()
        log.log_metric("l", value, 0)  # a short key: the columns are as narrow as can be
        log.finish()
    page.open("#/runs?project=narrow")
    page.wait_for_selector("[data-testid='runs-table'][data-ready='1']")
    cut = page.eval_on_selector_all(
        ".tr .td.num", "cells => cells.filter(c => c.scrollWidth > c.clientWidth)"
                       ".map(c => c.textContent)")
    assert page.locator(".tr .td.num").count() == 12 and cut == []


def test_a_legend_taller_than_its_box_says_it_scrolls(page, server):
    many = ",".join(map(str, server.info["sweep"][:60]))
    page.open(f"#/charts?runs={many}&legend=lr,batch_size")
    page.wait_for_selector("[data-testid='chart-card']:first-child[data-drawn]")
    note = page.locator("[data-testid='chart-card']").first.locator("[data-testid='legend-more']")
    note.wait_for()
    assert note.inner_text() == "60 legend entries: scroll the legend to see them all"
    # the run list above the charts shows 20 runs and folds the other 40, statuses kept
    more = page.locator("[data-testid='more-runs']")
    assert more.locator("summary").inner_text() == "and 40 more runs"
    assert page.locator("[data-testid^='run-status-']").count() == 60
    page.open(f"#/charts?runs={server.info['sweep'][0]}")
    page.wait_for_selector("[data-testid='chart-card'][data-series='1'][data-drawn]")
    page.evaluate("new Promise(requestAnimationFrame)")  # the frame that would add it
    assert page.locator("[data-testid='legend-more']").count() == 0


def test_filter_and_sort_live_in_the_url(page, server):
    page.open("#/runs?project=sweep")
    page.fill("[data-testid='filter-where']", "lr < 0.01 and model.name == 'vit'")
    page.click("[data-testid='filter-apply']")
    page.wait_for_function(f"document.querySelector(\"{COUNT}\")?.dataset.count === '83'")
    assert "where=lr" in page.url
    page.click("[data-testid='col-c:seed']")
    page.click("[data-testid='col-c:seed']")  # descending
    first = page.locator(".tr").first
    assert first.get_attribute("data-run") == str(server.info["sweep"][-1] - 4)  # seed 995
    assert "sort=c%3Aseed" in page.url and "desc=1" in page.url
    page.shot("runs-filtered-sorted")
    # the URL alone reproduces the view
    page.open(page.url.split("/", 3)[3])
    page.wait_for_function(f"document.querySelector(\"{COUNT}\")?.dataset.count === '83'")
    page.fill("[data-testid='filter-where']", "lr <")
    page.click("[data-testid='filter-apply']")
    page.wait_for_selector("[data-testid='filter-error']:has-text('position')")


def test_an_empty_table_names_the_filters_that_emptied_it(page):
    page.open("#/runs?project=sweep&tags=live&status=failed")
    empty = page.locator("[data-testid='empty']")
    assert empty.inner_text() == ("No runs in project sweep match tags live, status failed. "
                                  "Clear the filters")
    empty.locator("[data-testid='clear-filters']").click()
    page.wait_for_function(f"document.querySelector(\"{COUNT}\")?.dataset.count === '1000'")


def test_tag_and_status_filters(page):
    page.open("#/runs?project=vision&status=crashed")
    page.wait_for_function(f"document.querySelector(\"{COUNT}\")?.dataset.count === '1'")
    assert page.inner_text("[data-testid='status']") == "crashed"
    # its duration is until its last heartbeat: a lower bound, said so
    row = page.locator(".tr").first
    duration = row.locator(".td").nth(5)  # select, id, status, tags, start, duration
    assert duration.inner_text().startswith("≥ ")
    assert duration.get_attribute("title").endswith("until its last heartbeat (it stopped without ending)")
    page.open("#/runs?tags=baseline,resnet50")
    page.wait_for_function(f"document.querySelector(\"{COUNT}\")?.dataset.count === '2'")


def test_chart_is_drawn_reduced_and_zoom_requeries(page, server):
    spiky = server.info["spiky"]
    page.open(f"#/charts?runs={spiky}")
    card = page.locator("[data-testid='chart-card']").first
    page.wait_for_selector("[data-testid='chart-card']:first-child[data-drawn]")
    badge = card.locator("[data-testid='points-badge']")
    assert badge.get_attribute("data-total") == "20000"
    assert int(badge.get_attribute("data-returned")) < 2500
    # the spike survived the reduction: the highest value drawn is the spike's 99
    assert float(card.get_attribute("data-ymax")) == 99.0
    canvas = card.locator("canvas").first
    box = canvas.bounding_box()
    assert box["width"] > 300
    page.shot("chart-spiky")
    # drag a narrow x range: the card re-queries it at full resolution
    drag_x(page, card, 0.60, 0.62)
    page.wait_for_function("() => { const b = document.querySelector(\"[data-testid='points-badge']\");"
                           " return b && b.dataset.total !== undefined && b.dataset.total !== '20000'; }")
    assert badge.get_attribute("data-total") == badge.get_attribute("data-returned")
    assert " in steps " in badge.inner_text()
    page.shot("chart-zoomed")
    # a card that was never reduced re-counts too: its badge says what the zoom shows
    small = server.info["runs"][0]
    page.goto("about:blank")  # a fresh load: a hash change alone leaves the old card drawn
    page.open(f"#/charts?runs={small}")
    page.wait_for_selector("[data-testid='chart-card']:first-child[data-drawn]")
    card = page.locator("[data-testid='chart-card']").first
    badge = card.locator("[data-testid='points-badge']")
    whole = badge.get_attribute("data-total")
    drag_x(page, card, 0.2, 0.5)
    # (a card drawn anew has no count until its answer arrives: wait for one)
    page.wait_for_function("(w) => { const b = document.querySelector(\"[data-testid='points-badge']\");"
                           " return b && b.dataset.total !== undefined && b.dataset.total !== w; }",
                           arg=whole)
    assert int(badge.get_attribute("data-total")) < int(whole)
    assert " in steps " in badge.inner_text()
    card.locator("[data-testid='reset-zoom']").click()
    page.wait_for_function("(w) => document.querySelector(\"[data-testid='points-badge']\")"
                           ".dataset.total === w", arg=whole)
    assert " in steps " not in badge.inner_text()
    # over wall time too: a range between two drawn points (a flush's points share one
    # timestamp) asks for the steps between them
    for axis in ("wall", "rel"):
        page.goto("about:blank")
        page.open(f"#/charts?runs={spiky}&x={axis}")
        page.wait_for_selector("[data-testid='chart-card']:first-child[data-drawn]")
        drag_x(page, card, 0.60, 0.62)
        page.wait_for_function("() => document.querySelector(\"[data-testid='points-badge']\")"
                               ".textContent.includes(' in steps ')")
        assert badge.get_attribute("data-total") == badge.get_attribute("data-returned")


def test_a_charts_link_asks_each_first_row_series_once_early(page, server):
    """Opened from a link, the charts page asks for its first row of cards' series as soon
    as its runs are known (boot.js), and each card takes that answer: one request per card,
    at the card's budget (about two points per pixel), none asked twice."""
    ids = ",".join(map(str, server.info["runs"][:3]))
    asked = []
    page.on("request", lambda r: asked.append(r.url) if "/api/series" in r.url else None)
    page.open(f"#/charts?runs={ids}")
    page.wait_for_function("() => document.querySelectorAll("
                           "\"[data-testid='chart-card'][data-drawn]\").length === 2")
    early = page.evaluate("window.__atoChartBudget")
    cards = page.locator("[data-testid='chart-card']")
    assert [cards.nth(i).get_attribute("data-key") for i in range(2)] == ["loss", "val/acc"]
    assert sorted(a.split("key=")[1].split("&")[0] for a in asked) == ["loss", "val%2Facc"], asked
    width = page.evaluate("document.querySelector('.chart-body').clientWidth")
    assert abs(early - 2 * width) <= 0.2 * width
    for i in range(2):
        assert cards.nth(i).get_attribute("data-budget") == str(early)
    assert all(f"max_points={early}&" in a and "format=f64" in a for a in asked)


def test_chart_options_smoothing_log_group_and_png(page, server):
    ids = ",".join(map(str, server.info["runs"][:6]))
    page.open(f"#/charts?runs={ids}&smooth=0.6&log=1&group=c:lr")
    page.wait_for_selector("[data-testid='chart-card']:first-child[data-drawn]")
    legend = page.inner_text("[data-testid='chart-card'] .u-legend")
    assert "lr=0.1 mean (n=2)" in legend and "lr=0.01 mean (n=2)" in legend
    page.shot("chart-grouped")
    with page.expect_download() as download:
        page.click("[data-testid='chart-card'] [data-testid='export-png']")
    path = download.value.path()
    head = open(path, "rb").read(24)
    assert head[:8] == b"\x89PNG\r\n\x1a\n"
    # the PNG carries the legend below the plot: taller than title + plot, every series named
    card = page.locator("[data-testid='chart-card']").first
    labels = json.loads(card.get_attribute("data-png-legend"))
    # a group of one run is named by that run, not "mean (n=1)"
    assert "lr=0.1 mean (n=2)" in labels and f"lr=0.03 (#{server.info['runs'][5]} alone)" in labels
    # a group's band edges are drawn but named once, by its mean (n=…), in both legends
    assert not [label for label in labels if label.endswith((" min", " max"))]
    shown = page.eval_on_selector_all(
        "[data-testid='chart-card']:first-child .u-legend .u-series",
        "rows => rows.filter(r => r.style.display !== 'none').map(r => r.innerText)")
    assert not [row for row in shown if " min" in row or " max" in row], shown
    height = int.from_bytes(head[20:24], "big")
    plot = page.eval_on_selector("[data-testid='chart-card'] canvas", "c => c.height")
    assert height == int(card.get_attribute("data-png-height")) > plot + 30
    # log axis ticks are labelled, none of them "0"
    ticks = json.loads(card.get_attribute("data-yticks"))
    assert ticks and "0" not in ticks
    # "config minus seed" groups are named by the legend keys chosen, and their runs
    page.goto("about:blank")
    page.open(f"#/charts?runs={ids}&group=noseed&legend=lr")
    # the card read below (another may be drawn first)
    page.wait_for_selector("[data-testid='chart-card']:first-child[data-drawn]")
    named = page.eval_on_selector_all(
        "[data-testid='chart-card']:first-child .u-legend .u-series .u-label",
        "ls => ls.map(l => l.textContent).filter(t => t.startsWith('lr='))")
    assert named and all(" (run #" in t or " (runs #" in t for t in named), named
    assert not [t for t in named if "alone" in t or t.startswith("group ")]


def test_compare_shows_only_differences(page, server):
    a, b = server.info["runs"][:2]
    page.open(f"#/compare?runs={a},{b}")
    page.wait_for_selector("[data-testid='config-diff']")
    keys = page.locator("[data-testid='diff-row'] td:first-child").all_inner_texts()
    assert sorted(keys) == ["model.depth", "seed"]
    assert "deltas" in page.inner_text("[data-testid='metric-compare']")
    page.wait_for_selector("[data-testid='chart-card']:first-child[data-drawn]")
    page.shot("compare")
    page.uncheck("[data-testid='only-diff']")
    page.wait_for_function("document.querySelectorAll(\"[data-testid='diff-row']\").length > 5")


def test_hostile_values_show_as_text_and_run_nothing(page, server):
    xss = server.info["xss"]
    for view in ("#/runs?project=vision", f"#/run/{xss}", f"#/compare?runs={xss},1"):
        page.open(view)
        page.wait_for_timeout(300)
        assert page.evaluate("window.__pwned") is None
        assert page.locator("img[src='x']").count() == 0
        assert page.locator("script:not([src])").count() == 0
    page.open(f"#/run/{xss}")
    text = page.inner_text("[data-testid='view']")
    assert XSS_SCRIPT in text and XSS_IMG in text
    assert XSS_SCRIPT in page.inner_text("[data-testid='run-tags']")
    page.shot("hostile-run")


def test_live_point_arrives_within_a_second(page, server):
    log = logger_for(server.url, "live")
    log.flush_interval = 3600
    run_id = log.run(tags=["live"])
    for step in range(5):
        log.log_metric("loss", 1.0 / (step + 1), step)
    log.flush()
    try:
        page.open(f"#/charts?runs={run_id}")
        page.wait_for_selector("[data-testid='chart-card'][data-last-step='4']")
        page.wait_for_timeout(300)  # the event stream is open
        log.log_metric("loss", 0.01, 5)
        log.flush()
        flushed = time.perf_counter()
        page.wait_for_selector("[data-testid='chart-card'][data-last-step='5']", timeout=5000)
        latency = time.perf_counter() - flushed
        # arrives without a reload; the 1 s target is measured by benchmarks/bench_ui.py
        # (a timed bound here would fail on a loaded CI machine, as the flush bound did)
        assert latency < 4.0, f"the new point took {latency:.2f} s"
        # a key first logged now gets its card, drawn from the server
        log.log_metric("grad_norm", float("nan"), 6)
        log.log_metric("grad_norm", 2.5, 7)
        log.flush()
        page.wait_for_selector("[data-testid='chart-card'][data-key='grad_norm'][data-drawn]",
                               timeout=5000)
        card = page.locator("[data-testid='chart-card'][data-key='grad_norm']")
        assert card.get_attribute("data-last-step") == "7"
        assert card.get_attribute("data-nonfinite") == "1"
        log.finish("completed")
        page.wait_for_selector(f"[data-testid='run-status-{run_id}']:has-text('completed')",
                               timeout=5000)
        page.shot("live")
    finally:
        log.finish("completed")


def test_scatter_x_defaults_to_the_key_that_drives_the_metric(page):
    """The sweep's metrics depend on lr alone; batch_size (the first numeric key, the old
    default) only follows lr's cycle by half.  The default x is the key of the strongest
    rank correlation with the metric; a chosen one (``sx``) is kept."""
    page.open("#/runs?project=sweep&pc=1")
    page.wait_for_selector("[data-testid='parallel'][data-ready='1']")
    assert page.input_value("[data-testid='scatter-x']") == "lr"
    options = page.locator("[data-testid='scatter-x'] option").all_inner_texts()
    assert options.index("batch_size") < options.index("lr")
    page.open("#/runs?project=sweep&pc=1&sx=batch_size")
    page.wait_for_selector("[data-testid='parallel'][data-ready='1']")
    assert page.input_value("[data-testid='scatter-x']") == "batch_size"


def test_parallel_coordinates_brushing_filters_the_table(page):
    page.open("#/runs?project=sweep&pc=1")
    page.wait_for_selector("[data-testid='parallel'][data-ready='1']")
    canvas = page.locator("[data-testid='parallel'] canvas")
    box = canvas.bounding_box()
    axes = int(canvas.get_attribute("data-axes"))
    assert axes >= 4
    # brush the first axis (batch_size: 32 at the bottom, 64 at the top) over its upper half
    x = box["x"] + 50
    page.mouse.move(x, box["y"] + 5)
    page.mouse.down()
    page.mouse.move(x, box["y"] + 140, steps=5)
    page.mouse.up()
    page.wait_for_function(f"document.querySelector(\"{COUNT}\").dataset.count === '500'")
    assert "brushing keeps 500 runs" in page.inner_text("[data-testid='brush-note']")
    assert page.locator(".tr .td:nth-child(7)").first.inner_text() == "64"  # batch_size
    assert int(page.get_attribute("[data-testid='scatter'] canvas", "data-points")) == 1000
    # the scatter dims the runs the brush leaves out, as the table does
    assert page.get_attribute("[data-testid='scatter'] canvas", "data-dimmed") == "500"
    page.shot("parallel")
    # the brush is in the URL: the shared link restores it and the rows it keeps
    shared = page.evaluate("location.hash")
    assert "pcb=" in shared
    page.open("#/search")
    page.open(shared)
    page.wait_for_selector("[data-testid='parallel'][data-ready='1']")
    page.wait_for_function(f"document.querySelector(\"{COUNT}\").dataset.count === '500'")
    assert "brushing keeps 500 runs" in page.inner_text("[data-testid='brush-note']")
    assert page.locator(".tr .td:nth-child(7)").first.inner_text() == "64"
    # a hand-edited brush that is not JSON, or out of range, is ignored, not an error
    for bad in ("%7Bnot-json", "%7B%22batch_size%22%3A%5B2%2C5%5D%7D"):
        page.open("#/runs?project=sweep&pc=1&pcb=" + bad)
        page.wait_for_selector("[data-testid='parallel'][data-ready='1']")
        page.wait_for_function(f"document.querySelector(\"{COUNT}\").dataset.count === '1000'")
        assert page.inner_text("[data-testid='brush-note']") == ""
        assert "pcb=" in page.inner_text("[data-testid='param-pcb']")
    # each bad brush is named, with what is accepted; a good one beside it still applies
    page.open("#/runs?project=sweep&pc=1&pcb=" + quote(json.dumps(
        {"nokey": [0.2, 0.4], "batch_size": [0.5, 1]})))
    page.wait_for_function(f"document.querySelector(\"{COUNT}\").dataset.count === '500'")
    warning = page.inner_text("[data-testid='param-pcb']")
    assert "nokey=[0.2,0.4]" in warning and "batch_size" in warning


def test_csv_export_has_every_filtered_row(page):
    page.open("#/runs?project=sweep&where=seed%20%3C%20100")
    page.wait_for_function(f"document.querySelector(\"{COUNT}\")?.dataset.count === '100'")
    with page.expect_download() as download:
        page.click("[data-testid='export-csv']")
    lines = open(download.value.path(), encoding="utf-8").read().splitlines()
    assert len(lines) == 101 and lines[0].startswith("id,status,tags")


def test_csv_tags_are_a_list_and_inf_sorts_as_a_number(page, server):
    import csv

    log = logger_for(server.url, "tagged")
    ids = {}
    for v in (3.0, float("inf"), 1e30, -2.5):
        ids[v] = log.run(tags=["ü tag", "a,b"], config=config_for(server.url, "tagged", v=v))
        log.finish()
    page.open("#/runs?project=tagged&sort=c:v")
    page.wait_for_selector("[data-testid='runs-table'][data-ready='1']")
    order = page.locator(".tr").evaluate_all("rs => rs.map(r => Number(r.dataset.run))")
    assert order == [ids[-2.5], ids[3.0], ids[1e30], ids[float("inf")]]
    with page.expect_download() as download:
        page.click("[data-testid='export-csv']")
    rows = list(csv.DictReader(open(download.value.path(), encoding="utf-8")))
    assert {r["tags"] for r in rows} == {json.dumps(["ü tag", "a,b"], ensure_ascii=False,
                                                    separators=(",", ":"))}


def test_search_ladder(page, server):
    page.open("#/search")
    page.click("[data-testid='study-link']")
    page.wait_for_selector("[data-testid='ladder'][data-ready='1']")
    assert page.locator("[data-testid='trial-promoted']").count() == 2
    assert page.locator("[data-testid='trial-stopped']").count() == 4
    # the last rung's two trials were not stopped: the better one (0.2 / 2) is the winner
    assert page.locator("[data-testid='trial-finished']").count() == 1
    winner = page.locator("[data-testid='trial-winner']")
    assert winner.count() == 1 and "objective 0.1 · best" in winner.locator("title").text_content()
    # the objective axis has round values between its ends
    ticks = page.locator("[data-testid='ladder-tick']").all_inner_texts()
    assert len(ticks) >= 2, ticks
    rungs = page.locator("[data-testid='ladder-rung']").all_inner_texts()
    assert len(rungs) == 2 and "0.55" in rungs[0]  # threshold between 0.5 and 0.6
    assert page.locator("[data-testid='objective-history'] canvas").count() >= 1
    page.shot("ladder")


CSV_FORMULAS = ["-2+3", "-1+cmd|' /C calc'!A0", "=SUM(A1:A2)", "+1", "@x", "\tx", "\r1",
                "-1e3+A1", "--5", "-.5.5", "-"]
CSV_NUMBERS = ["-2", "-2.5", "-.5", "1e-4", "-1E+06", "3.", "0", "1-", "lr"]


def test_scatter_and_parallel_axes_label_ticks_apart(page):
    """A linear axis of the scatter and the parallel coordinates labels each tick with the
    digits that tell it from its neighbours (four significant digits wrote 1000 five times)."""
    page.open("#/runs?project=sweep")
    labels = page.evaluate("""async () => {
        const { linearTicks } = await import("/static/js/parcoords.js");
        const ps = [0, 0.25, 0.5, 0.75, 1];
        return [[1000.001, 1000.002], [0, 1], [-3e-7, 5e-7], [0.98333333, 0.98341],
                [123456789, 123456790]].map(([lo, hi]) => linearTicks(lo, hi, ps).map((t) => t[1]));
    }""")
    assert labels[0] == ["1000.001", "1000.00125", "1000.0015", "1000.00175", "1000.002"]
    assert labels[1] == ["0", "0.25", "0.5", "0.75", "1"]
    for ticks in labels:
        assert len(set(ticks)) == 5, ticks


def test_csv_cells_neutralise_every_formula_but_keep_numbers(page):
    page.open("#/runs?project=sweep")
    cells = page.evaluate("""async ([formulas, numbers]) => {
        const { csvCell } = await import("/static/js/util.js");
        return { formulas: formulas.map(csvCell), numbers: numbers.map(csvCell),
                 typed: [-2, -0.5, 1e-7, -Infinity, Infinity, NaN, "-inf"].map(csvCell) };
    }""", [CSV_FORMULAS, CSV_NUMBERS])
    for raw, cell in zip(CSV_FORMULAS, cells["formulas"]):
        unquoted = cell[1:-1].replace('""', '"') if cell.startswith('"') else cell
        assert unquoted == "'" + raw, (raw, cell)
    assert cells["numbers"] == CSV_NUMBERS
    # Non-finite numbers read as the API spells them, and "-inf" is neutralised like any
    # other text starting with "-", whether it came as a number or as the API's string.
    assert cells["typed"] == ["-2", "-0.5", "1e-7", "'-inf", "inf", "nan", "'-inf"]


def test_log_axis_labels_tiny_values(page, server):
    page.open("#/runs?project=sweep")
    labels = page.evaluate("""async () => {
        const { tickLabel } = await import("/static/js/util.js");
        return [1e-4, 1e-5, 2.5e-7, 0.001, 0.1 + 0.2, 0, -1e-9, 3e6, 12345].map(tickLabel);
    }""")
    assert labels == ["1e-4", "1e-5", "2.5e-7", "0.001", "0.3", "0", "-1e-9", "3e6", "12345"]
    log = logger_for(server.url, "tiny")
    run_id = log.run(tags=["tiny"])
    for step in range(20):
        log.log_metric("grad", 10.0 ** -(step % 5 + 3), step)
    log.finish("completed")
    page.open(f"#/charts?runs={run_id}&log=1")
    page.wait_for_selector("[data-testid='chart-card'][data-yticks]")
    ticks = json.loads(page.get_attribute("[data-testid='chart-card']", "data-yticks"))
    assert "1e-5" in ticks and "1e-6" in ticks
    assert all(float(t) != 0 for t in ticks if t), ticks
    page.shot("chart-log-tiny")


def test_unknown_study_and_run_say_so_once(page):
    page.open("#/search/nope")
    assert "no study 'nope'" in page.inner_text("[data-testid='error']")
    assert page.locator("[data-testid='ladder']").count() == 0
    assert "0 trials" not in page.inner_text("#view")
    page.open("#/run/9999")
    assert page.locator("[data-testid='error']").inner_text() == "no run with id 9999"
    assert page.locator("text=no run with id 9999").count() == 1


def test_a_running_run_page_keeps_its_summaries_and_duration_current(page, server):
    log = logger_for(server.url, "live")
    run_id = log.run(tags=["live-mid"])
    log.log_metric("loss", 1.0, 0)
    log.flush()
    try:
        page.open(f"#/run/{run_id}")
        first = page.inner_text("[data-testid='run-duration']")
        for step in range(1, 50):
            log.log_metric("loss", 1.0 / (step + 1), step)
        log.log_metric("late_metric", 2.0, 49)
        log.flush()
        # re-read while it runs: the new count, the key first logged now, a later duration
        page.wait_for_function("() => [...document.querySelectorAll(\"[data-testid='run-metrics'] tr\")]"
                               ".some(r => r.innerText.includes('late_metric'))", timeout=8000)
        row = page.locator("[data-testid='run-metrics'] tr", has_text="loss")
        assert row.locator("td").nth(4).inner_text() == "50"
        # (this logger never beats its heart, so past the server's stale limit: crashed)
        assert page.get_attribute("[data-testid='run-facts']", "data-refreshed") in (
            "running", "crashed")
        assert page.inner_text("[data-testid='run-duration']") != first
    finally:
        log.finish("completed")


def test_run_page_refreshes_end_duration_and_summaries_when_the_run_ends(page, server):
    log = logger_for(server.url, "live")
    run_id = log.run(tags=["live-end"])
    for step in range(3):
        log.log_metric("loss", 1.0 / (step + 1), step)
    log.flush()
    try:
        page.open(f"#/run/{run_id}")
        assert page.inner_text("[data-testid='run-ended']") == "–"
        assert "3" in page.locator("[data-testid='run-metrics'] tr").nth(1).inner_text()
        page.wait_for_timeout(300)  # the event stream is open
        for step in range(3, 7):
            log.log_metric("loss", 0.5 / (step + 1), step)
        log.finish("completed")
        page.wait_for_selector("[data-testid='run-facts'][data-refreshed='completed']",
                               timeout=5000)
        assert page.inner_text(f"[data-testid='run-status-{run_id}']") == "completed"
        assert page.inner_text("[data-testid='run-ended']") != "–"
        assert page.inner_text("[data-testid='run-duration']") != "–"
        cells = page.locator("[data-testid='run-metrics'] tr").nth(1).locator("td")
        assert cells.nth(4).inner_text() == "7" and cells.nth(5).inner_text() == "6"
        page.shot("run-ended")
        # counts and steps as the badges write them (a 20,000-point run read "20000")
        spiky = page.locator("[data-testid='run-metrics'] tr")
        page.open(f"#/run/{server.info['spiky']}")
        cells = spiky.nth(1).locator("td")
        assert cells.nth(4).inner_text() == "20,000" and cells.nth(5).inner_text() == "19,999"
    finally:
        log.finish("completed")


def test_log_axis_names_values_it_cannot_draw_and_formats_numbers_plainly(page, server):
    page.open("#/runs?project=sweep")
    got = page.evaluate("""async () => {
        const { fmt, tickLabels } = await import("/static/js/util.js");
        const { decadeSplits } = await import("/static/js/charts.js");
        return { fmt: [1e-4, -1.0000000000000001e29, 0.0031622776601683794, 0.1 + 0.2, 42, 2.5e-7, "", null, true, false]
                   .map(fmt),
                 ticks: tickLabels([-1e29, -5e28, 2.21e13], 1e29),
                 small: tickLabels([-1e-9, 0, 1e-9, 2e-9], 3e-9),
                 splits: decadeSplits(0, 30).length, few: decadeSplits(Math.log10(0.5), Math.log10(2000)) };
    }""")
    assert got["fmt"] == ["1e-4", "-1e29", "0.00316228", "0.3", "42", "2.5e-7", '""', "–", "True", "False"]
    assert got["ticks"] == ["-1e29", "-5e28", "0"]
    assert got["small"] == ["-1e-9", "0", "1e-9", "2e-9"]  # small is not noise on a small axis
    assert got["splits"] <= 8 and got["few"] == [0, 1, 2, 3]
    log = logger_for(server.url, "signs")
    spiky = log.run(tags=["signs"])
    for step in range(20):
        log.log_metric("m", -1e29 if step == 10 else 1.0 + step, step)
        log.log_metric("neg", -float(step), step)
    log.finish("completed")
    page.open(f"#/charts?runs={spiky}&log=1")
    cards = page.locator("[data-testid='chart-card'][data-nonpositive]")
    page.wait_for_function(
        "() => document.querySelectorAll(\"[data-testid='chart-card'][data-nonpositive]\").length >= 2")
    notes = {}
    for i in range(cards.count()):
        card = cards.nth(i)
        notes[card.get_attribute("data-nonpositive")] = card.inner_text()
    assert f"1 value ≤ 0 not drawn on the log axis: #{spiky} step 10 = -1e29" in notes["1"]
    assert "no value > 0, nothing to draw on the log axis" in notes["20"]


def test_a_line_breaks_at_its_own_gaps_only(page, server):
    """A run's NaN (and, on a log axis, a value <= 0) is a gap in its line, as docs/ui.md
    says; the steps where only another run has a point are drawn through."""
    log = logger_for(server.url, "gaps")
    holed = log.run(tags=["gaps"])
    for step in range(50):
        log.log_metric("m", float("nan") if 20 <= step <= 22 else 1.0 + step, step)
    log.finish("completed")
    apart = []
    for start in (0, 1):  # one run on even steps, one on odd: no step in common
        log = logger_for(server.url, "gaps")
        apart.append(log.run(tags=["gaps"]))
        for step in range(start, 60, 2):
            log.log_metric("m", -5.0 if step == 30 else 2.0 + step, step)
        log.finish("completed")

    def gaps(runs, extra=""):
        page.goto("about:blank")
        page.open(f"#/charts?runs={','.join(map(str, runs))}{extra}")
        page.wait_for_selector("[data-testid='chart-card']:first-child[data-drawn]")
        return int(page.get_attribute("[data-testid='chart-card']", "data-gaps"))

    assert gaps([holed]) == 1
    assert gaps(apart) == 0  # interleaved steps: both lines whole
    assert gaps(apart, "&log=1") == 1  # the -5 at step 30 breaks its run's line
    assert gaps([holed, *apart]) == 1
    page.shot("chart-gaps")
    note = page.locator("[data-testid='nonfinite-note']").first.inner_text()
    assert note.startswith("3 non-finite values not drawn: ") and "kept" not in note
    # a reduced card keeps the first NaN or inf of each bucket: its note says so
    log = logger_for(server.url, "gaps")
    long = log.run(tags=["gaps"])
    for step in range(20_000):
        log.log_metric("m", float("nan") if step in (7000, 7001) else 1.0, step)
    log.finish("completed")
    page.goto("about:blank")
    page.open(f"#/charts?runs={long}")
    page.wait_for_selector("[data-testid='chart-card']:first-child[data-drawn]")
    note = page.locator("[data-testid='nonfinite-note']").first.inner_text()
    assert note.startswith("1 non-finite value not drawn (among the points kept by the "
                           "reduction; zoom in for every one): "), note


def test_a_nearly_constant_series_is_drawn_with_every_digit_its_ticks_need(page, server):
    """5 + 1e-9 x (1, 2, 3): uPlot's own ticks never advanced (the page threw "Invalid array
    length" and drew nothing) and its rounded range collapsed; 1000.0016's labels were cut
    at the axis' fixed width."""
    log = logger_for(server.url, "flat")
    run = log.run(tags=["flat"])
    for step in range(300):
        log.log_metric("tiny", 5 + 1e-9 * (1 + step % 3), step)
        log.log_metric("wide", 1000.001 + 1e-4 * (step % 7), step)
    log.finish("completed")
    page.open(f"#/charts?runs={run}")
    page.wait_for_function("() => document.querySelectorAll("
                           "\"[data-testid='chart-card'][data-drawn]\").length === 2")
    ticks = {c.get_attribute("data-key"): json.loads(c.get_attribute("data-yticks"))
             for c in page.locator("[data-testid='chart-card']").all()}
    assert len(ticks["tiny"]) >= 3 and "5.000000002" in ticks["tiny"]
    assert "1000.0016" in ticks["wide"]
    # each label fits left of the plot: the y axis is as wide as its longest label
    axis = page.evaluate("""() => [...document.querySelectorAll("[data-testid='chart-card']")]
        .map((c) => c.querySelector('.u-over').getBoundingClientRect().left
                    - c.querySelector('.u-wrap').getBoundingClientRect().left)""")
    assert all(width >= 7 * 12 for width in axis)
    got = page.evaluate("""async () => {
        const { linearSplits } = await import("/static/js/charts.js");
        return [linearSplits(5.0000000008, 5.0000000032, 5e-10).length,
                linearSplits(0, 1, 0.25), linearSplits(5, 5, 1e-17), linearSplits(0, 1e9, 1).length];
    }""")
    assert got == [5, [0, 0.25, 0.5, 0.75, 1], [5], 50]
    page.shot("chart-nearly-constant")


def test_a_group_mean_skips_a_members_gap(page):
    """A member's gap (an inf made null) is left out of the group's mean and band at the
    steps around it, never interpolated as 0 (the mean dipped below every member)."""
    page.open("#/runs")
    got = page.evaluate("""async () => {
        const { aggregate } = await import("/static/js/charts.js");
        const a = { x: [0, 10, 20], y: [1, null, 1] }, b = { x: [0, 5, 15, 20], y: [3, 3, 3, 3] };
        return aggregate([a, b]);
    }""")
    assert got["xs"] == [0, 5, 10, 15, 20]
    assert got["mean"] == [2, 3, 3, 3, 2] and got["lo"] == [1, 3, 3, 3, 1]


def test_a_group_mean_breaks_between_members_that_do_not_overlap(page):
    """Runs one after another on a wall-time axis: the mean is not drawn across the time
    between them (a straight line no run took), but broken by a null there; members that
    overlap anywhere are not broken."""
    page.open("#/runs")
    got = page.evaluate("""async () => {
        const { aggregate } = await import("/static/js/charts.js");
        const first = { x: [0, 1, 2], y: [1, 1, 1] }, second = { x: [10, 11], y: [3, 3] };
        const overlapping = { x: [1.5, 10.5], y: [2, 2] };
        return [aggregate([first, second]), aggregate([first, second, overlapping])];
    }""")
    apart, joined = got
    assert apart["xs"] == [0, 1, 2, 6, 10, 11] and apart["mean"] == [1, 1, 1, None, 3, 3]
    assert None not in joined["mean"] and 6 not in joined["xs"]


def test_the_step_axis_is_ticked_at_whole_steps(page, server):
    # a 2-step run was ticked at 0.1, 0.2, … 0.9
    log = logger_for(server.url, "short")
    run = log.run(tags=["short"])
    log.log_metric("m", 1.0, 0)
    log.log_metric("m", 2.0, 1)
    log.log_metric("long", 1.0, 0)
    log.log_metric("long", 2.0, 12_345)
    log.finish("completed")
    page.open(f"#/charts?runs={run}")
    page.wait_for_function("() => document.querySelectorAll("
                           "\"[data-testid='chart-card'][data-xticks]\").length === 2")
    ticks = {c.get_attribute("data-key"): [t for t in json.loads(c.get_attribute("data-xticks")) if t]
             for c in page.locator("[data-testid='chart-card']").all()}
    assert ticks["m"] == ["0", "1"]
    assert "10,000" in ticks["long"] and all("." not in t for t in ticks["long"])



def test_a_live_page_says_when_its_database_file_is_removed(browser, artifacts, tmp_path):
    from ato.ui.app import create_app
    from tests.ui.conftest import Server, browser_page

    path = tmp_path / "live.db"
    log = logger_for(f"sqlite:///{path}", "live")
    run_id = log.run()
    log.log_metric("loss", 1.0, 0)
    log.flush()
    server = Server(create_app(f"sqlite:///{path}"))
    pages = browser_page(browser, server.base, artifacts)
    page = next(pages)
    try:
        page.open(f"#/charts?runs={run_id}")
        page.wait_for_selector("[data-testid='chart-card']:first-child[data-drawn]")
        path.rename(tmp_path / "elsewhere.db")
        page.wait_for_selector("body[data-live-failed='1']", state="attached", timeout=5000)
        assert "was removed while the dashboard was running" in page.inner_text("#toast")
    finally:
        pages.close()
        server.stop()
        log.finish()


@pytest.mark.parametrize("log_y", [False, True])
def test_tiny_and_huge_values_get_an_axis_that_holds_them(page, server, log_y):
    """A linear or log y axis for values of any magnitude: ticks inside the data's range,
    told apart, never a lone "0" (1e-19 had one), a 0..100 axis with a flat line (1e-25)
    or no labels at all (1e40)."""
    log = logger_for(server.url, "extreme")
    ids = {}
    for scale in (1e-19, 1e-25, 1e-300, 1e-320, 1e40, 1e300):
        ids[scale] = log.run(tags=["extreme"])
        for step in range(10):
            log.log_metric("v", scale * (1 + step / 3), step)
        log.finish()
    for scale, run_id in ids.items():
        page.goto("about:blank")
        page.open(f"#/charts?runs={run_id}" + ("&log=1" if log_y else ""))
        page.wait_for_selector("[data-testid='chart-card']:first-child[data-drawn]")
        labels = json.loads(page.get_attribute("[data-testid='chart-card']", "data-yticks"))
        shown = [x for x in labels if x]
        assert len(shown) >= 2 and len(set(shown)) == len(shown), (scale, labels)
        values = [float(x.replace(",", "")) for x in shown]
        assert all(0 < v < 10 * scale * 4 for v in values), (scale, labels)
        if scale == 1e-25:
            page.shot("chart-tiny-values" + ("-log" if log_y else ""))
        # the hover value is the value itself, not what was drawn (divided by a power of 10)
        over = page.locator("[data-testid='chart-card'] .u-over").first.bounding_box()
        page.mouse.move(over["x"] + 2, over["y"] + over["height"] / 2)
        hovered = page.locator("[data-testid='chart-card'] .u-legend .u-series").nth(1)
        assert hovered.locator(".u-value").inner_text() == repr(scale * (1 + 0 / 3)), scale


def test_ladder_names_trials_without_a_finite_objective(page, server):
    """A failed trial (no objective), a NaN one and one that diverged to -inf have no place
    on the axis: each is named under its bracket and under the history, and the -inf one,
    the best of a minimised bracket, is the winner rather than a finite trial."""
    log = logger_for(server.url, "search2")
    plan = [(0, "a", 0.2), (0, "b", 0.3), (0, "c", 9e300), (0, "d", float("nan")),
            (0, "e", None), (1, "a", 0.1), (1, "b", float("-inf"))]
    runs = {}
    for rung, key, value in plan:
        runs[key, rung] = log.run(tags=["study:s2", f"trial:{key}-{rung}", "bracket:0",
                                        f"rung:{rung}", f"budget:{rung + 1}", f"config:h{key}"])
        if value is not None:
            log.log_metric("objective", value, rung)
        log.finish("completed" if value is not None else "failed")
    page.open("#/search/s2")
    page.wait_for_selector("[data-testid='ladder'][data-ready='1']")
    assert page.locator("[data-testid='trial-winner']").count() == 0  # not drawable
    assert page.locator("[data-testid='trial-finished']").count() == 1  # a at rung 1
    note = page.inner_text("[data-testid='ladder-undrawn']")
    assert note.startswith("bracket 0: 3 trials without a finite objective not drawn: ")
    assert f"#{runs['b', 1]} (rung 1: objective -inf, best of the bracket)" in note
    assert f"#{runs['d', 0]} (rung 0: objective nan)" in note
    assert f"#{runs['e', 0]} (rung 0: failed, no objective)" in note
    history = page.inner_text("[data-testid='history-undrawn']")
    assert history.startswith("3 trials without a finite objective not drawn")
    ticks = json.loads(page.get_attribute("[data-testid='objective-history']", "data-yticks"))
    assert len([t for t in ticks if t]) >= 2
    page.shot("ladder-undrawn")


def test_a_failed_run_page_says_why(page, server):
    log = logger_for(server.url, "errors")
    run_id = log.run()
    log.log_metric("loss", 1.0, 0)
    log.finish("failed", error="ValueError: lr too high <b>0.9</b> (postgresql://u:pw@h/db)")
    page.open(f"#/run/{run_id}")
    error = page.inner_text("[data-testid='run-error']")
    assert error == "ValueError: lr too high <b>0.9</b> (postgresql://u:***@h/db)"
    page.open(f"#/run/{server.info['runs'][0]}")  # a completed run has no error line
    assert page.locator("[data-testid='run-error']").count() == 0


def test_finite_values_between_gaps_are_drawn(page, server):
    """A value whose neighbours are NaN has no line to be on: it is drawn as a point (with
    points hidden on a dense series, nothing showed), as is a metric's only point."""
    log = logger_for(server.url, "isolated")
    run_id = log.run()
    for step in range(200):
        log.log_metric("alternating", 1.0 + step % 7 if step % 2 == 0 else float("nan"), step)
    log.log_metric("one_point", 5.0, 25)
    log.finish()
    for key in ("alternating", "one_point"):
        page.goto("about:blank")
        page.open(f"#/charts?runs={run_id}")
        card = page.locator(f"[data-testid='chart-card'][data-key='{key}']")
        card.scroll_into_view_if_needed()
        page.wait_for_selector(f"[data-testid='chart-card'][data-key='{key}'][data-drawn]")
        pixels = _plot_pixels(page, f"[data-testid='chart-card'][data-key='{key}']")
        assert pixels > 5, (key, pixels)


def test_a_log_axis_spans_any_number_of_decades(page, server):
    """1 beside 5e-324 (a denormal) or beside 1e-300: whole decades from the smallest to
    the largest, powers of ten only, none "0" (uPlot's own log scale drew a blank plot, or
    one label, 1e-34, at the height of the 1s)."""
    log = logger_for(server.url, "decades")
    ids = {}
    for low in (5e-324, 1e-300, 1e-310):
        ids[low] = log.run()
        for step in range(20):
            log.log_metric("v", 1.0 if step % 2 else low, step)
        log.finish()
    for low, run_id in ids.items():
        page.goto("about:blank")
        page.open(f"#/charts?runs={run_id}&log=1")
        page.wait_for_selector("[data-testid='chart-card']:first-child[data-drawn]")
        labels = [x for x in json.loads(page.get_attribute("[data-testid='chart-card']",
                                                          "data-yticks")) if x]
        assert 2 <= len(labels) <= 8 and "0" not in labels, (low, labels)
        assert all(x == "1" or x.startswith("1e") or x in ("0.1", "10") for x in labels), labels
        assert labels[-1] in ("1", "10") and int(labels[0].split("e")[1]) <= -250, labels
        assert _plot_pixels(page) > 20, low  # drawn, not blank


def _plot_pixels(page, card: str = "[data-testid='chart-card']") -> int:
    """Pixels of the first run's colour (#1f77b4) in the canvas of ``card`` (a selector;
    the first card by default)."""
    return page.evaluate("""(card) => {
        const c = document.querySelector(card + " canvas");
        const px = c.getContext("2d").getImageData(0, 0, c.width, c.height).data;
        let n = 0;
        for (let i = 0; i < px.length; i += 4)
          if (Math.abs(px[i] - 31) < 40 && Math.abs(px[i + 1] - 119) < 40 && Math.abs(px[i + 2] - 180) < 40 && px[i + 3] > 100) n++;
        return n;
    }""", card)


def test_long_keys_wrap_inside_their_boxes(page, server):
    """A 200-character metric key and a 300-character config key: the run page's metrics
    table and compare's key column wrap them and keep every column in view."""
    log = logger_for(server.url, "longkeys")
    ids = []
    for v in (1, 2):
        ids.append(log.run(config=config_for(server.url, "longkeys", **{"k" * 300: v})))
        log.log_metric("m" * 200, float(v), 0)
        log.finish()
    page.open(f"#/run/{ids[0]}")
    table = page.locator("[data-testid='run-metrics']").bounding_box()
    box = page.locator("[data-testid='run-metrics']").locator("xpath=..").bounding_box()
    assert table["x"] + table["width"] <= box["x"] + box["width"] + 1, (table, box)
    page.open(f"#/compare?runs={ids[0]},{ids[1]}")
    page.wait_for_selector("[data-testid='diff-row']")
    view = page.locator("#view").bounding_box()
    for cell in page.locator("[data-testid='diff-row'] td").all():
        b = cell.bounding_box()
        assert b["x"] + b["width"] <= view["x"] + view["width"] + 1
