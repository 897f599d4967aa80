"""Study coordination: workers that share one search through the tracker's database.

A *study* is a named queue of trials in the tracker store.  Every worker process (started
by hand, as a SLURM array, as Kubernetes pods, by ``torchrun``) opens the same study with
:func:`ato.tracking.open_coordinator` and the same study name; the database itself decides
who runs what:

- :meth:`StudyCoordinator.enqueue` adds trials (idempotent by key; ``seq`` is the
  insertion order, 0, 1, 2… within the study);
- :meth:`StudyCoordinator.claim` hands one queued trial — or one whose worker's heartbeat
  is older than ``stale_after`` seconds — to exactly one worker (``attempts + 1``);
- :meth:`StudyCoordinator.report` records the result, accepted only from the claim that
  still holds the trial (same worker, same attempt): a result is recorded exactly once, and
  the late report of a worker whose trial was reassigned is refused (``False``);
- :meth:`StudyCoordinator.report_and_claim` is a worker's step between two trials: the
  report of trial *k* and the claim of trial *k + 1* in one transaction (one commit, as
  durable as a report);
- :meth:`StudyCoordinator.claim_or_propose` is the asynchronous algorithms' step (ASHA):
  under a study-wide lock, when nothing is claimable, ``propose(all trial states)`` decides
  what to enqueue, and one trial is claimed in the same transaction.

There is no lock file and no coordinator process: PostgreSQL claims with ``SELECT … FOR
UPDATE SKIP LOCKED``, SQLite inside a ``BEGIN IMMEDIATE`` transaction with a busy timeout.
Heartbeats and staleness are judged by the database's clock, never by a worker's.

A backend offers coordination by declaring the ``"studies"`` capability on its finder and
giving its backend class ``coordinator(config, **options)`` returning an object that
satisfies :class:`StudyCoordinator`.  ``ato.tracking.conformance`` tests it.

Times are naive UTC ``datetime``; ``stale_after`` and other durations are seconds.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Protocol, runtime_checkable

#: The states of a trial in a study.
TRIAL_STATES = ("queued", "running", "completed", "failed")

#: What :meth:`StudyCoordinator.report` accepts as ``status``.
REPORT_STATUSES = ("completed", "failed")

#: The members :func:`ato.tracking.open_coordinator` checks a backend's coordinator for.
REQUIRED_COORDINATOR_MEMBERS = (
    "create_study", "get_study", "join", "heartbeat", "leave", "enqueue", "claim",
    "claim_or_propose", "report", "report_and_claim", "release", "trials", "workers", "close",
)

#: Members a coordinator may have; a worker uses each when present and does without it
#: otherwise (see "Optional members" in :class:`StudyCoordinator`).  The conformance suite
#: tests those a backend has.
OPTIONAL_COORDINATOR_MEMBERS = ("report_late", "replace_unstarted", "requeue_failed",
                                "study_names", "stop_study")


@dataclass(frozen=True)
class TrialSpec:
    """One trial an algorithm wants evaluated.

    ``key`` is unique within the study (``ato.hyperopt.study.Trial.key``); ``payload`` is a
    JSON-able dict (the searched values and full config, budget text, bracket, rung,
    final…).  Non-finite floats in it round-trip; anything JSON cannot hold is a
    ``TypeError`` at :meth:`StudyCoordinator.enqueue`."""

    key: str
    payload: dict = field(default_factory=dict)


@dataclass(frozen=True)
class TrialState:
    """A trial as the store holds it (a snapshot taken when the query ran).

    ``state`` is one of :data:`TRIAL_STATES`; ``seq`` its position in the study (0-based
    insertion order); ``metric``/``error``/``run_id`` what the accepted report recorded;
    ``worker``/``host`` who holds (or last held) it; ``attempts`` how many times it was
    claimed; ``claimed_at``/``finished_at`` by the database's clock."""

    key: str
    seq: int
    state: str
    payload: dict
    metric: float | None = None
    error: str | None = None
    worker: str | None = None
    host: str | None = None
    attempts: int = 0
    run_id: int | None = None
    claimed_at: datetime | None = None
    finished_at: datetime | None = None


