"""The study-coordination half of the tracker conformance suite (:mod:`ato.tracking.studies`).

Mixed into :class:`ato.tracking.conformance.TrackerConformance`, so a backend runs it with
the same command.  A backend whose finder does not declare the ``"studies"`` capability
skips every test here with the reason.  Each test works in a study of its own, so a
shared store is fine; ``stale_after`` is a fraction of a second where staleness is tested.
"""

from __future__ import annotations

import json
import math
import subprocess
import sys
import threading
import time
import uuid
from collections import Counter
from datetime import datetime, timedelta, timezone

from ato.tracking import (
    CapabilityError,
    Claim,
    StudyCoordinator,
    TrialSpec,
    TrialState,
    open_coordinator,
    open_finder,
    open_logger,
)

try:
    import pytest

    fixture = pytest.fixture
except ImportError:  # importable without pytest; runs under it
    pytest = None

    def fixture(function):
        return function


STALE = 0.4  # seconds: short enough for a test, long enough for a loaded machine's claim

# A worker process: claims until the study is empty (reporting each trial and claiming the
# next in one step), prints one JSON line per claim.
WORKER = """
import json, sys, time
from ato.tracking import open_coordinator
url, study, worker, pause = sys.argv[1], sys.argv[2], sys.argv[3], float(sys.argv[4])
c = open_coordinator(url)
c.join(study, worker, "conformance-host", 0)
claim = c.claim(study, worker)
while claim is not None:
    time.sleep(pause)
    ok, following = c.report_and_claim(claim, "completed", metric=float(claim.payload["i"]))
    print(json.dumps({"key": claim.key, "attempt": claim.attempt, "accepted": ok}), flush=True)
    claim = following
c.leave(study, worker)
c.close()
"""


def _utc_now() -> datetime:
    return datetime.now(timezone.utc).replace(tzinfo=None)


def _specs(n: int, prefix: str = "t") -> list[TrialSpec]:
    return [TrialSpec(f"{prefix}{i:03d}", {"i": i, "config": {"lr": 10.0 ** -i}})
            for i in range(n)]


