"""Tracker URLs: ``postgres://`` is PostgreSQL everywhere an engine is made, and a URL that
cannot make an engine (a SQLite URL with a host, a dialect whose driver is missing, an
unknown dialect) is one line naming the URL and the fix — exit status 2 from every ``ato``
command, :class:`TrackerUnavailableError` from every API."""

import subprocess
import sys

import pytest

from ato.db_routers.sql.engine import TrackerUnavailableError, forget_engine, normalize_url
from ato.db_routers.sql.manager import SQLLogger
from tests.sql.conftest import make_config


def ato(*args, cwd=None):
    return subprocess.run([sys.executable, "-m", "ato.cli", *args], capture_output=True,
                          text=True, cwd=cwd)


@pytest.mark.parametrize("url, expected", [
    ("postgres://u:pw@h:5/db", "postgresql://u:pw@h:5/db"),
    ("postgres+psycopg://u@h/db", "postgresql+psycopg://u@h/db"),
    ("postgresql://u@h/db", "postgresql://u@h/db"),
    ("sqlite:///rel.db", "sqlite:///rel.db"),
    ("sqlite:////abs/x.db", "sqlite:////abs/x.db"),
    ("sqlite://", "sqlite://"),
])
def test_normalize_url(url, expected):
    assert normalize_url(url) == expected


@pytest.fixture
def postgres_scheme(db_url):
    if not db_url.startswith("postgresql://"):
        pytest.skip("the postgres:// spelling is a PostgreSQL matter")
    url = "postgres://" + db_url.removeprefix("postgresql://")
    yield url
    forget_engine(url)


def test_postgres_scheme_in_every_api(postgres_scheme):
    from ato.tracking import open_coordinator, open_finder, open_logger

    logger = SQLLogger(make_config(postgres_scheme, lr=0.1))
    logger.run(tags=["via-postgres-scheme"])
    logger.log_metric("loss", 0.5, 0)
    logger.finish()
    other = open_logger(postgres_scheme, project="proj")
    assert other is not None
    assert open_coordinator(postgres_scheme) is not None
    finder = open_finder(postgres_scheme)
    assert len(finder.find_runs("proj", tags=["via-postgres-scheme"])) == 1


@pytest.mark.processes
def test_postgres_scheme_in_the_cli(postgres_scheme):
    logger = SQLLogger(make_config(postgres_scheme))
    logger.run(tags=["x"])
    logger.finish()
    listed = ato("runs", "list", "--db", postgres_scheme)
    assert listed.returncode == 0, listed.stderr
    assert "1 run" in listed.stdout
    status = ato("search", "status", "nothing", "--db", postgres_scheme)
    assert "Traceback" not in status.stderr and "NoSuchModuleError" not in status.stderr


BAD = [
    ("sqlite://s1.db", r"names a host \('s1.db'\).*sqlite:///s1.db"),
    ("sqlite://runs/s1.db", r"names a host \('runs'\).*sqlite:///runs/s1.db"),
    ("mysql://a/b", r"mysql://a/b: No module named 'MySQLdb'.*mysql\+pymysql"),
    ("mssql+nodriver://a/b", r"mssql\+nodriver://a/b: Can't load plugin.*check the scheme"),
]


@pytest.mark.parametrize("url, message", BAD)
def test_a_bad_url_is_one_error_from_the_api(url, message):
    from ato.tracking import open_finder, open_logger

    for opener in (lambda: open_logger(url, project="p"), lambda: open_finder(url),
                   lambda: SQLLogger(make_config(url)).run()):
        with pytest.raises(TrackerUnavailableError, match=message):
            opener()


@pytest.mark.processes
@pytest.mark.parametrize("command", [("runs", "list"), ("search", "status", "s")])
@pytest.mark.parametrize("url, message", BAD[:3])
def test_a_bad_url_is_one_line_and_exit_2_from_the_cli(url, message, command, tmp_path):
    import re

    done = ato(*command, "--db", url, cwd=tmp_path)
    assert done.returncode == 2, done.stderr
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1 and re.search(message, lines[0]), done.stderr
    assert list(tmp_path.iterdir()) == []  # nothing created
