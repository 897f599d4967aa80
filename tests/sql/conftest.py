"""Tracker fixtures: every test runs against a fresh SQLite file and a fresh PostgreSQL
database (``ATO_TEST_POSTGRES_URL``, started by .ci/run).  Without that variable the
PostgreSQL half is skipped, unless ``ATO_REQUIRE_POSTGRES=1`` makes that a failure."""

from __future__ import annotations

import os
import uuid

import pytest

from ato.adict import ADict

PG_URL = os.environ.get("ATO_TEST_POSTGRES_URL")


def _pg_database():
    import psycopg

    name = f"ato_test_{uuid.uuid4().hex[:12]}"
    with psycopg.connect(PG_URL, autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    base, _, _ = PG_URL.rpartition("/")
    return name, f"{base}/{name}"


def _drop_pg_database(name):
    import psycopg

    with psycopg.connect(PG_URL, autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


@pytest.fixture(params=["sqlite", "postgresql"])
def db_url(request, tmp_path):
    from ato.db_routers.sql.engine import forget_engine

    if request.param == "sqlite":
        url = f"sqlite:///{tmp_path / 'experiments.db'}"
        yield url
        forget_engine(url)
        return
    if not PG_URL:
        if os.environ.get("ATO_REQUIRE_POSTGRES") == "1":
            pytest.fail("ATO_REQUIRE_POSTGRES=1 but ATO_TEST_POSTGRES_URL is not set")
        pytest.skip("no PostgreSQL server (set ATO_TEST_POSTGRES_URL)")
    name, url = _pg_database()
    yield url
    forget_engine(url)
    _drop_pg_database(name)


def make_config(url, project="proj", **values):
    return ADict(experiment={"project_name": project, "sql": {"db_path": url}}, **values)


@pytest.fixture
def config(db_url):
    return make_config(db_url, lr=0.001, batch_size=32, model="resnet50")
