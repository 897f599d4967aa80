"""A tracker backend that needs no database: ``jsonl://runs`` (relative) or
``jsonl:///abs/dir`` keeps every run in ``<dir>/<project>/<run id>/``:

- ``run.json``: config, structural hash, tags, status, times (rewritten atomically);
- ``metrics.jsonl``: one ``{"key", "value", "step", "timestamp"}`` object per line,
  appended in batches;
- ``artifacts.jsonl``: one object per logged artifact.

Run ids are unique across projects (taken with an atomic ``mkdir``), so several processes
can log to one directory.  It implements the logger and finder methods the seed README
uses, which is all ``SQLLogger(config)`` / ``SQLFinder(config)`` need to hand over to it.
"""

from __future__ import annotations

import json
import os
import tempfile
import time
from datetime import datetime, timezone

from ato.adict import ADict


def _directory(url: str) -> str:
    rest = url.split("://", 1)[1] if "://" in url else url.split(":", 1)[1]
    return rest if rest.startswith("/") and rest[:2] != "//" else rest.lstrip("/") or "."


def _now() -> str:
    return datetime.now(timezone.utc).replace(tzinfo=None).isoformat(sep=" ")


def _write_json(path: str, data) -> None:
    fd, tmp = tempfile.mkstemp(dir=os.path.dirname(path), suffix=".tmp")
    with os.fdopen(fd, "w", encoding="utf-8") as f:
        json.dump(data, f, default=str)
    os.replace(tmp, path)


def _url(config) -> str:
    return str(config["experiment"]["sql"]["db_path"])


class JSONLinesLogger:
    def __init__(self, config, flush_count: int = 1000, **options):
        self.config = config
        self.root = _directory(_url(config))
        self.project = str(config["experiment"].get("project_name", "default"))
        self.flush_count = flush_count
        self._run_id = None
        self._buffer: list = []

    # -- runs
    def _run_dir(self, run_id) -> str:
        return os.path.join(self.root, self.project, str(run_id))

    def run(self, tags=None, config=None) -> int:
        config = self.config if config is None else config
        os.makedirs(os.path.join(self.root, self.project), exist_ok=True)
        run_id = 1 + max((int(r) for p in _projects(self.root) for r in _run_ids(self.root, p)),
                         default=0)
        while True:
            try:
                os.mkdir(self._run_dir(run_id))
                break
            except FileExistsError:
                run_id += 1
        self._run_id = run_id
        self._record = {"id": run_id, "project": self.project, "config": ADict(config).to_dict(),
                        "structural_hash": ADict(config).get_structural_hash(),
                        "tags": list(tags or []), "status": "running", "start_time": _now(),
                        "end_time": None}
        _write_json(os.path.join(self._run_dir(run_id), "run.json"), self._record)
        return run_id

    def get_current_run_id(self):
        return self._run_id

    def log_metric(self, key, value, step) -> None:
        if self._run_id is None:
            raise RuntimeError("log_metric() before run(): start a run first")
        self._buffer.append({"key": str(key), "value": float(value), "step": int(step),
                             "timestamp": time.time()})
        if len(self._buffer) >= self.flush_count:
            self.flush()

    def log_metrics(self, metrics, step) -> None:
        for key, value in metrics.items():
            self.log_metric(key, value, step)

    def flush(self) -> int:
        rows, self._buffer = self._buffer, []
        if rows and self._run_id is not None:
            with open(os.path.join(self._run_dir(self._run_id), "metrics.jsonl"), "a",
                      encoding="utf-8") as f:
                f.write("".join(json.dumps(r) + "\n" for r in rows))
        return len(rows)

    def log_artifact(self, run_id, file_path, data_type=None, metadata=None) -> None:
        with open(os.path.join(self._run_dir(run_id), "artifacts.jsonl"), "a",
                  encoding="utf-8") as f:
            f.write(json.dumps({"path": str(file_path), "data_type": data_type,
                                "data_info": metadata}, default=str) + "\n")

    def update_status(self, status) -> None:
        if self._run_id is not None:
            self._record["status"] = status
            _write_json(os.path.join(self._run_dir(self._run_id), "run.json"), self._record)

    def finish(self, status: str = "completed") -> None:
        if self._run_id is None:
            return
        self.flush()
        self._record.update(status=status, end_time=_now())
        _write_json(os.path.join(self._run_dir(self._run_id), "run.json"), self._record)
        self._run_id = None

    def __enter__(self):
        if self._run_id is None:
            self.run()
        return self

    def __exit__(self, exc_type, exc, tb):
        self.finish("completed" if exc_type is None else "failed")
        return False


