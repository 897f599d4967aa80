"""The dashboard's JSON API (Starlette's test client) on SQLite and PostgreSQL."""

from __future__ import annotations

import hashlib
import json
import os
import re
import threading
import time
from pathlib import Path

import pytest

from ato.db_routers.sql.engine import BUSY_TIMEOUT_MS
from tests.ui.conftest import STALE
from tests.ui.populate import XSS_IMG, XSS_SCRIPT, config_for, logger_for


def test_info_lists_projects(client):
    data = client.get("/api/info").json()
    assert [p["name"] for p in data["projects"]] == ["vision", "search"]
    assert "experiments" in data["db"] or "postgresql" in data["db"]


def test_runs_rows_statuses_and_summaries(client):
    data = client.get("/api/runs", params={"project": "vision"}).json()
    runs = {r["id"]: r for r in data["runs"]}
    info = client.info
    assert len(runs) == 9
    assert runs[info["crashed"]]["status"] == "crashed"  # stale running run
    assert sorted({r["status"] for r in runs.values()}) == ["completed", "crashed", "failed"]
    first = runs[info["runs"][0]]
    assert first["config"]["model.name"] == "resnet18" and first["config"]["lr"] == 0.1
    assert first["duration"] is not None and first["duration"] >= 0
    assert data["metric_keys"] == ["loss", "val/acc"]
    loss = data["summaries"][str(first["id"])]["loss"]
    assert loss["count"] == 50 and loss["last_step"] == 49 and loss["min"] <= loss["last"]


@pytest.mark.parametrize("where,expected", [
    ("lr < 0.05 and model.name == 'resnet18'", {3}),
    ("batch_size >= 64 or seed == 2", {4, 5, 6}),
    ("not (optimizer == 'adam')", {7, 8}),
])
def test_where_filter_uses_the_typed_grammar(client, where, expected):
    data = client.get("/api/runs", params={"project": "vision", "where": where}).json()
    assert {r["id"] for r in data["runs"]} == expected


def test_tag_and_status_filters(client):
    tagged = client.get("/api/runs", params={"tags": "baseline,resnet50"}).json()["runs"]
    assert [r["id"] for r in tagged] == [4, 5]
    failed = client.get("/api/runs", params={"status": "failed"}).json()["runs"]
    assert [r["id"] for r in failed] == [6]
    crashed = client.get("/api/runs", params={"status": "crashed"}).json()["runs"]
    assert [r["id"] for r in crashed] == [client.info["crashed"]]


@pytest.mark.parametrize("params,fragment", [
    ({"where": "lr <"}, "position"),
    ({"where": "lr < 1; DROP TABLE experiments"}, "position"),
    ({"status": "exploded"}, "status must be"),
    ({"ids": "1,x"}, "ids: 'x' is not a run id"),
    ({"where": "(" * 5000 + "lr < 1" + ")" * 5000}, "nested too deeply"),  # was a 503
    ({"where": "not " * 3000 + "lr < 1"}, "nested too deeply"),
])
def test_bad_filters_are_one_clear_400(client, params, fragment):
    response = client.get("/api/runs", params=params)
    assert response.status_code == 400
    assert fragment in response.json()["error"]
    # nothing was run: every run is still there
    assert len(client.get("/api/runs").json()["runs"]) == 18


def test_a_long_chain_of_comparisons_is_no_error(client):
    where = " or ".join(["lr < 0"] * 5000 + ["lr > -1"])
    assert len(client.get("/api/runs", params={"where": where}).json()["runs"]) > 0


def test_run_detail_has_typed_config_artifacts_and_raw_hostile_text(client):
    info = client.info
    run = client.get(f"/api/run/{info['runs'][0]}").json()
    assert run["config_tree"]["model"] == {"name": "resnet18", "depth": 18}
    assert run["types"]["lr"] == "float" and run["types"]["batch_size"] == "int"
    assert run["artifacts"][0]["path"].endswith("best.pt")
    assert run["artifacts"][0]["metadata"] == {"epoch": 49}
    hostile = client.get(f"/api/run/{info['xss']}").json()
    # The API returns the text as stored (JSON-escaped); the page shows it as text.
    assert hostile["tags"] == [XSS_SCRIPT, XSS_IMG]
    assert hostile["config_tree"]["optimizer"] == XSS_SCRIPT
    assert hostile["artifacts"][0]["type"] == XSS_SCRIPT
    assert client.get("/api/run/99999").status_code == 404
    assert client.get("/api/run/abc").status_code == 400


