"""The tracker seen from core: one protocol, opened by URL, whatever the backend.

::

    from ato.tracking import open_finder, open_logger

    with open_logger("sqlite:///experiments.db", project="mnist") as logger:
        logger.log_metric("loss", 0.25, step=1)
    finder = open_finder("sqlite:///experiments.db")
    finder.find_runs("mnist", where="lr < 0.01", status="completed")

The URL's scheme picks the backend registered through ``ato_register_trackers``
(``sqlite``/``postgresql``… → ato-sql, ``jsonl`` → the example plugin, anything a third
party registers); core imports neither ato-sql nor SQLAlchemy to do so.  The records and
protocols are in :mod:`ato.tracking.protocol`, the ``where`` grammar in
:mod:`ato.tracking.where`, the series reduction in :mod:`ato.tracking.reduce` and the
conformance suite for backends in :mod:`ato.tracking.conformance`.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping
from datetime import datetime

from ato.errors import AtoError, PluginError
from ato.tracking.protocol import (
    CAPABILITIES,
    ORDER_FIELDS,
    REQUIRED_FINDER_MEMBERS,
    REQUIRED_LOGGER_MEMBERS,
    STATUSES,
    Artifact,
    ColumnsFinder,
    Fingerprint,
    MetricPoint,
    MetricSeries,
    MetricSummary,
    Project,
    Run,
    SeriesColumns,
    TrackerFinder,
    TrackerLogger,
)
from ato.tracking.reduce import bucket_width, check_max_points, check_step_bounds, reduce_points
from ato.tracking.registry import (
    REGISTRY_FINDER_MEMBERS,
    REGISTRY_LOGGER_MEMBERS,
    AliasEvent,
    Lineage,
    Provenance,
    RegistryAsset,
    RegistryError,
    RegistryFinder,
    RegistryLogger,
    RegistryVersion,
    RunUse,
)
from ato.tracking.studies import (
    OPTIONAL_COORDINATOR_MEMBERS,
    REQUIRED_COORDINATOR_MEMBERS,
    TRIAL_STATES,
    Claim,
    StudyCoordinator,
    TrialSpec,
    TrialState,
)
from ato.tracking.where import WhereError, key_segment, matches, parse_where

__all__ = [
    "CAPABILITIES", "OPTIONAL_COORDINATOR_MEMBERS", "ORDER_FIELDS", "REGISTRY_FINDER_MEMBERS", "REGISTRY_LOGGER_MEMBERS",
    "STATUSES", "TRIAL_STATES", "AliasEvent", "Artifact", "CapabilityError", "Claim",
    "ColumnsFinder",
    "Finder", "Fingerprint", "Lineage", "MetricPoint", "MetricSeries", "MetricSummary",
    "Project", "Provenance", "RegistryAsset", "RegistryError", "RegistryFinder",
    "RegistryLogger", "RegistryVersion", "Run", "RunUse", "SeriesColumns",
    "StudyCoordinator",
    "MAX_RUN_ID", "METRIC_STEP_RANGE", "MetricError", "TrackerFinder", "TrackerLogger", "TrackerProtocolError", "TrialSpec", "TrialState",
    "WhereError", "bucket_width", "check_metric", "check_query", "check_step_bounds", "flatten", "log_each", "key_segment", "matches", "open_coordinator", "open_finder",
    "open_logger", "parse_run_id", "parse_where", "reduce_points", "tracker_config", "url_of",
]


def flatten(config, prefix: str = "") -> dict:
    """A nested config as dotted keys, as ``ato runs`` and the dashboard show it and as
    ``--where`` reads them: ``{"a": {"b": 1}}`` → ``{"a.b": 1}``; a key that is not a plain
    word is quoted (``{"a.b": 1}`` → ``{'"a.b"': 1}``, see :func:`key_segment`), so two
    different paths never share a flat key; an empty mapping stays a ``{}`` leaf."""
    out = {}
    for k, v in config.items():
        segment = key_segment(k)
        path = f"{prefix}.{segment}" if prefix else segment
        if isinstance(v, Mapping) and v:
            out.update(flatten(v, path))
        else:
            out[path] = v
    return out


class CapabilityError(AtoError, LookupError):
    """A consumer asked for an optional capability the backend does not declare."""


class TrackerProtocolError(AtoError, TypeError):
    """A tracker backend's logger or finder lacks members the protocol requires."""


