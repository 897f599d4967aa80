"""What the dashboard does with awkward data and awkward addresses: a series holding
±inf/NaN still draws its finite points (the rest named on the card), a one-point metric
is centred, every view names a URL parameter with a bad value (and the values it takes)
while showing what it can, unknown run ids on Charts are named, and Charts is disabled
for more runs than a page takes.  A database of its own, written through the real
SQLLogger; Debian's Chromium via Playwright."""

from __future__ import annotations

import math

import pytest

from tests.ui.populate import config_for, logger_for

WARN = "[data-testid='param-warning']"


def populate(url: str) -> dict:
    """Project ``odd``: run ``inf`` (loss: nan@0, inf@1, then finite; also -inf at 50),
    run ``plain`` (finite loss), run ``one`` (a single loss point at step 7); lr and seed vary."""
    log = logger_for(url, "odd")
    ids = {}
    for name, lr, seed in [("inf", 0.1, 0), ("plain", 0.01, 1), ("one", 0.001, 2)]:
        ids[name] = log.run(config=config_for(url, "odd", lr=lr, seed=seed))
        if name == "one":
            log.log_metric("loss", 0.25, 7)
        else:
            for step in range(100):
                v = 1.0 / (1 + step)
                if name == "inf":
                    v = {0: math.nan, 1: math.inf, 50: -math.inf}.get(step, v)
                log.log_metric("loss", v, step)
        log.finish("completed")
    return ids


@pytest.fixture(scope="module")
def odd_server(tmp_path_factory):
    from tests.ui.conftest import served

    url = f"sqlite:///{tmp_path_factory.mktemp('odd') / 'experiments.db'}"
    yield from served(url, populate(url))


@pytest.fixture
def opage(browser, odd_server, artifacts):
    from tests.ui.conftest import browser_page

    yield from browser_page(browser, odd_server.base, artifacts, accept_downloads=True)


def _card(page):
    page.wait_for_selector("[data-testid='chart-card']:first-child[data-drawn]")
    return page.locator("[data-testid='chart-card']").first


def _y_ticks(card):
    import json

    return [t for t in json.loads(card.get_attribute("data-yticks") or "[]") if t]


@pytest.mark.parametrize("extra", ["", "&smooth=0.5", "&log=1", "&group=noseed"])
def test_non_finite_values_leave_the_finite_points_drawn(opage, odd_server, extra):
    i, p = odd_server.info["inf"], odd_server.info["plain"]
    opage.open(f"#/charts?runs={i},{p}{extra}")
    card = _card(opage)
    # a y axis with labels, both curves, the y range from the finite values (max 1/3)
    assert _y_ticks(card), "no y axis drawn"
    assert card.get_attribute("data-series") == "2"
    assert float(card.get_attribute("data-ymax")) == pytest.approx(1.0)  # plain's step 0
    note = card.locator("[data-testid='nonfinite-note']")
    assert card.get_attribute("data-nonfinite") == "3"
    assert note.is_visible()
    text = note.inner_text()
    assert text.startswith("3 non-finite values not drawn:")
    assert f"#{i} step 0 = nan" in text and f"#{i} step 1 = inf" in text
    assert f"#{i} step 50 = -inf" in note.get_attribute("title")
    opage.shot("chart-nonfinite" + extra.replace("&", "-").replace("=", ""))


def test_non_finite_chart_exports_a_png_and_the_run_page_draws(opage, odd_server):
    i = odd_server.info["inf"]
    opage.open(f"#/run/{i}")
    card = _card(opage)
    assert _y_ticks(card)
    assert float(card.get_attribute("data-ymax")) == pytest.approx(1 / 3)  # steps 0 and 1 are nan/inf: 1/(1+2)
    with opage.expect_download() as dl:
        card.locator("[data-testid='export-png']").click()
    data = open(dl.value.path(), "rb").read()
    assert data[:8] == b"\x89PNG\r\n\x1a\n" and len(data) > 2000


