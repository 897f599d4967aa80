"""Engines, SQLite settings, retries and schema migrations.

SQLite runs in WAL mode with a busy timeout, and every write transaction is retried when
the file is locked, so many processes can share one file.  Schema creation and upgrades
run under a lock (``BEGIN IMMEDIATE`` on SQLite, an advisory lock on PostgreSQL), so
processes that start together on a missing file agree on one schema.
"""

from __future__ import annotations

import os
import random
import threading
import time

from sqlalchemy import create_engine, event, inspect, text
from sqlalchemy.engine import Engine, make_url
from sqlalchemy.exc import OperationalError

from ato.db_routers.sql import schema

SCHEMA_VERSION = 2
BUSY_TIMEOUT_MS = 60_000
_ADVISORY_LOCK = 7_312_001  # any constant shared by every Ato process

_engines: dict[str, Engine] = {}
_engines_lock = threading.Lock()


def get_engine(url: str) -> Engine:
    """One engine per URL and process; SQLite files get WAL and a busy timeout."""
    with _engines_lock:
        engine = _engines.get(url)
        if engine is None:
            engine = _create(url)
            _engines[url] = engine
        return engine


def forget_engine(url: str) -> None:
    """Dispose of the cached engine for ``url`` (its connections are closed)."""
    with _engines_lock:
        engine = _engines.pop(url, None)
    if engine is not None:
        engine.dispose()


def _create(url: str) -> Engine:
    parsed = make_url(url)
    if parsed.get_backend_name() == "sqlite":
        database = parsed.database
        if database and database != ":memory:":
            parent = os.path.dirname(os.path.abspath(database))
            os.makedirs(parent, exist_ok=True)
        engine = create_engine(url, connect_args={"timeout": BUSY_TIMEOUT_MS / 1000,
                                                  "check_same_thread": False})

        @event.listens_for(engine, "connect")
        def _sqlite_settings(dbapi_connection, _record):
            # Transactions are explicit (BEGIN IMMEDIATE for writes); reads autocommit.
            dbapi_connection.isolation_level = None
            cur = dbapi_connection.cursor()
            cur.execute(f"PRAGMA busy_timeout = {BUSY_TIMEOUT_MS}")
            retry(lambda: cur.execute("PRAGMA journal_mode = WAL"))
            cur.execute("PRAGMA synchronous = NORMAL")
            cur.execute("PRAGMA foreign_keys = ON")
            cur.close()

        return engine
    if parsed.get_backend_name() == "postgresql" and parsed.get_driver_name() in ("", "psycopg2"):
        try:
            import psycopg  # noqa: F401

            url = parsed.set(drivername="postgresql+psycopg")
        except ImportError:
            pass
    return create_engine(url, pool_pre_ping=True)


def is_sqlite(engine: Engine) -> bool:
    return engine.dialect.name == "sqlite"


def _is_transient(error: Exception) -> bool:
    message = str(error).lower()
    return any(word in message for word in ("database is locked", "database is busy",
                                            "deadlock detected", "could not serialize",
                                            "database table is locked"))


def retry(fn, attempts: int = 200):
    """Run ``fn`` again (with jittered back-off) while the database is busy."""
    delay = 0.005
    for attempt in range(attempts):
        try:
            return fn()
        except Exception as e:  # sqlite3.OperationalError or SQLAlchemy's wrapper
            if attempt == attempts - 1 or not _is_transient(e):
                raise
            time.sleep(delay * (1 + random.random()))
            delay = min(delay * 2, 0.5)


# --------------------------------------------------------------------------- migrations
def current_version(conn) -> int | None:
    """The recorded schema version, ``None`` for a database without Ato tables, 0 for one
    written by the original Ato (tables but no version record)."""
    names = set(inspect(conn).get_table_names())
    if "ato_schema" in names:
        row = conn.execute(text("SELECT MAX(version) FROM ato_schema")).scalar()
        return int(row or 0)
    return 0 if "experiments" in names else None


def ensure_schema(engine: Engine) -> None:
    """Create or upgrade the schema to :data:`SCHEMA_VERSION`, once, under a lock."""
    with engine.connect() as conn:
        try:
            if current_version(conn) == SCHEMA_VERSION:
                return
        except OperationalError as e:
            if not _is_transient(e):
                raise
    retry(lambda: _migrate_locked(engine))


def _migrate_locked(engine: Engine) -> None:
    if is_sqlite(engine):
        with engine.connect() as conn:
            conn.exec_driver_sql("BEGIN IMMEDIATE")
            try:
                _migrate(conn)
                conn.exec_driver_sql("COMMIT")
            except BaseException:
                conn.exec_driver_sql("ROLLBACK")
                raise
    else:
        with engine.begin() as conn:
            if engine.dialect.name == "postgresql":
                conn.execute(text("SELECT pg_advisory_xact_lock(:k)"), {"k": _ADVISORY_LOCK})
            _migrate(conn)


def _migrate(conn) -> None:
    version = current_version(conn)
    if version == SCHEMA_VERSION:
        return
    # Step 1 (every database): the tables and indexes of the current schema that are missing.
    schema.Base.metadata.create_all(conn, checkfirst=True)
    # Step 2 (databases of the original Ato, version 0): new column, index and summaries.
    if version == 0:
        columns = {c["name"] for c in inspect(conn).get_columns("experiments")}
        if "heartbeat_at" not in columns:
            conn.execute(text("ALTER TABLE experiments ADD COLUMN heartbeat_at TIMESTAMP"))
        indexes = {i["name"] for i in inspect(conn).get_indexes("metrics")}
        if "ix_metrics_run_key_step" not in indexes:
            conn.execute(text("CREATE INDEX ix_metrics_run_key_step ON metrics (run_id, key, step)"))
        _backfill_summaries(conn)
    conn.execute(text("DELETE FROM ato_schema"))
    conn.execute(text("INSERT INTO ato_schema (id, version) VALUES (1, :v)"), {"v": SCHEMA_VERSION})


def _backfill_summaries(conn) -> None:
    conn.execute(text("DELETE FROM metric_summaries"))
    conn.execute(text("""
        INSERT INTO metric_summaries (run_id, key, last_value, last_step, min_value, max_value, count)
        SELECT g.run_id, g.key,
               (SELECT m.value FROM metrics m WHERE m.run_id = g.run_id AND m.key = g.key
                ORDER BY m.step DESC, m.id DESC LIMIT 1),
               g.last_step, g.min_value, g.max_value, g.n
        FROM (SELECT run_id, key, MAX(step) AS last_step, MIN(value) AS min_value,
                     MAX(value) AS max_value, COUNT(*) AS n
              FROM metrics GROUP BY run_id, key) g
    """))