class MetricError(AtoError, ValueError):
    """``log_metric`` was given a step or value the tracker cannot record; raised at the
    call, before anything is buffered."""


#: The steps every tracker database can hold: a signed 64-bit integer.
METRIC_STEP_RANGE = (-(1 << 63), (1 << 63) - 1)

#: The largest run id a tracker database holds (a signed 64-bit integer).
MAX_RUN_ID = (1 << 63) - 1


def parse_run_id(text: str) -> int | None:
    """A run id written as text — plain ASCII digits without sign, leading zero or space,
    from 1 to :data:`MAX_RUN_ID` — else ``None`` (``int()`` also takes ``'+3'``,
    ``' 3'``, ``'1_0'`` and full-width digits).  The rule of ``ato runs`` and the
    dashboard alike."""
    if text.isascii() and text.isdigit() and text[0] != "0":
        value = int(text)
        if value <= MAX_RUN_ID:
            return value
    return None


def check_metric(key, value, step, step_range=METRIC_STEP_RANGE) -> tuple[str, float, int]:
    """``(key, value, step)`` as a tracker records them, else :class:`MetricError` naming
    the metric and what was wrong.  ``step``: an ``int`` (NumPy integers too) or an
    integral float (``3.0``) within ``step_range``; a bool, a fractional or non-finite
    float, a string is refused.  ``value``: anything ``float()`` takes that is a real
    number (NaN and ±inf included).  ``key``: any text without a NUL character."""
    key = str(key)
    if "\x00" in key:
        raise MetricError(f"metric {key!r}: the name holds a NUL character (\\x00), which "
                          f"PostgreSQL cannot store: a tracker refuses it everywhere")
    if type(step) is not int or not step_range[0] <= step <= step_range[1]:
        step = _metric_step(key, step, step_range)
    if type(value) is not float:
        if isinstance(value, (str, bytes, bool)) or _is_numpy_bool(value):
            raise MetricError(f"metric {key!r}: value {value!r} is not a number")
        try:
            value = float(value)
        except (TypeError, ValueError, OverflowError) as e:
            raise MetricError(f"metric {key!r}: value {_short(value)} is not a number "
                              f"a tracker can record ({e})") from None
    return key, value, step


def log_each(log_metric, metrics, step) -> None:
    """``log_metric(key, value, step)`` for every item of ``metrics``; then one
    :class:`MetricError` naming every one refused (a bad value does not cost the good ones
    after it).  The rule of every logger's ``log_metrics``."""
    refused = []
    for key, value in metrics.items():
        try:
            log_metric(key, value, step)
        except MetricError as e:
            refused.append(str(e))
    if refused:
        raise MetricError("; ".join(refused))


def _is_numpy_bool(value) -> bool:
    return type(value).__module__ == "numpy" and type(value).__name__ in ("bool_", "bool")


def _short(value) -> str:
    text = repr(value)
    return text if len(text) <= 60 else text[:57] + "..."


def _metric_step(key, step, step_range) -> int:
    import numbers
    import operator

    if isinstance(step, bool) or _is_numpy_bool(step):
        raise MetricError(f"metric {key!r}: step {step!r} must be an integer, not a bool")
    try:
        value = operator.index(step)  # int and NumPy integers
    except TypeError:
        if not isinstance(step, numbers.Real) or isinstance(step, (str, bytes)):
            raise MetricError(f"metric {key!r}: step {_short(step)} must be an integer "
                              f"(got {type(step).__name__})") from None
        f = float(step)
        if not math.isfinite(f) or not f.is_integer():
            raise MetricError(f"metric {key!r}: step {step!r} must be a whole number "
                              f"(a fractional step would be truncated)") from None
        value = int(f)
    if not step_range[0] <= value <= step_range[1]:
        raise MetricError(f"metric {key!r}: step {_short(step)} is out of range (this "
                          f"tracker records steps from {step_range[0]} to {step_range[1]})")
    return value


