"""Trials recorded through a tracker, and resuming a study without re-running them.

Every trial that goes through :meth:`ato.hyperopt.base.HyperOpt.evaluate` becomes one
tracker run (its config is the trial's config) with these tags (docs/hyperopt.md,
"Trial records"):

``study:<id>``            the study (the search's ``study_id``)
``algorithm:<name>``      the algorithm's ``PLUGIN_NAME``
``trial:<key>``           16 hex digits identifying the trial within the study (resume key)
``bracket:<b>``           the bracket, counted in the order brackets run (0 if only one)
``rung:<r>``              the rung: successive-halving level (HyperBand: the generation)
``budget:<budget>``       the exact budget (:func:`ato.hyperopt.budgets.text`)
``config:<hash>``         16 hex digits of the searched values, budget excluded
``seed:<n>``              the search's seed
``final``                 only on HyperBand's re-evaluation of its winner
``resumed_from:<budget>`` only on a multi-fidelity trial that continues its configuration
                          from the budget it had reached (:mod:`ato.hyperopt.trial`)

and the metric ``objective`` (step = the rung) unless the objective returned NaN or failed.
A trial is *promoted* iff a run of the same study and bracket with the same ``config:``
hash exists at rung ``r + 1``.  Starting a study again with the same id reuses the metric
of every completed trial instead of running the objective.
"""

from __future__ import annotations

import hashlib
import json
import math
import numbers
import os
import pickle
import threading
from dataclasses import dataclass
from fractions import Fraction

from ato.hyperopt import budgets

OBJECTIVE = "objective"

__all__ = ["OBJECTIVE", "ClaimRuns", "OpenTrial", "Trial", "TrialRecorder", "config_hash",
           "on_trial_logger", "searched_values", "AttachedRun"]


def searched_values(config, names) -> dict:
    """``{name: value}`` of the searched parameters in ``config`` (dotted names nested)."""
    values = {}
    for name in names:
        value = config
        for part in str(name).split("."):
            value = value.get(part) if hasattr(value, "get") else None
        values[str(name)] = value
    return values


