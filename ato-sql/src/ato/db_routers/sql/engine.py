"""Engines, SQLite settings, retries and schema migrations.

SQLite runs in WAL mode with a busy timeout, and every write transaction is retried when
the file is locked, so many processes can share one file.  Schema creation and upgrades
run under a lock (``BEGIN IMMEDIATE`` on SQLite, an advisory lock on PostgreSQL), so
processes that start together on a missing file agree on one schema.

Loggers open *writer* engines (a missing SQLite file and its directories are created on
purpose).  Finders open *reader* engines: SQLite through a ``mode=ro`` URI (never a write
lock, never a file created; WAL files are read), PostgreSQL in read-only transactions.  A
missing SQLite file, a missing PostgreSQL database, an unreachable server or refused
credentials raise :class:`TrackerUnavailableError` (one line, exit status 2 in ``ato``).
"""

from __future__ import annotations

import os
import random
import sqlite3
import threading
import time
from urllib.parse import quote

from sqlalchemy import create_engine, event, inspect, text
from sqlalchemy.engine import Engine, make_url
from sqlalchemy.exc import DBAPIError, OperationalError

from ato.db_routers.sql import schema
from ato.errors import AtoError

SCHEMA_VERSION = 9
BUSY_TIMEOUT_MS = 60_000
_ADVISORY_LOCK = 7_312_001  # any constant shared by every Ato process

_engines: dict[tuple[str, bool], Engine] = {}
_engines_lock = threading.Lock()


class TrackerUnavailableError(AtoError, OSError):
    """The tracker database cannot be opened: a missing SQLite file (for a finder), a
    missing PostgreSQL database, an unreachable server, refused credentials.  The message
    is one line naming the URL (password hidden) and the reason."""


class NotATrackerError(TrackerUnavailableError):
    """A reader was pointed at a database that holds no Ato tracker tables (an empty or
    foreign SQLite file) or at an in-memory SQLite database: never read as an empty
    tracker (the dashboard refuses the same databases with this error)."""


def display_url(url: str) -> str:
    """``url`` with any password replaced by ``***``."""
    try:
        return make_url(url).render_as_string(hide_password=True)
    except Exception:
        return url


def sqlite_path(url: str) -> str | None:
    """The absolute file path of an SQLite URL; ``None`` for in-memory or other databases."""
    parsed = make_url(url)
    if parsed.get_backend_name() != "sqlite":
        return None
    database = parsed.database
    if not database or database == ":memory:" or database.startswith("file:"):
        return None
    return os.path.abspath(database)


_DRIVER_HINTS = {"mysql": "mysql+pymysql (pip install pymysql)",
                 "mariadb": "mariadb+pymysql (pip install pymysql)",
                 "mssql": "mssql+pyodbc (pip install pyodbc)",
                 "oracle": "oracle+oracledb (pip install oracledb)",
                 "postgresql": "postgresql+psycopg (pip install psycopg)"}


def normalize_url(url: str) -> str:
    """``url`` as SQLAlchemy names it: the scheme ``postgres`` (Heroku's, libpq's) becomes
    ``postgresql`` (``postgres+psycopg://`` too).  Everything else is returned unchanged.
    Raises :class:`TrackerUnavailableError` (one line naming the URL and the fix) for a
    URL SQLAlchemy cannot parse and for a SQLite URL with a host
    (``sqlite://file.db``, two slashes)."""
    from sqlalchemy.exc import ArgumentError

    try:
        parsed = make_url(url)
    except ArgumentError as e:
        raise TrackerUnavailableError(f"cannot read the tracker URL {url!r}: {e}; write "
                                      f"e.g. sqlite:///runs.db or postgresql://user@host/db") from None
    backend, _, driver = parsed.drivername.partition("+")
    if backend == "postgres":
        parsed = parsed.set(drivername="postgresql" + (f"+{driver}" if driver else ""))
        return parsed.render_as_string(hide_password=False)
    if backend == "sqlite" and parsed.host:
        path = parsed.host + (f"/{parsed.database}" if parsed.database else "")
        raise TrackerUnavailableError(
            f"tracker URL {display_url(url)} names a host ({parsed.host!r}), which SQLite "
            f"has not: a file is sqlite:///{path} (relative, three slashes) or "
            f"sqlite:////abs/{path} (absolute, four)")
    return url