def test_a_finite_series_has_no_note(opage, odd_server):
    opage.open(f"#/charts?runs={odd_server.info['plain']}")
    card = _card(opage)
    assert card.get_attribute("data-nonfinite") == "0"
    assert not card.locator("[data-testid='nonfinite-note']").is_visible()


def test_a_single_point_is_centred(opage, odd_server):
    opage.open(f"#/charts?runs={odd_server.info['one']}")
    card = _card(opage)
    import json

    lo, hi = json.loads(card.get_attribute("data-xrange"))
    # step 7 sits in the middle of the x axis, not at the left edge of a 0..100 axis
    assert lo < 7 < hi and abs((7 - lo) - (hi - 7)) < 1e-9


# ---------------------------------------------------------------------------- URL parameters
def _warning(page, name):
    page.wait_for_selector(WARN)
    item = page.locator(f"{WARN} [data-testid='param-{name}']")
    assert item.count() == 1, page.inner_text(WARN)
    return item.inner_text()


def test_charts_names_each_bad_option_and_keeps_drawing(opage, odd_server):
    i, p = odd_server.info["inf"], odd_server.info["plain"]
    opage.open(f"#/charts?runs={i},{p}&group=seed&smooth=7&x=epoch&log=yes&legend=nope")
    assert _warning(opage, "group") == ("group=seed: expected hash, noseed, or c:<config key> for a key "
                                        "that varies here (c:lr, c:seed)")
    assert _warning(opage, "smooth") == "smooth=7: expected a number from 0 to 0.99"
    assert "step, wall, rel" in _warning(opage, "x")
    assert "1 (on) or 0 (off)" in _warning(opage, "log")
    assert "lr, seed" in _warning(opage, "legend")
    # the defaults are used: no grouping (one line per run), smoothing 0
    card = _card(opage)
    assert card.get_attribute("data-series") == "2"
    assert opage.locator("[data-testid='smoothing']").input_value() == "0"
    assert opage.locator("[data-testid='group-by']").input_value() == ""
    opage.shot("charts-bad-params")
    # a good value: no box
    opage.open(f"#/charts?runs={i},{p}&group=c:seed&smooth=0.5")
    _card(opage)
    assert opage.locator(WARN).count() == 0


def test_charts_names_unknown_run_ids(opage, odd_server):
    i, p = odd_server.info["inf"], odd_server.info["plain"]
    opage.open("#/charts?runs=9999")
    box = opage.locator("[data-testid='not-found']")
    assert box.locator("[data-testid='error']").inner_text() == "no run with id 9999"
    assert box.locator("[data-testid='back-link']").get_attribute("href") == "#/runs"
    opage.open(f"#/charts?runs={i},9999,{p},9998")
    missing = opage.locator("[data-testid='charts-missing']")
    assert missing.locator("[data-testid='error']").inner_text() == "no runs with ids 9999, 9998"
    assert missing.locator("[data-testid='charts-found']").get_attribute("href") == f"#/charts?runs={i},{p}"
    assert opage.locator("h2").inner_text() == "Charts of 2 runs"
    _card(opage)
    opage.open(f"#/charts?runs={i},x1,-3")
    assert "x1,-3" in _warning(opage, "runs")


def test_a_sort_on_a_column_a_filter_hid_stays_without_a_warning(opage, odd_server):
    """A sort on a config key the table hides (constant among the shown runs, as lr is
    once a filter keeps one lr) or a metric no column shows is still a sort, never named
    as a bad parameter."""
    opage.open("#/runs?project=odd&sort=c:experiment.project_name&desc=1")
    opage.wait_for_selector("[data-testid='runs-table'][data-ready='1']")
    assert opage.locator(WARN).count() == 0
    assert opage.get_attribute("[data-testid='row-count']", "data-count") == "3"
    opage.open("#/runs?project=odd&sort=m:max:loss&m=-")  # a metric no column shows
    opage.wait_for_selector("[data-testid='runs-table'][data-ready='1']")
    assert opage.locator(WARN).count() == 0
    # a key no run has is still named, with an example that is not the key itself
    opage.open("#/runs?project=odd&sort=c:nokey")
    assert "(e.g. c:lr)" in _warning(opage, "sort") or "(e.g. c:seed)" in _warning(opage, "sort")