def _projects(root: str) -> list[str]:
    if not os.path.isdir(root):
        return []
    return sorted(p for p in os.listdir(root) if os.path.isdir(os.path.join(root, p)))


def _run_ids(root: str, project: str) -> list[str]:
    path = os.path.join(root, project)
    return [r for r in os.listdir(path) if r.isdigit()] if os.path.isdir(path) else []


class _Metric:
    __slots__ = ("key", "value", "step", "timestamp")

    def __init__(self, key, value, step, timestamp):
        self.key, self.value, self.step, self.timestamp = key, value, step, timestamp

    def __repr__(self):
        return f"Metric({self.key!r}, value={self.value!r}, step={self.step})"


class JSONLinesRun:
    def __init__(self, directory: str, record: dict):
        self._dir = directory
        self.id = record["id"]
        self.project_name = record["project"]
        self.config = ADict(record["config"])
        self.structural_hash = record["structural_hash"]
        self.tags = record["tags"]
        self.status = record["status"]
        self.start_time = record["start_time"]
        self.end_time = record["end_time"]

    def _lines(self, name):
        path = os.path.join(self._dir, name)
        if not os.path.exists(path):
            return []
        with open(path, encoding="utf-8") as f:
            return [json.loads(line) for line in f if line.strip()]

    @property
    def metrics(self) -> list[_Metric]:
        return [_Metric(**m) for m in self._lines("metrics.jsonl")]

    @property
    def artifacts(self) -> list[ADict]:
        return [ADict(a) for a in self._lines("artifacts.jsonl")]

    @property
    def fingerprints(self) -> list:
        return []

    def __repr__(self):
        return f"Run({self.id}, project={self.project_name!r}, status={self.status!r})"


class JSONLinesFinder:
    def __init__(self, config, **options):
        self.root = _directory(_url(config))

    def _runs(self, project=None) -> list[JSONLinesRun]:
        runs = []
        for p in [project] if project is not None else _projects(self.root):
            for r in _run_ids(self.root, p):
                directory = os.path.join(self.root, p, r)
                with open(os.path.join(directory, "run.json"), encoding="utf-8") as f:
                    runs.append(JSONLinesRun(directory, json.load(f)))
        return sorted(runs, key=lambda run: run.id)

    def get_runs_in_project(self, project_name: str) -> list[JSONLinesRun]:
        return self._runs(project_name)

    def find_run(self, run_id: int):
        return next((r for r in self._runs() if r.id == int(run_id)), None)

    def find_best_run(self, project_name: str, metric_key: str, mode: str = "max"):
        if mode not in ("max", "min"):
            raise ValueError(f"mode must be 'max' or 'min', not {mode!r}")
        if project_name not in _projects(self.root):
            return {"error": "Project not found"}
        best = None
        for run in self._runs(project_name):
            for m in run.metrics:
                if m.key == metric_key and (best is None or (m.value > best[0] if mode == "max"
                                                             else m.value < best[0])):
                    best = (m.value, run)
        return best[1] if best else {"error": "Run not found"}

    def find_similar_runs(self, run_id: int) -> list[JSONLinesRun]:
        run = self.find_run(run_id)
        if run is None:
            return []
        return [r for r in self._runs() if r.structural_hash == run.structural_hash and r.id != run.id]

    def get_trace_statistics(self, project_name: str, trace_id: str) -> dict:
        if project_name not in _projects(self.root):
            return {"error": "Project not found"}
        return {"project_name": project_name, "trace_id": trace_id,
                "static_trace_versions": 0, "runtime_trace_versions": 0}


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
