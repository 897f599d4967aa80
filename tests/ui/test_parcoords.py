"""The parallel coordinates and the scatter of the runs page: which keys get a log axis
(spread in log space, not merely positive with one tiny value), tick labels that tell
ticks apart on any range (tiny, huge, negative, denormal), labels that never overlap
(the scatter's origin corner, the axis headers), and a readable panel for hundreds of
varying keys.  A database of its own, written through the real SQLLogger; Debian's
Chromium via Playwright."""

from __future__ import annotations

import json
import math
import random
from urllib.parse import quote

import pytest

from tests.ui.populate import config_for, logger_for

PANEL = "[data-testid='parallel'][data-ready='1']"
SCATTER = "[data-testid='scatter'][data-ready='1'] canvas"
WIDE_KEYS = 300
NESTED_PREFIX = "model.backbone.encoder.stages"
#: Tags a chip must tell apart: quoted as JSON as the CLI quotes them (empty, spaces at
#: an end, a comma, a quote), the plain one as itself.
TAGS = [" sp ", "sp", "", "a,b", 'say "hi"', "  two  spaces  "]
CHIPS = ['" sp "', "sp", '""', '"a,b"', '"say \\"hi\\""', '"  two  spaces  "']
NESTED_KEYS = [f"{NESTED_PREFIX}.stage{i}.attention.dropout_rate" for i in range(8)]


def populate(url: str) -> dict:
    """Project ``spread``: 40 runs, ``lr`` log-uniform on 1e-4..1, ``dropout`` uniform on
    [0, 1] with one run at 4.8e-5, metric ``acc`` (last value) uniform on [0.738, 0.99].
    Project ``uniform``: 30 runs whose metric ``acc`` is uniform on [0, 1] but one run at
    4.8e-5, against ``width`` 1..30.  Project ``wide``: 6 runs, each of ``WIDE_KEYS``
    keys ``k000``.. varying (``k000`` in one run only), metric ``loss``.  Project
    ``nested``: 5 runs, 8 long nested keys (``NESTED_PREFIX.stageN.attention.dropout_rate``)."""
    rng = random.Random(7)
    ids = {}
    log = logger_for(url, "spread")
    for i in range(40):
        lr = 10 ** rng.uniform(-4, 0)
        dropout = 4.8e-5 if i == 5 else rng.uniform(0, 1)
        log.run(config=config_for(url, "spread", lr=lr, dropout=dropout))
        log.log_metric("acc", 0.738 + 0.252 * rng.random(), 0)
        log.finish("completed")
    log = logger_for(url, "uniform")
    for i in range(30):
        log.run(config=config_for(url, "uniform", width=i + 1))
        log.log_metric("acc", 4.8e-5 if i == 3 else rng.uniform(0, 1), 0)
        log.finish("completed")
    log = logger_for(url, "wide")
    for i in range(6):
        values = {f"k{k:03d}": rng.uniform(0, 10 ** (k % 7)) for k in range(1, WIDE_KEYS)}
        values["k000"] = int(i == 5)
        ids.setdefault("wide", []).append(log.run(config=config_for(url, "wide", **values)))
        log.log_metric("loss", rng.random(), 0)
        log.finish("completed")
    log = logger_for(url, "nested")
    for _ in range(5):
        stages = {f"stage{k}": {"attention": {"dropout_rate": rng.uniform(0, 0.5)}} for k in range(8)}
        log.run(config=config_for(url, "nested", model={"backbone": {"encoder": {"stages": stages}}}))
        log.log_metric("loss", rng.random(), 0)
        log.finish("completed")
    log = logger_for(url, "strings")
    for i, opt in enumerate(["adam", "sgd with a rather long description of its momentum "
                             "schedule and warm restarts", "L" * 3000, "rmsprop"]):
        log.run(config=config_for(url, "strings", opt=opt, lr=0.1 * (i + 1)))
        log.log_metric("loss", rng.random(), 0)
        log.finish("completed")
    log = logger_for(url, "masked")
    for i, password in enumerate(["hunter2", "correct horse"]):
        log.run(config=config_for(url, "masked", db={"url": f"mysql://u:{password.replace(' ', '')}@h/db"},
                                  lr=0.1 * (i + 1)), tags=TAGS)
        log.log_metric("loss", rng.random(), 0)
        log.finish("completed")
    return ids


