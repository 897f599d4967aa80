"""Many workers on one study: the trials of a search divided between processes (and
machines) through the tracker database.

When the search has a ``tracker`` whose backend offers the ``"studies"`` capability
(:func:`ato.tracking.open_coordinator`; the SQL tracker does, on SQLite and PostgreSQL)
and an explicit ``study_id``, every process started with that id is one *worker* of the
study. :meth:`ato.hyperopt.base.HyperOpt.evaluate_batch` then enqueues the batch's
trials (idempotent by trial key), and each worker claims a free trial, runs it, reports
it and claims the next, until every trial of the batch is done; a worker that finds
nothing to claim waits for the others' trials of the batch. Trials claimed by a worker
whose heartbeat is older than ``stale_after`` seconds are claimed again (the database
decides, atomically, who gets them; a late report of a reassigned trial is refused), so a
trial's result is recorded exactly once. Every worker reads the same results, so every
worker makes the same decisions and returns the same result.

Asynchronous algorithms (ASHA) use :meth:`SharedStudy.run_async`: the next trial is
proposed by whichever worker is free, under the study-wide lock of
``claim_or_propose``.

Nothing here runs a process or a server of its own; the database does the coordination.
"""

from __future__ import annotations

import collections
import contextlib
import math
import os
import signal
import socket
import sys
import threading
import time
import uuid
import weakref
from collections.abc import Callable
from dataclasses import dataclass
from fractions import Fraction
from typing import Any

from ato.errors import AtoError
from ato.hyperopt.executors.base import traceback_of
from ato.tracking.outcome import describe_exception

__all__ = ["TrialRequest", "SharedStudy", "StudyMismatchError", "open_shared_study", "jsonable",
           "DONE_STATES", "FAIL_FAST", "NotRetried"]

DONE_STATES = ("completed", "failed")


#: How the error of a trial failed because its workers died starts; the claim that finds
#: it so does not run it, so its runs are its attempts minus one.
WORKER_DIED = "WorkerDiedError"


#: The default of ``fail_fast``: a shared study stops once this many of its trials failed
#: with the same error while none completed (an objective that cannot succeed: a typo, a
#: missing file).
FAIL_FAST = 5


class _Abandoned(BaseException):
    """Ends a claim thread whose trial the main thread gave back to the queue (Ctrl-C,
    SIGTERM): its result, if one still comes, is nobody's."""


class NotRetried:
    """Mixin of an objective's failure that running it again cannot change (what it
    returned: None, a string, NaN): ``retries`` does not run such a trial again."""


def not_retried(error: BaseException) -> bool:
    """Whether ``error`` is a :class:`NotRetried` failure: by class when it is the live
    exception, else by the class name leading its text (an executor's ``TrialError``
    carrying another process's ``'ato.hyperopt.base.NaNMetricError: ...'``)."""
    if isinstance(error, NotRetried):
        return True
    if type(error).__name__ != "TrialError":
        return False
    name = str(error).partition(":")[0].strip()
    return name.rpartition(".")[2] in _NOT_RETRIED_NAMES


#: The class names of the :class:`NotRetried` errors (ato.hyperopt.base defines them).
_NOT_RETRIED_NAMES = ("NaNMetricError", "MetricTypeError")


def when(moment) -> str:
    """A database time as status shows it: ``2026-12-01 18:33:21`` (seconds, UTC)."""
    if moment is None:
        return "-"
    strftime = getattr(moment, "strftime", None)
    return strftime("%Y-%m-%d %H:%M:%S") if strftime else str(moment)


#: Between a recorded error's summary and the objective's traceback (:func:`with_traceback`).
TRACEBACK = "\n\nTraceback (most recent call last):\n"


def with_traceback(summary: str, trace: str | None) -> str:
    """The error a shared study records for a failed trial: ``summary`` (``'ValueError:
    bad lr'``, what tables show) then, after a blank line, the objective's traceback
    (``Traceback (most recent call last): ...``; its last frames when the whole would not
    fit the tracker's error text)."""
    if not trace:
        return summary
    from ato.tracking.outcome import MAX_ERROR

    body = trace.partition("\n")[2] if trace.startswith("Traceback (") else trace
    room = MAX_ERROR - len(summary) - len(TRACEBACK) - 2
    if len(body) > room > 0:
        body = "…\n" + body[-room:].partition("\n")[2]
    return summary + TRACEBACK + body if room > 0 else summary


def split_error(error: str | None) -> tuple[str | None, str | None]:
    """``(summary, traceback)`` of a recorded error (:func:`with_traceback`); the
    traceback is ``None`` when none was recorded (an older Ato, a dead worker)."""
    if not error or TRACEBACK not in error:
        return error, None
    summary, _, body = error.partition(TRACEBACK)
    return summary, "Traceback (most recent call last):\n" + body


