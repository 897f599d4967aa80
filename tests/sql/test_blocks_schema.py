"""Schema steps 6 to 8 (metric block summaries, their last values, then a block size for
every power of two): every earlier database (the original Ato's, and versions 1..7)
upgrades in place with its blocks built from the rows it holds, nothing lost; a finder on
a database not yet upgraded reads what that version holds and writes nothing."""

from __future__ import annotations

import math
import random
import sqlite3

import pytest
from sqlalchemy import inspect, text

from ato.db_routers.sql.engine import SCHEMA_VERSION, forget_engine, get_engine
from ato.db_routers.sql.manager import SQLFinder, SQLLogger
from ato.tracking import reduce_points
from tests.sql.conftest import make_config
from tests.sql.test_oracle_database import oracle_db  # noqa: F401 (fixture)

BLOCK_TABLES = {"metric_blocks", "metric_block_counts"}


def logged_run(url, n=3000, seed=1) -> int:
    rng = random.Random(seed)
    logger = SQLLogger(make_config(url, "keep", lr=0.1), handle_signals=False)
    run_id = logger.run(tags=["before-upgrade"])
    for step in range(n):
        logger.log_metric("loss", rng.choice([math.nan, math.inf, 1.0, rng.uniform(-3, 3)]),
                          step - (7 if step % 97 == 0 else 0))
    logger.finish()
    return run_id


def downgrade(url, version: int) -> None:
    """The database as schema ``version`` left it: no block tables or triggers."""
    with get_engine(url).begin() as conn:
        pg = conn.dialect.name == "postgresql"
        for trigger in ("ato_metric_blocks_delete", "ato_metric_blocks_update"):
            conn.execute(text(f"DROP TRIGGER IF EXISTS {trigger}" + (" ON metrics" if pg else "")))
        for table in BLOCK_TABLES:
            conn.execute(text(f"DROP TABLE IF EXISTS {table}"))
        conn.execute(text("UPDATE ato_schema SET version = :v"), {"v": version})
    forget_engine(url)


def tables(url) -> set[str]:
    with get_engine(url).connect() as conn:
        return set(inspect(conn).get_table_names())


def assert_reduced_from_blocks(url, run_id, monkeypatch, key="loss", sizes=None):
    from ato.db_routers.sql import blocks

    calls = []
    real = blocks.reduce_runs
    monkeypatch.setattr(blocks, "reduce_runs",
                        lambda *a, **k: calls.append(k.get("sizes", a[-1])) or real(*a, **k))
    finder = SQLFinder(make_config(url))
    history = finder.get_metric_history(run_id, key)
    for max_points in (9, 50, 400):
        series = finder.get_metric_series(run_id, key, max_points=max_points)
        assert [(p.step, repr(p.value)) for p in series.points] == [
            (p.step, repr(p.value)) for p in reduce_points(history, max_points)]
    assert calls == [sizes or blocks.SIZES] * 3
    monkeypatch.setattr(blocks, "reduce_runs", real)


def test_schema_version_is_nine():
    assert SCHEMA_VERSION == 9


@pytest.mark.parametrize("old", [1, 2, 3, 4, 5])
def test_upgrade_in_place_builds_the_blocks(db_url, old, monkeypatch):
    """A schema 1..5 database, read before the upgrade from its raw rows (nothing written),
    gets its blocks from the first writer; every run and point is as before."""
    run_id = logged_run(db_url)
    downgrade(db_url, old)
    finder = SQLFinder(make_config(db_url))
    history = finder.get_metric_history(run_id, "loss")
    assert len(history) == 3000
    series = finder.get_metric_series(run_id, "loss", max_points=100)
    assert [(p.step, repr(p.value)) for p in series.points] == [
        (p.step, repr(p.value)) for p in reduce_points(history, 100)]
    assert not BLOCK_TABLES & tables(db_url)  # the reader created nothing
    logger = SQLLogger(make_config(db_url), handle_signals=False)  # the migration
    assert BLOCK_TABLES <= tables(db_url)
    with get_engine(db_url).connect() as conn:
        assert conn.execute(text("SELECT MAX(version) FROM ato_schema")).scalar() == SCHEMA_VERSION
        assert conn.execute(text("SELECT rows FROM metric_block_counts WHERE run_id = :r"),
                            {"r": run_id}).scalar() == 3000
    forget_engine(db_url)
    assert_reduced_from_blocks(db_url, run_id, monkeypatch)
    (run,) = SQLFinder(make_config(db_url)).find_runs("keep")
    assert (run.id, run.tags, run.config.lr) == (run_id, ["before-upgrade"], 0.1)
    assert [(p.step, repr(p.value)) for p in
            SQLFinder(make_config(db_url)).get_metric_history(run_id, "loss")] == [
        (p.step, repr(p.value)) for p in history]
    logger.run()
    logger.log_metric("loss", 1.0, 0)
    logger.finish()


def test_original_ato_database_upgrades_to_the_current_schema(oracle_db, monkeypatch):  # noqa: F811
    """An original-Ato file (version 0) with a long series upgrades straight to the current schema, its
    rows summarised into blocks."""
    url, path = oracle_db
    conn = sqlite3.connect(path)
    rng = random.Random(4)
    conn.executemany("INSERT INTO metrics (run_id, key, value, step, timestamp) "
                     "VALUES (1, 'loss', ?, ?, '2025-06-01 10:00:00.000000')",
                     [(rng.uniform(0, 1), s) for s in range(2500)])
    conn.commit()
    conn.close()
    SQLLogger(make_config(url, "legacy"), handle_signals=False)
    conn = sqlite3.connect(path)
    assert conn.execute("SELECT version FROM ato_schema").fetchone() == (SCHEMA_VERSION,)
    assert conn.execute("SELECT COUNT(*) FROM metrics").fetchone() == (2506,)
    assert conn.execute("SELECT rows FROM metric_block_counts WHERE run_id = 1 AND key = "
                        "'loss'").fetchone() == (2500,)
    conn.close()
    assert_reduced_from_blocks(url, 1, monkeypatch)


