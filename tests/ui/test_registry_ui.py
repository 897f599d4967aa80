"""The dashboard's models and data pages: the registry API (Starlette's test client, on
SQLite and PostgreSQL) and the pages in Debian's Chromium (Playwright) — the models list,
versions, alias history, lineage, a run's inputs and outputs, and escaping.  The databases
are written through the real SQLLogger and Registry, with real files."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from ato.adict import ADict
from tests import databases
from tests.ui.populate import XSS_IMG, XSS_SCRIPT

XSS_NAME = "net" + XSS_SCRIPT  # a registry name may not start with '/' or hold '@'

db_url = databases.db_url  # the fixture: a fresh SQLite file, then PostgreSQL database


def _config(url, store, project="vision", **values):
    return ADict(experiment={"project_name": project, "sql": {"db_path": url, "store": store}},
                 **values)


def _logger(config):
    from ato.db_routers.sql.manager import SQLLogger

    return SQLLogger(config, flush_interval=60, heartbeat_interval=3600, handle_signals=False)


def populate_registry(url: str, root: Path) -> dict:
    """Three runs in project ``vision`` and one in ``nlp``:

    - run ``a`` uses cifar10 v1 and logs resnet-cls v1 (alias ``candidate``) and v2;
    - run ``b`` uses cifar10 v2 (a file changed) and imagenet by reference, logs
      resnet-cls v3 (alias ``champion``); then ``champion`` is moved to v1 by hand
      (``ana@gpu-02``) and ``candidate`` deleted;
    - ``exported`` v1 is a model registered outside any run;
    - run ``x`` (the hostile one) logs a model whose name, description, meta, source file
      and mover are markup, and uses a dataset whose name is markup;
    - run ``n`` in project ``nlp`` has no inputs or outputs.
    """
    from ato.db_routers.sql.registry.core import Registry

    store = str(root / "store")
    data = root / "cifar10"
    data.mkdir(parents=True)
    (data / "train.bin").write_bytes(b"train" * 1000)
    (data / "labels.txt").write_text("cat\ndog\n")
    ckpt = root / "ckpt"
    ckpt.mkdir()
    out: dict = {}

    log = _logger(_config(url, store, lr=0.1))
    with log:
        out["a"] = log.get_current_run_id()
        log.use_dataset("cifar10", data)
        (ckpt / "a1.pt").write_bytes(b"weights-a1" * 100)
        log.log_model("resnet-cls", ckpt / "a1.pt", step=10, aliases=["candidate"],
                      description="image classifier")
        (ckpt / "a2.pt").write_bytes(b"weights-a2" * 200)
        log.log_model("resnet-cls", ckpt / "a2.pt", step=20, score=0.8)
    (data / "labels.txt").write_text("cat\ndog\nbird\n")
    log = _logger(_config(url, store, lr=0.01))
    with log:
        out["b"] = log.get_current_run_id()
        log.use_dataset("cifar10", data)
        log.use_dataset("imagenet", "s3://bucket/imagenet/", etag='"9b2cf5"', size=148_000)
        (ckpt / "b.pt").write_bytes(b"weights-b" * 300)
        log.log_model("resnet-cls", ckpt / "b.pt", step=5, aliases=["champion"])
    reg = Registry(url, store=store)
    reg.set_alias("resnet-cls", "champion", 1, project="vision", who="ana@gpu-02")
    reg.delete_alias("resnet-cls", "candidate", project="vision", who="bo@laptop")
    (ckpt / "exported.onnx").write_bytes(b"onnx" * 50)
    reg.log_model("vision", "exported", ckpt / "exported.onnx")

    hostile = root / XSS_IMG.replace("/", "_")
    hostile.write_bytes(b"hostile")
    before = os.environ.get("ATO_USER")
    os.environ["ATO_USER"] = XSS_IMG
    try:
        log = _logger(_config(url, store, lr=0.5))
        with log:
            out["x"] = log.get_current_run_id()
            log.use_dataset("hostile-data", hostile)
            log.log_model("hostile-model", hostile, description=XSS_IMG,
                          meta={"note": XSS_SCRIPT}, aliases=["prod"])
    finally:
        if before is None:
            os.environ.pop("ATO_USER", None)
        else:
            os.environ["ATO_USER"] = before
    # names that today's rule refuses, as a database written before the rule holds them:
    # the dashboard must show them as text
    from sqlalchemy import create_engine, text

    reg.tag("resnet-cls", ["production", "vision"], project="vision")
    reg.tag("hostile-model", [XSS_IMG], project="vision")
    engine = create_engine(url)
    with engine.begin() as conn:
        for safe, name in (("hostile-data", XSS_IMG), ("hostile-model", XSS_NAME)):
            conn.execute(text("UPDATE registry_assets SET name = :n WHERE name = :s"),
                         {"n": name, "s": safe})
    engine.dispose()
    log = _logger(_config(url, store, project="nlp", lr=1.0))
    with log:
        out["n"] = log.get_current_run_id()
    return out


@pytest.fixture(scope="module")
def reg_sqlite(tmp_path_factory):
    root = tmp_path_factory.mktemp("registry-ui")
    url = f"sqlite:///{root / 'experiments.db'}"
    return url, populate_registry(url, root)


@pytest.fixture(scope="module")
def reg_postgresql(tmp_path_factory):
    from tests.sql.conftest import PG_URL, _drop_pg_database, _pg_database

    if not PG_URL:
        if os.environ.get("ATO_REQUIRE_POSTGRES") == "1":
            pytest.fail("ATO_REQUIRE_POSTGRES=1 but ATO_TEST_POSTGRES_URL is not set")
        pytest.skip("no PostgreSQL server (set ATO_TEST_POSTGRES_URL)")
    name, url = _pg_database()
    info = populate_registry(url, tmp_path_factory.mktemp("registry-ui-pg"))
    yield url, info
    from ato.db_routers.sql.engine import forget_engine

    forget_engine(url)
    _drop_pg_database(name)


@pytest.fixture(autouse=True, scope="module")
def _cache_dir(tmp_path_factory):
    """The stat cache of these registrations lives in a temporary directory."""
    before = os.environ.get("ATO_CACHE_DIR")
    os.environ["ATO_CACHE_DIR"] = str(tmp_path_factory.mktemp("statcache"))
    yield
    if before is None:
        os.environ.pop("ATO_CACHE_DIR", None)
    else:
        os.environ["ATO_CACHE_DIR"] = before


@pytest.fixture(params=["sqlite", "postgresql"])
def api(request):
    from starlette.testclient import TestClient

    from ato.ui.app import create_app

    url, info = request.getfixturevalue(f"reg_{request.param}")
    with TestClient(create_app(url)) as c:
        c.info, c.url = info, url
        yield c


# ---------------------------------------------------------------------------- API
def test_models_list(api):
    data = api.get("/api/registry").json()
    assert data["available"] is True
    rows = {(a["project"], a["kind"], a["name"]): a for a in data["assets"]}
    resnet = rows[("vision", "model", "resnet-cls")]
    assert resnet["versions"] == 3 and resnet["latest"] == 3
    assert resnet["aliases"] == {"champion": 1, "latest": 3}
    assert resnet["description"] == "image classifier"
    assert resnet["tags"] == ["production", "vision"]
    assert rows[("vision", "dataset", "cifar10")]["versions"] == 2
    assert rows[("vision", "dataset", "cifar10")]["tags"] == []
    assert ("vision", "dataset", "imagenet") in rows
    assert ("vision", "model", "exported") in rows
    assert rows[("vision", "model", XSS_NAME)]["description"] == XSS_IMG
    models = api.get("/api/registry", params={"kind": "model"}).json()["assets"]
    assert {a["kind"] for a in models} == {"model"}
    assert api.get("/api/registry", params={"project": "nlp"}).json()["assets"] == []


def test_versions_newest_first_with_aliases_and_run(api):
    data = api.get("/api/registry/asset", params={"name": "resnet-cls", "kind": "model",
                                                  "project": "vision"}).json()
    versions = data["versions"]
    assert [v["version"] for v in versions] == [3, 2, 1]
    v3, v2, v1 = versions
    assert v1["aliases"] == ["champion"] and v3["aliases"] == ["latest"] and v2["aliases"] == []
    assert (v1["step"], v2["step"], v3["step"]) == (10, 20, 5)
    assert v2["score"] == 0.8
    assert v1["run"] == v2["run"] == api.info["a"] and v3["run"] == api.info["b"]
    assert v1["size"] == 1000 and len(v1["digest"]) == 64 and v1["storage"] == "stored"
    assert v1["uri"] == "ato://vision/resnet-cls@v1?kind=model"
    assert isinstance(v1["created"], float) and v1["created"] <= v3["created"]


def test_alias_history_who_when_from_to(api):
    params = {"name": "resnet-cls", "kind": "model", "project": "vision"}
    history = api.get("/api/registry/asset", params=params).json()["history"]
    moves = [(m["alias"], m["from"], m["to"]) for m in history]
    assert moves == [("candidate", None, 1), ("latest", None, 1), ("latest", 1, 2),
                     ("champion", None, 3), ("latest", 2, 3), ("champion", 3, 1),
                     ("candidate", 1, None)]
    by_hand = history[5]
    assert by_hand["actor"] == "ana@gpu-02" and by_hand["run"] is None
    assert history[3]["run"] == api.info["b"]
    assert all(isinstance(m["at"], float) for m in history)
    only = api.get("/api/registry/asset", params={**params, "alias": "champion"}).json()
    assert [(m["from"], m["to"]) for m in only["history"]] == [(None, 3), (3, 1)]


def test_model_version_lineage(api):
    data = api.get("/api/registry/version", params={"name": "resnet-cls", "kind": "model",
                                                    "project": "vision", "ref": "champion"})
    data = data.json()
    assert data["version"]["version"] == 1
    made = data["produced_by"]
    assert made["run"]["id"] == api.info["a"] and made["run"]["status"] == "completed"
    assert [(d["kind"], d["name"], d["version"]) for d in made["inputs"]] == [
        ("dataset", "cifar10", 1)]
    assert len(made["inputs"][0]["digest"]) == 64
    v3 = api.get("/api/registry/version", params={"name": "resnet-cls", "kind": "model",
                                                  "ref": "v3"}).json()
    assert [(d["name"], d["version"]) for d in v3["produced_by"]["inputs"]] == [
        ("cifar10", 2), ("imagenet", 1)]
    outside = api.get("/api/registry/version", params={"name": "exported", "kind": "model",
                                                       "ref": "latest"}).json()
    assert outside["produced_by"]["run"] is None and outside["version"]["run"] is None


def test_dataset_version_runs_and_downstream(api):
    v1 = api.get("/api/registry/version", params={"name": "cifar10", "kind": "dataset",
                                                  "ref": "1"}).json()
    assert [r["id"] for r in v1["runs"]] == [api.info["a"]]
    assert [(d["name"], d["version"], d["run"]) for d in v1["downstream"]] == [
        ("resnet-cls", 1, api.info["a"]), ("resnet-cls", 2, api.info["a"])]
    assert v1["downstream"][0]["aliases"] == ["champion"]
    assert v1["version"]["storage"] == "in place" and v1["version"]["file_count"] == 2
    ref = api.get("/api/registry/version", params={"name": "imagenet", "kind": "dataset"}).json()
    assert ref["version"]["storage"] == "reference"
    assert ref["version"]["reference"] == "s3://bucket/imagenet/"
    assert [r["id"] for r in ref["runs"]] == [api.info["b"]]


def test_run_inputs_and_outputs(api):
    a = api.get(f"/api/registry/run/{api.info['a']}").json()
    assert a["available"] is True
    assert [(v["name"], v["version"]) for v in a["inputs"]] == [("cifar10", 1)]
    assert [(v["name"], v["version"], v["aliases"]) for v in a["outputs"]] == [
        ("resnet-cls", 1, ["champion"]), ("resnet-cls", 2, [])]
    b = api.get(f"/api/registry/run/{api.info['b']}").json()
    assert [(v["name"], v["storage"]) for v in b["inputs"]] == [
        ("cifar10", "in place"), ("imagenet", "reference")]
    assert [(v["name"], v["aliases"]) for v in b["outputs"]] == [("resnet-cls", ["latest"])]
    n = api.get(f"/api/registry/run/{api.info['n']}").json()
    assert n == {"available": True, "reason": None, "inputs": [], "outputs": []}


def test_markup_travels_as_data(api):
    data = api.get("/api/registry/asset", params={"name": XSS_NAME, "kind": "model"}).json()
    assert data["asset"]["description"] == XSS_IMG
    assert data["versions"][0]["meta"] == {"note": XSS_SCRIPT}
    assert {m["actor"] for m in data["history"]} == {XSS_IMG}


@pytest.mark.parametrize("path,params,status,fragment", [
    ("/api/registry", {"kind": "checkpoint"}, 400, "kind must be model or dataset"),
    ("/api/registry/asset", {"kind": "model"}, 400, "name"),
    ("/api/registry/asset", {"name": "resnet-cls"}, 400, "kind"),
    ("/api/registry/asset", {"name": "nothing", "kind": "model"}, 404, "nothing"),
    ("/api/registry/asset", {"name": "resnet-cls", "kind": "dataset"}, 404, "resnet-cls"),
    ("/api/registry/version", {"name": "resnet-cls", "kind": "model", "ref": "v9"}, 404,
     "version 9"),
    ("/api/registry/version", {"name": "resnet-cls", "kind": "model", "ref": "nope"}, 404,
     "nope"),
    ("/api/registry/run/abc", {}, 400, "integer"),
    ("/api/registry/run/999", {}, 404, "no run with id 999"),
    ("/api/registry/run/99999999999999999999", {}, 400,
     "99999999999999999999 is not a run id (run ids are 1 to 9223372036854775807)"),
    ("/api/registry/run/0", {}, 400, "0 is not a run id"),
])
def test_bad_requests_say_what_was_wrong(api, path, params, status, fragment):
    resp = api.get(path, params=params)
    assert resp.status_code == status, resp.text
    assert fragment in resp.json()["error"]


def test_a_model_and_a_dataset_of_the_same_name(tmp_path, monkeypatch):
    """Both pages work; the alias history, which the protocol cannot ask by kind, says
    why it is missing instead of failing the page."""
    from starlette.testclient import TestClient

    from ato.db_routers.sql.registry.core import Registry
    from ato.ui.app import create_app

    monkeypatch.setenv("ATO_CACHE_DIR", str(tmp_path / "cache"))
    url = f"sqlite:///{tmp_path / 'twin.db'}"
    with _logger(_config(url, str(tmp_path / "store"))):
        pass
    (tmp_path / "twin.bin").write_bytes(b"twin")
    reg = Registry(url, store=str(tmp_path / "store"))
    reg.log_model("vision", "twin", tmp_path / "twin.bin", aliases=["prod"])
    reg.use_dataset("vision", "twin", tmp_path / "twin.bin")
    with TestClient(create_app(url)) as c:
        for kind in ("model", "dataset"):
            params = {"name": "twin", "kind": kind, "project": "vision"}
            page = c.get("/api/registry/asset", params=params)
            assert page.status_code == 200
            page = page.json()
            assert [v["kind"] for v in page["versions"]] == [kind]
            # each asset's own alias history, never the other's
            moved = {m["alias"] for m in page["history"]}
            assert ("prod" in moved) == (kind == "model")
            version = c.get("/api/registry/version", params=params).json()
            assert version["version"]["kind"] == kind


def test_non_finite_meta_shows_as_strings(db_url, tmp_path, monkeypatch):
    """A model's and a dataset's meta holding nan/inf/-inf at any depth (PostgreSQL once
    refused to record it) is answered as the strings "nan"/"inf"/"-inf", on every page
    that shows a version."""
    import math

    from starlette.testclient import TestClient

    from ato.ui.app import create_app

    url, backend = db_url, db_url.partition(":")[0]
    monkeypatch.setenv("ATO_CACHE_DIR", str(tmp_path / "cache"))
    meta = {"nan": math.nan, "inf": math.inf, "ninf": -math.inf,
            "deep": {"l": [1.5, math.nan, {"x": -math.inf}]}, "list": [[math.inf]]}
    shown = {"nan": "nan", "inf": "inf", "ninf": "-inf",
             "deep": {"l": [1.5, "nan", {"x": "-inf"}]}, "list": [["inf"]]}
    (tmp_path / "w.bin").write_bytes(b"non-finite meta " + backend.encode())
    (tmp_path / "d.bin").write_bytes(b"non-finite data " + backend.encode())
    with _logger(_config(url, str(tmp_path / "store"), project="nonfinite")) as log:
        run_id = log.get_current_run_id()
        log.use_dataset("nf-data", tmp_path / "d.bin", meta=meta)
        log.log_model("nf-model", tmp_path / "w.bin", meta=meta)
    with TestClient(create_app(url)) as c:
        for kind, name in (("model", "nf-model"), ("dataset", "nf-data")):
            params = {"name": name, "kind": kind, "project": "nonfinite"}
            page = c.get("/api/registry/asset", params=params)
            assert page.status_code == 200 and page.json()["versions"][0]["meta"] == shown
            version = c.get("/api/registry/version", params=params)
            assert version.status_code == 200 and version.json()["version"]["meta"] == shown
        io = c.get(f"/api/registry/run/{run_id}").json()
        assert [v["meta"] for v in io["inputs"] + io["outputs"]] == [shown, shown]


def test_a_database_without_registry_tables(tmp_path):
    """A database of an earlier schema (no registry tables) has nothing registered; the
    dashboard never creates the tables."""
    import sqlite3

    from starlette.testclient import TestClient

    from ato.ui.app import create_app

    path = tmp_path / "old.db"
    with sqlite3.connect(path) as conn:  # what the original Ato left: runs, no registry
        conn.execute("CREATE TABLE projects (id INTEGER PRIMARY KEY, name TEXT, "
                     "description TEXT, created_at TIMESTAMP)")
        conn.execute("CREATE TABLE experiments (id INTEGER PRIMARY KEY, project_id INTEGER, "
                     "config TEXT, structural_hash TEXT, tags TEXT, status TEXT, "
                     "start_time TIMESTAMP, end_time TIMESTAMP)")
        conn.execute("INSERT INTO projects (id, name) VALUES (1, 'p')")
        conn.execute("INSERT INTO experiments (id, project_id, config, tags, status) "
                     "VALUES (1, 1, '{}', '[]', 'completed')")
    with TestClient(create_app(f"sqlite:///{path}")) as c:
        assert c.get("/api/registry").json() == {"available": True, "reason": None,
                                                 "assets": []}
        assert c.get("/api/registry/run/1").json()["inputs"] == []
    with sqlite3.connect(path) as conn:
        tables = {r[0] for r in conn.execute("SELECT name FROM sqlite_master")}
    assert not any(t.startswith("registry_") for t in tables)


def test_a_backend_without_the_registry_capability(reg_sqlite):
    """A finder that does not declare ``registry``: every registry answer says so (200,
    ``available: false``), and the run page still loads."""
    from starlette.testclient import TestClient

    from ato.ui.app import create_app

    url, info = reg_sqlite
    with TestClient(create_app(url)) as c:
        finder = c.app.state.store.finder
        finder.capabilities = finder.capabilities - {"registry"}
        answers = [c.get("/api/registry"),
                   c.get("/api/registry/asset", params={"name": "resnet-cls", "kind": "model"}),
                   c.get("/api/registry/version", params={"name": "resnet-cls",
                                                          "kind": "model"}),
                   c.get(f"/api/registry/run/{info['a']}")]
        for resp in answers:
            assert resp.status_code == 200
            body = resp.json()
            assert body["available"] is False
            assert "'sql' tracker backend" in body["reason"] and "'registry'" in body["reason"]
        assert c.get(f"/api/run/{info['a']}").status_code == 200


# ---------------------------------------------------------------------------- browser
@pytest.fixture(scope="module")
def finetuned(tmp_path_factory):
    """Project 'vision' registers model 'base' (champion) outside a run; a run of project
    'finetune' starts from it (use_model, project=) and logs 'ft' (staging), its name
    markup: ``(url, store, run id)``."""
    from ato.db_routers.sql.registry.core import Registry

    root = tmp_path_factory.mktemp("finetuned")
    url, store = f"sqlite:///{root / 'ft.db'}", str(root / "store")
    (root / "base.pt").write_bytes(b"base")
    (root / "ft.pt").write_bytes(b"fine-tuned")
    with _logger(_config(url, store)):
        pass
    Registry(url, store=store).log_model("vision", "base", root / "base.pt",
                                         aliases=["champion"])
    log = _logger(_config(url, store, project="finetune"))
    with log:
        run = log.get_current_run_id()
        log.use_model("base", "champion", project="vision")
        log.log_model("ft", root / "ft.pt", aliases=["staging"])
    return url, store, run


def test_a_model_version_lists_the_runs_that_started_from_it(finetuned, tmp_path):
    """/api/registry/version of a model gives the runs that used it (use_model) and what
    they produced, as 'ato models show --json' does (used_by, downstream); a name two
    projects hold is 409 with the registry's 'is ambiguous' message, not 404."""
    from starlette.testclient import TestClient

    from ato.db_routers.sql.registry.core import Registry
    from ato.ui.app import create_app

    url, store, run = finetuned
    with TestClient(create_app(url)) as c:
        data = c.get("/api/registry/version", params={"name": "base", "kind": "model",
                                                      "ref": "champion"})
        assert data.status_code == 200, data.text
        data = data.json()
        assert [(r["id"], r["project"], r["status"]) for r in data["runs"]] == [
            (run, "finetune", "completed")]
        assert [(d["project"], d["name"], d["version"], d["aliases"], d["run"])
                for d in data["downstream"]] == [("finetune", "ft", 1, ["latest", "staging"],
                                                  run)]
        wrong = c.get("/api/registry/asset", params={"name": "base", "kind": "model",
                                                     "project": "finetune"})
        assert wrong.status_code == 404 and "no model named 'base' in project 'finetune'; " \
            "it exists in project 'vision': pass project=vision" in wrong.json()["error"]
    # a second database: 'base' in two projects
    import shutil

    twin = f"sqlite:///{tmp_path / 'twin.db'}"
    shutil.copy(url.removeprefix("sqlite:///"), tmp_path / "twin.db")
    (tmp_path / "x.pt").write_bytes(b"x")
    Registry(twin, store=store).log_model("finetune", "base", tmp_path / "x.pt")
    with TestClient(create_app(twin)) as c:
        amb = c.get("/api/registry/version", params={"name": "base", "kind": "model"})
        assert amb.status_code == 409, amb.text
        assert "'base' is ambiguous (model in project 'finetune', model in project " \
            "'vision')" in amb.json()["error"]