@pytest.fixture(scope="module")
def pc_server(tmp_path_factory):
    from tests.ui.conftest import served

    url = f"sqlite:///{tmp_path_factory.mktemp('pc') / 'experiments.db'}"
    yield from served(url, populate(url))


@pytest.fixture
def ppage(browser, pc_server, artifacts):
    from tests.ui.conftest import browser_page

    yield from browser_page(browser, pc_server.base, artifacts)


def _log_axes(page, project, extra=""):
    page.open(f"#/runs?project={project}&pc=1{extra}")
    box = page.wait_for_selector(PANEL)
    return json.loads(box.get_attribute("data-log-axes"))


def test_parallel_axes_go_log_only_when_values_spread_in_log_space(ppage):
    """lr sampled log-uniformly 1e-4..1 is on a log axis; dropout and a metric uniform on
    [0, 1] whose smallest value is 4.8e-5 (four decades too) stay linear."""
    assert _log_axes(ppage, "spread") == ["lr"]
    assert _log_axes(ppage, "uniform") == []
    ppage.shot("parallel-uniform-with-a-tiny-value")


def test_parallel_log_rule_on_made_up_samples(ppage):
    ppage.open("#/runs?project=spread")
    rng = random.Random(3)
    cases = {
        # spread in log space: log
        "log-uniform lr": [10 ** rng.uniform(-4, 0) for _ in range(200)],
        "lr grid": [1e-4, 1e-3, 1e-2, 1e-1, 1],
        # the demo's Hyperband: a grid whose winners (high lr) got most of the trials
        "searched grid": [0.01] * 4 + [0.0316] * 4 + [0.1] * 8 + [0.316] * 10 + [1] * 11,
        "three decades of lr": [0.001, 0.01, 0.1],
        "batch sizes": [16, 32, 64, 128, 256, 512, 1024, 2048],
        "a loss that diverged once": [1 + rng.random() for _ in range(50)] + [1e3],
        "denormals": [1e-322, 1e-318, 1e-316, 1e-313],
        # not: linear
        "uniform with one tiny": [rng.random() for _ in range(200)] + [4.8e-5],
        "uniform with one zero": [rng.random() for _ in range(200)] + [0.0],
        "uniform 1..100": list(range(1, 101)),
        "most at the top": [0.9 + 0.1 * rng.random() for _ in range(50)] + [1e-4],
        "two values": [1e-4, 1],
        "negative": [-1, -1e-4, -1e-2],
        "one decade": [0.1, 0.5, 0.9, 1],
    }
    got = ppage.evaluate("""async (cases) => {
        const { axisOf } = await import("/static/js/parcoords.js");
        const out = {};
        for (const [name, values] of Object.entries(cases))
          out[name] = !!axisOf(values.map((v) => ({ v })), { get: (r) => r.v }).log;
        return out;
    }""", cases)
    logs = {"log-uniform lr", "lr grid", "searched grid", "three decades of lr", "batch sizes",
            "a loss that diverged once", "denormals"}
    assert got == {name: name in logs for name in cases}


RANGES = [(-1e-30, 0.0), (1e-322, 1e-313), (5e-324, 1e-322), (-1.7e308, 1.7e308),
          (1e300, 1.7e308), (-5e20, -4e20), (1e6, 1e6 + 1e-6), (-2.5e-9, -2.4e-9),
          (-0.3, 0.1), (1000.001, 1000.002), (0.0, 1.0), (-1e-5, 1e-5), (123456789, 123456790)]


def _ticks(lo, hi, ps=(0, 0.25, 0.5, 0.75, 1)):
    """The tick values as linearTicks computes them (the same IEEE arithmetic)."""
    return [hi if p == 1 else lo * (1 - p) + hi * p for p in ps]