def get_engine(url: str, readonly: bool = False) -> Engine:
    """One engine per URL, mode and process; SQLite files get WAL and a busy timeout.

    ``readonly=False`` (loggers) creates a missing SQLite file and its directories;
    ``readonly=True`` (finders) never creates or writes anything.  Neither connects yet:
    :func:`open_engine` does, with clear errors.  Raises :class:`TrackerUnavailableError`
    for a URL that cannot make an engine (:func:`normalize_url`; a driver that is not
    installed)."""
    url = normalize_url(url)
    with _engines_lock:
        engine = _engines.get((url, readonly))
        if engine is None:
            engine = _create(url, readonly)
            _engines[(url, readonly)] = engine
        return engine


def _absolute_hint(url: str, path: str) -> str:
    """When a relative ``sqlite:///tmp/x.db`` names no file but ``/tmp/x.db`` exists: the
    four-slash URL the user probably meant."""
    rest = str(url).partition(":///")[2]
    if not rest or rest.startswith("/") or os.path.isabs(rest):
        return ""
    absolute = "/" + rest.split("?")[0]
    if absolute == path or not os.path.isfile(absolute):
        return ""
    scheme = str(url).partition(":///")[0]
    return (f"; {display_url(url)} is relative to the working directory (three slashes): "
            f"{absolute} exists — did you mean {scheme}:///{absolute}?")


def open_engine(url: str, readonly: bool = False) -> Engine:
    """:func:`get_engine` plus one connection to check that the database is there.

    Raises :class:`TrackerUnavailableError` (nothing created) for a reader pointed at a
    missing SQLite file, and for any database that cannot be reached or opened."""
    url = normalize_url(url)
    path = sqlite_path(url)
    if readonly and path is not None and not os.path.isfile(path):
        where = ("a directory, not a database file" if os.path.isdir(path) else
                 "no such file" if os.path.isdir(os.path.dirname(path)) else "no such directory")
        raise TrackerUnavailableError(
            f"no tracker database at {path} ({where}; from {display_url(url)}): check the path "
            f"(--db, $ATO_DB or experiment.sql.db_path); reading never creates one"
            + _absolute_hint(url, path))
    if readonly and path is None and _in_memory(url):
        raise NotATrackerError(
            f"{url} is an in-memory SQLite database: new and empty in every "
            f"process, it holds no runs to read; pass the file your runs log to "
            f"(--db sqlite:///path/to/experiments.db)")
    if not readonly and path is not None and os.path.isfile(path):
        # a writer's connection turns WAL on: look at an existing file read-only first, so
        # that another tool's database is refused without a byte written to it
        _check_foreign(url)
    engine = get_engine(url, readonly)
    try:
        with engine.connect() as conn:
            kind = tracker_kind(conn)
    except (DBAPIError, sqlite3.Error) as e:
        if _is_transient(e):
            return engine  # busy is not missing; the caller's own retries deal with it
        forget_engine(url, readonly)
        raise TrackerUnavailableError(
            f"cannot open the tracker database {display_url(url)}: {_reason(e)}") from None
    except NotATrackerError:
        forget_engine(url, readonly)
        raise
    if readonly and kind[0] != "ato":
        forget_engine(url, readonly)
        raise not_a_tracker(url, kind[1], reading=True)
    return engine