def test_browser_model_version_shows_the_runs_that_started_from_it(finetuned, browser,
                                                                    artifacts):
    from tests.ui.conftest import browser_page, served

    url, _store, run = finetuned
    for srv in served(url, {}):
        for page in browser_page(browser, srv.base, artifacts):
            page.open("#/models/model/base?project=vision")
            page.wait_for_selector("[data-testid='lineage-runs']")
            assert f"#{run}" in page.inner_text("[data-testid='lineage-runs']")
            assert "finetune" in page.inner_text("[data-testid='lineage-runs']")
            down = page.inner_text("[data-testid='lineage-downstream']")
            assert "ft" in down and "staging" in down
            assert "outside a run" in page.inner_text("[data-testid='no-run']")


@pytest.fixture(scope="module")
def reg_server(reg_sqlite):
    from tests.ui.conftest import served

    yield from served(*reg_sqlite)


@pytest.fixture
def rpage(browser, reg_server, artifacts):
    from tests.ui.conftest import browser_page

    yield from browser_page(browser, reg_server.base, artifacts)


def _ready_after_navigation(page):
    page.wait_for_function("document.querySelector('#view').dataset.ready === '1'")


def test_browser_models_page_lists_and_filters(rpage):
    rpage.open("#/runs")
    rpage.click("[data-testid='nav-models']")
    rpage.wait_for_selector("[data-testid='assets']")
    names = rpage.locator("[data-testid='asset-row']").evaluate_all(
        "rows => rows.map(r => r.dataset.kind + ':' + r.dataset.name)")
    assert {"model:resnet-cls", "model:exported", "dataset:cifar10",
            "dataset:imagenet"} <= set(names)
    row = rpage.locator("[data-testid='asset-row'][data-name='resnet-cls']")
    assert "champion → v1" in row.inner_text() and "v3" in row.inner_text()
    # every alias, latest too, as `ato data list` and the versions table show them
    assert "latest → v3" in row.inner_text()
    rpage.shot("models-list")
    rpage.select_option("[data-testid='kind-select']", "dataset")
    rpage.wait_for_function("location.hash.includes('kind=dataset')")
    _ready_after_navigation(rpage)
    kinds = rpage.locator("[data-testid='asset-row']").evaluate_all(
        "rows => rows.map(r => r.dataset.kind)")
    assert kinds and set(kinds) == {"dataset"}
    rpage.fill("[data-testid='asset-filter']", "cifar")
    assert rpage.get_attribute("[data-testid='asset-count']", "data-count") == "1"
    assert "q=cifar" in rpage.url
    # the URL alone reproduces the view
    rpage.open(rpage.url.split("/", 3)[3])
    assert rpage.get_attribute("[data-testid='asset-count']", "data-count") == "1"
    assert rpage.input_value("[data-testid='kind-select']") == "dataset"
    # the project picker filters the list and keeps the page
    rpage.select_option("[data-testid='project-select']", "nlp")
    rpage.wait_for_selector("[data-testid='no-assets']")
    assert "#/models" in rpage.url and "project=nlp" in rpage.url
    assert "in project nlp" in rpage.inner_text("[data-testid='no-assets']")


