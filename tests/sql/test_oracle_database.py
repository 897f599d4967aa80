"""A database written by the original Ato is read as is and upgraded on first write."""

import json
import sqlite3

import pytest

from ato.db_routers.sql.engine import SCHEMA_VERSION
from ato.db_routers.sql.manager import SQLFinder, SQLLogger
from tests.sql.conftest import make_config

ORACLE_DDL = """
CREATE TABLE projects (id INTEGER NOT NULL, name VARCHAR NOT NULL, description TEXT,
    created_at DATETIME, PRIMARY KEY (id));
CREATE UNIQUE INDEX ix_projects_name ON projects (name);
CREATE TABLE experiments (id INTEGER NOT NULL, project_id INTEGER NOT NULL, config JSON NOT NULL,
    structural_hash VARCHAR(64), tags JSON, status VARCHAR, start_time DATETIME, end_time DATETIME,
    PRIMARY KEY (id), FOREIGN KEY(project_id) REFERENCES projects (id));
CREATE INDEX ix_experiments_project_id ON experiments (project_id);
CREATE INDEX ix_experiments_structural_hash ON experiments (structural_hash);
CREATE INDEX ix_experiments_status ON experiments (status);
CREATE TABLE metrics (id INTEGER NOT NULL, run_id INTEGER NOT NULL, "key" VARCHAR NOT NULL,
    value FLOAT NOT NULL, step INTEGER NOT NULL, timestamp DATETIME, PRIMARY KEY (id),
    FOREIGN KEY(run_id) REFERENCES experiments (id));
CREATE INDEX ix_metrics_run_id ON metrics (run_id);
CREATE INDEX ix_metrics_key ON metrics ("key");
CREATE TABLE artifacts (id INTEGER NOT NULL, run_id INTEGER NOT NULL, path VARCHAR NOT NULL,
    data_type VARCHAR, data_info JSON, PRIMARY KEY (id), FOREIGN KEY(run_id) REFERENCES experiments (id));
CREATE INDEX ix_artifacts_run_id ON artifacts (run_id);
CREATE TABLE fingerprints (id INTEGER NOT NULL, run_id INTEGER NOT NULL, trace_id VARCHAR NOT NULL,
    trace_type VARCHAR(32) NOT NULL, fingerprint VARCHAR(128) NOT NULL, PRIMARY KEY (id),
    FOREIGN KEY(run_id) REFERENCES experiments (id));
CREATE INDEX ix_fingerprints_run_id ON fingerprints (run_id);
CREATE INDEX ix_fingerprints_trace_id ON fingerprints (trace_id);
CREATE INDEX ix_fingerprints_trace_type ON fingerprints (trace_type);
CREATE INDEX ix_fingerprints_fingerprint ON fingerprints (fingerprint);
"""


@pytest.fixture
def oracle_db(tmp_path):
    path = tmp_path / "old.db"
    conn = sqlite3.connect(path)
    conn.executescript(ORACLE_DDL)
    t = "2025-06-01 10:00:00.000000"
    conn.execute("INSERT INTO projects VALUES (1, 'legacy', NULL, ?)", (t,))
    for run_id, lr, status in [(1, 0.1, "completed"), (2, 0.01, "running")]:
        conn.execute("INSERT INTO experiments VALUES (?, 1, ?, 'h', ?, ?, ?, NULL)",
                     (run_id, json.dumps({"lr": lr, "model": "resnet50"}), json.dumps(["old"]),
                      status, t))
        for step in range(3):
            conn.execute("INSERT INTO metrics (run_id, key, value, step, timestamp) "
                         "VALUES (?, 'acc', ?, ?, ?)", (run_id, lr * 10 + step, step, t))
    conn.execute("INSERT INTO artifacts VALUES (1, 1, 'model.pt', 'model', '{\"epoch\": 2}')")
    conn.execute("INSERT INTO fingerprints VALUES (1, 1, 'fwd', 'static', 'abc')")
    conn.commit()
    conn.close()
    yield f"sqlite:///{path}", path
    from ato.db_routers.sql.engine import forget_engine

    forget_engine(f"sqlite:///{path}")