def _check_foreign(url: str) -> None:
    """Raise :class:`NotATrackerError` when the SQLite file of ``url`` is another tool's
    database with tables named like Ato's, looking at it read-only.  A file that cannot be
    read is left to the writer's own open to report."""
    try:
        with get_engine(url, readonly=True).connect() as conn:
            tracker_kind(conn)
    except (DBAPIError, sqlite3.Error):
        pass
    finally:
        forget_engine(url, readonly=True)


# The original Ato's two tables a tracker cannot be without, and the columns only it gives
# them (MLflow's ``experiments`` has ``experiment_id`` and ``name``, not ``project_id``).
_ORIGINAL_LAYOUT = {"projects": {"id", "name"},
                    "experiments": {"id", "project_id", "config"}}


def tracker_kind(conn) -> tuple[str, list[str]]:
    """What the database behind ``conn`` is, by what only Ato writes: ``('ato', tables)``
    for a tracker (an ``ato_schema`` table, or the original Ato's ``projects`` and
    ``experiments`` with their columns), ``('empty', [])`` for a database without tables,
    ``('other', tables)`` for any other (its tables: nothing of Ato's in it).  Raises
    :class:`NotATrackerError` naming the clashing tables for a foreign database that has
    tables named like Ato's (another tool's ``experiments`` or ``runs``): Ato must never
    read them as its own, nor create its tables beside them."""
    inspector = inspect(conn)
    tables = sorted(inspector.get_table_names())
    if not tables:
        return "empty", []
    if "ato_schema" in tables:
        return "ato", tables
    if all(name in tables and need <= {c["name"] for c in inspector.get_columns(name)}
           for name, need in _ORIGINAL_LAYOUT.items()):
        return "ato", tables
    from ato.db_routers.sql import blocks as _blocks  # noqa: F401 (its tables, in Base)
    from ato.db_routers.sql import studies as _studies  # noqa: F401
    from ato.db_routers.sql.registry import schema as _registry  # noqa: F401

    ours = set(schema.Base.metadata.tables)
    clash = [name for name in tables if name in ours]
    if clash:
        url = conn.engine.url.render_as_string(hide_password=False)
        raise not_a_tracker(url, tables, clash=clash)
    return "other", tables


def not_a_tracker(url: str, tables: list[str], reading: bool = False,
                  clash: list[str] | None = None) -> NotATrackerError:
    """The one-line error for a database that is not an Ato tracker."""
    where = sqlite_path(url)
    name = f"{where} (from {display_url(url)})" if where else display_url(url)
    found = f"its tables: {', '.join(tables)}" if tables else "it has no tables"
    if clash:
        return NotATrackerError(
            f"{name} holds no Ato tracker tables ({found}): another tool's tables are named "
            f"like Ato's ({', '.join(clash)}) and it has no ato_schema record, so Ato neither "
            f"reads them nor adds its tables beside them; pass the database your runs log to "
            f"(or a new one)")
    return NotATrackerError(
        f"{name} holds no Ato tracker tables ({found}): it is not a tracker database, and "
        f"reading never makes one; pass the database your runs log to")


def _in_memory(url: str) -> bool:
    """Whether ``url`` names an in-memory SQLite database (``sqlite://``, ``sqlite:///``,
    ``sqlite:///:memory:``, a ``file::memory:`` or ``mode=memory`` URI)."""
    parsed = make_url(url)
    if parsed.get_backend_name() != "sqlite":
        return False
    database = parsed.database or ""
    return (database in ("", ":memory:") or database.startswith("file::memory:")
            or "mode=memory" in database or parsed.query.get("mode") == "memory")


def _reason(error: Exception) -> str:
    """The database's own one-line reason, without SQLAlchemy's boilerplate."""
    orig = getattr(error, "orig", None) or error
    lines = [line.strip() for line in str(orig).splitlines() if line.strip()]
    lines = [line for line in lines if not line.startswith(("(Background on", "[SQL:"))]
    fatal = [line for line in lines if "FATAL:" in line]
    if fatal:
        return fatal[-1].split("FATAL:", 1)[-1].strip()
    reason = "; ".join(lines) or type(orig).__name__
    return reason.removeprefix("connection failed: ")


