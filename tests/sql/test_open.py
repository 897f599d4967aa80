"""Opening a tracker database (issue 8 §4): readers never create or write anything and
take no write lock; a mistyped SQLite path, a missing PostgreSQL database, an unreachable
server or an unknown role is one clear line and exit status 2; loggers still create a new
SQLite file on purpose."""

import hashlib
import os
import sqlite3
import subprocess
import sys

import pytest
from sqlalchemy import text

from ato.db_routers.sql.engine import TrackerUnavailableError, forget_engine
from ato.db_routers.sql.manager import SQLFinder, SQLLogger
from tests.sql.conftest import PG_URL, make_config


def ato(*args, cwd=None, env=None):
    return subprocess.run([sys.executable, "-m", "ato.cli", *args], capture_output=True,
                          text=True, cwd=cwd, env=env)


def tree(path):
    return sorted(str(p.relative_to(path)) for p in path.rglob("*"))


@pytest.mark.parametrize("relative", ["typo/experiments.db", "experiment.db",
                                      "a/b/c/runs.sqlite"])
def test_finder_on_a_mistyped_path_creates_nothing(tmp_path, relative):
    """No directory, no database, no -wal/-shm: an error naming the path."""
    (tmp_path / "experiments.db").write_bytes(b"")  # the file the user meant
    before = tree(tmp_path)
    url = f"sqlite:///{tmp_path / relative}"
    with pytest.raises(TrackerUnavailableError, match="no tracker database at") as caught:
        SQLFinder(make_config(url))
    assert str(tmp_path / relative) in str(caught.value)
    assert tree(tmp_path) == before
    forget_engine(url)


@pytest.mark.parametrize("action", [["list"], ["show", "1"], ["best", "--project", "p",
                                                               "--metric", "acc"],
                                    ["diff", "1", "2"]])
def test_ato_runs_on_a_mistyped_path(tmp_path, action):
    """`ato runs ...` prints one line naming the path and exits 2; nothing is created."""
    proc = ato("runs", *action, "--db", "sqlite:///tyop/experiments.db", cwd=tmp_path)
    assert proc.returncode == 2
    assert proc.stdout == "" and len(proc.stderr.strip().splitlines()) == 1
    assert str(tmp_path / "tyop" / "experiments.db") in proc.stderr
    assert "Traceback" not in proc.stderr
    assert tree(tmp_path) == []


def test_ato_runs_default_database_missing(tmp_path):
    """Without --db (experiments.db in the working directory) the same holds."""
    env = {k: v for k, v in os.environ.items() if k != "ATO_DB"}
    proc = ato("runs", "list", cwd=tmp_path, env=env)
    assert proc.returncode == 2 and "experiments.db" in proc.stderr
    assert tree(tmp_path) == []


def test_not_a_database(tmp_path):
    path = tmp_path / "notes.db"
    path.write_text("these are my notes\n" * 100)
    proc = ato("runs", "list", "--db", f"sqlite:///{path}")
    assert proc.returncode == 2 and len(proc.stderr.strip().splitlines()) == 1
    assert "not a database" in proc.stderr and str(path) in proc.stderr
    assert path.read_text() == "these are my notes\n" * 100


def digest(path):
    return hashlib.sha256(path.read_bytes()).hexdigest()


def test_reading_never_writes(tmp_path):
    """A finder reads a WAL database (live writer included) without changing the file
    and without the right to write at all."""
    path = tmp_path / "experiments.db"
    config = make_config(f"sqlite:///{path}", lr=0.1)
    logger = SQLLogger(config, handle_signals=False)
    run_id = logger.run()
    logger.log_metric("acc", 0.5, 0)
    logger.flush()
    finder = SQLFinder(config)  # while the writer holds the file open in WAL mode
    assert finder.get_metric_history(run_id, "acc")[0].value == 0.5
    logger.log_metric("acc", 0.7, 1)
    logger.flush()  # the writer is not blocked by the reader
    assert [m.value for m in finder.get_metric_history(run_id, "acc")] == [0.5, 0.7]
    with finder.engine.connect() as conn, pytest.raises(Exception, match="readonly"):
        conn.execute(text("DELETE FROM metrics"))
    logger.finish()
    forget_engine(config.experiment.sql.db_path)
    before = digest(path)
    finder = SQLFinder(config)
    assert finder.find_run(run_id).status == "completed"
    assert finder.find_best_run("proj", "acc").id == run_id
    forget_engine(config.experiment.sql.db_path)
    assert digest(path) == before
    # a database the original Ato wrote (journal mode DELETE) is read the same way
    conn = sqlite3.connect(path)
    conn.execute("PRAGMA journal_mode = DELETE")
    conn.close()
    assert SQLFinder(config).find_run(run_id) is not None


def test_logger_creates_the_file_and_directories(tmp_path):
    """Writing is the one way to create a database, on purpose."""
    path = tmp_path / "new" / "dir" / "experiments.db"
    config = make_config(f"sqlite:///{path}")
    logger = SQLLogger(config, handle_signals=False)
    logger.run()
    logger.finish()
    assert path.is_file()
    assert len(SQLFinder(config).get_runs_in_project("proj")) == 1
    forget_engine(config.experiment.sql.db_path)


