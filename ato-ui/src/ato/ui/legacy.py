"""The tracker protocol over an ato-sql ``SQLFinder`` that predates it.

:func:`ato.ui.data._open_finder` uses this only when ``ato.tracking.open_finder`` reports
that the installed ato-sql's finder lacks protocol members; every call maps to a public
``SQLFinder`` method, except :meth:`LegacySQLFinder.metric_keys`, which that finder has no
method for and which reads the summary table with a bound-parameter query.
"""

from __future__ import annotations

from datetime import datetime

from ato.tracking import (
    Artifact,
    Fingerprint,
    MetricPoint,
    MetricSeries,
    MetricSummary,
    Project,
    Run,
)
from ato.tracking.reduce import bucket_count, check_max_points

# ato.tracking.reduce_points's rule in SQL (SQLite >= 3.25 and PostgreSQL): points ordered
# by (step, id); the first and last are kept; the others go to bucket
# (step - first step) * B // (last step - first step + 1), which keeps its earliest minimum,
# earliest maximum and last point.  {where} holds only bound-parameter clauses.
_REDUCE_SQL = """
WITH p AS (SELECT id, step, value, timestamp FROM metrics WHERE {where}),
ends AS (SELECT (SELECT id FROM p ORDER BY step, id LIMIT 1) AS first_id,
                (SELECT id FROM p ORDER BY step DESC, id DESC LIMIT 1) AS last_id,
                (SELECT MIN(step) FROM p) AS s0, (SELECT MAX(step) FROM p) AS s1),
q AS (SELECT p.id, p.step, p.value, p.timestamp,
             (CAST(p.step - ends.s0 AS BIGINT) * :buckets) / (ends.s1 - ends.s0 + 1) AS b
      FROM p, ends WHERE p.id <> ends.first_id AND p.id <> ends.last_id),
r AS (SELECT id, step, value, timestamp,
             ROW_NUMBER() OVER (PARTITION BY b ORDER BY value, step, id) AS rmin,
             ROW_NUMBER() OVER (PARTITION BY b ORDER BY value DESC, step, id) AS rmax,
             ROW_NUMBER() OVER (PARTITION BY b ORDER BY step DESC, id DESC) AS rlast
      FROM q)
SELECT id, step, value, timestamp FROM r WHERE rmin = 1 OR rmax = 1 OR rlast = 1
UNION
SELECT id, step, value, timestamp FROM p
WHERE id IN (SELECT first_id FROM ends) OR id IN (SELECT last_id FROM ends)
ORDER BY step, id
"""


def reduce_indexes(steps: list[int], values: list[float], max_points: int | None) -> list[int]:
    """The indexes :func:`ato.tracking.reduce_points` keeps for points with these
    ``steps`` and ``values`` (same rule — first and last point, each bucket's earliest
    min, earliest max and last — over plain lists, without building point objects; a
    test checks the two agree)."""
    n = len(steps)
    if max_points is None or n <= max_points:
        return list(range(n))
    buckets = bucket_count(max_points)
    first = steps[0]
    span = steps[-1] - first + 1
    lo_i, hi_i, last_i = {}, {}, {}
    for i in range(1, n - 1):
        b = (steps[i] - first) * buckets // span
        if b not in last_i:
            lo_i[b] = hi_i[b] = last_i[b] = i
            continue
        v = values[i]
        if v < values[lo_i[b]]:
            lo_i[b] = i
        if v > values[hi_i[b]]:
            hi_i[b] = i
        last_i[b] = i
    keep = {0, n - 1}
    keep.update(lo_i.values())
    keep.update(hi_i.values())
    keep.update(last_i.values())
    return sorted(keep)


def _time(value):
    if value is None or isinstance(value, datetime):
        return value
    return datetime.fromisoformat(str(value))