def test_runs_table_names_bad_sort_status_and_flags(opage, odd_server):
    opage.open("#/runs?project=odd&sort=objective&desc=1&status=done&const=2&m=acc")
    opage.wait_for_selector("[data-testid='runs-table'][data-ready='1']")
    sort = _warning(opage, "sort")
    assert sort.startswith("sort=objective: expected a column:") and "m:last:loss" in sort
    assert "running, completed" in _warning(opage, "status")
    assert "const=2" in _warning(opage, "const")
    assert "metric keys: loss" in _warning(opage, "m")
    # ignored for real: the metric columns are the default ones, not none
    assert opage.locator("[data-testid='col-m:last:loss']").count() == 1
    # the table shows every run, sorted by id descending (sort falls back to id; desc holds)
    rows = opage.locator(".tr").evaluate_all("rs => rs.map(r => Number(r.dataset.run))")
    assert rows == sorted(rows, reverse=True) and len(rows) == 3
    assert "id, status, tags, start, duration" in sort  # every fixed column it can sort by
    opage.open("#/runs?project=nope")
    assert _warning(opage, "project") == "project=nope: expected a project: odd"
    # ignored for real: every run shows, with the project column, the picker on "all"
    opage.wait_for_selector("[data-testid='runs-table'][data-ready='1']")
    assert opage.locator(".tr").count() == 3
    assert opage.locator("[data-testid='col-project']").count() == 1
    assert opage.eval_on_selector("#project", "s => s.value") == ""
    opage.open("#/runs?sort=bogus")
    assert "id, project, status, tags, start, duration" in _warning(opage, "sort")
    opage.open("#/runs?project=odd&sort=c:lr&desc=1")
    opage.wait_for_selector("[data-testid='runs-table'][data-ready='1']")
    assert opage.locator(WARN).count() == 0


def test_compare_and_run_and_models_name_bad_parameters(opage, odd_server):
    i, p = odd_server.info["inf"], odd_server.info["plain"]
    opage.open(f"#/compare?runs={i},{p}&all=yes&smooth=-1")
    assert "all=yes" in _warning(opage, "all")
    assert "smooth=-1" in _warning(opage, "smooth")
    assert opage.locator("[data-testid='metric-compare']").count() == 1
    # the same run twice is one run: compare needs two different ones
    opage.open(f"#/compare?runs={i},{i}")
    assert opage.locator("[data-testid='error']").inner_text() == \
        "Compare takes 2 to 10 different runs, got 1."
    opage.open(f"#/run/{i}?x=steps")
    assert "x=steps" in _warning(opage, "x")
    _card(opage)
    opage.open("#/models?kind=models")
    assert _warning(opage, "kind") == "kind=models: expected one of model, dataset"


def test_charts_button_is_disabled_past_the_limit(opage, page, server):
    # 1,005 runs selected: the sweep's 1,000 in the table, five of another project beside
    picked = [*server.info["sweep"], *server.info["runs"][:5]]
    page.open(f"#/runs?project=sweep&sel={','.join(map(str, picked))}")
    page.wait_for_selector("[data-testid='runs-table'][data-ready='1']")
    button = page.locator("[data-testid='open-charts']")
    assert button.inner_text() == "Charts (1005)"
    assert button.is_disabled()
    assert button.get_attribute("title") == "charts take at most 1,000 runs"
    assert page.locator(WARN).count() == 0  # every id is a run
    ids = ",".join(str(n) for n in range(1, 1202))
    opage.open(f"#/charts?runs={ids}")
    assert opage.locator("[data-testid='error']").inner_text() == \
        "Charts take at most 1,000 runs, got 1,201."
    # no run at all: the page says what to do and links back to the table
    opage.open("#/charts")
    empty = opage.locator("[data-testid='charts-empty']")
    assert empty.inner_text() == "Select runs in the table first: ← runs"
    assert empty.locator("[data-testid='back-link']").get_attribute("href") == "#/runs"


