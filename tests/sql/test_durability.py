"""Crash safety, signals and concurrency, with real processes (SPEC 5.2, issue #5)."""

import signal
import sqlite3
import subprocess
import sys
import textwrap
import time

import pytest

from ato.db_routers.sql.manager import SQLFinder
from tests.sql.conftest import make_config

# real worker processes: run by `nox -s tests` after the quick run (docs/contributing.md)
pytestmark = pytest.mark.processes

WRITER = textwrap.dedent("""
    import sys, time
    from ato.adict import ADict
    from ato.db_routers.sql.manager import SQLLogger
    url, n, start_at = sys.argv[1], int(sys.argv[2]), float(sys.argv[3])
    config = ADict(experiment={"project_name": "shared", "sql": {"db_path": url}}, worker=n)
    while time.time() < start_at:
        time.sleep(0.001)
    logger = SQLLogger(config, flush_count=100)
    logger.run(tags=["concurrent"])
    for step in range(n):
        logger.log_metric("loss", step * 0.5, step)
    logger.finish()
""")

VICTIM = textwrap.dedent("""
    import sys, time
    from ato.adict import ADict
    from ato.db_routers.sql.manager import SQLLogger
    url, mode = sys.argv[1], sys.argv[2]
    config = ADict(experiment={"project_name": "victim", "sql": {"db_path": url}})
    interval = 0.1 if mode == "kill" else 60
    logger = SQLLogger(config, flush_interval=interval, heartbeat_interval=0.1)
    logger.run()
    for step in range(300):
        logger.log_metric("loss", step, step)
    if mode == "kill":
        logger.flush()
    print("ready", flush=True)
    step = 300
    while True:
        logger.log_metric("loss", step, step)
        step += 1
        time.sleep(0.001)
""")


def _count(url, sql):
    from sqlalchemy import create_engine, text

    engine = create_engine(url.replace("postgresql://", "postgresql+psycopg://"))
    try:
        with engine.connect() as conn:
            return conn.execute(text(sql)).scalar()
    finally:
        engine.dispose()


@pytest.mark.parametrize("existing", [False, True], ids=["missing-file", "existing-file"])
def test_eight_writers_lose_nothing(db_url, tmp_path, existing):
    """8 processes started together write one database: 0 errors, 0 lost rows."""
    if existing:
        from ato.db_routers.sql.manager import SQLLogger

        first = SQLLogger(make_config(db_url, "shared"))
        first.run()
        first.finish()
    script = tmp_path / "writer.py"
    script.write_text(WRITER)
    start_at = time.time() + 2.0
    procs = [subprocess.Popen([sys.executable, str(script), db_url, str(400 + i), str(start_at)],
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
             for i in range(8)]
    results = [p.communicate(timeout=180) for p in procs]
    errors = [(p.returncode, err) for p, (_, err) in zip(procs, results) if p.returncode]
    assert errors == []
    expected = sum(400 + i for i in range(8))
    assert _count(db_url, "SELECT COUNT(*) FROM metrics") == expected
    runs = SQLFinder(make_config(db_url)).find_runs("shared", tags=["concurrent"])
    assert len(runs) == 8 and {r.status for r in runs} == {"completed"}
    assert _count(db_url, "SELECT COUNT(*) FROM experiments") == 8 + existing
    assert _count(db_url, "SELECT SUM(count) FROM metric_summaries") == expected
    assert _count(db_url, "SELECT COUNT(*) FROM projects") == 1


def _start(db_url, tmp_path, mode):
    script = tmp_path / "victim.py"
    script.write_text(VICTIM)
    proc = subprocess.Popen([sys.executable, str(script), db_url, mode],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    assert proc.stdout.readline().strip() == "ready", proc.stderr.read()
    return proc


def test_sigkill_loses_at_most_one_interval_and_reports_crashed(db_url, tmp_path):
    """SIGKILL never corrupts the database; the run turns 'crashed' once its heartbeat is stale."""
    proc = _start(db_url, tmp_path, "kill")
    time.sleep(0.5)
    proc.send_signal(signal.SIGKILL)
    proc.wait(timeout=30)
    if db_url.startswith("sqlite"):
        path = db_url.split("sqlite:///", 1)[1]
        assert sqlite3.connect(path).execute("PRAGMA integrity_check").fetchone() == ("ok",)
    finder = SQLFinder(make_config(db_url), stale_after=0.5)
    (run,) = finder.get_runs_in_project("victim")
    rows = len(finder.get_metric_history(run.id, "loss"))
    assert rows >= 300  # everything flushed before "ready" survived
    time.sleep(0.7)
    assert finder.find_run(run.id).status == "crashed"


@pytest.mark.parametrize("signum", [signal.SIGTERM, signal.SIGINT], ids=["SIGTERM", "SIGINT"])
def test_signal_flushes_and_marks_killed(db_url, tmp_path, signum):
    """SIGTERM/SIGINT write every buffered metric and end the run 'killed'."""
    proc = _start(db_url, tmp_path, "signal")
    time.sleep(0.2)
    proc.send_signal(signum)
    proc.wait(timeout=30)
    assert proc.returncode != 0
    finder = SQLFinder(make_config(db_url))
    (run,) = finder.get_runs_in_project("victim")
    assert run.status == "killed" and run.end_time is not None
    assert len(finder.get_metric_history(run.id, "loss")) >= 300
