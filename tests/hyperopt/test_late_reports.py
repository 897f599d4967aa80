"""A worker taken for dead while it was only stopped: its finished result is kept when
the trial is still being run again (the re-run's report is then refused, and that worker
says so on stderr), never a second record; and every worker of a study judges staleness
by the study's heartbeat_interval and stale_after (its first worker's), whatever it was
given.  On SQLite and PostgreSQL; the last test stops a real worker process."""

from __future__ import annotations

import json
import os
import signal
import time
import uuid

import pytest

from tests import databases
from tests.hyperopt.test_workers import Workers, assert_clean, runs_of, states_of

db_url = databases.db_url  # the fixture: a SQLite file, then a PostgreSQL database


def coordinator(url):
    from ato.tracking import open_coordinator

    return open_coordinator(url)


def two_claims(c, study):
    """The one trial of ``study`` claimed by w1, then (w1 silent) by w2: both claims."""
    from ato.tracking import TrialSpec

    c.enqueue(study, [TrialSpec("t1", {"x": 1})])
    first = c.claim(study, "w1")
    time.sleep(0.3)
    second = c.claim(study, "w2", stale_after=0.1)
    assert (first.attempt, second.attempt) == (1, 2)
    return first, second


@pytest.mark.parametrize("next_too", [False, True], ids=["report", "report_and_claim"])
def test_a_late_result_is_kept_while_the_rerun_has_not_reported(db_url, next_too):
    c = coordinator(db_url)
    try:
        study = f"late-{uuid.uuid4().hex[:6]}"
        first, second = two_claims(c, study)
        # the protocol's report refuses it; report_late keeps it while the re-run runs
        if next_too:
            assert c.report_and_claim(first, "completed", 1.5) == (False, None)
        else:
            assert c.report(first, "completed", 1.5) is False
        assert c.report_late(first, 1.5) is True
        assert c.report_late(first, 1.5) is False  # once
        assert not c.report(second, "completed", 2.5)  # the re-run: one record only
        [state] = c.trials(study)
        assert (state.state, state.metric, state.worker) == ("completed", 1.5, "w1")
    finally:
        c.close()


def test_a_late_result_after_the_rerun_reported_is_refused(db_url):
    c = coordinator(db_url)
    try:
        study = f"late-{uuid.uuid4().hex[:6]}"
        first, second = two_claims(c, study)
        assert c.report(second, "completed", 2.5)
        assert not c.report(first, "completed", 1.5)
        assert not c.report_late(first, 1.5)
        [state] = c.trials(study)
        assert (state.state, state.metric, state.worker) == ("completed", 2.5, "w2")
    finally:
        c.close()


def test_a_late_result_does_not_replace_a_worker_died_failure(db_url):
    """retries=0: the second claim records WorkerDiedError at once, which other workers
    may have read as done: the late result is refused (the worker warns, see workers.py)."""
    c = coordinator(db_url)
    try:
        study = f"late-{uuid.uuid4().hex[:6]}"
        first, second = two_claims(c, study)
        assert c.report(second, "failed", None, "WorkerDiedError: the workers died 1 time")
        assert not c.report_late(first, 1.5)
        assert c.trials(study)[0].state == "failed"
    finally:
        c.close()


def test_every_worker_uses_the_studys_heartbeat_and_stale_after(db_url, tmp_path, capfd):
    from ato.adict import ADict
    from ato.hyperopt import get_algorithm
    from ato.scope import Scope
    from ato.tracking import open_logger

    space = ADict(x=ADict(param_type="INTEGER", param_range=(0, 3), num_samples=4))
    study = f"timing-{uuid.uuid4().hex[:6]}"

    def join(**timing):
        search = get_algorithm("grid")(Scope(enable_override=True), space,
                                       tracker=open_logger(db_url, project="t"),
                                       study_id=study, progress=False, **timing)
        return search, search.shared_study()

    first, a = join(heartbeat_interval=4, stale_after=60)
    second, b = join(heartbeat_interval=0.5, stale_after=1.5)
    try:
        assert (a.heartbeat_interval, a.stale_after) == (4, 60)
        assert (b.heartbeat_interval, b.stale_after) == (4, 60)
        assert "using the study's heartbeat_interval=4 s and stale_after=60 s" in \
            capfd.readouterr().err
    finally:
        first.end_search()
        second.end_search()


@pytest.mark.processes
def test_a_stopped_workers_result_is_recorded_once(db_url, tmp_path):
    """Two workers (heartbeat 1 s, stale after 4 s, retries=1). The first trial's worker
    is stopped for 7 s: the other worker takes the trial over and runs it again, slowly;
    the stopped worker, continued, reports first: its result is the trial's (one run,
    worker and metric its own), the re-run's report is refused and its worker says so."""
    study = f"stopped-{uuid.uuid4().hex[:6]}"
    options = {"max_budget": 9, "heartbeat_interval": 1, "stale_after": 4, "retries": 1,
               "seed": 0}
    workers = Workers(tmp_path, db_url, [{"algorithm": "random", "study": study,
                                          "options": {**options, "n_trials": 2}}],
                      sleep=3, rerun_sleep=12)
    procs = workers.start(2)
    deadline = time.monotonic() + 30
    while not workers.pids_running_a_trial() and time.monotonic() < deadline:
        time.sleep(0.05)
    victim = min(workers.pids_running_a_trial())
    os.kill(victim, signal.SIGSTOP)
    time.sleep(7)
    os.kill(victim, signal.SIGCONT)
    outputs = assert_clean(workers.finish(), expected_ok=2)
    results = {json.dumps(lines) for _, lines, _ in outputs}
    assert len({json.dumps([(r["x"], r["c"], r["metric"]) for r in json.loads(x)])
                for x in results}) == 1
    states = states_of(db_url, study)
    assert [s.state for s in states] == ["completed", "completed"]
    stopped = [s for s in states if s.worker and s.worker.split(":")[1] == str(victim)]
    assert stopped, "the stopped worker's result was not kept"
    runs = [r for r in runs_of(db_url, study)]
    assert len(runs) == 2 and {r.status for r in runs} == {"completed"}
    other = [err for p, (_, _, err) in zip(procs, outputs) if p.pid != victim][0]
    assert f"trial {stopped[0].key} (completed) was not recorded from this worker" in other
