"""Charts tell the truth in Chromium: a live card stays within its point budget and ends
equal to a fresh load, the hover legend shows no value outside a run's own extent, wall
time ticks and the hover time tell instants apart, and the PNG names its x axis.
Each test waits on explicit ready markers (data attributes), never on network idle."""

from __future__ import annotations

import json
import re
import time

import httpx

from tests.ui.populate import logger_for

CARD = "[data-testid='chart-card']"


def _hover(page, value: float) -> dict:
    """Move the mouse to x = ``value`` (in the card's x scale) on the first chart; returns
    ``{label: shown value}`` of its hover legend."""
    xrange = json.loads(page.get_attribute(CARD, "data-xrange"))
    box = page.locator(f"{CARD} .u-over").first.bounding_box()
    x = box["x"] + (value - xrange[0]) / (xrange[1] - xrange[0]) * box["width"]
    page.mouse.move(x, box["y"] + box["height"] / 2)
    page.wait_for_timeout(50)  # uPlot updates the legend on the next animation frame
    rows = page.eval_on_selector_all(
        f"{CARD} .u-legend .u-series",
        "rows => rows.map(r => [r.querySelector('.u-label').innerText, r.querySelector('.u-value').innerText])")
    return {label.strip(): value.strip() for label, value in rows}


def test_live_card_stays_within_its_budget_and_ends_as_a_fresh_load(page, server):
    """About 4,000 points logged in batches while the card is open: every badge shown on the
    way counts at most the card's budget, the spike stays drawn, and once the writer stops
    the card shows what a reload (and the API) shows."""
    log = logger_for(server.url, "livebudget")
    log.flush_interval = 3600
    run_id = log.run(tags=["live"])
    for step in range(10):
        log.log_metric("loss", 1.0 + step % 3, step)
    log.flush()
    try:
        page.open(f"#/charts?runs={run_id}")
        card = page.wait_for_selector(f"{CARD}[data-budget][data-last-step='9']")
        budget = int(card.get_attribute("data-budget"))
        width = page.eval_on_selector(f"{CARD} .chart-body", "b => b.clientWidth")
        assert budget == round(max(width, 300) * 2)
        # every count the badge ever shows, recorded in the page
        page.evaluate("""() => {
            const badge = document.querySelector("[data-testid='points-badge']");
            window.__returned = [];
            new MutationObserver(() => window.__returned.push(Number(badge.dataset.returned)))
              .observe(badge, { attributes: true, attributeFilter: ["data-returned"] });
        }""")
        page.wait_for_timeout(300)  # the event stream is open
        total, spike_at = 10, budget + 777
        assert budget * 2 < 4000, budget
        for _batch in range(10):
            for step in range(total, total + 400):
                log.log_metric("loss", 1000.0 if step == spike_at else 1.0 + (step * 7919) % 101 / 100, step)
            total += 400
            log.flush()
            time.sleep(0.15)
        ready = f"{CARD}[data-live-pending='0'] [data-testid='points-badge'][data-total='{total}']"
        page.wait_for_selector(ready, timeout=15_000)
        seen = page.evaluate("window.__returned")
        assert len(seen) > 3 and max(seen) <= budget, (budget, seen)
        assert float(card.get_attribute("data-ymax")) == 1000.0  # the spike is drawn
        badge = page.locator("[data-testid='points-badge']")
        live = int(badge.get_attribute("data-returned"))
        page.shot("chart-live-budget")
        api = httpx.get(f"{server.base}api/series", params={
            "runs": run_id, "key": "loss", "max_points": budget, "times": "0"}).json()
        assert api["series"][0]["returned"] == live
        assert api["series"][0]["total"] == total
        page.reload()
        page.wait_for_selector(f"#view[data-ready='1'] {CARD}[data-budget] "
                               f"[data-testid='points-badge'][data-total='{total}']")
        assert int(badge.get_attribute("data-returned")) == live <= budget
    finally:
        log.finish("completed")


def _two_runs(server, project: str):
    """Run A: steps 0, 2, …, 18 (values 100 + step); then run B: steps 10 … 29 (values
    200 + step), logged after A ended, a little apart in wall time."""
    log = logger_for(server.url, project)
    log.flush_interval = 3600
    a = log.run(tags=["extent"])
    for step in range(0, 20, 2):
        log.log_metric("acc", 100.0 + step, step)
        time.sleep(0.01)
    log.finish("completed")
    time.sleep(0.2)
    b = log.run(tags=["extent"])
    for step in range(10, 30):
        log.log_metric("acc", 200.0 + step, step)
        time.sleep(0.01)
    log.finish("completed")
    return a, b