def trace_tail(trace: str, lines: int = 10) -> str:
    """The last ``lines`` lines of a traceback (its innermost frames and the error)."""
    kept = trace.rstrip().splitlines()
    return "\n".join((["  …"] if len(kept) > lines else []) + kept[-lines:])


def one_line(error: str | None) -> str:
    """A recorded error on one line, for stderr and the status table: the line that names
    the exception's type (``ValueError: first line of the message``; the last line when
    none does, as a traceback ends), `` …`` when more lines follow (the whole error stays
    recorded).  A recorded traceback (:func:`with_traceback`) is left out."""
    import re

    error = split_error(error)[0]
    lines = [line.strip() for line in str(error or "failed without an error").splitlines()
             if line.strip()]
    if not lines:
        return "failed without an error"
    named = [i for i, line in enumerate(lines) if re.match(r"[A-Za-z_][\w.]*(: |:?$)", line)
             and not line.startswith("File ")]
    i = named[0] if named else len(lines) - 1
    return lines[i] + (" …" if i < len(lines) - 1 else "")


def runs_of(attempts: int, error: str | None) -> int:
    """How many times a trial ran, from its claim count and its error."""
    return attempts - 1 if (error or "").startswith(WORKER_DIED + ":") else attempts


@dataclass
class TrialRequest:
    """One trial an algorithm wants evaluated, for
    :meth:`~ato.hyperopt.base.HyperOpt.evaluate_batch`.

    ``config``: the candidate (an ADict; ``__budget__`` is set from ``budget`` when the
    config has that key). ``budget``: exact (a number, ``'10/9'`` or a Fraction; ``None``
    = ``max_budget``). ``rung``, ``bracket``, ``final``: the trial's place in the study
    (the tags of docs/hyperopt.md "Trial records").
    """

    config: Any
    budget: Any = None
    rung: int = 0
    bracket: int = 0
    final: bool = False


def jsonable(value):
    """``value`` as plain JSON data (mappings, lists, numbers, strings, None); anything
    else by its ``repr``; non-finite floats as strings."""
    if value is None or isinstance(value, (bool, str, int)):
        return value
    if isinstance(value, float):
        return value if math.isfinite(value) else repr(value)
    if isinstance(value, Fraction):
        return str(value)
    if hasattr(value, "items"):
        return {str(k): jsonable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [jsonable(v) for v in value]
    if hasattr(value, "__float__") and not isinstance(value, (bytes, bytearray)):
        try:
            return jsonable(float(value))
        except (TypeError, ValueError):
            pass
    return repr(value)


def metric_of(state) -> float:
    """The metric a trial state stands for: its metric when completed, NaN otherwise
    (failed, or completed without a number)."""
    if state.state == "completed" and state.metric is not None:
        return float(state.metric)
    return math.nan


def worker_name() -> str:
    """``host:pid:8 hex digits``: unique per process (and per search in a process)."""
    return f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:8]}"


class StudyMismatchError(AtoError, ValueError):
    """A worker joined a study that another search (another algorithm, seed, mode, search
    space, plan option or base config) created under the same ``study_id``."""


def open_shared_study(tracker, study_id: str, *, heartbeat_interval: float, stale_after: float,
                      retries: int | None, meta: dict, fail_fast: int | None = None
                      ) -> SharedStudy | None:
    """A :class:`SharedStudy` when ``tracker``'s backend offers ``"studies"``, else None
    (the search runs in this process alone). ``meta`` (``algorithm``, ``mode``, ``seed``,
    ``space``, ``options``, ``search_space``, ``base_config``) describes the search: the study keeps the first worker's, and a worker whose
    search differs raises :class:`StudyMismatchError` naming what differs.  ``retries``
    and ``fail_fast``: this worker's, ``None`` when not given (then the study's, as its
    first worker stored them; :func:`study_policy`)."""
    try:
        from ato.tracking import CapabilityError, open_coordinator, url_of
    except ImportError:  # an ato-core without the coordination interface
        return None
    url = getattr(tracker, "url", None) or url_of(tracker.config)
    try:
        coordinator = open_coordinator(url)
    except CapabilityError:
        return None
    try:
        record = coordinator.create_study(study_id, meta)
        held = (record or {}).get("meta") or {}
        differs = _differences(held, meta)
        restart = getattr(coordinator, "replace_unstarted", None)
        if differs and restart is not None and restart(study_id, meta, stale_after=stale_after):
            # no trial of it was ever claimed and no worker is in it: a search that stopped
            # before it started (a mistake in its options) must not lock the study id
            print(f"ato: study {study_id!r} on {url} never started (no trial claimed, no "
                  f"worker in it): it now runs this search ({'; '.join(differs)})",
                  file=sys.stderr, flush=True)
            held, differs = meta, []
        if differs:
            raise StudyMismatchError(
                f"study {study_id!r} on {url} was started by another search: "
                + "; ".join(differs)
                + " (use another study_id, or the same search options in every worker; a "
                "study takes a new search's options only while no trial of it was ever "
                "claimed and no worker is in it)")
        _warn_other_root(study_id, held.get("checkpoint_root"), meta.get("checkpoint_root"))
        heartbeat_interval, stale_after = study_timing(study_id, held, heartbeat_interval,
                                                       stale_after)
        retries, fail_fast = study_policy(study_id, held, retries, fail_fast)
        shared = SharedStudy(coordinator, study_id, heartbeat_interval=heartbeat_interval,
                             stale_after=stale_after, retries=retries, fail_fast=fail_fast,
                             algorithm=str(meta.get("algorithm", "search")))
        if isinstance(held.get("stopped"), dict):  # stopped by fail_fast, not requeued since
            shared._stopped = held["stopped"]
            try:
                shared.raise_stopped()
            finally:
                shared.close()
        return shared
    except BaseException:
        coordinator.close()
        raise


