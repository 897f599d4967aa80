"""The tracker databases tests run against, shared by every test folder that needs them:
a fresh SQLite file and a fresh PostgreSQL database (``ATO_TEST_POSTGRES_URL``, started by
.ci/run) per test.  Without that variable the PostgreSQL half is skipped, unless
``ATO_REQUIRE_POSTGRES=1`` makes that a failure.

Use the fixture by importing it into a conftest.py or a test module
(``from tests.databases import db_url``)."""

from __future__ import annotations

import os
import uuid

import pytest

PG_URL = os.environ.get("ATO_TEST_POSTGRES_URL")


def pg_database(prefix: str = "ato_test") -> tuple[str, str]:
    """Create a fresh database on the ``ATO_TEST_POSTGRES_URL`` server: ``(name, url)``."""
    import psycopg

    name = f"{prefix}_{uuid.uuid4().hex[:12]}"
    with psycopg.connect(PG_URL, autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    base, _, _ = PG_URL.rpartition("/")
    return name, f"{base}/{name}"


def drop_pg_database(name: str) -> None:
    """Drop database ``name`` (its open connections too)."""
    import psycopg

    with psycopg.connect(PG_URL, autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def require_postgres() -> None:
    """Skip (or, with ``ATO_REQUIRE_POSTGRES=1``, fail) a test when no server is given."""
    if not PG_URL:
        if os.environ.get("ATO_REQUIRE_POSTGRES") == "1":
            pytest.fail("ATO_REQUIRE_POSTGRES=1 but ATO_TEST_POSTGRES_URL is not set")
        pytest.skip("no PostgreSQL server (set ATO_TEST_POSTGRES_URL)")


@pytest.fixture(params=["sqlite", "postgresql"])
def db_url(request, tmp_path):
    """A tracker URL: a new SQLite file, then a new PostgreSQL database; each engine the
    test opened on it is disposed of afterwards and the database dropped."""
    from ato.db_routers.sql.engine import forget_engine

    if request.param == "sqlite":
        url = f"sqlite:///{tmp_path / 'experiments.db'}"
        yield url
        forget_engine(url)
        return
    require_postgres()
    name, url = pg_database()
    yield url
    forget_engine(url)
    drop_pg_database(name)
