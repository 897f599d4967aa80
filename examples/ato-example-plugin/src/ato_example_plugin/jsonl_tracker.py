"""A tracker backend that needs no database: ``jsonl://runs`` (relative) or
``jsonl:///abs/dir`` keeps everything in plain files under that directory:

- ``<project>/<run id>/run.json``: config, structural hash, tags, status, times and code
  fingerprints (rewritten atomically); ``<project>`` is the name, %-quoted if needed;
- ``<project>/<run id>/metrics.jsonl``: one ``{"key", "value", "step", "timestamp"}``
  object per line (``timestamp`` in seconds since the epoch), appended in batches;
- ``<project>/<run id>/artifacts.jsonl``: one object per logged artifact;
- ``.projects/<id>.json`` and ``.run-ids/<id>``: the ids taken.

Ids are taken atomically (``mkdir`` for runs, exclusive create for projects), unique across
projects, so several processes can log to one directory.  It implements the whole tracker protocol
(``ato.tracking``) in plain Python — no SQLAlchemy — except the ``heartbeat`` capability:
a run whose process died stays ``running``.
"""

from __future__ import annotations

import json
import os
import sys
import tempfile
import time
from datetime import datetime, timezone
from urllib.parse import quote

from ato.adict import ADict
from ato.tracking import check_query, matches, parse_where, reduce_points, url_of
from ato.tracking.outcome import block_outcome
from ato.tracking.protocol import (
    Artifact,
    Fingerprint,
    MetricPoint,
    MetricSeries,
    MetricSummary,
    Project,
    Run,
)
from ato.tracking.reduce import check_max_points
from ato.tracking.secrets import without_passwords


def _directory(url: str) -> str:
    rest = url.split("://", 1)[1] if "://" in url else url.split(":", 1)[1]
    return rest if rest.startswith("/") and rest[:2] != "//" else rest.lstrip("/") or "."


def _now() -> str:
    return datetime.now(timezone.utc).replace(tzinfo=None).isoformat(sep=" ")


def _time(text):
    return None if text is None else datetime.fromisoformat(text)


def _from_epoch(seconds: float) -> datetime:
    return datetime.fromtimestamp(seconds, timezone.utc).replace(tzinfo=None)


def _write_json(path: str, data) -> None:
    fd, tmp = tempfile.mkstemp(dir=os.path.dirname(path), suffix=".tmp")
    with os.fdopen(fd, "w", encoding="utf-8") as f:
        json.dump(data, f, default=str)
    os.replace(tmp, path)


def _read_json(path: str):
    try:
        with open(path, encoding="utf-8") as f:
            return json.load(f)
    except (FileNotFoundError, json.JSONDecodeError):  # absent, or being written
        return None


def _lines(path: str) -> list[dict]:
    if not os.path.exists(path):
        return []
    with open(path, encoding="utf-8") as f:
        return [json.loads(line) for line in f if line.endswith("\n")]


def _ids(directory: str, suffix: str = "") -> list[int]:
    if not os.path.isdir(directory):
        return []
    out = []
    for name in os.listdir(directory):
        stem = name[:-len(suffix)] if suffix and name.endswith(suffix) else name
        if stem.isdigit() and (not suffix or name.endswith(suffix)):
            out.append(int(stem))
    return sorted(out)


def _folder(project: str) -> str:
    name = quote(project, safe="")
    return "%2E" + name[1:] if name.startswith(".") else name


def _run_dirs(root: str) -> dict[int, str]:
    """``{run id: directory}`` of every run under ``root``."""
    out = {}
    if not os.path.isdir(root):
        return out
    for folder in os.listdir(root):
        path = os.path.join(root, folder)
        if not folder.startswith(".") and os.path.isdir(path):
            out.update((i, os.path.join(path, str(i))) for i in _ids(path))
    return dict(sorted(out.items()))


def _projects(root: str) -> dict[str, Project]:
    """``{name: Project}``; a name claimed twice (a race) keeps its lowest id."""
    out: dict[str, Project] = {}
    for pid in _ids(os.path.join(root, ".projects"), ".json"):
        data = _read_json(os.path.join(root, ".projects", f"{pid}.json"))
        if data and data["name"] not in out:
            out[data["name"]] = Project(pid, data["name"], data.get("description"),
                                        _time(data.get("created_at")))
    return out


def _scope_fingerprints() -> dict:
    """``{"trace_id\\ttype": fingerprint}`` of the registered scopes (none when ato.scope
    was never imported)."""
    module = sys.modules.get("ato.scoping.scope")
    if module is None:
        return {}
    return {f"{trace_id}\t{kind}": fp for scope in module.Scope.registry.values()
            for trace_id, kinds in scope.fingerprints.items() for kind, fp in kinds.items()}


