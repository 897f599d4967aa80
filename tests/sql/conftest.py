"""Tracker fixtures: every test runs against a fresh SQLite file and a fresh PostgreSQL
database (``ATO_TEST_POSTGRES_URL``, started by .ci/run).  Without that variable the
PostgreSQL half is skipped, unless ``ATO_REQUIRE_POSTGRES=1`` makes that a failure."""

from __future__ import annotations

import pytest

from ato.adict import ADict
from tests import databases
from tests.databases import PG_URL  # noqa: F401 (imported from here by tests)

db_url = databases.db_url  # the fixture (tests/databases.py, shared with tests/hyperopt)
_pg_database, _drop_pg_database = databases.pg_database, databases.drop_pg_database


def make_config(url, project="proj", **values):
    return ADict(experiment={"project_name": project, "sql": {"db_path": url}}, **values)


@pytest.fixture
def config(db_url):
    return make_config(db_url, lr=0.001, batch_size=32, model="resnet50")
