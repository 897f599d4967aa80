"""Study coordination on SQL: the tables of schema step 5 and :class:`SQLCoordinator`.

``studies``        one row per study: its unique name, ``meta`` (JSON text: algorithm,
                   mode, metric… as the first creator gave it), ``created_at``
``study_trials``   one row per trial: unique ``(study_id, key)``, ``seq`` (0-based
                   insertion order), ``state`` (queued/running/completed/failed),
                   ``payload`` (strict JSON text, non-finite floats as
                   :mod:`ato.db_routers.sql.values` writes them), ``metric`` (a float column:
                   ±inf native, NaN native on PostgreSQL and the text ``'NaN'`` on SQLite,
                   as ``metrics.value``), ``error``, ``worker``, ``attempts``, ``run_id``,
                   ``enqueued_at``/``claimed_at``/``finished_at``
``study_workers``  one row per (study, worker): host, pid, meta, joined/heartbeat/left times

Every time is written by the database's clock (``now`` of SQLite, ``clock_timestamp()`` of
PostgreSQL, naive UTC), so workers on machines whose clocks disagree still agree on who
is stale.  A claim is one transaction: on PostgreSQL an ``UPDATE`` of the row chosen by
``SELECT … FOR UPDATE SKIP LOCKED`` (concurrent claimers skip each other's rows instead of
waiting), on SQLite a ``BEGIN IMMEDIATE`` transaction (one writer at a time; the others
wait up to the busy timeout, then retry — never "database is locked").  A report is one
``UPDATE`` guarded by ``worker`` and ``attempts``, so exactly one report per claim can
succeed and a reassigned trial's late report changes nothing.
"""

from __future__ import annotations

import json
import math
import os
import threading
from collections.abc import Callable, Sequence
from contextlib import contextmanager
from datetime import datetime

from sqlalchemy import (
    DateTime,
    Float,
    ForeignKey,
    Index,
    Integer,
    String,
    Text,
    UniqueConstraint,
    bindparam,
    text,
)
from sqlalchemy.orm import Mapped, mapped_column

from ato.db_routers.sql import values
from ato.db_routers.sql.schema import Base
from ato.tracking.studies import (
    REPORT_STATUSES,
    Claim,
    TrialSpec,
    TrialState,
    check_stale_after,
    check_study,
)


# --------------------------------------------------------------------------- tables
class Study(Base):
    __tablename__ = "studies"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    name: Mapped[str] = mapped_column(String(255), nullable=False, unique=True)
    meta: Mapped[str | None] = mapped_column(Text)
    created_at: Mapped[datetime | None] = mapped_column(DateTime)


class StudyTrial(Base):
    __tablename__ = "study_trials"
    __table_args__ = (UniqueConstraint("study_id", "key", name="uq_study_trial_key"),
                      Index("ix_study_trials_claim", "study_id", "state", "seq"),
                      Index("ix_study_trials_seq", "study_id", "seq"))

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    study_id: Mapped[int] = mapped_column(ForeignKey("studies.id"), nullable=False)
    key: Mapped[str] = mapped_column(String(255), nullable=False)
    seq: Mapped[int] = mapped_column(Integer, nullable=False)
    state: Mapped[str] = mapped_column(String(16), nullable=False)
    payload: Mapped[str] = mapped_column(Text, nullable=False)
    metric: Mapped[float | None] = mapped_column(Float)
    error: Mapped[str | None] = mapped_column(Text)
    worker: Mapped[str | None] = mapped_column(String(255))
    attempts: Mapped[int] = mapped_column(Integer, nullable=False)
    run_id: Mapped[int | None] = mapped_column(Integer)
    enqueued_at: Mapped[datetime | None] = mapped_column(DateTime)
    claimed_at: Mapped[datetime | None] = mapped_column(DateTime)
    finished_at: Mapped[datetime | None] = mapped_column(DateTime)


class StudyWorker(Base):
    __tablename__ = "study_workers"

    study_id: Mapped[int] = mapped_column(ForeignKey("studies.id"), primary_key=True)
    worker: Mapped[str] = mapped_column(String(255), primary_key=True)
    host: Mapped[str | None] = mapped_column(String(255))
    pid: Mapped[int | None] = mapped_column(Integer)
    meta: Mapped[str | None] = mapped_column(Text)
    joined_at: Mapped[datetime | None] = mapped_column(DateTime)
    heartbeat_at: Mapped[datetime | None] = mapped_column(DateTime)
    left_at: Mapped[datetime | None] = mapped_column(DateTime)


# --------------------------------------------------------------------------- SQL text
_NOW = {"sqlite": "strftime('%Y-%m-%d %H:%M:%f', 'now')",
        "postgresql": "(clock_timestamp() AT TIME ZONE 'UTC')"}
_CUTOFF = {"sqlite": "strftime('%Y-%m-%d %H:%M:%f', 'now', :age)",
           "postgresql": "((clock_timestamp() AT TIME ZONE 'UTC') "
                         "- make_interval(secs => CAST(:stale AS double precision)))"}
# Claimable: the first queued trial by seq, or the first running one with no sign of life
# (claim and worker heartbeat) since the cutoff, whichever comes first.  Two ordered index
# lookups on (study_id, state, seq), so a claim costs the same in a study of 10 or 100,000
# trials (one scan ordered by seq would walk every finished trial first).
_QUEUED = """SELECT t.id, t.seq FROM study_trials t WHERE t.study_id = :sid
    AND t.state = 'queued'{keys} ORDER BY t.seq LIMIT 1"""
