"""The API's error contract and what it never shows: every /api/ answer that fails is JSON
``{"error": …}`` (the database gone under a running server, the token and Host checks), and
no password inside a URL stored in a run's config or tags reaches any answer."""

from __future__ import annotations

import json

from starlette.testclient import TestClient

from ato.ui.app import create_app
from ato.ui.data import mask_secrets
from tests.ui.populate import config_for, logger_for


def test_mask_secrets_hides_the_password_of_every_url_and_keeps_the_rest():
    assert (mask_secrets("postgresql://postgres:hunter2@db:5432/x")
            == "postgresql://postgres:***@db:5432/x")
    assert (mask_secrets("a mysql+pymysql://u:p%40ss@h/d and redis://:tok@r:6379/0")
            == "a mysql+pymysql://u:***@h/d and redis://:***@r:6379/0")
    for kept in ("me@example.com", "sqlite:///a@b.db", "http://host/x?y=a:b@c",
                 "ssh://user@host/path"):
        assert mask_secrets(kept) == kept


def test_a_password_in_a_config_value_or_tag_is_masked_in_every_answer(tmp_path):
    url = f"sqlite:///{tmp_path / 'secret.db'}"
    log = logger_for(url)
    secret = "hunter2-<b>&'\""
    log.run(config=config_for(url, db_path=f"postgresql://postgres:{secret}@db:5432/x",
                              nested={"dsn": f"https://u:{secret}@api.example/v1"}),
            tags=[f"src:postgresql://bob:{secret}@h/db"])
    log.log_metric("loss", 1.0, 0)
    log.finish()
    with TestClient(create_app(url)) as c:
        runs = c.get("/api/runs")
        one = c.get("/api/run/1")
        for answer in (runs, one):
            assert answer.status_code == 200
            assert "hunter2" not in answer.text
        row = runs.json()["runs"][0]
        assert row["config"]["db_path"] == "postgresql://postgres:***@db:5432/x"
        assert row["config"]["nested.dsn"] == "https://u:***@api.example/v1"
        assert row["tags"] == ["src:postgresql://bob:***@h/db"]
        assert one.json()["config_tree"]["nested"]["dsn"] == "https://u:***@api.example/v1"


def test_the_database_gone_under_the_server_is_a_json_503(tmp_path):
    path = tmp_path / "gone.db"
    url = f"sqlite:///{path}"
    log = logger_for(url)
    log.run()
    log.log_metric("loss", 1.0, 0)
    log.finish()
    with TestClient(create_app(url), raise_server_exceptions=False) as c:
        assert c.get("/api/runs", params={"ids": "1"}).status_code == 200
        for p in tmp_path.iterdir():
            p.unlink()
        answer = c.get("/api/runs", params={"ids": "1", "where": "lr > 0"})
        assert answer.status_code == 503
        assert answer.headers["content-type"].startswith("application/json")
        message = json.loads(answer.text)["error"]
        assert message.startswith(f"the database file {path} was removed while the dashboard")


def test_token_and_host_refusals_are_json_on_api_paths(tmp_path):
    url = f"sqlite:///{tmp_path / 't.db'}"
    log = logger_for(url)
    log.run()
    log.finish()
    with TestClient(create_app(url, token="s3cret", loopback_only=False)) as c:
        api = c.get("/api/runs")
        assert api.status_code == 401 and "token" in api.json()["error"]
        page = c.get("/")
        assert page.status_code == 401 and page.headers["content-type"].startswith("text/plain")
    with TestClient(create_app(url), base_url="http://evil.example") as c:
        api = c.get("/api/info")
        assert api.status_code == 403 and api.json() == {"error": "unknown Host header"}
