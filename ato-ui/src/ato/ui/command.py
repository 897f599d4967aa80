"""``ato ui [DB_URL] [--db URL] [--host H] [--port P] [--open] [--token T | --no-token]``."""

from __future__ import annotations

import ipaddress
import os
import secrets
import socket
import sys

from ato.errors import AtoError

DEFAULT_DB = "sqlite:///experiments.db"
DEFAULT_PORT = 8250


def is_loopback(host: str) -> bool:
    """``True`` for ``localhost`` and loopback addresses (127.0.0.0/8, ::1)."""
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


def resolve_token(host: str, token: str | None, no_token: bool) -> str | None:
    """The token the server will require: the one given, a generated one for a
    non-loopback host, or ``None`` (loopback, or ``--no-token``)."""
    if no_token:
        if token:
            raise AtoError("--token and --no-token contradict each other; pass one")
        return None
    if token:
        return token
    return None if is_loopback(host) else secrets.token_urlsafe(24)


def parse_port(text: str) -> int:
    """``--port``'s value as an int in 0..65535 (0: any free port); else :class:`AtoError`
    naming the option and the accepted range."""
    try:
        port = int(str(text).strip())
    except ValueError:
        raise AtoError(f"--port {text!r}: expected a port number from 0 to 65535 "
                       f"(0 = any free port)") from None
    if not 0 <= port <= 65535:
        raise AtoError(f"--port {port}: expected a port number from 0 to 65535 "
                       f"(0 = any free port)")
    return port


def check_host(host: str) -> str:
    """``--host``'s value, refused when empty or holding a space or a port."""
    bare = host.strip()
    if not bare or any(c.isspace() for c in bare) or "/" in bare:
        raise AtoError(f"--host {host!r}: expected an interface name or address "
                       f"(127.0.0.1, 0.0.0.0, ::1, a host name of this machine)")
    if bare.count(":") == 1:
        raise AtoError(f"--host {host!r}: the port goes in --port (--host "
                       f"{bare.split(':')[0]} --port {bare.split(':')[1]})")
    return bare


def _bind(host: str, port: int) -> socket.socket:
    import errno

    family = socket.AF_INET6 if ":" in host.strip("[]") else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        sock.bind((host.strip("[]"), port))
    except OSError as e:
        sock.close()
        # The fix depends on what failed: the port (taken, privileged) or the host (not an
        # address of this machine, a name that does not resolve).
        if isinstance(e, socket.gaierror) or e.errno in (errno.EADDRNOTAVAIL, errno.EAFNOSUPPORT):
            fix = "pass an address of this machine as --host (127.0.0.1, 0.0.0.0 for every one)"
        else:
            fix = "pass another --port, or --port 0 for any free one"
        raise AtoError(f"cannot listen on {host}:{port}: {e.strerror or e} ({fix})") from e
    sock.listen(128)
    sock.set_inheritable(True)
    return sock


def dashboard_link(host: str, port: int, token: str | None) -> str:
    """The URL to print and open: ``http://host:port/``, with ``?token=`` and the token
    percent-encoded (every character but letters, digits and ``-._~``), so that a token
    holding ``&``, ``+``, ``#``, ``%``, a space or a non-ASCII letter reaches the server
    as it was given (the server decodes the query string)."""
    from urllib.parse import quote

    return f"http://{host}:{port}/" + (f"?token={quote(token, safe='')}" if token else "")


def open_in_browser(link: str) -> bool:
    """Open ``link`` in the web browser; when none can be opened (``webbrowser`` finds
    none or the one it runs fails, as on a server without a display), say so in one line
    on stderr: the URL printed above is the one to open.  The server is served either way."""
    import webbrowser

    try:
        opened = webbrowser.open(link)
    except (webbrowser.Error, OSError) as e:
        opened, why = False, f" ({e})"
    else:
        why = ""
    if not opened:
        print(f"ato ui: --open: could not open a web browser{why}; open the URL above "
              f"in one", file=sys.stderr, flush=True)
    return opened


