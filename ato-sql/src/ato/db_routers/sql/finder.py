"""SQLFinder: questions over every run, answered inside the database.

Results are :class:`Run` records: plain objects whose ``config`` is an ADict
(``run.config.model``) and whose ``metrics``, ``artifacts`` and ``fingerprints`` load on
first access with their own query (no detached-session errors).  The finder never writes:
a database of the original Ato is read as it is (aggregates then come from the
``metrics`` table instead of ``metric_summaries``).
"""

from __future__ import annotations

from contextlib import contextmanager
from datetime import datetime, timedelta, timezone

from ato.db_routers.sql import values
from ato.db_routers.sql.logger import other_backend, tracker_url
from ato.db_routers.sql.where import compile_where, parse_where
from ato.tracking import check_query
from ato.tracking.protocol import (
    CAPABILITIES,
    Artifact,
    Fingerprint,
    MetricPoint,
    MetricSeries,
    MetricSummary,
    Project,
    SeriesColumns,
)
from ato.tracking.protocol import Run as ProtocolRun
from ato.tracking.reduce import bucket_count, bucket_width, check_max_points, check_step_bounds

_MODES = ("max", "min")


def _json(value):
    return values.loads(value)  # JSON text or a driver-decoded value; markers -> floats


def _fast_json(value):
    """:func:`values.loads`, skipping its walk over the parsed value when the text holds
    no marker (``$numberDouble``) or escape (``$dict``) to decode: plain ``json.loads``."""
    if isinstance(value, str) and '"$' not in value:
        import json

        return json.loads(value)
    return values.loads(value)


def _time(value):
    if value is None or isinstance(value, datetime):
        return value
    return datetime.fromisoformat(str(value))


def _record_time(value):
    value = _time(value)
    if value is not None and value.tzinfo is not None:
        value = value.astimezone(timezone.utc).replace(tzinfo=None)
    return value


def _float(value):
    """A stored metric value as a float (``float('NaN')`` also reads a NaN kept as text)."""
    return None if value is None else float(value)


def _steps_within(prefix: str, min_step, max_step, params: dict) -> str:
    """SQL ``AND`` terms for ``min_step <= step <= max_step`` (``None`` = open) on the
    column ``{prefix}step``, their bounds added to ``params`` as ``lo`` and ``hi``."""
    sql = ""
    if min_step is not None:
        sql += f" AND {prefix}step >= :lo"
        params["lo"] = int(min_step)
    if max_step is not None:
        sql += f" AND {prefix}step <= :hi"
        params["hi"] = int(max_step)
    return sql


def _blockwise(ends, max_points: int, sizes: tuple) -> bool:
    """Whether the reduction of a series with ``ends`` (see ``_ends``) can be read from
    block summaries of ``sizes``: its buckets are at least as wide as the smallest block."""
    from ato.db_routers.sql.blocks import block_size

    _, f0, _, f1 = ends
    return block_size(bucket_width(f0, f1, bucket_count(max_points)), sizes) is not None


def _point(row) -> MetricPoint:
    run_id, key, value, step, timestamp = row
    return MetricPoint(run_id, key, _float(value), step, _record_time(timestamp))


# The seed-era names of the records, kept for code that imports them.
MetricRecord = MetricPoint
ArtifactRecord = Artifact
FingerprintRecord = Fingerprint
ProjectRecord = Project


class Run(ProtocolRun):
    """A run of the tracker protocol (:class:`ato.tracking.Run`) that also loads
    ``metrics``, ``artifacts`` and ``fingerprints`` on first access (the seed's API)."""

    @classmethod
    def _from_row(cls, finder: SQLFinder, row) -> Run:
        from ato.adict import ADict

        start, heartbeat = _record_time(row.start_time), _record_time(row.heartbeat_at)
        status = row.status
        if status == "running":
            last = heartbeat or start
            if last is not None and last < finder._cutoff():
                status = "crashed"
        run = cls(id=row.id, project_name=row.project_name,
                  config=ADict(_json(row.config) or {}), tags=_json(row.tags) or [],
                  status=status, recorded_status=row.status, start_time=start,
                  end_time=_record_time(row.end_time), heartbeat_at=heartbeat,
                  structural_hash=row.structural_hash, error=getattr(row, "error", None))
        run._finder = finder
        run.project_id = row.project_id
        return run

    @property
    def metrics(self) -> list[MetricPoint]:
        """Every point of every key, ordered by key, step (loaded once)."""
        if "_metrics" not in self.__dict__:
            self._metrics = self._finder._metrics_of(self.id)
        return self._metrics

    @property
    def artifacts(self) -> list[Artifact]:
        if "_artifacts" not in self.__dict__:
            self._artifacts = self._finder.get_artifacts(self.id)
        return self._artifacts

    @property
    def fingerprints(self) -> list[Fingerprint]:
        if "_fingerprints" not in self.__dict__:
            self._fingerprints = self._finder.get_fingerprints(self.id)
        return self._fingerprints


