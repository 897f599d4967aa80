"""Databases that are not Ato's: another tool's tables (an MLflow layout with tables named
like Ato's, or only unrelated ones) on SQLite and on PostgreSQL.  Readers refuse them
naming the database and its tables, and create nothing; a writer refuses a database whose
tables clash with Ato's, and still initialises an empty one or one holding other tables."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest

from ato.db_routers.sql.engine import NotATrackerError, forget_engine
from tests.databases import drop_pg_database, pg_database, require_postgres

MLFLOW = ["CREATE TABLE experiments (experiment_id INTEGER PRIMARY KEY, name VARCHAR(256))",
          "CREATE TABLE runs (run_uuid VARCHAR(32) PRIMARY KEY)"]
UNRELATED = ["CREATE TABLE foo (x INTEGER)"]

READERS = [("store", "du"), ("store", "verify"), ("store", "verify", "--quick"),
           ("store", "gc"), ("models", "list"), ("models", "show", "net"),
           ("models", "history", "net"), ("data", "list"), ("data", "show", "d"),
           ("data", "diff", "d", "1", "2"), ("runs", "list"), ("runs", "show", "1")]


def ato(*args):
    return subprocess.run([sys.executable, "-m", "ato.cli", *args], capture_output=True,
                          text=True, timeout=120)


@pytest.fixture(params=["sqlite", "postgresql"])
def foreign(request, tmp_path):
    """``make(statements) -> (url, tables())``: a database of another tool."""
    made = []

    def make(statements):
        if request.param == "sqlite":
            import sqlite3

            path = tmp_path / f"other{len(made)}.db"
            with sqlite3.connect(path) as conn:
                for s in statements:
                    conn.execute(s)
            conn.close()
            url = f"sqlite:///{path}"

            def tables():
                with sqlite3.connect(path) as c:
                    return sorted(r[0] for r in c.execute(
                        "SELECT name FROM sqlite_master WHERE type = 'table'"))
        else:
            import psycopg

            require_postgres()
            name, url = pg_database("ato_foreign")
            with psycopg.connect(url, autocommit=True) as conn:
                for s in statements:
                    conn.execute(s)

            def tables():
                with psycopg.connect(url) as c:
                    return sorted(r[0] for r in c.execute(
                        "SELECT table_name FROM information_schema.tables WHERE "
                        "table_schema = 'public'"))
        made.append((request.param, url, locals().get("name")))
        return url, tables

    yield make
    for kind, url, name in made:
        forget_engine(url)
        if kind == "postgresql":
            drop_pg_database(name)


@pytest.mark.parametrize("layout", ["mlflow", "unrelated"])
@pytest.mark.processes  # many CLI subprocesses: seconds
def test_every_reader_refuses_a_foreign_database_and_creates_nothing(foreign, layout,
                                                                      tmp_path):
    """`ato store du/verify/gc`, `ato models/data …` and `ato runs …` on another tool's
    database: one line naming it and its tables, exit status 2, no table created (on
    PostgreSQL `store du` created Ato's 19 tables; on SQLite an MLflow layout gave
    SQLAlchemy tracebacks, 'no such table: projects', or '0 models')."""
    url, tables = foreign(MLFLOW if layout == "mlflow" else UNRELATED)
    before = tables()
    found = ", ".join(before)
    for args in READERS:
        proc = ato(*args, "--db", url)
        assert proc.returncode == 2, (args, proc.stdout, proc.stderr)
        assert "Traceback" not in proc.stderr and proc.stderr.count("\n") == 1, proc.stderr
        assert f"holds no Ato tracker tables (its tables: {found})" in proc.stderr, proc.stderr
    from ato.db_routers.sql.registry import resolve

    with pytest.raises(NotATrackerError, match=f"its tables: {found}"):
        resolve("ato://p/net", db=url)
    from ato.tracking import open_finder

    with pytest.raises(NotATrackerError, match=f"its tables: {found}"):
        open_finder(url).find_runs()
    assert tables() == before


def test_a_logger_refuses_a_database_whose_tables_clash_with_atos(foreign):
    """An MLflow database (`experiments`, `runs`) is not Ato's: a logger must not add Ato's
    tables beside another tool's `experiments` (it raised a PluginError wrapping an
    OperationalError); it names the clashing tables and writes nothing."""
    from ato.tracking import open_logger

    url, tables = foreign(MLFLOW)
    before = tables()
    with pytest.raises(NotATrackerError, match=r"its tables: experiments, runs\).*named like "
                                               r"Ato's \(experiments\)"):
        open_logger(url, project="p")
    from ato.db_routers.sql.registry import Registry

    with pytest.raises(NotATrackerError, match="experiments"):
        Registry(url)
    assert tables() == before


def test_a_sqlite_file_of_another_tool_is_not_written_at_all(tmp_path):
    """Refusing it costs no byte: the writer looks before turning WAL on."""
    import sqlite3

    from ato.tracking import open_logger

    path = tmp_path / "mlflow.db"
    with sqlite3.connect(path) as conn:
        for s in MLFLOW:
            conn.execute(s)
    conn.close()
    before = path.read_bytes()
    with pytest.raises(NotATrackerError):
        open_logger(f"sqlite:///{path}", project="p")
    assert path.read_bytes() == before
    assert sorted(os.listdir(tmp_path)) == ["mlflow.db"]


def test_writers_still_initialise_an_empty_or_unrelated_database(foreign, tmp_path):
    """Only a clash is refused: an empty database, one holding unrelated tables and a
    missing SQLite file become trackers as before, and readers then read them."""
    from ato.tracking import open_finder, open_logger

    for statements in ([], UNRELATED):
        url, tables = foreign(statements)
        logger = open_logger(url, project="p")
        logger.run()
        logger.finish()
        assert "ato_schema" in tables() and len(open_finder(url).find_runs()) == 1
    url = f"sqlite:///{tmp_path / 'new' / 'runs.db'}"
    logger = open_logger(url, project="p")
    logger.run()
    logger.finish()
    forget_engine(url)
