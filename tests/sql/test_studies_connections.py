"""Connections stay bounded however many studies and coordinators a process opens
(optuna#1347: one engine per study leaked a connection pool each)."""

from __future__ import annotations

import threading

import pytest
from sqlalchemy import text

from ato.db_routers.sql.engine import get_engine
from ato.tracking import TrialSpec, open_coordinator
from tests.sql.conftest import PG_URL, _drop_pg_database, _pg_database


@pytest.fixture
def pg_url():
    if not PG_URL:
        pytest.skip("no PostgreSQL server (set ATO_TEST_POSTGRES_URL)")
    from ato.db_routers.sql.engine import forget_engine

    name, url = _pg_database()
    yield name, url
    forget_engine(url)
    _drop_pg_database(name)


def backends(name: str) -> int:
    """Connections the server holds to database ``name``, seen from a separate session."""
    import psycopg

    with psycopg.connect(PG_URL, autocommit=True) as conn:
        return conn.execute("SELECT COUNT(*) FROM pg_stat_activity WHERE datname = %s",
                            (name,)).fetchone()[0]


def test_two_hundred_studies_keep_connections_bounded(pg_url):
    """200 coordinators on 200 studies, each used and half of them never closed: the
    process holds at most the one engine's pool, and after the burst at most a few."""
    name, url = pg_url
    opened = []
    for i in range(200):
        coordinator = open_coordinator(url)
        study = f"study-{i}"
        coordinator.create_study(study, {"mode": "max"})
        coordinator.enqueue(study, [TrialSpec("a", {"i": i})])
        claim = coordinator.claim(study, "w")
        assert coordinator.report(claim, "completed", metric=float(i))
        assert coordinator.trials(study)[0].metric == float(i)
        if i % 2:
            coordinator.close()
        else:
            opened.append(coordinator)  # kept alive, not closed
        assert coordinator.engine is get_engine(url)  # one engine per URL and process
    assert backends(name) <= 2
    pool = get_engine(url).pool
    assert pool.checkedout() == 0


def test_threads_share_the_pool(pg_url):
    """Sixteen threads coordinating at once never open more than the pool allows, and
    give every connection back."""
    name, url = pg_url
    coordinator = open_coordinator(url)
    coordinator.enqueue("threads", [TrialSpec(f"t{i:03d}", {}) for i in range(160)])
    peak, errors = [0], []

    def work(i):
        try:
            while (claim := coordinator.claim("threads", f"w{i}")) is not None:
                coordinator.heartbeat("threads", f"w{i}")
                assert coordinator.report(claim, "completed", metric=1.0)
                peak[0] = max(peak[0], backends(name))
        except BaseException as e:
            errors.append(f"thread {i}: {type(e).__name__}: {e}")

    threads = [threading.Thread(target=work, args=(i,)) for i in range(16)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    engine = get_engine(url)
    assert errors == []
    assert peak[0] <= engine.pool.size() + engine.pool._max_overflow
    assert engine.pool.checkedout() == 0
    with engine.connect() as conn:
        assert conn.execute(text("SELECT COUNT(*) FROM study_trials WHERE state = 'completed'")
                            ).scalar() == 160


def test_sqlite_coordinators_share_one_engine(tmp_path):
    """On SQLite too: every coordinator of one URL uses the process's one engine."""
    url = f"sqlite:///{tmp_path / 'e.db'}"
    engines = {id(open_coordinator(url).engine) for _ in range(20)}
    assert engines == {id(get_engine(url))}
    assert get_engine(url).pool.checkedout() == 0
