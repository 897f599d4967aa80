"""A worker's step between two trials on SQL (``report_and_claim``) and claims restricted
to a batch of keys, whichever way the keys sit in the study: a contiguous batch (claimed
as a seq range), keys interleaved with another batch's, more keys than one IN list holds,
and a batch whose keys are not all enqueued yet."""

from __future__ import annotations

from ato.tracking import TrialSpec, open_coordinator


def _enqueue(coordinator, study, keys):
    coordinator.enqueue(study, [TrialSpec(k, {"k": k}) for k in keys])


def _drain(coordinator, study, worker, keys):
    """Claim among ``keys`` and report_and_claim until nothing is left: the keys, in order."""
    order, claim = [], coordinator.claim(study, worker, keys)
    while claim is not None:
        order.append(claim.key)
        accepted, claim = coordinator.report_and_claim(claim, "completed", metric=1.0,
                                                       keys=keys)
        assert accepted
    return order


def test_a_contiguous_batch_and_an_interleaved_one(db_url):
    coordinator = open_coordinator(db_url)
    study = "step-batches"
    first = [f"a{i:02d}" for i in range(12)]
    _enqueue(coordinator, study, first)
    # two batches interleaved: b and c alternate in seq
    mixed = [k for i in range(10) for k in (f"b{i:02d}", f"c{i:02d}")]
    _enqueue(coordinator, study, mixed)
    b = [k for k in mixed if k.startswith("b")]
    assert _drain(coordinator, study, "w", list(reversed(first))) == first
    assert _drain(coordinator, study, "w", b) == b
    states = {s.key: s.state for s in coordinator.trials(study)}
    assert all(states[k] == "queued" for k in mixed if k.startswith("c"))
    assert all(states[k] == "completed" for k in first + b)
    # the same list again (cached as a range): nothing left among it
    assert coordinator.claim(study, "w", first) is None
    coordinator.close()


def test_a_batch_not_yet_enqueued_in_full_is_claimed_by_key(db_url):
    coordinator = open_coordinator(db_url)
    study = "step-partial"
    keys = [f"t{i:02d}" for i in range(10)]
    _enqueue(coordinator, study, keys[:5])
    assert _drain(coordinator, study, "w", keys) == keys[:5]
    _enqueue(coordinator, study, ["other"] + keys[5:])  # a stranger now sits inside
    assert _drain(coordinator, study, "w", keys) == keys[5:]
    assert coordinator.trials(study, ["other"])[0].state == "queued"
    coordinator.close()


def _steps(coordinator, study, worker, keys, n):
    """The first ``n`` trials claimed among ``keys`` by a worker's steps."""
    order, claim = [], coordinator.claim(study, worker, keys)
    for _ in range(n):
        order.append(claim.key)
        accepted, claim = coordinator.report_and_claim(claim, "completed", metric=1.0,
                                                       keys=keys)
        assert accepted
    coordinator.release(claim)
    return order


def test_more_keys_than_one_list_holds(db_url):
    """1,010 trials; a batch of every other one (505 keys: more than one IN list, and no
    seq range) is claimed in seq order, then the other half from where it starts."""
    coordinator = open_coordinator(db_url)
    study = "step-many"
    keys = [f"t{i:04d}" for i in range(1010)]
    _enqueue(coordinator, study, keys)
    even, odd = keys[0::2], keys[1::2]
    assert _steps(coordinator, study, "w", even[::-1], 4) == even[:4]
    assert _steps(coordinator, study, "w", odd, 3) == odd[:3]
    states = {s.key: s for s in coordinator.trials(study)}
    assert [k for k, s in states.items() if s.state == "completed"] == sorted(
        even[:4] + odd[:3])
    assert states[even[4]].state == "queued" and states[even[4]].attempts == 1  # released
    coordinator.close()