def test_hover_shows_no_value_outside_a_runs_extent(page, server):
    a, b = _two_runs(server, "extent")
    page.open(f"#/charts?runs={a},{b}")
    page.wait_for_selector(f"{CARD}[data-drawn][data-series='2']")
    # before B started (step 4): A's value, B's nothing
    shown = _hover(page, 4)
    assert shown[f"#{a}"] == "104" and shown[f"#{b}"] == "–", shown
    # after A ended (step 25): B's value, A's nothing (not its last, 118)
    shown = _hover(page, 25)
    assert shown[f"#{a}"] == "–" and shown[f"#{b}"] == "225", shown
    # inside A's extent, between two of its points (step 13: A has 12 and 14), A still
    # snaps to its nearest point
    shown = _hover(page, 13)
    assert shown[f"#{a}"] in {"112", "114"} and shown[f"#{b}"] == "213", shown
    page.shot("chart-hover-step")

    # the same on the wall-time axis: each run's own times (a fresh page load, so that
    # the ready marker is the new view's)
    page.goto("about:blank")
    page.open(f"#/charts?runs={a},{b}&x=wall")
    page.wait_for_selector(f"{CARD}[data-drawn][data-series='2']")
    series = httpx.get(f"{server.base}api/series", params={"runs": f"{a},{b}", "key": "acc"}).json()
    times = {s["run"]: s["times"] for s in series["series"]}
    assert times[a][-1] < times[b][0]
    shown = _hover(page, (times[a][2] + times[a][3]) / 2)
    assert shown[f"#{a}"] in {"104", "106"} and shown[f"#{b}"] == "–", shown
    shown = _hover(page, (times[b][5] + times[b][6]) / 2)
    assert shown[f"#{a}"] == "–" and shown[f"#{b}"] in {"215", "216"}, shown
    # the hover time has milliseconds
    assert re.fullmatch(r"\d{4}-\d\d-\d\d \d\d:\d\d:\d\d\.\d{3}", shown["time (UTC)"]), shown
    page.shot("chart-hover-wall")


def test_extent_data_idx_snaps_only_inside_a_series_extent(page):
    page.open("#/runs")
    got = page.evaluate("""async () => {
        const c = await import('/static/js/charts.js');
        const u = { data: [[0, 1, 2, 3, 4, 5, 6, 7],
                           [null, null, 5, null, null, 7, null, null],
                           [1, 2, 3, 4, 5, 6, 7, 8]] };
        return [0, 1, 2, 3, 4, 5, 6, 7].map((i) => c.extentDataIdx(u, 1, i))
          .concat([c.extentDataIdx(u, 2, 3), c.extentDataIdx(u, 0, 6)]);
    }""")
    # before index 2 and after index 5 (the extent): the hovered index itself (a null);
    # inside, the nearest non-null (3 -> 2, 4 -> 5); the x series and full series unchanged
    assert got == [0, 1, 2, 2, 5, 5, 6, 7, 3, 6]


def test_time_labels_tell_instants_apart(page, server):
    got = page.open("#/runs").evaluate("""async () => {
        const c = await import('/static/js/charts.js');
        const u = await import('/static/js/util.js');
        const t = Date.UTC(2026, 11, 1, 4, 32, 53) / 1000;
        return { half: c.wallTicks([t, t + 0.5, t + 1, t + 1.5]),
                 fifth: c.wallTicks([t + 0.2, t + 0.4, t + 0.6]),
                 quarter: c.wallTicks([t, t + 0.25, t + 0.5]),
                 ms: c.wallTicks([t + 0.001, t + 0.002]),
                 one: c.wallTicks([t + 0.5], 0.3),
                 whole: c.wallTicks([t, t + 1, t + 2]),
                 tenth: c.wallTicks([t + 0.5, t + 0.5 + 0.0999999, t + 0.5 + 2 * 0.0999999]),
                 minutes: c.wallTicks([t - 53, t + 7]),
                 hover: u.fmtTime(t + 0.125, 3), plain: u.fmtTime(t + 0.999) };
    }""")
    assert got == {
        "half": ["04:32:53.0", "04:32:53.5", "04:32:54.0", "04:32:54.5"],
        "fifth": ["04:32:53.2", "04:32:53.4", "04:32:53.6"],
        "quarter": ["04:32:53.00", "04:32:53.25", "04:32:53.50"],
        "ms": ["04:32:53.001", "04:32:53.002"],
        "one": ["04:32:53.5"],
        "whole": ["04:32:53", "04:32:54", "04:32:55"],
        "tenth": ["04:32:53.5", "04:32:53.6", "04:32:53.7"],
        "minutes": ["04:32", "04:33"],
        "hover": "2026-12-01 04:32:53.125",
        "plain": "2026-12-01 04:32:53"}, got
    # a real run logged over about a second: its wall-time ticks are all different
    log = logger_for(server.url, "subsecond")
    run_id = log.run()
    for step in range(40):
        log.log_metric("loss", 1.0 / (step + 1), step)
        time.sleep(0.02)
    log.finish("completed")
    ticks = _drawn_xticks(page, f"#/charts?runs={run_id}&x=wall")
    assert len(ticks) >= 2 and len(set(ticks)) == len(ticks), ticks
    assert all("." in t for t in ticks), ticks
    page.shot("chart-subsecond")
    # relative time: the same run over about a second, each tick its own number of seconds
    ticks = _drawn_xticks(page, f"#/charts?runs={run_id}&x=rel")
    assert len(ticks) >= 2 and len(set(ticks)) == len(ticks), ticks


