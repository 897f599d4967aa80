"""What a newcomer sees on a search's runs: search bookkeeping keys (``__dunder__``) kept
out of the varying columns and compare's differences (behind a counted toggle), sub-second
durations in ms, singular/plural counts, and one "not found" view (message in place, a
link back) for unknown runs, compare ids, models, versions and pages.  A database of its
own, written through the real SQLLogger and registry; Debian's Chromium via Playwright."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest

from ato.adict import ADict

SEARCH_A, SEARCH_B = "a1b2c3d4e5f6", "0f9e8d7c6b5a"


def populate(url: str, root) -> dict:
    """Project ``hb``: four trials of two searches (lr varies; ``__hyperopt_id__``,
    ``__num_halved__``, ``__budget__`` and a nested ``search.__bracket__`` are
    bookkeeping), each finished at once (a few ms), one metric point each but the last
    (three); then run ``m`` logs model ``net`` v1 and v2."""
    from ato.db_routers.sql.manager import SQLLogger

    store = str(root / "store")

    def logger(**values):
        cfg = ADict(experiment={"project_name": "hb", "sql": {"db_path": url, "store": store}},
                    **values)
        return SQLLogger(cfg, flush_interval=60, heartbeat_interval=3600, handle_signals=False)

    trials = [(0.1, SEARCH_A, 0, 1, 0), (0.1, SEARCH_B, 1, 3, 1),
              (0.01, SEARCH_A, 0, 1, 0), (0.01, SEARCH_B, 2, 9, 1)]
    ids = []
    for i, (lr, hid, halved, budget, bracket) in enumerate(trials):
        log = logger(lr=lr, optimizer="adam", __hyperopt_id__=hid, __num_halved__=halved,
                     __budget__=budget, search={"__bracket__": bracket, "eta": 3})
        with log:
            ids.append(log.get_current_run_id())
            for step in range(3 if i == 3 else 1):
                log.log_metric("objective", 0.5 + 0.1 * i + 0.01 * step, step)
    log = logger(lr=0.5, optimizer="sgd")
    ckpt = root / "ckpt"
    ckpt.mkdir()
    with log:
        m = log.get_current_run_id()
        for n in (1, 2):
            (ckpt / f"w{n}.pt").write_bytes(b"w" * 100 * n)
            log.log_model("net", ckpt / f"w{n}.pt", step=n, aliases=["best"] if n == 1 else ())
    return {"trials": ids, "m": m}


@pytest.fixture(scope="module")
def views_db(tmp_path_factory):
    root = tmp_path_factory.mktemp("views")
    before = os.environ.get("ATO_CACHE_DIR")
    os.environ["ATO_CACHE_DIR"] = str(root / "statcache")
    url = f"sqlite:///{root / 'experiments.db'}"
    try:
        yield url, populate(url, root)
    finally:
        if before is None:
            os.environ.pop("ATO_CACHE_DIR", None)
        else:
            os.environ["ATO_CACHE_DIR"] = before


@pytest.fixture(scope="module")
def vserver(views_db):
    from tests.ui.conftest import served

    yield from served(*views_db)


@pytest.fixture
def vpage(browser, vserver, artifacts):
    from tests.ui.conftest import browser_page

    yield from browser_page(browser, vserver.base, artifacts)


def _rerendered(page):
    page.wait_for_function("document.querySelector('#view').dataset.ready === '1'")


def _config_columns(page):
    return page.locator(".thead .th.cfg").evaluate_all("ns => ns.map(n => n.title)")


BOOKKEEPING = ["__budget__", "__hyperopt_id__", "__num_halved__", "search.__bracket__"]


# ---------------------------------------------------------------------------- runs table
def test_bookkeeping_keys_are_not_varying_columns_until_asked_for(vpage, vserver):
    vpage.open("#/runs?project=hb")
    vpage.wait_for_selector("[data-testid='runs-table'][data-ready='1']")
    assert _config_columns(vpage) == ["lr", "optimizer", "search.eta"]
    toggle = vpage.locator("[data-testid='toggle-bookkeeping']")
    assert toggle.inner_text() == "4 search bookkeeping keys (__…__) hidden"
    assert sorted(toggle.get_attribute("title").split(", ")) == BOOKKEEPING
    toggle.click()
    _rerendered(vpage)
    vpage.wait_for_selector("[data-testid='runs-table'][data-ready='1']")
    assert "bk=1" in vpage.url
    assert _config_columns(vpage) == ["lr", "optimizer", "search.eta", *BOOKKEEPING]
    assert vpage.inner_text("[data-testid='toggle-bookkeeping']") == \
        "hide 4 search bookkeeping keys"
    # constant keys (experiment.*) are a separate, counted toggle
    assert "constant config key" in vpage.inner_text("[data-testid='toggle-constant']")
    vpage.shot("views-runs-bookkeeping")


def test_a_table_without_bookkeeping_has_no_toggle(vpage):
    vpage.open("#/runs?project=hb&where=optimizer%20%3D%3D%20'sgd'")
    vpage.wait_for_selector("[data-testid='runs-table'][data-ready='1']")
    assert vpage.locator("[data-testid='toggle-bookkeeping']").count() == 0


def test_short_runs_show_milliseconds_never_zero_seconds(vpage, vserver):
    vpage.open("#/runs?project=hb")
    vpage.wait_for_selector("[data-testid='runs-table'][data-ready='1']")
    col = vpage.evaluate("[...document.querySelectorAll('.thead .th')]"
                         ".findIndex((n) => n.dataset.testid === 'col-duration') + 1")
    texts = vpage.locator(f"[data-testid^='row-'] .td:nth-child({col})").all_inner_texts()
    assert len(texts) == 5
    assert all(t.endswith(" ms") for t in texts), texts
    vpage.open(f"#/run/{vserver.info['trials'][0]}")
    assert vpage.inner_text("[data-testid='run-duration']").endswith(" ms")


def test_duration_and_count_formatting(vpage):
    vpage.open("#/runs?project=hb")
    got = vpage.evaluate("""async () => {
      const u = await import('/static/js/util.js');
      const d = [null, 0, 0.0004, 0.001, 0.0064, 0.25, 0.9994, 1, 2.345, 12.34, 59.96, 75, 3725]
        .map(u.fmtDuration);
      const p = [0, 1, 2, 1234].map((n) => u.plural(n, 'point'));
      return { d, p, q: u.plural(1, 'key', 'keys'), b: ['__a__', 'x.__b__', '_c_', '__', 'a__b__'].map(u.isBookkeeping) };
    }""")
    assert got["d"] == ["–", "0 s", "< 1 ms", "1 ms", "6 ms", "250 ms", "999 ms", "1 s",
                        "2.35 s", "12.3 s", "60.0 s", "1 m 15 s", "1 h 2 m"]
    assert got["p"] == ["0 points", "1 point", "2 points", "1,234 points"]
    assert got["q"] == "1 key"
    assert got["b"] == [True, True, False, False, False]


def test_counts_are_singular_for_one(vpage, vserver):
    one, _, _, three = vserver.info["trials"]
    vpage.open(f"#/run/{one}")
    vpage.wait_for_selector("[data-testid='chart-card']:first-child[data-drawn]")
    assert vpage.inner_text("[data-testid='points-badge']") == "1 point"
    vpage.open(f"#/run/{three}")
    vpage.wait_for_selector("[data-testid='chart-card']:first-child[data-drawn]")
    assert vpage.inner_text("[data-testid='points-badge']") == "3 points"
    vpage.open(f"#/charts?runs={one}")
    assert vpage.inner_text("#view h2") == "Charts of 1 run"
    vpage.open(f"#/charts?runs={one},{three}")
    assert vpage.inner_text("#view h2") == "Charts of 2 runs"


# ---------------------------------------------------------------------------- compare
def _diff_keys(page):
    return page.locator("[data-testid='diff-row'] td:first-child").all_inner_texts()


def test_compare_differences_leave_bookkeeping_out_by_default(vpage, vserver):
    a, b, c, _ = vserver.info["trials"]
    vpage.open(f"#/compare?runs={b},{c}")
    assert _diff_keys(vpage) == ["lr"]
    toggle = vpage.locator("[data-testid='toggle-bookkeeping']")
    assert toggle.inner_text() == "4 search bookkeeping keys (__…__) hidden"
    toggle.click()
    _rerendered(vpage)
    assert _diff_keys(vpage) == [*BOOKKEEPING[:3], "lr", "search.__bracket__"]
    vpage.uncheck("[data-testid='only-diff']")
    _rerendered(vpage)
    assert "__hyperopt_id__" in _diff_keys(vpage) and "optimizer" in _diff_keys(vpage)
    # two trials that differ only in bookkeeping
    vpage.open(f"#/compare?runs={a},{b}")
    assert vpage.inner_text("[data-testid='config-identical']") == \
        "configs are identical apart from search bookkeeping"
    vpage.shot("views-compare-bookkeeping")
    # a trial beside the same config run outside the search (no bookkeeping keys: another
    # structural hash): the structure section agrees with the config section (it said
    # "2 different structures" where only __…__ keys differ)
    from ato.db_routers.sql.manager import SQLLogger

    store = os.path.join(os.path.dirname(vserver.url.removeprefix("sqlite:///")), "store")
    cfg = ADict(experiment={"project_name": "other", "sql": {"db_path": vserver.url,
                                                             "store": store}},
                lr=0.1, optimizer="adam", search={"eta": 3})
    with SQLLogger(cfg, flush_interval=60, heartbeat_interval=3600, handle_signals=False) as log:
        alone = log.get_current_run_id()
    vpage.open(f"#/compare?runs={a},{alone}")
    assert vpage.inner_text("[data-testid='structure-summary']") == \
        "identical structure apart from search bookkeeping"
    assert vpage.locator("[data-testid='structure-diff'] tr.differs").count() == 0


# ---------------------------------------------------------------------------- not found
def _not_found(page, message, back_href):
    box = page.locator("[data-testid='not-found']")
    assert box.count() == 1
    assert box.locator("[data-testid='error']").inner_text() == message
    assert page.locator(f"text={message}").count() == 1
    assert box.locator("[data-testid='back-link']").get_attribute("href") == back_href
    return box


def test_unknown_things_say_so_once_with_a_way_back(vpage, vserver):
    vpage.open("#/run/9999")
    _not_found(vpage, "no run with id 9999", "#/runs")
    vpage.locator("[data-testid='back-link']").click()
    vpage.wait_for_selector("[data-testid='runs-table'][data-ready='1']")

    vpage.open("#/nosuchpage")
    _not_found(vpage, "No page nosuchpage", "#/runs")
    vpage.open("#/search/nope")
    _not_found(vpage, "no study 'nope': no run is tagged study:nope", "#/search")
    vpage.open("#/models/model/nosuch")
    _not_found(vpage, "no model named 'nosuch'", "#/models")
    vpage.shot("views-model-not-found")


def test_compare_names_every_unknown_id(vpage, vserver):
    a, b = vserver.info["trials"][:2]
    vpage.open(f"#/compare?runs={a},9999")
    _not_found(vpage, "no run with id 9999", "#/runs")
    assert vpage.locator("[data-testid='compare-found']").count() == 0
    vpage.open(f"#/compare?runs={a},9998,{b},9999")
    box = _not_found(vpage, "no runs with ids 9998, 9999", "#/runs")
    assert box.locator("[data-testid='compare-found']").get_attribute("href") == \
        f"#/compare?runs={a},{b}"
    vpage.open("#/compare?runs=1")
    _not_found(vpage, "Compare takes 2 to 10 different runs, got 1.", "#/runs")


def test_unknown_version_is_said_in_the_lineage_box_and_the_page_stays(vpage):
    vpage.open("#/models/model/net?project=hb&v=99")
    lineage = vpage.locator("[data-testid='lineage']")
    box = _not_found(vpage, "model 'net' has no version 99 (versions 1..2)",
                     "#/models/model/net?project=hb")
    assert lineage.locator("[data-testid='not-found']").count() == 1
    assert "latest version (v2)" in box.inner_text()
    assert lineage.locator("h3").count() == 0  # no empty "lineage of" box
    assert vpage.locator("[data-testid='version-row']").count() == 2
    assert vpage.locator("[data-testid='alias-move']").count() >= 2
    vpage.shot("views-unknown-version")
    box.locator("[data-testid='back-link']").click()
    vpage.wait_for_selector("[data-testid='lineage'][data-version='2']")


# ---------------------------------------------------------------------------- API, CLI
def test_api_not_found_is_a_404_with_one_message(views_db):
    from starlette.testclient import TestClient

    from ato.ui.app import create_app

    url, _ = views_db
    with TestClient(create_app(url)) as c:
        r = c.get("/api/run/9999")
        assert (r.status_code, r.json()) == (404, {"error": "no run with id 9999"})
        r = c.get("/api/registry/version", params={"name": "net", "kind": "model",
                                                   "project": "hb", "ref": "99"})
        assert r.status_code == 404 and "no version 99" in r.json()["error"]
        r = c.get("/api/registry/asset", params={"name": "nosuch", "kind": "model"})
        assert r.status_code == 404 and "nosuch" in r.json()["error"]
        # the API keeps every key: hiding bookkeeping is the page's choice
        runs = c.get("/api/runs", params={"project": "hb"}).json()["runs"]
        assert all("__hyperopt_id__" in r["config"] for r in runs if r["config"]["lr"] != 0.5)
        assert all(r["duration"] < 1 for r in runs)


def test_help_describes_every_page():
    out = subprocess.run([sys.executable, "-m", "ato.cli", "ui", "--help"], capture_output=True,
                         text=True, timeout=60, check=True).stdout
    assert "models and datasets" in out.split("pages (")[0]  # the one-line description
    for page in ("Runs", "Run", "Charts", "Compare", "Searches", "Models"):
        assert f"\n  {page} " in out, page
    assert "lineage" in out and "alias" in out


def test_studies_list_counts_trials_as_the_study_page_does(tmp_path):
    """The re-evaluated winner (tagged ``final``) is not a trial on either page."""
    from starlette.testclient import TestClient

    from ato.db_routers.sql.manager import SQLLogger
    from ato.ui.app import create_app

    url = f"sqlite:///{tmp_path / 'experiments.db'}"
    cfg = ADict(experiment={"project_name": "hb", "sql": {"db_path": url}}, lr=0.1)
    log = SQLLogger(cfg, flush_interval=60, heartbeat_interval=3600, handle_signals=False)
    for tags in (["study:s9", "rung:0"], ["study:s9", "rung:0"], ["study:s9", "rung:1"],
                 ["study:s9", "final"], ["study:other", "rung:0"]):
        log.run(tags=tags, config=cfg)
        log.log_metric("objective", 0.5, 0)
        log.finish("completed")
    with TestClient(create_app(url)) as c:
        studies = {s["study"]: s for s in c.get("/api/studies").json()["studies"]}
        assert (studies["s9"]["trials"], studies["s9"]["final"]) == (3, 1)
        assert (studies["other"]["trials"], studies["other"]["final"]) == (1, 0)
        study = c.get("/api/study", params={"study": "s9"}).json()
        assert len(study["trials"]) == studies["s9"]["trials"] and len(study["final"]) == 1


def test_config_minus_seed_groups_ignore_bookkeeping(vpage):
    vpage.open("#/runs?project=hb")
    keys = vpage.evaluate("""async () => {
      const { groupKey } = await import('/static/js/charts.js');
      const run = (seed, extra) => ({ config: { lr: 0.1, seed, ...extra } });
      return [run(0, { __trial__: 'a', 'search.__budget__': 1 }), run(1, { __trial__: 'b' }),
              run(2, {}), { config: { lr: 0.2, seed: 0 } }].map((r) => groupKey(r, 'noseed'));
    }""")
    assert keys[0] == keys[1] == keys[2] != keys[3]


def _log_alone(vserver, project, **values):
    from ato.db_routers.sql.manager import SQLLogger

    cfg = ADict(experiment={"project_name": project, "sql": {"db_path": vserver.url}}, **values)
    with SQLLogger(cfg, flush_interval=60, heartbeat_interval=3600, handle_signals=False) as log:
        return log.get_current_run_id()


def test_compare_a_long_value_keeps_every_column_readable(vpage, vserver):
    """A 3,000-character config value squeezed the key column and the other run's column
    to a character or two: columns are fixed, the value clipped with its whole in the
    tooltip."""
    long = "x" * 3000
    a = _log_alone(vserver, "wide", lr=0.1, note="short", key_with_a_long_name_here=1)
    b = _log_alone(vserver, "wide", lr=0.2, note=long, key_with_a_long_name_here=2)
    vpage.set_viewport_size({"width": 1200, "height": 800})
    vpage.open(f"#/compare?runs={a},{b}&all=1")
    table = vpage.locator("[data-testid='config-diff']")
    table.wait_for()
    row = table.locator("tr", has_text="note")
    cells = row.locator("td")
    widths = [cells.nth(i).bounding_box()["width"] for i in range(3)]
    assert min(widths) > 120, widths
    shown = cells.nth(2).inner_text()
    assert shown.endswith("…") and len(shown) <= 301
    assert cells.nth(2).get_attribute("title") == long
    assert table.bounding_box()["width"] <= 1200
    vpage.shot("views-compare-long-value")


def test_numbers_never_wrap_and_show_their_documented_digits(vpage, vserver):
    """A long metric name beside the numbers: the name wraps, the numbers and the numeric
    headers never do (0.0073910 / 3, point / s); the runs table shows a config number's
    ~6 significant digits whole (0.007391… was clipped)."""
    from ato.db_routers.sql.manager import SQLLogger

    cfg = ADict(experiment={"project_name": "digits", "sql": {"db_path": vserver.url}},
                lr=0.00739104)
    with SQLLogger(cfg, flush_interval=60, heartbeat_interval=3600, handle_signals=False) as log:
        run = log.get_current_run_id()
        name = "validation/" + "very_long_metric_name_" * 6
        for step in range(3):
            log.log_metric(name, 0.00739104 + step * 1e-9, step * 123456)
    vpage.set_viewport_size({"width": 1000, "height": 800})
    vpage.open(f"#/run/{run}")
    table = vpage.locator("[data-testid='run-metrics']")
    table.wait_for()
    line = vpage.evaluate("() => parseFloat(getComputedStyle(document.body).lineHeight)")
    for cell in table.locator("td.num, th.num").all():
        box = cell.evaluate("c => { const r = document.createRange(); r.selectNodeContents(c);"
                            " return r.getClientRects().length; }")
        assert box == 1, cell.inner_text()
    name_cell = table.locator("tr").nth(1).locator("td").first
    assert name_cell.bounding_box()["height"] > 2 * line  # the name wraps
    assert name_cell.bounding_box()["width"] > 100  # in a readable column
    vpage.shot("views-run-metrics-long-name")
    vpage.open("#/runs?project=digits")
    vpage.wait_for_selector("[data-testid='runs-table'][data-ready='1']")
    cell = vpage.locator(".tr .td", has_text="0.00739104").first
    assert cell.inner_text() == "0.00739104"
    assert cell.evaluate("c => c.scrollWidth <= c.clientWidth")


def test_an_all_nan_metric_card_says_there_is_nothing_to_draw(vpage, vserver):
    """An all-NaN metric showed an empty plot with no y axis and no word why."""
    import math

    from ato.db_routers.sql.manager import SQLLogger

    cfg = ADict(experiment={"project_name": "nans", "sql": {"db_path": vserver.url}}, lr=0.1)
    with SQLLogger(cfg, flush_interval=60, heartbeat_interval=3600, handle_signals=False) as log:
        run = log.get_current_run_id()
        for step in range(5):
            log.log_metric("broken", math.nan, step)
            log.log_metric("blown", math.inf if step % 2 else math.nan, step)
    vpage.open(f"#/charts?runs={run}")
    vpage.wait_for_selector("[data-testid='chart-card'][data-drawn]")
    notes = {}
    for card in vpage.locator("[data-testid='chart-card']").all():
        card.locator("[data-testid='nonfinite-note']").wait_for()
        notes[card.locator("h3").inner_text()] = card.locator(
            "[data-testid='nonfinite-note']").inner_text()
    assert notes["broken"].startswith("nothing to draw: every value is NaN; 5 non-finite "
                                      "values not drawn: #"), notes
    assert notes["blown"].startswith("nothing to draw: every value is non-finite; "), notes
