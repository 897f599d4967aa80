"""SQLLogger: records runs, metrics, artifacts and code fingerprints.

Guarantees (docs/tracking.md):

- ``log_metric`` only appends to an in-memory buffer; a background thread writes the
  buffer in one transaction every ``flush_interval`` seconds (0.5 s by default), and a full
  buffer (``flush_count`` rows) is written at once.  ``flush()``, ``finish()``, normal
  interpreter exit, SIGTERM and SIGINT write everything buffered.
- A process killed with SIGKILL loses at most the rows logged since the last flush; the
  database is never corrupted (each flush is one transaction), and the run is reported as
  ``crashed`` once its heartbeat (refreshed every ``heartbeat_interval`` seconds) is stale.
- A run ends ``completed`` when the program (or the ``with`` block) ends normally or with
  exit status 0, ``failed`` on an exception or a non-zero exit status (``sys.exit(1)``,
  ``sys.exit('msg')``), ``killed`` on SIGTERM/SIGINT/SIGHUP; ``failed``/``killed`` runs
  record why in ``experiments.error``.  One ``with`` block is one run.

SQLAlchemy is imported on first use, not when this module is imported.
"""

from __future__ import annotations

import atexit
import collections
import math
import os
import signal
import sys
import threading
import time
import weakref
from datetime import datetime, timezone

from ato.db_routers.sql import values
from ato.tracking import METRIC_STEP_RANGE, check_metric, log_each
from ato.tracking.outcome import block_outcome, describe_exception, exit_outcome
from ato.tracking.routing import _ROUTE, routed

#: The steps ``metrics.step`` holds: 64-bit on SQLite and PostgreSQL (schema 9).
_STEP_LO, _STEP_HI = METRIC_STEP_RANGE

SQL_SCHEMES = ("sqlite", "postgresql", "postgres", "mysql", "mariadb", "oracle", "mssql")


def config_value(config, dotted: str, default=None):
    """Read ``a.b.c`` from an ADict or dict without counting it as a user access."""
    node = config
    for part in dotted.split("."):
        data = getattr(node, "_data", node)
        if not hasattr(data, "get") or part not in data:
            return default
        node = data[part]
    return node


def tracker_url(config) -> str:
    url = config_value(config, "experiment.sql.db_path")
    if not url:
        raise KeyError("the tracker needs config.experiment.sql.db_path, e.g. "
                       "'sqlite:///experiments.db'")
    return str(url)


def is_sql_url(url: str) -> bool:
    scheme = url.split(":", 1)[0].split("+", 1)[0].lower()
    return scheme in SQL_SCHEMES


def other_backend(config, role: str, options: dict):
    """For a URL that is not SQL, the tracker plugin's ``logger`` or ``finder`` (``role``)
    for ``config``; ``None`` for an SQL URL."""
    url = tracker_url(config)
    if is_sql_url(url):
        return None
    from ato.plugins.manager import tracker_for_url

    return getattr(tracker_for_url(url), role)(config, **options)


def _plain(config):
    """The config as the run records it: plain containers, no password of a URL in it
    (:mod:`ato.tracking.secrets`)."""
    from ato.tracking.secrets import without_passwords

    return without_passwords(config.to_dict() if hasattr(config, "to_dict") else dict(config))


def _structural_hash(config) -> str:
    from ato.adict import ADict

    if not isinstance(config, ADict):
        config = ADict(config)
    return config.get_structural_hash()


class _Timestamps:
    """Fast naive-UTC text timestamps ('YYYY-MM-DD HH:MM:SS.ffffff'), cached per second."""

    def __init__(self):
        self._second = None
        self._prefix = ""

    def __call__(self, t: float) -> str:
        second = int(t)
        if second != self._second:
            self._second = second
            self._prefix = datetime.fromtimestamp(second, timezone.utc).strftime("%Y-%m-%d %H:%M:%S")
        return f"{self._prefix}.{int((t - second) * 1e6):06d}"