def test_series_is_reduced_on_the_server_keeping_spike_and_ends(client):
    spiky = client.info["spiky"]
    data = client.get("/api/series", params={"runs": spiky, "key": "loss",
                                             "max_points": 302}).json()
    (s,) = data["series"]
    assert s["total"] == 20_000 and s["returned"] <= 302
    assert s["steps"][0] == 0 and s["steps"][-1] == 19_999
    assert 99.0 in s["values"] and s["steps"][s["values"].index(99.0)] == 12_345
    assert s["steps"] == sorted(s["steps"])
    again = client.get("/api/series", params={"runs": spiky, "key": "loss",
                                              "max_points": 302}).json()
    assert again == data  # deterministic
    zoom = client.get("/api/series", params={"runs": spiky, "key": "loss", "max_points": 302,
                                             "step_min": 12_300, "step_max": 12_400}).json()
    (z,) = zoom["series"]
    assert z["total"] == z["returned"] == 101  # the zoomed range at full resolution
    assert z["steps"] == list(range(12_300, 12_401))


def test_series_of_many_runs_in_one_request(tmp_path):
    """One request for a chart's runs: each run's series in the order asked, the same as
    asked alone; non-finite values as the strings "inf", "-inf", "nan"; timestamps only
    when asked; gzip (when accepted) decompresses to the same JSON."""
    import gzip
    import json
    import math

    from starlette.testclient import TestClient

    from ato.ui.app import create_app

    url = f"sqlite:///{tmp_path / 'many.db'}"
    log = logger_for(url)
    ids = []
    for r in range(5):
        ids.append(log.run(tags=["t"]))
        special = [float("inf"), float("nan"), float("-inf")]
        for step in range(3000 + 500 * r):
            # at the last step of an aligned bucket, where a NaN is kept (as its last)
            value = special[step % 3] if step % 1024 == 1023 else math.sin(step / 50) + r
            log.log_metric("loss", value, step)
        log.flush()
    log.finish()
    asked = [ids[2], ids[0], ids[4], 99_999, ids[1], ids[3]]
    with TestClient(create_app(url)) as c:
        def get(runs, encoding="identity", **extra):
            response = c.get("/api/series", headers={"accept-encoding": encoding},
                             params={"runs": ",".join(map(str, runs)), "key": "loss",
                                     "max_points": 500, **extra})
            assert response.status_code == 200
            return response
        together = get(asked, times="0").json()["series"]
        assert [s["run"] for s in together] == asked
        for s in together:
            alone, = get([s["run"]], times="0").json()["series"]
            assert s == alone and s["times"] == []
        assert together[3] == {"run": 99_999, "steps": [], "values": [], "times": [],
                               "total": 0, "returned": 0}
        values = [v for s in together for v in s["values"]]
        assert {"inf", "-inf", "nan"} <= {v for v in values if isinstance(v, str)}
        assert all(isinstance(v, float) or v in ("inf", "-inf", "nan") for v in values)
        timed = get(asked).json()["series"]
        assert all(len(s["times"]) == len(s["steps"]) and s["steps"] == t["steps"]
                   for s, t in zip(timed, together))
        assert all(isinstance(t, float) and t > 1.7e9 for s in timed for t in s["times"])
        raw = c.stream("GET", "/api/series", headers={"accept-encoding": "gzip"},
                       params={"runs": ",".join(map(str, asked)), "key": "loss",
                               "max_points": 500, "times": "0"})
        with raw as response:
            assert response.headers["content-encoding"] == "gzip"
            body = b"".join(response.iter_raw())
        assert json.loads(gzip.decompress(body))["series"] == together
        # format=f64 (what the page asks for): the same numbers as little-endian doubles,
        # the non-finite ones as themselves
        packed = get(asked, "gzip", format="f64").json()["series"]
        for p, t in zip(packed, timed):
            assert (p["run"], p["total"], p["returned"]) == (t["run"], t["total"], t["returned"])
            assert doubles(p["steps"]) == t["steps"] and doubles(p["times"]) == t["times"]
            assert [repr(v) for v in doubles(p["values"])] == [repr(float(v))
                                                               for v in t["values"]]
        assert packed[3]["values"] == "" and doubles(packed[3]["steps"]) == []


def doubles(text: str) -> list:
    import base64
    import struct

    raw = base64.b64decode(text)
    return list(struct.unpack(f"<{len(raw) // 8}d", raw))


@pytest.mark.parametrize("params", [{"key": "loss", "runs": "1", "max_points": "3"},
                                    {"runs": "1"}, {"key": "loss", "runs": "1",
                                                    "step_min": "x"},
                                    {"key": "loss", "runs": "1", "step_min": str(-10**30)},
                                    {"key": "loss", "runs": "1", "step_max": str(2**63)}])
def test_series_rejects_bad_parameters(client, params):
    response = client.get("/api/series", params=params)
    assert response.status_code == 400 and response.json()["error"]


@pytest.mark.parametrize("params, named", [
    ({"step_min": "10", "step_max": "9"}, "step_min (10) is greater than step_max (9)"),
    ({"times": "2"}, "times must be 0 or 1, not '2'"),
    ({"times": "yes"}, "times must be 0 or 1, not 'yes'"),
    ({"format": "msgpack"}, "format must be json or f64, not 'msgpack'"),
    ({"runs": ""}, "runs (comma-separated run ids) is required")])
