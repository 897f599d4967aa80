"""Schema step 5 (the study-coordination tables): every earlier database upgrades in place,
losing nothing; the read-only coordinator never creates, migrates or writes."""

from __future__ import annotations

import math
import sqlite3

import pytest
from sqlalchemy import inspect, text

from ato.db_routers.sql.engine import SCHEMA_VERSION, forget_engine, get_engine
from ato.db_routers.sql.manager import SQLFinder, SQLLogger
from ato.errors import AtoError
from ato.tracking import TrialSpec, open_coordinator
from tests.sql.conftest import make_config
from tests.sql.test_oracle_database import oracle_db  # noqa: F401 (fixture)

STUDY_TABLES = {"studies", "study_trials", "study_workers"}


def logged_run(url, values=(0.25, 0.5, math.inf)) -> int:
    logger = SQLLogger(make_config(url, "keep", lr=0.1))
    run_id = logger.run(tags=["before-upgrade"])
    for step, value in enumerate(values):
        logger.log_metric("acc", value, step)
    logger.finish()
    return run_id


def downgrade(url, version: int) -> None:
    """The database as schema ``version`` left it: no study tables, the version recorded."""
    with get_engine(url).begin() as conn:
        for table in ("study_workers", "study_trials", "studies"):
            conn.execute(text(f"DROP TABLE IF EXISTS {table}"))
        conn.execute(text("UPDATE ato_schema SET version = :v"), {"v": version})
    forget_engine(url)


def tables(url) -> set[str]:
    with get_engine(url).connect() as conn:
        return set(inspect(conn).get_table_names())


def version(url) -> int:
    with get_engine(url).connect() as conn:
        return conn.execute(text("SELECT MAX(version) FROM ato_schema")).scalar()


def test_schema_version_is_at_least_five():
    assert SCHEMA_VERSION >= 5  # 6 added the metric blocks (tests/sql/test_blocks_schema.py)


@pytest.mark.parametrize("old", [1, 2, 3, 4])
def test_upgrade_in_place_keeps_runs(db_url, old):
    """A schema 1..4 database gets the study tables on the coordinator's first open; its
    runs, metrics and summaries are as before."""
    run_id = logged_run(db_url)
    downgrade(db_url, old)
    assert not STUDY_TABLES & tables(db_url)
    coordinator = open_coordinator(db_url)
    assert STUDY_TABLES <= tables(db_url) and version(db_url) == SCHEMA_VERSION
    coordinator.enqueue("s", [TrialSpec("a", {"x": 1})])
    assert coordinator.claim("s", "w").key == "a"
    finder = SQLFinder(make_config(db_url))
    (run,) = finder.find_runs("keep")
    assert (run.id, run.tags, run.config.lr, run.status) == (run_id, ["before-upgrade"], 0.1,
                                                               "completed")
    summary = finder.get_metric_summaries([run_id], ["acc"])[run_id]["acc"]
    assert (summary.count, summary.min, summary.max, summary.last) == (3, 0.25, math.inf,
                                                                       math.inf)


def test_original_ato_database_upgrades_to_five(oracle_db):  # noqa: F811
    """A database of the original Ato (version 0) upgrades straight to 5 on the
    coordinator's first open, every old row kept."""
    url, path = oracle_db
    coordinator = open_coordinator(url)
    coordinator.enqueue("s", [TrialSpec("a", {})])
    conn = sqlite3.connect(path)
    assert conn.execute("SELECT version FROM ato_schema").fetchone() == (SCHEMA_VERSION,)
    assert conn.execute("SELECT COUNT(*) FROM metrics").fetchone() == (6,)
    assert conn.execute("SELECT COUNT(*) FROM study_trials").fetchone() == (1,)
    runs = SQLFinder(make_config(url)).get_runs_in_project("legacy")
    assert [r.id for r in runs] == [1, 2]


def test_logger_migration_creates_study_tables(db_url):
    """Any writer's migration creates the tables; a coordinator opened later finds them."""
    logged_run(db_url)
    assert STUDY_TABLES <= tables(db_url)


def test_readonly_coordinator_creates_and_writes_nothing(db_url):
    """readonly=True on an older database: it reads as empty, nothing is migrated, and a
    write is refused with one clear error."""
    logged_run(db_url)
    downgrade(db_url, 4)
    reader = open_coordinator(db_url, readonly=True)
    assert reader.get_study("s") is None and reader.trials("s") == []
    assert reader.workers("s") == []
    with pytest.raises(AtoError, match="read-only"):
        reader.enqueue("s", [TrialSpec("a", {})])
    with pytest.raises(AtoError, match="read-only"):
        reader.claim("s", "w")
    assert version(db_url) == 4 and not STUDY_TABLES & tables(db_url)


def test_readonly_coordinator_on_missing_sqlite_file(tmp_path):
    """A missing SQLite file is one clear error, and it is not created."""
    from ato.db_routers.sql.engine import TrackerUnavailableError

    path = tmp_path / "nope" / "x.db"
    with pytest.raises(TrackerUnavailableError, match="no tracker database"):
        open_coordinator(f"sqlite:///{path}", readonly=True)
    assert not path.parent.exists()


def test_payload_and_metric_storage_on_sqlite(tmp_path):
    """On SQLite a NaN metric is the text 'NaN' (as metrics.value) and the payload strict
    JSON that SQLite's JSON functions accept."""
    url = f"sqlite:///{tmp_path / 'e.db'}"
    coordinator = open_coordinator(url)
    coordinator.enqueue("s", [TrialSpec("a", {"x": math.inf, "y": [math.nan]})])
    claim = coordinator.claim("s", "w")
    assert coordinator.report(claim, "completed", metric=math.nan)
    conn = sqlite3.connect(tmp_path / "e.db")
    metric, valid, x = conn.execute(
        "SELECT metric, json_valid(payload), json_extract(payload, '$.x') FROM study_trials"
    ).fetchone()
    assert (metric, valid) == ("NaN", 1) and x is not None
    (state,) = coordinator.trials("s")
    assert math.isnan(state.metric) and state.payload["x"] == math.inf
    assert math.isnan(state.payload["y"][0])
    forget_engine(url)
