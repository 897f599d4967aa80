"""The dashboard's data layer: the only module of ato-ui that talks to the tracker.

Everything the web API serves is computed here from a tracker *finder* opened read-only:

- SQLite files are opened with ``mode=ro`` (no write lock is ever taken, a missing file is
  an error, never a new empty database); PostgreSQL sessions run with
  ``default_transaction_read_only=on``.
- Values are returned as plain JSON-able Python (``dict``/``list``/``str``/``float``…); the
  front end escapes them when it displays them.

Shapes (times are seconds since the Unix epoch, UTC, as floats; steps are ints):

- run row: ``{"id", "project", "status", "tags", "start", "end", "duration", "hash",
  "config": {dotted_key: value}}`` where ``status`` is ``crashed`` for a ``running`` run
  whose heartbeat is stale.
- summary: ``{"last", "min", "max", "count", "last_step"}`` per run and metric key.
- series: ``{"run", "steps", "values", "times", "total", "returned"}``; ``total`` is the
  number of points in the requested step range, ``returned`` what was sent after the
  reduction (:func:`reduce_points`).
"""

from __future__ import annotations

import base64
import json
import math
import os
import re
import sys
from array import array
from dataclasses import dataclass
from datetime import datetime, timezone

from ato.errors import AtoError
from ato.tracking import MAX_RUN_ID, parse_run_id
from ato.tracking.secrets import hide_passwords
from ato.tracking.where import key_segment

# ato.tracking (its where-grammar included) is imported on first use, not before `ato ui`
# serves its first page.


def flatten(config) -> dict:
    """:func:`ato.tracking.flatten`: a nested config as ``{dotted_key: value}``."""
    from ato.tracking import flatten as _flatten

    return _flatten(config)

DEFAULT_DB = "sqlite:///experiments.db"
#: How old (seconds) the heartbeat of a ``running`` run may be before it shows as crashed.
STALE_AFTER = 60.0


class DatabaseMissingError(AtoError, FileNotFoundError):
    """The tracker URL names a database that does not exist (nothing is created)."""




def _duration(start, end, heartbeat):
    """A run's duration in seconds: until its end; for a run not ended (running, or
    crashed) until its last heartbeat — the same data on every view and before and after
    it turns crashed (a running run's clock on the page ran on, then dropped to its last
    heartbeat when the run was found crashed). ``None`` when unknown."""
    if start is None:
        return None
    last = end if end is not None else heartbeat
    return None if last is None else last - start


#: A run id as text: plain ASCII digits, no sign, no leading zero, no space (``int()``
#: took ``" 1"``, ``"+1"``, ``"01"``, ``"1_0"`` and full-width digits as ids).
RUN_ID_TEXT = re.compile(r"[1-9][0-9]*")


def run_id_text(text: str, name: str = "the run id") -> int:
    """One run id as text (:func:`ato.tracking.parse_run_id`) from 1 to ``MAX_RUN_ID``, else
    :class:`BadRequest` (400) naming ``name`` — an id no database can hold is a bad
    request, not an unknown run."""
    run_id = parse_run_id(text)
    if run_id is not None:
        return run_id
    stripped = text.strip()
    if RUN_ID_TEXT.fullmatch(text) or (stripped.isdigit() and stripped == "0" * len(stripped)):
        # plain digits past the limit, or zero
        raise BadRequest(f"{name}: {text[:40]} is not a run id (run ids are 1 to {MAX_RUN_ID})")
    rule = f"in plain digits, 1 to {MAX_RUN_ID} (no sign, leading zero or space)"
    if name == "the run id":
        raise BadRequest(f"the run id must be an integer {rule}, not {text[:40]!r}")
    raise BadRequest(f"{name}: {text[:40]!r} is not a run id: run ids are integers {rule}")


def run_id_param(text: str) -> int:
    """A run id from a path (``/api/run/{run_id}``): see :func:`run_id_text`."""
    try:
        return run_id_text(text)
    except BadRequest as e:
        if str(e).startswith("the run id: "):  # "N is not a run id (...)"
            raise BadRequest(str(e)[len("the run id: "):]) from None
        raise


class BadRequest(AtoError, ValueError):
    """A request parameter is malformed; the message names the parameter."""