_STALE = """SELECT t.id, t.seq FROM study_trials t LEFT JOIN study_workers w
    ON w.study_id = t.study_id AND w.worker = t.worker
    WHERE t.study_id = :sid AND t.state = 'running'{keys} AND t.claimed_at < {cutoff}
    AND (w.heartbeat_at IS NULL OR w.heartbeat_at < {cutoff} OR w.left_at IS NOT NULL)
    ORDER BY t.seq LIMIT 1"""
_TAKE = """state = 'running', worker = :worker, attempts = {t}attempts + 1, claimed_at = {now},
    finished_at = NULL, metric = NULL, error = NULL, run_id = NULL"""


# PostgreSQL: a claim's commit need not wait for the WAL flush.  If the server crashes and
# loses a claim, the trial is claimable again and the old holder's report is refused (its
# worker or attempt no longer match): a re-run, never a double record.  Reports, which
# carry results, stay durable.  set_config(..., true) lasts for this one autocommit
# transaction, and commit reads it; the CTE is joined so that it runs.
_ASYNC_COMMIT = "a AS (SELECT set_config('synchronous_commit', 'off', true) AS async_commit)"


_RESTRICT = {None: "", "keys": " AND t.key IN :keys", "range": " AND t.seq BETWEEN :lo AND :hi"}


def _pg_pick(queued: str, stale: str) -> str:
    """PostgreSQL: the CTEs ``q`` (queued trials), ``r`` (trials of stale workers) and
    ``c`` (the earlier of the two by ``seq``).  Each candidate row is locked, skipping rows
    other claimers hold, so concurrent claimers never wait for each other."""
    return (f"q AS ({queued} FOR UPDATE SKIP LOCKED), "
            f"r AS ({stale} FOR UPDATE OF t SKIP LOCKED), "
            f"c AS (SELECT id FROM (SELECT id, seq FROM q UNION ALL SELECT id, seq FROM r) u "
            f"ORDER BY seq LIMIT 1)")


def _bind_keys(sql: str, restrict: str | None):
    """``sql`` as a statement; ``:keys`` expands to an ``IN`` list when ``restrict`` is
    ``'keys'``."""
    statement = text(sql)
    if restrict == "keys":
        statement = statement.bindparams(bindparam("keys", expanding=True))
    return statement


def _claim_sql(dialect: str, restrict: str | None, durable: bool = False):
    """The claim ``UPDATE``.  ``durable``: without the asynchronous commit, for a claim
    that shares its transaction with a report (whose commit must wait for the flush);
    it also leaves out the trial ``:reported`` names (the one that transaction reported)."""
    now, cutoff = _NOW[dialect], _CUTOFF[dialect]
    keys = _RESTRICT[restrict]
    if durable:
        keys += " AND t.key <> :reported"
    queued, stale = _QUEUED.format(keys=keys), _STALE.format(keys=keys, cutoff=cutoff)
    if dialect == "postgresql":
        sql = f"WITH {_pg_pick(queued, stale)}"
        take = _TAKE.format(t="s.", now=now)
        if durable:
            sql += f" UPDATE study_trials s SET {take} FROM c WHERE s.id = c.id"
        else:
            sql += f", {_ASYNC_COMMIT} UPDATE study_trials s SET {take} FROM c, a WHERE s.id = c.id"
        sql += " RETURNING s.key, s.attempts, s.payload"
    else:
        sql = (f"UPDATE study_trials SET {_TAKE.format(t='', now=now)} WHERE id = ("
               f"SELECT id FROM (SELECT * FROM ({queued}) UNION ALL SELECT * FROM ({stale})) "
               f"ORDER BY seq LIMIT 1) RETURNING key, attempts, payload")
    return _bind_keys(sql, restrict)


_HELD = ("study_id = :sid AND key = :key AND state = 'running' AND worker = :worker "
         "AND attempts = :attempt")
_REPORT = "state = :status, metric = :metric, error = :error, run_id = :run_id, finished_at = {now}"


def _report_next_sql(restrict: str | None):
    """PostgreSQL: ``report_and_claim`` as one statement, one round trip and one durable
    commit.  Every part sees the snapshot taken before the statement, where the reported
    trial still looks running: the claim leaves it out by key (a statement must not
    update a row twice)."""
    now, cutoff = _NOW["postgresql"], _CUTOFF["postgresql"]
    keys = _RESTRICT[restrict] + " AND t.key <> :key"
    queued, stale = _QUEUED.format(keys=keys), _STALE.format(keys=keys, cutoff=cutoff)
    sql = (f"WITH p AS (UPDATE study_trials SET {_REPORT.format(now=now)} WHERE {_HELD} "
           f"RETURNING id), {_pg_pick(queued, stale)}, "
           f"n AS (UPDATE study_trials s SET {_TAKE.format(t='s.', now=now)} FROM c "
           f"WHERE s.id = c.id RETURNING s.key, s.attempts, s.payload) "
           f"SELECT n.key, n.attempts, n.payload, (SELECT COUNT(*) FROM p) "
           f"FROM (SELECT 1) o LEFT JOIN n ON TRUE")
    return _bind_keys(sql, restrict)