def forget_engine(url: str, readonly: bool | None = None) -> None:
    """Dispose of the cached engines for ``url`` (both modes unless ``readonly`` says)."""
    modes = (False, True) if readonly is None else (readonly,)
    try:
        url = normalize_url(url)
    except TrackerUnavailableError:
        return  # never made an engine
    with _engines_lock:
        engines = [_engines.pop((url, mode), None) for mode in modes]
    for engine in engines:
        if engine is not None:
            engine.dispose()


def _create(url: str, readonly: bool) -> Engine:
    from sqlalchemy.exc import ArgumentError, NoSuchModuleError

    try:
        return _create_engine(url, readonly)
    except (ArgumentError, NoSuchModuleError, ImportError) as e:
        backend = make_url(url).get_backend_name()
        fix = (f"install its driver and name it in the scheme, e.g. {_DRIVER_HINTS[backend]}"
               if backend in _DRIVER_HINTS and isinstance(e, ImportError) else
               "check the scheme (sqlite:///runs.db, postgresql://user@host/db)")
        raise TrackerUnavailableError(f"cannot open the tracker database {display_url(url)}: "
                                      f"{_reason(e)}; {fix}") from None


def _create_engine(url: str, readonly: bool) -> Engine:
    parsed = make_url(url)
    if parsed.get_backend_name() == "sqlite":
        path = sqlite_path(url)
        connect_args = {"timeout": BUSY_TIMEOUT_MS / 1000, "check_same_thread": False}
        if readonly and path is not None:
            target = f"file:{quote(path)}?mode=ro"
            engine = create_engine(url, creator=lambda: sqlite3.connect(
                target, uri=True, **connect_args))
        else:
            if path is not None:
                os.makedirs(os.path.dirname(path), exist_ok=True)
            engine = create_engine(url, connect_args=connect_args)

        @event.listens_for(engine, "connect")
        def _sqlite_settings(dbapi_connection, _record):
            # Transactions are explicit (BEGIN IMMEDIATE for writes); reads autocommit.
            dbapi_connection.isolation_level = None
            cur = dbapi_connection.cursor()
            cur.execute(f"PRAGMA busy_timeout = {BUSY_TIMEOUT_MS}")
            if not readonly:
                retry(lambda: cur.execute("PRAGMA journal_mode = WAL"))
                cur.execute("PRAGMA synchronous = NORMAL")
                cur.execute("PRAGMA foreign_keys = ON")
            cur.close()

        return engine
    options = {}
    if parsed.get_backend_name() == "postgresql":
        if parsed.get_driver_name() in ("", "psycopg2"):
            try:
                import psycopg  # noqa: F401

                parsed = parsed.set(drivername="postgresql+psycopg")
            except ImportError:
                pass
        connect_args = {"connect_timeout": 10}
        if readonly:
            connect_args["options"] = "-c default_transaction_read_only=on"
        options["connect_args"] = connect_args
    return create_engine(parsed, pool_pre_ping=True, **options)


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
    kind, names = tracker_kind(conn)  # NotATrackerError for a foreign database named like Ato's
    if "ato_schema" in names:
        row = conn.execute(text("SELECT MAX(version) FROM ato_schema")).scalar()
        return int(row or 0)
    return 0 if kind == "ato" else None