def _epoch(value) -> float | None:
    if value is None:
        return None
    if not isinstance(value, datetime):
        value = datetime.fromisoformat(str(value))
    if value.tzinfo is None:
        value = value.replace(tzinfo=timezone.utc)
    return value.timestamp()


def type_name(value) -> str:
    """The config type shown by the structure diff: int, float, str, bool, null, list, dict."""
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "bool"
    if isinstance(value, int):
        return "int"
    if isinstance(value, float):
        return "float"
    if isinstance(value, str):
        return "str"
    if isinstance(value, (list, tuple)):
        return "list"
    if isinstance(value, dict):
        return "dict"
    return type(value).__name__


def _flat_finite(config: dict, prefix: str = "", out: dict | None = None) -> dict:
    """``{k: _finite(v) for k, v in flatten(config).items()}`` for plain nested dicts, in
    one pass (the runs table flattens every run's config)."""
    if out is None:
        out = {}
    for k, v in config.items():
        segment = key_segment(k)
        path = f"{prefix}.{segment}" if prefix else segment
        if type(v) is dict and v:
            _flat_finite(v, path, out)
        elif ((type(v) is float and not math.isfinite(v)) or (type(v) is str and "@" in v)
              or type(v) in (list, tuple, dict)):
            out[path] = _finite(v)
        else:
            out[path] = v
    return out


def _f64(numbers) -> str:
    """``numbers`` as the base64 of little-endian doubles (``None``, a missing time, as
    NaN)."""
    try:
        packed = array("d", numbers)
    except TypeError:
        packed = array("d", (math.nan if x is None else x for x in numbers))
    if sys.byteorder == "big":
        packed.byteswap()
    return base64.b64encode(packed.tobytes()).decode("ascii")


