"""The tracker protocol: the records a backend returns and the logger and finder it provides.

This is *exactly* what Ato's consumers call — ``ato runs``, the searches' trial recording
and resume, and the dashboard — and nothing else.  SQL (ato-sql) is one backend of it; a
third party serves another URL scheme by returning, from ``ato_register_trackers``, a class
whose ``logger(config, **options)`` and ``finder(config, **options)`` build objects that
satisfy :class:`TrackerLogger` and :class:`TrackerFinder`.  ``ato.tracking.conformance`` is
the test suite that proves it.

Conventions shared by every member:

- Run ids are positive ints, unique within one tracker URL (across projects).
- Times are ``datetime`` in naive UTC; durations and ``stale_after`` are seconds.
- A metric step is an ``int``; a value is a ``float`` (``±inf`` always recorded; NaN
  recorded where the backend can hold it, and never anyone's min or max).  Points of one
  ``(run, key)`` are ordered by ``(step, order logged)``.
- Finders never write and never create a missing store.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, ClassVar, Protocol, runtime_checkable

#: The statuses a run can have.  ``crashed`` is never written: a finder reports a
#: ``running`` run whose heartbeat is older than ``stale_after`` seconds as ``crashed``.
STATUSES = ("running", "completed", "failed", "killed", "crashed")

#: ``find_runs(order_by=...)`` accepts these run fields.
ORDER_FIELDS = ("id", "start_time", "end_time", "status", "project_name")

#: Optional capabilities a finder may declare in ``capabilities`` (a frozenset of str).
#:
#: - ``where``: ``find_runs(where=...)`` filters by the typed config grammar.
#: - ``artifacts``: ``get_artifacts`` returns what ``log_artifact`` recorded.
#: - ``fingerprints``: ``get_fingerprints`` returns the runs' code fingerprints.
#: - ``series``: ``get_metric_series`` reduces in the backend (otherwise
#:   :class:`ato.tracking.Finder` reduces the full history in Python).
#: - ``columns``: ``get_metric_series_columns`` reads many runs' series at once, as
#:   columns (otherwise :class:`ato.tracking.Finder` builds them from
#:   ``get_metric_series``, one run after the other).
#: - ``since``: ``get_metric_points_since`` queries the backend (otherwise the full
#:   history is filtered in Python).
#: - ``heartbeat``: running runs refresh a heartbeat, so a dead process shows as
#:   ``crashed`` after ``stale_after`` seconds.
#: - ``registry``: the logger has ``use_dataset``/``use_reference``/``use_model``/``log_model`` and the
#:   finder the read-only registry and lineage queries of :mod:`ato.tracking.registry`.
#: - ``studies``: the backend class has ``coordinator(config, **options)``, workers
#:   share a search through the store (:mod:`ato.tracking.studies`,
#:   :func:`ato.tracking.open_coordinator`).
CAPABILITIES = frozenset({"where", "artifacts", "fingerprints", "series", "columns", "since",
                          "heartbeat", "registry", "studies"})


# --------------------------------------------------------------------------- records
@dataclass
class Project:
    """A project: every run belongs to exactly one, created by the first run logged to it."""

    id: int
    name: str
    description: str | None = None
    created_at: datetime | None = None


@dataclass(repr=False)
class Run:
    """One run, as a finder returns it (a snapshot taken when the query ran).

    ``config`` is an :class:`ato.adict.ADict` (nested, ``run.config.model.depth``);
    ``tags`` the strings given to ``run(tags)`` in order; ``status`` the effective status
    (one of :data:`STATUSES`, ``crashed`` for a stale ``running`` run) and
    ``recorded_status`` what the logger last wrote; ``heartbeat_at`` the last sign of
    life of a running run (``None`` where the backend keeps none); ``error`` why a
    ``failed``/``killed`` run ended (``'ValueError: bad lr'``), where the backend records it.
    """

    id: int
    project_name: str
    config: Any
    tags: list[str] = field(default_factory=list)
    status: str = "running"
    recorded_status: str = "running"
    start_time: datetime | None = None
    end_time: datetime | None = None
    heartbeat_at: datetime | None = None
    structural_hash: str | None = None
    error: str | None = None

    def __repr__(self):
        return f"Run({self.id}, project={self.project_name!r}, status={self.status!r})"

    @property
    def stale(self) -> bool:
        """True for a run recorded as running whose heartbeat went stale (shown crashed)."""
        return self.recorded_status == "running" and self.status == "crashed"

    @property
    def duration(self) -> float | None:
        """Seconds from start to end (``None`` until the run has ended)."""
        if self.start_time is None or self.end_time is None:
            return None
        return (self.end_time - self.start_time).total_seconds()


@dataclass
class MetricPoint:
    """One logged value of metric ``key`` of run ``run_id`` at ``step`` (``timestamp``:
    when it was logged, naive UTC)."""

    run_id: int
    key: str
    value: float
    step: int
    timestamp: datetime | None = None


@dataclass
class MetricSummary:
    """Aggregates of one ``(run, key)`` over all its points: ``last`` is the value at the
    highest step (the later logged one on a tie) and ``last_step`` that step; ``min`` and
    ``max`` ignore NaN (``None`` when every value is NaN); ``count`` is the number of
    points."""

    run_id: int
    key: str
    last: float
    last_step: int
    min: float | None
    max: float | None
    count: int


@dataclass
class MetricSeries:
    """Points of one ``(run, key)`` within a step range, possibly reduced.

    ``total`` is the number of points in the range before reduction; ``reduced`` is true
    when ``points`` holds fewer than ``total`` (see :func:`ato.tracking.reduce_points`
    for the guarantees); ``min_step``/``max_step`` echo the requested range.
    """

    run_id: int
    key: str
    points: list[MetricPoint]
    total: int
    reduced: bool = False
    min_step: int | None = None
    max_step: int | None = None


@dataclass
class SeriesColumns:
    """:class:`MetricSeries` of one ``(run, key)`` as parallel columns, what a chart of many
    runs reads (:meth:`TrackerFinder.get_metric_series_columns`): no record per point.

    ``steps`` (ints) and ``values`` (floats, NaN and ``±inf`` as floats) hold the same
    points, in the same order, as ``MetricSeries.points``; ``times`` their timestamps
    (naive UTC ``datetime`` or ``None``), or ``None`` when not asked for.  ``total``,
    ``reduced``, ``min_step`` and ``max_step`` mean what they mean in :class:`MetricSeries`.
    """

    run_id: int
    key: str
    steps: list[int]
    values: list[float]
    times: list[datetime | None] | None
    total: int
    reduced: bool = False
    min_step: int | None = None
    max_step: int | None = None

    @classmethod
    def of(cls, series: MetricSeries, times: bool = True) -> SeriesColumns:
        """The columns of ``series`` (``times=False``: ``times`` is ``None``)."""
        points = series.points
        return cls(series.run_id, series.key, [p.step for p in points],
                   [p.value for p in points], [p.timestamp for p in points] if times else None,
                   series.total, series.reduced, series.min_step, series.max_step)


@dataclass
class Artifact:
    """A file recorded by ``log_artifact`` (the path as given; the file is not copied).
    ``metadata`` is the JSON-compatible mapping given, or ``None``."""

    run_id: int
    path: str
    data_type: str | None = None
    metadata: dict | None = None
    id: int | None = None

    @property
    def data_info(self) -> dict | None:
        """The seed's name for ``metadata``."""
        return self.metadata


