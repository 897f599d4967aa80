"""The dashboard's ASGI application: a JSON API over :mod:`ato.ui.data` and static files.

Endpoints (all ``GET``; errors are ``{"error": message}`` with status 400/404, 503 when the
database cannot be read, 401/403 from the token and Host checks):

``/api/info``                      database (password hidden) and projects
``/api/runs``                      runs + summaries; ``project``, ``where``, ``tags`` (comma
                                   separated, all required), ``status``, ``ids``
``/api/run/{id}``                  one run in full
``/api/series``                    ``runs`` (ids), ``key``, ``max_points`` (default 1000,
                                   ``0`` = all), ``step_min``, ``step_max``, ``times``
                                   (``0``: leave the timestamps out)
``/api/studies``, ``/api/study``   tracked searches and one study's trials (``study``)
``/api/registry…``                 models and datasets (:mod:`ato.ui.registry`)
``/api/live``                      Server-Sent Events: ``runs``, ``cursor`` (JSON
                                   ``{run_id: {key: last_step}}``); sends ``points`` and
                                   ``status`` events as the tracker changes, and one
                                   ``failed`` event (``{"error"}``) before it ends when the
                                   SQLite file is removed or replaced

Nothing in a request is ever run as SQL or code: ``where`` is parsed by the tracker's typed
grammar and compiled with bound parameters.
"""

from __future__ import annotations

import asyncio
import hmac
import json
import re
import zlib
from importlib import resources
from pathlib import Path
from urllib.parse import quote

from starlette.applications import Starlette
from starlette.background import BackgroundTask
from starlette.middleware import Middleware
from starlette.middleware.gzip import GZipMiddleware
from starlette.requests import Request
from starlette.responses import (
    PlainTextResponse,
    RedirectResponse,
    Response,
    StreamingResponse,
)
from starlette.routing import Mount, Route
from starlette.staticfiles import StaticFiles

from ato.errors import AtoError
from ato.ui.data import (
    BadRequest,
    DatabaseFile,
    Store,
    check_database,
    dumps,
    run_id_param,
    run_id_text,
)
from ato.ui.registry import routes as registry_routes

STATIC = Path(str(resources.files("ato.ui") / "static"))
#: The token cookie's name, followed by ``_`` and the port the server listens on
#: (:func:`cookie_name`).
COOKIE = "ato_ui_token"
#: Seconds between two looks at the tracker for a live page.
LIVE_INTERVAL = 0.2
LOOPBACK_HOSTS = {"127.0.0.1", "localhost", "::1", "[::1]"}

_SECURITY_HEADERS = [
    (b"content-security-policy",
     b"default-src 'self'; script-src 'self'; style-src 'self' 'unsafe-inline'; "
     b"img-src 'self' data: blob:; connect-src 'self'; object-src 'none'; "
     b"base-uri 'none'; frame-ancestors 'none'"),
    (b"x-content-type-options", b"nosniff"),
    (b"referrer-policy", b"no-referrer"),
]


def cookie_name(scope) -> str:
    """The token cookie's name for the server that received ``scope``: ``ato_ui_token_``
    and the port it listens on.

    A browser sends a host's cookies to every port of that host, so two dashboards on one
    machine (``127.0.0.1:8714`` and ``127.0.0.1:8715``) that shared one name would each
    replace the other's token and log it out.  The port is the listening socket's
    (``scope["server"]``), not the ``Host`` header's, so that it is the same behind a
    proxy and cannot be chosen by a request."""
    server = scope.get("server")
    port = server[1] if server and len(server) > 1 else None
    return f"{COOKIE}_{port}" if isinstance(port, int) else COOKIE


def _cookie_value(token: str) -> str:
    """``token`` as a cookie value: percent-encoded (unchanged for a generated token), so
    that a token with a space, ``;``, a quote or a non-ASCII letter is one plain value."""
    return quote(token.encode("utf-8", "surrogateescape"), safe="")


def _same(given: str | bytes, token: bytes) -> bool:
    """Constant-time comparison that takes any text (``hmac.compare_digest`` refuses
    non-ASCII ``str``): text is compared as its UTF-8 bytes."""
    if isinstance(given, str):
        given = given.encode("utf-8", "surrogateescape")
    return hmac.compare_digest(given, token)