def _same_database(a: str, b: str) -> bool:
    """Whether two tracker URLs name one database: the same text, or SQLite URLs of one
    file (``sqlite:///demo.db`` and ``sqlite:///./demo.db``)."""
    if a == b:
        return True
    from ato.ui.data import _sqlite_path

    pa, pb = _sqlite_path(a), _sqlite_path(b)
    return pa is not None and pb is not None and os.path.realpath(pa) == os.path.realpath(pb)


def _display(url: str) -> str:
    """``url`` without its password."""
    from ato.tracking.secrets import hide_passwords

    return hide_passwords(url)


PAGES = """\
pages (the address of each view is a link you can share):
  Runs      every run: filters (where, tags, status), varying config keys as
            columns (constant ones and __search bookkeeping__ keys on request),
            metric summaries, sort, CSV, parallel coordinates / scatter
  Run       one run: config tree with types, metrics, artifacts, code
            fingerprints, the datasets it used and models it produced, charts
  Charts    selected runs' metrics overlaid, reduced on the server, zoomable,
            live while a run is running
  Compare   2-10 runs side by side: config and structure differences,
            fingerprints, metrics with deltas, overlaid charts
  Searches  tracked searches: the successive-halving ladder, objective history
  Models    registered models and datasets: versions, aliases and their
            history, lineage (the run and data behind a model, the runs and
            models downstream of a dataset)"""


#: The longest request line plus headers the server reads (bytes): h11's default, 16 KiB,
#: closed the connection on a longer URL (a ``where`` of a few thousand comparisons), which
#: the browser showed as a connection reset, never the JSON answer. 1 MiB holds a
#: ``where`` of 10,000 comparisons, the most the grammar takes; past it the connection is
#: still closed (uvicorn answers a plain-text 400 no middleware sees, and the browser,
#: still sending, often reads it as a reset).
MAX_REQUEST_HEAD = 1 << 20

#: uvicorn's options for ``ato ui``. No WebSocket endpoint: ws="none" spares importing a
#: WebSocket library.
SERVER_OPTIONS = {"log_level": "warning", "access_log": False, "ws": "none",
                  "timeout_graceful_shutdown": 1,
                  "h11_max_incomplete_event_size": MAX_REQUEST_HEAD}


def _uvicorn_server():
    """uvicorn's ``Config`` and ``Server`` classes without importing its command line.

    ``import uvicorn`` runs the package's ``__init__``, which imports ``uvicorn.main`` and
    with it click (about a fifth of ``ato ui``'s start-up, measured by
    benchmarks/bench_ui.py).  When no module has imported uvicorn yet, its package is put
    in ``sys.modules`` without running that ``__init__``; any other attribute of the
    package (``uvicorn.run``…) is still there, imported from ``uvicorn.main`` on first
    use.  Should uvicorn's layout change, the ordinary import is used."""
    if "uvicorn" not in sys.modules:
        import importlib
        import importlib.util
        import types

        spec = importlib.util.find_spec("uvicorn")
        if spec is not None and spec.submodule_search_locations is not None:
            package = types.ModuleType("uvicorn")
            package.__spec__, package.__file__ = spec, spec.origin
            package.__path__ = list(spec.submodule_search_locations)
            package.__package__ = "uvicorn"

            def rest(name: str):
                if name.startswith("__") and name != "__version__":
                    raise AttributeError(name)
                if name == "__version__":
                    from importlib.metadata import version

                    return version("uvicorn")
                return getattr(importlib.import_module("uvicorn.main"), name)

            package.__getattr__ = rest
            sys.modules["uvicorn"] = package
            try:
                from uvicorn.config import Config
                from uvicorn.server import Server

                package.Config, package.Server = Config, Server  # as its __init__ does
                return Config, Server
            except ImportError:
                for name in [m for m in sys.modules if m == "uvicorn" or m.startswith("uvicorn.")]:
                    del sys.modules[name]
    import uvicorn

    return uvicorn.Config, uvicorn.Server