@dataclass(frozen=True)
class Claim:
    """A trial held by one worker: what :meth:`StudyCoordinator.claim` returns and what
    :meth:`StudyCoordinator.report` / :meth:`StudyCoordinator.release` take back.
    ``attempt`` is 1 for a first claim, 2 for the first reassignment, and so on."""

    study: str
    key: str
    attempt: int
    worker: str
    payload: dict


@runtime_checkable
class StudyCoordinator(Protocol):
    """What a backend's ``coordinator(config, **options)`` returns.  Every member is safe
    to call from several threads, and from many processes on one store at once.

    A study that does not exist yet is created by :meth:`create_study`, :meth:`join` or
    :meth:`enqueue`; the reading members treat it as empty.

    Optional members (:data:`OPTIONAL_COORDINATOR_MEMBERS`), used by a worker when the
    backend has them:

    - ``report_late(claim, metric=None, run_id=None) -> bool``: record the *completed*
      result of a claim that :meth:`report` refused because its worker was taken for dead
      and a later claim runs the trial again.  ``True`` iff that later claim has not
      reported yet; the result (worker and metric of ``claim``) is then the trial's and
      the later claim's report is refused.  ``False``, nothing written, once the trial was
      reported (completed or failed): a trial has one result, whoever's it is.  Without
      it, a stalled worker's finished result is dropped and the trial runs again.
    - ``replace_unstarted(study, meta, *, stale_after=60.0) -> bool``: give ``study``
      another search's ``meta`` when it never started (no trial ever claimed, no live
      worker), removing its queued trials.  ``True`` iff replaced.  Without it, a study
      created by a mistaken search keeps its meta and a corrected worker is refused.
    - ``requeue_failed(study, *, forget=False) -> int``: put the study's ``failed`` trials
      back in the queue with no attempts (``forget=True``: remove them, for an algorithm
      that proposes trials from the study's history); how many.  What ``ato search
      requeue STUDY --failed`` needs; without it the command says the backend cannot.
      It also clears a stop that ``stop_study`` recorded.
    - ``stop_study(study, reason: dict) -> dict | None``: record in the study's meta, as
      its entry ``"stopped"``, that a worker stopped it (``fail_fast``: its first trials
      all failed), unless one did already; return the record the study holds (the first),
      ``None`` for an unknown study.  Every worker reads it through :meth:`get_study` and
      stops.  Without it, only the worker that saw the failures stops.
    - ``study_names() -> list[str]``: every study, by name, for ``ato search list`` and
      "did you mean" suggestions.
    - ``release(claim, *, counted=True)``: ``counted=False`` gives a trial back without
      counting the claim as an attempt (a worker interrupted by Ctrl-C or SIGTERM); a
      ``release`` without the keyword counts it.
    """

    url: str

    def create_study(self, study: str, meta: dict | None = None) -> dict:
        """Create ``study`` with ``meta`` (JSON-able, e.g. ``{"algorithm": "asha",
        "mode": "max", "metric": "acc"}``) unless it exists; return the study's record
        (:meth:`get_study`).  The first creator's ``meta`` wins, so every worker can check
        that it runs the same search; a study that :meth:`join` or :meth:`enqueue` created
        implicitly has empty ``meta`` until the first ``create_study``."""

    def get_study(self, study: str) -> dict | None:
        """``{"study": name, "meta": dict, "created_at": datetime}``, or ``None`` when the
        study does not exist."""

    def join(self, study: str, worker: str, host: str, pid: int,
             meta: dict | None = None) -> None:
        """Register ``worker`` (a name unique among the study's workers) on ``host`` with
        process id ``pid``; its heartbeat starts now.  Joining again (a restarted worker of
        the same name) refreshes the record."""

    def heartbeat(self, study: str, worker: str) -> None:
        """Mark ``worker`` alive now, by the database's clock."""

    def leave(self, study: str, worker: str) -> None:
        """``worker`` stops: it is no longer alive, and trials it still runs go back to
        the queue (its later reports are refused)."""

    def enqueue(self, study: str, trials: Sequence[TrialSpec]) -> None:
        """Add ``trials`` in order.  A key already in the study (or repeated in
        ``trials``) is left as it is, payload included: enqueuing is idempotent.

        Errors: ``ValueError`` for an empty key; ``TypeError`` naming the key for a
        payload that is not a JSON-able dict."""

    def claim(self, study: str, worker: str, keys: Sequence[str] | None = None, *,
              stale_after: float = 60.0) -> Claim | None:
        """Atomically take the first trial (by ``seq``) among ``keys`` (all when ``None``)
        that is ``queued``, or ``running`` with no sign of life for ``stale_after`` seconds
        (its claim and its worker's heartbeat both older, by the database's clock); it
        becomes ``running`` under ``worker`` with ``attempts + 1``.  ``None`` when there is
        nothing to take.  Two workers never hold the same trial."""

    def claim_or_propose(self, study: str, worker: str,
                         propose: Callable[[list[TrialState]], Sequence[TrialSpec]], *,
                         stale_after: float = 60.0) -> Claim | None:
        """Under a study-wide lock: :meth:`claim` if something is claimable; otherwise call
        ``propose(every trial state, by seq)``, enqueue what it returns, and claim one of
        the study's trials.  No other ``claim_or_propose`` of the study runs ``propose`` at
        the same time, so an asynchronous algorithm decides on a consistent view.  Keep
        ``propose`` short: the lock is held while it runs.  An exception from ``propose``
        rolls everything back and propagates."""

    def report(self, claim: Claim, status: str, metric: float | None = None,
               error: str | None = None, run_id: int | None = None) -> bool:
        """Record the result of ``claim`` (``status`` ``'completed'`` or ``'failed'``;
        ``metric`` may be ±inf or NaN).  ``True`` iff ``claim`` still held the trial (same
        worker and attempt, still running): the result is then recorded, exactly once.
        ``False`` (nothing written) for a trial reassigned, released or already reported.

        Errors: ``ValueError`` for another ``status``."""

    def report_and_claim(self, claim: Claim, status: str, metric: float | None = None,
                         error: str | None = None, run_id: int | None = None,
                         keys: Sequence[str] | None = None, *, stale_after: float = 60.0
                         ) -> tuple[bool, Claim | None]:
        """:meth:`report` ``claim``, then :meth:`claim` the next trial of ``claim.study``
        for ``claim.worker`` (among ``keys``; all when ``None``, none when empty) — in one
        transaction of the store, so a worker pays one commit between two trials.  Returns
        ``(accepted, next claim or None)``: ``accepted`` is what :meth:`report` returns, and
        the next trial is claimed whether or not the report was accepted.  The report is as
        durable as :meth:`report`'s; a crash before the commit loses both (the trial is
        still held, and runs again once stale, recorded once), a crash after it loses
        neither.  The trial just reported is never the one claimed.

        Errors: as :meth:`report` and :meth:`claim`, raised before anything is written."""

    def release(self, claim: Claim) -> bool:
        """Give the trial back to the queue (e.g. to retry it); ``True`` iff ``claim`` still
        held it."""

    def trials(self, study: str, keys: Sequence[str] | None = None) -> list[TrialState]:
        """The study's trials (those among ``keys``, or all), by ``seq``."""

    def workers(self, study: str, *, stale_after: float = 60.0) -> list[dict]:
        """The study's workers, by join time: ``{"worker", "host", "pid", "meta",
        "joined_at", "heartbeat_at", "alive"}``; ``alive`` is ``False`` once the worker
        left or its heartbeat is older than ``stale_after`` seconds (database clock)."""

    def close(self) -> None:
        """Release what this coordinator holds (pooled connections stay with the
        process-wide engine)."""


def check_stale_after(value: Any) -> float:
    """``stale_after`` as a float; ``ValueError`` unless a number > 0."""
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not value > 0:
        raise ValueError(f"stale_after must be a number of seconds > 0, not {value!r}")
    return float(value)


def check_study(study: Any) -> str:
    """``study`` as a non-empty str; ``ValueError`` otherwise."""
    if not isinstance(study, str) or not study.strip():
        raise ValueError(f"a study name must be a non-empty string, not {study!r}")
    return study


__all__ = ["OPTIONAL_COORDINATOR_MEMBERS", "REPORT_STATUSES", "REQUIRED_COORDINATOR_MEMBERS", "TRIAL_STATES", "Claim",
           "StudyCoordinator", "TrialSpec", "TrialState", "check_stale_after",
           "check_study"]