def test_six_upgrades_with_its_blocks_built_again(db_url, monkeypatch):
    """A schema 6 database (blocks without their last value and first non-finite point,
    so its reductions are read from the raw rows meanwhile) gets its blocks built again
    from the metric rows, and its reductions read from the blocks, equal to the
    reference."""
    from ato.db_routers.sql.blocks import STEP7_COLUMNS

    run_id = logged_run(db_url)
    count = "SELECT COUNT(*), COUNT(last_value), COUNT(nf_step) FROM metric_blocks WHERE run_id = :r"
    with get_engine(db_url).begin() as conn:
        expected = tuple(conn.execute(text(count), {"r": run_id}).one())
        assert 0 < expected[1] < expected[0] and 0 < expected[2] < expected[0]
        for name, _ in STEP7_COLUMNS:
            conn.execute(text(f"ALTER TABLE metric_blocks DROP COLUMN {name}"))
        conn.execute(text("UPDATE ato_schema SET version = 6"))
    forget_engine(db_url)
    finder = SQLFinder(make_config(db_url))  # before the upgrade: the raw rows
    history = finder.get_metric_history(run_id, "loss")
    assert [(p.step, repr(p.value)) for p in
            finder.get_metric_series(run_id, "loss", max_points=64).points] == [
        (p.step, repr(p.value)) for p in reduce_points(history, 64)]
    SQLLogger(make_config(db_url), handle_signals=False)  # the migration
    with get_engine(db_url).connect() as conn:
        assert conn.execute(text("SELECT MAX(version) FROM ato_schema")).scalar() == SCHEMA_VERSION
        assert tuple(conn.execute(text(count), {"r": run_id}).one()) == expected
    forget_engine(db_url)
    assert_reduced_from_blocks(db_url, run_id, monkeypatch)


def test_seven_is_read_from_its_own_blocks_then_gains_every_power_of_two(db_url, monkeypatch):
    """A schema 7 database holds blocks of the powers of four only. A reader (the
    dashboard never upgrades) reduces from those, two blocks to a bucket where it must;
    the first writer adds the other sizes (8, 32, 128, 512) and a bucket is one block."""
    from ato.db_routers.sql.blocks import SIZES, SIZES_7

    run_id = logged_run(db_url)
    sizes = "SELECT size, COUNT(*) FROM metric_blocks WHERE run_id = :r GROUP BY size ORDER BY size"
    with get_engine(db_url).begin() as conn:
        expected = [tuple(row) for row in conn.execute(text(sizes), {"r": run_id})]
        assert [size for size, _ in expected] == list(SIZES)
        conn.execute(text("DELETE FROM metric_blocks WHERE size NOT IN (4, 16, 64, 256, 1024)"))
        conn.execute(text("UPDATE ato_schema SET version = 7"))
    forget_engine(db_url)
    assert_reduced_from_blocks(db_url, run_id, monkeypatch, sizes=SIZES_7)
    with get_engine(db_url).connect() as conn:  # the reader wrote nothing
        assert [size for size, _ in conn.execute(text(sizes), {"r": run_id})] == list(SIZES_7)
    forget_engine(db_url)
    SQLLogger(make_config(db_url), handle_signals=False)  # the migration
    with get_engine(db_url).connect() as conn:
        assert conn.execute(text("SELECT MAX(version) FROM ato_schema")).scalar() == SCHEMA_VERSION
        assert [tuple(row) for row in conn.execute(text(sizes), {"r": run_id})] == expected
    forget_engine(db_url)
    assert_reduced_from_blocks(db_url, run_id, monkeypatch, sizes=SIZES)


def test_eight_upgrades_to_64_bit_steps(db_url):
    """A schema 8 PostgreSQL database holds a metric's step in a 32-bit INTEGER; the
    first writer makes it (and the summaries' last step) BIGINT, keeping every row, and a
    step past 2^31 (a count of tokens) is then recorded. SQLite's integers always were
    64-bit: its upgrade only moves the version."""
    run_id = logged_run(db_url)
    postgres = db_url.startswith("postgresql")
    with get_engine(db_url).begin() as conn:
        points = conn.execute(text("SELECT COUNT(*) FROM metrics")).scalar()
        if postgres:
            for table, column in (("metrics", "step"), ("metric_summaries", "last_step")):
                conn.execute(text(f"ALTER TABLE {table} ALTER COLUMN {column} TYPE INTEGER"))
        conn.execute(text("UPDATE ato_schema SET version = 8"))
    forget_engine(db_url)
    with SQLLogger(make_config(db_url), handle_signals=False) as logger:  # the migration
        logger.log_metric("tokens", 1.5, 3 * 2**40)
    forget_engine(db_url)
    with get_engine(db_url).connect() as conn:
        assert conn.execute(text("SELECT MAX(version) FROM ato_schema")).scalar() == SCHEMA_VERSION
        assert conn.execute(text("SELECT COUNT(*) FROM metrics")).scalar() == points + 1
        if postgres:
            kinds = {(c["name"], str(c["type"])) for t in ("metrics", "metric_summaries")
                     for c in inspect(conn).get_columns(t)}
            assert {("step", "BIGINT"), ("last_step", "BIGINT")} <= kinds
    (run,) = [r for r in SQLFinder(make_config(db_url)).find_runs() if r.id != run_id]
    summary = SQLFinder(make_config(db_url)).get_metric_summaries([run.id])[run.id]["tokens"]
    assert summary.last_step == 3 * 2**40