def test_browser_versions_history_and_lineage(rpage, reg_server):
    info = reg_server.info
    rpage.open("#/models?project=vision")
    rpage.click("[data-testid='asset-row'][data-name='resnet-cls'] [data-testid='asset-link']")
    rpage.wait_for_selector("[data-testid='versions']")
    _ready_after_navigation(rpage)
    versions = rpage.locator("[data-testid='version-row']")
    assert versions.evaluate_all("rows => rows.map(r => r.dataset.version)") == ["3", "2", "1"]
    assert "champion" in versions.nth(2).inner_text()
    assert f"#{info['b']}" in versions.nth(0).inner_text()
    digest_cell = versions.nth(0).locator(".mono").first
    assert len(digest_cell.inner_text()) == 12 and len(digest_cell.get_attribute("title")) == 64
    # the latest version is selected: its lineage is shown
    assert rpage.get_attribute("[data-testid='lineage']", "data-version") == "3"
    datasets = rpage.inner_text("[data-testid='lineage-inputs']")
    assert "cifar10" in datasets and "imagenet" in datasets
    assert len(rpage.locator("[data-testid='alias-move']").all()) == 7
    rpage.shot("models-asset")
    # pick v1: its lineage (run a, its config, cifar10 v1) and the URL says so
    versions.nth(2).locator("td").nth(7).click()
    rpage.wait_for_selector("[data-testid='lineage'][data-version='1']")
    assert "v=1" in rpage.url
    produced = rpage.inner_text("[data-testid='produced-by']")
    assert f"#{info['a']}" in produced and "completed" in produced
    assert rpage.get_attribute("[data-testid='config-link']", "href") == f"#/run/{info['a']}"
    assert rpage.inner_text("[data-testid='lineage-inputs']").count("cifar10") == 1
    # alias history filtered in the URL
    rpage.select_option("[data-testid='alias-filter']", "champion")
    rpage.wait_for_function("location.hash.includes('alias=champion')")
    _ready_after_navigation(rpage)
    moves = rpage.locator("[data-testid='alias-move']").all_inner_texts()
    assert len(moves) == 2 and "ana@gpu-02" in moves[1] and "v3" in moves[1]
    assert rpage.get_attribute("[data-testid='lineage']", "data-version") == "1"
    rpage.shot("models-asset-v1-champion")
    # the lineage's dataset link opens the dataset version: the runs and what they produced
    rpage.click("[data-testid='lineage-inputs'] a")
    rpage.wait_for_selector("[data-testid='lineage-runs']")
    _ready_after_navigation(rpage)
    assert rpage.get_attribute("[data-testid='lineage']", "data-version") == "1"
    assert f"#{info['a']}" in rpage.inner_text("[data-testid='lineage-runs']")
    downstream = rpage.inner_text("[data-testid='lineage-downstream']")
    assert "resnet-cls" in downstream and "champion" in downstream
    rpage.shot("models-dataset")