def ensure_schema(engine: Engine) -> None:
    """Create or upgrade the schema to :data:`SCHEMA_VERSION`, once, under a lock."""
    with engine.connect() as conn:
        try:
            version = current_version(conn)
        except OperationalError as e:
            if not _is_transient(e):
                raise
            version = -1
    if version == SCHEMA_VERSION:
        return
    if version is not None and version > SCHEMA_VERSION:
        raise AtoError(f"the tracker database {display_url(str(engine.url))} has schema "
                       f"version {version}, newer than this ato-sql supports "
                       f"({SCHEMA_VERSION}): upgrade ato-sql")
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
    """The numbered steps; each runs once per database, inside the caller's transaction.

    - every database: the tables and indexes of the current schema that are missing;
    - version 0 (the original Ato): ``experiments.heartbeat_at``, the metrics index;
    - below 3: ``experiments.error``; ``metric_summaries`` rebuilt with ``last_id`` and
      NaN-free extremes, the triggers that maintain it from then on, and a backfill from
      every existing metric row;
    - below 4: the model registry's tables (:mod:`.registry.schema`), empty;
    - below 5: the study-coordination tables (:mod:`.studies`), empty;
    - below 6: the metric block summaries (:mod:`.blocks`), built from every existing
      metric row, and the triggers that drop a pair's blocks on an update or delete;
    - below 7: the blocks' last value and first non-finite point (a chart's reduction is
      then read from the blocks alone; their minimum and maximum become finite-only);
    - below 8: blocks of every power of two from 4 to 1,024 steps, not only the powers of
      four (a chart's bucket is then one block row); with step 7, every block is built
      again from the metric rows;
    - below 9: a metric's step is a 64-bit integer on PostgreSQL too (``metrics.step``,
      ``metric_summaries.last_step`` become ``BIGINT``; SQLite's integers always were):
      a step counting samples or tokens passes 2^31 in a long run.
    """
    from ato.db_routers.sql import blocks as _blocks  # step 6
    from ato.db_routers.sql import studies as _study_tables  # noqa: F401 (step 5)
    from ato.db_routers.sql.registry import schema as _registry_tables  # noqa: F401 (step 4)

    version = current_version(conn)
    if version == SCHEMA_VERSION:
        return
    dialect = conn.dialect.name
    if version is not None and version < 3:
        conn.execute(text("DROP TABLE IF EXISTS metric_summaries"))
    schema.Base.metadata.create_all(conn, checkfirst=True)
    if version is not None:
        columns = {c["name"] for c in inspect(conn).get_columns("experiments")}
        if "heartbeat_at" not in columns:
            conn.execute(text("ALTER TABLE experiments ADD COLUMN heartbeat_at TIMESTAMP"))
        if "error" not in columns:
            conn.execute(text("ALTER TABLE experiments ADD COLUMN error TEXT"))
        indexes = {i["name"] for i in inspect(conn).get_indexes("metrics")}
        if "ix_metrics_run_key_step" not in indexes:
            conn.execute(text("CREATE INDEX ix_metrics_run_key_step ON metrics (run_id, key, step)"))
    if dialect in ("sqlite", "postgresql"):
        for statement in _TRIGGERS[dialect]:
            conn.exec_driver_sql(statement)
    if version is not None and version < 3:
        conn.execute(text("DELETE FROM metric_summaries"))
        conn.execute(text(summary_rebuild_sql(dialect)))
        if dialect == "sqlite":
            _reencode_sqlite_json(conn)
    if dialect in ("sqlite", "postgresql"):
        for statement in _blocks.TRIGGERS[dialect]:
            conn.exec_driver_sql(statement)
    if version is not None and version < 7:
        have = {c["name"] for c in inspect(conn).get_columns("metric_blocks")}
        for name, kind in _blocks.STEP7_COLUMNS:
            if name not in have:
                conn.execute(text(f"ALTER TABLE metric_blocks ADD COLUMN {name} {kind}"))
    if version is not None and version < 8:
        conn.execute(text("DELETE FROM metric_blocks"))
        conn.execute(text("DELETE FROM metric_block_counts"))
        if dialect in ("sqlite", "postgresql"):
            _blocks.backfill(conn)
    if version is not None and version < 9 and dialect == "postgresql":
        for table, column in (("metrics", "step"), ("metric_summaries", "last_step")):
            conn.execute(text(f"ALTER TABLE {table} ALTER COLUMN {column} TYPE BIGINT"))
    conn.execute(text("DELETE FROM ato_schema"))
    conn.execute(text("INSERT INTO ato_schema (id, version) VALUES (1, :v)"), {"v": SCHEMA_VERSION})