def _statements(dialect: str) -> dict:
    now = _NOW[dialect]
    held = _HELD
    pg = dialect == "postgresql"
    return {
        "report_next": _report_next_sql(None) if pg else None,
        "report_next_keys": _report_next_sql("keys") if pg else None,
        "report_next_range": _report_next_sql("range") if pg else None,
        "claim": _claim_sql(dialect, None),
        "claim_keys": _claim_sql(dialect, "keys"),
        "claim_range": _claim_sql(dialect, "range"),
        "claim_next": _claim_sql(dialect, None, durable=True),
        "claim_next_keys": _claim_sql(dialect, "keys", durable=True),
        "claim_next_range": _claim_sql(dialect, "range", durable=True),
        "key_range": text("SELECT MIN(seq), MAX(seq), COUNT(*) FROM study_trials "
                          "WHERE study_id = :sid AND key IN :keys").bindparams(
            bindparam("keys", expanding=True)),
        "report": text(f"UPDATE study_trials SET {_REPORT.format(now=now)} WHERE {held}"),
        # a completed result from a claim taken for dead (its worker stopped past
        # stale_after) while the trial is still being run again, unreported: the result
        # is kept and the re-run's report is refused (the row is no longer its claim)
        "late_report": text(f"UPDATE study_trials SET {_REPORT.format(now=now)}, "
                            f"worker = :worker WHERE study_id = :sid AND key = :key "
                            f"AND state = 'running' AND attempts > :attempt"),
        "release": text(f"UPDATE study_trials SET state = 'queued', worker = NULL, "
                        f"claimed_at = NULL WHERE {held}"),
        "requeue_failed": text("UPDATE study_trials SET state = 'queued', worker = NULL, "
                               "attempts = 0, metric = NULL, error = NULL, run_id = NULL, "
                               "claimed_at = NULL, finished_at = NULL "
                               "WHERE study_id = :sid AND state = 'failed'"),
        # a hand-back: the claim did not end the trial, so it is no attempt
        "hand_back": text(f"UPDATE study_trials SET state = 'queued', worker = NULL, "
                          f"claimed_at = NULL, attempts = attempts - 1 WHERE {held}"),
        # a heartbeat lost in a server crash is harmless: no WAL flush to wait for
        "heartbeat": text(f"WITH {_ASYNC_COMMIT} UPDATE study_workers "
                          f"SET heartbeat_at = {now}, left_at = NULL FROM a "
                          f"WHERE study_id = :sid AND worker = :worker"
                          if dialect == "postgresql" else
                          f"UPDATE study_workers SET heartbeat_at = {now}, left_at = NULL "
                          f"WHERE study_id = :sid AND worker = :worker"),
        "join": text(f"""INSERT INTO study_workers (study_id, worker, host, pid, meta, joined_at,
                         heartbeat_at, left_at) VALUES (:sid, :worker, :host, :pid, :meta,
                         {now}, {now}, NULL)
                         ON CONFLICT (study_id, worker) DO UPDATE SET host = excluded.host,
                         pid = excluded.pid, meta = excluded.meta, joined_at = excluded.joined_at,
                         heartbeat_at = excluded.heartbeat_at, left_at = NULL"""),
        "leave": text(f"UPDATE study_workers SET left_at = {now} "
                      f"WHERE study_id = :sid AND worker = :worker"),
        "leave_trials": text("UPDATE study_trials SET state = 'queued', worker = NULL, "
                             "claimed_at = NULL, attempts = attempts - 1 "
                             "WHERE study_id = :sid AND worker = :worker "
                             "AND state = 'running'"),
        "create": text(f"INSERT INTO studies (name, meta, created_at) VALUES (:name, :meta, "
                       f"{now}) ON CONFLICT (name) DO NOTHING"),
        "study": text("SELECT id, name, meta, created_at FROM studies WHERE name = :name"),
        "fill_meta": text("UPDATE studies SET meta = :meta WHERE name = :name AND meta = '{}'"),
        "lock_study": text("SELECT id FROM studies WHERE id = :sid FOR NO KEY UPDATE"
                           if dialect == "postgresql" else "SELECT id FROM studies WHERE id = :sid"),
        "max_seq": text("SELECT MAX(seq) FROM study_trials WHERE study_id = :sid"),
        "existing": text("SELECT key FROM study_trials WHERE study_id = :sid AND key IN :keys"
                         ).bindparams(bindparam("keys", expanding=True)),
        "insert": text(f"INSERT INTO study_trials (study_id, key, seq, state, payload, attempts, "
                       f"enqueued_at) VALUES (:sid, :key, :seq, 'queued', :payload, 0, {now})"),
        "trials": text(_TRIALS + " ORDER BY t.seq"),
        "trials_keys": text(_TRIALS + " AND t.key IN :keys ORDER BY t.seq").bindparams(
            bindparam("keys", expanding=True)),
        "workers": text(f"""SELECT worker, host, pid, meta, joined_at, heartbeat_at, left_at,
                            CASE WHEN left_at IS NULL AND heartbeat_at >= {_CUTOFF[dialect]}
                            THEN 1 ELSE 0 END FROM study_workers WHERE study_id = :sid
                            ORDER BY joined_at, worker"""),
    }


_TRIALS = """SELECT t.key, t.seq, t.state, t.payload, t.metric, t.error, t.worker, w.host,
    t.attempts, t.run_id, t.claimed_at, t.finished_at FROM study_trials t
    LEFT JOIN study_workers w ON w.study_id = t.study_id AND w.worker = t.worker
    WHERE t.study_id = :sid"""

_CHUNK = 500  # keys per IN (...) list: below every database's bound-parameter limit
_RANGE_FROM = 8  # from this many keys on, a claim among keys looks for their seq range