def test_series_names_a_reversed_window_and_a_bad_flag(client, params, named):
    # a reversed window used to answer an empty 200, and any times but "0" meant "1"
    response = client.get("/api/series", params={"key": "loss", "runs": "1", **params})
    assert response.status_code == 400 and named in response.json()["error"]
    if "runs" in params:  # the live stream too: it waited for ever on no run
        live = client.get("/api/live")
        assert live.status_code == 400 and named in live.json()["error"]
    same = client.get("/api/series", params={"key": "loss", "runs": "1", "step_min": "5",
                                             "step_max": "5", "times": "1"})
    assert same.status_code == 200  # a one-step window is fine


def test_study_trials_promotions_and_mode(client):
    assert client.get("/api/studies").json()["studies"] == [
        {"study": "s1", "trials": 8, "final": 1, "project": "search"}]  # as the study page
    data = client.get("/api/study", params={"study": "s1"}).json()
    assert len(data["trials"]) == 8 and len(data["final"]) == 1  # the winner's re-run
    assert data["algorithm"] == "hyperband"
    promoted = {t["key"] for t in data["trials"] if t["promoted"]}
    assert promoted == {"d-0", "b-0"}
    assert data["mode"] == "min"
    assert {t["budget"] for t in data["trials"] if t["rung"] == 0} == {1 / 3}  # "1/3"
    assert {t["budget"] for t in data["trials"] if t["rung"] == 1} == {1.0}


def test_unknown_study_is_404_naming_it(client):
    response = client.get("/api/study", params={"study": "nope"})
    assert response.status_code == 404
    assert "no study 'nope'" in response.json()["error"]


def test_unknown_api_path_is_json_404(client):
    response = client.get("/api/nope")
    assert response.status_code == 404 and "nope" in response.json()["error"]


def test_security_headers(client):
    headers = client.get("/").headers
    assert "script-src 'self'" in headers["content-security-policy"]
    assert headers["x-content-type-options"] == "nosniff"


def test_token_and_host_checks(small_sqlite):
    from starlette.testclient import TestClient

    from ato.ui.app import create_app

    url, _ = small_sqlite
    with TestClient(create_app(url, token="s3cret", loopback_only=False)) as c:
        assert c.get("/api/info").status_code == 401
        assert c.get("/api/info", params={"token": "wrong"}).status_code == 401
        assert c.get("/api/info", headers={"authorization": "Bearer s3cret"}).status_code == 200
        first = c.get("/", params={"token": "s3cret"}, follow_redirects=False)
        assert first.status_code == 303 and "httponly" in first.headers["set-cookie"].lower()
        assert c.get("/api/info").status_code == 200  # the cookie now authenticates
    with TestClient(create_app(url), base_url="http://evil.example") as c:
        assert c.get("/api/info").status_code == 403  # DNS rebinding refused
    with TestClient(create_app(url), base_url="http://127.0.0.1:8250") as c:
        assert c.get("/api/info").status_code == 200


def test_missing_database_is_an_error_and_is_not_created(tmp_path):
    from ato.ui.app import create_app
    from ato.ui.data import DatabaseMissingError

    path = tmp_path / "sub" / "missing.db"
    with pytest.raises(DatabaseMissingError, match="no tracker database"):
        create_app(f"sqlite:///{path}")
    assert not path.exists() and not path.parent.exists()


def test_ui_never_writes_the_database(tmp_path):
    from starlette.testclient import TestClient

    from ato.ui.app import create_app

    url = f"sqlite:///{tmp_path / 'ro.db'}"
    log = logger_for(url)
    log.run(tags=["t"])
    log.log_metric("loss", 1.0, 0)
    log.finish()
    db = tmp_path / "ro.db"
    before = hashlib.sha256(db.read_bytes()).hexdigest()
    with TestClient(create_app(url)) as c:
        for path in ("/api/info", "/api/runs", "/api/run/1", "/api/studies"):
            assert c.get(path).status_code == 200
        assert c.get("/api/series", params={"runs": 1, "key": "loss"}).status_code == 200
        engine = c.app.state.store._finder.backend
        raw = getattr(engine, "_sql", engine)
        with pytest.raises(Exception, match="readonly|read-only"):
            with raw.engine.connect() as conn:
                conn.exec_driver_sql("DELETE FROM experiments")
    assert hashlib.sha256(db.read_bytes()).hexdigest() == before