def _reencode_sqlite_json(conn) -> None:
    """Rewrite JSON that SQLite cannot parse but Python can — the ``Infinity``/``NaN``
    tokens the original Ato wrote for non-finite floats — in the encoding of
    :mod:`ato.db_routers.sql.values`, so that queries see those rows.  Text that is not
    JSON at all is left as it is."""
    import json

    from ato.db_routers.sql import values

    for table, key, columns in (("experiments", "id", ("config", "tags")),
                                ("artifacts", "id", ("data_info",))):
        for column in columns:
            rows = conn.execute(text(
                f"SELECT {key}, {column} FROM {table} WHERE {column} IS NOT NULL "
                f"AND NOT json_valid({column})")).all()
            for row_id, raw in rows:
                try:
                    fixed = values.dumps(json.loads(raw))
                except (TypeError, ValueError):
                    continue
                conn.execute(text(f"UPDATE {table} SET {column} = :v WHERE {key} = :k"),
                             {"v": fixed, "k": row_id})


# --------------------------------------------------------------------------- summaries
# metric_summaries holds, per (run_id, key): the latest row (greatest (step, id)), MIN and
# MAX over the values that are numbers (NaN excluded: NULL while every value is NaN) and
# COUNT of every row.  The triggers below keep it exact for any writer of ``metrics``.

def _is_number(dialect: str, value: str) -> str:
    """SQL: ``value`` is a number, not NaN (SQLite keeps NaN as the text 'NaN')."""
    if dialect == "sqlite":
        return f"typeof({value}) IN ('integer', 'real')"
    return f"{value} <> CAST('NaN' AS double precision)"


def summary_rebuild_sql(dialect: str, pairs: str | None = None) -> str:
    """``INSERT INTO metric_summaries`` computed from ``metrics`` for every (run_id, key)
    of ``pairs`` (a FROM-able relation with those two columns; all pairs when ``None``)."""
    number = _is_number(dialect, "m.value")
    scope = "metrics m" if pairs is None else (
        f"metrics m JOIN (SELECT DISTINCT run_id, key FROM {pairs}) t "
        f"ON t.run_id = m.run_id AND t.key = m.key")
    return f"""
        INSERT INTO metric_summaries (run_id, key, last_value, last_step, last_id, min_value,
                                      max_value, count)
        SELECT g.run_id, g.key, l.value, l.step, l.id, g.lo, g.hi, g.n
        FROM (SELECT m.run_id, m.key, MIN(CASE WHEN {number} THEN m.value END) AS lo,
                     MAX(CASE WHEN {number} THEN m.value END) AS hi, COUNT(*) AS n
              FROM {scope} GROUP BY m.run_id, m.key) g
        JOIN metrics l ON l.id = (SELECT x.id FROM metrics x WHERE x.run_id = g.run_id
                                  AND x.key = g.key ORDER BY x.step DESC, x.id DESC LIMIT 1)
    """


def _sqlite_refresh(ref: str) -> str:
    """Trigger statements recomputing the summary of ``ref``'s (run_id, key)."""
    number = _is_number("sqlite", "m.value")
    return f"""
        DELETE FROM metric_summaries WHERE run_id = {ref}.run_id AND key = {ref}.key;
        INSERT INTO metric_summaries (run_id, key, last_value, last_step, last_id, min_value,
                                      max_value, count)
        SELECT l.run_id, l.key, l.value, l.step, l.id,
               (SELECT MIN(m.value) FROM metrics m WHERE m.run_id = {ref}.run_id
                AND m.key = {ref}.key AND {number}),
               (SELECT MAX(m.value) FROM metrics m WHERE m.run_id = {ref}.run_id
                AND m.key = {ref}.key AND {number}),
               (SELECT COUNT(*) FROM metrics m WHERE m.run_id = {ref}.run_id
                AND m.key = {ref}.key)
        FROM (SELECT id, run_id, key, value, step FROM metrics WHERE run_id = {ref}.run_id
              AND key = {ref}.key ORDER BY step DESC, id DESC LIMIT 1) l;"""


