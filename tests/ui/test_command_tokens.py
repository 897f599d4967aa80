"""Tokens as a user meets them: two token-protected dashboards on one machine do not log
each other out.  Real `ato ui` subprocesses and real servers, no mocks."""

from __future__ import annotations

from urllib.parse import urlsplit

import httpx
import pytest

from tests.ui.test_command import _start, _stop, _url_of


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
               for t in ("secret123", "other456")]
    context = browser.new_context()
    try:
        page = context.new_page()
        from urllib.parse import quote

        for srv, token in zip(servers, ("secret123", "other456")):
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