def test_read_without_writing(oracle_db):
    """Every run, metric, artifact and fingerprint reads back; nothing is written."""
    url, path = oracle_db
    finder = SQLFinder(make_config(url))
    runs = finder.get_runs_in_project("legacy")
    assert [(r.id, r.config.lr, r.tags) for r in runs] == [(1, 0.1, ["old"]), (2, 0.01, ["old"])]
    assert runs[1].status == "crashed"  # running, and its last sign of life is long gone
    assert len(runs[0].metrics) == 3 and runs[0].artifacts[0].data_info == {"epoch": 2}
    assert runs[0].fingerprints[0].fingerprint == "abc"
    assert finder.find_best_run("legacy", "acc").id == 1
    assert finder.metric_summaries([2], ["acc"])[2]["acc"]["latest"] == pytest.approx(2.1)
    assert finder.get_trace_statistics("legacy", "fwd")["static_trace_versions"] == 1
    tables = {r[0] for r in sqlite3.connect(path).execute("SELECT name FROM sqlite_master")}
    assert "ato_schema" not in tables


def test_first_write_upgrades_in_place(oracle_db):
    """A logger upgrades the schema, keeps every old row and backfills the summaries."""
    url, path = oracle_db
    logger = SQLLogger(make_config(url, "legacy", lr=0.5, model="vit"))
    run_id = logger.run()
    logger.log_metric("acc", 9, 0)
    logger.finish()
    conn = sqlite3.connect(path)
    assert conn.execute("SELECT version FROM ato_schema").fetchone() == (SCHEMA_VERSION,)
    assert conn.execute("SELECT COUNT(*) FROM metrics").fetchone() == (7,)
    assert conn.execute("SELECT count, last_value FROM metric_summaries WHERE run_id = 1"
                        ).fetchone() == (3, 3.0)
    finder = SQLFinder(make_config(url))
    assert [r.id for r in finder.get_runs_in_project("legacy")] == [1, 2, run_id]
    assert finder.find_best_run("legacy", "acc").id == run_id


def add_non_finite_run(path):
    """The original Ato stores Python's json.dumps output: `Infinity`/`NaN` tokens, which
    SQLite's JSON functions reject (every --where used to fail)."""
    conn = sqlite3.connect(path)
    conn.execute("INSERT INTO experiments VALUES (3, 1, ?, 'h', '[]', 'completed', "
                 "'2025-06-01 10:00:00.000000', NULL)",
                 (json.dumps({"lr": float("inf"), "score": float("nan"), "model": "x"}),))
    conn.execute("INSERT INTO artifacts VALUES (2, 3, 'a.pt', 'model', ?)",
                 (json.dumps({"best": float("-inf")}),))
    conn.commit()
    conn.close()


def test_non_finite_tokens_of_the_original_are_read_and_queried(oracle_db):
    """Read as is: the values come back exact and queries skip the row instead of failing;
    after the first logger's upgrade the row is re-encoded and queries match it."""
    import math

    url, path = oracle_db
    add_non_finite_run(path)
    finder = SQLFinder(make_config(url))
    run = finder.find_run(3)
    assert run.config.lr == math.inf and math.isnan(run.config.score)
    assert run.artifacts[0].data_info == {"best": -math.inf}
    assert [r.id for r in finder.find_runs("legacy", where="lr > 0")] == [1, 2]
    logger = SQLLogger(make_config(url, "legacy", lr=0.5))
    logger.run()
    logger.finish()
    assert [r.id for r in finder.find_runs("legacy", where="lr > 0.2")] == [3, 4]
    assert [r.id for r in finder.find_runs("legacy", where="score == nan")] == [3]
    raw = sqlite3.connect(path).execute("SELECT config FROM experiments WHERE id = 3").fetchone()
    assert "Infinity" not in raw[0].replace('"Infinity"', "")
    assert SQLFinder(make_config(url)).find_run(3).artifacts[0].data_info == {"best": -math.inf}