_NEWER = ("(excluded.last_step > {s}.last_step OR (excluded.last_step = {s}.last_step "
          "AND excluded.last_id > {s}.last_id))")

_SQLITE_TRIGGERS = [
    "DROP TRIGGER IF EXISTS ato_metrics_insert",
    "DROP TRIGGER IF EXISTS ato_metrics_delete",
    "DROP TRIGGER IF EXISTS ato_metrics_update",
    f"""CREATE TRIGGER ato_metrics_insert AFTER INSERT ON metrics BEGIN
        INSERT INTO metric_summaries (run_id, key, last_value, last_step, last_id, min_value,
                                      max_value, count)
        VALUES (NEW.run_id, NEW.key, NEW.value, NEW.step, NEW.id,
                CASE WHEN {_is_number("sqlite", "NEW.value")} THEN NEW.value END,
                CASE WHEN {_is_number("sqlite", "NEW.value")} THEN NEW.value END, 1)
        ON CONFLICT (run_id, key) DO UPDATE SET
            last_value = CASE WHEN {_NEWER.format(s="metric_summaries")}
                         THEN excluded.last_value ELSE last_value END,
            last_id = CASE WHEN {_NEWER.format(s="metric_summaries")}
                      THEN excluded.last_id ELSE last_id END,
            last_step = MAX(last_step, excluded.last_step),
            min_value = CASE WHEN excluded.min_value IS NULL THEN min_value
                        WHEN min_value IS NULL OR excluded.min_value < min_value
                        THEN excluded.min_value ELSE min_value END,
            max_value = CASE WHEN excluded.max_value IS NULL THEN max_value
                        WHEN max_value IS NULL OR excluded.max_value > max_value
                        THEN excluded.max_value ELSE max_value END,
            count = count + 1;
    END""",
    # A delete that leaves the latest row and both extremes in place only decrements the
    # count; any other recomputes that one (run_id, key) from its remaining rows.
    f"""CREATE TRIGGER ato_metrics_delete AFTER DELETE ON metrics BEGIN
        DELETE FROM metric_summaries WHERE run_id = OLD.run_id AND key = OLD.key
            AND (count <= 1 OR last_id = OLD.id OR ({_is_number("sqlite", "OLD.value")}
                 AND NOT COALESCE(OLD.value > min_value AND OLD.value < max_value, 0)));
        UPDATE metric_summaries SET count = count - 1
            WHERE run_id = OLD.run_id AND key = OLD.key;
        INSERT INTO metric_summaries (run_id, key, last_value, last_step, last_id, min_value,
                                      max_value, count)
        SELECT l.run_id, l.key, l.value, l.step, l.id,
               (SELECT MIN(m.value) FROM metrics m WHERE m.run_id = OLD.run_id
                AND m.key = OLD.key AND {_is_number("sqlite", "m.value")}),
               (SELECT MAX(m.value) FROM metrics m WHERE m.run_id = OLD.run_id
                AND m.key = OLD.key AND {_is_number("sqlite", "m.value")}),
               (SELECT COUNT(*) FROM metrics m WHERE m.run_id = OLD.run_id AND m.key = OLD.key)
        FROM (SELECT id, run_id, key, value, step FROM metrics WHERE run_id = OLD.run_id
              AND key = OLD.key ORDER BY step DESC, id DESC LIMIT 1) l
        WHERE NOT EXISTS (SELECT 1 FROM metric_summaries WHERE run_id = OLD.run_id
                          AND key = OLD.key);
    END""",
    f"""CREATE TRIGGER ato_metrics_update AFTER UPDATE OF run_id, key, value, step ON metrics
    BEGIN {_sqlite_refresh("OLD")} {_sqlite_refresh("NEW")}
    END""",
]