def test_browser_reference_data_and_outside_a_run(rpage):
    rpage.open("#/models/dataset/imagenet?project=vision")
    assert "reference data" in rpage.inner_text("[data-testid='lineage'] [data-testid='storage']")
    rpage.open("#/models/model/exported?project=vision")
    assert "outside a run" in rpage.inner_text("[data-testid='no-run']")
    rpage.open("#/models/model/missing?project=vision")
    assert "missing" in rpage.inner_text("[data-testid='error']")


def test_browser_run_page_inputs_and_outputs(rpage, reg_server):
    info = reg_server.info
    rpage.open(f"#/run/{info['b']}")
    inputs = rpage.locator("[data-testid='input-row']").all_inner_texts()
    assert len(inputs) == 2
    assert "cifar10" in inputs[0] and "v2" in inputs[0] and "recorded in place" in inputs[0]
    assert "imagenet" in inputs[1] and "reference data" in inputs[1]
    outputs = rpage.locator("[data-testid='output-row']").all_inner_texts()
    assert len(outputs) == 1 and "resnet-cls" in outputs[0] and "latest" in outputs[0]
    rpage.shot("run-inputs-outputs")
    rpage.click("[data-testid='output-row'] a")
    rpage.wait_for_selector("[data-testid='lineage'][data-version='3']")
    assert "#/models/model/resnet-cls" in rpage.url
    rpage.open(f"#/run/{info['n']}")
    assert "no dataset versions" in rpage.inner_text("[data-testid='no-inputs']")
    assert "no model versions" in rpage.inner_text("[data-testid='no-outputs']")