def test_a_parameter_given_twice_is_named(opage):
    opage.open("#/runs?project=odd&where=lr%20%3C%201&where=seed%20%3E%200")
    assert _warning(opage, "where") == ("where is given 2 times (where=lr < 1, where=seed > 0): "
                                        "only the first, where=lr < 1, is used")
    assert opage.get_attribute("[data-testid='row-count']", "data-count") == "3"


#: The one rule every view states for a run id (as the API does: 1 to 2^63 - 1).
RULE = "run ids: 1 to 9223372036854775807 in plain digits"


def test_one_run_id_rule_and_message_on_every_view(opage, odd_server):
    """Charts said "positive integers up to 9007199254740991" (2^53 - 1) while the run page
    and the API said 1 to 2^63 - 1: one rule, one message; an id past 2^53 up to 2^63 - 1 is
    an id (asked for, not a run here), past it not."""
    i = odd_server.info["inf"]
    opage.open(f"#/charts?runs={i},0,{2**63 - 1},abc,01,{2**63}")
    assert _warning(opage, "runs") == (f"runs=0,abc,01,{2**63}: expected {RULE}, separated by "
                                       "commas")
    assert opage.locator("[data-testid='charts-missing'] [data-testid='error']").inner_text() \
        == f"no run with id {2**63 - 1}"
    opage.open("#/compare?runs=0,abc")
    assert _warning(opage, "runs") == f"runs=0,abc: expected {RULE}, separated by commas"
    opage.open("#/run/0")
    assert opage.locator("[data-testid='error']").inner_text() == \
        f'"0" is not a run id: expected {RULE} (#/run/12)'


def test_an_id_past_what_a_page_number_holds_is_named_as_typed(opage, odd_server):
    # read as a number, 99999999999999999999 was echoed as "no run with id 100000000000000000000"
    i = odd_server.info["inf"]
    opage.open(f"#/charts?runs={i},99999999999999999999")
    assert _warning(opage, "runs") == ("runs=99999999999999999999: expected run ids: 1 to "
                                       "9223372036854775807 in plain digits, separated by commas")
    assert opage.locator("h2").inner_text() == "Charts of 1 run"


@pytest.mark.parametrize("typed", ["99999999999999999999", str(2**63)])
def test_a_run_page_id_no_database_holds_is_named_as_typed(opage, typed):
    # read as a Number, 99999999999999999999 was asked for and named as 100000000000000000000
    opage.open(f"#/run/{typed}")
    assert opage.locator("[data-testid='error']").inner_text() == \
        f'"{typed}" is not a run id: expected {RULE} (#/run/12)'



def test_a_run_page_id_past_2_53_is_asked_for_as_typed(opage):
    opage.open("#/run/9007199254740993")  # a Number would make it ...992
    assert opage.locator("[data-testid='error']").inner_text() == \
        "no run with id 9007199254740993"


def test_selected_ids_that_match_no_run_are_named_and_not_counted(opage, odd_server):
    i, p = odd_server.info["inf"], odd_server.info["plain"]
    opage.open(f"#/runs?project=odd&sel={i},{p},99999,123456")
    opage.wait_for_selector("[data-testid='runs-table'][data-ready='1']")
    assert _warning(opage, "sel") == ("sel=99999,123456: expected ids of runs in this "
                                      "database (2 ids matched none)")
    assert opage.locator("[data-testid='open-charts']").inner_text() == "Charts (2)"
    assert opage.evaluate("new URLSearchParams(location.hash.split('?')[1]).get('sel')") == f"{i},{p}"


def test_parallel_coordinates_put_a_wide_positive_key_on_a_log_axis(opage):
    import json

    opage.open("#/runs?project=odd&pc=1")
    box = opage.wait_for_selector("[data-testid='parallel'][data-log-axes]")
    # lr 0.001..0.1 spans two decades: log; seed 0..2 does not
    assert json.loads(box.get_attribute("data-log-axes")) == ["lr"]
    opage.shot("parallel-log-axis")


def test_a_bad_where_names_the_filter_not_the_cli_option(opage):
    opage.open("#/runs?project=odd&where=lr%20%3C")
    error = opage.wait_for_selector("[data-testid='filter-error']:has-text('position')").inner_text()
    assert error.startswith("in the where filter 'lr <' at position") and "--where" not in error