def test_a_logger_at_full_speed_is_not_blocked_by_readers(tmp_path):
    """Four threads read through the UI's API as fast as they can while a logger flushes
    200 times; no flush waits on the readers.

    A flush that waited on a reader's lock would wait SQLite's busy timeout (60 s) and then
    fail, so the bound below is far above scheduling noise (a flush once took 1.1 s on a
    loaded 2-core CI machine, with five threads sharing its GIL) and far below a lock
    wait. Speed is measured by benchmarks/, not here."""
    from starlette.testclient import TestClient

    from ato.ui.app import create_app

    url = f"sqlite:///{tmp_path / 'busy.db'}"
    log = logger_for(url)
    run_id = log.run()
    for step in range(2000):
        log.log_metric("loss", 1.0 / (step + 1), step)
    log.flush()
    stop = threading.Event()
    reads = []

    def reader(c):
        while not stop.is_set():
            assert c.get("/api/series", params={"runs": run_id, "key": "loss",
                                                "max_points": 500}).status_code == 200
            assert c.get("/api/runs").status_code == 200
            reads.append(1)

    with TestClient(create_app(url)) as c:
        threads = [threading.Thread(target=reader, args=(c,)) for _ in range(4)]
        for t in threads:
            t.start()
        time.sleep(0.3)
        worst = 0.0
        for flush in range(200):
            for i in range(50):
                log.log_metric("loss", 0.5, 2000 + flush * 50 + i)
            t0 = time.perf_counter()
            log.flush()
            worst = max(worst, time.perf_counter() - t0)
        stop.set()
        for t in threads:
            t.join()
    log.finish()
    assert len(reads) > 10
    assert worst < BUSY_TIMEOUT_MS / 1000 / 6, f"a flush waited {worst:.3f} s behind the dashboard's readers"


def test_vendored_uplot_matches_its_recorded_checksums():
    vendor = Path(__file__).resolve().parents[2] / "ato-ui/src/ato/ui/static/vendor"
    recorded = dict(reversed(line.split()) for line in
                    (vendor / "SHA256SUMS").read_text().splitlines() if line.strip())
    assert recorded == {
        "uPlot.iife.min.js": "19c8d4c6ad88929a79f4ae49d6f7161566dfd0ba3d15cc495e974f787eb78f1f",
        "uPlot.min.css": "df630c6a8d6f8eeaff264b50f73ce5b114f646ffd9a0bb74f049b0a00135fa04",
        "uPlot.LICENSE": "8f989229699b4fe2f1a0432d0e9edc338a8a911e250e2d1b01ecd770a5f5b1bd",
    }
    for name, digest in recorded.items():
        assert hashlib.sha256((vendor / name).read_bytes()).hexdigest() == digest, name
    assert "MIT" in (vendor / "uPlot.LICENSE").read_text()


def test_static_files_and_no_inner_html_with_data():
    static = Path(__file__).resolve().parents[2] / "ato-ui/src/ato/ui/static/js"
    for js in static.glob("*.js"):
        text = js.read_text()
        assert not re.search(r"\.(innerHTML|outerHTML)\s*\+?=|insertAdjacentHTML|document\.write",
                             text), js.name
        assert "eval(" not in text and "new Function" not in text, js.name
    assert os.path.getsize(static.parent / "vendor/uPlot.iife.min.js") < 60_000


def _served_run(url: str, project: str):
    """``(logger, run id, server)``: a running run with one ``loss`` point flushed, and the
    dashboard of ``url`` served over HTTP (stop the server, finish the logger)."""
    from ato.ui.app import create_app
    from tests.ui.conftest import Server

    log = logger_for(url, project)
    run_id = log.run()
    log.log_metric("loss", 1.0, 0)
    log.flush()
    return log, run_id, Server(create_app(url))


def _sse(response):
    """The ``(event, data)`` pairs of a Server-Sent Events response, as they come."""
    import json

    kind = None
    for line in response.iter_lines():
        if line.startswith("event: "):
            kind = line[7:]
        elif line.startswith("data: "):
            yield kind, json.loads(line[6:])


def test_live_stream_sends_new_points_and_status(tmp_path):
    """/api/live over a real server: the status first, then the points flushed after the
    cursor, then the status change when the run ends."""
    import json

    import httpx

    log, run_id, server = _served_run(f"sqlite:///{tmp_path / 'live.db'}", "live")

    def later():
        time.sleep(0.5)
        log.log_metric("loss", 0.5, 1)
        log.log_metric("loss", 0.25, 2)
        log.flush()
        time.sleep(0.5)
        log.finish("completed")

    events = []
    worker = threading.Thread(target=later)
    worker.start()
    try:
        with httpx.stream("GET", server.base + "api/live", timeout=10, params={
                "runs": run_id, "cursor": json.dumps({run_id: {"loss": 0}})}) as response:
            assert response.headers["content-type"].startswith("text/event-stream")
            for kind, data in _sse(response):
                events.append((kind, data))
                if kind == "status" and data.get(str(run_id)) == "completed":
                    break
    finally:
        worker.join()
        server.stop()
    assert events[0] == ("status", {str(run_id): "running"})
    points = [data for kind, data in events if kind == "points"]
    assert [s for p in points for s in p["steps"]] == [1, 2]
    assert [v for p in points for v in p["values"]] == [0.5, 0.25]