# --------------------------------------------------------------------------- opening
def tracker_config(url: str, project: str | None = None):
    """The config a backend's ``logger``/``finder`` receives for ``url``: an ADict with
    ``experiment.sql.db_path`` (the seed's key) and, when given, ``experiment.project_name``."""
    from ato.adict import ADict

    experiment = {"sql": {"db_path": str(url)}}
    if project is not None:
        experiment["project_name"] = str(project)
    return ADict(experiment=experiment)


def url_of(target) -> str:
    """The tracker URL of ``target``: a URL string, or a config holding
    ``experiment.sql.db_path``.  Raises :class:`KeyError` naming the key when it is absent."""
    if isinstance(target, str):
        return target
    node = target
    for part in ("experiment", "sql", "db_path"):
        data = getattr(node, "_data", node)  # an ADict without counting a user access
        if not isinstance(data, Mapping) or part not in data:
            raise KeyError("the tracker needs config.experiment.sql.db_path, e.g. "
                           "'sqlite:///experiments.db'")
        node = data[part]
    return str(node)


def _backend(url: str):
    from ato.plugins.manager import tracker_for_url

    return tracker_for_url(url)


def _made(backend, role: str, factory, config, options):
    """``factory(config, **options)`` — a backend's ``logger``, ``finder`` or
    ``coordinator``: plugin code.  Ato's own errors (an unavailable store...) pass; any
    other exception is the plugin's, so it becomes one :class:`ato.errors.PluginError`
    naming the plugin, its distribution and the URL."""
    try:
        return factory(config, **options)
    except AtoError:
        raise
    except Exception as e:
        from ato.plugins.manager import _one_line, provider

        raise PluginError(f"opening a tracker {role} for {url_of(config)}: "
                          f"{provider('tracker', backend).who()}: {backend.__qualname__}."
                          f"{role}() raised {_one_line(e)}") from e


def _check_members(obj, required, backend, role: str) -> None:
    missing = [name for name in required if not callable(getattr(obj, name, None))]
    protocol = "StudyCoordinator" if role == "coordinator" else f"Tracker{role.title()}"
    if missing:
        raise TrackerProtocolError(
            f"the tracker backend {backend.PLUGIN_NAME!r} ({backend.__module__}."
            f"{backend.__qualname__}) returned a {role} that lacks {', '.join(missing)}, "
            f"required by the tracker protocol (ato.tracking.{protocol})")


def open_logger(target, *, project: str | None = None, **options) -> TrackerLogger:
    """A logger for ``target`` (a URL such as ``sqlite:///experiments.db``, or a config with
    ``experiment.sql.db_path``); ``project`` sets ``experiment.project_name`` for a URL.
    ``options`` go to the backend (e.g. ``flush_interval`` for SQL).

    Errors: :class:`ato.errors.PluginNotInstalledError` / ``UnknownPluginError`` when no
    installed backend serves the scheme; :class:`TrackerProtocolError` when the backend's
    logger lacks a protocol member."""
    if isinstance(target, str):
        config = tracker_config(target, project)
    else:
        if project is not None:
            raise TypeError("open_logger(config, project=...): the project comes from "
                            "config.experiment.project_name; pass a URL to name it here")
        config = target
    backend = _backend(url_of(config))
    logger = _made(backend, "logger", backend.logger, config, options)
    _check_members(logger, REQUIRED_LOGGER_MEMBERS, backend, "logger")
    return logger


