"""SQLFinder: questions over every run, answered inside the database.

Results are :class:`Run` records: plain objects whose ``config`` is an ADict
(``run.config.model``) and whose ``metrics``, ``artifacts`` and ``fingerprints`` load on
first access with their own query (no detached-session errors).  The finder never writes:
a database of the original Ato is read as it is (aggregates then come from the
``metrics`` table instead of ``metric_summaries``).
"""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

from ato.db_routers.sql import values
from ato.db_routers.sql.logger import other_backend, tracker_url
from ato.db_routers.sql.where import compile_where, parse_where

_MODES = ("max", "min")


def _json(value):
    return values.loads(value)  # JSON text or a driver-decoded value; markers -> floats


def _time(value):
    if value is None or isinstance(value, datetime):
        return value
    return datetime.fromisoformat(str(value))


class MetricRecord:
    """One logged value: ``key``, ``value``, ``step``, ``timestamp``."""

    __slots__ = ("run_id", "key", "value", "step", "timestamp")

    def __init__(self, run_id, key, value, step, timestamp):
        self.run_id, self.key, self.step = run_id, key, step
        self.value = values.as_float(value)  # SQLite holds NaN as the text 'NaN'
        self.timestamp = _time(timestamp)

    def __repr__(self):
        return f"Metric({self.key!r}, value={self.value!r}, step={self.step})"


class ArtifactRecord:
    __slots__ = ("id", "run_id", "path", "data_type", "data_info")

    def __init__(self, id, run_id, path, data_type, data_info):
        self.id, self.run_id, self.path, self.data_type = id, run_id, path, data_type
        self.data_info = _json(data_info)

    def __repr__(self):
        return f"Artifact({self.path!r}, {self.data_type!r})"


class FingerprintRecord:
    __slots__ = ("run_id", "trace_id", "trace_type", "fingerprint")

    def __init__(self, run_id, trace_id, trace_type, fingerprint):
        self.run_id, self.trace_id = run_id, trace_id
        self.trace_type, self.fingerprint = trace_type, fingerprint

    def __repr__(self):
        return f"Fingerprint({self.trace_id!r}, {self.trace_type!r}, {self.fingerprint[:12]}…)"


class ProjectRecord:
    __slots__ = ("id", "name", "description", "created_at")

    def __init__(self, id, name, description, created_at):
        self.id, self.name, self.description = id, name, description
        self.created_at = _time(created_at)

    def __repr__(self):
        return f"Project({self.id}, {self.name!r})"


class Run:
    """A run (an *experiment* row) with its config as an ADict."""

    def __init__(self, finder: SQLFinder, row):
        from ato.adict import ADict

        self._finder = finder
        self.id = row.id
        self.project_id = row.project_id
        self.project_name = row.project_name
        self.config = ADict(_json(row.config) or {})
        self.structural_hash = row.structural_hash
        self.tags = _json(row.tags) or []
        self.recorded_status = row.status
        self.start_time = _time(row.start_time)
        self.end_time = _time(row.end_time)
        self.heartbeat_at = _time(row.heartbeat_at)
        #: why the run ended ``failed``/``killed`` (``'ValueError: bad lr'``, ``'exit status
        #: 3'``, ``'signal SIGTERM'``); ``None`` otherwise
        self.error = row.error
        self._metrics = self._artifacts = self._fingerprints = None

    @property
    def status(self) -> str:
        """The recorded status, or ``crashed`` for a run whose heartbeat went stale."""
        if self.recorded_status == "running":
            last = self.heartbeat_at or self.start_time
            if last is not None and last < self._finder._cutoff():
                return "crashed"
        return self.recorded_status

    @property
    def metrics(self) -> list[MetricRecord]:
        if self._metrics is None:
            self._metrics = self._finder._metrics_of(self.id)
        return self._metrics

    @property
    def artifacts(self) -> list[ArtifactRecord]:
        if self._artifacts is None:
            rows = self._finder._rows(
                "SELECT id, run_id, path, data_type, data_info FROM artifacts "
                "WHERE run_id = :r ORDER BY id", r=self.id)
            self._artifacts = [ArtifactRecord(*row) for row in rows]
        return self._artifacts

    @property
    def fingerprints(self) -> list[FingerprintRecord]:
        if self._fingerprints is None:
            rows = self._finder._rows(
                "SELECT run_id, trace_id, trace_type, fingerprint FROM fingerprints "
                "WHERE run_id = :r ORDER BY id", r=self.id)
            self._fingerprints = [FingerprintRecord(*row) for row in rows]
        return self._fingerprints

    def __repr__(self):
        return f"Run({self.id}, project={self.project_name!r}, status={self.status!r})"