def test_the_dashboard_connection_refuses_writes(client):
    """On SQLite (mode=ro) and PostgreSQL (read-only sessions) alike."""
    finder = client.app.state.store._finder.backend
    engine = getattr(finder, "_sql", finder).engine
    with pytest.raises(Exception, match="(?i)read-only|readonly"):
        with engine.connect() as conn:
            conn.exec_driver_sql("UPDATE experiments SET status = 'x'")
            conn.commit()
    assert client.get("/api/runs", params={"status": "failed"}).json()["runs"][0]["id"] == 6


def test_runs_table_rows_are_those_of_the_protocol(small_db, monkeypatch):
    """The runs table reads ato-sql's plain rows (find_run_rows) when the finder has them;
    a backend without it goes through the protocol's find_runs: the same answer, filters
    included (SQLite and PostgreSQL)."""
    from ato.ui.data import Store

    url, _ = small_db
    store = Store(url, stale_after=STALE)
    backend = type(store.finder.backend)
    queries = [{}, {"project": "vision"}, {"where": "lr < 0.05"}, {"tags": ["baseline"]},
               {"status": "crashed"}, {"project": "vision", "ids": [3, 1, 999]}]
    fast = [store.runs(**q) for q in queries]
    monkeypatch.delattr(backend, "find_run_rows")
    slow = [store.runs(**q) for q in queries]
    for q, a, b in zip(queries, fast, slow):
        for row in a["runs"] + b["runs"]:
            if row["status"] == "running" or row["end"] is None:
                row["duration"] = None  # measured at two moments
        assert a == b, q
    assert any(r["status"] == "crashed" for r in fast[0]["runs"])
    assert [r["id"] for r in fast[-1]["runs"]] == [3, 1]


def test_runs_answer_is_reused_until_the_database_changes(tmp_path):
    """On SQLite /api/runs is kept while PRAGMA data_version stays (same text object);
    a write by another connection (a new run, a finish) is seen at once; an answer with a
    running run, or filtered by status, is never kept (it changes with the clock)."""
    import json

    from ato.ui.data import Store

    url = f"sqlite:///{tmp_path / 'c.db'}"
    log = logger_for(url, "p")
    log.run(config=None)
    log.log_metric("loss", 1.0, 0)
    log.finish("completed")
    store = Store(url)
    first = store.runs_json("p")
    assert store.runs_json("p") is first
    assert store.runs_json("p", where="lr < 1") is not first  # another key
    running = log.run()
    log.flush()
    second = store.runs_json("p")
    assert [r["id"] for r in json.loads(second)["runs"]][-1] == running
    assert store.runs_json("p") is not second  # holds a running run: rebuilt each time
    log.finish("completed")
    third = store.runs_json("p")
    assert json.loads(third)["runs"][-1]["status"] == "completed"
    assert store.runs_json("p") is third
    assert store.runs_json("p", status="completed") is not store.runs_json("p", status="completed")
    added = log.run()
    log.finish("completed")
    assert [r["id"] for r in json.loads(store.runs_json("p"))["runs"]][-1] == added


def test_postgresql_runs_answer_is_never_kept(small_postgresql):
    from ato.ui.data import Store

    url, _ = small_postgresql
    store = Store(url, stale_after=STALE)
    assert store.data_version() is None
    assert store.runs_json("vision") is not store.runs_json("vision")


@pytest.mark.parametrize("path, params, named", [
    ("/api/series", {"runs": "1", "key": "loss", "maxpoints": "10"},
     "/api/series takes no parameter maxpoints (it takes runs, key, max_points"),
    ("/api/runs", {"foo": "1"}, "/api/runs takes no parameter foo (it takes project, where"),
    ("/api/info", {"x": "1"}, "/api/info takes no parameter x (it takes none)"),
    ("/api/studies", {"project": "p"}, "/api/studies takes no parameter project"),
    ("/api/registry/asset", {"name": "m", "kind": "model", "ref": "1"},
     "/api/registry/asset takes no parameter ref (it takes name, kind, project, alias)")])
def test_a_parameter_an_endpoint_does_not_take_is_named(client, path, params, named):
    # a typo (maxpoints) answered the default budget as if nothing were wrong
    response = client.get(path, params=params)
    assert response.status_code == 400 and named in response.json()["error"]