def _canonical(value):
    """A JSON-able form in which equal values are written equally (``2`` and ``2.0`` are
    one value, as for the objective); floats by their shortest repr."""
    if isinstance(value, bool) or value is None or isinstance(value, str):
        return value
    if isinstance(value, numbers.Integral):
        return int(value)
    if isinstance(value, numbers.Real):
        value = float(value)
        if value.is_integer():
            return int(value)
        return value if math.isfinite(value) else repr(value)
    if isinstance(value, dict) or hasattr(value, "items"):
        return {str(k): _canonical(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_canonical(v) for v in value]
    return repr(value)


def _digest(obj) -> str:
    text = json.dumps(obj, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    return hashlib.sha256(text.encode("utf-8")).hexdigest()[:16]


def config_hash(config, names) -> str:
    """16 hex digits of sha256 over the searched values (JSON, sorted keys, floats by
    their shortest repr, ``2.0`` written as ``2``); the budget is not part of it, so one
    configuration has one hash on every rung."""
    return _digest(_canonical(searched_values(config, names)))


@dataclass(frozen=True)
class Trial:
    """Where one evaluation sits in a study."""

    study: str
    algorithm: str
    config_hash: str
    budget: Fraction
    bracket: int
    rung: int
    occurrence: int  # how many identical (config, budget, bracket, rung) trials came before
    seed: int | None
    final: bool = False
    resumed_from: Fraction | None = None  # the budget a continued configuration had reached

    @property
    def key(self) -> str:
        return _digest([self.config_hash, budgets.text(self.budget), self.bracket, self.rung,
                        self.occurrence, self.final])

    def tags(self) -> list[str]:
        tags = [f"study:{self.study}", f"algorithm:{self.algorithm}", f"trial:{self.key}",
                f"bracket:{self.bracket}", f"rung:{self.rung}",
                f"budget:{budgets.text(self.budget)}", f"config:{self.config_hash}"]
        if self.seed is not None:
            tags.append(f"seed:{self.seed}")
        if self.final:
            tags.append("final")
        if self.resumed_from:
            tags.append(f"resumed_from:{budgets.text(self.resumed_from)}")
        return tags


@dataclass
class OpenTrial:
    """A trial whose run :meth:`TrialRecorder.start` opened: the logger that holds it."""

    trial: Trial
    logger: object


def _for_the_api(error: Exception, algorithm: str, study: str, url: str) -> Exception:
    """``error`` of opening the tracker's finder, worded for a search called from Python:
    a reader's "no tracker database" speaks of ``--db`` and ``$ATO_DB`` (the CLI's words),
    but here the tracker logger was opened on that database, so it moved or was removed
    (a relative ``sqlite:///`` path read again from another working directory).  Same
    exception class; any other error unchanged."""
    import re

    found = re.match(r"no tracker database at (.*) \((.*?); from (.*)\): check the path",
                     str(error))
    if found is None:
        return error
    path, where, given = found.groups()
    try:
        return type(error)(
            f"{algorithm}: study {study!r}: cannot read its completed trials back from the "
            f"tracker's database: {path} is not there ({where}), though the tracker logger "
            f"was opened on {given} (a relative path, now read from the working directory "
            f"{os.getcwd()}, or a removed file); open the logger with an absolute path, "
            f"e.g. open_logger('sqlite:////absolute/path/experiments.db')")
    except Exception:  # an exception class that takes other arguments: as it was
        return error


# TrialRecorder records the trials of one study and remembers the completed ones (``done``:
# trial key -> objective, filled by ``_load``) so that a resumed study reuses them.
# Without a tracker nothing is recorded and nothing is reused.  Thread-safe.
class TrialRecorder:
    """Wraps a tracker logger (:class:`ato.tracking.TrackerLogger`: ``run(tags, config)``,
    ``log_metric``, ``finish``, and ``url`` or ``config``) for one study; completed trials
    are read back with :func:`ato.tracking.open_finder` on the same URL."""

    def __init__(self, tracker, study_id: str, names, algorithm: str = "search",
                 seed: int | None = None):
        self.tracker = tracker
        self.study_id = study_id
        self.names = list(names)
        self.algorithm = algorithm
        self.seed = seed
        self.done: dict[str, float] = {}
        self.lock = threading.RLock()
        self._seen: dict[tuple, int] = {}
        self._idle: list = []  # loggers with no open run (the tracker, then siblings)
        self._tracker_busy = False
        if tracker is not None:
            self._load()

    def _load(self) -> None:
        """Read the study's completed trials back through the tracker protocol (any
        backend: the finder is opened from the logger's URL, never from ato-sql)."""
        from ato.tracking import open_finder, url_of

        url = getattr(self.tracker, "url", None) or url_of(self.tracker.config)
        try:
            finder = open_finder(url)
        except Exception as e:
            raise _for_the_api(e, self.algorithm, self.study_id, url) from None
        for run in finder.find_runs(tags=[f"study:{self.study_id}"], status="completed"):
            key = next((t[6:] for t in run.tags if str(t).startswith("trial:")), None)
            history = finder.get_metric_history(run.id, OBJECTIVE)
            if key and history:
                self.done[key] = history[-1].value

    def trial(self, config, budget, bracket: int = 0, rung: int = 0,
              final: bool = False) -> Trial:
        """The next trial of ``config`` at these coordinates (repeats are numbered)."""
        chash = config_hash(config, self.names)
        budget = budgets.exact(budget)
        coordinates = (chash, budget, int(bracket), int(rung), bool(final))
        with self.lock:
            occurrence = self._seen.get(coordinates, 0)
            self._seen[coordinates] = occurrence + 1
        return Trial(self.study_id, self.algorithm, chash, budget, int(bracket), int(rung),
                     occurrence, self.seed, bool(final))

    def cached(self, trial: Trial):
        """``(True, metric)`` for a trial completed in an earlier session of the study."""
        with self.lock:
            if self.tracker is not None and trial.key in self.done:
                return True, self.done[trial.key]
        return False, None

    def _logger(self):
        """A logger with no open run: the tracker when it is free, else a sibling opened
        on the tracker's config (same store, same project); None when the tracker cannot
        make one (its trials are then recorded whole, at their end)."""
        with self.lock:
            if self._idle:
                return self._idle.pop()
            if not self._tracker_busy:
                self._tracker_busy = True
                return self.tracker
            config = getattr(self.tracker, "config", None)
        if config is None:
            return None
        try:
            from ato.tracking import open_logger

            return open_logger(config)
        except Exception:  # a backend that cannot open another logger here
            return None

    def start(self, trial: Trial | None, config) -> OpenTrial | None:
        """Open ``trial``'s run now, when the trial starts: status ``running``, its start
        time, its tags and config (one commit); :meth:`record` with the returned handle
        ends it (the second commit).  Trials running at once each get a run of their own
        (a logger holds one open run: the tracker's siblings hold the others).  ``None``
        without a tracker, for a ``None`` trial, or when no logger is free."""
        if self.tracker is None or trial is None:
            return None
        logger = self._logger()
        if logger is None:
            return None
        try:
            logger.run(tags=trial.tags(), config=config)
        except BaseException:
            self._free(logger)
            raise
        return OpenTrial(trial, logger)

    def _free(self, logger) -> None:
        with self.lock:
            self._idle.append(logger)

    def record(self, trial: Trial, config, metric, status: str = "completed",
               error: str | None = None, opened: OpenTrial | None = None) -> None:
        """End the trial's run: ``objective``, final status and, for a failed trial, the
        error (``'ValueError: message'``).  ``opened``: the handle :meth:`start` gave when
        the trial started; without one the whole run (config, tags, metric, status) is
        written now."""
        if self.tracker is None:
            return
        if opened is not None:
            try:
                end_run(opened.logger, trial, metric, status, error)
            finally:
                self._free(opened.logger)
        else:
            with self.lock:
                self.tracker.run(tags=trial.tags(), config=config)
                end_run(self.tracker, trial, metric, status, error)
        self.completed(trial, metric, status)

    def completed(self, trial: Trial, metric, status: str) -> None:
        """Remember a completed trial's metric (what :meth:`cached` answers)."""
        if status == "completed" and _finite(metric):
            with self.lock:
                self.done[trial.key] = metric


def _finite(metric) -> bool:
    return metric is not None and metric == metric


def end_run(logger, trial: Trial, metric, status: str, error, config=None) -> None:
    """End ``logger``'s run: name it first when ``config`` is given (the trial's tags and
    config, for a ``with`` block's run), log the objective (a metric that is not NaN) at
    the trial's rung, and finish it with ``status`` whatever failed before."""
    try:
        if config is not None:
            logger.run(tags=trial.tags(), config=config)
        if _finite(metric):
            logger.log_metric(OBJECTIVE, metric, trial.rung)
    finally:
        logger.finish(status, error)


class ClaimRuns:
    """The tracker runs of a shared study's claims in this worker.

    A claim's run is opened when its objective starts, so the objective's own
    ``tracker.log_metric`` calls land on it, as in a single process.  It is opened as the
    logger's ``with`` block run (no tags, the logger's config: it is no trial record yet);
    when the study accepts this worker's report it is named — the trial's tags and config
    — and ended with the result, so each trial has exactly one run with the study's tags.
    An attempt that ends without an accepted report (a retry, a hand-back, a report refused
    because another worker's was accepted) ends its run ``killed``, untagged, with the
    reason.  A logger that cannot open another run (:meth:`TrialRecorder.start` gives
    None) records the trial whole at its end.  Thread-safe."""

    def __init__(self, recorder: TrialRecorder):
        self.recorder = recorder
        self._open: dict = {}
        self._lock = threading.Lock()

    @staticmethod
    def _id(claim):
        return claim.key, claim.attempt, claim.worker

    def start(self, claim, trial: Trial, config) -> None:
        """Open ``claim``'s run now (before its objective is called)."""
        recorder = self.recorder
        if recorder.tracker is None or trial is None:
            return
        logger = recorder._logger()
        if logger is None:
            return
        try:
            logger.__enter__()
        except BaseException:
            recorder._free(logger)
            raise
        with self._lock:
            self._open[self._id(claim)] = logger

    def logger_of(self, claim):
        """The logger holding ``claim``'s open run (``None``: none open)."""
        with self._lock:
            return self._open.get(self._id(claim))

    def _close(self, logger, status: str, error, named=None, metric=None) -> None:
        try:
            if named is not None:
                end_run(logger, named[0], metric, status, error, config=named[1])
            else:
                logger.finish(status, error)
        finally:
            try:
                logger.__exit__(None, None, None)  # the run is ended: nothing to end
            finally:
                self.recorder._free(logger)

    def record(self, claim, trial: Trial, config, metric, status: str = "completed",
               error: str | None = None) -> None:
        """End ``claim``'s run with the accepted result (a claim whose objective never ran
        — a dead worker's trial failed without running — is recorded whole now)."""
        with self._lock:
            logger = self._open.pop(self._id(claim), None)
        if logger is None:  # on a free logger: the tracker may hold another claim's run
            self.recorder.record(trial, config, metric, status, error,
                                 self.recorder.start(trial, config))
            return
        self._close(logger, status, error, (trial, config), metric)
        self.recorder.completed(trial, metric, status)

    def unrecorded(self, claim, why: str) -> None:
        """End ``claim``'s run ``killed`` with ``why``: its attempt is not the trial's."""
        with self._lock:
            logger = self._open.pop(self._id(claim), None)
        if logger is not None:
            self._close(logger, "killed", f"study {claim.study!r}, trial {claim.key}: {why}")


def on_trial_logger(run, tracker, logger, executor=None):
    """``run`` (``config -> metric``) with the objective's calls on ``tracker`` routed to
    ``logger``, the logger holding this trial's run (:mod:`ato.tracking.routing`), when
    trials run at once in this process; on an executor whose worker processes share this
    machine's store (``attach_runs``: ``processes``), an :class:`AttachedRun` that
    attaches the child's logger to the trial's run; ``run`` itself when nothing needs
    routing or the executor runs it elsewhere (a Ray task: the tracker there is a
    copy)."""
    if executor is not None and not getattr(executor, "in_process", False):
        if logger is None or not getattr(executor, "attach_runs", False):
            return run
        return attached_run(run, logger)
    if logger is None or logger is tracker:
        return run

    def routed_run(config):
        from ato.tracking.routing import route_to

        with route_to(tracker, logger):
            return run(config)

    return routed_run


def attached_run(run, logger):
    """``run`` for a worker process: an :class:`AttachedRun` on the run ``logger`` holds
    (``run`` itself when it holds none)."""
    url = getattr(logger, "url", None)
    run_id = logger.get_current_run_id()
    return run if url is None or run_id is None else AttachedRun(run, url, run_id, logger)


class AttachedRun:
    """``config -> metric`` in a worker process of the ``processes`` executor, for a
    trial whose run ``run_id`` the search's process opened on ``logger``.

    In the child, the objective's calls on any logger of ``url`` that holds no run of its
    own — the copy of the tracker it was written against, forked or opened again when the
    child imported its module — go to a :class:`_Points` collector
    (:func:`ato.tracking.routing.route_unbound`); the points travel back with the
    outcome and :meth:`deliver` logs them on ``logger``, in the parent, before the trial's
    run ends.  The child never writes the store itself: a forked child must not use the
    parent's SQLite connections, nor even open its own on a file the parent has open.
    Picklable (any start method): ``logger`` stays in the parent."""

    def __init__(self, run, url: str, run_id: int, logger=None):
        self.run, self.url, self.run_id, self.logger = run, url, run_id, logger

    def __getstate__(self):
        return {**self.__dict__, "logger": None}

    def __call__(self, config):
        from ato.hyperopt.executors.base import Outcome
        from ato.tracking.routing import route_unbound

        points = _Points(self.url, self.run_id)
        with route_unbound(self.url, points):
            try:
                outcome = Outcome(True, self.run(config))
            except Exception as e:
                outcome = Outcome.failure(e)
                try:
                    pickle.dumps(e)
                except Exception:
                    outcome.exception = None  # the text still says what happened
        return _Logged(outcome, points.rows)

    def deliver(self, outcome):
        """In the parent: log the points a finished trial's outcome carries on the trial's
        run and return the objective's own outcome (``outcome`` as it is otherwise)."""
        logged = outcome.value if outcome.ok else None
        if not isinstance(logged, _Logged):
            return outcome
        if logged.rows and self.logger is not None:
            from ato.tracking.routing import route_to

            with route_to(self.logger, None):
                for key, value, step in logged.rows:
                    self.logger.log_metric(key, value, step)
        return logged.outcome

    def __repr__(self):
        return f"<trial run {self.run_id} of {self.run!r}>"


class _Logged:
    """What an :class:`AttachedRun` returns from the child: the objective's outcome and
    the points it logged."""

    def __init__(self, outcome, rows):
        self.outcome, self.rows = outcome, rows


class _Points:
    """The trial's run as the objective sees it in a worker process: ``log_metric`` and
    ``log_metrics`` are checked here and collected; ``get_current_run_id`` is the
    trial's run.  Anything else names what to do instead."""

    def __init__(self, url: str, run_id: int):
        self.url, self._run_id, self.rows = url, run_id, []

    def log_metric(self, key, value, step) -> None:
        from ato.tracking import check_metric

        self.rows.append(check_metric(key, value, step))

    def log_metrics(self, metrics, step) -> None:
        from ato.tracking import log_each

        log_each(self.log_metric, metrics, step)

    def get_current_run_id(self) -> int:
        return self._run_id

    def __getattr__(self, name):
        if name.startswith("__"):
            raise AttributeError(name)
        what = "this tracker call" if name.startswith("_") else f"the tracker's {name}()"
        raise RuntimeError(
            f"{what} in a 'processes' worker: the trial's run is open in the search's "
            f"process, which receives only log_metric/log_metrics from here; open a logger "
            f"inside the objective (with open_logger(url) as logger: ...) or use "
            f"executor='threads'")
