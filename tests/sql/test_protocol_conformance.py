"""The shipped tracker conformance suite, run against every backend the project ships:
SQLite, PostgreSQL (``ATO_TEST_POSTGRES_URL``) and the example plugin's JSON Lines backend
(registered with ``pm.register`` from its source folder, without installing it)."""

from __future__ import annotations

import os
import sys
from pathlib import Path

import pytest

from ato.tracking.conformance import TrackerConformance
from tests.sql.conftest import PG_URL, _drop_pg_database, _pg_database

EXAMPLE_SRC = Path(__file__).resolve().parents[2] / "examples/ato-example-plugin/src"


@pytest.fixture(scope="module")
def example_plugin():
    """The example plugin registered for this module only."""
    from ato.plugins import manager

    sys.path.insert(0, str(EXAMPLE_SRC))
    try:
        import ato_example_plugin.plugin as plugin

        pm = manager.plugin_manager()
        registered = pm.get_plugin("example") is None and pm.get_plugin("example-test") is None
        if registered:
            pm.register(plugin, name="example-test")
        manager._registries.clear()
        yield plugin
        if registered:
            pm.unregister(name="example-test")
        manager._registries.clear()
    finally:
        sys.path.remove(str(EXAMPLE_SRC))


@pytest.fixture(scope="module")
def postgres_url():
    if not PG_URL:
        if os.environ.get("ATO_REQUIRE_POSTGRES") == "1":
            pytest.fail("ATO_REQUIRE_POSTGRES=1 but ATO_TEST_POSTGRES_URL is not set")
        pytest.skip("no PostgreSQL server (set ATO_TEST_POSTGRES_URL)")
    from ato.db_routers.sql.engine import forget_engine

    name, url = _pg_database()
    yield url
    forget_engine(url)
    _drop_pg_database(name)


@pytest.fixture(params=["sqlite", "postgresql", "jsonl"])
def tracker_url(request, example_plugin):
    if request.param == "sqlite":
        return "sqlite:///{tmp}/experiments.db"
    if request.param == "postgresql":
        return request.getfixturevalue("postgres_url")
    return "jsonl://{tmp}/runs"


class TestConformance(TrackerConformance):
    """Every protocol member, on every shipped backend."""


def test_the_documented_command_runs_the_suite(tmp_path):
    """docs/plugins.md's one command, run as a third party would (here on SQLite; -k keeps
    it short, the class above runs everything)."""
    import subprocess

    proc = subprocess.run(
        [sys.executable, "-m", "pytest", "-p", "ato.tracking.conformance", "--pyargs",
         "ato.tracking.conformance", "--tracker-url=sqlite:///{tmp}/t.db", "-p",
         "no:cacheprovider", "-k", "round_trip or best_run or reduce_deterministically"],
        cwd=tmp_path, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "3 passed" in proc.stdout, proc.stdout
    missing = subprocess.run(
        [sys.executable, "-m", "pytest", "-p", "ato.tracking.conformance", "--pyargs",
         "ato.tracking.conformance", "-p", "no:cacheprovider", "-k", "round_trip"],
        cwd=tmp_path, capture_output=True, text=True, timeout=300)
    assert missing.returncode != 0
    assert "needs --tracker-url=URL" in missing.stdout + missing.stderr