def test_a_database_file_removed_or_replaced_under_the_server_is_said(tmp_path):
    """An open SQLite connection keeps reading a deleted file's old pages; the dashboard
    says the file is gone (or is another file now) instead of serving that copy, on every
    endpoint and on the live stream, which ends with one ``failed`` event."""
    import httpx

    path = tmp_path / "gone.db"
    log, run_id, server = _served_run(f"sqlite:///{path}", "p")
    try:
        assert httpx.get(server.base + "api/info").status_code == 200
        events = []
        with httpx.stream("GET", server.base + "api/live", timeout=10,
                          params={"runs": run_id}) as response:
            for kind, data in _sse(response):
                events.append((kind, data))
                if kind == "status" and path.exists():  # the stream is open: take the file away
                    moved = path.rename(tmp_path / "kept.db")
        assert events[-1][0] == "failed" and "was removed" in events[-1][1]["error"]
        for endpoint in ("api/info", "api/runs", f"api/run/{run_id}",
                         f"api/series?runs={run_id}&key=loss"):
            answer = httpx.get(server.base + endpoint)
            assert answer.status_code == 503, endpoint
            assert answer.json()["error"] == (
                f"the database file {path} was removed while the dashboard was running; "
                "nothing from it is shown (start `ato ui` again once it exists)")
        # another file at the path: said too, never read as if it were the first one
        other = logger_for(f"sqlite:///{tmp_path / 'other.db'}", "q")
        other.run()
        other.finish()
        (tmp_path / "other.db").rename(path)
        answer = httpx.get(server.base + "api/runs")
        assert answer.status_code == 503
        assert "was replaced by another file" in answer.json()["error"]
    finally:
        server.stop()
        log.finish()
    assert moved.exists()  # nothing was written or removed by the dashboard


def test_non_finite_values_inside_containers_and_dotted_keys(tmp_path):
    """A config's inf/nan inside a list, tuple or dict-in-list travels as "inf"/"nan" like
    a scalar one (it made /api/runs fail for the whole table), and a key holding a dot is
    quoted as --where reads it, never merged with the nested path it looks like."""
    import math

    from starlette.testclient import TestClient

    from ato.ui.app import create_app

    url = f"sqlite:///{tmp_path / 'odd.db'}"
    log = logger_for(url, "p")
    odd = log.run(config=config_for(url, "p", sched=[0.1, math.inf], s=[{"a": math.nan}],
                                    t=(1.0, -math.inf), **{"a.b": 3}, a={"b": 4}))
    log.log_metric("loss", 1.0, 0)
    log.finish()
    plain = log.run(config=config_for(url, "p", **{"a.b": 1}))
    log.finish()
    with TestClient(create_app(url)) as c:
        rows = {r["id"]: r for r in c.get("/api/runs").json()["runs"]}
        config = rows[odd]["config"]
        assert config["sched"] == [0.1, "inf"] and config["s"] == [{"a": "nan"}]
        assert config["t"] == [1.0, "-inf"]
        assert config['"a.b"'] == 3 and config["a.b"] == 4
        assert rows[plain]["config"]['"a.b"'] == 1 and "a.b" not in rows[plain]["config"]
        run = c.get(f"/api/run/{odd}").json()
        assert run["config_tree"]["sched"] == [0.1, "inf"]
        assert run["types"]['"a.b"'] == "int" and run["types"]["a.b"] == "int"
        # the column's name is what the filter takes
        found = c.get("/api/runs", params={"where": '"a.b" == 3'}).json()["runs"]
        assert [r["id"] for r in found] == [odd]
        assert c.get("/api/series", params={"runs": odd, "key": "loss"}).status_code == 200


def test_dumps_never_writes_a_token_browsers_reject():
    import json
    import math

    from ato.ui.data import dumps

    text = dumps({"x": [1, {"y": (math.inf, math.nan)}], "z": -math.inf, "ok": "inf"})
    assert json.loads(text) == {"x": [1, {"y": ["inf", "nan"]}], "z": "-inf", "ok": "inf"}
    assert "Infinity" not in text and "NaN" not in text


@pytest.mark.parametrize("huge", ["99999999999999999999", str(2**63), "0"])
def test_ids_a_database_cannot_hold_are_named_not_a_503(client, huge):
    """An id past a 64-bit integer made SQLite raise OverflowError (a 503 blaming the
    database); PostgreSQL answered 404. Both now: a 400 naming the id as typed, for the
    run endpoint as for a list of ids (an id no database can hold is no unknown run)."""
    r = client.get(f"/api/run/{huge}")
    assert (r.status_code, r.json()) == (400, {"error": f"{huge} is not a run id (run ids "
                                                        f"are 1 to {2**63 - 1})"})
    assert client.get(f"/api/run/{2**63 - 1}").status_code == 404
    for endpoint, params in (("/api/series", {"runs": f"1,{huge}", "key": "loss"}),
                             ("/api/runs", {"ids": huge}), ("/api/live", {"runs": huge})):
        r = client.get(endpoint, params=params)
        assert r.status_code == 400, endpoint
        assert r.json()["error"].startswith(f"{'ids' if 'ids' in params else 'runs'}: "
                                            f"{huge} is not a run id (run ids are 1 to ")


