"""Tokens as a user meets them: the printed link works whatever the token holds, and two
token-protected dashboards on one machine do not log each other out.  Real `ato ui`
subprocesses and real servers, no mocks."""

from __future__ import annotations

import re
from urllib.parse import parse_qs, urlsplit

import httpx
import pytest

from tests.ui.test_command import _start, _stop, _url_of


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