def _payload_text(key: str, payload) -> str:
    if not isinstance(payload, dict):
        raise TypeError(f"trial {key!r}: payload must be a dict, not {type(payload).__name__}")
    try:
        return json.dumps(values.encode(payload), allow_nan=False, ensure_ascii=False)
    except (TypeError, ValueError) as e:
        raise TypeError(f"trial {key!r}: payload is not JSON-able ({e})") from None


def _meta_text(meta, what: str) -> str:
    if meta is None:
        meta = {}
    if not isinstance(meta, dict):
        raise TypeError(f"{what} meta must be a dict, not {type(meta).__name__}")
    try:
        return json.dumps(values.encode(meta), allow_nan=False, ensure_ascii=False)
    except (TypeError, ValueError) as e:
        raise TypeError(f"{what} meta is not JSON-able ({e})") from None


def _time(value) -> datetime | None:
    if value is None or isinstance(value, datetime):
        return value
    return datetime.fromisoformat(str(value))


def _metric_in(dialect: str, metric):
    if metric is None:
        return None
    if isinstance(metric, bool) or not isinstance(metric, (int, float)):
        try:
            metric = float(metric)
        except (TypeError, ValueError):
            raise TypeError(f"metric must be a number or None, not {metric!r}") from None
    metric = float(metric)
    if math.isnan(metric) and dialect == "sqlite":
        return values.SQLITE_NAN
    return metric


