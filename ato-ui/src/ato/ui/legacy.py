"""The tracker protocol over an ato-sql ``SQLFinder`` that predates it.

:func:`ato.ui.data._open_finder` uses this only when ``ato.tracking.open_finder`` reports
that the installed ato-sql's finder lacks protocol members; every call maps to a public
``SQLFinder`` method, except :meth:`LegacySQLFinder.metric_keys`, which that finder has no
method for and which reads the summary table with a bound-parameter query.
"""

from __future__ import annotations

from ato.tracking import Artifact, Fingerprint, MetricPoint, MetricSummary, Project, Run


class LegacySQLFinder:
    """``TrackerFinder`` over ``SQLFinder(url)`` (capabilities: where, artifacts,
    fingerprints, heartbeat; series and since are computed by :class:`ato.tracking.Finder`
    from the full history)."""

    capabilities = frozenset({"where", "artifacts", "fingerprints", "heartbeat"})

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