class LegacySQLFinder:
    """``TrackerFinder`` over ``SQLFinder(url)`` (capabilities: where, artifacts,
    fingerprints, heartbeat, series, since)."""

    capabilities = frozenset({"where", "artifacts", "fingerprints", "heartbeat", "series",
                              "since"})

    def __init__(self, url: str, stale_after: float):
        from ato.adict import ADict
        from ato.db_routers.sql.finder import SQLFinder

        self.url = url
        self.stale_after = stale_after
        self._sql = SQLFinder(ADict(experiment={"sql": {"db_path": url}}),
                              stale_after=stale_after)

    @staticmethod
    def _run(r) -> Run:
        return Run(id=r.id, project_name=r.project_name, config=r.config, tags=list(r.tags),
                   status=r.status, recorded_status=r.recorded_status,
                   start_time=r.start_time, end_time=r.end_time,
                   heartbeat_at=r.heartbeat_at, structural_hash=r.structural_hash)

    def list_projects(self) -> list[Project]:
        return [Project(p.id, p.name, p.description, p.created_at)
                for p in self._sql.list_projects()]

    def find_project(self, name: str) -> Project | None:
        p = self._sql.find_project(name)
        return None if p is None else Project(p.id, p.name, p.description, p.created_at)

    def find_run(self, run_id: int) -> Run | None:
        r = self._sql.find_run(run_id)
        return None if r is None else self._run(r)

    def find_runs(self, project_name=None, *, tags=None, status=None, where=None,
                  order_by="id", descending=False, limit=None, last=None) -> list[Run]:
        statuses = [status] if isinstance(status, str) or status is None else list(status)
        runs = []
        for s in statuses:
            runs += self._sql.find_runs(project_name, tags=tags, status=s, where=where,
                                        last=last)
        out = sorted((self._run(r) for r in runs),
                     key=lambda r: (str(getattr(r, order_by) or ""), r.id)
                     if order_by != "id" else r.id, reverse=bool(descending))
        return out[:limit] if limit is not None else out

    def metric_keys(self, run_ids) -> list[str]:
        ids = [int(r) for r in run_ids]
        keys: set = set()
        for start in range(0, len(ids), 500):
            chunk = ids[start:start + 500]
            binds = {f"r{i}": r for i, r in enumerate(chunk)}
            id_list = ", ".join(f":r{i}" for i in range(len(chunk)))
            rows = self._sql._rows(f"SELECT DISTINCT s.key FROM {self._sql._summary_source()}"
                                   f" s WHERE s.run_id IN ({id_list})", **binds)
            keys.update(r[0] for r in rows)
        return sorted(keys)

    def get_metric_summaries(self, run_ids, keys=None):
        ids = [int(r) for r in run_ids]
        keys = self.metric_keys(ids) if keys is None else list(keys)
        raw = self._sql.metric_summaries(ids, keys) if keys else {r: {} for r in ids}
        return {rid: {k: MetricSummary(rid, k, s["latest"], s["latest_step"], s["min"],
                                       s["max"], s["steps"]) for k, s in per.items()}
                for rid, per in raw.items()}

    def get_metric_history(self, run_id: int, key: str) -> list[MetricPoint]:
        return [MetricPoint(m.run_id, m.key, m.value, m.step, m.timestamp)
                for m in self._sql.get_metric_history(run_id, key)]

    def _points(self, run_id: int, key: str, min_step=None, max_step=None,
                columns: str = "id, step, value, timestamp") -> list[tuple]:
        """Plain DB-API tuples of one ``(run, key)`` ordered by ``(step, id)``; every value
        is a bound parameter."""
        mark = "?" if self._sql.engine.dialect.paramstyle == "qmark" else "%s"
        clauses, params = [f"run_id = {mark}", f"key = {mark}"], [int(run_id), key]
        if min_step is not None:
            clauses.append(f"step >= {mark}")
            params.append(int(min_step))
        if max_step is not None:
            clauses.append(f"step <= {mark}")
            params.append(int(max_step))
        sql = (f"SELECT {columns} FROM metrics WHERE " + " AND ".join(clauses)
               + " ORDER BY step, id")
        if self._sql._empty:
            return []
        with self._sql.engine.connect() as conn:
            cursor = conn.connection.dbapi_connection.cursor()
            try:
                cursor.execute(sql, params)
                return cursor.fetchall()
            finally:
                cursor.close()

    def get_metric_series(self, run_id: int, key: str, *, min_step=None, max_step=None,
                          max_points=None) -> MetricSeries:
        """The range's points reduced by ``ato.tracking.reduce_points``'s rule: inside the
        database server with window functions (PostgreSQL…), or over plain tuples in this
        process for SQLite (where that is the faster of the two)."""
        check_max_points(max_points)
        where, params = self._range(run_id, key, min_step, max_step)
        if self._sql.dialect != "sqlite":
            # A server: reduce where the rows are, only the kept ones cross the network.
            total = self._sql._rows(f"SELECT COUNT(*) FROM metrics WHERE {where}", **params)
            total = int(total[0][0]) if total else 0
            if max_points is None or total <= max_points:
                rows = self._sql._rows(f"SELECT id, step, value, timestamp FROM metrics "
                                       f"WHERE {where} ORDER BY step, id", **params)
            else:
                rows = self._sql._rows(_REDUCE_SQL.format(where=where),
                                       buckets=bucket_count(max_points), **params)
            points = [MetricPoint(int(run_id), key, float(v), int(s), _time(t))
                      for _i, s, v, t in rows]
            return MetricSeries(int(run_id), key, points, total, len(points) < total,
                                min_step, max_step)
        # SQLite (in-process): one indexed scan of plain (id, step, value) tuples, the rule
        # applied by reduce_indexes, then the kept points' timestamps.
        rows = self._points(run_id, key, min_step, max_step, "id, step, value")
        kept = [rows[i] for i in reduce_indexes([r[1] for r in rows], [r[2] for r in rows],
                                                max_points)]
        times: dict = {}
        ids = [r[0] for r in kept]
        for start in range(0, len(ids), 500):
            chunk = ids[start:start + 500]
            binds = {f"i{i}": v for i, v in enumerate(chunk)}
            id_list = ", ".join(f":i{i}" for i in range(len(chunk)))
            times.update(self._sql._rows(
                f"SELECT id, timestamp FROM metrics WHERE id IN ({id_list})", **binds))
        points = [MetricPoint(int(run_id), key, float(value), int(step), _time(times.get(i)))
                  for i, step, value in kept]
        return MetricSeries(int(run_id), key, points, len(rows), len(kept) < len(rows),
                            min_step, max_step)

    @staticmethod
    def _range(run_id, key, min_step, max_step):
        clauses, params = ["run_id = :r", "key = :k"], {"r": int(run_id), "k": key}
        if min_step is not None:
            clauses.append("step >= :s0")
            params["s0"] = int(min_step)
        if max_step is not None:
            clauses.append("step <= :s1")
            params["s1"] = int(max_step)
        return " AND ".join(clauses), params

    def get_metric_points_since(self, run_id: int, *, keys=None, after_step=None,
                                after_time=None) -> list[MetricPoint]:
        out = []
        for key in keys if keys is not None else self.metric_keys([run_id]):
            start = None if after_step is None else int(after_step) + 1
            for _id, step, value, timestamp in self._points(run_id, key, start, None):
                t = _time(timestamp)
                if after_time is None or (t is not None and t > after_time):
                    out.append(MetricPoint(int(run_id), key, float(value), int(step), t))
        return out

    def find_best_run(self, project_name, metric_key, mode="max"):
        best = self._sql.find_best_run(project_name, metric_key, mode=mode)
        return best if isinstance(best, dict) else self._run(best)

    def get_artifacts(self, run_id: int) -> list[Artifact]:
        run = self._sql.find_run(run_id)
        return [] if run is None else [Artifact(a.run_id, a.path, a.data_type, a.data_info, a.id)
                                       for a in run.artifacts]

    def get_fingerprints(self, run_id: int) -> list[Fingerprint]:
        run = self._sql.find_run(run_id)
        return [] if run is None else [Fingerprint(f.run_id, f.trace_id, f.trace_type,
                                                   f.fingerprint) for f in run.fingerprints]
