"""Every `ato ui` option and database a user can get wrong: one line on stderr naming it,
exit 2, nothing served and nothing created.  Real subprocesses."""

from __future__ import annotations

import os
import sqlite3
import subprocess
import sys

import pytest

ATO = [sys.executable, "-m", "ato.cli"]


def _refused(*args) -> str:
    proc = subprocess.run([*ATO, "ui", *args], capture_output=True, text=True, timeout=60)
    assert proc.returncode == 2, (proc.returncode, proc.stderr)
    assert proc.stderr.count("\n") == 1, proc.stderr
    assert "Traceback" not in proc.stderr and proc.stdout == ""
    return proc.stderr


@pytest.mark.parametrize("port", ["99999", "-1", "65536", "http", "8250.5", ""])
def test_a_port_out_of_range_or_not_a_number_is_named(small_sqlite, port):
    url, _ = small_sqlite
    err = _refused(url, "--port", port)
    assert f"--port {port if port.lstrip('-').isdigit() else repr(port)}:" in err
    assert "from 0 to 65535" in err


@pytest.mark.parametrize(("host", "says"), [
    ("", "expected an interface name or address"),
    ("local host", "expected an interface name or address"),
    ("localhost:9000", "the port goes in --port (--host localhost --port 9000)"),
    ("10.255.255.1", "pass an address of this machine as --host"),
    ("no-such-host.invalid", "pass an address of this machine as --host"),
])
def test_a_host_that_cannot_be_listened_on_names_the_host(small_sqlite, host, says):
    url, _ = small_sqlite
    err = _refused(url, "--host", host, "--port", "0", "--no-token")
    assert says in err and "--port 0 for any free one" not in err


def test_a_foreign_host_is_named_before_a_missing_database(tmp_path):
    """Both wrong: the host is said first (the database was), as the option typed first."""
    err = _refused(f"sqlite:///{tmp_path / 'missing.db'}", "--host", "10.255.255.1",
                   "--port", "0", "--no-token")
    assert "pass an address of this machine as --host" in err and "missing.db" not in err


def test_an_empty_token_is_refused(small_sqlite):
    url, _ = small_sqlite
    assert "--token is empty" in _refused(url, "--token", "")


def test_a_token_that_is_not_utf8_is_refused(small_sqlite):
    """Bytes of another encoding (Latin-1 \xe9) cannot be put in the link's UTF-8
    percent-encoding, nor typed back: refused before anything is served."""
    url, _ = small_sqlite
    proc = subprocess.run([*ATO, "ui", url, "--token", b"caf\xe9"], capture_output=True,
                          text=True, timeout=60, env={**os.environ, "LC_ALL": "C.UTF-8"})
    assert proc.returncode == 2 and proc.stderr.count("\n") == 1, proc.stderr
    assert "--token holds bytes that are not UTF-8" in proc.stderr and proc.stdout == ""


def test_a_directory_is_not_a_database(tmp_path):
    err = _refused(f"sqlite:///{tmp_path}")
    assert "is a directory, not a tracker database file" in err
    assert list(tmp_path.iterdir()) == []


def test_a_database_without_tracker_tables_is_one_error_and_stays_untouched(tmp_path):
    path = tmp_path / "other.db"
    con = sqlite3.connect(path)
    con.execute("CREATE TABLE notes (id INTEGER PRIMARY KEY, body TEXT)")
    con.commit()
    con.close()
    before = path.read_bytes()
    err = _refused(f"sqlite:///{path}")
    assert f"{path} (from sqlite:///{path}) holds no Ato tracker tables (its tables: notes)" in err
    assert path.read_bytes() == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["other.db"]  # no -wal/-shm made


def test_another_tools_database_named_like_ours_is_refused_not_served(tmp_path):
    """An MLflow-like file (its own `experiments` and `runs`) is refused by the tracker's
    rule (an ato_schema record or the original Ato's layout); it used to be served."""
    path = tmp_path / "mlflow.db"
    con = sqlite3.connect(path)
    con.execute("CREATE TABLE experiments (experiment_id INTEGER PRIMARY KEY, name TEXT)")
    con.execute("CREATE TABLE runs (run_uuid TEXT PRIMARY KEY)")
    con.commit()
    con.close()
    before = path.read_bytes()
    err = _refused(f"sqlite:///{path}")
    assert "holds no Ato tracker tables (its tables: experiments, runs)" in err
    assert "named like Ato's (experiments" in err
    assert path.read_bytes() == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["mlflow.db"]


def test_an_empty_copy_says_its_log_was_left_behind(tmp_path):
    # a copy of only the main file of a database whose log was not merged: 0 tables
    path = tmp_path / "copy.db"
    con = sqlite3.connect(path)
    con.execute("PRAGMA journal_mode=WAL")
    con.close()
    err = _refused(f"sqlite:///{path}")
    assert "holds no Ato tracker tables (it has no tables)" in err
    assert "copy the -wal file too" in err


def test_an_unmerged_log_beside_the_file_is_named(tmp_path):
    path = tmp_path / "demo.db"
    (tmp_path / "demo.db").write_bytes(b"")
    (tmp_path / "demo.db-wal").write_bytes(b"x" * 5000)
    err = _refused(f"sqlite:///{path}")
    assert f"its write-ahead log {path}-wal (5,000 bytes) was not merged" in err


def test_a_file_that_is_not_sqlite_is_named(tmp_path):
    path = tmp_path / "notes.txt"
    path.write_text("hello, not a database\n" * 200)
    err = _refused(f"sqlite:///{path}")
    assert "is not an SQLite database" in err and str(path) in err


def test_a_copy_of_the_file_alone_holds_a_finished_run(tmp_path):
    """The writer merges its log at the end of a run: the main file copied alone (as
    `cp demo.db x.db` does) while the logger is still alive is a tracker database."""
    import shutil

    from ato.ui.data import check_database
    from tests.ui.populate import config_for, logger_for

    url = f"sqlite:///{tmp_path / 'live.db'}"
    log = logger_for(url, "copy")
    run_id = log.run(config=config_for(url, "copy", lr=0.1))
    for step in range(2000):
        log.log_metric("loss", 1.0 / (1 + step), step)
    log.finish("completed")
    shutil.copy(tmp_path / "live.db", tmp_path / "copy.db")
    check_database(f"sqlite:///{tmp_path / 'copy.db'}")
    con = sqlite3.connect(f"file:{tmp_path / 'copy.db'}?mode=ro", uri=True)
    try:
        assert con.execute("SELECT id, status FROM experiments").fetchall() == [(run_id, "completed")]
        assert con.execute("SELECT count(*) FROM metrics").fetchone()[0] == 2000
    finally:
        con.close()


@pytest.mark.parametrize("mode", ["rwc", "rw", "memory"])
def test_a_writing_mode_in_the_url_is_refused(small_sqlite, mode):
    url, _ = small_sqlite
    err = _refused(f"{url}?mode={mode}")
    assert f"asks for mode={mode}; the dashboard only reads (mode=ro)" in err
    assert "Warning" not in err


@pytest.mark.parametrize("url", ["sqlite://", "sqlite:///", "sqlite:///:memory:"])
def test_an_in_memory_database_is_refused(url):
    # it was served as an empty tracker
    err = _refused(url)
    assert f"{url!r} is an in-memory SQLite database: it is new and empty" in err