class JSONLinesLogger:
    """Writes runs as files; see the module docstring.  ``flush_count`` points are buffered
    before an append (``flush()``/``finish()`` write them at once)."""

    def __init__(self, config, flush_count: int = 1000, flush_interval: float = 0.5,
                 **options):
        if options:
            raise TypeError(f"the jsonl tracker's logger takes no options "
                            f"{', '.join(sorted(options))}")
        self.config = config
        self.url = url_of(config)
        self.root = _directory(self.url)
        experiment = config["experiment"]
        self.project_name = str(experiment.get("project_name", "default"))
        self.flush_count = flush_count
        self.flush_interval = float(flush_interval)  # seconds between flushes at most
        self._last_flush = time.monotonic()
        self._run_id = None
        self._block_run = None
        self._with_depth = 0
        self._buffer: list = []

    def __repr__(self):
        return f"JSONLinesLogger({self.url!r}, project={self.project_name!r})"

    # -- projects and runs
    def _project_id(self) -> int:
        known = _projects(self.root)
        if self.project_name in known:
            return known[self.project_name].id
        directory = os.path.join(self.root, ".projects")
        os.makedirs(directory, exist_ok=True)
        pid = 1 + max(_ids(directory, ".json"), default=0)
        while True:
            try:
                fd = os.open(os.path.join(directory, f"{pid}.json"),
                             os.O_CREAT | os.O_EXCL | os.O_WRONLY)
                break
            except FileExistsError:
                pid += 1
        with os.fdopen(fd, "w", encoding="utf-8") as f:
            json.dump({"id": pid, "name": self.project_name, "created_at": _now()}, f)
        winner = _projects(self.root)[self.project_name].id
        if winner != pid:  # another process created it first
            os.unlink(os.path.join(directory, f"{pid}.json"))
        return winner

    def _run_dir(self, run_id) -> str:
        if run_id == self._run_id:
            return self._dir
        directory = _run_dirs(self.root).get(int(run_id))
        if directory is None:
            raise KeyError(f"no run {run_id} in {self.url}")
        return directory

    def _save(self) -> None:
        _write_json(os.path.join(self._run_dir(self._run_id), "run.json"), self._record)

    def run(self, tags=None, config=None) -> int:
        """Start a new run; returns its id (unique in the directory).  A run still open is
        ended ``completed`` first; the first call inside a ``with`` block names the
        block's run instead (the protocol's rule)."""
        if self._run_id is not None and self._run_id == self._block_run:
            self._block_run = None
            config = ADict(self.config if config is None else config)
            self._record.update(config=without_passwords(config.to_dict()),
                                structural_hash=config.get_structural_hash(),
                                tags=[str(t) for t in tags or []])
            self._save()
            return self._run_id
        if self._run_id is not None:
            self.finish("completed")
        config = ADict(self.config if config is None else config)
        self._project_id()
        claims = os.path.join(self.root, ".run-ids")
        os.makedirs(claims, exist_ok=True)
        run_id = 1 + max(_ids(claims), default=0)
        while True:
            try:
                os.mkdir(os.path.join(claims, str(run_id)))
                break
            except FileExistsError:
                run_id += 1
        self._dir = os.path.join(self.root, _folder(self.project_name), str(run_id))
        os.makedirs(self._dir)
        self._run_id = run_id
        self._fingerprints_at_start = _scope_fingerprints()
        self._record = {"id": run_id, "project": self.project_name, "config": without_passwords(config.to_dict()),
                        "structural_hash": config.get_structural_hash(),
                        "tags": [str(t) for t in tags or []], "status": "running",
                        "start_time": _now(), "end_time": None,
                        "fingerprints": self._fingerprints_at_start}
        self._save()
        return run_id

    def get_current_run_id(self):
        return self._run_id

    def log_metric(self, key, value, step) -> None:
        if self._run_id is None:
            raise RuntimeError("log_metric() before run(): start a run first")
        value = float(value)  # NaN and ±inf are kept (JSON Lines as Python writes them)
        self._buffer.append({"key": str(key), "value": value, "step": int(step),
                             "timestamp": time.time()})
        if (len(self._buffer) >= self.flush_count
                or time.monotonic() - self._last_flush >= self.flush_interval):
            self.flush()

    def log_metrics(self, metrics, step) -> None:
        for key, value in metrics.items():
            self.log_metric(key, value, step)

    def flush(self) -> int:
        self._last_flush = time.monotonic()
        rows = self._buffer
        if not rows or self._run_id is None:
            return 0
        with open(os.path.join(self._run_dir(self._run_id), "metrics.jsonl"), "a",
                  encoding="utf-8") as f:
            f.write("".join(json.dumps(r) + "\n" for r in rows))
        self._buffer = []
        return len(rows)

    def log_artifact(self, run_id, file_path, data_type=None, metadata=None) -> None:
        directory = self._run_dir(run_id)
        with open(os.path.join(directory, "artifacts.jsonl"), "a", encoding="utf-8") as f:
            f.write(json.dumps({"path": str(file_path), "data_type": data_type,
                                "data_info": None if metadata is None else dict(metadata)},
                               default=str) + "\n")

    def update_status(self, status) -> None:
        if self._run_id is not None:
            self._record["status"] = str(status)
            self._save()

    def finish(self, status: str = "completed", error: str | None = None) -> None:
        """Flush and end the run with ``status`` (``error``: why it failed, if known)."""
        if self._run_id is None:
            return
        if error is not None:
            self._record["error"] = error
        self.flush()
        runtime = {k: v for k, v in _scope_fingerprints().items() if k.endswith("\truntime")
                   and self._fingerprints_at_start.get(k) != v}
        self._record["fingerprints"].update(runtime)
        self._record.update(status=str(status), end_time=_now())
        self._save()
        self._run_id = None

    def __enter__(self):
        self._with_depth += 1
        if self._with_depth == 1 and self._run_id is None:
            self._block_run = self.run()
        return self

    def __exit__(self, exc_type, exc, tb):
        self._with_depth -= 1
        if self._with_depth > 0:
            return False
        self._block_run = None
        self.finish(*block_outcome(exc_type, exc))
        return False