def test_wall_time_ticks_read_as_the_rest_of_the_page(opage, odd_server):
    import json
    import re

    opage.open(f"#/charts?runs={odd_server.info['plain']}&x=wall")
    card = _card(opage)
    opage.wait_for_selector("[data-testid='chart-card'][data-xticks]")
    ticks = [t for t in json.loads(card.get_attribute("data-xticks")) if t]
    # one day: 24-hour time of day, never "9:07pm" or a month/day/year (sub-second digits
    # when the axis spans under a second, as this run's few points do)
    assert ticks and all(re.fullmatch(r"\d\d:\d\d(:\d\d(\.\d{1,3})?)?", t) for t in ticks), ticks


def test_default_metrics_never_hide_the_only_metric_of_some_runs(opage):
    opage.open("#/runs?project=odd")
    opage.wait_for_selector("[data-testid='runs-table'][data-ready='1']")
    chosen = opage.evaluate("""async () => {
        const { defaultMetrics } = await import("/static/js/runs.js");
        const keys = ["a", "b", "c", "d", "e", "f", "g", "objective"];
        const runs = [1, 2, 3, 4].map((id) => ({ id }));
        const s = { last: 1 };
        const sums = { 1: { a: s, b: s, c: s, d: s, e: s, f: s, g: s }, 2: { a: s, g: s },
                       3: { objective: s }, 4: {} };
        return { many: defaultMetrics(runs, sums, keys),
                 few: defaultMetrics(runs, sums, ["b", "a"]) };
    }""")
    assert "objective" in chosen["many"] and len(chosen["many"]) == 6
    assert chosen["many"] == sorted(chosen["many"], key=["a", "b", "c", "d", "e", "f", "g",
                                                          "objective"].index)
    assert chosen["few"] == ["b", "a"]


# ---------------------------------------------------------------------------- every view
# Each view names a parameter it does not take (a typo such as smoth=) as well as a bad
# value, and behaves as if the parameter were absent: never a blank page or a JS error
# (browser_page fails a test on any).
def test_run_page_names_a_bad_address_and_bad_parameters(opage, odd_server):
    for part in ["abc", "0", "-3", "1.5", "01", "+1", "\uff13"]:
        opage.open(f"#/run/{part}")
        box = opage.locator("[data-testid='not-found']")
        assert box.locator("[data-testid='error']").inner_text() == \
            f'"{part}" is not a run id: expected {RULE} (#/run/12)'
        assert box.locator("[data-testid='back-link']").get_attribute("href") == "#/runs"
    i = odd_server.info["inf"]
    opage.open(f"#/run/{i}?smoth=0.5&smooth=2&group=c:lr&traces=on")
    assert _warning(opage, "smoth").startswith("smoth=0.5: not a parameter of this view (it takes project, x, log,")
    assert _warning(opage, "smooth") == "smooth=2: expected a number from 0 to 0.99"
    assert "none varies" in _warning(opage, "group")  # one run: no key varies
    assert "traces=on" in _warning(opage, "traces")
    card = _card(opage)
    assert card.get_attribute("data-series") == "1"  # one ungrouped line, unsmoothed
    assert opage.locator("[data-testid='smoothing']").input_value() == "0"
    assert opage.locator("[data-testid='run-config']").count() == 1
    opage.shot("run-bad-params")


def test_compare_names_bad_chart_options_and_draws_the_defaults(opage, odd_server):
    i, p = odd_server.info["inf"], odd_server.info["plain"]
    opage.open(f"#/compare?runs={i},{p}&group=c:nokey&x=epoch&log=2&zzz=1&bk=yes")
    assert "c:lr, c:seed" in _warning(opage, "group")
    assert "step, wall, rel" in _warning(opage, "x")
    assert "log=2" in _warning(opage, "log")
    assert "bk=yes" in _warning(opage, "bk")
    assert "it takes project, runs, all, bk, x," in _warning(opage, "zzz")
    card = _card(opage)
    assert card.get_attribute("data-series") == "2"  # not grouped
    assert opage.locator("[data-testid='x-axis']").input_value() == "step"
    assert opage.locator("[data-testid='log-scale']").is_checked() is False
    assert opage.locator("[data-testid='config-diff']").count() == 1
    opage.shot("compare-bad-params")