@dataclass
class Fingerprint:
    """The code fingerprint of traced function ``trace_id`` in a run; ``trace_type`` is
    ``static`` (its source) or ``runtime`` (its result)."""

    run_id: int
    trace_id: str
    trace_type: str
    fingerprint: str


# --------------------------------------------------------------------------- protocols
@runtime_checkable
class TrackerLogger(Protocol):
    """Records runs.  Built by ``backend.logger(config, **options)`` where
    ``config.experiment.sql.db_path`` is the URL and ``config.experiment.project_name``
    the project (``default`` when absent).

    Errors: ``log_metric`` before ``run()`` raises ``RuntimeError``; a store that cannot be
    written raises at ``run()``/``flush()`` (buffered points are kept for the next try).
    """

    url: str
    project_name: str
    config: Any

    def run(self, tags: Sequence[str] | None = None, config: Any = None) -> int:
        """Start a new run with ``tags``; records ``config`` (a mapping or ADict) when given,
        else the logger's own config.  Returns the new run id.

        One run at a time: a run still open is first ended ``completed``.  Inside a
        ``with`` block, the first call names the block's own run instead (``tags``
        replace its tags, ``config`` its config) and returns its id, so ``with logger:
        logger.run(tags=[...])`` records one run."""

    def get_current_run_id(self) -> int | None:
        """The id of the run being logged, ``None`` when no run is open."""

    def log_metric(self, key: str, value: float, step: int) -> None:
        """Record ``value`` (converted with ``float``) of metric ``key`` at ``step``; it is
        visible to finders after the next flush."""

    def log_metrics(self, metrics: Mapping[str, float], step: int) -> None:
        """``log_metric`` for each item of ``metrics``."""

    def log_artifact(self, run_id: int, file_path: str, data_type: str | None = None,
                     metadata: Mapping | None = None) -> None:
        """Record that ``run_id`` produced ``file_path`` (written at once)."""

    def update_status(self, status: str) -> None:
        """Set the current run's recorded status (no-op without a current run)."""

    def flush(self) -> int:
        """Write every buffered point now; returns how many were written."""

    def finish(self, status: str = "completed", error: str | None = None) -> None:
        """Flush and end the current run with ``status`` and an end time (no-op without
        a current run); ``error`` says why a ``failed``/``killed`` run ended (a backend
        that records errors returns it as ``Run.error``)."""

    def __enter__(self) -> TrackerLogger:
        """Start a run unless one is open (the block's run, which the first ``run()``
        inside the block names); returns the logger.  A nested ``with`` on the same
        logger neither starts nor ends a run."""

    def __exit__(self, exc_type, exc, tb) -> bool:
        """End the block's run by :func:`ato.tracking.outcome.block_outcome`: ``completed``;
        ``SystemExit`` with status 0/``None`` ``completed``, any other ``failed``
        (error ``'exit status 3'``); ``KeyboardInterrupt`` ``killed``; any other exception
        ``failed`` with ``'Type: message'`` as the error.  Never swallows the exception
        (returns False)."""