# --------------------------------------------------------------------------- coordinator
class SQLCoordinator:
    """:class:`ato.tracking.StudyCoordinator` on an SQLAlchemy URL (SQLite, PostgreSQL).

    ``SQLCoordinator(config)`` needs ``config.experiment.sql.db_path``; like a logger it
    creates a missing SQLite file and migrates the schema.  It shares the process's one
    engine for the URL (:func:`ato.db_routers.sql.engine.get_engine`) and takes a pooled
    connection per call, so any number of coordinators and threads hold at most the
    pool's connections.  Safe across threads, processes and (after ``fork``) children.

    ``readonly=True`` (``ato search status``) opens the reader engine instead: nothing is
    created, migrated or written, a database without the study tables reads as empty, and
    the writing members raise :class:`ato.errors.AtoError`.

    Errors: :class:`ato.db_routers.sql.engine.TrackerUnavailableError` when the database
    cannot be opened (for ``readonly``, also when the SQLite file is missing);
    ``ValueError`` for a dialect other than SQLite and PostgreSQL."""

    def __init__(self, config, readonly: bool = False):
        from sqlalchemy import inspect

        from ato.db_routers.sql.engine import ensure_schema, open_engine
        from ato.db_routers.sql.logger import tracker_url

        self.url = tracker_url(config)
        self.readonly = bool(readonly)
        self.engine = open_engine(self.url, readonly=self.readonly)
        self.dialect = self.engine.dialect.name
        if self.dialect not in _NOW:
            raise ValueError(f"study coordination needs SQLite or PostgreSQL, not "
                             f"{self.dialect} ({self.url})")
        if self.readonly:
            with self.engine.connect() as conn:
                self._tables = "study_trials" in inspect(conn).get_table_names()
        else:
            ensure_schema(self.engine)
            self._tables = True
        self._sql = _statements(self.dialect)
        self._ids: dict[str, int] = {}
        self._ranges: dict[tuple, tuple[int, int]] = {}
        self._pid = os.getpid()
        self._lock = threading.Lock()
        self._closed = False

    def __repr__(self):
        from ato.db_routers.sql.engine import display_url

        return f"SQLCoordinator({display_url(self.url)!r})"

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()

    # ------------------------------------------------------------------ plumbing
    def _check_process(self) -> None:
        if self._closed:
            raise RuntimeError(f"{self!r} is closed")
        if os.getpid() != self._pid:
            with self._lock:
                if os.getpid() != self._pid:
                    # a forked child must not use the parent's pooled connections
                    self.engine.dispose(close=False)
                    self._pid = os.getpid()

    def _writable(self) -> None:
        if self.readonly:
            from ato.errors import AtoError

            raise AtoError(f"{self!r} was opened read-only: it cannot change a study")

    @contextmanager
    def _write(self, transaction: bool = True):
        """One write transaction: ``BEGIN IMMEDIATE`` on SQLite (the write lock up front,
        waiting up to the busy timeout), an ordinary transaction on PostgreSQL — or, with
        ``transaction=False`` on PostgreSQL, autocommit, for callers whose every statement
        is atomic on its own (a claim is one ``UPDATE``): two round trips fewer."""
        self._check_process()
        self._writable()
        with self.engine.connect() as conn:
            if self.dialect == "postgresql" and not transaction:
                yield conn.execution_options(isolation_level="AUTOCOMMIT")
            elif self.dialect == "sqlite":
                conn.exec_driver_sql("BEGIN IMMEDIATE")
                try:
                    yield conn
                except BaseException:
                    conn.exec_driver_sql("ROLLBACK")
                    raise
                conn.exec_driver_sql("COMMIT")
            else:
                with conn.begin():
                    yield conn

    def _retry(self, fn):
        from ato.db_routers.sql.engine import retry

        return retry(fn)

    @contextmanager
    def _read(self):
        self._check_process()
        with self.engine.connect() as conn:
            yield conn

    def _sid(self, study: str, create: bool) -> int | None:
        """The study's id (cached), creating the study first — in a transaction of its own,
        committed before any caller's transaction starts — when ``create``.  Only committed
        rows are cached and locked, so a study row another transaction is still creating
        is never mistaken for one that can be locked."""
        sid = self._ids.get(study)
        if sid is not None:
            return sid
        if not self._tables:
            return None  # read-only on a database older than the study tables
        with self._read() as conn:
            row = conn.execute(self._sql["study"], {"name": study}).first()
        if row is None:
            if not create:
                return None

            def run():
                with self._write(transaction=False) as conn:
                    conn.execute(self._sql["create"], {"name": study, "meta": "{}"})

            self._retry(run)
            with self._read() as conn:
                row = conn.execute(self._sql["study"], {"name": study}).first()
        self._ids[study] = int(row[0])
        return int(row[0])

    def _lock_study(self, conn, sid: int) -> None:
        """PostgreSQL: hold the study row until commit (enqueuers and proposers one at a
        time); SQLite: the immediate transaction already excludes every other writer."""
        if conn.execute(self._sql["lock_study"], {"sid": sid}).first() is None:
            raise RuntimeError(f"study id {sid} vanished from {self.url}")

    # ------------------------------------------------------------------ studies
    def create_study(self, study: str, meta: dict | None = None) -> dict:
        self._writable()
        check_study(study)
        meta_text = _meta_text(meta, "study")

        def run():
            with self._write() as conn:
                conn.execute(self._sql["create"], {"name": study, "meta": meta_text})
                # a study created implicitly (join, enqueue) has no meta yet: this is the first
                conn.execute(self._sql["fill_meta"], {"name": study, "meta": meta_text})

        self._retry(run)
        return self.get_study(study)

    def replace_unstarted(self, study: str, meta: dict, *, stale_after: float = 60.0) -> bool:
        """Give ``study`` the ``meta`` of another search when it never started: no trial
        of it was ever claimed (every trial queued, no attempt) and no worker is in it (none
        with a heartbeat within ``stale_after`` seconds that has not left).  Its queued
        trials, planned under the old meta, are removed.  ``True`` iff replaced (one
        transaction, under the study lock); ``False`` for an unknown study or one that
        started.  Beyond the :class:`ato.tracking.StudyCoordinator` protocol: what lets a
        worker restart a study that only a mistaken search created."""
        self._writable()
        check_study(study)
        meta_text = _meta_text(meta, "study")
        stale = check_stale_after(stale_after)
        sid = self._sid(study, create=False)
        if sid is None:
            return False

        def run():
            with self._write() as conn:
                self._lock_study(conn, sid)
                started = conn.execute(text(
                    "SELECT COUNT(*) FROM study_trials WHERE study_id = :sid "
                    "AND (state <> 'queued' OR attempts > 0)"), {"sid": sid}).scalar()
                alive = sum(1 for r in conn.execute(self._sql["workers"], self._age(sid, stale))
                            if r[7])
                if started or alive:
                    return False
                conn.execute(text("DELETE FROM study_trials WHERE study_id = :sid"), {"sid": sid})
                conn.execute(text("UPDATE studies SET meta = :meta WHERE id = :sid"),
                             {"meta": meta_text, "sid": sid})
                return True

        self._ranges.clear()
        return self._retry(run)

    def stop_study(self, study: str, reason: dict) -> dict | None:
        """Record in ``study``'s meta (entry ``"stopped"``) that a worker stopped it
        (fail_fast), with ``reason`` (JSON-able: who, the first failure...), unless it is
        stopped already; returns the stop record the study holds (the first one), or
        ``None`` for an unknown study.  One transaction under the study lock; no schema
        change: the meta column is JSON text.  :meth:`requeue_failed` clears it.  Every
        worker reads it with :meth:`get_study` and stops."""
        self._writable()
        check_study(study)
        reason_text = _meta_text(reason, "stop")
        sid = self._sid(study, create=False)
        if sid is None:
            return None

        def run():
            with self._write() as conn:
                self._lock_study(conn, sid)
                held = values.loads(conn.execute(text("SELECT meta FROM studies WHERE id = :sid"),
                                                 {"sid": sid}).scalar()) or {}
                if isinstance(held.get("stopped"), dict):
                    return held["stopped"]
                held["stopped"] = values.loads(reason_text)
                conn.execute(text("UPDATE studies SET meta = :meta WHERE id = :sid"),
                             {"meta": _meta_text(held, "study"), "sid": sid})
                return held["stopped"]

        return self._retry(run)

    def _unstop(self, conn, sid: int) -> None:
        """Clear the ``"stopped"`` entry of a study's meta (inside a write transaction)."""
        held = values.loads(conn.execute(text("SELECT meta FROM studies WHERE id = :sid"),
                                         {"sid": sid}).scalar()) or {}
        if held.pop("stopped", None) is not None:
            conn.execute(text("UPDATE studies SET meta = :meta WHERE id = :sid"),
                         {"meta": _meta_text(held, "study"), "sid": sid})

    def get_study(self, study: str) -> dict | None:
        check_study(study)
        if not self._tables:
            return None
        with self._read() as conn:
            row = conn.execute(self._sql["study"], {"name": study}).first()
        if row is None:
            return None
        self._ids.setdefault(study, int(row[0]))
        return {"study": row[1], "meta": values.loads(row[2]) or {},
                "created_at": _time(row[3])}

    def study_names(self) -> list[str]:
        """Every study in the store, by name (for ``ato search list`` and suggestions)."""
        if not self._tables:
            return []
        with self._read() as conn:
            return [r[0] for r in conn.execute(text("SELECT name FROM studies ORDER BY name"))]

    # ------------------------------------------------------------------ workers
    def join(self, study: str, worker: str, host: str, pid: int,
             meta: dict | None = None) -> None:
        self._writable()
        check_study(study)
        worker = _name(worker, "worker")
        params = {"worker": worker, "host": None if host is None else str(host),
                  "pid": None if pid is None else int(pid), "meta": _meta_text(meta, "worker")}

        params["sid"] = self._sid(study, create=True)

        def run():
            with self._write() as conn:
                conn.execute(self._sql["join"], params)

        self._retry(run)

    def heartbeat(self, study: str, worker: str) -> None:
        self._writable()
        check_study(study)
        worker = _name(worker, "worker")

        sid = self._sid(study, create=True)

        def run():
            with self._write(transaction=False) as conn:
                updated = conn.execute(self._sql["heartbeat"], {"sid": sid, "worker": worker})
                if updated.rowcount == 0:  # a worker that never joined: record it now
                    conn.execute(self._sql["join"], {"sid": sid, "worker": worker, "host": None,
                                                     "pid": None, "meta": "{}"})

        self._retry(run)

    def leave(self, study: str, worker: str) -> None:
        self._writable()
        check_study(study)
        worker = _name(worker, "worker")

        sid = self._sid(study, create=False)
        if sid is None:
            return

        def run():
            with self._write() as conn:
                conn.execute(self._sql["leave_trials"], {"sid": sid, "worker": worker})
                conn.execute(self._sql["leave"], {"sid": sid, "worker": worker})

        self._retry(run)

    def workers(self, study: str, *, stale_after: float = 60.0) -> list[dict]:
        check_study(study)
        stale = check_stale_after(stale_after)
        sid = self._sid(study, create=False)
        if sid is None:
            return []
        with self._read() as conn:
            rows = conn.execute(self._sql["workers"], self._age(sid, stale)).all()
        return [{"worker": r[0], "host": r[1], "pid": r[2], "meta": values.loads(r[3]) or {},
                 "joined_at": _time(r[4]), "heartbeat_at": _time(r[5]), "left_at": _time(r[6]),
                 "alive": bool(r[7])} for r in rows]

    def _age(self, sid: int, stale: float) -> dict:
        if self.dialect == "sqlite":
            return {"sid": sid, "age": f"-{stale!r} seconds"}
        return {"sid": sid, "stale": stale}

    # ------------------------------------------------------------------ trials
    def enqueue(self, study: str, trials: Sequence[TrialSpec]) -> None:
        self._writable()
        check_study(study)
        rows, seen = [], set()
        for spec in trials:
            if not isinstance(spec, TrialSpec):
                raise TypeError(f"enqueue takes TrialSpec objects, not {type(spec).__name__}")
            key = _name(spec.key, "trial key")
            if key in seen:
                continue
            seen.add(key)
            rows.append((key, _payload_text(key, spec.payload)))
        if not rows:
            return
        sid = self._sid(study, create=True)

        def run():
            with self._write() as conn:
                self._enqueue(conn, sid, rows)

        self._retry(run)

    def _enqueue(self, conn, sid: int, rows: list[tuple[str, str]]) -> None:
        self._lock_study(conn, sid)
        existing = set()
        for i in range(0, len(rows), _CHUNK):
            keys = [k for k, _ in rows[i:i + _CHUNK]]
            existing.update(r[0] for r in conn.execute(self._sql["existing"],
                                                       {"sid": sid, "keys": keys}))
        new = [(k, p) for k, p in rows if k not in existing]
        if not new:
            return
        top = conn.execute(self._sql["max_seq"], {"sid": sid}).scalar()
        start = -1 if top is None else int(top)
        conn.execute(self._sql["insert"], [{"sid": sid, "key": k, "seq": start + 1 + i,
                                            "payload": p} for i, (k, p) in enumerate(new)])

    def claim(self, study: str, worker: str, keys: Sequence[str] | None = None, *,
              stale_after: float = 60.0) -> Claim | None:
        self._writable()
        check_study(study)
        worker = _name(worker, "worker")
        stale = check_stale_after(stale_after)
        keys = None if keys is None else [str(k) for k in keys]
        if keys is not None and not keys:
            return None
        sid = self._sid(study, create=False)
        if sid is None:
            return None

        def run():
            with self._write(transaction=False) as conn:
                return self._claim(conn, study, sid, worker, keys, stale)

        return self._retry(run)

    def _claim(self, conn, study: str, sid: int, worker: str, keys, stale: float,
               reported: str | None = None) -> Claim | None:
        """Claim in ``conn``'s transaction; ``reported``: the key that transaction just
        reported (never claimed here; the claim's commit is then the report's, durable)."""
        params = {**self._age(sid, stale), "worker": worker}
        one, many, span = "claim", "claim_keys", "claim_range"
        if reported is not None:
            one, many, span = "claim_next", "claim_next_keys", "claim_next_range"
            params["reported"] = reported
        seqs = self._range(conn, sid, keys)
        if keys is None:
            row = conn.execute(self._sql[one], params).first()
        elif seqs is not None:
            row = conn.execute(self._sql[span], {**params, "lo": seqs[0], "hi": seqs[1]}).first()
        elif len(keys) <= _CHUNK:
            row = conn.execute(self._sql[many], {**params, "keys": keys}).first()
        else:
            row = self._claim_many(conn, params, keys, many)
        if row is None:
            return None
        return Claim(study=study, key=row[0], attempt=int(row[1]), worker=worker,
                     payload=values.loads(row[2]))

    def _range(self, conn, sid: int, keys) -> tuple[int, int] | None:
        """``(first, last)`` seq when ``keys`` are exactly the study's trials with a seq in
        that range (a batch enqueued at once), so that a claim among them is a range of
        the claim index instead of a list of keys to send, parse and match on every
        claim.  Known once every key is in the study; cached, since a trial's seq never
        changes and trials are never removed.  ``None`` for a short list or another set."""
        if keys is None or len(keys) < _RANGE_FROM:
            return None
        cache = (sid, tuple(keys))
        seqs = self._ranges.get(cache)
        if seqs is not None:
            return seqs
        unique = list(dict.fromkeys(keys))
        lo, hi, n = None, None, 0
        for i in range(0, len(unique), _CHUNK):
            a, b, c = conn.execute(self._sql["key_range"],
                                   {"sid": sid, "keys": unique[i:i + _CHUNK]}).one()
            if c:
                lo, hi, n = (a if lo is None else min(lo, a)), (b if hi is None else max(hi, b)), n + c
        if n != len(unique) or hi - lo + 1 != n:
            return None
        if len(self._ranges) >= 256:  # one entry per batch; old batches are done
            self._ranges.clear()
        self._ranges[cache] = (int(lo), int(hi))
        return self._ranges[cache]

    def _claim_many(self, conn, params: dict, keys: list[str], statement: str):
        """More keys than one IN list holds: the first claimable by seq among all chunks."""
        wanted = set(keys)
        sid = params["sid"]
        states = conn.execute(self._sql["trials"], {"sid": sid}).all()
        ordered = [r[0] for r in states if r[0] in wanted]
        for i in range(0, len(ordered), _CHUNK):
            row = conn.execute(self._sql[statement],
                               {**params, "keys": ordered[i:i + _CHUNK]}).first()
            if row is not None:
                return row
        return None

    def claim_or_propose(self, study: str, worker: str,
                         propose: Callable[[list[TrialState]], Sequence[TrialSpec]], *,
                         stale_after: float = 60.0) -> Claim | None:
        self._writable()
        check_study(study)
        worker = _name(worker, "worker")
        stale = check_stale_after(stale_after)
        if not callable(propose):
            raise TypeError(f"propose must be callable, not {type(propose).__name__}")

        sid = self._sid(study, create=True)

        def run():
            with self._write() as conn:
                self._lock_study(conn, sid)
                claim = self._claim(conn, study, sid, worker, None, stale)
                if claim is not None:
                    return claim
                states = self._states(conn, sid, None)
                rows, seen = [], {s.key for s in states}
                for spec in propose(states) or ():
                    if not isinstance(spec, TrialSpec):
                        raise TypeError(f"propose must return TrialSpec objects, not "
                                        f"{type(spec).__name__}")
                    key = _name(spec.key, "trial key")
                    if key not in seen:
                        seen.add(key)
                        rows.append((key, _payload_text(key, spec.payload)))
                if not rows:
                    return None
                self._enqueue(conn, sid, rows)
                return self._claim(conn, study, sid, worker, None, stale)

        return self._retry(run)

    def report(self, claim: Claim, status: str, metric: float | None = None,
               error: str | None = None, run_id: int | None = None) -> bool:
        params = self._report_params(claim, status, metric, error, run_id, "report")
        return self._guarded(claim, "report", params)

    def report_late(self, claim: Claim, metric: float | None = None,
                    run_id: int | None = None) -> bool:
        """Record the completed result of a claim that no longer holds its trial, because
        its worker was taken for dead (stopped past ``stale_after``) and a later claim
        runs the trial again: ``True`` iff that later claim has not reported yet (the
        trial is still running), and then this result is the trial's (worker and metric
        this claim's) and the later claim's report is refused.  ``False`` (nothing
        written) when the trial was already reported — completed, or failed (also
        ``WorkerDiedError``): other workers may have read it as done — so a trial has one
        result, whoever's it is.  For :meth:`report` refused it; beyond the
        :class:`ato.tracking.StudyCoordinator` protocol (a worker calls it when the
        coordinator has it)."""
        params = self._report_params(claim, "completed", metric, None, run_id, "report_late")
        return self._guarded(claim, "late_report", params)

    def _report_params(self, claim, status, metric, error, run_id, member: str) -> dict:
        if status not in REPORT_STATUSES:
            raise ValueError(f"status must be one of {', '.join(REPORT_STATUSES)}, "
                             f"not {status!r}")
        _check_claim(claim, member)
        return {"key": claim.key, "worker": claim.worker, "attempt": int(claim.attempt),
                "status": status, "metric": _metric_in(self.dialect, metric),
                "error": None if error is None else str(error),
                "run_id": None if run_id is None else int(run_id)}

    def report_and_claim(self, claim: Claim, status: str, metric: float | None = None,
                         error: str | None = None, run_id: int | None = None,
                         keys: Sequence[str] | None = None, *, stale_after: float = 60.0
                         ) -> tuple[bool, Claim | None]:
        """The report's ``UPDATE`` and the next claim's in one transaction (one durable
        commit: on PostgreSQL the claim's asynchronous commit is not used here)."""
        self._writable()
        params = self._report_params(claim, status, metric, error, run_id, "report_and_claim")
        stale = check_stale_after(stale_after)
        keys = None if keys is None else [str(k) for k in keys]
        sid = self._sid(claim.study, create=False)
        if sid is None:
            return False, None

        params = {**params, **self._age(sid, stale)}
        if self.dialect == "postgresql" and (keys is None or keys):
            return self._retry(lambda: self._report_next(claim, sid, params, keys, stale))

        def run():
            with self._write() as conn:
                accepted = conn.execute(self._sql["report"], params).rowcount == 1
                if keys is not None and not keys:
                    return accepted, None
                return accepted, self._claim(conn, claim.study, sid, claim.worker, keys, stale,
                                             reported=claim.key)

        return self._retry(run)

    def _report_next(self, claim: Claim, sid: int, params: dict, keys, stale: float
                     ) -> tuple[bool, Claim | None]:
        """PostgreSQL: the whole step as one autocommit statement (for a long list of keys
        that are no seq range: a transaction of the report and :meth:`_claim`)."""
        with self._write(transaction=False) as conn:
            seqs = self._range(conn, sid, keys)
            if keys is None:
                row = conn.execute(self._sql["report_next"], params).one()
            elif seqs is not None:
                row = conn.execute(self._sql["report_next_range"],
                                   {**params, "lo": seqs[0], "hi": seqs[1]}).one()
            elif len(keys) <= _CHUNK:
                row = conn.execute(self._sql["report_next_keys"], {**params, "keys": keys}).one()
            else:
                row = None
        if row is None:
            with self._write() as conn:
                accepted = conn.execute(self._sql["report"], params).rowcount == 1
                return accepted, self._claim(conn, claim.study, sid, claim.worker, keys, stale,
                                             reported=claim.key)
        following = None if row[0] is None else Claim(
            study=claim.study, key=row[0], attempt=int(row[1]), worker=claim.worker,
            payload=values.loads(row[2]))
        return int(row[3]) == 1, following

    def requeue_failed(self, study: str, *, forget: bool = False) -> int:
        """Put every ``failed`` trial of ``study`` back in the queue with no attempts, so
        the next workers run them again (after the cause was fixed); returns how many.
        ``forget=True`` removes them instead, for an algorithm that proposes its trials
        from the study's history (ASHA): it then proposes them again, interleaved with its
        promotions as in a fresh study, instead of finding its trial budget spent on a
        queue of re-runs.  ``0`` for an unknown study.  What ``ato search requeue STUDY
        --failed`` does.  A study stopped by fail_fast (:meth:`stop_study`) runs again:
        the stop is cleared in the same transaction."""
        self._writable()
        check_study(study)
        sid = self._sid(study, create=False)
        if sid is None:
            return 0
        statement = text("DELETE FROM study_trials WHERE study_id = :sid AND state = 'failed'"
                         ) if forget else self._sql["requeue_failed"]

        def run():
            with self._write() as conn:
                self._lock_study(conn, sid)
                self._unstop(conn, sid)
                return int(conn.execute(statement, {"sid": sid}).rowcount)

        return self._retry(run)

    def release(self, claim: Claim, *, counted: bool = True) -> bool:
        """Give the trial back to the queue; ``True`` iff ``claim`` still held it.
        ``counted``: the claim stays an attempt (a retry after an exception); ``False``
        for a hand-back that did not end the trial (Ctrl-C, SIGTERM), so the next claim
        has the same ``attempt`` number (a worker caps attempts at ``retries + 1``, and
        counts claims of a dead worker's trial among them)."""
        _check_claim(claim, "release")
        return self._guarded(claim, "release" if counted else "hand_back",
                             {"key": claim.key, "worker": claim.worker,
                              "attempt": int(claim.attempt)})

    def _guarded(self, claim: Claim, statement: str, params: dict) -> bool:
        self._writable()
        sid = self._sid(claim.study, create=False)
        if sid is None:
            return False

        def run():
            with self._write(transaction=False) as conn:
                return conn.execute(self._sql[statement], {**params, "sid": sid}).rowcount == 1

        return self._retry(run)

    def trials(self, study: str, keys: Sequence[str] | None = None) -> list[TrialState]:
        check_study(study)
        sid = self._sid(study, create=False)
        if sid is None:
            return []
        with self._read() as conn:
            return self._states(conn, sid, None if keys is None else [str(k) for k in keys])

    def _states(self, conn, sid: int, keys) -> list[TrialState]:
        if keys is None:
            rows = conn.execute(self._sql["trials"], {"sid": sid}).all()
        else:
            rows = []
            for i in range(0, len(keys), _CHUNK):
                rows += conn.execute(self._sql["trials_keys"],
                                     {"sid": sid, "keys": keys[i:i + _CHUNK]}).all()
            rows.sort(key=lambda r: r[1])
        return [TrialState(key=r[0], seq=int(r[1]), state=r[2], payload=values.loads(r[3]),
                           metric=values.as_float(r[4]), error=r[5], worker=r[6], host=r[7],
                           attempts=int(r[8]), run_id=r[9], claimed_at=_time(r[10]),
                           finished_at=_time(r[11])) for r in rows]

    def close(self) -> None:
        """Forget this coordinator's study ids; the engine (one per URL and process)
        keeps its pool for the process's other users."""
        self._closed = True
        self._ids.clear()


def _check_claim(claim, member: str) -> None:
    if not isinstance(claim, Claim):
        raise TypeError(f"{member} takes the Claim that claim() returned, not "
                        f"{type(claim).__name__}")


def _name(value, what: str) -> str:
    if not isinstance(value, str) or not value:
        raise ValueError(f"a {what} must be a non-empty string, not {value!r}")
    if len(value) > 255:
        raise ValueError(f"a {what} is at most 255 characters, not {len(value)} ({value[:40]!r}…)")
    return value


__all__ = ["SQLCoordinator", "Study", "StudyTrial", "StudyWorker"]