class JSONLinesRun(Run):
    """A protocol :class:`~ato.tracking.Run` that also offers the seed's ``metrics``,
    ``artifacts`` and ``fingerprints`` attributes."""

    _finder: JSONLinesFinder

    @property
    def metrics(self) -> list[MetricPoint]:
        return self._finder._points(self.id)

    @property
    def artifacts(self) -> list[Artifact]:
        return self._finder.get_artifacts(self.id)

    @property
    def fingerprints(self) -> list[Fingerprint]:
        return self._finder.get_fingerprints(self.id)


class JSONLinesFinder:
    """Reads the directory; never writes and never creates it."""

    capabilities = frozenset({"where", "artifacts", "fingerprints", "series", "since"})

    def __init__(self, config, stale_after: float = 60.0, **options):
        if options:
            raise TypeError(f"the jsonl tracker's finder takes no options "
                            f"{', '.join(sorted(options))}")
        self.url = url_of(config)
        self.root = _directory(self.url)
        self.stale_after = stale_after

    def __repr__(self):
        return f"JSONLinesFinder({self.url!r})"

    # -- reading
    def _dir(self, run_id: int) -> str | None:
        return _run_dirs(self.root).get(int(run_id))

    def _run(self, run_id: int, directory: str | None = None) -> JSONLinesRun | None:
        directory = directory or self._dir(run_id)
        data = directory and _read_json(os.path.join(directory, "run.json"))
        if not data:
            return None
        run = JSONLinesRun(id=data["id"], project_name=data["project"],
                           config=ADict(data["config"]), tags=list(data["tags"]),
                           status=data["status"], recorded_status=data["status"],
                           start_time=_time(data["start_time"]),
                           end_time=_time(data["end_time"]),
                           structural_hash=data["structural_hash"], error=data.get("error"))
        run._finder = self
        run._fingerprints = data.get("fingerprints", {})
        return run

    def _all_runs(self) -> list[JSONLinesRun]:
        runs = (self._run(i, d) for i, d in _run_dirs(self.root).items())
        return [r for r in runs if r is not None]

    def _points(self, run_id: int) -> list[MetricPoint]:
        """Every point of the run in logged order."""
        directory = self._dir(run_id)
        if directory is None:
            return []
        path = os.path.join(directory, "metrics.jsonl")
        return [MetricPoint(int(run_id), m["key"], m["value"], m["step"],
                            _from_epoch(m["timestamp"])) for m in _lines(path)]

    # -- projects and runs
    def list_projects(self) -> list[Project]:
        return sorted(_projects(self.root).values(), key=lambda p: p.id)

    def find_project(self, name: str) -> Project | None:
        return _projects(self.root).get(name)

    def find_run(self, run_id: int):
        return self._run(int(run_id))

    def find_runs(self, project_name=None, *, tags=None, status=None, where=None,
                  order_by: str = "id", descending: bool = False, limit=None, last=None):
        statuses = check_query(order_by, status, limit, last)
        tree = parse_where(where) if where else None
        runs = [r for r in self._all_runs()
                if (project_name is None or r.project_name == project_name)
                and all(t in r.tags for t in tags or [])
                and (statuses is None or r.status in statuses)
                and (tree is None or matches(tree, r.config))]
        if last is not None:
            runs = runs[len(runs) - last:] if last else []
        if order_by != "id" or descending:
            present = [r for r in runs if getattr(r, order_by) is not None]
            absent = [r for r in runs if getattr(r, order_by) is None]
            present.sort(key=lambda r: r.id)
            present.sort(key=lambda r: getattr(r, order_by), reverse=bool(descending))
            runs = present + absent
        return runs if limit is None else runs[:limit]

    def get_runs_in_project(self, project_name: str):
        return self.find_runs(project_name)

    def get_artifacts(self, run_id: int) -> list[Artifact]:
        directory = self._dir(run_id)
        if directory is None:
            return []
        return [Artifact(int(run_id), a["path"], a["data_type"], a["data_info"], i)
                for i, a in enumerate(_lines(os.path.join(directory, "artifacts.jsonl")), 1)]

    def get_fingerprints(self, run_id: int) -> list[Fingerprint]:
        run = self._run(int(run_id))
        if run is None:
            return []
        out = []
        for name, fp in run._fingerprints.items():
            trace_id, kind = name.rsplit("\t", 1)
            out.append(Fingerprint(run.id, trace_id, kind, fp))
        return out

    # -- metrics
    def metric_keys(self, run_ids) -> list[str]:
        return sorted({p.key for r in run_ids for p in self._points(r)})

    def get_metric_summaries(self, run_ids, keys=None) -> dict:
        wanted = None if keys is None else set(keys)
        out: dict = {}
        for run_id in run_ids:
            summaries: dict = {}
            for p in self._points(run_id):
                if wanted is not None and p.key not in wanted:
                    continue
                s = summaries.get(p.key)
                if s is None:
                    s = summaries[p.key] = MetricSummary(p.run_id, p.key, p.value, p.step,
                                                         None, None, 0)
                if p.step >= s.last_step:
                    s.last, s.last_step = p.value, p.step
                if p.value == p.value:  # NaN is never a min or a max
                    s.min = p.value if s.min is None else min(s.min, p.value)
                    s.max = p.value if s.max is None else max(s.max, p.value)
                s.count += 1
            out[int(run_id)] = summaries
        return out

    def get_metric_history(self, run_id: int, key: str) -> list[MetricPoint]:
        points = [p for p in self._points(run_id) if p.key == key]
        points.sort(key=lambda p: p.step)  # stable: logged order within a step
        return points

    def get_metric_series(self, run_id, key, *, min_step=None, max_step=None, max_points=None):
        check_max_points(max_points)
        points = [p for p in self.get_metric_history(run_id, key)
                  if (min_step is None or p.step >= min_step)
                  and (max_step is None or p.step <= max_step)]
        kept = reduce_points(points, max_points)
        return MetricSeries(int(run_id), key, kept, len(points), len(kept) < len(points),
                            min_step, max_step)

    def get_metric_points_since(self, run_id, *, keys=None, after_step=None, after_time=None):
        wanted = None if keys is None else set(keys)
        points = [p for p in self._points(run_id)
                  if (wanted is None or p.key in wanted)
                  and (after_step is None or p.step > after_step)
                  and (after_time is None or p.timestamp > after_time)]
        points.sort(key=lambda p: (p.key, p.step))
        return points

    def find_best_run(self, project_name: str, metric_key: str, mode: str = "max"):
        if mode not in ("max", "min"):
            raise ValueError(f"mode must be 'max' or 'min', not {mode!r}")
        if self.find_project(project_name) is None:
            return {"error": "Project not found"}
        best = None
        for run in self.find_runs(project_name):
            for p in self._points(run.id):
                if p.key == metric_key and p.value == p.value and (
                        best is None or (p.value > best[0] if mode == "max"
                                         else p.value < best[0])):
                    best = (p.value, run)
        return best[1] if best else {"error": "Run not found"}

    def get_trace_statistics(self, project_name: str, trace_id: str) -> dict:
        """How many distinct static and runtime fingerprints ``trace_id`` had in the project."""
        if self.find_project(project_name) is None:
            return {"error": "Project not found"}
        seen: dict = {"static": set(), "runtime": set()}
        for run in self.find_runs(project_name):
            for f in self.get_fingerprints(run.id):
                if f.trace_id == trace_id and f.trace_type in seen:
                    seen[f.trace_type].add(f.fingerprint)
        return {"project_name": project_name, "trace_id": trace_id,
                "static_trace_versions": len(seen["static"]),
                "runtime_trace_versions": len(seen["runtime"])}

    def find_similar_runs(self, run_id: int):
        run = self.find_run(run_id)
        if run is None:
            return []
        return [r for r in self._all_runs()
                if r.structural_hash == run.structural_hash and r.id != run.id]


class JSONLinesTracker:
    """``jsonl://<directory>``: runs as JSON and JSON Lines files."""

    PLUGIN_NAME = "jsonl"
    schemes = ("jsonl",)

    @classmethod
    def logger(cls, config, **options):
        return JSONLinesLogger(config, **options)

    @classmethod
    def finder(cls, config, **options):
        return JSONLinesFinder(config, **options)