def test_browser_markup_in_names_descriptions_and_movers_is_text(rpage, reg_server):
    rpage.open("#/models")
    row = rpage.locator("[data-testid='asset-row'][data-kind='model']").filter(
        has_text="onerror").first
    assert XSS_NAME in row.inner_text() and XSS_IMG in row.inner_text()
    link = rpage.locator(f"[data-testid='asset-link']:text-is('{XSS_NAME}')")
    link.click()
    rpage.wait_for_selector("[data-testid='asset-description']")
    _ready_after_navigation(rpage)
    assert rpage.inner_text("[data-testid='asset-description']") == XSS_IMG
    assert rpage.inner_text("[data-testid='asset-tags']") == XSS_IMG  # a tag is text too
    assert XSS_NAME in rpage.inner_text("[data-testid='asset-title']")
    assert XSS_SCRIPT in rpage.inner_text("[data-testid='version-meta']")
    assert XSS_IMG in rpage.inner_text("[data-testid='alias-history']")
    rpage.open(f"#/run/{reg_server.info['x']}")
    assert XSS_IMG in rpage.inner_text("[data-testid='run-inputs']")
    assert XSS_NAME in rpage.inner_text("[data-testid='run-outputs']")
    rpage.shot("models-escaping")
    for hash_ in ("#/models", f"#/run/{reg_server.info['x']}"):
        rpage.open(hash_)
        assert rpage.evaluate("window.__pwned") is None
        assert rpage.locator("#view img, #view script").count() == 0


