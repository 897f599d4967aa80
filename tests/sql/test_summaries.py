"""metric_summaries never diverges from the metrics it summarises, whoever writes them
(issue 8 §4): the database's triggers maintain it for inserts, updates and deletes by our
logger, by the original Ato 2.0.1 (plain INSERTs into ``metrics``), by scripts and
restores; migrations backfill it; a reader of an unmigrated database aggregates instead."""

import math
import random
import subprocess
import sys

import pytest
from sqlalchemy import text

from ato.db_routers.sql.engine import get_engine
from ato.db_routers.sql.manager import SQLFinder, SQLLogger
from tests.sql.conftest import make_config


def logged_run(url, metrics, **config):
    logger = SQLLogger(make_config(url, **config), handle_signals=False)
    run_id = logger.run()
    for key, value, step in metrics:
        logger.log_metric(key, value, step)
    logger.finish()
    return run_id


def sql(url, statement, rows=None):
    """Run plain SQL the way a foreign writer does (its own connection and transaction)."""
    with get_engine(url).begin() as conn:
        if rows is None:
            return conn.execute(text(statement))
        conn.execute(text(statement), rows)


def foreign_run(url, metrics, project="proj"):
    """What the original Ato 2.0.1 writes: an experiment row, then one INSERT per metric
    into ``metrics`` (it knows nothing of metric_summaries)."""
    with get_engine(url).begin() as conn:
        project_id = conn.execute(text("SELECT id FROM projects WHERE name = :n"),
                                  {"n": project}).scalar()
        run_id = conn.execute(text(
            "INSERT INTO experiments (project_id, config, structural_hash, tags, status, "
            "start_time) VALUES (:p, '{\"lr\": 0.3}', 'h', '[]', 'completed', "
            "'2026-01-01 00:00:00') RETURNING id"), {"p": project_id}).scalar()
    for key, value, step in metrics:
        sql(url, "INSERT INTO metrics (run_id, key, value, step, timestamp) VALUES "
                 "(:r, :k, :v, :s, '2026-01-01 00:00:00')",
            {"r": run_id, "k": key, "v": value, "s": step})
    return run_id


def expected_summaries(url) -> dict:
    """Summaries computed in Python from every metric row."""
    groups: dict = {}
    with get_engine(url).connect() as conn:
        for id_, run_id, key, value, step in conn.execute(text(
                "SELECT id, run_id, key, value, step FROM metrics")):
            groups.setdefault((run_id, key), []).append((step, id_, float(value)))
    out = {}
    for pair, rows in groups.items():
        numbers = [v for _, _, v in rows if v == v]
        last = max(rows)
        out[pair] = (last[2], last[0], min(numbers, default=None), max(numbers, default=None),
                     len(rows))
    return out


def stored_summaries(url) -> dict:
    with get_engine(url).connect() as conn:
        rows = conn.execute(text("SELECT run_id, key, last_value, last_step, min_value, "
                                 "max_value, count FROM metric_summaries")).all()
    return {(r, k): (float(last), step, lo, hi, n) for r, k, last, step, lo, hi, n in rows}


def assert_consistent(url):
    want, got = expected_summaries(url), stored_summaries(url)
    assert want.keys() == got.keys()
    for pair in want:
        w, g = want[pair], got[pair]
        assert (w[0] == g[0] or (math.isnan(w[0]) and math.isnan(g[0]))) and w[1:] == g[1:], pair