class SQLFinder:
    """``SQLFinder(config)`` needs only ``config.experiment.sql.db_path``; it implements the
    whole tracker protocol (:class:`ato.tracking.TrackerFinder`) with every capability.

    ``stale_after`` (seconds) is how old a running run's heartbeat may be before the run is
    reported as ``crashed``.
    """

    capabilities = frozenset(CAPABILITIES)

    def __new__(cls, config, **options):
        other = other_backend(config, "finder", options) if cls is SQLFinder else None
        return other if other is not None else super().__new__(cls)

    def __init__(self, config, stale_after: float = 60.0):
        from ato.db_routers.sql.engine import open_engine

        if self.__dict__.get("_opened"):
            return  # __new__ handed over a plugin's finder that is an SQLFinder: open already
        self._opened = True
        self.url = tracker_url(config)
        # Read-only: a missing SQLite file is an error (nothing is created), no write lock.
        self.engine = open_engine(self.url, readonly=True)
        self.stale_after = stale_after
        self.dialect = self.engine.dialect.name
        self._inspect()

    def _inspect(self) -> None:
        """Learn which tables and columns exist (again while there are none: a finder
        opened before the first run sees the runs logged after it)."""
        from sqlalchemy import inspect

        from ato.db_routers.sql.blocks import sizes_of
        from ato.db_routers.sql.engine import current_version

        with self.engine.connect() as conn:
            insp = inspect(conn)
            tables = set(insp.get_table_names())
            self._empty = "experiments" not in tables
            version = None if self._empty else current_version(conn)
            # Only trigger-maintained summaries (schema 3+) are trusted over the metrics.
            self._summaries = version is not None and version >= 3
            columns = set() if self._empty else {c["name"] for c in insp.get_columns("experiments")}
            self._heartbeat = "heartbeat_at" in columns
            self._error = "error" in columns
            self._registry = "registry_links" in tables
            # The block sizes this database holds (a reader never upgrades it); a schema 6
            # database (blocks of another content) is read from the raw rows.
            self._blocks = sizes_of(version) if "metric_block_counts" in tables else None

    def __repr__(self):
        return f"SQLFinder({self.url!r})"

    # ------------------------------------------------------------------ plumbing
    def _rows(self, sql: str, **params):
        from sqlalchemy import text

        if self._empty:
            self._inspect()
            if self._empty:
                return []
        with self.engine.connect() as conn:
            return conn.execute(text(sql), params).all()

    def _cutoff(self) -> datetime:
        return datetime.now(timezone.utc).replace(tzinfo=None) - timedelta(seconds=self.stale_after)

    def _time_param(self, value: datetime):
        if value.tzinfo is not None:
            value = value.astimezone(timezone.utc).replace(tzinfo=None)
        return value.strftime("%Y-%m-%d %H:%M:%S.%f") if self.dialect == "sqlite" else value

    def _cutoff_param(self):
        return self._time_param(self._cutoff())

    def _run_select(self) -> str:
        heartbeat = "e.heartbeat_at" if self._heartbeat else "NULL"
        error = "e.error" if self._error else "NULL"
        return (f"SELECT e.id, e.project_id, p.name AS project_name, e.config, e.structural_hash,"
                f" e.tags, e.status, e.start_time, e.end_time, {heartbeat} AS heartbeat_at, "
                f"{error} AS error FROM experiments e JOIN projects p ON p.id = e.project_id")

    def _runs(self, where: str = "", order: str = " ORDER BY e.id", **params) -> list[Run]:
        rows = self._rows(self._run_select() + (f" WHERE {where}" if where else "") + order,
                          **params)
        return [Run._from_row(self, row) for row in rows]

    def _metrics_of(self, run_id: int) -> list[MetricPoint]:
        rows = self._rows("SELECT run_id, key, value, step, timestamp FROM metrics "
                          "WHERE run_id = :r ORDER BY key, step, id", r=run_id)
        return [_point(row) for row in rows]

    def _summary_source(self) -> str:
        if self._summaries:
            return "metric_summaries"
        return ("(SELECT g.run_id, g.key, (SELECT m.value FROM metrics m WHERE m.run_id = g.run_id"
                " AND m.key = g.key ORDER BY m.step DESC, m.id DESC LIMIT 1) AS last_value,"
                " g.last_step, g.min_value, g.max_value, g.count FROM (SELECT run_id, key,"
                " MAX(step) AS last_step, MIN(value) AS min_value, MAX(value) AS max_value,"
                " COUNT(*) AS count FROM metrics GROUP BY run_id, key) g)")

    def _id_chunks(self, run_ids, params: dict):
        """``(sql, params)`` per chunk of ``run_ids``: ``sql`` is what follows ``run_id``
        for "is one of these runs".  SQLite and PostgreSQL take the whole list as one
        bound parameter (a JSON array, an array); other databases a list of parameters
        per 500 runs."""
        if self.dialect in ("sqlite", "postgresql"):
            import json

            one = dict(params)
            if self.dialect == "sqlite":
                one["ids"] = json.dumps([int(r) for r in run_ids])
                yield "IN (SELECT value FROM json_each(:ids))", one
            else:
                one["ids"] = [int(r) for r in run_ids]
                yield "= ANY(CAST(:ids AS BIGINT[]))", one
            return
        for start in range(0, len(run_ids), 500):
            chunk = dict(params)
            yield f"IN ({self._in_list('r', run_ids[start:start + 500], chunk)})", chunk

    @staticmethod
    def _in_list(prefix: str, values, params: dict) -> str:
        names = []
        for i, value in enumerate(values):
            params[f"{prefix}{i}"] = value
            names.append(f":{prefix}{i}")
        return ", ".join(names)

    # ------------------------------------------------------------------ projects and runs
    def find_project(self, name: str) -> Project | None:
        rows = self._rows("SELECT id, name, description, created_at FROM projects "
                          "WHERE name = :n", n=name)
        return self._project(rows[0]) if rows else None

    @staticmethod
    def _project(row) -> Project:
        return Project(row[0], row[1], row[2], _record_time(row[3]))

    def list_projects(self) -> list[Project]:
        return [self._project(r) for r in self._rows(
            "SELECT id, name, description, created_at FROM projects ORDER BY id")]

    def find_run(self, run_id: int) -> Run | None:
        runs = self._runs("e.id = :r", r=int(run_id))
        return runs[0] if runs else None

    def find_runs(self, project_name: str | None = None, *, tags=None, status=None,
                  where: str | None = None, order_by: str = "id", descending: bool = False,
                  limit: int | None = None, last: int | None = None) -> list[Run]:
        """Runs filtered by project, tags (all must be present), status (``crashed``
        included; one or several) and a typed config expression such as
        ``"lr < 0.01 and model == 'x'"``, sorted by ``order_by`` (NULLs last, ties by id);
        ``limit`` keeps the first runs, ``last`` the most recent ones (by id)."""
        rows = self._find_rows(project_name, tags=tags, status=status, where=where,
                               order_by=order_by, descending=descending, limit=limit,
                               last=last)
        return [Run._from_row(self, row) for row in rows]

    def find_run_rows(self, project_name: str | None = None, *, tags=None, status=None,
                      where: str | None = None) -> list[dict]:
        """The runs :meth:`find_runs` finds with the same filters (ascending id), as plain
        rows for a table of many runs: no :class:`Run` and no ADict is built, and the
        config is decoded in one pass of the JSON parser.  Each row is ``{"id",
        "project_name", "status" (a stale ``running`` is ``crashed``), "recorded_status",
        "tags" (list), "start_time", "end_time", "heartbeat_at" (naive UTC datetimes or
        None), "structural_hash", "config" (the nested config as dicts and lists; ±inf
        and NaN as floats)}``.  About five times faster than :meth:`find_runs` for 1,000
        runs; the dashboard's runs table uses it when a finder has it."""
        cutoff = self._cutoff()
        out = []
        for row in self._find_rows(project_name, tags=tags, status=status, where=where):
            start, heartbeat = _record_time(row.start_time), _record_time(row.heartbeat_at)
            status_now = row.status
            if status_now == "running":
                last_seen = heartbeat or start
                if last_seen is not None and last_seen < cutoff:
                    status_now = "crashed"
            out.append({"id": row.id, "project_name": row.project_name, "status": status_now,
                        "recorded_status": row.status, "tags": _fast_json(row.tags) or [],
                        "start_time": start, "end_time": _record_time(row.end_time),
                        "heartbeat_at": heartbeat, "structural_hash": row.structural_hash,
                        "config": _fast_json(row.config) or {}})
        return out

    def _find_rows(self, project_name: str | None = None, *, tags=None, status=None,
                   where: str | None = None, order_by: str = "id", descending: bool = False,
                   limit: int | None = None, last: int | None = None) -> list:
        statuses = check_query(order_by, status, limit, last)
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
        seen = "COALESCE(e.heartbeat_at, e.start_time)" if self._heartbeat else "e.start_time"
        if statuses is not None:
            either = []
            for i, wanted in enumerate(statuses):
                if wanted == "crashed":
                    either.append(f"(e.status = 'running' AND {seen} < :cutoff)")
                elif wanted == "running":
                    either.append(f"(e.status = 'running' AND {seen} >= :cutoff)")
                else:
                    either.append(f"e.status = :status{i}")
                    params[f"status{i}"] = wanted
            if any(s in ("crashed", "running") for s in statuses):
                params["cutoff"] = self._cutoff_param()
            clauses.append("(" + " OR ".join(either) + ")")
        if where:
            sql, where_params = compile_where(parse_where(where), self.dialect)
            clauses.append(sql)
            params.update(where_params)
        inner = self._run_select() + (" WHERE " + " AND ".join(clauses) if clauses else "")
        if last is not None:
            inner += f" ORDER BY e.id DESC LIMIT {int(last)}"
        direction = "DESC" if descending else "ASC"
        if order_by == "id":
            order = f"r.id {direction}"
        else:
            column = f"r.{order_by}"
            if order_by == "status":
                params["cutoff"] = self._cutoff_param()
                column = ("(CASE WHEN r.status = 'running' AND COALESCE(r.heartbeat_at, "
                          "r.start_time) < :cutoff THEN 'crashed' ELSE r.status END)")
            order = f"(CASE WHEN {column} IS NULL THEN 1 ELSE 0 END), {column} {direction}, r.id"
        sql = f"SELECT * FROM ({inner}) r ORDER BY {order}"
        if limit is not None:
            sql += f" LIMIT {int(limit)}"
        return self._rows(sql, **params)

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

    def get_artifacts(self, run_id: int) -> list[Artifact]:
        """The run's artifacts in the order logged."""
        rows = self._rows("SELECT id, run_id, path, data_type, data_info FROM artifacts "
                          "WHERE run_id = :r ORDER BY id", r=int(run_id))
        return [Artifact(run_id=r, path=path, data_type=kind, metadata=_json(info), id=i)
                for i, r, path, kind, info in rows]

    def get_fingerprints(self, run_id: int) -> list[Fingerprint]:
        """The run's code fingerprints, in the order recorded."""
        rows = self._rows("SELECT run_id, trace_id, trace_type, fingerprint FROM fingerprints "
                          "WHERE run_id = :r ORDER BY id", r=int(run_id))
        return [Fingerprint(*row) for row in rows]

    # ------------------------------------------------------------------ metrics
    # ------------------------------------------------------------------ registry (read-only)
    @property
    def _registry_reader(self):
        from ato.db_routers.sql.registry.queries import RegistryReader

        def available() -> bool:
            if not self._registry:
                self._inspect()  # a registry created after this finder opened
            return self._registry

        return RegistryReader(self._rows, available, self._run_uses)

    def _run_uses(self, where: str, **params) -> list:
        """``RunUse`` records (effective status, no config parsed) of the runs ``where``
        (a condition on ``experiments e``) selects, by id."""
        from ato.tracking.registry import RunUse

        heartbeat = "e.heartbeat_at" if self._heartbeat else "NULL"
        rows = self._rows(f"SELECT e.id, p.name, e.status, e.start_time, {heartbeat} FROM "
                          f"experiments e JOIN projects p ON p.id = e.project_id WHERE {where} "
                          f"ORDER BY e.id", **params)
        cutoff = self._cutoff()
        out = []
        for run_id, project, status, start, beat in rows:
            start, beat = _record_time(start), _record_time(beat)
            last = beat or start
            if status == "running" and last is not None and last < cutoff:
                status = "crashed"
            out.append(RunUse(run_id, project, status, start))
        return out

    def registry_assets(self, kind=None, project=None):
        return self._registry_reader.registry_assets(kind=kind, project=project)

    def registry_versions(self, name, project=None, kind=None):
        return self._registry_reader.registry_versions(name, project=project, kind=kind)

    def alias_history(self, name, alias=None, project=None, kind=None):
        return self._registry_reader.alias_history(name, alias=alias, project=project,
                                                   kind=kind)

    def run_lineage(self, run_id):
        return self._registry_reader.run_lineage(run_id)

    def runs_using(self, name, ref=None, project=None, kind="dataset"):
        return self._registry_reader.runs_using(name, ref=ref, project=project, kind=kind)

    def produced_by(self, name, ref=None, project=None):
        return self._registry_reader.produced_by(name, ref=ref, project=project)

    def downstream(self, name, ref=None, project=None, kind="dataset"):
        return self._registry_reader.downstream(name, ref=ref, project=project, kind=kind)

    def resolve(self, uri, verify=True):
        from ato.db_routers.sql.registry.core import Registry, RegistryError, parse_uri

        parse_uri(uri)  # a malformed URI is named before anything else
        if not self._registry_reader._available():
            raise RegistryError(f"{uri}: {self.url} holds no models or datasets")
        return Registry(self.url, engine=self.engine).resolve(uri, verify=verify)

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

    def metric_keys(self, run_ids) -> list[str]:
        """The sorted union of the metric keys these runs logged."""
        run_ids = [int(r) for r in run_ids]
        keys: set = set()
        for ids, params in self._id_chunks(run_ids, {}):
            keys.update(k for (k,) in self._rows(
                f"SELECT DISTINCT s.key FROM {self._summary_source()} s "
                f"WHERE s.run_id {ids}", **params))
        return sorted(keys)

    def get_metric_history(self, run_id: int, key: str) -> list[MetricPoint]:
        """Every value of one metric of one run, by step."""
        rows = self._rows("SELECT run_id, key, value, step, timestamp FROM metrics "
                          "WHERE run_id = :r AND key = :k ORDER BY step, id", r=int(run_id), k=key)
        return [_point(row) for row in rows]

    def get_metric_summaries(self, run_ids, keys=None) -> dict[int, dict[str, MetricSummary]]:
        """``{run_id: {key: MetricSummary}}`` — one indexed query (per 500 runs on
        databases other than SQLite and PostgreSQL), whatever the number of logged points."""
        run_ids = [int(r) for r in run_ids]
        out: dict = {r: {} for r in run_ids}
        if not run_ids or (keys is not None and not keys):
            return out
        key_params: dict = {}
        key_clause = ""
        if keys is not None:
            key_clause = f" AND s.key IN ({self._in_list('k', list(keys), key_params)})"
        for ids, params in self._id_chunks(run_ids, key_params):
            rows = self._rows(
                f"SELECT s.run_id, s.key, s.last_value, s.last_step, s.min_value, s.max_value, "
                f"s.count FROM {self._summary_source()} s WHERE s.run_id {ids}{key_clause}",
                **params)
            for run_id, key, last, last_step, lo, hi, count in rows:
                out[run_id][key] = MetricSummary(run_id, key, _float(last), last_step,
                                                 _float(lo), _float(hi), count)
        return out

    def metric_summaries(self, run_ids, keys) -> dict:
        """``{run_id: {key: {'latest', 'latest_step', 'min', 'max', 'steps'}}}`` (the
        pre-protocol form of :meth:`get_metric_summaries`)."""
        if not run_ids or not keys:
            return {}
        return {run_id: {k: {"latest": s.last, "latest_step": s.last_step, "min": s.min,
                             "max": s.max, "steps": s.count} for k, s in by_key.items()}
                for run_id, by_key in self.get_metric_summaries(run_ids, keys).items()}

    def get_metric_series(self, run_id: int, key: str, *, min_step: int | None = None,
                          max_step: int | None = None, max_points: int | None = None
                          ) -> MetricSeries:
        """The points of ``(run_id, key)`` with ``min_step <= step <= max_step``, reduced
        inside the database to at most ``max_points`` (ato.tracking.reduce's rule: aligned
        step buckets of a power-of-two width, each keeping its finite min and max, its
        last point and its first non-finite point; the first point kept too).

        Every query of one call reads one snapshot, so a series still being logged is
        reduced as it was at one instant.  Where the logger's block summaries cover the
        pair (schema 7 or 8, :mod:`ato.db_routers.sql.blocks`) and the buckets are at
        least 4 steps wide, the buckets are read from block rows (a window's two edge buckets
        from raw rows); otherwise each bucket is an index range scan of the raw rows."""
        check_max_points(max_points)
        check_step_bounds(min_step, max_step)
        if self._empty:
            self._inspect()
            if self._empty:
                return MetricSeries(int(run_id), key, [], 0, False, min_step, max_step)
        with self._snapshot() as conn:
            return self._series(conn, int(run_id), key, min_step, max_step, max_points)

    def get_metric_series_columns(self, run_ids, key: str, *, min_step: int | None = None,
                                  max_step: int | None = None, max_points: int | None = None,
                                  times: bool = True) -> list[SeriesColumns]:
        """:meth:`get_metric_series` of every run of ``run_ids`` as columns, all read in
        one snapshot.  A whole-series reduction of runs whose block summaries are complete
        (the dashboard's chart) takes, whatever the number of runs, one statement for
        their counts, one for their first and last points, one per block size for their
        blocks (:func:`blocks.reduce_runs`) and, with ``times``, one for the kept points'
        timestamps; other runs are read as :meth:`get_metric_series` reads them."""
        check_max_points(max_points)
        check_step_bounds(min_step, max_step)
        run_ids = [int(r) for r in run_ids]
        if self._empty:
            self._inspect()
        if self._empty or not run_ids:
            return [SeriesColumns(r, key, [], [], [] if times else None, 0, False, min_step,
                                  max_step) for r in run_ids]
        with self._snapshot() as conn:
            return self._columns(conn, run_ids, key, min_step, max_step, max_points, times)

    def _columns(self, conn, run_ids, key, min_step, max_step, max_points, times
                 ) -> list[SeriesColumns]:
        from ato.db_routers.sql import blocks

        totals: dict = {}  # the runs reduced from their blocks: run -> point count
        if (max_points is not None and min_step is None and max_step is None
                and self._blocks and self.dialect in ("sqlite", "postgresql")):
            from sqlalchemy import text

            for where, params in self._id_chunks(sorted(set(run_ids)), {"k": key}):
                for run_id, count, summarised in conn.execute(text(
                        "SELECT s.run_id, s.count, c.rows FROM metric_summaries s "
                        "JOIN metric_block_counts c ON c.run_id = s.run_id AND c.key = s.key "
                        f"WHERE s.key = :k AND s.run_id {where}"), params):
                    if count == summarised and count > max_points:
                        totals[int(run_id)] = int(count)
        kept: dict = {}
        if totals:
            ends = {run_id: e for run_id, e in self._ends(conn, list(totals), key).items()
                    if _blockwise(e, max_points, self._blocks)}
            kept = blocks.reduce_runs(conn, self.dialect, key, ends, bucket_count(max_points),
                                      sizes=self._blocks)
        found: dict = {}
        if kept and times:
            from itertools import groupby
            from operator import itemgetter

            rows = blocks.rows_by_id(conn, self.dialect,
                                     [i for _, ids, _ in kept.values() for i in ids],
                                     "run_id, step, value, timestamp", "run_id, step, id")
            for run_id, group in groupby(rows, itemgetter(0)):
                _, steps, values_, stamps = zip(*group)
                found[run_id] = (list(steps), list(map(float, values_)),
                                 list(map(_record_time, stamps)))
        elif kept:
            found = {run_id: (steps, values_, None)
                     for run_id, (steps, _, values_) in kept.items()}
        out = []
        for run_id in run_ids:
            if run_id not in found:
                out.append(SeriesColumns.of(self._series(conn, run_id, key, min_step, max_step,
                                                         max_points), times))
                continue
            steps, values_, stamps = found[run_id]
            out.append(SeriesColumns(run_id, key, steps, values_, stamps, totals[run_id], True,
                                     min_step, max_step))
        return out

    def _ends(self, conn, run_ids, key: str, min_step=None, max_step=None) -> dict:
        """``{run_id: (first id, first step, first value, last step)}`` of the points of
        ``key`` with ``min_step <= step <= max_step`` (``None`` = open) by ``(step, id)``;
        runs without such points are left out.  One statement for all runs on SQLite and
        PostgreSQL (four index lookups per run), one per run elsewhere."""
        import json

        from sqlalchemy import text

        params: dict = {"k": key}
        cond = "m.run_id = r.run AND m.key = :k" + _steps_within("m.", min_step, max_step, params)
        first = f"(SELECT m.{{}} FROM metrics m WHERE {cond} ORDER BY m.step, m.id LIMIT 1)"
        columns = (f"r.run, {first.format('id')}, {first.format('step')}, "
                   f"{first.format('value')}, (SELECT m.step FROM metrics m WHERE {cond} "
                   f"ORDER BY m.step DESC, m.id DESC LIMIT 1)")
        run_ids = [int(r) for r in run_ids]
        if self.dialect == "sqlite":
            batches = [("(SELECT value AS run FROM json_each(:runs)) r",
                        {**params, "runs": json.dumps(run_ids)})]
        elif self.dialect == "postgresql":
            batches = [("unnest(CAST(:runs AS BIGINT[])) AS r(run)", {**params, "runs": run_ids})]
        else:
            batches = [("(SELECT :run AS run) r", {**params, "run": r}) for r in run_ids]
        out = {}
        for source, bound in batches:
            for run_id, first_id, f0, v0, f1 in conn.execute(
                    text(f"SELECT {columns} FROM {source}"), bound):
                if first_id is not None:
                    out[int(run_id)] = (first_id, f0, v0, f1)
        return out

    @contextmanager
    def _snapshot(self):
        """A connection whose statements all read one snapshot of the database."""
        with self.engine.connect() as conn:
            if self.dialect == "sqlite":
                conn.exec_driver_sql("BEGIN")
                try:
                    yield conn
                finally:
                    conn.exec_driver_sql("COMMIT")
            elif self.dialect == "postgresql":
                conn = conn.execution_options(isolation_level="REPEATABLE READ")
                with conn.begin():
                    yield conn
            else:
                yield conn

    def _series(self, conn, run_id, key, min_step, max_step, max_points) -> MetricSeries:
        from sqlalchemy import text

        def rows(sql, **params):
            return conn.execute(text(sql), params).all()

        params: dict = {"r": run_id, "k": key}
        cond = "run_id = :r AND key = :k" + _steps_within("", min_step, max_step, params)
        blocks_complete = False
        if self._blocks and self.dialect in ("sqlite", "postgresql"):
            state = rows("SELECT s.count, c.rows FROM metric_summaries s LEFT JOIN "
                         "metric_block_counts c ON c.run_id = s.run_id AND c.key = s.key "
                         "WHERE s.run_id = :r AND s.key = :k", r=run_id, k=key)
            blocks_complete = bool(state) and state[0][0] == state[0][1]
        if blocks_complete and min_step is None and max_step is None:
            total = int(state[0][0])
        else:
            found = rows(f"SELECT COUNT(*) FROM metrics WHERE {cond}", **params)
            total = int(found[0][0]) if found else 0
        if max_points is None or total <= max_points:
            points = [_point(row) for row in rows(
                f"SELECT run_id, key, value, step, timestamp FROM metrics WHERE {cond} "
                f"ORDER BY step, id", **params)]
            return MetricSeries(run_id, key, points, total, False, min_step, max_step)
        window = min_step is not None or max_step is not None
        ends = self._ends(conn, [run_id], key, min_step, max_step)[run_id]
        if blocks_complete and _blockwise(ends, max_points, self._blocks):
            from ato.db_routers.sql import blocks

            _, ids, _ = blocks.reduce_runs(conn, self.dialect, key, {run_id: ends},
                                           bucket_count(max_points), window,
                                           self._blocks)[run_id]
            found = blocks.rows_by_id(conn, self.dialect, ids,
                                      "run_id, key, value, step, timestamp", "step, id")
            return MetricSeries(run_id, key, [_point(row) for row in found], total, True,
                                min_step, max_step)
        first_id, f0, _, f1 = ends
        width = bucket_width(f0, f1, bucket_count(max_points))
        params.update(first=first_id, f0=f0, f1=f1, w=width, k0=f0 // width,
                      nb=f1 // width - f0 // width + 1)
        # Bucket k holds the steps [k * w, k * w + w - 1] (ato.tracking.reduce's aligned
        # buckets), here clipped to [f0, f1]: each bucket is one index range scan (run_id,
        # key, step), never a sort of the whole series.  In a range, the minimum and the
        # maximum of the finite values are aggregates; the earliest point holding each is
        # then the first match of an ordered scan that stops there, like the first
        # non-finite point.  The finite test holds for numbers only: NaN (PostgreSQL's
        # float NaN, SQLite's text 'NaN') and the infinities fall outside the range.
        finite = "m.value BETWEEN -1.7976931348623157e308 AND 1.7976931348623157e308"
        inside = "m.run_id = :r AND m.key = :k AND m.step BETWEEN g.s0 AND g.s1"
        start = "(CAST(:k0 AS BIGINT) + i) * :w"
        sql = (
            f"WITH RECURSIVE n(i) AS (SELECT 0 UNION ALL SELECT i + 1 FROM n WHERE i + 1 < :nb), "
            f"g AS (SELECT CASE WHEN {start} < :f0 THEN :f0 ELSE {start} END AS s0, "
            f"CASE WHEN {start} + :w - 1 > :f1 THEN :f1 ELSE {start} + :w - 1 END AS s1 "
            f"FROM n), "
            f"agg AS (SELECT g.s0, g.s1, "
            f"(SELECT MIN(m.value) FROM metrics m WHERE {inside} AND {finite}) AS lo, "
            f"(SELECT MAX(m.value) FROM metrics m WHERE {inside} AND {finite}) AS hi "
            f"FROM g), "
            f"pick AS (SELECT "
            f"(SELECT m.id FROM metrics m WHERE {inside} AND {finite} AND m.value = g.lo "
            f"ORDER BY m.step, m.id LIMIT 1) AS a, "
            f"(SELECT m.id FROM metrics m WHERE {inside} AND {finite} AND m.value = g.hi "
            f"ORDER BY m.step, m.id LIMIT 1) AS z, "
            f"(SELECT m.id FROM metrics m WHERE {inside} "
            f"ORDER BY m.step DESC, m.id DESC LIMIT 1) AS l, "
            f"(SELECT m.id FROM metrics m WHERE {inside} AND NOT ({finite}) "
            f"ORDER BY m.step, m.id LIMIT 1) AS f FROM agg g) "
            f"SELECT run_id, key, value, step, timestamp FROM metrics WHERE id IN "
            f"(SELECT a FROM pick UNION SELECT z FROM pick UNION SELECT l FROM pick "
            f"UNION SELECT f FROM pick UNION SELECT :first) ORDER BY step, id")
        points = [_point(row) for row in rows(sql, **params)]
        return MetricSeries(run_id, key, points, total, True, min_step, max_step)

    def get_metric_points_since(self, run_id: int, *, keys=None, after_step: int | None = None,
                                after_time: datetime | None = None) -> list[MetricPoint]:
        """Points of the run (only ``keys`` when given) with ``step > after_step`` and
        ``timestamp > after_time``, by key then step — one indexed query."""
        cond = "run_id = :r"
        params: dict = {"r": int(run_id)}
        if keys is not None:
            keys = list(keys)
            if not keys:
                return []
            cond += f" AND key IN ({self._in_list('k', keys, params)})"
        if after_step is not None:
            cond += " AND step > :s"
            params["s"] = int(after_step)
        if after_time is not None:
            cond += " AND timestamp > :t"
            params["t"] = self._time_param(after_time)
        rows = self._rows(f"SELECT run_id, key, value, step, timestamp FROM metrics "
                          f"WHERE {cond} ORDER BY key, step, id", **params)
        return [_point(row) for row in rows]

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


def _protocol_docstrings() -> None:
    """The registry members document themselves with the protocol's docstrings."""
    from ato.tracking.registry import REGISTRY_FINDER_MEMBERS, RegistryFinder

    for name in REGISTRY_FINDER_MEMBERS:
        getattr(SQLFinder, name).__doc__ = getattr(RegistryFinder, name).__doc__


_protocol_docstrings()