def test_scatter_and_parallel_tick_labels_tell_ticks_apart_on_any_range(ppage):
    """Tiny, huge, negative and denormal ranges: five distinct labels, each the tick's
    value rounded to a tenth of the ticks' spacing or finer, and "0" only for a tick that
    is 0 (within that rounding, and never for an end of the axis that is not 0)."""
    rng = random.Random(11)
    ranges = list(RANGES)
    while len(ranges) < 600:
        e = rng.uniform(-323, 307)
        lo = rng.choice([-1, 1]) * 10 ** e
        hi = lo + abs(lo) * 10 ** rng.uniform(-12, 4)
        if math.isfinite(hi) and lo < hi and len(set(_ticks(lo, hi))) == 5:
            ranges.append((lo, hi))
    ppage.open("#/runs?project=spread")
    labels = ppage.evaluate("""async (ranges) => {
        const { linearTicks } = await import("/static/js/parcoords.js");
        return ranges.map(([lo, hi]) => linearTicks(lo, hi, [0, 0.25, 0.5, 0.75, 1]).map((t) => t[1]));
    }""", ranges)
    assert labels[0] == ["-1e-30", "-7.5e-31", "-5e-31", "-2.5e-31", "0"]
    assert labels[1] == ["1e-322", "2.5e-314", "5e-314", "7.5e-314", "1e-313"]
    assert labels[3] == ["-1.7e308", "-8.5e307", "0", "8.5e307", "1.7e308"]
    assert labels[8] == ["-0.3", "-0.2", "-0.1", "0", "0.1"]
    for (lo, hi), texts in zip(ranges, labels):
        values = _ticks(lo, hi)
        assert len(set(texts)) == 5, (lo, hi, texts)
        gaps = [b - a for a, b in zip(values, values[1:])]
        step = min(gaps) if all(map(math.isfinite, gaps)) else max(abs(lo), abs(hi))
        for i, (v, text) in enumerate(zip(values, texts)):
            shown = float(text)
            if text == "0":
                assert i not in (0, 4) or v == 0, (lo, hi, texts)
                assert abs(v) <= step / 10, (lo, hi, texts)
            else:
                assert math.isfinite(shown) and abs(shown - v) <= step / 10, (lo, hi, i, texts)


def _boxes(canvas):
    """The label boxes a canvas drew, [x0, y0, x1, y1, text], and its CSS width."""
    return json.loads(canvas.get_attribute("data-labels")), canvas.bounding_box()["width"]


def _assert_apart(boxes, width):
    for box in boxes:
        assert -0.5 <= box[0] and box[2] <= width + 0.5, box
    for i, a in enumerate(boxes):
        for b in boxes[i + 1:]:
            assert not (a[0] < b[2] and b[0] < a[2] and a[1] < b[3] and b[1] < a[3]), (a, b)


@pytest.mark.parametrize("project,extra", [("spread", "&sx=lr"), ("spread", "&sx=dropout"),
                                           ("uniform", ""), ("wide", ""), ("nested", ""),
                                           ("strings", "&sx=opt&sy=opt")])
def test_parallel_and_scatter_labels_never_overlap(ppage, artifacts, project, extra):
    """Every label drawn on either canvas, the scatter's origin corner included (a log x
    axis from 1e-4 meets a y axis from 0.738), overlaps no other."""
    ppage.open(f"#/runs?project={project}&pc=1{extra}")
    ppage.wait_for_selector(PANEL)
    scatter = ppage.wait_for_selector(SCATTER)
    boxes, width = _boxes(scatter)
    assert len(boxes) >= 6, boxes  # both titles, both ends of both axes
    _assert_apart(boxes, width)
    _assert_apart(*_boxes(ppage.locator("[data-testid='parallel'] canvas")))
    if extra == "&sx=lr":
        # the corner: the y axis's lowest label wholly above the x axis's line (40 px
        # above the canvas's bottom), the x axis's first label wholly right of the y's
        height = scatter.bounding_box()["height"]
        first_x = min((b for b in boxes if b[1] > height - 40), key=lambda b: b[0])
        low_y = max((b for b in boxes if b[2] < first_x[0] and b[0] > 16), key=lambda b: b[3])
        assert first_x[4].endswith("e-4") and low_y[4].startswith("0.7"), (first_x, low_y)
        assert low_y[3] <= height - 40 and first_x[0] >= low_y[2], (low_y, first_x)
        ppage.locator("[data-testid='scatter']").screenshot(path=str(artifacts / "scatter-corner.png"))