class _Guard:
    """Token check (when a token is set), Host check against DNS rebinding (when bound to
    loopback without a token) and security headers on every response."""

    def __init__(self, app, token: str | None, loopback_only: bool):
        self.app, self.token, self.loopback_only = app, token, loopback_only
        if token is not None:
            self._token = token.encode("utf-8", "surrogateescape")
            self._cookie = _cookie_value(token).encode("ascii")

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http":
            return await self.app(scope, receive, send)
        request = Request(scope)
        if self.loopback_only and self.token is None:
            host = (request.headers.get("host") or "").rsplit(":", 1)[0]
            if host and host not in LOOPBACK_HOSTS and host != "testserver":
                return await _refuse(scope, "unknown Host header", 403)(scope, receive, send)
        if self.token is not None:
            # The query string is percent-decoded (the printed link encodes the token).
            given = request.query_params.get("token")
            if given is not None and _same(given, self._token):
                if scope["path"] == "/":
                    response = RedirectResponse("/", 303)
                    response.set_cookie(cookie_name(scope), _cookie_value(self.token),
                                        httponly=True, samesite="strict")
                    return await response(scope, receive, send)
            else:
                cookie = request.cookies.get(cookie_name(scope), "")
                auth = request.headers.get("authorization", "")
                # header values are decoded as latin-1: back to the bytes that were sent
                bearer = auth[7:] if auth.lower().startswith("bearer ") else ""
                if not (_same(cookie, self._cookie)
                        or _same(bearer.encode("latin-1"), self._token)):
                    return await _refuse(
                        scope, "this dashboard needs its token: open the URL that `ato ui` "
                        "printed", 401)(scope, receive, send)

        async def send_with_headers(message):
            if message["type"] == "http.response.start":
                message.setdefault("headers", [])
                message["headers"] = list(message["headers"]) + _SECURITY_HEADERS
            await send(message)

        return await self.app(scope, receive, send_with_headers)


def _refuse(scope, message: str, status: int) -> Response:
    """A refusal: ``{"error": message}`` for an ``/api/`` path, plain text for a page."""
    if scope["path"].startswith("/api/"):
        return _json({"error": message}, status)
    return PlainTextResponse(message, status)


def _json(data, status: int = 200) -> Response:
    return Response(dumps(data), status_code=status, media_type="application/json")


def _ids(request: Request, name: str = "runs", required: bool = True) -> list[int]:
    """The comma-separated run ids of ``name``: an empty element (``1,,2``) or an empty
    list (``ids=``) is a 400 naming it (an empty ``ids`` was no filter at all), as is an
    id not written as plain digits (:func:`run_id_text`)."""
    text = request.query_params.get(name)
    if not text and required:
        raise BadRequest(f"{name} (comma-separated run ids) is required")
    if text is None:
        return []
    if text == "":
        raise BadRequest(f"{name} is empty: give comma-separated run ids ({name}=1,2) "
                         f"or leave {name} out")
    parts = text.split(",")
    if "" in parts:
        raise BadRequest(f"{name} has an empty element in {text[:60]!r}: give "
                         f"comma-separated run ids (1,2)")
    if len(parts) > 1000:
        raise BadRequest(f"{name}: at most 1000 runs per request, got {len(parts)}")
    return [run_id_text(part, name) for part in parts]


def _once(request: Request) -> None:
    """A query parameter given more than once is a 400 naming it (no parameter is
    repeatable: several runs are one comma-separated ``runs``); the last one was silently
    used."""
    names = [name for name, _ in request.query_params.multi_items()]
    repeated = sorted({n for n in names if names.count(n) > 1})
    if repeated:
        name = repeated[0]
        given = [v for n, v in request.query_params.multi_items() if n == name]
        shown = ", ".join(f"{name}={v[:40]}" for v in given[:5])
        raise BadRequest(f"{name} is given {len(given)} times ({shown}): give it once"
                         + (" (several ids comma-separated: runs=1,2)"
                            if name in ("runs", "ids") else ""))


#: The range of an integer parameter (a step, a point budget): a signed 64-bit integer.
INT_RANGE = (-(2**63), 2**63 - 1)