def test_foreign_writer_reaches_best_run_and_list(db_url):
    """Ours writes run 1 (acc up to 0.5), the original Ato writes run 2 (acc up to 0.9)
    into the same database: run 2 is the best, and `ato runs list --metrics` shows it."""
    ours = logged_run(db_url, [("acc", 0.1, 0), ("acc", 0.5, 1)])
    theirs = foreign_run(db_url, [("acc", 0.2, 0), ("acc", 0.9, 1), ("acc", 0.4, 2)])
    finder = SQLFinder(make_config(db_url))
    assert finder.find_best_run("proj", "acc", "max").id == theirs
    assert finder.find_best_run("proj", "acc", "min").id == ours
    summary = finder.metric_summaries([theirs], ["acc"])[theirs]["acc"]
    assert summary == {"latest": 0.4, "latest_step": 2, "min": 0.2, "max": 0.9, "steps": 3}
    proc = subprocess.run([sys.executable, "-m", "ato.cli", "runs", "list", "--db", db_url,
                           "--metrics", "acc"], capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr
    row = next(line.split() for line in proc.stdout.splitlines() if line.startswith(str(theirs)))
    assert row[-3:] == ["0.4", "0.9", "3"]


def test_bulk_restore_insert_select(db_url):
    """A restore copying rows in one INSERT ... SELECT statement is summarised too."""
    source = logged_run(db_url, [("loss", 1.0 / (s + 1), s) for s in range(50)])
    copy = foreign_run(db_url, [])
    sql(db_url, f"INSERT INTO metrics (run_id, key, value, step, timestamp) SELECT {copy}, key, "
                f"value, step, timestamp FROM metrics WHERE run_id = {source}")
    assert_consistent(db_url)
    finder = SQLFinder(make_config(db_url))
    assert finder.metric_summaries([copy], ["loss"])[copy]["loss"]["steps"] == 50


def test_updates_and_deletes_keep_summaries_exact(db_url):
    """Editing or deleting rows (the latest, an extreme, an ordinary one, all of a key)
    leaves exactly what a fresh aggregate gives."""
    run_id = logged_run(db_url, [("acc", v, s) for s, v in enumerate([0.3, 0.9, 0.1, 0.5, 0.4])])
    other = logged_run(db_url, [("acc", 0.6, 0)])
    sql(db_url, f"DELETE FROM metrics WHERE run_id = {run_id} AND step = 3")   # ordinary
    assert_consistent(db_url)
    sql(db_url, f"DELETE FROM metrics WHERE run_id = {run_id} AND step = 1")   # the max
    assert_consistent(db_url)
    sql(db_url, f"DELETE FROM metrics WHERE run_id = {run_id} AND step = 4")   # the latest
    assert_consistent(db_url)
    finder = SQLFinder(make_config(db_url))
    assert finder.find_best_run("proj", "acc", "max").id == other
    sql(db_url, f"UPDATE metrics SET value = 2.0 WHERE run_id = {run_id} AND step = 0")
    assert_consistent(db_url)
    assert finder.find_best_run("proj", "acc", "max").id == run_id
    sql(db_url, f"UPDATE metrics SET key = 'moved' WHERE run_id = {run_id} AND step = 0")
    assert_consistent(db_url)
    sql(db_url, f"DELETE FROM metrics WHERE run_id = {run_id}")
    assert_consistent(db_url)
    assert finder.metric_summaries([run_id], ["acc", "moved"]) == {run_id: {}}


def test_random_foreign_edits(db_url):
    """Hundreds of random inserts, updates and deletes from outside: still exact."""
    rng = random.Random(8)
    runs = [logged_run(db_url, [("a", rng.random(), s) for s in range(5)]) for _ in range(3)]
    for _ in range(120):
        action = rng.random()
        run_id, key = rng.choice(runs), rng.choice(["a", "b"])
        if action < 0.5:
            value = rng.choice([rng.random(), rng.random(), math.inf, -math.inf, 0.5])
            sql(db_url, "INSERT INTO metrics (run_id, key, value, step, timestamp) VALUES "
                        "(:r, :k, :v, :s, '2026-01-01 00:00:00')",
                {"r": run_id, "k": key, "v": value, "s": rng.randrange(8)})
        elif action < 0.75:
            sql(db_url, f"DELETE FROM metrics WHERE id = (SELECT MIN(id) FROM metrics WHERE "
                        f"run_id = {run_id} AND step = {rng.randrange(8)})")
        else:
            sql(db_url, f"UPDATE metrics SET value = {rng.random()}, step = {rng.randrange(8)} "
                        f"WHERE id = (SELECT MAX(id) FROM metrics WHERE run_id = {run_id})")
    assert_consistent(db_url)


def test_our_logger_and_foreign_rows_on_the_same_run(db_url):
    """Rows of one run from two writers (same steps too): latest is the last written."""
    logger = SQLLogger(make_config(db_url), handle_signals=False)
    run_id = logger.run()
    logger.log_metric("x", 1.0, 5)
    logger.flush()
    sql(db_url, f"INSERT INTO metrics (run_id, key, value, step) VALUES ({run_id}, 'x', 7, 5)")
    logger.log_metric("x", math.nan, 4)
    logger.finish()
    assert_consistent(db_url)
    summary = SQLFinder(make_config(db_url)).metric_summaries([run_id], ["x"])[run_id]["x"]
    assert summary == {"latest": 7.0, "latest_step": 5, "min": 1.0, "max": 7.0, "steps": 3}


def make_stale_v2(url):
    """A database as schema 2 left it: summaries written by the logger only, no triggers,
    and a foreign writer's rows missing from them."""
    run_id = logged_run(url, [("acc", 0.5, 0)])
    foreign = foreign_run(url, [])
    with get_engine(url).begin() as conn:
        for trigger in ("ato_metrics_insert", "ato_metrics_delete", "ato_metrics_update"):
            conn.execute(text(f"DROP TRIGGER IF EXISTS {trigger}"
                              + ("" if conn.dialect.name == "sqlite" else " ON metrics")))
        conn.execute(text("UPDATE ato_schema SET version = 2"))
        conn.execute(text(f"INSERT INTO metrics (run_id, key, value, step) VALUES "
                          f"({foreign}, 'acc', 0.9, 0)"))
    return run_id, foreign


def test_unmigrated_database_is_read_from_metrics(db_url):
    """A finder does not trust summaries that no trigger maintained (schema < 3): it
    aggregates the metrics table, and gives the right answer without writing."""
    _, foreign = make_stale_v2(db_url)
    finder = SQLFinder(make_config(db_url))
    assert finder.find_best_run("proj", "acc", "max").id == foreign
    assert finder.metric_summaries([foreign], ["acc"])[foreign]["acc"]["max"] == 0.9
    with get_engine(db_url).connect() as conn:
        assert conn.execute(text("SELECT version FROM ato_schema")).scalar() == 2


def test_migration_backfills_and_installs_triggers(db_url):
    """The first logger on a schema-2 database rebuilds the summaries from every row and
    installs the triggers, so later foreign rows count too."""
    from ato.db_routers.sql.engine import forget_engine

    _, foreign = make_stale_v2(db_url)
    forget_engine(db_url)
    logged_run(db_url, [("acc", 0.1, 0)])
    assert_consistent(db_url)
    sql(db_url, f"INSERT INTO metrics (run_id, key, value, step) VALUES ({foreign}, 'acc', 0.95, 1)")
    assert_consistent(db_url)
    assert SQLFinder(make_config(db_url)).find_best_run("proj", "acc").id == foreign


@pytest.mark.parametrize("version", [99])
def test_newer_schema_is_refused(db_url, version):
    """A database from a newer ato-sql is not silently downgraded."""
    from ato.db_routers.sql.engine import forget_engine
    from ato.errors import AtoError

    logged_run(db_url, [])
    sql(db_url, f"UPDATE ato_schema SET version = {version}")
    forget_engine(db_url)
    with pytest.raises(AtoError, match=f"schema version {version}, newer"):
        SQLLogger(make_config(db_url), handle_signals=False)