def open_finder(target, **options) -> Finder:
    """A read-only :class:`Finder` for ``target`` (a URL, or a config with
    ``experiment.sql.db_path``).  ``options`` go to the backend (e.g. ``stale_after``).

    Errors: as :func:`open_logger`; a backend may also raise when the store does not exist
    (finders never create one)."""
    config = tracker_config(target) if isinstance(target, str) else target
    backend = _backend(url_of(config))
    finder = _made(backend, "finder", backend.finder, config, options)
    _check_members(finder, REQUIRED_FINDER_MEMBERS, backend, "finder")
    return Finder(finder, backend.PLUGIN_NAME)


def open_coordinator(target, *, readonly: bool = False, **options) -> StudyCoordinator:
    """The study coordinator of ``target`` (a URL, or a config with
    ``experiment.sql.db_path``): workers that open the same URL and study name share the
    study (see :mod:`ato.tracking.studies`).  ``options`` go to the backend's
    ``coordinator(config, **options)``.  Like a logger, it creates a missing store —
    unless ``readonly=True`` (passed on to the backend), which only reads: a missing
    store is an error, nothing is created or migrated, writing members raise.

    Errors: as :func:`open_logger`; :class:`CapabilityError` naming the backend when it
    offers no coordination (no ``coordinator`` on its class)."""
    config = tracker_config(target) if isinstance(target, str) else target
    url = url_of(config)
    backend = _backend(url)
    factory = getattr(backend, "coordinator", None)
    if not callable(factory):
        raise CapabilityError(
            f"the {backend.PLUGIN_NAME!r} tracker backend ({url}) cannot coordinate workers "
            f"sharing a study: it does not declare the 'studies' capability (no "
            f"coordinator(config) on {backend.__module__}.{backend.__qualname__})")
    if readonly:
        options["readonly"] = True
    coordinator = _made(backend, "coordinator", factory, config, options)
    _check_members(coordinator, REQUIRED_COORDINATOR_MEMBERS, backend, "coordinator")
    return coordinator


def check_query(order_by: str = "id", status=None, limit=None, last=None) -> tuple | None:
    """Validate ``find_runs`` arguments the same way for every backend; returns the
    statuses asked for as a tuple (``None`` for no status filter).

    Errors: ``ValueError`` naming the bad argument."""
    if order_by not in ORDER_FIELDS:
        raise ValueError(f"order_by must be one of {', '.join(ORDER_FIELDS)}, not {order_by!r}")
    for name, value in (("limit", limit), ("last", last)):
        if value is not None and (isinstance(value, bool) or not isinstance(value, int)
                                  or value < 0):
            raise ValueError(f"{name} must be a non-negative int, not {value!r}")
    if status is None:
        return None
    statuses = (status,) if isinstance(status, str) else tuple(status)
    for s in statuses:
        if s not in STATUSES:
            raise ValueError(f"status must be one of {', '.join(STATUSES)}, not {s!r}")
    return statuses