class SQLFinder:
    """``SQLFinder(config)`` needs only ``config.experiment.sql.db_path``.

    ``stale_after`` (seconds) is how old a running run's heartbeat may be before the run is
    reported as ``crashed``.
    """

    def __new__(cls, config, **options):
        other = other_backend(config, "finder", options) if cls is SQLFinder else None
        return other if other is not None else super().__new__(cls)

    def __init__(self, config, stale_after: float = 60.0):
        from sqlalchemy import inspect

        from ato.db_routers.sql.engine import open_engine, summaries_maintained

        self.url = tracker_url(config)
        # Read-only: a missing SQLite file is an error (nothing is created), no write lock.
        self.engine = open_engine(self.url, readonly=True)
        self.stale_after = stale_after
        self.dialect = self.engine.dialect.name
        with self.engine.connect() as conn:
            insp = inspect(conn)
            tables = set(insp.get_table_names())
            self._empty = "experiments" not in tables
            # Only trigger-maintained summaries (schema 3+) are trusted over the metrics.
            self._summaries = not self._empty and summaries_maintained(conn)
            columns = set() if self._empty else {c["name"] for c in insp.get_columns("experiments")}
            self._heartbeat = "heartbeat_at" in columns
            self._error = "error" in columns

    # ------------------------------------------------------------------ plumbing
    def _rows(self, sql: str, **params):
        from sqlalchemy import text

        if self._empty:
            return []
        with self.engine.connect() as conn:
            return conn.execute(text(sql), params).all()

    def _cutoff(self) -> datetime:
        return datetime.now(timezone.utc).replace(tzinfo=None) - timedelta(seconds=self.stale_after)

    def _cutoff_param(self):
        cutoff = self._cutoff()
        return cutoff.strftime("%Y-%m-%d %H:%M:%S.%f") if self.dialect == "sqlite" else cutoff

    def _run_select(self) -> str:
        heartbeat = "e.heartbeat_at" if self._heartbeat else "NULL"
        error = "e.error" if self._error else "NULL"
        return (f"SELECT e.id, e.project_id, p.name AS project_name, e.config, e.structural_hash,"
                f" e.tags, e.status, e.start_time, e.end_time, {heartbeat} AS heartbeat_at, "
                f"{error} AS error FROM experiments e JOIN projects p ON p.id = e.project_id")

    def _runs(self, where: str = "", order: str = " ORDER BY e.id", **params) -> list[Run]:
        rows = self._rows(self._run_select() + (f" WHERE {where}" if where else "") + order,
                          **params)
        return [Run(self, row) for row in rows]

    def _metrics_of(self, run_id: int) -> list[MetricRecord]:
        rows = self._rows("SELECT run_id, key, value, step, timestamp FROM metrics "
                          "WHERE run_id = :r ORDER BY key, step, id", r=run_id)
        return [MetricRecord(*row) for row in rows]

    def _summary_source(self) -> str:
        if self._summaries:
            return "metric_summaries"
        return ("(SELECT g.run_id, g.key, (SELECT m.value FROM metrics m WHERE m.run_id = g.run_id"
                " AND m.key = g.key ORDER BY m.step DESC, m.id DESC LIMIT 1) AS last_value,"
                " g.last_step, g.min_value, g.max_value, g.count FROM (SELECT run_id, key,"
                " MAX(step) AS last_step, MIN(value) AS min_value, MAX(value) AS max_value,"
                " COUNT(*) AS count FROM metrics GROUP BY run_id, key) g)")

    # ------------------------------------------------------------------ projects and runs
    def find_project(self, name: str) -> ProjectRecord | None:
        rows = self._rows("SELECT id, name, description, created_at FROM projects "
                          "WHERE name = :n", n=name)
        return ProjectRecord(*rows[0]) if rows else None

    def list_projects(self) -> list[ProjectRecord]:
        return [ProjectRecord(*r) for r in self._rows(
            "SELECT id, name, description, created_at FROM projects ORDER BY id")]

    def find_run(self, run_id: int) -> Run | None:
        runs = self._runs("e.id = :r", r=int(run_id))
        return runs[0] if runs else None

    def find_runs(self, project_name: str | None = None, *, tags=None, status: str | None = None,
                  where: str | None = None, limit: int | None = None,
                  last: int | None = None) -> list[Run]:
        """Runs filtered by project, tags (all must be present), status (``crashed``
        included) and a typed config expression such as ``"lr < 0.01 and model == 'x'"``;
        ``limit`` keeps the first runs, ``last`` the most recent ones."""
        clauses, params = [], {}
        if project_name is not None:
            clauses.append("p.name = :project")
            params["project"] = project_name
        for i, tag in enumerate(tags or []):
            params[f"tag{i}"] = tag
            if self.dialect == "sqlite":
                clauses.append(f"EXISTS (SELECT 1 FROM json_each(e.tags) WHERE value = :tag{i})")
            else:
                clauses.append(f"jsonb_exists(CAST(e.tags AS jsonb), :tag{i})")
        if status is not None:
            seen = "COALESCE(e.heartbeat_at, e.start_time)" if self._heartbeat else "e.start_time"
            if status == "crashed":
                clauses.append(f"e.status = 'running' AND {seen} < :cutoff")
                params["cutoff"] = self._cutoff_param()
            elif status == "running":
                clauses.append(f"e.status = 'running' AND {seen} >= :cutoff")
                params["cutoff"] = self._cutoff_param()
            else:
                clauses.append("e.status = :status")
                params["status"] = status
        if where:
            sql, where_params = compile_where(parse_where(where), self.dialect)
            clauses.append(sql)
            params.update(where_params)
        if last:
            runs = self._runs(" AND ".join(clauses), f" ORDER BY e.id DESC LIMIT {int(last)}",
                              **params)
            return runs[::-1]
        order = " ORDER BY e.id" + (f" LIMIT {int(limit)}" if limit else "")
        return self._runs(" AND ".join(clauses), order, **params)

    def get_runs_in_project(self, project_name: str, **filters) -> list[Run]:
        """Every run of the project in ascending id order (``[]`` for an unknown project)."""
        return self.find_runs(project_name, **filters)

    def find_similar_runs(self, run_id: int) -> list[Run]:
        """Other runs (any project) with the same structural hash."""
        return self._runs("e.structural_hash = (SELECT structural_hash FROM experiments "
                          "WHERE id = :r) AND e.id <> :r", r=int(run_id))

    def find_similar_runs_by_trace(self, run_id: int, trace_id: str,
                                   trace_type: str = "static") -> list[Run]:
        return self._runs(
            "e.id <> :r AND e.id IN (SELECT f.run_id FROM fingerprints f WHERE f.trace_id = :t "
            "AND f.trace_type = :k AND f.fingerprint IN (SELECT fingerprint FROM fingerprints "
            "WHERE run_id = :r AND trace_id = :t AND trace_type = :k))",
            r=int(run_id), t=trace_id, k=trace_type)

    # ------------------------------------------------------------------ metrics
    def find_best_run(self, project_name: str, metric_key: str, mode: str = "max"):
        """The run that logged the single best value of ``metric_key`` (any step)."""
        if mode not in _MODES:
            raise ValueError(f"mode must be 'max' or 'min', not {mode!r}")
        project = self.find_project(project_name)
        if project is None:
            return {"error": "Project not found"}
        column, direction = ("max_value", "DESC") if mode == "max" else ("min_value", "ASC")
        rows = self._rows(
            f"SELECT s.run_id FROM {self._summary_source()} s JOIN experiments e ON e.id = s.run_id"
            f" WHERE e.project_id = :p AND s.key = :k AND s.{column} IS NOT NULL"  # NaN-only
            f" ORDER BY s.{column} {direction}, s.run_id"
            f" LIMIT 1", p=project.id, k=metric_key)
        if not rows:
            return {"error": "Run not found"}
        return self.find_run(rows[0][0])

    def get_metric_history(self, run_id: int, key: str) -> list[MetricRecord]:
        """Every value of one metric of one run, by step."""
        rows = self._rows("SELECT run_id, key, value, step, timestamp FROM metrics "
                          "WHERE run_id = :r AND key = :k ORDER BY step, id", r=int(run_id), k=key)
        return [MetricRecord(*row) for row in rows]

    def metric_summaries(self, run_ids, keys) -> dict:
        """``{run_id: {key: {'latest', 'latest_step', 'min', 'max', 'steps'}}}`` — one
        indexed query whatever the number of logged rows."""
        run_ids = [int(r) for r in run_ids]
        if not run_ids or not keys:
            return {}
        binds = {f"k{i}": k for i, k in enumerate(keys)}
        key_list = ", ".join(f":k{i}" for i in range(len(keys)))
        out: dict = {r: {} for r in run_ids}
        chunk = 500
        for start in range(0, len(run_ids), chunk):
            ids = run_ids[start:start + chunk]
            id_binds = {f"r{i}": r for i, r in enumerate(ids)}
            id_list = ", ".join(f":r{i}" for i in range(len(ids)))
            rows = self._rows(
                f"SELECT s.run_id, s.key, s.last_value, s.last_step, s.min_value, s.max_value, "
                f"s.count FROM {self._summary_source()} s WHERE s.key IN ({key_list}) "
                f"AND s.run_id IN ({id_list})", **binds, **id_binds)
            for run_id, key, last, last_step, lo, hi, count in rows:
                out[run_id][key] = {"latest": values.as_float(last), "latest_step": last_step,
                                    "min": values.as_float(lo), "max": values.as_float(hi),
                                    "steps": count}
        return out

    # ------------------------------------------------------------------ fingerprints
    def get_trace_statistics(self, project_name: str, trace_id: str) -> dict:
        """How many distinct static (code) and runtime fingerprints a trace id has had."""
        project = self.find_project(project_name)
        if project is None:
            return {"error": "Project not found"}
        rows = self._rows(
            "SELECT f.trace_type, COUNT(DISTINCT f.fingerprint) FROM fingerprints f "
            "JOIN experiments e ON e.id = f.run_id WHERE e.project_id = :p AND f.trace_id = :t "
            "GROUP BY f.trace_type", p=project.id, t=trace_id)
        counts = dict(rows)
        return {"project_name": project_name, "trace_id": trace_id,
                "static_trace_versions": int(counts.get("static", 0)),
                "runtime_trace_versions": int(counts.get("runtime", 0))}