def _utc(t: float) -> datetime:
    return datetime.fromtimestamp(t, timezone.utc).replace(tzinfo=None)


_live_loggers: weakref.WeakSet = weakref.WeakSet()
_all_loggers: weakref.WeakSet = weakref.WeakSet()  # every logger of this process


def _after_fork_in_child() -> None:
    """In a forked child, every logger is a copy whose run belongs to the parent: the
    parent flushes its buffered points and ends it.  The copy drops the run and the
    buffer (and the locks a parent thread may have held when it forked), so it is a logger
    with no run: ending it, a signal or the child's
    exit never touches the parent's run.  Its engine is left alone: a connection inherited
    across fork is never closed or used here (SQLite's locks would break)."""
    _live_loggers.clear()
    for logger in list(_all_loggers):
        logger._run_id = logger._block_run = None
        logger._with_depth = 0
        logger._buffer = collections.deque()
        logger._registrations, logger._registration_failures = [], []
        logger._flush_lock, logger._thread_lock = threading.Lock(), threading.Lock()
        logger._stop, logger._thread = threading.Event(), None


if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_after_fork_in_child)

_NOT_EXITED = object()
LINGER = 5.0  # seconds the flush thread waits for the logger's next run before it ends
_exit_state = {"exception": None, "exit": _NOT_EXITED, "hooked": False, "signals": False}


def _install_process_hooks(signals: bool) -> None:
    """Once per process: remember how the program ends (uncaught exception, ``sys.exit``
    code) for the runs still open at exit; with ``signals``, end them ``killed`` on
    SIGTERM, SIGINT and SIGHUP when those still have their default handlers."""
    if not _exit_state["hooked"]:
        _exit_state["hooked"] = True
        previous_hook = sys.excepthook

        def excepthook(exc_type, exc, tb):
            _exit_state["exception"] = exc if exc is not None else exc_type()
            previous_hook(exc_type, exc, tb)

        sys.excepthook = excepthook
        original_exit = sys.exit

        def exit(status=None, /):  # noqa: A001 - stands in for sys.exit
            _exit_state["exit"] = status
            original_exit(status)

        exit.__doc__ = original_exit.__doc__
        sys.exit = exit
        atexit.register(_at_exit)
    if signals and not _exit_state["signals"] and \
            threading.current_thread() is threading.main_thread():
        _exit_state["signals"] = True
        for name in ("SIGTERM", "SIGINT", "SIGHUP"):
            signum = getattr(signal, name, None)
            if signum is None:
                continue
            current = signal.getsignal(signum)
            if current in (signal.SIG_DFL, signal.default_int_handler, None):
                signal.signal(signum, _on_signal)


def _on_signal(signum, frame):
    """End the open runs ``killed``, then exit: ``KeyboardInterrupt`` for SIGINT, status
    ``128 + signum`` for SIGTERM/SIGHUP (``atexit`` still runs).

    With no run open, SIGTERM/SIGHUP get their default action back and are sent again: the
    process dies of the signal exactly as without Ato.  A process whose runs are all
    finished (a ``multiprocessing`` pool worker being terminated, say) must not unwind its
    stack from wherever the signal landed, which can hang it in a lock."""
    registry = sys.modules.get("ato.db_routers.sql.registry.core")
    if signum == signal.SIGINT and registry is not None and registry._waiting[0]:
        raise KeyboardInterrupt  # Ctrl-C again while a run's end waits: abandon the wait
    loggers = list(_live_loggers)
    if not loggers and signum != signal.SIGINT:
        signal.signal(signum, signal.SIG_DFL)
        os.kill(os.getpid(), signum)
    error = f"signal {signal.Signals(signum).name}"
    for logger in loggers:
        logger._end("killed", error)
    if signum == signal.SIGINT:
        raise KeyboardInterrupt
    raise SystemExit(128 + signum)