#: An integer parameter as text: ASCII digits with an optional minus (``int()`` took
#: spaces, ``+``, ``_`` and non-ASCII digits).
INT_TEXT = re.compile(r"-?[0-9]+")


def _int(request: Request, name: str, default=None):
    text = request.query_params.get(name)
    if text in (None, ""):
        return default
    if not INT_TEXT.fullmatch(text):
        raise BadRequest(f"{name} must be an integer, not {text[:40]!r}")
    if len(text) > 25:
        raise BadRequest(f"{name}={text[:40]} is out of range (at most {INT_RANGE[1]})")
    value = int(text)
    if not INT_RANGE[0] <= value <= INT_RANGE[1]:
        raise BadRequest(f"{name}={text[:40]} is out of range (at most {INT_RANGE[1]})")
    return value


def _cursor(request: Request) -> dict[int, dict[str, int]]:
    """``cursor``: JSON ``{run_id: {metric_key: last_step}}``, every step an integer in
    :data:`INT_RANGE`. A NaN, an infinity (``1e400``), a fraction, a boolean or a step past
    64 bits is a 400 naming ``cursor`` (an infinite step was a 503 OverflowError)."""
    text = request.query_params.get("cursor") or "{}"
    shape = "cursor must be JSON {run_id: {metric_key: last_step}}"

    def no_constant(name):
        raise BadRequest(f"{shape}: {name} is no step")

    def no_float(literal):
        raise BadRequest(f"{shape}: a step is an integer, not {literal[:40]}")

    try:
        data = json.loads(text, parse_constant=no_constant, parse_float=no_float)
    except BadRequest:
        raise
    except (ValueError, RecursionError):  # malformed, 4300+ digits, or nested deep
        raise BadRequest(f"{shape}, not {text[:60]!r}") from None
    if not isinstance(data, dict):
        raise BadRequest(f"{shape}, not {text[:60]!r}")
    cursor = {}
    for run, keys in data.items():
        rid = run_id_text(run, "cursor")
        if not isinstance(keys, dict):
            raise BadRequest(f"{shape}: run {run} holds {json.dumps(keys)[:40]}, not an object")
        steps = {}
        for key, step in keys.items():
            if type(step) is not int:
                raise BadRequest(f"{shape}: the step of {key[:40]!r} is "
                                 f"{json.dumps(step)[:40]}, not an integer")
            if not INT_RANGE[0] <= step <= INT_RANGE[1]:
                raise BadRequest(f"cursor: the step of {key[:40]!r} ({str(step)[:40]}) is out "
                                 f"of range ({INT_RANGE[0]} to {INT_RANGE[1]})")
            steps[key] = step
        cursor[rid] = steps
    return cursor


def _flag(request: Request, name: str, default: bool) -> bool:
    text = request.query_params.get(name)
    if text in (None, ""):
        return default
    if text not in ("0", "1"):
        raise BadRequest(f"{name} must be 0 or 1, not {text!r}")
    return text == "1"


class _LazyStore:
    """Opens the :class:`Store` in a background thread once the first page has been sent
    (or when the first API request comes, whichever is first), so that neither the
    server's start nor its first answer waits for the database layer (SQLAlchemy and the
    schema check) or competes with it for the interpreter."""

    def __init__(self, url: str, options: dict):
        import threading

        self.url = url
        self._options = options
        self._store: Store | None = None
        self._error: BaseException | None = None
        self._ready = threading.Event()
        self._started = threading.Lock()
        self._thread: threading.Thread | None = None

    def start(self) -> None:
        """Begin opening the store (once; later calls do nothing)."""
        import threading

        with self._started:
            if self._thread is None:
                self._thread = threading.Thread(target=self._open, args=(self._options,),
                                                name="ato-ui-open", daemon=True)
                self._thread.start()

    def _open(self, options):
        try:
            self._store = Store(self.url, **options)
        except BaseException as e:  # reported to every request
            self._error = e
        finally:
            self._ready.set()

    def get(self) -> Store:
        self.start()
        self._ready.wait()
        if self._error is not None:
            raise self._error
        return self._store