@pytest.mark.parametrize("path, params, named", [
    ("/api/runs", [("project", "a"), ("project", "b")], "project is given 2 times "
                                                        "(project=a, project=b): give it once"),
    ("/api/series", [("runs", "1"), ("runs", "2"), ("key", "loss")],
     "runs is given 2 times (runs=1, runs=2): give it once (several ids comma-separated: "
     "runs=1,2)"),
    ("/api/series", [("runs", "1"), ("key", "loss"), ("key", "acc")], "key is given 2 times"),
    ("/api/live", [("runs", "1"), ("runs", "1")], "runs is given 2 times"),
    ("/api/runs", [("where", "lr < 1"), ("where", "lr < 1")], "where is given 2 times"),
])
def test_a_repeated_parameter_is_a_400_naming_it(client, path, params, named):
    """The last of a repeated parameter was silently used."""
    r = client.get(path, params=params)
    assert r.status_code == 400 and r.json()["error"].startswith(named), r.json()


@pytest.mark.parametrize("name", ["max_points", "step_min", "step_max"])
def test_an_integer_parameter_past_64_bits_is_a_400(client, name):
    r = client.get("/api/series", params={"runs": "1", "key": "loss",
                                          name: "99999999999999999999999"})
    assert r.status_code == 400
    assert r.json()["error"] == f"{name}=99999999999999999999999 is out of range (at most " \
                                f"{2**63 - 1})"


def test_a_run_not_ended_lasts_until_its_last_heartbeat_on_every_view(client):
    """A running run's duration was now - start (its page's clock ran on after a kill -9,
    the cached runs table froze at a stale value), then dropped to the last heartbeat when
    it turned crashed. It is until the last heartbeat everywhere, running or crashed."""
    from tests.ui.populate import logger_for

    log = logger_for(client.url, "beats")
    run_id = log.run()
    try:
        log.log_metric("loss", 1.0, 0)
        log.flush()  # a flush beats the heart
        first = client.get(f"/api/run/{run_id}").json()
        assert first["status"] == "running" and first["duration"] is not None
        time.sleep(0.3)
        again = client.get(f"/api/run/{run_id}").json()
        listed = client.get("/api/runs", params={"ids": str(run_id)}).json()["runs"][0]
        assert again["duration"] == first["duration"] == listed["duration"]
        time.sleep(STALE + 0.2)  # no heartbeat since: crashed, the same duration
        crashed = client.get(f"/api/run/{run_id}").json()
        listed = client.get("/api/runs", params={"ids": str(run_id)}).json()["runs"][0]
        assert crashed["status"] == listed["status"] == "crashed"
        assert crashed["duration"] == listed["duration"] == first["duration"]
    finally:
        log.finish("completed")


@pytest.mark.parametrize("cursor, named", [
    ('{"1":{"tok":1e400}}', "a step is an integer, not 1e400"),
    ('{"1":{"tok":NaN}}', "NaN is no step"),
    ('{"1":{"tok":-Infinity}}', "-Infinity is no step"),
    ('{"1":{"tok":1.5}}', "a step is an integer, not 1.5"),
    ('{"1":{"tok":true}}', "the step of 'tok' is true, not an integer"),
    ('{"1":{"tok":"3"}}', "the step of 'tok' is \"3\", not an integer"),
    ('{"1":{"tok":99999999999999999999}}', "cursor: the step of 'tok' (99999999999999999999) "
                                           "is out of range"),
    ('{"1":{"tok":' + "9" * 5000 + "}}", "cursor must be JSON"),
    ('{"01":{"tok":1}}', "cursor: '01' is not a run id: run ids are integers in plain digits"),
    ('{"1":[1]}', "run 1 holds [1], not an object"),
    ("[1]", "cursor must be JSON"),
    ("[" * 20000, "cursor must be JSON"),
])
def test_a_cursor_step_that_is_no_64_bit_integer_is_a_400(client, cursor, named):
    """An infinite cursor step (1e400) was a 503 "cannot read the tracker: OverflowError";
    every step that is no 64-bit integer is a 400 naming cursor (the stream never opens)."""
    r = client.get("/api/live", params={"runs": "1", "cursor": cursor})
    assert r.status_code == 400, r.text
    assert r.json()["error"].startswith("cursor"), r.json()
    assert named in r.json()["error"], r.json()


@pytest.mark.parametrize("name, text", [("max_points", " 5"), ("step_min", "+5"),
                                        ("step_max", "1_000"), ("step_min", "\uff13"),
                                        ("max_points", "1e3"), ("step_max", "inf"),
                                        ("step_min", "nan"), ("max_points", "2.0")])