def _finite(value):
    """JSON has no inf/nan: they travel as the strings ``"inf"``, ``"-inf"``, ``"nan"``,
    at any depth of a list, tuple or dict (a config's ``[0.1, inf]`` schedule). A string
    has any password inside a URL masked (:func:`mask_secrets`)."""
    if isinstance(value, float):
        if math.isfinite(value):
            return value
        return "nan" if math.isnan(value) else ("inf" if value > 0 else "-inf")
    if isinstance(value, str):
        return mask_secrets(value) if "@" in value else value
    if isinstance(value, dict):
        return {k: _finite(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_finite(v) for v in value]
    return value


#: ``text`` with the password of every URL in it replaced by ``***``, so that no view of
#: the dashboard shows one stored in a config value or a tag (a run recorded before the
#: tracker masked them itself).
mask_secrets = hide_passwords


@dataclass
class Trial:
    run: int
    study: str
    key: str | None
    bracket: str | None
    rung: int | None
    budget: float | None
    config_hash: str | None
    objective: float | None
    status: str


class Store:
    """Read-only access to one tracker database for the dashboard.

    ``url`` is a tracker URL (``sqlite:///path.db``, ``postgresql://…``). Raises
    :class:`DatabaseMissingError` when an SQLite file does not exist, and
    :class:`~ato.errors.AtoError` when the server cannot be reached.
    """

    #: How many answers of :meth:`runs_json` are kept (filters the user went back to).
    CACHE_SIZE = 8

    def __init__(self, url: str, stale_after: float = STALE_AFTER):
        import threading

        self.url = url
        self.stale_after = stale_after
        self._finder = _open_finder(url, stale_after)
        self._cache: dict = {}
        self._cache_lock = threading.Lock()
        self._version_conn = None

    @property
    def finder(self):
        """The read-only protocol finder this store reads (for :mod:`ato.ui.registry`)."""
        return self._finder

    # ------------------------------------------------------------------ helpers
    def display_url(self) -> str:
        """The URL without its password."""
        try:
            from sqlalchemy.engine import make_url

            return make_url(self.url).render_as_string(hide_password=True)
        except Exception:
            return self.url

    def _run_row(self, run) -> dict:
        start, end = _epoch(run.start_time), _epoch(run.end_time)
        duration = _duration(start, end, _epoch(getattr(run, "heartbeat_at", None)))
        config = run.config.to_dict() if hasattr(run.config, "to_dict") else dict(run.config)
        return {"id": run.id, "project": run.project_name, "status": run.status,
                "tags": [mask_secrets(str(t)) for t in (run.tags or [])], "start": start, "end": end,
                "duration": duration, "hash": run.structural_hash,
                "config": {k: _finite(v) for k, v in flatten(config).items()}}

    @staticmethod
    def _plain_row(run: dict, now: float) -> dict:
        """:meth:`_run_row` of a plain row from a finder's ``find_run_rows``."""
        start, end = _epoch(run["start_time"]), _epoch(run["end_time"])
        duration = _duration(start, end, _epoch(run["heartbeat_at"]))
        return {"id": run["id"], "project": run["project_name"], "status": run["status"],
                "tags": [mask_secrets(str(t)) for t in run["tags"]], "start": start, "end": end,
                "duration": duration, "hash": run["structural_hash"],
                "config": _flat_finite(run["config"])}

    # ------------------------------------------------------------------ API
    def projects(self) -> list[dict]:
        """``[{"id", "name"}]`` in creation order (no run counts: counting would build
        every run, and the runs table says how many it shows)."""
        return [{"id": p.id, "name": p.name} for p in self._finder.list_projects()]

    def runs(self, project: str | None = None, where: str | None = None,
             tags: list[str] | None = None, status: str | None = None,
             ids: list[int] | None = None) -> dict:
        """Runs matching the filters (``where`` is the typed grammar of ``ato runs
        --where``, compiled with bound parameters), with every metric's summary.

        Returns ``{"runs": [run row…], "metric_keys": [...], "summaries": {run_id:
        {key: summary}}}``. A malformed ``where`` raises :class:`BadRequest` naming the
        position. ``ids`` keeps only those runs (in the given order).
        """
        # A backend finder with ``find_run_rows`` (ato-sql's) gives plain rows without
        # building a Run and its ADict per run; any other goes through the protocol.
        fast = getattr(getattr(self._finder, "backend", None), "find_run_rows", None)
        filters = {"tags": tags or None, "status": status or None, "where": where or None}
        try:
            runs = (fast(project or None, **filters) if fast is not None
                    else self._finder.find_runs(project or None, **filters))
        except (AtoError, ValueError) as e:
            # The grammar's message names the CLI option; in the page it is the where filter.
            message = str(e)
            if message.startswith("in --where "):
                message = "in the where filter " + message[len("in --where "):]
            raise BadRequest(message) from e
        if ids is not None:
            by_id = {(r["id"] if fast else r.id): r for r in runs}
            runs = [by_id[i] for i in ids if i in by_id]
        if fast is not None:
            now = datetime.now(timezone.utc).timestamp()
            rows = [self._plain_row(r, now) for r in runs]
        else:
            rows = [self._run_row(r) for r in runs]
        summaries = self.summaries([r["id"] for r in rows], None)  # every key, one query
        keys = sorted({k for per in summaries.values() for k in per})
        return {"runs": rows, "metric_keys": keys, "summaries": summaries}

    def data_version(self) -> int | None:
        """SQLite's change counter for this database (``PRAGMA data_version`` on a
        read-only connection of the store's own: it changes whenever any other connection
        commits), or ``None`` for a database without one (PostgreSQL, other backends)."""
        path = _sqlite_path(self.url)
        if path is None:
            return None
        import sqlite3
        from pathlib import Path

        with self._cache_lock:
            if self._version_conn is None:
                uri = Path(path).absolute().as_uri() + "?mode=ro"
                self._version_conn = sqlite3.connect(uri, uri=True, check_same_thread=False)
            return self._version_conn.execute("PRAGMA data_version").fetchone()[0]

    def runs_json(self, project: str | None = None, where: str | None = None,
                  tags: list[str] | None = None, status: str | None = None,
                  ids: list[int] | None = None) -> str:
        """:meth:`runs` as JSON text, kept while the database does not change.

        On SQLite the answer is reused until :meth:`data_version` changes (a run logged,
        a status or a heartbeat written), unless it holds a ``running`` run or filters by
        status: a running run turns ``crashed`` and its duration grows without any write.
        Elsewhere every call reads the database."""
        version = self.data_version()
        key = (project, where, tuple(tags or ()), status, tuple(ids) if ids else None)
        if version is not None:
            with self._cache_lock:
                hit = self._cache.get(key)
            if hit is not None and hit[0] == version:
                return hit[1]
        data = self.runs(project, where, tags, status, ids)
        text = dumps(data)
        if (version is not None and status is None
                and not any(r["status"] == "running" for r in data["runs"])):
            with self._cache_lock:
                self._cache.pop(key, None)
                self._cache[key] = (version, text)
                while len(self._cache) > self.CACHE_SIZE:
                    self._cache.pop(next(iter(self._cache)))
        return text

    def metric_keys(self, run_ids) -> list[str]:
        """Every metric key logged by any of ``run_ids``, sorted."""
        return self._finder.metric_keys([int(r) for r in run_ids])

    def summaries(self, run_ids, keys) -> dict:
        """``{run_id: {key: {"last", "min", "max", "count", "last_step"}}}`` for ``keys``
        (every key the runs logged when ``None``)."""
        if keys is not None and not keys:
            return {}
        raw = self._finder.get_metric_summaries(list(run_ids),
                                                None if keys is None else list(keys))
        return {rid: {k: {"last": _finite(s.last), "min": _finite(s.min),
                          "max": _finite(s.max), "count": s.count,
                          "last_step": s.last_step} for k, s in per.items()}
                for rid, per in raw.items()}

    def run(self, run_id: int) -> dict | None:
        """One run in full: the run row plus ``error`` (why it failed or was killed, or
        ``None``), the nested ``config_tree``, ``types`` (dotted key → type name), ``artifacts``, ``fingerprints``, ``summaries`` and
        ``metric_keys``; ``None`` if there is no such run."""
        run = self._finder.find_run(int(run_id))
        if run is None:
            return None
        row = self._run_row(run)
        # why a run failed or was killed, as the logger recorded it (`ato runs show`'s error)
        error = getattr(run, "error", None)
        row["error"] = mask_secrets(str(error)) if error else None
        config = run.config.to_dict() if hasattr(run.config, "to_dict") else dict(run.config)
        row["config_tree"] = _finite(config)
        row["types"] = {k: type_name(v) for k, v in flatten(config).items()}
        artifacts = (self._finder.get_artifacts(run.id)
                     if self._finder.supports("artifacts") else [])
        fingerprints = (self._finder.get_fingerprints(run.id)
                        if self._finder.supports("fingerprints") else [])
        row["artifacts"] = [{"path": a.path, "type": a.data_type,
                             "metadata": _finite(a.metadata)} for a in artifacts]
        row["fingerprints"] = [{"trace": f.trace_id, "type": f.trace_type,
                                "fingerprint": f.fingerprint} for f in fingerprints]
        keys = self.metric_keys([run.id])
        row["metric_keys"] = keys
        row["summaries"] = self.summaries([run.id], keys).get(run.id, {})
        return row

    def series(self, run_ids, key: str, max_points: int | None = 1000,
               step_min: int | None = None, step_max: int | None = None,
               with_times: bool = True, f64: bool = False) -> list[dict]:
        """The history of metric ``key`` for each run, optionally restricted to
        ``step_min <= step <= step_max`` and reduced to about ``max_points`` points per
        run (:func:`ato.tracking.reduce_points`: the first point, and each aligned step
        bucket's finite min and max, last and first non-finite point). ``with_times=False``
        sends ``times: []`` (a chart over steps needs none). ``max_points`` below 9 raises
        :class:`BadRequest`.

        ``f64``: ``steps``, ``values`` and ``times`` are each one string, the base64 of
        the little-endian IEEE 754 doubles (NaN and the infinities as themselves; a step
        beyond 2**53 rounds as a JavaScript number would) — what the page asks for: a
        chart's 100,000 numbers encode in a tenth of the time of JSON's digits."""
        from ato.tracking import check_max_points, check_step_bounds

        out = []
        try:
            check_max_points(max_points)
            check_step_bounds(step_min, step_max, names=("step_min", "step_max"))
        except ValueError as e:
            raise BadRequest(str(e)) from e

        # All runs in one call: the tracker reads them together (ato-sql: a few statements
        # in all, see get_metric_series_columns) and hands over columns, not a record per
        # point.
        columns = self._finder.get_metric_series_columns(
            [int(r) for r in run_ids], key, min_step=step_min, max_step=step_max,
            max_points=max_points, times=with_times)
        for c in columns:
            steps, values = c.steps, c.values
            times = list(map(_epoch, c.times)) if with_times else []
            if f64:
                steps, values, times = _f64(steps), _f64(values), _f64(times)
            elif not all(map(math.isfinite, values)):
                values = [_finite(v) for v in values]
            out.append({"run": c.run_id, "steps": steps, "values": values, "times": times,
                        "total": c.total, "returned": len(c.steps)})
        return out

    def points_since(self, run_id: int, key: str, after_step: int) -> list[tuple]:
        """Points of (run, key) with ``step > after_step``, as ``(step, value, time)``."""
        pts = self._finder.get_metric_points_since(int(run_id), keys=[key],
                                                   after_step=int(after_step))
        return [(p.step, _finite(p.value), _epoch(p.timestamp)) for p in pts]

    def statuses(self, run_ids) -> dict:
        """``{run_id: status}`` (``crashed`` for a stale ``running`` run)."""
        wanted = {int(r) for r in run_ids}
        if len(wanted) > 20:
            return {r.id: r.status for r in self._finder.find_runs() if r.id in wanted}
        out = {}
        for rid in sorted(wanted):
            run = self._finder.find_run(rid)
            if run is not None:
                out[run.id] = run.status
        return out

    # ------------------------------------------------------------------ searches
    def studies(self) -> list[dict]:
        """Every study recorded with ``study:<id>`` tags: ``[{"study", "trials", "final",
        "project"}]``; ``trials`` counts the runs of the search, ``final`` those tagged
        ``final`` (the re-evaluation of its winner, not a trial: as :meth:`study`)."""
        found: dict = {}
        for run in self._finder.find_runs():
            tags = [t for t in run.tags or [] if isinstance(t, str)]
            for tag in tags:
                if tag.startswith("study:"):
                    entry = found.setdefault(tag[6:], {"study": tag[6:], "trials": 0,
                                                       "final": 0,
                                                       "project": run.project_name})
                    entry["final" if "final" in tags else "trials"] += 1
        return list(found.values())

    def study(self, study: str) -> dict:
        """The trials of one study with the successive-halving bookkeeping.

        Returns ``{"study", "trials": [{"run", "key", "bracket", "rung", "budget",
        "config_hash", "objective", "status", "promoted", "order"}], "mode", "algorithm",
        "final"}`` (``final``: ids of runs tagged ``final``, a re-evaluation of the winner,
        kept out of the ladder). A trial is
        *promoted* when a trial of the same study, bracket and config hash exists at rung
        ``rung + 1``. Searches that tag ``generation:<g>`` instead of ``rung:<r>`` and no
        ``config:<hash>`` are read with the generation as the rung and a hash of the
        run's config without its ``__…__`` bookkeeping keys as the config. ``mode`` (``min``/``max``) is inferred from which side promoted trials
        fall on (``min`` when undecidable). ``None`` when no run is tagged
        ``study:<study>`` (no such study).
        """
        runs = self._finder.find_runs(tags=[f"study:{study}"])
        if not runs:
            return None
        trials, final, algorithm = [], [], None
        for run in runs:
            info = _tag_map(run.tags or [])
            algorithm = algorithm or info.get("algorithm")
            if "final" in (run.tags or []):  # HyperBand's re-evaluation of its winner
                final.append(run.id)
                continue
            rung = info.get("rung", info.get("generation"))
            trials.append(Trial(run=run.id, study=study, key=info.get("trial"),
                                bracket=info.get("bracket"),
                                rung=_int_or_none(rung),
                                budget=_float_or_none(info.get("budget")),
                                config_hash=info.get("config") or _searched_hash(run),
                                objective=None, status=run.status))
        ids = [t.run for t in trials]
        sums = self.summaries(ids, ["objective"])
        for t in trials:
            s = sums.get(t.run, {}).get("objective")
            t.objective = s["last"] if s else None
        present = {(t.bracket, t.config_hash, t.rung) for t in trials}
        rows = []
        for order, t in enumerate(trials):
            promoted = (t.rung is not None
                        and (t.bracket, t.config_hash, t.rung + 1) in present)
            rows.append({"run": t.run, "key": t.key, "bracket": t.bracket, "rung": t.rung,
                         "budget": t.budget, "config_hash": t.config_hash,
                         "objective": t.objective, "status": t.status,
                         "promoted": promoted, "order": order})
        return {"study": study, "trials": rows, "mode": _infer_mode(rows),
                "algorithm": algorithm, "final": final}


def _searched_hash(run) -> str:
    import hashlib

    config = run.config.to_dict() if hasattr(run.config, "to_dict") else dict(run.config)
    flat = {k: v for k, v in flatten(config).items()
            if not any(part.startswith("__") for part in k.split("."))}
    return hashlib.sha256(dumps(sorted(flat.items())).encode()).hexdigest()[:16]


def _tag_map(tags) -> dict:
    out = {}
    for tag in tags:
        if isinstance(tag, str) and ":" in tag:
            name, _, value = tag.partition(":")
            out.setdefault(name, value)
    return out


def _int_or_none(text):
    try:
        return int(text)
    except (TypeError, ValueError):
        return None


def _float_or_none(text):
    """``"8.1"`` → 8.1, ``"10/9"`` (an exact budget) → 1.111…, anything else → ``None``."""
    from fractions import Fraction

    try:
        return float(Fraction(text))
    except (TypeError, ValueError, ZeroDivisionError):
        return None


def _infer_mode(rows) -> str:
    score = 0
    by_rung: dict = {}
    for r in rows:
        if r["objective"] is None or isinstance(r["objective"], str) or r["rung"] is None:
            continue
        by_rung.setdefault((r["bracket"], r["rung"]), []).append(r)
    for members in by_rung.values():
        up = [r["objective"] for r in members if r["promoted"]]
        down = [r["objective"] for r in members if not r["promoted"]]
        if up and down:
            score += (sum(up) / len(up) > sum(down) / len(down)) - (
                sum(up) / len(up) < sum(down) / len(down))
    return "max" if score > 0 else "min"


# ---------------------------------------------------------------------------- backends
def _sqlite_path(url: str) -> str | None:
    """The file of an ``sqlite:///`` URL, ``None`` for in-memory or other schemes."""
    scheme = url.split(":", 1)[0].split("+", 1)[0].lower()
    if scheme != "sqlite":
        return None
    rest = url.split(":///", 1)[1] if ":///" in url else ""
    path = rest.split("?", 1)[0]
    return path if path and path != ":memory:" else None


class DatabaseFile:
    """The SQLite file of ``url`` as it was when the dashboard opened it (``path`` is
    ``None`` for other databases). :meth:`check` runs before each answer, so a file removed
    or replaced under a running server is said rather than served from the open copy (an
    open SQLite connection keeps reading a deleted file's old contents)."""

    def __init__(self, url: str):
        self.path = _sqlite_path(url)
        self._identity = self._stat() if self.path else None

    def _stat(self) -> tuple[int, int] | None:
        try:
            st = os.stat(self.path)
        except FileNotFoundError:
            return None
        return st.st_dev, st.st_ino

    def check(self) -> None:
        """Raises :class:`DatabaseMissingError` when the file is gone and
        :class:`~ato.errors.AtoError` when another file now has its path."""
        if self.path is None:
            return
        now = self._stat()
        if now is None:
            raise DatabaseMissingError(
                f"the database file {self.path} was removed while the dashboard was running; "
                "nothing from it is shown (start `ato ui` again once it exists)")
        if now != self._identity:
            raise AtoError(
                f"the database file {self.path} was replaced by another file while the "
                "dashboard was running; restart `ato ui` to read the new one")


def check_database(url: str) -> None:
    """Check that ``url``, when it is an SQLite file, is a tracker database, before anything
    is served (the dashboard never creates or changes one).

    Raises :class:`DatabaseMissingError` when the path does not exist or is a directory,
    or the URL names an in-memory database (``sqlite://``, ``sqlite:///:memory:``), and
    :class:`AtoError` when the file is not an SQLite database or holds no tracker tables;
    the message names the file and, when a ``-wal`` file sits beside it (a log not merged
    into the file), says so."""
    path = _sqlite_path(url)
    if path is None:
        if url.split(":", 1)[0].split("+", 1)[0].lower() == "sqlite":
            raise DatabaseMissingError(
                f"{url!r} is an in-memory SQLite database: it is new and empty, and no other "
                f"process's runs are in it; pass the file your runs log to "
                f"(ato ui sqlite:///path/to.db)")
        return
    full = os.path.abspath(path)
    from urllib.parse import parse_qs

    mode = parse_qs(url.split("?", 1)[1] if "?" in url else "").get("mode", ["ro"])[-1]
    if mode != "ro":
        raise AtoError(f"{url!r} asks for mode={mode}; the dashboard only reads (mode=ro): "
                       f"drop ?mode={mode} from the URL")
    if os.path.isdir(path):
        raise DatabaseMissingError(
            f"{full} (from {url!r}) is a directory, not a tracker database file; pass the "
            f"database file in it (ato ui sqlite:///path/to.db)")
    if not os.path.isfile(path):
        raise DatabaseMissingError(
            f"no tracker database at {full} (from {url!r}); run something "
            f"that logs to it first, or pass the right URL (ato ui sqlite:///path/to.db)")
    import sqlite3
    from urllib.parse import quote

    wal = full + "-wal"
    wal_size = os.path.getsize(wal) if os.path.isfile(wal) else 0  # before SQLite reads it
    try:
        # mode=ro: nothing is created or written (a rollback-journal file stays alone).
        con = sqlite3.connect(f"file:{quote(full)}?mode=ro", uri=True)
        try:
            tables = {r[0] for r in con.execute("SELECT name FROM sqlite_master WHERE type='table'")}
        finally:
            con.close()
    except sqlite3.DatabaseError as e:
        raise AtoError(f"{full} (from {url!r}) is not an SQLite database ({e}); pass a tracker "
                       f"database file") from e
    if tables:
        # the tracker's own rule (an ato_schema record, or the original Ato's layout): a
        # file of another tool with an `experiments` table is refused here, not served
        from ato.db_routers.sql.engine import forget_engine, open_engine

        try:
            open_engine(url, readonly=True)
        finally:
            forget_engine(url, readonly=True)
        return
    hint = ""
    if wal_size > 0:
        hint = (f"; its write-ahead log {wal} ({wal_size:,} bytes) was not merged "
                f"into it (a writer still running, or one that stopped without a checkpoint): "
                f"open it where that log can be read, or checkpoint it (sqlite3 {path} "
                f"'PRAGMA wal_checkpoint')")
    elif os.path.getsize(full) <= 4096:
        hint = ("; the file is (almost) empty: a copy made without its -wal file, while a "
                "writer had not merged its log, holds nothing (copy the -wal file too)")
    found = f" (its tables: {', '.join(sorted(tables))})" if tables else " (it has no tables)"
    from ato.db_routers.sql.engine import NotATrackerError  # what a finder raises for it

    raise NotATrackerError(f"{full} (from {url!r}) holds no Ato tracker tables{found}{hint}; pass "
                   f"the database your runs log to")


def _open_finder(url: str, stale_after: float):
    """A protocol finder (:class:`ato.tracking.Finder`) over ``url`` that cannot write:
    finders are read-only by the protocol (ato-sql opens SQLite with ``mode=ro`` and
    PostgreSQL sessions read-only)."""
    check_database(url)
    from ato.tracking import open_finder

    try:
        return open_finder(url, stale_after=stale_after)
    except AtoError:
        raise
    except Exception as e:
        raise AtoError(f"cannot open the tracker at {url!r}: {str(e).splitlines()[0]}") from e


def dumps(data) -> str:
    """Strict JSON (no ``Infinity``/``NaN`` tokens, which browsers reject). Each endpoint
    writes non-finite floats as strings itself; one it missed (a value nested where no
    one looked) is converted here rather than failing the whole answer."""
    try:
        return json.dumps(data, separators=(",", ":"), default=str, allow_nan=False)
    except ValueError:
        return json.dumps(_finite(data), separators=(",", ":"), default=str,
                          allow_nan=False)