def _at_exit() -> None:
    exc = _exit_state["exception"]
    if isinstance(exc, KeyboardInterrupt):
        status, error = "killed", "KeyboardInterrupt"
    elif exc is not None:
        status, error = "failed", describe_exception(exc)
    elif _exit_state["exit"] is not _NOT_EXITED:
        status, error = exit_outcome(_exit_state["exit"])
    else:
        status, error = "completed", None
    for logger in list(_live_loggers):
        try:
            logger._end(status, error)
        except Exception as e:  # never mask the program's own exit
            print(f"ato: could not finish run {logger._run_id}: {e}", file=sys.stderr)


class SQLLogger:
    """``SQLLogger(config)`` with ``config.experiment.sql.db_path`` (an SQLAlchemy URL)
    and ``config.experiment.project_name``.

    A URL whose scheme belongs to another tracker plugin (e.g. ``jsonl://runs/``) gets that
    plugin's logger, so the same code runs against any backend.
    """

    def __new__(cls, config, **options):
        other = other_backend(config, "logger", options) if cls is SQLLogger else None
        return other if other is not None else super().__new__(cls)

    def __init__(self, config, flush_interval: float = 0.5, flush_count: int = 10_000,
                 heartbeat_interval: float = 10.0, handle_signals: bool = True):
        from ato.db_routers.sql.engine import ensure_schema, open_engine

        if self.__dict__.get("_opened"):
            return  # __new__ handed over a plugin's logger that is an SQLLogger: open already
        self._opened = True
        self.config = config
        self.url = tracker_url(config)
        self.project_name = str(config_value(config, "experiment.project_name", "default"))
        self.flush_interval = flush_interval
        self.flush_count = flush_count
        self.heartbeat_interval = heartbeat_interval
        self._handle_signals = handle_signals
        self.engine = open_engine(self.url)
        ensure_schema(self.engine)
        self._sqlite = self.engine.dialect.name == "sqlite"
        # metrics.step is SQLite's 64-bit INTEGER, but a 32-bit integer elsewhere
        self._postgresql = (self.engine.dialect.name == "postgresql"
                            and self.engine.dialect.paramstyle in ("format", "pyformat"))
        self._buffer: collections.deque = collections.deque()
        self._flush_lock = threading.Lock()
        self._run_id: int | None = None
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._thread_lock = threading.Lock()
        self._timestamps = _Timestamps()
        self._last_heartbeat = 0.0
        self._with_depth = 0
        self._block_run: int | None = None
        self._project_id: int | None = None
        self._registrations: list = []  # this run's log_model(wait=False), not yet waited for
        self._registration_failures: list = []
        self._interrupted = False  # Ctrl-C abandoned the wait for registrations (finish raises)
        self._statements()
        _all_loggers.add(self)

    # ------------------------------------------------------------------ SQL
    def _statements(self) -> None:
        # The DB-API placeholder: sqlite3 takes "?", psycopg "%s".  metric_summaries is
        # maintained by the database's triggers, not here; metric_blocks by flush().
        self._p = p = "?" if self.engine.dialect.paramstyle == "qmark" else "%s"
        self._insert_metrics = (
            f"INSERT INTO metrics (run_id, key, value, step, timestamp) VALUES ({p}, {p}, {p}, {p}, {p})")
        # PostgreSQL: one statement per flush (its summary trigger runs once per statement).
        self._insert_metrics_pg = (
            "INSERT INTO metrics (run_id, key, value, step, timestamp) SELECT * FROM unnest("
            "%s::integer[], %s::varchar[], %s::double precision[], %s::bigint[], "
            "%s::timestamp[])")
        self._returning = " RETURNING id, run_id, key, value, step"
        self._heartbeat_sql = f"UPDATE experiments SET heartbeat_at = {p} WHERE id = {p}"

    def _transaction(self, work):
        """Run ``work(cursor)`` in one write transaction on a raw DBAPI connection,
        retrying while the database is busy."""
        from ato.db_routers.sql.engine import retry

        def attempt():
            conn = self.engine.raw_connection()
            try:
                cur = conn.cursor()
                if self._sqlite:
                    cur.execute("BEGIN IMMEDIATE")
                try:
                    result = work(cur)
                    if self._sqlite:
                        cur.execute("COMMIT")
                    else:
                        conn.commit()
                    return result
                except BaseException:
                    if self._sqlite:
                        try:
                            cur.execute("ROLLBACK")
                        except Exception:
                            pass
                    else:
                        conn.rollback()
                    raise
            finally:
                conn.close()

        return retry(attempt)

    def _stamp(self, t: float):
        return self._timestamps(t) if self._sqlite else _utc(t)

    # ------------------------------------------------------------------ runs
    def run(self, tags=None, config=None) -> int:
        """Start a new run (the project is created if needed); returns its id.  The run
        records ``config`` when given (a search's trial), else the logger's config.

        One run at a time: a run still open is first ended ``completed``.  Inside a
        ``with`` block, the first call names the block's own run instead (``tags``
        replace its tags, ``config`` its config) and returns its id, so
        ``with SQLLogger(cfg) as logger: logger.run(tags=[...])`` records one run."""
        if self._run_id is not None and self._run_id == self._block_run:
            self._block_run = None
            return self._rename(self._run_id, tags, config)
        if self._run_id is not None:
            self._end("completed")
            self._registration_failures = []  # printed and recorded with that run
            self._raise_interrupt()
        _exit_state["exit"] = _NOT_EXITED  # a sys.exit caught before this run is not its end
        config = self.config if config is None else config
        structural_hash = _structural_hash(config)
        config_json = values.dumps(_plain(config))
        tags_json = values.dumps(list(tags or []))
        now = self._stamp(time.time())
        p = self._p
        fingerprints = _scope_fingerprints()

        def work(cur):
            project_id = self._project_id
            if project_id is None:  # projects are never deleted: once known, cached
                cur.execute(f"INSERT INTO projects (name, created_at) VALUES ({p}, {p}) "
                            f"ON CONFLICT (name) DO NOTHING", (self.project_name, now))
                cur.execute(f"SELECT id FROM projects WHERE name = {p}", (self.project_name,))
                project_id = cur.fetchone()[0]
            cur.execute(
                f"INSERT INTO experiments (project_id, config, structural_hash, tags, status, "
                f"start_time, heartbeat_at) VALUES ({p}, {p}, {p}, {p}, 'running', {p}, {p}) "
                f"RETURNING id",
                (project_id, config_json, structural_hash, tags_json, now, now))
            run_id = cur.fetchone()[0]
            cur.executemany(
                f"INSERT INTO fingerprints (run_id, trace_id, trace_type, fingerprint) "
                f"VALUES ({p}, {p}, {p}, {p})",
                [(run_id, tid, kind, fp) for (tid, kind), fp in fingerprints.items()])
            return run_id, project_id

        self._run_id, self._project_id = self._transaction(work)
        self._fingerprints_at_start = fingerprints
        self._last_heartbeat = time.monotonic()
        _live_loggers.add(self)
        _install_process_hooks(self._handle_signals)
        self._start_thread()
        return self._run_id

    def _rename(self, run_id: int, tags, config) -> int:
        """Give the open run ``run_id`` these tags (and this config, when given)."""
        p = self._p
        tags_json = values.dumps(list(tags or []))
        if config is None:
            self._transaction(lambda cur: cur.execute(
                f"UPDATE experiments SET tags = {p} WHERE id = {p}", (tags_json, run_id)))
            return run_id
        params = (values.dumps(_plain(config)), _structural_hash(config), tags_json, run_id)
        self._transaction(lambda cur: cur.execute(
            f"UPDATE experiments SET config = {p}, structural_hash = {p}, tags = {p} "
            f"WHERE id = {p}", params))
        return run_id

    def get_current_run_id(self) -> int | None:
        target = routed(self)  # a search's concurrent trial: the run it holds
        return self._run_id if target is self else target.get_current_run_id()

    def get_current_run(self):
        """The current run as the finder returns it (config as an ADict)."""
        target = routed(self)
        if target is not self:
            return target.get_current_run()
        if self._run_id is None:
            return None
        self.flush()
        from ato.db_routers.sql.finder import SQLFinder

        return SQLFinder(self.config).find_run(self._run_id)

    # ------------------------------------------------------------------ metrics
    def log_metric(self, key: str, value, step: int) -> None:
        """Buffer one metric value; it reaches the database at the next flush.  Inside a
        search running several trials at once, the call goes to the logger holding this
        trial's run (:mod:`ato.tracking.routing`)."""
        if _ROUTE.get() is not None:  # nothing routed costs one lookup: the hot path
            target = routed(self)
            if target is not self:
                return target.log_metric(key, value, step)
        if self._run_id is None:
            raise RuntimeError("log_metric() before run(): start a run first")
        if type(value) is float and type(step) is int and _STEP_LO <= step <= _STEP_HI \
                and type(key) is str and "\x00" not in key:
            self._buffer.append((self._run_id, key, value, step, time.time()))
        else:  # anything else is checked here, at the call: a bad row never reaches a flush
            self._buffer.append((self._run_id, *check_metric(key, value, step),
                                 time.time()))
        if len(self._buffer) >= self.flush_count:
            self.flush()

    def log_metrics(self, metrics, step: int) -> None:
        """Buffer several metrics of one step: ``log_metrics({'loss': l, 'acc': a}, step)``.
        Every good one is buffered; then one :class:`~ato.tracking.MetricError` names every
        one refused (a bad value does not cost the good ones after it)."""
        log_each(self.log_metric, metrics, step)

    def flush(self, _then=None) -> int:
        """Write every buffered metric now (one transaction); returns how many.
        ``_then(cursor)``, when given and something was buffered, runs in the same
        transaction (finish ends the run in its flush's commit)."""
        with self._flush_lock:
            buffer = self._buffer
            n = len(buffer)
            if n == 0:
                return 0
            rows = [buffer.popleft() for _ in range(n)]
            stamp = self._stamp
            nan = values.SQLITE_NAN if self._sqlite else math.nan  # SQLite has no NaN
            inserts = [(r, k, v if v == v else nan, s, stamp(t)) for r, k, v, s, t in rows]
            heartbeat = stamp(time.time())
            run_id = self._run_id
            from ato.db_routers.sql.blocks import write_blocks

            def work(cur):
                if self._postgresql:
                    cur.execute(self._insert_metrics_pg + self._returning,
                                [list(c) for c in zip(*inserts)])
                    write_blocks(cur, False, cur.fetchall())
                elif self._sqlite:
                    cur.execute("SELECT COALESCE(MAX(id), 0) FROM metrics")
                    before = cur.fetchone()[0]
                    cur.executemany(self._insert_metrics, inserts)
                    cur.execute("SELECT last_insert_rowid()")
                    after = cur.fetchone()[0]
                    if after - before == n:  # our write lock: the ids are consecutive
                        stored = [(before + 1 + j, r, k, v, s)
                                  for j, (r, k, v, s, _) in enumerate(rows)]
                    else:
                        cur.execute("SELECT id, run_id, key, value, step FROM metrics "
                                    "WHERE id > ?", (before,))
                        stored = [(i, r, k, float(v), s) for i, r, k, v, s in cur.fetchall()]
                    write_blocks(cur, True, stored)
                else:  # no block summaries: its readers reduce the raw rows
                    cur.executemany(self._insert_metrics, inserts)
                cur.execute(self._heartbeat_sql, (heartbeat, run_id))

            try:
                self._transaction(work if _then is None else lambda cur: (work(cur), _then(cur)))
            except BaseException as e:
                bad = self._bad_rows(rows) if isinstance(e, Exception) else []
                if bad:  # a row no check let in (log_metric refuses it): it alone is dropped
                    dropped = set(bad)
                    keep = [r for j, r in enumerate(rows) if j not in dropped]
                    print(f"ato: run {run_id}: dropped {len(bad)} metric point(s) the database "
                          f"cannot hold, e.g. {rows[bad[0]][1]!r} at step "
                          f"{rows[bad[0]][3]!r} ({type(e).__name__}: {e})", file=sys.stderr)
                    buffer.extendleft(reversed(keep))
                    retry_flush = True
                else:
                    buffer.extendleft(reversed(rows))  # nothing recorded is lost
                    raise
            else:
                retry_flush = False
        if retry_flush:  # outside the lock: flush() takes it again
            return self.flush(_then)
        self._last_heartbeat = time.monotonic()
        return n

    def _bad_rows(self, rows) -> list[int]:
        """Indexes of buffered ``rows`` that :func:`check_metric` refuses."""
        bad = []
        for j, (_, key, value, step, _) in enumerate(rows):
            try:
                if check_metric(key, value, step)[2] != step or \
                        type(value) is not float:
                    bad.append(j)
            except Exception:
                bad.append(j)
        return bad

    # ------------------------------------------------------------------ artifacts, status
    def log_artifact(self, run_id, file_path, data_type=None, metadata=None) -> None:
        """Record an artifact's path (the file itself is not copied)."""
        p = self._p
        self._transaction(lambda cur: cur.execute(
            f"INSERT INTO artifacts (run_id, path, data_type, data_info) VALUES ({p}, {p}, {p}, {p})",
            (run_id, str(file_path), data_type,
             None if metadata is None else values.dumps(metadata))))

    def use_dataset(self, name: str, path, *, copy: bool = False, aliases=(),
                    etag: str | None = None, size: int | None = None,
                    description: str | None = None, meta=None):
        """Record the version of dataset ``name`` at ``path`` this run uses; see
        :func:`ato.db_routers.sql.registry.use_dataset` (docs/models-and-data.md)."""
        options = dict(copy=copy, aliases=aliases, etag=etag, size=size,
                       description=description, meta=meta)
        target = routed(self)
        if target is not self:  # a search's trial: the logger (or process) holding its run
            return target.use_dataset(name, path, **options)
        from ato.db_routers.sql.registry import use_dataset

        return use_dataset(self, name, path, **options)

    def use_reference(self, name: str, uri: str, *, etag: str | None = None,
                      size: int | None = None, aliases=(), meta=None):
        """Record remote data ``uri`` by reference as dataset ``name`` this run uses; see
        :func:`ato.db_routers.sql.registry.use_reference` (docs/models-and-data.md)."""
        options = dict(etag=etag, size=size, aliases=aliases, meta=meta)
        target = routed(self)
        if target is not self:  # a search's trial: the logger (or process) holding its run
            return target.use_reference(name, uri, **options)
        from ato.db_routers.sql.registry import use_reference

        return use_reference(self, name, uri, **options)

    def use_model(self, name: str, ref=None, *, project: str | None = None):
        """Record that this run uses version ``ref`` of model ``name`` (``None``:
        ``latest``) of ``project`` (default: this run's) — the weights it fine-tunes or
        evaluates; see :func:`ato.db_routers.sql.registry.use_model`
        (docs/models-and-data.md)."""
        target = routed(self)
        if target is not self:  # a search's trial: the logger (or process) holding its run
            return (target.use_model(name, ref) if project is None
                    else target.use_model(name, ref, project=project))
        from ato.db_routers.sql.registry import use_model

        return use_model(self, name, ref, project=project)

    def log_model(self, name: str, path, step=None, aliases=(), keep=None, wait: bool = True,
                  *, score: float | None = None, mode: str = "max",
                  description: str | None = None, meta=None):
        """Store the model at ``path`` as a new version of ``name`` from this run; see
        :func:`ato.db_routers.sql.registry.log_model` (docs/models-and-data.md).

        ``wait=False`` returns once the file is copied (a ``PendingVersion``); the run's
        end (``finish()``, the ``with`` block, interpreter exit, SIGTERM) waits for it, and a
        failure then ends the run ``failed``, is printed, and is raised by ``finish()`` and
        by a ``with`` block that had no error of its own
        (:class:`~ato.db_routers.sql.registry.core.BackgroundRegistrationError`)."""
        options = dict(step=step, aliases=aliases, keep=keep, wait=wait, score=score,
                       mode=mode, description=description, meta=meta)
        target = routed(self)
        if target is not self:  # a search's trial: the logger (or process) holding its run
            return target.log_model(name, path, **options)
        from ato.db_routers.sql.registry import log_model

        return log_model(self, name, path, **options)

    def _track_registration(self, pending) -> None:
        """Remember a background registration of the current run: its end waits for it."""
        pending._shared["owner"] = self._run_id
        self._registrations.append(pending)

    def _wait_registrations(self, again: bool = False) -> list:
        """Wait for the current run's background registrations, saying so on stderr while
        some still run; Ctrl-C abandons them (nothing recorded for them) and is raised
        again by :meth:`finish`.  ``[(pending, error)]`` of those that failed."""
        pending, self._registrations = self._registrations, []
        if not pending:
            return []
        from ato.db_routers.sql.registry.core import wait_or_abandon

        failed, interrupted = wait_or_abandon(pending, f"run {self._run_id}: ", again=again)
        self._interrupted = self._interrupted or interrupted
        return failed

    def _raise_registration_failures(self) -> None:
        failed, self._registration_failures = self._registration_failures, []
        if failed:
            from ato.db_routers.sql.registry.core import BackgroundRegistrationError

            raise BackgroundRegistrationError(failed)

    def update_status(self, status: str) -> None:
        if self._run_id is None:
            return
        p = self._p
        self._transaction(lambda cur: cur.execute(
            f"UPDATE experiments SET status = {p} WHERE id = {p}", (status, self._run_id)))

    def finish(self, status: str = "completed", error: str | None = None) -> None:
        """Wait for the run's background registrations (``log_model(wait=False)``), flush,
        record the runtime fingerprints and end the run with ``status`` (and ``error``, why
        it failed, when given).

        Errors: :class:`~ato.db_routers.sql.registry.core.BackgroundRegistrationError` when
        a background registration failed — raised after the run was recorded ``failed``
        with the reason."""
        self._end(status, error)
        self._raise_interrupt()
        self._raise_registration_failures()

    def _raise_interrupt(self) -> None:
        """``KeyboardInterrupt`` when a Ctrl-C abandoned the wait for the run's background
        registrations (the run is already ended ``killed``)."""
        if self._interrupted:
            self._interrupted = False
            self._registration_failures = []
            raise KeyboardInterrupt

    def _end(self, status: str, error: str | None = None) -> None:
        if self._run_id is None:
            return
        failed = self._wait_registrations(again=status == "killed")
        if self._interrupted:
            status = "killed" if status == "completed" else status
            error = error or "KeyboardInterrupt"
        if failed:
            why = "; ".join(f"{pending.describe()} failed in the background: "
                            f"{type(e).__name__}: {e}" for pending, e in failed)
            print(f"ato: run {self._run_id}: {why}", file=sys.stderr)
            status = "failed" if status == "completed" else status
            error = why if error is None else f"{error}; {why}"
            self._registration_failures = failed
        p = self._p
        now = self._stamp(time.time())
        run_id = self._run_id
        runtime = {k: v for k, v in _scope_fingerprints().items() if k[1] == "runtime"
                   and self._fingerprints_at_start.get(k) != v}

        def work(cur):
            for (tid, kind), fp in runtime.items():
                cur.execute(f"DELETE FROM fingerprints WHERE run_id = {p} AND trace_id = {p} "
                            f"AND trace_type = {p}", (run_id, tid, kind))
                cur.execute(f"INSERT INTO fingerprints (run_id, trace_id, trace_type, "
                            f"fingerprint) VALUES ({p}, {p}, {p}, {p})", (run_id, tid, kind, fp))
            cur.execute(f"UPDATE experiments SET status = {p}, end_time = {p}, heartbeat_at = {p}, "
                        f"error = {p} WHERE id = {p}", (status, now, now, error, run_id))

        try:
            flushed = self.flush(_then=work)  # the last metrics and the end: one commit
        except Exception as e:  # the points cannot be written: the run still ends
            self._transaction(work)  # raises (the buffer kept) when the database is down
            lost = len(self._buffer)
            self._buffer.clear()
            print(f"ato: run {run_id}: {lost} metric point(s) could not be written "
                  f"({type(e).__name__}: {e})", file=sys.stderr)
            flushed = 1
        if not flushed:
            self._transaction(work)
        self._run_id = None
        _live_loggers.discard(self)
        if self._sqlite:
            self._checkpoint()

    def _checkpoint(self) -> None:
        """Merge the write-ahead log into the database file at the end of a run, so a copy
        of the file alone holds the run.  PASSIVE never waits on a reader or writer: what it
        cannot copy now stays in the log for SQLite's own later checkpoints."""
        import contextlib

        conn = self.engine.raw_connection()
        try:
            with contextlib.suppress(Exception):  # busy or locked: merged later
                conn.cursor().execute("PRAGMA wal_checkpoint(PASSIVE)")
        finally:
            conn.close()

    # ------------------------------------------------------------------ background flushing
    # The flush thread outlives a run by LINGER seconds, so a search that records one short
    # run after another (a trial each) keeps one thread instead of starting one per run.
    def _start_thread(self) -> None:
        with self._thread_lock:
            # A thread whose stop event is set is on its way out: the run gets its own.
            if (self._thread is not None and self._thread.is_alive()
                    and not self._stop.is_set()):
                return
            self._stop = threading.Event()
            self._thread = threading.Thread(target=self._background, name="ato-sql-flush",
                                            daemon=True)
            self._thread.start()

    def _background(self) -> None:
        stop = self._stop
        idle_since = None
        while not stop.wait(self.flush_interval):
            if self._run_id is None and not self._buffer:
                idle_since = idle_since or time.monotonic()
                if time.monotonic() - idle_since < LINGER:
                    continue
                with self._thread_lock:  # run() sets its id before it looks for a thread
                    if self._run_id is None:
                        stop.set()
                        return
            idle_since = None
            try:
                if self._buffer:
                    self.flush()
                elif time.monotonic() - self._last_heartbeat >= self.heartbeat_interval:
                    self._heartbeat()
            except Exception as e:
                print(f"ato: flushing metrics failed (will retry): {e}", file=sys.stderr)

    def _heartbeat(self) -> None:
        run_id = self._run_id
        if run_id is None:
            return
        params = (self._stamp(time.time()), run_id)
        self._transaction(lambda cur: cur.execute(self._heartbeat_sql, params))
        self._last_heartbeat = time.monotonic()

    # ------------------------------------------------------------------ context manager
    def __enter__(self) -> SQLLogger:
        """The outermost ``with`` on a logger owns one run: the current run, or a new one
        (which the first ``run(tags, config)`` inside the block then names).  A nested
        ``with`` on the same logger neither starts nor ends a run."""
        self._with_depth += 1
        if self._with_depth == 1 and self._run_id is None:
            self._block_run = self.run()
        return self

    def __exit__(self, exc_type, exc, tb) -> bool:
        self._with_depth -= 1
        if self._with_depth > 0:
            return False
        self._block_run = None
        self._end(*block_outcome(exc_type, exc))
        if exc_type is None:
            self._raise_interrupt()
            self._raise_registration_failures()
        self._interrupted = False
        self._registration_failures = []
        return False

    def __repr__(self):
        return f"SQLLogger({self.url!r}, project={self.project_name!r}, run={self._run_id})"


def _scope_fingerprints() -> dict:
    """``{(trace_id, 'static'|'runtime'): fingerprint}`` held by the registered scopes."""
    scope_module = sys.modules.get("ato.scoping.scope")
    if scope_module is None:
        return {}
    out = {}
    for scope in scope_module.Scope.registry.values():
        for trace_id, kinds in scope.fingerprints.items():
            for kind, fp in kinds.items():
                out[(trace_id, kind)] = fp
    return out