def _drawn_xticks(page, hash_: str) -> list:
    """The x tick labels of the first card of ``hash_``, loaded afresh, once drawn."""
    page.goto("about:blank")
    page.open(hash_)
    card = page.wait_for_selector(f"{CARD}[data-drawn][data-xticks]")
    return [t for t in json.loads(card.get_attribute("data-xticks")) if t]


def _png(page) -> tuple[int, str]:
    """Export the first card as PNG: (the image's height in pixels, the x title drawn)."""
    with page.expect_download() as download:
        page.click(f"{CARD} [data-testid='export-png']")
    head = open(download.value.path(), "rb").read(24)
    assert head[:8] == b"\x89PNG\r\n\x1a\n"
    height = int.from_bytes(head[20:24], "big")
    assert height == int(page.get_attribute(CARD, "data-png-height"))
    return height, page.get_attribute(CARD, "data-png-x-title")


def test_png_export_names_the_x_axis(page, server):
    run_id = server.info["runs"][0]
    for x, title in (("step", "step"), ("wall", "time (UTC)"), ("rel", "seconds")):
        page.goto("about:blank")  # a fresh load: the ready marker is the new view's
        page.open(f"#/charts?runs={run_id}" + ("" if x == "step" else f"&x={x}"))
        page.wait_for_selector(f"{CARD}[data-drawn]")
        height, drawn = _png(page)
        # the ticks of a run that lasted milliseconds still read apart
        ticks = [t for t in json.loads(page.get_attribute(CARD, "data-xticks") or "[]") if t]
        assert len(set(ticks)) == len(ticks), ticks
        assert drawn == title
        plot = page.eval_on_selector(f"{CARD} canvas", "c => c.height")
        # title bar (30) + plot + the x title's row (18 + 4) + one legend row (18 + 8)
        assert height == 30 + plot + 22 + 26, (height, plot)


def test_fold_keeps_a_live_series_within_budget_with_its_extremes(page):
    """Between re-loads a live series over its budget is folded in the page: at most the
    budget, the first and last points, the spike, the dip and the first non-finite value
    kept, steps still increasing, times alongside."""
    page.open("#/runs")
    got = page.evaluate("""async () => {
        const c = await import('/static/js/charts.js');
        const n = 5000, steps = [], values = [], times = [];
        for (let i = 0; i < n; i++) { steps.push(i * 3); values.push(Math.sin(i)); times.push(1e9 + i); }
        values[1234] = 1e6; values[4321] = -1e6; values[2000] = NaN; values[2001] = Infinity;
        const s = { steps, values, times, total: n, returned: n };
        c.foldSeries(s, 701);
        const small = { steps: [1, 2], values: [1, 2], times: [], total: 2, returned: 2 };
        c.foldSeries(small, 701);
        return { len: s.steps.length, returned: s.returned, total: s.total, times: s.times.length,
                 first: s.steps[0], last: s.steps[s.steps.length - 1],
                 increasing: s.steps.every((v, i) => i === 0 || v > s.steps[i - 1]),
                 max: Math.max(...s.values.filter(Number.isFinite)),
                 min: Math.min(...s.values.filter(Number.isFinite)),
                 nan: s.values.filter(Number.isNaN).length,
                 small: small.steps.length };
    }""")
    assert got["len"] == got["returned"] == got["times"] <= 701
    assert got["len"] > 500 and got["total"] == 5000
    assert (got["first"], got["last"]) == (0, 4999 * 3)
    assert got["increasing"] and got["max"] == 1e6 and got["min"] == -1e6
    # its bucket's first non-finite value (nan at 2000) is kept
    assert got["nan"] == 1
    assert got["small"] == 2


def test_the_last_x_tick_label_stays_inside_the_chart_at_huge_steps(page, server):
    """At steps ~1e12 the last tick's label ("1,000,000,000,000", centred on its tick) was
    cut at the chart's right edge: the right padding leaves room for half of it."""
    log = logger_for(server.url, "hugesteps")
    run_id = log.run()
    for step in range(0, 11):
        log.log_metric("loss", 1.0 / (step + 1), step * 10**11)
    log.finish("completed")
    for width in (1280, 700):
        page.set_viewport_size({"width": width, "height": 900})
        _drawn_xticks(page, f"#/charts?runs={run_id}")
        card = page.wait_for_selector(f"{CARD}[data-xlabel-past]")
        past = int(card.get_attribute("data-xlabel-past"))
        ticks = [t for t in json.loads(card.get_attribute("data-xticks")) if t]
        assert ticks[-1].startswith("1,000,000,000,000") or len(ticks[-1]) >= 15, ticks
        assert past <= 0, (width, past, ticks)
    page.shot("chart-huge-steps")