class UICommand:
    PLUGIN_NAME = "ui"
    help = ("the dashboard: runs table, live charts, compare, search ladder, "
            "models and datasets (read-only)")

    @staticmethod
    def add_arguments(parser) -> None:
        import argparse

        parser.formatter_class = argparse.RawDescriptionHelpFormatter
        parser.epilog = PAGES
        parser.add_argument("db_url", nargs="?", metavar="DB_URL",
                            help="tracker URL (same as --db)")
        parser.add_argument("--db", default=None,
                            help=f"tracker URL (default: $ATO_DB or {DEFAULT_DB})")
        parser.add_argument("--host", default="127.0.0.1",
                            help="interface to listen on (default 127.0.0.1; any other "
                                 "needs a token, generated unless --token is given)")
        parser.add_argument("--port", default=str(DEFAULT_PORT),
                            help=f"port (default {DEFAULT_PORT}; 0 = any free port)")
        parser.add_argument("--open", action="store_true", help="open it in the web browser")
        parser.add_argument("--token", default=None,
                            help="require this token (generated for a non-loopback --host)")
        parser.add_argument("--no-token", action="store_true",
                            help="serve a non-loopback --host without a token (anyone who "
                                 "can reach the port sees every run)")

    @staticmethod
    def run(args) -> int:
        if args.db_url and args.db and not _same_database(args.db_url, args.db):
            raise AtoError(f"two database URLs given ({args.db_url!r} and --db {args.db!r}); "
                           f"pass one")
        url = args.db_url or args.db or os.environ.get("ATO_DB") or DEFAULT_DB
        # Every option is checked before anything is opened: one line naming it, exit 2.
        port = parse_port(args.port)
        host = check_host(args.host)
        if args.token is not None and not args.token.strip():
            raise AtoError("--token is empty; pass a token, or --no-token to serve without one")
        if args.token is not None:
            try:
                args.token.encode("utf-8")
            except UnicodeEncodeError:  # bytes of another encoding in the command line
                raise AtoError("--token holds bytes that are not UTF-8 text; pass a token "
                               "in this terminal's UTF-8") from None
        token = resolve_token(host, args.token, args.no_token)
        from ato.plugins.manager import tracker_for_url
        from ato.ui.data import check_database

        # Before anything is served: a URL without a scheme, or a scheme no installed
        # tracker backend serves (ato-sql absent or disabled), is one line naming the fix.
        tracker_for_url(url)
        # the address before the database: both are said before anything is served, a
        # host this machine does not have first (it was reported as the missing database)
        sock = _bind(host, port)
        try:
            check_database(url)
        except BaseException:
            sock.close()
            raise
        Config, Server = _uvicorn_server()  # noqa: N806 (classes)
        from ato.ui.app import create_app

        # An SQLite file (checked above) opens in the background while the page is served;
        # a server URL is opened now, so a wrong host or password is one clear error.
        from ato.ui.data import _sqlite_path

        app = create_app(url, token=token, loopback_only=is_loopback(host),
                         lazy=_sqlite_path(url) is not None)
        port = sock.getsockname()[1]
        # A wildcard address is not one to browse to: the link names loopback instead.
        browse = {"0.0.0.0": "127.0.0.1", "::": "::1", "[::]": "::1"}.get(host, host)
        shown = browse if ":" not in browse or browse.startswith("[") else f"[{browse}]"
        link = dashboard_link(shown, port, token)
        if token is None and not is_loopback(host):
            print("ato ui: warning: no token on a non-loopback host: anyone who can reach "
                  f"{host}:{port} can read every run", file=sys.stderr, flush=True)
        print(f"ato ui: {_display(url)} at {link}  (read-only; Ctrl+C stops)",
              flush=True)
        if args.open:
            # beside the server, not before it: a browser run in the terminal (lynx, w3m)
            # returns only when quit, and the server must answer it meanwhile
            import threading

            threading.Thread(target=open_in_browser, args=(link,), daemon=True).start()
        config = Config(app, **SERVER_OPTIONS)
        server = Server(config)
        try:
            server.run(sockets=[sock])
        except KeyboardInterrupt:
            pass
        return 0
