"""`ato ui` as a user runs it: a real subprocess, a real port."""

from __future__ import annotations

import os
import re
import subprocess
import sys
import time
import urllib.error
import urllib.request

import pytest

ATO = [sys.executable, "-m", "ato.cli"]


def _start(*args, env=None):
    full = dict(os.environ, PYTHONUNBUFFERED="1", **(env or {}))
    return subprocess.Popen([*ATO, "ui", *args], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            text=True, env=full)


def _url_of(proc, timeout=20.0):
    deadline = time.time() + timeout
    line = ""
    while time.time() < deadline:
        line = proc.stdout.readline()
        if "http://" in line:
            return re.search(r"http://\S+", line).group(0), line
        if proc.poll() is not None:
            break
    proc.kill()
    raise AssertionError(f"no URL printed: {line!r} {proc.stderr.read()}")


def _stop(proc):
    proc.terminate()
    try:
        proc.wait(10)
    except subprocess.TimeoutExpired:
        proc.kill()


def test_missing_database_is_one_line_and_exit_2(tmp_path):
    path = tmp_path / "nothing.db"
    proc = subprocess.run([*ATO, "ui", f"sqlite:///{path}"], capture_output=True, text=True,
                          timeout=60)
    assert proc.returncode == 2
    assert proc.stderr.count("\n") == 1 and "no tracker database" in proc.stderr
    assert str(path) in proc.stderr and "Traceback" not in proc.stderr
    assert not path.exists()


def test_a_url_no_backend_serves_is_one_line_naming_the_fix(tmp_path):
    """Checked before anything is served: a plain path (no scheme), and a database whose
    backend's plugin is off (ato-sql disabled here; uninstalled: nox -s subsets)."""
    path = tmp_path / "runs.db"
    path.write_bytes(b"")
    proc = subprocess.run([*ATO, "ui", str(path)], capture_output=True, text=True, timeout=60)
    assert proc.returncode == 2 and proc.stderr.count("\n") == 1, proc.stderr
    assert f"sqlite:///{path}" in proc.stderr and "not a URL" in proc.stderr
    proc = subprocess.run([*ATO, "ui", f"sqlite:///{path}"], capture_output=True, text=True,
                          timeout=60, env=dict(os.environ, ATO_DISABLE_PLUGINS="sql"))
    assert proc.returncode == 2 and proc.stderr.count("\n") == 1, proc.stderr
    assert "ato-sql" in proc.stderr and "ATO_DISABLE_PLUGINS" in proc.stderr


def test_contradicting_options_are_refused(small_sqlite):
    url, _ = small_sqlite
    proc = subprocess.run([*ATO, "ui", url, "--token", "x", "--no-token"], capture_output=True,
                          text=True, timeout=60)
    assert proc.returncode == 2 and "--no-token" in proc.stderr
    proc = subprocess.run([*ATO, "ui", url, "--db", "sqlite:///other.db"],
                          capture_output=True, text=True, timeout=60)
    assert proc.returncode == 2 and "two database URLs" in proc.stderr


def test_one_database_named_twice_is_not_a_contradiction(small_sqlite):
    """`ato ui sqlite:///demo.db --db sqlite:///./demo.db` names one file: served."""
    url, _ = small_sqlite
    path = url.split(":///", 1)[1]
    other = "sqlite:///" + os.path.join(os.path.dirname(path), ".", os.path.basename(path))
    proc = _start(url, "--db", other, "--port", "0")
    try:
        link, _ = _url_of(proc)
        assert link.startswith("http://127.0.0.1:")
    finally:
        _stop(proc)


def test_serves_on_loopback_from_ato_db(small_sqlite):
    url, _ = small_sqlite
    started = time.perf_counter()
    proc = _start("--port", "0", env={"ATO_DB": url})
    try:
        link, line = _url_of(proc)
        assert link.startswith("http://127.0.0.1:") and "token" not in link
        assert "read-only" in line
        with urllib.request.urlopen(link, timeout=10) as r:
            assert r.status == 200 and b"/static/js/main.js" in r.read()
        elapsed = time.perf_counter() - started
        with urllib.request.urlopen(link + "api/info", timeout=10) as r:
            assert b"vision" in r.read()
        assert elapsed < 10  # the benchmark measures the real figure (target < 0.5 s)
    finally:
        _stop(proc)


def test_non_loopback_host_requires_a_generated_token(small_sqlite):
    url, _ = small_sqlite
    proc = _start(url, "--host", "0.0.0.0", "--port", "0")
    try:
        link, _ = _url_of(proc)
        token = re.search(r"token=([\w-]+)", link).group(1)
        assert len(token) >= 24
        port = re.search(r":(\d+)/", link).group(1)
        with pytest.raises(urllib.error.HTTPError) as e:
            urllib.request.urlopen(f"http://127.0.0.1:{port}/api/info", timeout=10)
        assert e.value.code == 401
        request = urllib.request.Request(f"http://127.0.0.1:{port}/api/info",
                                         headers={"Authorization": f"Bearer {token}"})
        with urllib.request.urlopen(request, timeout=10) as r:
            assert r.status == 200
    finally:
        _stop(proc)


def test_no_token_on_a_public_host_warns(small_sqlite):
    url, _ = small_sqlite
    proc = _start(url, "--host", "0.0.0.0", "--port", "0", "--no-token")
    try:
        link, _ = _url_of(proc)
        assert "token" not in link
    finally:
        _stop(proc)
    assert "anyone who can reach" in proc.stderr.read()


def test_ato_ui_imports_neither_other_commands_nor_click(small_sqlite):
    """Start-up: `ato ui` asks only core's and ato-ui's plugins for its command, and starts
    uvicorn without its click command line; the server still answers.  `ato --help` in
    the same kind of process still lists every command."""
    url, _ = small_sqlite
    probe = (
        "import sys, threading, urllib.request\n"
        "from ato.ui import command\n"
        "Config, Server = command._uvicorn_server()\n"
        "def run(self, sockets=None):\n"
        "    print(sorted(m for m in sys.modules if m == 'click' or m.endswith('.commands')))\n"
        "    raise SystemExit(0)\n"
        "Server.run = run\n"
        "from ato.cli import main\n"
        f"main(['ui', {url!r}, '--port', '0'])\n")
    out = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True,
                         timeout=60)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip().splitlines()[-1] == "[]"
    listing = subprocess.run([sys.executable, "-m", "ato.cli", "--help"], capture_output=True,
                             text=True, timeout=60).stdout
    for name in ("runs", "search", "models", "ui", "plugins"):
        assert re.search(rf"^\s+{name}\s", listing, re.M), name
    # uvicorn's package attributes stay reachable after the narrow import
    after = subprocess.run([sys.executable, "-c",
                            "from ato.ui.command import _uvicorn_server; _uvicorn_server();"
                            "import uvicorn; print(uvicorn.__version__, callable(uvicorn.run))"],
                           capture_output=True, text=True, timeout=60)
    assert after.stdout.split()[-1] == "True", after.stderr


def test_a_wildcard_host_prints_a_browsable_loopback_link(small_sqlite):
    url, _ = small_sqlite
    proc = _start(url, "--host", "0.0.0.0", "--port", "0")
    try:
        link, line = _url_of(proc)
        assert link.startswith("http://127.0.0.1:") and "0.0.0.0" not in line
        token = re.search(r"token=([\w-]+)", link).group(1)
        request = urllib.request.Request(link.split("?")[0] + "api/info",
                                         headers={"Authorization": f"Bearer {token}"})
        with urllib.request.urlopen(request, timeout=10) as r:
            assert r.status == 200
    finally:
        _stop(proc)