_PG_NUMBER = _is_number("postgresql", "value")
_POSTGRESQL_TRIGGERS = [
    "DROP TRIGGER IF EXISTS ato_metrics_insert ON metrics",
    "DROP TRIGGER IF EXISTS ato_metrics_delete ON metrics",
    "DROP TRIGGER IF EXISTS ato_metrics_update ON metrics",
    f"""CREATE OR REPLACE FUNCTION ato_metrics_inserted() RETURNS trigger LANGUAGE plpgsql AS
    $ato$ BEGIN
        INSERT INTO metric_summaries AS s (run_id, key, last_value, last_step, last_id,
                                           min_value, max_value, count)
        SELECT DISTINCT ON (n.run_id, n.key) n.run_id, n.key, n.value, n.step, n.id,
               g.lo, g.hi, g.n
        FROM ato_new n JOIN (SELECT run_id, key,
                                    MIN(value) FILTER (WHERE {_PG_NUMBER}) AS lo,
                                    MAX(value) FILTER (WHERE {_PG_NUMBER}) AS hi,
                                    COUNT(*) AS n
                             FROM ato_new GROUP BY run_id, key) g
             ON g.run_id = n.run_id AND g.key = n.key
        ORDER BY n.run_id, n.key, n.step DESC, n.id DESC
        ON CONFLICT (run_id, key) DO UPDATE SET
            last_value = CASE WHEN {_NEWER.format(s="s")} THEN excluded.last_value
                         ELSE s.last_value END,
            last_id = CASE WHEN {_NEWER.format(s="s")} THEN excluded.last_id ELSE s.last_id END,
            last_step = GREATEST(s.last_step, excluded.last_step),
            min_value = LEAST(s.min_value, excluded.min_value),
            max_value = GREATEST(s.max_value, excluded.max_value),
            count = s.count + excluded.count;
        RETURN NULL;
    END $ato$""",
    f"""CREATE OR REPLACE FUNCTION ato_metrics_deleted() RETURNS trigger LANGUAGE plpgsql AS
    $ato$ BEGIN
        DELETE FROM metric_summaries s USING (SELECT DISTINCT run_id, key FROM ato_old) t
            WHERE s.run_id = t.run_id AND s.key = t.key;
        {summary_rebuild_sql("postgresql", "ato_old")};
        RETURN NULL;
    END $ato$""",
    f"""CREATE OR REPLACE FUNCTION ato_metrics_updated() RETURNS trigger LANGUAGE plpgsql AS
    $ato$ BEGIN
        DELETE FROM metric_summaries s USING (SELECT run_id, key FROM ato_old UNION
                                              SELECT run_id, key FROM ato_new) t
            WHERE s.run_id = t.run_id AND s.key = t.key;
        {summary_rebuild_sql("postgresql",
                             "(SELECT run_id, key FROM ato_old UNION SELECT run_id, key FROM ato_new) u")};
        RETURN NULL;
    END $ato$""",
    """CREATE TRIGGER ato_metrics_insert AFTER INSERT ON metrics
        REFERENCING NEW TABLE AS ato_new FOR EACH STATEMENT
        EXECUTE FUNCTION ato_metrics_inserted()""",
    """CREATE TRIGGER ato_metrics_delete AFTER DELETE ON metrics
        REFERENCING OLD TABLE AS ato_old FOR EACH STATEMENT
        EXECUTE FUNCTION ato_metrics_deleted()""",
    """CREATE TRIGGER ato_metrics_update AFTER UPDATE ON metrics
        REFERENCING OLD TABLE AS ato_old NEW TABLE AS ato_new FOR EACH STATEMENT
        EXECUTE FUNCTION ato_metrics_updated()""",
]

_TRIGGERS = {"sqlite": _SQLITE_TRIGGERS, "postgresql": _POSTGRESQL_TRIGGERS}