@runtime_checkable
class TrackerFinder(Protocol):
    """Answers questions over every run of one URL, read-only.

    ``capabilities`` declares which optional members work (see :data:`CAPABILITIES`);
    ``stale_after`` is the heartbeat age (seconds) after which a running run is reported
    ``crashed``.
    """

    url: str
    capabilities: frozenset[str]
    stale_after: float

    def list_projects(self) -> list[Project]:
        """Every project, by id."""

    def find_project(self, name: str) -> Project | None:
        """The project called ``name``, or ``None``."""

    def find_run(self, run_id: int) -> Run | None:
        """The run with this id, or ``None``."""

    def find_runs(self, project_name: str | None = None, *, tags: Iterable[str] | None = None,
                  status: str | Iterable[str] | None = None, where: str | None = None,
                  order_by: str = "id", descending: bool = False, limit: int | None = None,
                  last: int | None = None) -> list[Run]:
        """Runs of ``project_name`` (every project when ``None``) carrying all ``tags``,
        whose effective status is ``status`` (or one of several), matching the typed
        ``where`` expression (``ato.tracking.where`` grammar; needs the ``where``
        capability), sorted by ``order_by`` (one of :data:`ORDER_FIELDS`, ties by id),
        then cut to the first ``limit``.  ``last=N`` keeps the N most recent runs (highest
        ids) and returns them by ascending id.

        Errors: ``ValueError`` for an unknown ``order_by``/``status`` or a negative
        ``limit``; :class:`ato.tracking.WhereError` for a malformed ``where``."""

    def get_artifacts(self, run_id: int) -> list[Artifact]:
        """The run's artifacts in the order logged (``artifacts`` capability)."""

    def get_fingerprints(self, run_id: int) -> list[Fingerprint]:
        """The run's code fingerprints (``fingerprints`` capability)."""

    def metric_keys(self, run_ids: Iterable[int]) -> list[str]:
        """The sorted union of the metric keys logged by these runs."""

    def get_metric_summaries(self, run_ids: Iterable[int], keys: Iterable[str] | None = None
                             ) -> dict[int, dict[str, MetricSummary]]:
        """``{run_id: {key: MetricSummary}}`` for every requested run (an empty inner dict
        for a run without points) and every key it logged (only ``keys`` when given)."""

    def get_metric_history(self, run_id: int, key: str) -> list[MetricPoint]:
        """Every point of ``(run_id, key)`` in order (``[]`` when none)."""

    def get_metric_series(self, run_id: int, key: str, *, min_step: int | None = None,
                          max_step: int | None = None, max_points: int | None = None
                          ) -> MetricSeries:
        """The points with ``min_step <= step <= max_step`` (bounds inclusive, ``None`` =
        open), reduced to at most ``max_points`` by :func:`ato.tracking.reduce_points`'s
        rule when given (``series`` capability: done in the backend).

        Errors: ``ValueError`` when ``max_points < 9``, or a step bound that is not an int
        within -2**63..2**63-1."""

    def get_metric_points_since(self, run_id: int, *, keys: Iterable[str] | None = None,
                                after_step: int | None = None,
                                after_time: datetime | None = None) -> list[MetricPoint]:
        """Points of the run (only ``keys`` when given) with ``step > after_step`` and
        ``timestamp > after_time`` (each condition only when given), ordered by key, then
        step — what a live view polls for (``since`` capability)."""

    def find_best_run(self, project_name: str, metric_key: str, mode: str = "max"):
        """The run that logged the single best value of ``metric_key`` at any step (ties:
        lowest id).  As in the original Ato, returns ``{"error": "Project not found"}`` or
        ``{"error": "Run not found"}`` instead of a run.

        Errors: ``ValueError`` when ``mode`` is not ``'max'`` or ``'min'``."""