#: meta entries that describe a worker without deciding the plan: never compared
_UNCOMPARED = ("seed_from_study_id", "stale_after", "heartbeat_interval", "checkpoint_root",
               "extensible", "retries", "fail_fast", "stopped")


def study_policy(study: str, held: dict, retries: int | None, fail_fast: int | None
                 ) -> tuple[int, int]:
    """``(retries, fail_fast)`` this worker uses: each the value this worker was given
    (``None``: not given), else the study's (stored by its first worker), else the default
    (``0``; :data:`FAIL_FAST`).  A given value that differs from the study's is said on
    stderr, as :func:`study_timing` says a differing ``stale_after``.  A study from an
    older Ato, which stored neither, uses this worker's."""
    out = []
    for name, given, default in (("retries", retries, 0), ("fail_fast", fail_fast, FAIL_FAST)):
        there = held.get(name)
        if isinstance(there, bool) or not isinstance(there, int) or there < 0:
            there = None
        if given is not None and there is not None and int(given) != there:
            print(f"ato: study {study!r}: this worker uses {name}={int(given)} as given, not the "
                  f"study's {name}={there} (its first worker's); workers that leave {name} out "
                  f"use the study's", file=sys.stderr, flush=True)
        out.append(int(given) if given is not None else there if there is not None else default)
    return out[0], out[1]


def study_timing(study: str, held: dict, heartbeat_interval: float, stale_after: float
                 ) -> tuple[float, float]:
    """``(heartbeat_interval, stale_after)`` this worker uses: the study's, as its first
    worker stored them, so that every worker judges the others by one rule (a worker
    with a short ``stale_after`` would otherwise take a live worker that beats slowly for
    dead).  A worker whose own values differ is told so on stderr.  A study from an older
    Ato that stored ``stale_after`` only keeps it, with a heartbeat well inside it."""
    def number(value):
        try:
            value = float(value)
        except (TypeError, ValueError):
            return None
        return value if 0 < value < math.inf else None

    there_stale, there_beat = number(held.get("stale_after")), number(held.get("heartbeat_interval"))
    if there_stale is None:
        return heartbeat_interval, stale_after
    if there_beat is None or there_beat >= there_stale:
        there_beat = min(heartbeat_interval, there_stale / 3)
    if (there_beat, there_stale) != (heartbeat_interval, stale_after):
        print(f"ato: study {study!r}: using the study's heartbeat_interval={there_beat:g} s "
              f"and stale_after={there_stale:g} s (its first worker's), not this worker's "
              f"{heartbeat_interval:g} s and {stale_after:g} s, so that every worker judges "
              f"the others' heartbeats alike", file=sys.stderr, flush=True)
    return there_beat, there_stale


def _warn_other_root(study: str, there, here) -> None:
    """Warn (once per study and pair) when this worker's checkpoint root is not the one
    the study's first worker resolved: a promoted configuration then finds no state here
    and trains again from 0 (PostgreSQL workers in different working directories without
    ``checkpoint_root=``)."""
    if not there or not here or there == here:
        return
    import warnings

    from ato.errors import user_stacklevel

    warnings.warn(f"study {study!r}: this worker keeps checkpoints under {here}, its first "
                  f"worker under {there}; workers that do not share one directory cannot "
                  f"continue each other's configurations (they train again from 0). Pass "
                  f"checkpoint_root= a directory every worker sees", RuntimeWarning,
                  stacklevel=user_stacklevel())