def pg_url(database="", user=None, port=None):
    from sqlalchemy.engine import make_url

    url = make_url(PG_URL)
    url = url.set(database=database or url.database)
    if user:
        url = url.set(username=user)
    if port:
        url = url.set(port=port)
    return url.render_as_string(hide_password=False)


needs_pg = pytest.mark.skipif(not PG_URL and os.environ.get("ATO_REQUIRE_POSTGRES") != "1",
                              reason="no PostgreSQL server (set ATO_TEST_POSTGRES_URL)")


@needs_pg
@pytest.mark.parametrize("case, reason", [
    ("missing database", 'database "ato_no_such_db" does not exist'),
    ("unknown role", 'role "ato_no_such_role" does not exist'),
    ("no server", "connection"),
])
def test_postgresql_cannot_open(case, reason):
    """One line naming the URL and the server's reason; exit status 2; no traceback —
    for `ato runs` and for the finder and logger APIs (TrackerUnavailableError)."""
    url = {"missing database": pg_url("ato_no_such_db"),
           "unknown role": pg_url(user="ato_no_such_role"),
           "no server": pg_url(port=1)}[case]
    proc = ato("runs", "list", "--db", url)
    assert proc.returncode == 2, proc.stderr
    assert len(proc.stderr.strip().splitlines()) == 1 and "Traceback" not in proc.stderr
    assert reason in proc.stderr and "cannot open the tracker database" in proc.stderr
    for cls in (SQLFinder, SQLLogger):
        with pytest.raises(TrackerUnavailableError, match="cannot open"):
            cls(make_config(url))
        forget_engine(url)


@needs_pg
def test_postgresql_finder_is_read_only(db_url):
    if not db_url.startswith("postgresql"):
        pytest.skip("the PostgreSQL half")
    logger = SQLLogger(make_config(db_url), handle_signals=False)
    logger.run()
    logger.finish()
    finder = SQLFinder(make_config(db_url))
    with finder.engine.connect() as conn, pytest.raises(Exception, match="read-only"):
        conn.execute(text("DELETE FROM metrics"))


def _foreign(tmp_path):
    empty = tmp_path / "empty.db"
    empty.write_bytes(b"")
    other = tmp_path / "other.db"
    con = sqlite3.connect(other)
    con.execute("CREATE TABLE notes (a)")
    con.commit()
    con.close()
    return {"empty": (empty, "it has no tables"), "other": (other, "its tables: notes")}


@pytest.mark.parametrize("which", ["empty", "other"])
def test_readers_refuse_a_file_without_tracker_tables(tmp_path, which):
    """An empty or foreign SQLite file was read as an empty tracker ('0 runs', []) while
    the dashboard refused it: every reader refuses it with the dashboard's error type,
    and changes nothing; a logger still makes it a tracker."""
    from ato.db_routers.sql.engine import NotATrackerError
    from ato.tracking import open_finder, open_logger

    path, found = _foreign(tmp_path)[which]
    url = f"sqlite:///{path}"
    before = path.read_bytes()
    with pytest.raises(NotATrackerError, match=f"holds no Ato tracker tables \\({found}\\)"):
        open_finder(url).find_runs()
    for args in (("list",), ("show", "1"), ("diff", "1", "2"),
                 ("best", "--project", "p", "--metric", "m")):
        proc = ato("runs", *args, "--db", url)
        assert proc.returncode == 2 and "Traceback" not in proc.stderr, proc.stderr
        assert proc.stderr.count("\n") == 1 and "holds no Ato tracker tables" in proc.stderr
    assert path.read_bytes() == before
    forget_engine(url)
    with open_logger(url, project="p") as logger:
        logger.log_metric("m", 1.0, 0)
    assert [r.status for r in open_finder(url).find_runs()] == ["completed"]


@pytest.mark.parametrize("url", ["sqlite://", "sqlite:///", "sqlite:///:memory:"])
def test_readers_refuse_an_in_memory_database(url):
    from ato.db_routers.sql.engine import NotATrackerError
    from ato.tracking import open_finder

    with pytest.raises(NotATrackerError, match="in-memory SQLite database"):
        open_finder(url)
    proc = ato("runs", "list", "--db", url)
    assert proc.returncode == 2 and "0 runs" not in proc.stdout
    assert proc.stderr.strip() == (f"ato runs: error: {url} is an in-memory SQLite database: "
                                   f"new and empty in every process, it holds no runs to "
                                   f"read; pass the file your runs log to (--db "
                                   f"sqlite:///path/to/experiments.db)")


def test_an_empty_url_gets_a_meaningful_hint():
    proc = ato("runs", "list", "--db", "")
    assert proc.returncode == 2 and "'sqlite:///'" not in proc.stderr
    assert "the tracker URL is empty" in proc.stderr and "sqlite:///experiments.db" in proc.stderr