def test_runs_table_ignores_a_bad_where_and_an_unknown_parameter(opage):
    opage.open("#/runs?project=odd&where=lr%20%3C%3C%201&colour=red")
    opage.wait_for_selector("[data-testid='runs-table'][data-ready='1']")
    error = opage.locator("[data-testid='filter-error']")
    assert error.inner_text().startswith("in the where filter 'lr << 1' at position")
    assert error.inner_text().endswith("ignored: the table shows the runs without this filter")
    assert opage.locator("[data-testid='filter-where']").input_value() == "lr << 1"  # to fix it
    assert opage.locator(".tr").count() == 3  # every run of the project, as without where
    assert _warning(opage, "colour").startswith("colour=red: not a parameter of this view")
    # with an unknown project too: both ignored, every run shows (it showed none)
    opage.open("#/runs?project=nope&where=lr%20%3C")
    opage.wait_for_selector("[data-testid='runs-table'][data-ready='1']")
    assert opage.locator("[data-testid='filter-error']").get_attribute("data-ignored") == "where"
    assert _warning(opage, "project") == "project=nope: expected a project: odd"
    assert opage.locator(".tr").count() == 3
    # m=- (every metric unticked) is no metric column, and not a bad value
    opage.open("#/runs?project=odd&m=-")
    opage.wait_for_selector("[data-testid='runs-table'][data-ready='1']")
    assert opage.locator(WARN).count() == 0
    assert opage.locator("[data-testid='col-m:last:loss']").count() == 0
    assert opage.locator("[data-testid='metric-picker'] summary").inner_text() == "metrics (0/1)"


def test_parallel_coordinates_name_a_bad_metric_and_scatter_key(opage):
    opage.open("#/runs?project=odd&pc=1&pcm=acc&sx=depth&pcb=%7B%22lr%22%3A%5B0.5%2C2%5D%7D")
    assert _warning(opage, "pcm") == "pcm=acc: expected a metric key: loss"
    assert _warning(opage, "sx") == "sx=depth: expected a config key that varies here: lr, seed"
    assert "0 <= from <= to <= 1" in _warning(opage, "pcb")
    # the panel as without them: the first metric, the default scatter x, no brush
    opage.wait_for_selector("[data-testid='parallel'][data-ready='1']")
    assert opage.locator("[data-testid='pc-metric']").input_value() == "loss"
    assert opage.locator("[data-testid='scatter-x']").input_value() in ("lr", "seed")
    assert opage.get_attribute("[data-testid='row-count']", "data-count") == "3"
    opage.shot("parallel-bad-params")


def test_search_pages_name_any_parameter(opage, page, server):
    opage.open("#/search?rung=2")
    assert _warning(opage, "rung") == "rung=2: not a parameter of this view (it takes project)"
    assert opage.locator("[data-testid='no-studies']").count() == 1
    page.open(f"#/search/{server.info['study']}?bracket=0")
    page.wait_for_selector("[data-testid='ladder'][data-ready='1']")
    assert _warning(page, "bracket").startswith("bracket=0: not a parameter of this view")
    assert page.locator("[data-testid='trial-promoted']").count() == 2
    # the header's project picks the searches of that project
    page.open("#/search?project=search")
    assert page.locator("[data-testid='study-link']").count() == 1
    page.open("#/search?project=sweep")
    assert page.locator("[data-testid='no-studies']").inner_text().startswith(
        "No tracked searches in project sweep")


def test_models_list_names_bad_and_unknown_parameters(opage):
    opage.open("#/models?kind=model&sort=name&q=x")
    assert _warning(opage, "sort") == "sort=name: not a parameter of this view (it takes project, kind, q)"
    assert opage.locator(WARN + " li").count() == 1  # kind and q are good