def _as_written(value):
    """A plan value as the user wrote it, for a message: the plan stores numbers as exact
    text (``'8'``, ``'0.0001'``, ``'1/3'``) so that ``9`` and ``9.0`` agree; shown, an
    integer or decimal text is the number again (a fraction stays text)."""
    import re

    if isinstance(value, dict):
        return {k: _as_written(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_as_written(v) for v in value]
    if isinstance(value, str) and re.fullmatch(r"-?\d+", value):
        return int(value)
    if isinstance(value, str) and re.fullmatch(r"-?(\d+\.\d*|\.\d+|\d+)(e[-+]?\d+)?", value):
        return float(value)
    return value


def _differences(held: dict, meta: dict) -> list[str]:
    """What differs between the study's ``held`` meta and this worker's ``meta``, one
    phrase per option (``options`` and ``search_space`` compared entry by entry); an
    entry only one side has (a study from an older Ato) is not compared."""
    out = []
    for key in meta:
        if key in _UNCOMPARED or key not in held or held[key] == meta[key]:
            continue
        if key in ("options", "search_space", "base_config") and isinstance(held[key], dict) \
                and isinstance(meta[key], dict):
            what = {"options": "option", "search_space": "search space entry",
                    "base_config": "base config key"}[key]
            names = set(held[key]) | set(meta[key])
            if key == "options" and held.get("algorithm") == meta.get("algorithm"):
                # options whose larger value only adds trials: workers may extend the study
                names -= set(meta.get("extensible") or ())
            if key == "options" and held.get("algorithm") != meta.get("algorithm"):
                # another algorithm: an option only one of them has is no news beside
                # 'algorithm is … there, … here'
                names = set(held[key]) & set(meta[key])
            for name in sorted(names):
                there, here = held[key].get(name, "(not given)"), meta[key].get(name, "(not given)")
                if there != here and key == "base_config":  # JSON text: shown as it is
                    out.append(f"{what} {name!r} is {there} there, {here} here")
                elif there != here:
                    out.append(f"{what} {name!r} is {_as_written(there)!r} there, "
                               f"{_as_written(here)!r} here")
            continue
        if key == "space" and isinstance(meta.get("search_space"), dict) \
                and isinstance(held.get("search_space"), dict):
            continue  # the names are part of search_space, reported there
        phrase = f"{key} is {held[key]!r} there, {meta[key]!r} here"
        if key == "seed" and meta.get("seed_from_study_id"):
            phrase += (" (here no seed was given, so it was derived from the study_id; pass "
                       f"seed={held[key]!r})")
        out.append(phrase)
    return out


class SharedStudy:
    """This process as one worker of ``study`` on ``coordinator`` (a
    :class:`ato.tracking.StudyCoordinator`).

    Joining starts a daemon thread that sends a heartbeat every ``heartbeat_interval``
    seconds (the database's clock stamps it); :meth:`close` stops it and leaves the study.
    ``retries``: how many times a trial whose objective raised is given back to the queue
    before it is reported ``failed`` (a :class:`NotRetried` failure is never given back).
    ``fail_fast``: stop the study once that many of its trials failed with the same error
    while none completed (``0``: never); every worker stops with
    :class:`~ato.hyperopt.base.StudyStoppedError`.
    """

    def __init__(self, coordinator, study: str, *, heartbeat_interval: float = 5.0,
                 stale_after: float = 60.0, retries: int = 0, algorithm: str = "search",
                 fail_fast: int = 0):
        self.coordinator = coordinator
        self.study = study
        self.heartbeat_interval = float(heartbeat_interval)
        self.stale_after = float(stale_after)
        self.retries = int(retries)
        self.fail_fast = int(fail_fast or 0)
        self._succeeded = False  # a trial of the study completed: fail_fast is over
        self._stopped = None  # the study's stop record, once this worker saw it
        self.worker = worker_name()
        self.host = socket.gethostname()
        self.claimed = 0  # trials this worker ran to a report
        self.outcomes = collections.Counter()  # completed / failed / handed back / not recorded
        self._told = set()  # the silent workers whose trials this one said it waits for
        self._traced = set()  # the errors whose traceback this worker printed
        self._stop = threading.Event()
        self._closed = False
        # the claims whose objective runs now, in claim threads: the main thread gives
        # them back when Ctrl-C or SIGTERM ends the worker (_give_back_held)
        self._held: dict = {}
        self._held_lock = threading.Lock()
        self._leaving = False
        coordinator.join(study, self.worker, self.host, os.getpid(),
                         {"algorithm": algorithm})
        self._beat = threading.Thread(target=self._heartbeat, name=f"ato-heartbeat-{study}",
                                      daemon=True)
        self._beat.start()
        # leaves at close(), when collected, or at interpreter exit, whichever is first
        self._finalizer = weakref.finalize(self, _leave, coordinator, study, self.worker,
                                           self._stop)

    # ------------------------------------------------------------------ membership
    def _heartbeat(self) -> None:
        while not self._stop.wait(self.heartbeat_interval):
            try:
                self.coordinator.heartbeat(self.study, self.worker)
            except Exception:  # a lost connection: the next beat tries again
                continue
            if self.fail_fast and not self._succeeded and self._stopped is None:
                self._look_stopped()

    def _look_stopped(self) -> None:
        """Read whether another worker stopped the study (fail_fast); the claim loops
        stop at their next step."""
        try:
            record = self.coordinator.get_study(self.study) or {}
        except Exception:
            return
        stopped = (record.get("meta") or {}).get("stopped")
        if isinstance(stopped, dict):
            self._stopped = stopped

    def _db(self) -> str:
        try:
            from ato.tracking.secrets import db_option

            return " " + db_option(self.coordinator.url)
        except Exception:
            return ""

    def raise_stopped(self) -> None:
        """Raise :class:`~ato.hyperopt.base.StudyStoppedError` for the study's stop
        record: what failed first (error and values), how to see every failure."""
        from ato.hyperopt.base import StudyStoppedError

        r, db = self._stopped or {}, self._db()
        by = "this worker" if r.get("worker") == self.worker else f"worker {r.get('worker')}"
        raise StudyStoppedError(
            f"study {self.study!r} was stopped by {by} (fail_fast={r.get('fail_fast')}): "
            f"{r.get('failed')} of its trials failed with the same error and none completed, "
            f"so the objective itself looks broken. The first failure: "
            f"{one_line(r.get('error'))} "
            f"(trial {r.get('key')}, values {r.get('values')}). See every failure: ato search "
            f"status {self.study}{db} (the full errors: --json); after fixing the cause, "
            f"`ato search requeue {self.study} --failed{db}` runs them again and clears the "
            f"stop, the only thing that does"
            + (" (this worker's fail_fast=0 keeps the study from being stopped again; it "
               "does not clear a stop already recorded)" if not self.fail_fast else
               " (fail_fast=0 in the workers keeps it from being stopped again; it does "
               "not clear this stop)"))

    def _check_fail_fast(self) -> None:
        """After a failed trial of this worker: stop the study when ``fail_fast`` of its
        trials failed with the same error (:func:`one_line`) and none completed (one read
        of the study's trials, only until the first completes)."""
        if not self.fail_fast or self._succeeded:
            return
        states = self.coordinator.trials(self.study)
        if any(s.state == "completed" for s in states):
            self._succeeded = True
            return
        # one error again and again: a broken objective (a typo, a missing file), not a
        # region of the space that fails (its errors usually name the values)
        by_error: dict = {}
        for s in states:
            if s.state == "failed":
                by_error.setdefault(one_line(s.error), []).append(s)
        same = max(by_error.values(), key=len, default=[])
        if len(same) < self.fail_fast:
            return
        first = same[0]
        record = {"worker": self.worker, "fail_fast": self.fail_fast, "failed": len(same),
                  "key": first.key, "error": split_error(first.error)[0],
                  "values": (first.payload or {}).get("values")}
        stop = getattr(self.coordinator, "stop_study", None)
        if stop is not None:
            try:
                record = stop(self.study, record) or record
            except Exception:  # the database is gone: this worker stops all the same
                pass
        self._stopped = record
        self.raise_stopped()

    def close(self) -> None:
        """Stop the heartbeat and leave the study (idempotent); one line on stderr says
        what this worker did, also when it had nothing to do (a SLURM task's log ends with
        its part)."""
        if self._closed:
            return
        self._closed = True
        if self.outcomes:
            done = ", ".join(f"{n} {what}" for what, n in sorted(self.outcomes.items()))
            if self._stopped is not None:
                done += " (then the study was stopped by fail_fast)"
        elif self._stopped is not None:
            done = "0 completed (the study was stopped by fail_fast)"
        else:
            done = ("0 completed (nothing left to run: every trial of its plan was already "
                    "done, or taken by other workers)")
        print(f"ato: study {self.study!r}: worker {self.worker}: {done}",
              file=sys.stderr, flush=True)
        self._finalizer()
        self._beat.join(timeout=self.heartbeat_interval + 1)
        try:
            self.coordinator.close()
        except Exception:
            pass

    def _say_waiting(self, states, waited: int) -> None:
        """Once this worker has found nothing to claim for a while (``waited`` looks),
        say on stderr which trials it waits for when their workers have gone silent (no
        heartbeat for three intervals): a worker restarted after a crash otherwise sits
        quiet until ``stale_after`` lets it take them over."""
        if waited < 12 or waited % 20 != 12:  # after ~3 s of looking, then every ~10 s
            return
        held = {s.worker: s.key for s in states if s.state == "running" and s.worker}
        if not held.keys() - self._told - {self.worker}:
            return
        silent = [w for w in self.coordinator.workers(
            self.study, stale_after=3 * self.heartbeat_interval)
            if not w["alive"] and w["worker"] in held and w["worker"] not in self._told]
        for w in silent:
            self._told.add(w["worker"])
            print(f"ato: study {self.study!r}: waiting for trial {held[w['worker']]} held by "
                  f"worker {w['worker']} on {w['host']}, silent since {when(w['heartbeat_at'])}; "
                  f"it is taken over once silent for stale_after={self.stale_after:g} s",
                  file=sys.stderr, flush=True)

    def _pause(self, waited: int) -> float:
        """Seconds to wait after ``waited`` fruitless looks: 10 ms doubling to 0.5 s (or
        the heartbeat interval, if shorter)."""
        return min(0.01 * 2 ** min(waited, 6), 0.5, max(self.heartbeat_interval, 0.01))

    # ------------------------------------------------------------------ one claim
    def run_claim(self, claim, run: Callable[[Any], float], record: Callable,
                  unrecorded: Callable | None = None) -> bool:
        """Run ``run(claim)`` (the objective; returns the metric), report it, and on an
        accepted report call ``record(claim, metric, status, error)``. An exception of the
        objective gives the trial back while it has retries left, else reports it
        ``failed`` with the error. A BaseException (Ctrl-C) gives it back and propagates.
        ``unrecorded(claim, why)``, when given, is called for an attempt that ran the
        objective but ends without an accepted report (a retry, a hand-back, a refused
        late report), so that whoever opened a run for it can end it.
        Returns whether the report was accepted."""
        return self._settle(claim, run, record, None, claim_next=False,
                            unrecorded=unrecorded)[0]

    def run_claim_and_next(self, claim, run: Callable[[Any], float], record: Callable,
                           keys=None, unrecorded: Callable | None = None):
        """:meth:`run_claim`, but the report and the claim of the next trial (among
        ``keys``; all when ``None``) are one call to the database
        (:meth:`ato.tracking.StudyCoordinator.report_and_claim`): one commit between two
        trials instead of two. Returns ``(accepted, next Claim or None)``."""
        return self._settle(claim, run, record, keys, claim_next=True, unrecorded=unrecorded)

    def died_error(self, attempt: int) -> str:
        """The error of a trial claimed for the ``attempt``-th time after its earlier
        holders ended without a report: it is not run again."""
        deaths = attempt - 1
        return (f"{WORKER_DIED}: the workers running this trial died {deaths} "
                f"time{'s' if deaths != 1 else ''} while running it (no report, no heartbeat "
                f"for stale_after={self.stale_after:g} s: killed, out of memory?); "
                f"retries={self.retries} allows {self.retries + 1} "
                f"attempt{'s' if self.retries else ''}, so it is not run again")

    def _say_failed(self, claim, error: str, again: bool, ran: bool = True) -> None:
        """One stderr line per failed attempt: the trial, its searched values and the
        error's last line (the whole error is recorded with the trial)."""
        values = (claim.payload or {}).get("values") if isinstance(claim.payload, dict) else None
        then = (f"run again, attempt {claim.attempt} of {self.retries + 1}" if again else
                f"attempt {claim.attempt} of {self.retries + 1}, recorded failed" if ran else
                "not run again, recorded failed")
        said = one_line(error)
        trace = split_error(error)[1]
        if trace and said not in self._traced:  # once per distinct error in this worker
            self._traced.add(said)
            said += "\n" + "\n".join("    " + line for line in trace_tail(trace).splitlines())
        print(f"ato: study {self.study!r}: trial {claim.key} failed ({then}) with values "
              f"{values}: {said}", file=sys.stderr, flush=True)

    def _settle(self, claim, run, record, keys, claim_next: bool, unrecorded=None):
        if self._stopped is not None:  # another worker stopped the study (fail_fast)
            self._hand_back(claim)
            self.raise_stopped()
        ran = False
        if claim.attempt > self.retries + 1:
            # a hand-back (Ctrl-C, SIGTERM, leaving) does not count as an attempt and an
            # objective's exception stops at retries + 1, so the claims beyond that ended
            # with their worker: a trial that kills its worker must not kill them all
            status, value, metric, error = "failed", None, None, self.died_error(claim.attempt)
        else:
            ran = True
            try:
                metric = self._run_held(claim, run, unrecorded)
            except Exception as e:
                error = with_traceback(describe_exception(e), traceback_of(e))
                if claim.attempt <= self.retries and not not_retried(e):
                    self._say_failed(claim, error, again=True)
                    self.coordinator.release(claim)
                    self.outcomes["retried"] += 1
                    _tell(unrecorded, claim, f"retried: attempt {claim.attempt} of "
                          f"{self.retries + 1} raised {error}")
                    return False, (self._claim(keys) if claim_next else None)
                status, value = "failed", None
                metric = None
            except BaseException as e:
                if isinstance(e, _Abandoned):  # the main thread gave it back already
                    raise
                self._hand_back(claim)
                self.outcomes["handed back"] += 1
                _tell(unrecorded, claim, f"handed back: {describe_exception(e) or type(e).__name__}")
                raise
            else:
                status, error = "completed", None
                value = None if metric is None or metric != metric else float(metric)
        if claim_next:
            accepted, following = self.coordinator.report_and_claim(
                claim, status, value, error, keys=keys, stale_after=self.stale_after)
        else:
            accepted, following = self.coordinator.report(claim, status, value, error), None
        if not accepted and ran and status == "completed":
            accepted = self._report_late(claim, value)
        if accepted:
            self.claimed += 1
            self.outcomes[status] += 1
            if status == "failed":
                self._say_failed(claim, error, again=False, ran=ran)
            else:
                self._succeeded = True
            try:
                record(claim, metric, status, error)
                if status == "failed":
                    self._check_fail_fast()
            except BaseException:
                if following is not None:  # not started: another worker may take it now
                    self._hand_back(following)
                raise
        elif ran:
            self.outcomes["not recorded (taken for dead)"] += 1
            why = (f"({status}) was not recorded from this worker: another worker's report of "
                   f"it was accepted first (this worker was taken for dead: no heartbeat for "
                   f"stale_after={self.stale_after:g} s)")
            print(f"ato: study {self.study!r}: trial {claim.key} {why}", file=sys.stderr,
                  flush=True)
            try:
                _tell(unrecorded, claim, why)
            except BaseException:
                if following is not None:
                    self._hand_back(following)
                raise
        return accepted, following

    def _run_held(self, claim, run, unrecorded):
        """``run(claim)``, with ``claim`` among the held ones meanwhile; raises
        :class:`_Abandoned` when the main thread gave it back (this worker is leaving)."""
        with self._held_lock:
            if self._leaving:
                self._hand_back(claim)  # claimed as the worker left: not started
                raise _Abandoned
            self._held[id(claim)] = (claim, unrecorded)
        try:
            return run(claim)
        finally:
            with self._held_lock:
                if self._held.pop(id(claim), None) is None:
                    raise _Abandoned  # noqa: B012 - whatever it returned is nobody's

    def _give_back_held(self, why: str) -> None:
        """Ctrl-C or SIGTERM reached the main thread while claim threads run trials: give
        each trial back to the queue now (not counted as an attempt; no wait for
        ``stale_after``), as a single claim loop does in its own thread; the threads then
        end without reporting (:class:`_Abandoned`)."""
        with self._held_lock:
            self._leaving = True
            held, self._held = list(self._held.values()), {}
        for claim, unrecorded in held:
            try:
                self._hand_back(claim)
            except Exception:  # the database is gone: stale_after frees it
                continue
            self.outcomes["handed back"] += 1
            try:
                _tell(unrecorded, claim, f"handed back: {why}")
            except Exception:
                pass

    def _report_late(self, claim, value) -> bool:
        """This worker was taken for dead while it ran ``claim`` to a result: keep the
        result when the trial's re-run has not reported yet (a coordinator with
        ``report_late``; the re-run's report is then refused)."""
        late = getattr(self.coordinator, "report_late", None)
        if late is None:
            return False
        try:
            return bool(late(claim, value))
        except Exception:  # the database is gone: the re-run records the trial
            return False

    def _hand_back(self, claim) -> None:
        """Give ``claim`` back without counting it as an attempt (the trial did not end:
        the worker was interrupted); a coordinator without ``counted=`` counts it."""
        try:
            self.coordinator.release(claim, counted=False)
        except TypeError:
            self.coordinator.release(claim)

    def _claim(self, keys):
        return self.coordinator.claim(self.study, self.worker, keys, stale_after=self.stale_after)

    # ------------------------------------------------------------------ a batch
    def evaluate(self, specs, run: Callable[[Any], float], record: Callable,
                 threads: int = 1, unrecorded: Callable | None = None) -> dict:
        """Enqueue ``specs`` (:class:`ato.tracking.TrialSpec`), work on them with the other
        workers until each is completed or failed, and return ``{key: metric}`` (NaN for a
        failed trial). ``threads`` claim loops run in this process (an executor's slots).
        Between two trials a loop makes one call to the database: the report of the one
        and the claim of the next, in one transaction."""
        keys = [s.key for s in specs]
        if not keys:
            return {}
        self.coordinator.enqueue(self.study, list(specs))
        done: dict = {}

        def loop():
            waited, claim = 0, None
            while not done:
                if claim is None:
                    claim = self._claim(keys)
                if claim is not None:
                    waited = 0
                    claim = self.run_claim_and_next(claim, run, record, keys, unrecorded)[1]
                    continue
                states = self.coordinator.trials(self.study, keys)
                if len(states) == len(keys) and all(s.state in DONE_STATES for s in states):
                    done.update({s.key: metric_of(s) for s in states})
                    return
                if self._stopped is not None:
                    self.raise_stopped()
                self._say_waiting(states, waited)
                time.sleep(self._pause(waited))
                waited += 1

        with terminate_as_exit():
            self._in_threads(loop, min(threads, len(keys)))
        return done

    def _in_threads(self, loop: Callable[[], None], threads: int) -> None:
        """``loop()`` here, or in ``threads`` threads; the first exception is raised.
        Ctrl-C or SIGTERM while the threads run gives their trials back at once."""
        if threads <= 1:
            loop()
            return
        errors: list[BaseException] = []

        def guarded():
            try:
                loop()
            except BaseException as e:  # noqa: BLE001 - handed to the caller below
                errors.append(e)

        pool = [threading.Thread(target=guarded, name=f"ato-claims-{i}", daemon=True)
                for i in range(threads)]
        for t in pool:
            t.start()
        try:
            for t in pool:
                t.join()
        except BaseException as e:  # Ctrl-C, SIGTERM (SystemExit): signals reach this thread
            self._give_back_held(describe_exception(e) or type(e).__name__)
            raise
        errors = [e for e in errors if not isinstance(e, _Abandoned)]
        if errors:
            raise errors[0]

    # ------------------------------------------------------------------ asynchronous
    def run_async(self, propose: Callable[[list], list], run: Callable[[Any], float],
                  record: Callable, threads: int = 1, unrecorded: Callable | None = None) -> list:
        """Work on an asynchronous study: whichever worker is free asks
        ``propose(all trial states)`` for new trials under the study lock and claims one,
        until ``propose`` returns nothing and no trial is queued or running. ``threads``
        loops run in this process. Returns the final trial states."""
        def loop():
            waited = 0
            while True:
                claim = self.coordinator.claim_or_propose(self.study, self.worker, propose,
                                                          stale_after=self.stale_after)
                if claim is not None:
                    waited = 0
                    self.run_claim(claim, run, record, unrecorded)
                    continue
                states = self.coordinator.trials(self.study)
                if all(s.state in DONE_STATES for s in states):
                    return
                if self._stopped is not None:
                    self.raise_stopped()
                self._say_waiting(states, waited)
                time.sleep(self._pause(waited))
                waited += 1

        with terminate_as_exit():
            self._in_threads(loop, threads)
        return self.coordinator.trials(self.study)


@contextlib.contextmanager
def terminate_as_exit():
    """While a worker runs trials: SIGTERM (scancel, a SLURM time limit, a Kubernetes
    eviction) raises ``SystemExit(143)`` in the main thread, as Ctrl-C raises
    ``KeyboardInterrupt``, so the trial in hand is given back to the queue at once (no
    wait for ``stale_after``) and the worker leaves the study; the exit status stays 143.
    Only when SIGTERM has its default handler and this is the main thread; the previous
    handler comes back afterwards.

    Ctrl-C (SIGINT, while its handler is Python's or a tracker's of Ato) ends the worker
    as quietly: once the ``KeyboardInterrupt`` has handed the trial back, it leaves the
    block as ``sys.exit(130)`` — the worker's one summary line, exit status 130, no
    traceback.  A ``KeyboardInterrupt`` that no signal raised (the objective's own)
    propagates as it is."""
    main = threading.current_thread() is threading.main_thread()
    install = main and signal.getsignal(signal.SIGTERM) is signal.SIG_DFL
    previous = signal.getsignal(signal.SIGINT) if main else None
    watch = previous is signal.default_int_handler or \
        str(getattr(previous, "__module__", "")).startswith("ato.")
    interrupted = []

    def terminated(signum, frame):
        raise SystemExit(128 + signum)

    def interrupt(signum, frame):
        interrupted.append(signum)
        previous(signum, frame)  # a tracker's ends its runs 'killed'; both raise
        raise KeyboardInterrupt

    if install:
        signal.signal(signal.SIGTERM, terminated)
    if watch:
        signal.signal(signal.SIGINT, interrupt)
    try:
        yield
    except KeyboardInterrupt:
        if not interrupted:
            raise
        sys.exit(128 + signal.SIGINT)
    finally:
        if install:
            signal.signal(signal.SIGTERM, signal.SIG_DFL)
        if watch:
            signal.signal(signal.SIGINT, previous)


def _tell(unrecorded, claim, why: str) -> None:
    if unrecorded is not None:
        unrecorded(claim, why)


def _leave(coordinator, study: str, worker: str, stop: threading.Event) -> None:
    stop.set()
    try:
        coordinator.leave(study, worker)
    except Exception:  # the database is gone at exit: the heartbeat goes stale anyway
        pass