def test_an_integer_parameter_is_plain_ascii_digits(client, name, text):
    r = client.get("/api/series", params={"runs": "1", "key": "loss", name: text})
    assert r.status_code == 400
    assert r.json()["error"] == f"{name} must be an integer, not {text!r}"


@pytest.mark.parametrize("path, params, named", [
    ("/api/runs", {"ids": "1,,2"}, "ids has an empty element in '1,,2'"),
    ("/api/runs", {"ids": "1,"}, "ids has an empty element"),
    ("/api/runs", {"ids": ""}, "ids is empty"),
    ("/api/series", {"runs": "", "key": "loss"}, "runs (comma-separated run ids) is required"),
    ("/api/series", {"runs": ",1", "key": "loss"}, "runs has an empty element"),
    ("/api/live", {"runs": "1,,2"}, "runs has an empty element"),
    ("/api/runs", {"ids": "1 "}, "ids: '1 ' is not a run id: run ids are integers in plain "
                                 "digits, 1 to 9223372036854775807 (no sign, leading zero or "
                                 "space)"),
    ("/api/runs", {"ids": "01"}, "ids: '01' is not a run id"),
    ("/api/runs", {"ids": "+1"}, "ids: '+1' is not a run id"),
    ("/api/runs", {"ids": "1_0"}, "ids: '1_0' is not a run id"),
    ("/api/runs", {"ids": "\uff13"}, "ids: '\uff13' is not a run id"),
    ("/api/series", {"runs": "1,-2", "key": "loss"}, "runs: '-2' is not a run id"),
    ("/api/live", {"runs": "1, 2"}, "runs: ' 2' is not a run id"),
])
def test_an_empty_or_not_plain_run_id_list_is_a_400_naming_it(client, path, params, named):
    """``ids=1,,2`` was taken as 1,2 and ``ids=`` as no filter at all; `` 1``, ``+1``,
    ``01`` and a full-width ３ were taken as ids by int()."""
    r = client.get(path, params=params)
    assert r.status_code == 400 and r.json()["error"].startswith(named), r.json()


@pytest.mark.parametrize("text", ["%EF%BC%93", "01", "+1", "1%20", "%201", "1_0", "-1",
                                  "1.0"])
def test_a_run_id_in_a_path_is_plain_ascii_digits(client, text):
    for path in (f"/api/run/{text}", f"/api/registry/run/{text}"):
        r = client.get(path)
        assert r.status_code == 400, (path, r.text)
        assert r.json()["error"].startswith("the run id must be an integer in plain digits, 1 "
                                            f"to {2**63 - 1} (no sign"), r.json()
    assert client.get("/api/run/1").status_code == 200


def _raw_get(port: int, target: str) -> tuple[int, str, str]:
    """``(status, content type, body)`` of a GET sent over a bare socket (httpx refuses a
    URL past 64 KiB; a browser sends up to 2 MB)."""
    import socket

    with socket.create_connection(("127.0.0.1", port), timeout=30) as sock:
        sock.sendall(f"GET {target} HTTP/1.1\r\nHost: 127.0.0.1\r\nAccept-Encoding: identity\r\n"
                     f"Connection: close\r\n\r\n".encode("ascii"))
        chunks = []
        while chunk := sock.recv(65536):
            chunks.append(chunk)
    head, _, body = b"".join(chunks).partition(b"\r\n\r\n")
    lines = head.decode("latin-1").split("\r\n")
    headers = dict(line.lower().split(": ", 1) for line in lines[1:])
    return int(lines[0].split()[1]), headers.get("content-type", ""), body.decode()


def test_a_where_of_10000_comparisons_fits_in_a_url_the_server_reads(tmp_path):
    """A URL of a few hundred KB (a where of thousands of comparisons, which the grammar
    takes up to 10,000) was refused by h11's 16 KiB limit: the connection closed with no
    JSON answer. The server reads 1 MiB: the where gets its JSON answer (runs, or the
    grammar's 400), URL-encoded as the page sends it."""
    from urllib.parse import quote

    from ato.ui.command import MAX_REQUEST_HEAD

    log, run_id, server = _served_run(f"sqlite:///{tmp_path / 'long.db'}", "long")
    log.finish("completed")
    try:
        where = " or ".join(["lr < 0"] * 9999 + ["lr > -1"])
        target = "/api/runs?where=" + quote(where)
        assert 150_000 < len(target) < MAX_REQUEST_HEAD
        status, kind, body = _raw_get(server.port, target)
        assert (status, kind) in ((200, "application/json"), (400, "application/json")), body
        assert "runs" in json.loads(body) or "where" in json.loads(body)["error"], body[:200]
        status, kind, body = _raw_get(server.port, "/api/runs?where="
                                      + quote(" or ".join(["lr < 0"] * 10001)))
        assert (status, kind) == (400, "application/json"), body[:300]
    finally:
        server.stop()
