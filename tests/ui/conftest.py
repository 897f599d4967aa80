"""Dashboard fixtures: populated SQLite (and PostgreSQL) databases, the app under
Starlette's test client, a real uvicorn server, and Debian's Chromium driven by Playwright
(never `playwright install`).  Screenshots go to $ATO_UI_ARTIFACTS or a tmp dir."""

from __future__ import annotations

import os
import shutil
import socket
import threading
import time
from pathlib import Path

import pytest

from tests.ui.populate import populate_many, populate_small

CHROMIUM = os.environ.get("ATO_UI_CHROMIUM", "/usr/bin/chromium")
CHROMIUM_ARGS = ["--no-sandbox", "--headless=new", "--disable-gpu",
                 "--disable-background-networking", "--disable-component-update",
                 "--no-first-run", "--disable-sync"]
STALE = 0.5  # seconds: the abandoned run of populate_small shows as crashed after this


def _sqlite(tmp_path_factory, name):
    return f"sqlite:///{tmp_path_factory.mktemp(name) / 'experiments.db'}"


@pytest.fixture(scope="session")
def small_sqlite(tmp_path_factory):
    url = _sqlite(tmp_path_factory, "small")
    info = populate_small(url)
    return url, info


@pytest.fixture(scope="session")
def small_postgresql():
    from tests.sql.conftest import PG_URL, _drop_pg_database, _pg_database

    if not PG_URL:
        if os.environ.get("ATO_REQUIRE_POSTGRES") == "1":
            pytest.fail("ATO_REQUIRE_POSTGRES=1 but ATO_TEST_POSTGRES_URL is not set")
        pytest.skip("no PostgreSQL server (set ATO_TEST_POSTGRES_URL)")
    name, url = _pg_database()
    info = populate_small(url)
    yield url, info
    from ato.db_routers.sql.engine import forget_engine

    forget_engine(url)
    _drop_pg_database(name)


@pytest.fixture(params=["sqlite", "postgresql"])
def small_db(request):
    url, info = request.getfixturevalue(f"small_{request.param}")
    deadline = info.get("_created", 0)
    time.sleep(max(0.0, deadline + STALE + 0.1 - time.time()))
    return url, info


@pytest.fixture
def client(small_db):
    from starlette.testclient import TestClient

    from ato.ui.app import create_app

    url, info = small_db
    with TestClient(create_app(url, stale_after=STALE)) as c:
        c.info = info
        c.url = url
        yield c


@pytest.fixture(scope="session")
def big_sqlite(tmp_path_factory):
    """The small database plus a 1,000-run project ``sweep``."""
    url = _sqlite(tmp_path_factory, "big")
    info = populate_small(url)
    info["sweep"] = populate_many(url, 1000, steps=10)
    return url, info


class Server:
    """uvicorn serving ``app`` on 127.0.0.1:<free port> in a daemon thread."""

    def __init__(self, app):
        import uvicorn

        sock = socket.socket()
        sock.bind(("127.0.0.1", 0))
        sock.listen(64)
        self.port = sock.getsockname()[1]
        self.base = f"http://127.0.0.1:{self.port}/"
        from ato.ui.command import SERVER_OPTIONS

        # the options `ato ui` serves with (the longest URL it reads among them)
        self.server = uvicorn.Server(uvicorn.Config(app, **SERVER_OPTIONS))
        self.thread = threading.Thread(target=self.server.run, kwargs={"sockets": [sock]},
                                       daemon=True)
        self.thread.start()
        while not self.server.started:
            time.sleep(0.01)

    def stop(self):
        self.server.should_exit = True
        self.thread.join(5)


def served(url, info, **options):
    """A fixture body: the dashboard of ``url`` served (``create_app(url, **options)``),
    the server carrying ``url`` and ``info``, stopped afterwards."""
    from ato.ui.app import create_app

    srv = Server(create_app(url, **options))
    srv.url, srv.info = url, info
    yield srv
    srv.stop()


@pytest.fixture(scope="session")
def server(big_sqlite):
    yield from served(*big_sqlite, stale_after=STALE)


@pytest.fixture(scope="session")
def artifacts(tmp_path_factory) -> Path:
    path = Path(os.environ.get("ATO_UI_ARTIFACTS") or tmp_path_factory.mktemp("ui-artifacts"))
    path.mkdir(parents=True, exist_ok=True)
    return path


@pytest.fixture(scope="session")
def browser():
    required = os.environ.get("CI") or os.environ.get("ATO_REQUIRE_BROWSER") == "1"
    if not (os.path.exists(CHROMIUM) or shutil.which("chromium")):
        if required:
            pytest.fail(f"CI / ATO_REQUIRE_BROWSER=1 but there is no Chromium at {CHROMIUM} "
                        f"(apt-get install chromium fonts-dejavu-core)")
        pytest.skip(f"no Chromium at {CHROMIUM}")
    try:
        from playwright.sync_api import sync_playwright
    except ImportError:
        if required:
            raise
        pytest.skip("playwright is not installed (pip install playwright)")
    with sync_playwright() as p:
        b = p.chromium.launch(executable_path=CHROMIUM if os.path.exists(CHROMIUM)
                              else shutil.which("chromium"), args=CHROMIUM_ARGS)
        yield b
        b.close()


def browser_page(browser, base: str, artifacts: Path, **context_options):
    """A fresh page of ``browser`` on the server at ``base`` (a generator for a fixture):
    ``page.open(hash)`` loads a view and waits until it is ready, ``page.shot(name)`` saves
    a full-page screenshot under ``artifacts``, ``page.errors`` collects JavaScript
    errors, and closing fails the test if there were any.

    bypass_csp: the escaping tests must hold without the CSP's help, and Playwright
    evaluates string predicates."""
    context = browser.new_context(viewport={"width": 1400, "height": 900}, bypass_csp=True,
                                  **context_options)
    pg = context.new_page()
    errors = []
    pg.on("pageerror", lambda e: errors.append(str(e)))
    pg.errors = errors

    def open_(hash_):
        pg.goto(base + hash_)
        pg.wait_for_selector("#view[data-ready='1']", state="attached", timeout=15_000)
        return pg

    pg.open = open_
    pg.shot = lambda name: pg.screenshot(path=str(artifacts / f"{name}.png"), full_page=True)
    yield pg
    context.close()
    assert not errors, f"JavaScript errors in the page: {errors}"


@pytest.fixture
def page(browser, server, artifacts):
    yield from browser_page(browser, server.base, artifacts, accept_downloads=True)
