"""A hand-back is no attempt: ``release(claim, counted=False)`` and a worker leaving with
a trial in hand put it back in the queue with the attempt count it had before the claim,
while a counted release (a retry after an exception) keeps the attempt; on SQLite and
PostgreSQL (``db_url``)."""

from __future__ import annotations

from ato.tracking import TrialSpec, open_coordinator


def _state(coordinator, study, key):
    (state,) = coordinator.trials(study, [key])
    return state.state, state.worker, state.attempts


def test_hand_back_leave_and_retry_count_differently(db_url):
    coordinator = open_coordinator(db_url)
    try:
        study = "handback"
        coordinator.enqueue(study, [TrialSpec("t0", {}), TrialSpec("t1", {})])
        claim = coordinator.claim(study, "w1")
        assert (claim.key, claim.attempt) == ("t0", 1)
        assert coordinator.release(claim, counted=False) is True
        assert _state(coordinator, study, "t0") == ("queued", None, 0)
        assert coordinator.release(claim, counted=False) is False  # no longer held
        again = coordinator.claim(study, "w2")
        assert (again.key, again.attempt) == ("t0", 1)
        assert coordinator.release(again) is True  # a retry: the attempt stays
        assert _state(coordinator, study, "t0") == ("queued", None, 1)
        third = coordinator.claim(study, "w3")
        assert (third.key, third.attempt) == ("t0", 2)
        coordinator.join(study, "w3", "host", 1)
        coordinator.leave(study, "w3")  # leaving with t0 in hand hands it back
        assert _state(coordinator, study, "t0") == ("queued", None, 1)
        assert coordinator.report(third, "completed", metric=1.0) is False
    finally:
        coordinator.close()