# --------------------------------------------------------------------------- the facade
class Finder:
    """What :func:`open_finder` returns: the backend's finder behind exactly the protocol.

    Required members are passed through.  Optional ones follow the backend's declared
    ``capabilities``: ``where`` and ``artifacts``/``fingerprints`` raise
    :class:`CapabilityError` naming the backend when undeclared; ``series`` and ``since``
    fall back to the full history, reduced or filtered here.
    """

    def __init__(self, backend_finder, plugin_name: str):
        self.backend = backend_finder
        self.plugin_name = plugin_name
        self.url = str(getattr(backend_finder, "url", ""))
        declared = getattr(backend_finder, "capabilities", frozenset())
        self.capabilities = frozenset(declared) & CAPABILITIES
        self.stale_after = float(getattr(backend_finder, "stale_after", 0.0) or 0.0)

    def __repr__(self):
        return f"Finder({self.url!r}, backend={self.plugin_name!r})"

    def supports(self, capability: str) -> bool:
        """Whether the backend declares ``capability`` (one of :data:`CAPABILITIES`)."""
        if capability not in CAPABILITIES:
            raise ValueError(f"unknown capability {capability!r} (known: "
                             f"{', '.join(sorted(CAPABILITIES))})")
        return capability in self.capabilities

    def require(self, capability: str, purpose: str) -> None:
        """Raise :class:`CapabilityError` unless the backend declares ``capability``."""
        if not self.supports(capability):
            raise CapabilityError(
                f"the {self.plugin_name!r} tracker backend ({self.url}) cannot {purpose}: it "
                f"does not declare the {capability!r} capability")

    # ------------------------------------------------------------------ required
    def list_projects(self) -> list[Project]:
        return self.backend.list_projects()

    def find_project(self, name: str) -> Project | None:
        return self.backend.find_project(name)

    def find_run(self, run_id: int) -> Run | None:
        """The run, or ``None`` — also for an id no database can hold (0, negative, past
        2^63 - 1: SQLite raised OverflowError for those)."""
        run_id = int(run_id)
        if not 1 <= run_id <= (1 << 63) - 1:
            return None
        return self.backend.find_run(run_id)

    def find_runs(self, project_name: str | None = None, *, tags: Iterable[str] | None = None,
                  status=None, where: str | None = None, order_by: str = "id",
                  descending: bool = False, limit: int | None = None,
                  last: int | None = None) -> list[Run]:
        check_query(order_by, status, limit, last)
        kwargs = {}
        if where:
            parse_where(where)  # the same error, with its position, for every backend
            self.require("where", "filter runs with a where expression")
            kwargs["where"] = where
        return self.backend.find_runs(project_name, tags=list(tags) if tags else None,
                                      status=status, order_by=order_by,
                                      descending=bool(descending), limit=limit, last=last,
                                      **kwargs)

    def metric_keys(self, run_ids: Iterable[int]) -> list[str]:
        return self.backend.metric_keys([int(r) for r in run_ids])

    def get_metric_summaries(self, run_ids: Iterable[int], keys: Iterable[str] | None = None
                             ) -> dict[int, dict[str, MetricSummary]]:
        return self.backend.get_metric_summaries([int(r) for r in run_ids],
                                                 None if keys is None else list(keys))

    def get_metric_history(self, run_id: int, key: str) -> list[MetricPoint]:
        return self.backend.get_metric_history(int(run_id), key)

    def find_best_run(self, project_name: str, metric_key: str, mode: str = "max"):
        if mode not in ("max", "min"):
            raise ValueError(f"mode must be 'max' or 'min', not {mode!r}")
        return self.backend.find_best_run(project_name, metric_key, mode=mode)

    # ------------------------------------------------------------------ registry
    def registry_assets(self, kind: str | None = None, project: str | None = None
                        ) -> list[RegistryAsset]:
        self.require("registry", "list models and datasets")
        if kind is not None and kind not in ("model", "dataset"):
            raise ValueError(f"kind must be 'model' or 'dataset', not {kind!r}")
        return self.backend.registry_assets(kind=kind, project=project)

    def registry_versions(self, name: str, project: str | None = None,
                          kind: str | None = None) -> list[RegistryVersion]:
        self.require("registry", "list a model's or dataset's versions")
        return self.backend.registry_versions(name, project=project, kind=kind)

    def alias_history(self, name: str, alias: str | None = None, project: str | None = None,
                      kind: str | None = None) -> list[AliasEvent]:
        self.require("registry", "read an alias history")
        if kind is None:  # a backend written before ``kind`` was added keeps working
            return self.backend.alias_history(name, alias=alias, project=project)
        return self.backend.alias_history(name, alias=alias, project=project, kind=kind)

    def run_lineage(self, run_id: int) -> Lineage:
        self.require("registry", "read a run's inputs and outputs")
        return self.backend.run_lineage(int(run_id))

    def runs_using(self, name: str, ref=None, project: str | None = None,
                   kind: str = "dataset") -> list[RunUse]:
        self.require("registry", "find the runs that used a version")
        if kind == "dataset":  # a backend written before use_model takes no kind
            return self.backend.runs_using(name, ref=ref, project=project)
        return self.backend.runs_using(name, ref=ref, project=project, kind=kind)

    def produced_by(self, name: str, ref=None, project: str | None = None) -> Provenance:
        self.require("registry", "find what produced a model version")
        return self.backend.produced_by(name, ref=ref, project=project)

    def downstream(self, name: str, ref=None, project: str | None = None,
                   kind: str = "dataset") -> list[RegistryVersion]:
        self.require("registry", "find what a version fed")
        if kind == "dataset":
            return self.backend.downstream(name, ref=ref, project=project)
        return self.backend.downstream(name, ref=ref, project=project, kind=kind)

    def resolve(self, uri: str, verify: bool = True) -> str:
        self.require("registry", f"resolve {uri}")
        return self.backend.resolve(uri, verify=verify)

    # ------------------------------------------------------------------ optional
    def get_artifacts(self, run_id: int) -> list[Artifact]:
        self.require("artifacts", "list a run's artifacts")
        return self.backend.get_artifacts(int(run_id))

    def get_fingerprints(self, run_id: int) -> list[Fingerprint]:
        self.require("fingerprints", "list a run's code fingerprints")
        return self.backend.get_fingerprints(int(run_id))

    def get_metric_series(self, run_id: int, key: str, *, min_step: int | None = None,
                          max_step: int | None = None, max_points: int | None = None
                          ) -> MetricSeries:
        check_max_points(max_points)
        check_step_bounds(min_step, max_step)
        if self.supports("series"):
            return self.backend.get_metric_series(int(run_id), key, min_step=min_step,
                                                  max_step=max_step, max_points=max_points)
        points = [p for p in self.backend.get_metric_history(int(run_id), key)
                  if (min_step is None or p.step >= min_step)
                  and (max_step is None or p.step <= max_step)]
        kept = reduce_points(points, max_points)
        return MetricSeries(int(run_id), key, kept, len(points), len(kept) < len(points),
                            min_step, max_step)

    def get_metric_series_columns(self, run_ids: Iterable[int], key: str, *,
                                  min_step: int | None = None, max_step: int | None = None,
                                  max_points: int | None = None, times: bool = True
                                  ) -> list[SeriesColumns]:
        check_max_points(max_points)
        check_step_bounds(min_step, max_step)
        run_ids = [int(r) for r in run_ids]
        if self.supports("columns"):
            return self.backend.get_metric_series_columns(
                run_ids, key, min_step=min_step, max_step=max_step, max_points=max_points,
                times=bool(times))
        return [SeriesColumns.of(self.get_metric_series(r, key, min_step=min_step,
                                                        max_step=max_step,
                                                        max_points=max_points), bool(times))
                for r in run_ids]

    def get_metric_points_since(self, run_id: int, *, keys: Iterable[str] | None = None,
                                after_step: int | None = None,
                                after_time: datetime | None = None) -> list[MetricPoint]:
        keys = None if keys is None else list(keys)
        if self.supports("since"):
            return self.backend.get_metric_points_since(int(run_id), keys=keys,
                                                        after_step=after_step,
                                                        after_time=after_time)
        out = []
        for key in sorted(set(keys)) if keys is not None else self.metric_keys([run_id]):
            out += [p for p in self.backend.get_metric_history(int(run_id), key)
                    if (after_step is None or p.step > after_step)
                    and (after_time is None or (p.timestamp is not None
                                                and p.timestamp > after_time))]
        return out


for _name in (*REQUIRED_FINDER_MEMBERS, "get_artifacts", "get_fingerprints",
              "get_metric_series", "get_metric_points_since"):
    # the facade's members document themselves with the protocol's docstrings
    getattr(Finder, _name).__doc__ = getattr(TrackerFinder, _name).__doc__
Finder.get_metric_series_columns.__doc__ = ColumnsFinder.get_metric_series_columns.__doc__
for _name in REGISTRY_FINDER_MEMBERS:
    getattr(Finder, _name).__doc__ = getattr(RegistryFinder, _name).__doc__
del _name
