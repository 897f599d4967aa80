"""Tokens and `--open` as a user meets them: the printed link works whatever the token holds,
two token-protected dashboards on one machine do not log each other out, and `--open`
without a browser says so.  Real `ato ui` subprocesses and real servers, no mocks."""

from __future__ import annotations

import os
import re
import subprocess
import sys
import time
from urllib.parse import parse_qs, urlsplit

import httpx
import pytest

from tests.ui.test_command import _start, _stop, _url_of

ATO = [sys.executable, "-m", "ato.cli"]


def _token_of(link: str) -> str:
    """The token a link carries, decoded as the server decodes its query string."""
    return parse_qs(urlsplit(link).query, keep_blank_values=True)["token"][0]


def _origin(link: str) -> str:
    return link.split("?")[0]


# --- two dashboards, one host -------------------------------------------------------------

@pytest.mark.parametrize("tokens", [("secret123", "other456"), ("same-token", "same-token")])
def test_two_dashboards_on_one_host_keep_their_own_token_cookies(small_sqlite, tokens):
    """A browser sends a host's cookies to every port of it: one cookie jar (httpx's, which
    ignores ports as browsers do) opens the first dashboard's link, then the second's, and
    the first still answers with its cookie alone -- it was logged out by the second when
    both cookies had one name."""
    url, _ = small_sqlite
    first = _start(url, "--port", "0", "--token", tokens[0])
    second = _start(url, "--port", "0", "--token", tokens[1])
    try:
        link_a, _ = _url_of(first)
        link_b, _ = _url_of(second)
        with httpx.Client(follow_redirects=True, timeout=10) as jar:
            opened = jar.get(link_a)
            assert opened.status_code == 200 and b"/static/js/main.js" in opened.content
            assert opened.history[0].status_code == 303  # the token became a cookie
            cookie = opened.history[0].headers["set-cookie"].lower()
            assert "httponly" in cookie and "samesite=strict" in cookie
            assert jar.get(link_b).status_code == 200
            for link in (link_a, link_b, link_a):  # reload each, then the first again
                assert jar.get(_origin(link)).status_code == 200
                info = jar.get(_origin(link) + "api/info")
                assert info.status_code == 200 and "vision" in info.text
            names = sorted(c.name for c in jar.cookies.jar)
            ports = sorted(urlsplit(link).port for link in (link_a, link_b))
            assert names == sorted(f"ato_ui_token_{p}" for p in ports)
        # a jar holding only the second dashboard's cookie does not open the first
        with httpx.Client(follow_redirects=True, timeout=10) as other:
            assert other.get(link_b).status_code == 200
            refused = other.get(_origin(link_a) + "api/info")
            assert refused.status_code == 401 and "token" in refused.json()["error"]
    finally:
        _stop(first)
        _stop(second)


def test_two_dashboards_side_by_side_in_one_browser(small_sqlite, browser):
    """The user's steps in Chromium, one browser context: open 8714's link, then 8715's,
    then reload the first -- the page loads and its API answers (it said "this dashboard
    needs its token" before)."""
    from ato.ui.app import create_app
    from tests.ui.conftest import Server

    url, _ = small_sqlite
    servers = [Server(create_app(url, token=t, loopback_only=False))
               for t in ("secret123", "other&456 é")]
    context = browser.new_context()
    try:
        page = context.new_page()
        from urllib.parse import quote

        for srv, token in zip(servers, ("secret123", "other&456 é")):
            answer = page.goto(f"{srv.base}?token={quote(token, safe='')}")
            assert answer.status == 200 and page.url == srv.base
        for srv in (servers[0], servers[1], servers[0]):
            answer = page.goto(srv.base)
            assert answer.status == 200, page.content()
            page.wait_for_selector("#view[data-ready='1']", state="attached", timeout=15_000)
            status = page.evaluate("fetch('/api/info').then(r => r.status)")
            assert status == 200
        cookies = {c["name"]: c for c in context.cookies()}
        assert sorted(cookies) == sorted(f"ato_ui_token_{s.port}" for s in servers)
        assert all(c["httpOnly"] and c["sameSite"] == "Strict" for c in cookies.values())
    finally:
        context.close()
        for srv in servers:
            srv.stop()


# --- the printed link ----------------------------------------------------------------------

TOKENS = ["abc&x=1", "abc+def", "a b&c=d#e", "100%25 off%", "k/?;=,\"'<>", "ключ-é-✓",
          "  spaced  ", "tab\there"]


@pytest.mark.parametrize("token", TOKENS)
def test_the_printed_link_opens_whatever_the_token_holds(small_sqlite, token):
    """The token is percent-encoded in the printed link: the link is one word (no space
    to break it), carries exactly the token given, and opens the dashboard (the server
    redirects to / with the cookie)."""
    url, _ = small_sqlite
    proc = _start(url, "--port", "0", "--token", token)
    try:
        link, line = _url_of(proc)
        assert f" {link}  (read-only" in line  # the whole link, up to the printed end
        assert re.fullmatch(r"http://127\.0\.0\.1:\d+/\?token=[A-Za-z0-9%._~-]+", link), link
        assert _token_of(link) == token
        with httpx.Client(follow_redirects=True, timeout=10) as jar:
            page = jar.get(link)
            assert page.status_code == 200 and b"/static/js/main.js" in page.content
            assert jar.get(_origin(link) + "api/info").status_code == 200
            # the link's query works on an API path too, and a near miss does not
            bare = httpx.get(_origin(link) + "api/info?" + urlsplit(link).query, timeout=10)
            assert bare.status_code == 200
            near = httpx.get(_origin(link) + "api/info", params={"token": token + "x"},
                             timeout=10)
            assert near.status_code == 401
        if token.isascii() and token.isprintable() and token == token.strip():
            # (a header value cannot carry the others: HTTP trims it, and it is ASCII)
            bearer = httpx.get(_origin(link) + "api/info",
                               headers={"Authorization": f"Bearer {token}"}, timeout=10)
            assert bearer.status_code == 200
    finally:
        _stop(proc)