def test_browser_asset_page_names_an_unknown_alias_and_shows_every_move(rpage):
    rpage.open("#/models/model/resnet-cls?project=vision&alias=prod&v=x&tab=lineage")
    box = rpage.locator("[data-testid='param-warning']")
    box.wait_for()
    assert rpage.inner_text("[data-testid='param-alias']") == \
        "alias=prod: expected an alias of resnet-cls: candidate, champion, latest"
    assert rpage.inner_text("[data-testid='param-v']") == "v=x: expected a version number (1, 2, …)"
    assert rpage.inner_text("[data-testid='param-tab']").startswith(
        "tab=lineage: not a parameter of this view (it takes project, v, alias)")
    # as without them: every alias move, the latest version's lineage, the filter on "every"
    assert len(rpage.locator("[data-testid='alias-move']").all()) == 7
    assert rpage.get_attribute("[data-testid='lineage']", "data-version") == "3"
    assert rpage.input_value("[data-testid='alias-filter']") == ""
    # a known alias still filters
    rpage.open("#/models/model/resnet-cls?project=vision&alias=champion")
    assert len(rpage.locator("[data-testid='alias-move']").all()) == 2
    assert rpage.locator("[data-testid='param-warning']").count() == 0


def test_version_refs_read_as_everywhere_else(api):
    """/api/registry/version reads ref as the registry does: a number beyond any version is
    404 'has no version N', a number below 1 or text like '3.0' is 400 saying what a version
    number is (not 'has no alias')."""
    params = {"name": "resnet-cls", "kind": "model", "project": "vision"}
    huge = "99999999999999999999"
    r = api.get("/api/registry/version", params={**params, "ref": huge})
    assert r.status_code == 404 and f"has no version {huge}" in r.text
    for ref in ("-1", "0", "3.0", "v-2"):
        r = api.get("/api/registry/version", params={**params, "ref": ref})
        assert r.status_code == 400, (ref, r.text)
        assert "version numbers are whole numbers from 1" in r.text and "alias" not in r.text[:40]