def test_parallel_coordinates_with_hundreds_of_keys_stay_readable(ppage):
    """300 varying keys: no more axes than fit (MIN_SPACING px apart, MAX_AXES at most),
    a note saying how many were left out and naming them, the metric's axis and a brushed
    key's always drawn, and headers that never overlap; hovering a header names it."""
    ppage.open("#/runs?project=wide&pc=1")
    ppage.wait_for_selector(PANEL)
    canvas = ppage.locator("[data-testid='parallel'] canvas")
    axes, limit = int(canvas.get_attribute("data-axes")), int(canvas.get_attribute("data-max-axes"))
    width = canvas.bounding_box()["width"]
    assert 2 <= axes <= limit <= 24 and limit == min(24, int((width - 100) // 60) + 1)
    left_out = int(canvas.get_attribute("data-left-out"))
    assert axes + left_out == WIDE_KEYS + 1  # the keys and the metric
    note = ppage.locator("[data-testid='pc-left-out']")
    assert note.inner_text().startswith(f"{left_out} of {WIDE_KEYS + 1} axes not drawn ")
    # k000 differs in one run only: left out; the title names every one left out
    names = note.get_attribute("title").split("\n")
    assert len(names) == left_out and "k000" in names
    boxes, _ = _boxes(canvas)
    assert "loss (last)" in [b[4] for b in boxes]
    _assert_apart(*_boxes(canvas))
    ppage.shot("parallel-300-keys")
    # a brushed key is drawn however little it varies, and its brush applies
    ppage.open("#/runs?project=wide&pc=1&pcb=" + quote(json.dumps({"k000": [0.5, 1]})))
    ppage.wait_for_selector(PANEL)
    assert int(canvas.get_attribute("data-axes")) == axes
    assert "k000" in [b[4] for b in _boxes(canvas)[0]]
    ppage.wait_for_function("document.querySelector(\"[data-testid='brush-note']\").textContent"
                            " === 'brushing keeps 1 run'")
    # the first axis (k000, by key order) is named by hovering its header
    frame = canvas.bounding_box()
    ppage.mouse.move(frame["x"] + 50, frame["y"] + 10)
    assert canvas.get_attribute("title").startswith("k000: ")


@pytest.mark.parametrize("width", [1400, 700])
def test_parallel_headers_take_two_rows_and_shorten_when_long(ppage, width):
    """Long nested keys: the headers alternate over two rows and keep the end of their
    names ("…" and the rest); none overlaps another, and hovering one names it in full."""
    ppage.set_viewport_size({"width": width, "height": 900})
    ppage.open("#/runs?project=nested&pc=1")
    ppage.wait_for_selector(PANEL)
    canvas = ppage.locator("[data-testid='parallel'] canvas")
    boxes, frame_width = _boxes(canvas)
    _assert_apart(boxes, frame_width)
    headers = [b for b in boxes if b[4].startswith("…")]
    assert headers and all(any(k.endswith(h[4][1:]) for k in NESTED_KEYS) for h in headers), headers
    assert len({round(h[1]) for h in headers}) == 2  # two rows
    frame = canvas.bounding_box()
    first = min(headers, key=lambda b: b[0])
    ppage.mouse.move(frame["x"] + (first[0] + first[2]) / 2, frame["y"] + (first[1] + first[3]) / 2)
    title = canvas.get_attribute("title")
    assert title.startswith(NESTED_PREFIX) and title.split(":")[0].endswith(first[4][1:]), (title, first)
    ppage.shot(f"parallel-nested-{width}")


def test_the_panel_fits_a_narrow_window(ppage):
    """At 700 px the scatter (at least 300 px wide) goes under the parallel coordinates
    instead of running off the page."""
    ppage.set_viewport_size({"width": 700, "height": 900})
    ppage.open("#/runs?project=spread&pc=1")
    ppage.wait_for_selector("[data-testid='scatter'][data-ready='1']")
    page_width = ppage.evaluate("document.documentElement.clientWidth")
    for testid in ("parallel", "scatter"):
        box = ppage.locator(f"[data-testid='{testid}'] canvas").bounding_box()
        assert box["x"] >= 0 and box["x"] + box["width"] <= page_width, (testid, box)
    ppage.shot("parallel-narrow")


def test_a_log_axis_over_hundreds_of_decades_has_a_few_round_ticks(ppage):
    ppage.open("#/runs?project=spread")
    ticks = ppage.evaluate("""async () => {
        const { axisOf } = await import("/static/js/parcoords.js");
        const values = [];
        for (let e = -300; e <= 0; e += 3) values.push(Number(`1e${e}`));
        return axisOf(values.map((v) => ({ v })), { get: (r) => r.v }).ticks.map((t) => t[1]);
    }""")
    assert 3 <= len(ticks) <= 10, ticks  # 300 decades stacked 23 labels
    assert "1e-250" in ticks and "1e-300" in ticks


def test_an_infinite_value_is_its_own_category_named_inf(ppage):
    ppage.open("#/runs?project=spread")
    ticks = ppage.evaluate("""async () => {
        const { axisOf } = await import("/static/js/parcoords.js");
        const values = [1, 2, Infinity, -Infinity, NaN, "a"];
        const axis = axisOf(values.map((v) => ({ v })), { get: (r) => r.v });
        return [axis.kind, axis.ticks.map((t) => t[1]), values.map((v) => axis.pos(v))];
    }""")
    kind, labels, positions = ticks
    assert kind == "cat" and sorted(labels) == sorted(["1", "2", "inf", "-inf", "nan", "a"])
    assert len(set(positions)) == 6  # none shares a place with another


def test_long_category_labels_are_cut_with_an_ellipsis_and_named_in_full(ppage, artifacts):
    """A long string was squeezed into an unreadable (for 3,000 characters: a grey) bar;
    it is cut with "…", inside the panel, and the axis' tooltip names it in full."""
    ppage.open("#/runs?project=strings&pc=1")
    ppage.wait_for_selector(PANEL)
    canvas = ppage.locator("[data-testid='parallel'] canvas")
    boxes, width = _boxes(canvas)
    _assert_apart(boxes, width)
    texts = [b[4] for b in boxes]
    assert "adam" in texts and "rmsprop" in texts, texts
    cut = [t for t in texts if t.endswith("…")]
    assert any(t.startswith("LLL") for t in cut) and all(len(t) < 120 for t in texts), texts
    for b in boxes:  # the box is the text's own width: nothing squeezed
        if b[4].startswith("L"):
            assert b[2] - b[0] >= 3 * len(b[4]), b
    header = next(b for b in boxes if b[4] == "opt")
    canvas.hover(position={"x": (header[0] + header[2]) / 2, "y": 150})
    title = canvas.get_attribute("title")
    assert title.startswith("opt: 4 values\n") and "rmsprop" in title
    assert ("L" * 300 + "…") in title
    canvas.screenshot(path=str(artifacts / "parallel-long-strings.png"))


def test_a_key_whose_values_differ_only_where_masked_is_constant(ppage):
    """Two runs whose db.url differs only in the password both show
    mysql://u:***@h/db: the key is no varying column and has no parallel axis (which
    would also tell that the passwords differ); it is among the constant ones."""
    ppage.open("#/runs?project=masked&pc=1")
    box = ppage.wait_for_selector(PANEL)
    headers = ppage.locator("[data-testid^='col-']").evaluate_all(
        "els => els.map(e => e.dataset.testid)")
    assert "col-c:lr" in headers and "col-c:db.url" not in headers, headers
    canvas = box.query_selector("canvas")
    labels = json.loads(canvas.get_attribute("data-labels"))
    assert not any("db.url" in str(b[-1]) or "***" in str(b[-1]) for b in labels), labels
    ppage.open("#/runs?project=masked&const=1")
    ppage.wait_for_selector("[data-testid='col-c:db.url']")
    assert "***" in ppage.locator("body").inner_text()
    assert "hunter2" not in ppage.content()


def test_tag_chips_quote_a_tag_as_the_cli_does(ppage):
    """Tag " sp " showed as sp and the empty tag as a blank chip: chips quote a tag empty,
    with space at an end, a comma or a quote as JSON (as ato runs does), as text."""
    ppage.open("#/runs?project=masked")
    ppage.wait_for_selector("[data-testid='row-count']")
    cell = ppage.locator(".tags").first
    assert cell.locator(".tag").evaluate_all("els => els.map(e => e.textContent)") == CHIPS
    assert cell.locator(".tag").evaluate_all("els => els.map(e => e.title)") == CHIPS
    ppage.locator("[data-testid='run-link']").first.click()
    tags = ppage.wait_for_selector("[data-testid='run-tags']")
    assert [t.text_content() for t in tags.query_selector_all(".tag")] == CHIPS
    assert tags.inner_text().count("  two  spaces  ") == 1  # spaces kept, not collapsed