class StudyConformance:
    """Study coordination: the members of :class:`ato.tracking.StudyCoordinator`."""

    @fixture
    def coordinator(self, url) -> StudyCoordinator:
        """The backend's coordinator, or a skip when it does not declare ``"studies"``."""
        project = f"conformance-studies-{uuid.uuid4().hex[:8]}"
        open_logger(url, project=project)  # a finder never creates the store
        finder = open_finder(url)
        if not finder.supports("studies"):
            with pytest.raises(CapabilityError, match="studies"):
                open_coordinator(url)
            pytest.skip(f"the {finder.plugin_name!r} tracker backend does not declare the "
                        f"'studies' capability")
        coordinator = open_coordinator(url)
        yield coordinator
        coordinator.close()

    @fixture
    def study(self) -> str:
        return f"study-{uuid.uuid4().hex[:10]}-ünï"

    # ------------------------------------------------------------------ records
    def test_coordinator_satisfies_the_protocol(self, coordinator, study):
        """The coordinator has every member; an unknown study reads as empty."""
        assert isinstance(coordinator, StudyCoordinator)
        assert coordinator.get_study(study) is None
        assert coordinator.trials(study) == [] and coordinator.workers(study) == []
        assert coordinator.claim(study, "w") is None

    def test_study_record_first_creator_wins(self, coordinator, study):
        """create_study keeps the first meta, so late workers see what the first decided."""
        before = _utc_now() - timedelta(seconds=30)
        first = coordinator.create_study(study, {"mode": "min", "algorithm": "asha"})
        again = coordinator.create_study(study, {"mode": "max"})
        assert first["study"] == again["study"] == study
        assert first["meta"] == again["meta"] == {"mode": "min", "algorithm": "asha"}
        assert isinstance(first["created_at"], datetime) and first["created_at"].tzinfo is None
        assert before <= first["created_at"] <= _utc_now() + timedelta(seconds=30)
        assert coordinator.get_study(study) == first

    def test_implicit_study_takes_the_first_meta(self, coordinator, study):
        """A study created by join/enqueue has empty meta until create_study gives it."""
        coordinator.enqueue(study, _specs(1))
        assert coordinator.get_study(study)["meta"] == {}
        assert coordinator.create_study(study, {"mode": "max"})["meta"] == {"mode": "max"}
        assert coordinator.create_study(study, {"mode": "min"})["meta"] == {"mode": "max"}

    def test_enqueue_is_idempotent_and_keeps_order(self, coordinator, study):
        """Keys are unique; seq is insertion order; a repeated key keeps its first payload."""
        coordinator.enqueue(study, _specs(3))
        coordinator.enqueue(study, [TrialSpec("t001", {"i": 99}), TrialSpec("new", {"i": 3}),
                                    TrialSpec("new", {"i": 4})])
        coordinator.enqueue(study, [])
        states = coordinator.trials(study)
        assert [(s.key, s.seq, s.state, s.payload["i"]) for s in states] == [
            ("t000", 0, "queued", 0), ("t001", 1, "queued", 1), ("t002", 2, "queued", 2),
            ("new", 3, "queued", 3)]
        assert all(isinstance(s, TrialState) and s.attempts == 0 and s.worker is None
                   and s.metric is None and s.claimed_at is None for s in states)
        assert [s.key for s in coordinator.trials(study, ["new", "t000", "absent"])] == [
            "t000", "new"]

    def test_payload_comes_back_equal(self, coordinator, study):
        """Nested, unicode and non-finite payload values come back equal; a payload JSON
        cannot hold is refused naming the key."""
        payload = {"config": {"lr": 1e-3, "név": "ünï 🚀", "layers": [1, 2]}, "budget": "3 epochs",
                   "bracket": 0, "rung": 1, "final": False, "none": None,
                   "edge": [math.inf, -math.inf]}
        coordinator.enqueue(study, [TrialSpec("k", payload)])
        assert coordinator.trials(study)[0].payload == payload
        claim = coordinator.claim(study, "w")
        assert claim.payload == payload
        with pytest.raises(TypeError, match="'bad'"):
            coordinator.enqueue(study, [TrialSpec("bad", {"x": object()})])
        with pytest.raises(ValueError):
            coordinator.enqueue(study, [TrialSpec("", {})])
        assert [s.key for s in coordinator.trials(study)] == ["k"]

    # ------------------------------------------------------------------ claims
    def test_claim_order_and_key_filter(self, coordinator, study):
        """Claims follow seq; ``keys`` restricts them (still by seq, not by the list's order)."""
        coordinator.join(study, "w1", "host-a", 11)
        coordinator.enqueue(study, _specs(5))
        first = coordinator.claim(study, "w1")
        assert isinstance(first, Claim)
        assert (first.study, first.key, first.attempt, first.worker) == (study, "t000", 1, "w1")
        assert coordinator.claim(study, "w1", ["t004", "t003"]).key == "t003"
        assert coordinator.claim(study, "w1", ["t000", "t003"]) is None  # both running
        assert coordinator.claim(study, "w1", []) is None
        assert coordinator.claim(study, "w1").key == "t001"
        state = {s.key: s for s in coordinator.trials(study)}
        assert state["t000"].state == "running" and state["t000"].worker == "w1"
        assert state["t000"].host == "host-a" and state["t000"].attempts == 1
        assert isinstance(state["t000"].claimed_at, datetime)
        assert state["t002"].state == "queued"

    def test_report_is_recorded_exactly_once(self, coordinator, study):
        """The holder's report is accepted once; a second one changes nothing."""
        coordinator.enqueue(study, _specs(3))
        a, b, c = (coordinator.claim(study, "w") for _ in range(3))
        assert coordinator.report(a, "completed", metric=0.5, run_id=7) is True
        assert coordinator.report(a, "completed", metric=0.9) is False
        assert coordinator.report(a, "failed", error="late") is False
        assert coordinator.report(b, "failed", error="ValueError: bad lr") is True
        assert coordinator.report(c, "completed", metric=math.inf) is True
        state = {s.key: s for s in coordinator.trials(study)}
        assert (state[a.key].state, state[a.key].metric, state[a.key].run_id) == (
            "completed", 0.5, 7)
        assert state[a.key].finished_at >= state[a.key].claimed_at
        assert (state[b.key].state, state[b.key].error) == ("failed", "ValueError: bad lr")
        assert state[c.key].metric == math.inf
        with pytest.raises(ValueError, match="status"):
            coordinator.report(a, "running")

    def test_report_and_claim_reports_then_claims_the_next(self, coordinator, study):
        """One call reports a trial and claims the next by seq (among ``keys``), never the
        trial it reported; the next claim comes whether or not the report was accepted."""
        coordinator.join(study, "w", "h", 1)
        coordinator.enqueue(study, _specs(5))
        first = coordinator.claim(study, "w")
        accepted, second = coordinator.report_and_claim(first, "completed", metric=0.25,
                                                        run_id=3)
        assert accepted is True and isinstance(second, Claim)
        assert (second.study, second.key, second.attempt, second.worker) == (
            study, "t001", 1, "w")
        assert second.payload == _specs(5)[1].payload
        state = {s.key: s for s in coordinator.trials(study)}
        assert (state["t000"].state, state["t000"].metric, state["t000"].run_id) == (
            "completed", 0.25, 3)
        assert state["t001"].state == "running" and state["t001"].worker == "w"
        # restricted to keys, by seq; a failed report with its error
        accepted, third = coordinator.report_and_claim(second, "failed", error="E: x",
                                                       keys=["t004", "t003", "t001"])
        assert accepted and third.key == "t003"
        assert coordinator.trials(study, ["t001"])[0].error == "E: x"
        # an empty keys list reports and claims nothing
        assert coordinator.report_and_claim(third, "completed", metric=1.0, keys=[]) == (
            True, None)
        # a refused report (already reported) still hands out the next trial
        accepted, fourth = coordinator.report_and_claim(third, "completed", metric=9.0)
        assert accepted is False and fourth.key == "t002"
        assert coordinator.trials(study, ["t003"])[0].metric == 1.0
        # the last trial: the report is recorded and there is nothing left to claim
        accepted, fifth = coordinator.report_and_claim(fourth, "completed", metric=2.0)
        assert accepted and fifth.key == "t004"
        assert coordinator.report_and_claim(fifth, "completed", metric=math.inf) == (True, None)
        assert [s.state for s in coordinator.trials(study)] == ["completed", "failed",
                                                                 "completed", "completed",
                                                                 "completed"]
        assert coordinator.trials(study, ["t004"])[0].metric == math.inf

    def test_report_and_claim_refuses_bad_arguments_before_writing(self, coordinator, study):
        """A bad status, a non-Claim or a bad stale_after is an error and changes nothing."""
        coordinator.enqueue(study, _specs(2))
        claim = coordinator.claim(study, "w")
        with pytest.raises(ValueError, match="status"):
            coordinator.report_and_claim(claim, "running")
        with pytest.raises(ValueError, match="stale_after"):
            coordinator.report_and_claim(claim, "completed", metric=1.0, stale_after=-1)
        with pytest.raises(TypeError):
            coordinator.report_and_claim(claim.key, "completed")
        assert [s.state for s in coordinator.trials(study)] == ["running", "queued"]

    def test_report_and_claim_takes_a_stale_trial_once(self, coordinator, study):
        """The claim half reassigns a stale trial like claim(), to exactly one worker, and
        the dead holder's late report is refused."""
        coordinator.enqueue(study, _specs(3))
        held = coordinator.claim(study, "dead", stale_after=STALE)
        mine = coordinator.claim(study, "alive", stale_after=STALE)
        time.sleep(STALE * 2)
        coordinator.heartbeat(study, "alive")
        accepted, rescued = coordinator.report_and_claim(mine, "completed", metric=1.0,
                                                         stale_after=STALE)
        assert accepted and (rescued.key, rescued.attempt) == (held.key, 2)
        assert coordinator.report(held, "completed", metric=5.0) is False
        accepted, last = coordinator.report_and_claim(rescued, "completed", metric=2.0,
                                                      stale_after=STALE)
        assert accepted and last.key == "t002"
        assert coordinator.trials(study, [held.key])[0].metric == 2.0

    def test_nan_metric_is_kept(self, coordinator, study):
        """A NaN result is recorded as NaN (not as a missing metric)."""
        coordinator.enqueue(study, _specs(1))
        claim = coordinator.claim(study, "w")
        assert coordinator.report(claim, "completed", metric=math.nan)
        (state,) = coordinator.trials(study)
        assert state.state == "completed" and math.isnan(state.metric)

    def test_release_requeues_and_refuses_the_old_claim(self, coordinator, study):
        """A released trial is claimable again (attempts go on); the released claim is dead."""
        coordinator.enqueue(study, _specs(1))
        claim = coordinator.claim(study, "w1")
        assert coordinator.release(claim) is True
        assert coordinator.release(claim) is False
        assert coordinator.trials(study)[0].state == "queued"
        again = coordinator.claim(study, "w2")
        assert (again.key, again.attempt) == (claim.key, 2)
        assert coordinator.report(claim, "completed", metric=1.0) is False
        assert coordinator.report(again, "completed", metric=2.0) is True
        assert coordinator.trials(study)[0].metric == 2.0

    def test_stale_trial_is_reassigned_once_and_late_report_refused(self, coordinator, study):
        """A trial whose worker stopped heart-beating goes to exactly one other worker; the
        first worker's late report is refused and the new holder's is recorded."""
        coordinator.join(study, "dead", "host-a", 1)
        coordinator.join(study, "alive", "host-b", 2)
        coordinator.enqueue(study, _specs(1))
        held = coordinator.claim(study, "dead", stale_after=STALE)
        assert coordinator.claim(study, "alive", stale_after=STALE) is None  # not stale yet
        time.sleep(STALE * 2)
        coordinator.heartbeat(study, "alive")
        winners = []

        def grab(i):
            claim = coordinator.claim(study, f"rescuer-{i}", stale_after=STALE)
            if claim is not None:
                winners.append(claim)

        threads = [threading.Thread(target=grab, args=(i,)) for i in range(6)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        assert len(winners) == 1, winners
        (winner,) = winners
        assert (winner.key, winner.attempt) == (held.key, 2)
        assert coordinator.report(held, "completed", metric=1.0) is False
        assert coordinator.report(winner, "completed", metric=2.0) is True
        (state,) = coordinator.trials(study)
        assert (state.state, state.metric, state.worker, state.attempts) == (
            "completed", 2.0, winner.worker, 2)

    def test_report_late_keeps_a_stalled_result_once(self, coordinator, study):
        """Optional ``report_late``: a refused result is kept while the re-run has not
        reported (the re-run's report is then refused), never once the trial has one."""
        if not hasattr(coordinator, "report_late"):
            pytest.skip("this coordinator has no report_late (optional)")
        coordinator.enqueue(study, _specs(2))
        stalled = coordinator.claim(study, "stalled", keys=["t000"], stale_after=STALE)
        time.sleep(STALE * 2)
        rerun = coordinator.claim(study, "rescuer", keys=["t000"], stale_after=STALE)
        assert (rerun.key, rerun.attempt) == ("t000", 2)
        assert coordinator.report(stalled, "completed", metric=1.0) is False
        assert coordinator.report_late(stalled, metric=1.0) is True
        assert coordinator.report(rerun, "completed", metric=2.0) is False
        state = coordinator.trials(study, ["t000"])[0]
        assert (state.state, state.metric, state.worker) == ("completed", 1.0, "stalled")
        # the other trial: the re-run reports first, the late result is refused
        stalled = coordinator.claim(study, "stalled", keys=["t001"], stale_after=STALE)
        time.sleep(STALE * 2)
        rerun = coordinator.claim(study, "rescuer", keys=["t001"], stale_after=STALE)
        assert coordinator.report(rerun, "failed", error="WorkerDiedError") is True
        assert coordinator.report_late(stalled, metric=1.0) is False
        assert coordinator.trials(study, ["t001"])[0].state == "failed"

    def test_requeue_failed_requeues_or_forgets(self, coordinator, study):
        """Optional ``requeue_failed``: failed trials go back to the queue with no attempts
        (``forget=True``: they are removed); other trials are left alone."""
        if not hasattr(coordinator, "requeue_failed"):
            pytest.skip("this coordinator has no requeue_failed (optional)")
        coordinator.enqueue(study, _specs(3))
        for _ in range(2):
            claim = coordinator.claim(study, "w", stale_after=STALE)
            coordinator.report(claim, "failed" if claim.key == "t000" else "completed", 1.0)
        assert coordinator.requeue_failed(study) == 1
        states = {t.key: (t.state, t.attempts) for t in coordinator.trials(study)}
        assert states == {"t000": ("queued", 0), "t001": ("completed", 1),
                          "t002": ("queued", 0)}
        claim = coordinator.claim(study, "w", stale_after=STALE)
        coordinator.report(claim, "failed", error="again")
        assert coordinator.requeue_failed(study, forget=True) == 1
        assert [t.key for t in coordinator.trials(study)] == ["t001", "t002"]
        assert coordinator.requeue_failed(f"{study}-missing") == 0

    def test_stop_study_first_reason_wins_until_requeued(self, coordinator, study):
        """Optional ``stop_study``: the first stop record is kept in the study's meta
        (entry ``"stopped"``), the meta's other entries stay, a second stop returns the
        first record, and ``requeue_failed`` clears it."""
        if not hasattr(coordinator, "stop_study"):
            pytest.skip("this coordinator has no stop_study (optional)")
        coordinator.create_study(study, {"algorithm": "random", "retries": 1})
        first = {"worker": "w1", "error": "AttributeError: lrr", "values": {"lr": 0.1}}
        assert coordinator.stop_study(study, first) == first
        assert coordinator.stop_study(study, {"worker": "w2", "error": "other"}) == first
        meta = coordinator.get_study(study)["meta"]
        assert meta["stopped"] == first and meta["algorithm"] == "random" \
            and meta["retries"] == 1
        assert coordinator.stop_study(f"{study}-missing", first) is None
        if hasattr(coordinator, "requeue_failed"):
            coordinator.requeue_failed(study)
            assert "stopped" not in coordinator.get_study(study)["meta"]

    def test_replace_unstarted_only_before_any_claim(self, coordinator, study):
        """Optional ``replace_unstarted``: a study no worker ever claimed from takes new
        meta and loses its queued trials; once a trial was claimed, it is refused."""
        if not hasattr(coordinator, "replace_unstarted"):
            pytest.skip("this coordinator has no replace_unstarted (optional)")
        coordinator.create_study(study, {"algorithm": "asha", "total_budget": "0.5"})
        coordinator.enqueue(study, _specs(2))
        assert coordinator.replace_unstarted(study, {"algorithm": "asha",
                                                     "total_budget": "30"}) is True
        assert coordinator.get_study(study)["meta"]["total_budget"] == "30"
        assert coordinator.trials(study) == []
        coordinator.enqueue(study, _specs(1))
        coordinator.claim(study, "w", stale_after=STALE)
        assert coordinator.replace_unstarted(study, {"algorithm": "random"}) is False
        assert coordinator.get_study(study)["meta"]["algorithm"] == "asha"
        assert coordinator.replace_unstarted(f"{study}-missing", {}) is False

    def test_stale_trial_keeps_its_place_in_seq_order(self, coordinator, study):
        """A stale trial is claimed before queued trials that come after it."""
        coordinator.enqueue(study, _specs(3))
        held = coordinator.claim(study, "dead", stale_after=STALE)
        time.sleep(STALE * 2)
        order = [coordinator.claim(study, "alive", stale_after=STALE) for _ in range(3)]
        assert [(c.key, c.attempt) for c in order[:2]] == [(held.key, 2), ("t001", 1)]
        assert order[2].key == "t002"

    def test_heartbeat_keeps_a_long_trial(self, coordinator, study):
        """A worker that heart-beats keeps its trial past stale_after."""
        coordinator.join(study, "slow", "h", 1)
        coordinator.enqueue(study, _specs(1))
        claim = coordinator.claim(study, "slow", stale_after=STALE)
        for _ in range(4):
            time.sleep(STALE / 3)
            coordinator.heartbeat(study, "slow")
        assert coordinator.claim(study, "other", stale_after=STALE) is None
        assert coordinator.report(claim, "completed", metric=1.0) is True

    def test_workers_join_heartbeat_and_leave(self, coordinator, study):
        """Workers are listed with host and pid; leaving marks them gone and puts their
        running trial back in the queue."""
        coordinator.join(study, "w1", "host-a", 101, {"rank": 0})
        coordinator.join(study, "w2", "host-b", 102)
        coordinator.enqueue(study, _specs(2))
        claim = coordinator.claim(study, "w2")
        rows = {w["worker"]: w for w in coordinator.workers(study)}
        assert set(rows) == {"w1", "w2"}
        assert (rows["w1"]["host"], rows["w1"]["pid"], rows["w1"]["meta"]) == (
            "host-a", 101, {"rank": 0})
        assert rows["w1"]["alive"] and rows["w2"]["alive"]
        assert isinstance(rows["w1"]["heartbeat_at"], datetime)
        coordinator.leave(study, "w2")
        rows = {w["worker"]: w for w in coordinator.workers(study)}
        assert rows["w1"]["alive"] and not rows["w2"]["alive"]
        assert coordinator.trials(study, [claim.key])[0].state == "queued"
        assert coordinator.report(claim, "completed", metric=1.0) is False
        time.sleep(STALE * 2)
        assert not coordinator.workers(study, stale_after=STALE)[0]["alive"]
        coordinator.heartbeat(study, "w1")
        assert coordinator.workers(study, stale_after=STALE)[0]["alive"]

    def test_bad_arguments_are_refused(self, coordinator, study):
        """Empty names and a non-positive stale_after are errors naming the argument."""
        with pytest.raises(ValueError, match="stale_after"):
            coordinator.claim(study, "w", stale_after=0)
        with pytest.raises(ValueError, match="worker"):
            coordinator.claim(study, "")
        with pytest.raises(ValueError, match="study"):
            coordinator.enqueue("", _specs(1))

    # ------------------------------------------------------------------ concurrency
    def test_no_double_claim_under_threads(self, coordinator, study):
        """Eight threads drain one queue (half with ``report_and_claim``): every trial
        claimed and reported exactly once."""
        coordinator.enqueue(study, _specs(40))
        claimed, errors = [], []

        def work(i):
            try:
                claim = coordinator.claim(study, f"thread-{i}")
                while claim is not None:
                    claimed.append(claim.key)
                    if i % 2:  # half the threads report and claim in one step
                        accepted, claim = coordinator.report_and_claim(claim, "completed",
                                                                       metric=float(i))
                        assert accepted
                    else:
                        assert coordinator.report(claim, "completed", metric=float(i))
                        claim = coordinator.claim(study, f"thread-{i}")
            except BaseException as e:  # reported below, with the thread that raised
                errors.append(f"thread {i}: {type(e).__name__}: {e}")

        threads = [threading.Thread(target=work, args=(i,)) for i in range(8)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        assert errors == []
        assert sorted(claimed) == [s.key for s in _specs(40)]
        assert {s.state for s in coordinator.trials(study)} == {"completed"}
        assert {s.attempts for s in coordinator.trials(study)} == {1}

    def test_no_double_claim_under_processes(self, coordinator, study, url):
        """Three worker processes drain one queue: each trial claimed once, every report
        accepted, no error in any process."""
        coordinator.enqueue(study, _specs(24))
        procs = [subprocess.Popen([sys.executable, "-c", WORKER, url, study, f"proc-{i}", "0.01"],
                                  stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
                 for i in range(3)]
        lines = []
        for proc in procs:
            out, err = proc.communicate(timeout=240)
            assert proc.returncode == 0, err
            lines += [json.loads(line) for line in out.splitlines() if line.strip()]
        counts = Counter(line["key"] for line in lines)
        assert sorted(counts) == [s.key for s in _specs(24)] and set(counts.values()) == {1}
        assert all(line["accepted"] and line["attempt"] == 1 for line in lines)
        assert {s.state for s in coordinator.trials(study)} == {"completed"}

    def test_claim_or_propose_is_atomic(self, coordinator, study):
        """propose runs only when nothing is claimable, never twice at once, sees every trial,
        and what it proposes is claimed in the same step."""
        running, overlaps, calls = [0], [], []
        guard = threading.Lock()

        def propose(states):
            with guard:
                running[0] += 1
                if running[0] > 1:
                    overlaps.append(running[0])
            try:
                assert all(isinstance(s, TrialState) for s in states)
                assert not any(s.state == "queued" for s in states)
                calls.append(len(states))
                time.sleep(0.01)  # widen the window a second proposer would need
                return [TrialSpec(f"p{len(states):03d}", {"i": len(states)})]
            finally:
                with guard:
                    running[0] -= 1

        claims, errors = [], []

        def work(i):
            try:
                for _ in range(4):
                    claim = coordinator.claim_or_propose(study, f"w{i}", propose)
                    assert claim is not None
                    claims.append(claim)
                    assert coordinator.report(claim, "completed", metric=0.0)
            except BaseException as e:
                errors.append(f"worker {i}: {type(e).__name__}: {e}")

        threads = [threading.Thread(target=work, args=(i,)) for i in range(5)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        assert errors == [] and overlaps == []
        assert sorted(calls) == list(range(20))  # each call saw one more trial than the last
        assert len({c.key for c in claims}) == len(claims) == 20
        assert [s.key for s in coordinator.trials(study)] == [f"p{i:03d}" for i in range(20)]

    def test_claim_or_propose_claims_first_and_rolls_back_on_error(self, coordinator, study):
        """With something claimable propose is not called; an exception from propose
        propagates and enqueues nothing."""
        coordinator.enqueue(study, _specs(1))

        def never(states):
            raise AssertionError("propose called although a trial was claimable")

        assert coordinator.claim_or_propose(study, "w", never).key == "t000"

        def broken(states):
            raise RuntimeError("proposer failed")

        with pytest.raises(RuntimeError, match="proposer failed"):
            coordinator.claim_or_propose(study, "w", broken)
        assert coordinator.claim_or_propose(study, "w", lambda states: []) is None
        assert [s.key for s in coordinator.trials(study)] == ["t000"]