def test_a_generated_token_is_printed_as_it_is(small_sqlite):
    url, _ = small_sqlite
    proc = _start(url, "--host", "0.0.0.0", "--port", "0")
    try:
        link, _ = _url_of(proc)
        token = re.search(r"token=(\S+)", link).group(1)
        assert _token_of(link) == token and len(token) >= 24  # URL-safe: nothing to encode
    finally:
        _stop(proc)


# --- --open ----------------------------------------------------------------------------

def _no_browser_env(browser: str) -> dict:
    """An environment where Python's webbrowser can open nothing but ``browser``: it
    registers graphical browsers only with DISPLAY or WAYLAND_DISPLAY set and console
    ones (lynx, w3m, www-browser…) only with TERM set, so with all three unset the one
    it tries is $BROWSER."""
    env = {k: v for k, v in os.environ.items()
           if k not in ("DISPLAY", "WAYLAND_DISPLAY", "TERM")}
    return dict(env, BROWSER=browser, PYTHONUNBUFFERED="1")


def _serve_with_open(args, env):
    return subprocess.Popen([*ATO, "ui", *args, "--port", "0", "--open"],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env)


@pytest.mark.parametrize("browser", ["/bin/false", "/no/such/browser"])
def test_open_without_a_browser_says_so_and_serves(small_sqlite, browser):
    """No display and $BROWSER a command that fails (/bin/false exits 1) or does not
    exist: webbrowser.open returns False.  One line on stderr says so and points to the
    printed URL; the server serves it all the same."""
    url, _ = small_sqlite
    proc = _serve_with_open([url, "--token", "t&k n"], _no_browser_env(browser))
    try:
        link, _ = _url_of(proc)
        with httpx.Client(follow_redirects=True, timeout=10) as jar:
            assert jar.get(link).status_code == 200
    finally:
        _stop(proc)
    err = proc.stderr.read()
    lines = [x for x in err.splitlines() if "browser" in x]
    assert lines == ["ato ui: --open: could not open a web browser; open the URL above in one"], err
    assert "Traceback" not in err


def test_open_when_webbrowser_raises_says_so_and_serves(small_sqlite):
    """webbrowser.Error from the browser (registered through webbrowser's own API as the
    preferred one, in a real `ato ui` process) is reported the same way, with its reason."""
    url, _ = small_sqlite
    probe = (
        "import sys, webbrowser\n"
        "class Broken(webbrowser.BaseBrowser):\n"
        "    def open(self, url, new=0, autoraise=True):\n"
        "        raise webbrowser.Error('no runnable browser here')\n"
        "webbrowser.register('broken', Broken, preferred=True)\n"
        "from ato.cli import main\n"
        f"sys.exit(main(['ui', {url!r}, '--port', '0', '--open']))\n")
    proc = subprocess.Popen([sys.executable, "-c", probe], stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True,
                            env=_no_browser_env("/bin/false"))
    try:
        link, _ = _url_of(proc)
        assert httpx.get(link, timeout=10).status_code == 200
    finally:
        _stop(proc)
    err = proc.stderr.read()
    assert ("ato ui: --open: could not open a web browser (no runnable browser here); "
            "open the URL above in one") in err.splitlines(), err


def test_open_hands_the_browser_the_printed_link(small_sqlite, tmp_path):
    """$BROWSER a script that records its argument and succeeds: it gets the printed,
    percent-encoded link, and nothing is said on stderr."""
    url, _ = small_sqlite
    got = tmp_path / "opened.txt"
    script = tmp_path / "browser.sh"
    script.write_text(f'#!/bin/sh\nprintf %s "$1" > {got}\n')
    script.chmod(0o755)
    proc = _serve_with_open([url, "--token", "a b&c=d#e"], _no_browser_env(str(script)))
    try:
        link, _ = _url_of(proc)
        # served once the browser has been opened (webbrowser waits for this script)
        assert httpx.get(link, follow_redirects=True, timeout=10).status_code == 200
    finally:
        _stop(proc)
    assert got.read_text() == link and _token_of(link) == "a b&c=d#e"
    assert "browser" not in proc.stderr.read()


def test_a_browser_that_waits_for_the_page_gets_it(small_sqlite, tmp_path):
    """$BROWSER a program that fetches the page before it returns, as a browser run in the
    terminal does (lynx, w3m: webbrowser waits for them): the server already answers it.
    Opened before the server ran, it waited on a server that never started."""
    url, _ = small_sqlite
    got = tmp_path / "status.txt"
    script = tmp_path / "browser"
    script.write_text(f"#!{sys.executable}\n"
                      "import sys, urllib.request\n"
                      "with urllib.request.urlopen(sys.argv[1], timeout=20) as r:\n"
                      f"    open({str(got)!r}, 'w').write(str(r.status))\n")
    script.chmod(0o755)
    env = _no_browser_env(str(script))
    proc = _serve_with_open([url], env)
    try:
        _url_of(proc)
        deadline = time.monotonic() + 30
        while not got.exists() and time.monotonic() < deadline:
            time.sleep(0.1)
    finally:
        _stop(proc)
    assert got.read_text() == "200"