class ColumnsFinder(Protocol):
    """The member a finder adds with the ``columns`` capability.  Not part of
    :class:`TrackerFinder` (a finder without it is complete): without the capability,
    :class:`ato.tracking.Finder` builds the columns from ``get_metric_series``."""

    def get_metric_series_columns(self, run_ids: Iterable[int], key: str, *,
                                  min_step: int | None = None, max_step: int | None = None,
                                  max_points: int | None = None, times: bool = True
                                  ) -> list[SeriesColumns]:
        """``get_metric_series(run_id, key, ...)`` of every run of ``run_ids``, in that
        order (a run without such points gives empty columns and ``total`` 0), as
        :class:`SeriesColumns`; ``times=False`` leaves the timestamps out (``times`` is
        ``None``).  A chart of many runs asks for them all at once, so a backend can read
        them in one snapshot with a few statements (``columns`` capability).

        Errors: ``ValueError`` when ``max_points < 9``, or a step bound that is not an int
        within -2**63..2**63-1."""


#: The members a finder must have; the rest depend on declared capabilities.
REQUIRED_FINDER_MEMBERS = ("list_projects", "find_project", "find_run", "find_runs",
                           "metric_keys", "get_metric_summaries", "get_metric_history",
                           "find_best_run")
#: The members a logger must have.
REQUIRED_LOGGER_MEMBERS = ("run", "get_current_run_id", "log_metric", "log_metrics",
                           "log_artifact", "update_status", "flush", "finish", "__enter__",
                           "__exit__")


class TrackerBackendClass(Protocol):
    """What ``ato_register_trackers`` returns (also :class:`ato.plugins.interfaces.TrackerBackend`)."""

    PLUGIN_NAME: ClassVar[str]
    schemes: ClassVar[tuple[str, ...]]

    @classmethod
    def logger(cls, config, **options) -> TrackerLogger: ...

    @classmethod
    def finder(cls, config, **options) -> TrackerFinder: ...