def create_app(url: str, token: str | None = None, loopback_only: bool = True,
               stale_after: float | None = None, lazy: bool = False) -> Starlette:
    """The dashboard for the tracker at ``url`` (read-only).

    ``token``: when set, every request needs it (``?token=`` once, percent-encoded, which
    sets a cookie named after the server's port, or ``Authorization: Bearer``).
    ``loopback_only``: refuse requests whose ``Host`` header is
    not a loopback name (DNS-rebinding protection) when no token is set. ``lazy``: open
    the database in the background once the page has been sent or an API request comes
    (the page is served at once; API requests wait for it, and an error opening it is
    each API response's ``error``). Raises
    :class:`~ato.ui.data.DatabaseMissingError` for a missing SQLite file.
    """
    options = {"stale_after": stale_after} if stale_after is not None else {}
    if lazy:
        check_database(url)
        lazy_store = _LazyStore(url, options)
    else:
        opened = Store(url, **options)

    class _Proxy:
        def __getattr__(self, name):
            target = lazy_store.get() if lazy else opened
            return getattr(target, name)

    store = _Proxy()
    database = DatabaseFile(url)

    def display() -> str:
        try:
            from sqlalchemy.engine import make_url

            return make_url(url).render_as_string(hide_password=True)
        except Exception:
            return "the configured URL"

    async def call(fn, *args, **kwargs):
        return await asyncio.to_thread(fn, *args, **kwargs)

    def handler(fn, *takes: str):
        """``fn`` answering JSON errors; a query parameter it does not take (``takes``,
        besides the access ``token``) is a 400 naming it, never silently ignored."""
        async def endpoint(request: Request):
            try:
                unknown = sorted(set(request.query_params) - set(takes) - {"token"})
                if unknown:
                    raise BadRequest(
                        f"{request.url.path} takes no parameter {', '.join(unknown)} "
                        f"({'it takes ' + ', '.join(takes) if takes else 'it takes none'})")
                _once(request)
                database.check()
                return await fn(request)
            except BadRequest as e:
                return _json({"error": str(e)}, 400)
            except AtoError as e:
                return _json({"error": str(e)}, 503)
            except Exception as e:  # the database went away or broke under the server
                first = (str(e).splitlines() or [type(e).__name__])[0]
                return _json({"error": f"cannot read the tracker at {display()}: "
                                       f"{type(e).__name__}: {first}"}, 503)
        return endpoint

    async def index(request: Request):
        html = (STATIC / "index.html").read_bytes()
        return Response(html, media_type="text/html; charset=utf-8",
                        headers={"cache-control": "no-cache"},
                        background=BackgroundTask(lazy_store.start) if lazy else None)

    async def info(request: Request):
        projects = await call(lambda: store.projects())
        return _json({"db": await call(lambda: store.display_url()), "projects": projects})

    async def runs(request: Request):
        q = request.query_params
        tags = [t.strip() for t in q.get("tags", "").split(",") if t.strip()]
        status = q.get("status") or None
        if status and status not in ("running", "completed", "failed", "killed", "crashed"):
            raise BadRequest(f"status must be running, completed, failed, killed or crashed, "
                             f"not {status!r}")
        ids = _ids(request, "ids", required=False) if "ids" in q else None
        args = (q.get("project") or None, q.get("where") or None, tags, status, ids)
        text = await call(lambda: store.runs_json(*args))
        return Response(text, media_type="application/json")

    async def run(request: Request):
        run_id = run_id_param(request.path_params["run_id"])
        data = await call(lambda: store.run(run_id))
        if data is None:
            return _json({"error": f"no run with id {run_id}"}, 404)
        return _json(data)

    async def series(request: Request):
        key = request.query_params.get("key")
        if not key:
            raise BadRequest("key (a metric key) is required")
        max_points = _int(request, "max_points", 1000)
        if max_points is not None and max_points < 0:
            raise BadRequest("max_points must be >= 0 (0 means every point)")
        with_times = _flag(request, "times", True)
        step_min, step_max = _int(request, "step_min"), _int(request, "step_max")
        if step_min is not None and step_max is not None and step_min > step_max:
            raise BadRequest(f"step_min ({step_min}) is greater than step_max ({step_max}): "
                             f"the window holds no step")
        fmt = request.query_params.get("format") or "json"
        if fmt not in ("json", "f64"):
            raise BadRequest(f"format must be json or f64, not {fmt!r}")
        args = (_ids(request), key, max_points or None, step_min, step_max, with_times,
                fmt == "f64")
        def encoded() -> tuple[bytes, bool]:
            body = dumps({"key": key, "series": store.series(*args)}).encode()
            if len(body) < 1024 or "gzip" not in request.headers.get("accept-encoding", ""):
                return body, False
            # Compressed here, at level 1: a chart's 2 MB of digits at level 6 (the
            # middleware's, for everything else) took 0.18 s of CPU for 7 % fewer bytes.
            return zlib.compress(body, 1, wbits=31), True

        body, gzipped = await call(encoded)
        headers = {"content-encoding": "gzip", "vary": "Accept-Encoding"} if gzipped else None
        return Response(body, media_type="application/json", headers=headers)

    async def studies(request: Request):
        return _json({"studies": await call(lambda: store.studies())})

    async def study(request: Request):
        name = request.query_params.get("study")
        if not name:
            raise BadRequest("study is required")
        data = await call(lambda: store.study(name))
        if data is None:
            return _json({"error": f"no study {name!r}: no run is tagged study:{name}"}, 404)
        return _json(data)

    async def live(request: Request):
        ids = _ids(request)
        cursor = _cursor(request)

        async def events():
            statuses = await call(lambda: store.statuses(ids))
            yield f"event: status\ndata: {dumps(statuses)}\n\n"
            while True:
                if await request.is_disconnected():
                    return
                try:
                    database.check()
                except AtoError as e:  # said once; the page closes the stream
                    yield f"event: failed\ndata: {dumps({'error': str(e)})}\n\n"
                    return
                # every key: one a run starts logging after the page opened comes too
                sums = await call(lambda: store.summaries(ids, None))
                for rid, per in sums.items():
                    for key, s in per.items():
                        seen = cursor.setdefault(rid, {}).get(key)
                        if seen is None and rid in cursor and key not in cursor[rid]:
                            seen = -1
                        if seen is not None and s["last_step"] is not None and s["last_step"] > seen:
                            pts = await call(
                                lambda r=rid, k=key, s=seen: store.points_since(r, k, s))
                            if pts:
                                cursor[rid][key] = pts[-1][0]
                                yield ("event: points\ndata: " + dumps(
                                    {"run": rid, "key": key, "steps": [p[0] for p in pts],
                                     "values": [p[1] for p in pts],
                                     "times": [p[2] for p in pts]}) + "\n\n")
                now = await call(lambda: store.statuses(ids))
                changed = {r: s for r, s in now.items() if statuses.get(r) != s}
                if changed:
                    statuses.update(changed)
                    yield f"event: status\ndata: {dumps(changed)}\n\n"
                else:
                    yield ": keep-alive\n\n"
                await asyncio.sleep(LIVE_INTERVAL)

        return StreamingResponse(events(), media_type="text/event-stream",
                                 headers={"cache-control": "no-cache",
                                          "x-accel-buffering": "no"})

    async def not_found(request: Request):
        return _json({"error": f"no endpoint {request.url.path}"}, 404)

    routes = [
        Route("/", index),
        Route("/api/info", handler(info)),
        Route("/api/runs", handler(runs, "project", "where", "tags", "status", "ids")),
        Route("/api/run/{run_id}", handler(run)),
        Route("/api/series", handler(series, "runs", "key", "max_points", "step_min",
                                     "step_max", "times", "format")),
        Route("/api/studies", handler(studies)),
        Route("/api/study", handler(study, "study")),
        Route("/api/live", handler(live, "runs", "cursor")),
        *registry_routes(store, call, handler, _json),
        Route("/api/{rest:path}", not_found),
        Mount("/static", StaticFiles(directory=STATIC), name="static"),
    ]
    app = Starlette(routes=routes, middleware=[
        Middleware(_Guard, token=token, loopback_only=loopback_only),
        Middleware(GZipMiddleware, minimum_size=1024, compresslevel=6)])  # not the event stream
    app.state.store = store
    app.state.url = url
    return app
