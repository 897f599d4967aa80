"""Workers that die or are told to stop in the middle of a trial (real processes,
tests/hyperopt/shared_worker.py): a trial that kills every worker running it is failed
after ``retries + 1`` attempts, a stale re-claim counting as one; SIGTERM (scancel, a
time limit, an eviction) hands the trial back at once, as Ctrl-C does, and is no attempt."""

import json
import signal
import time
import uuid

import pytest

from tests.databases import db_url  # noqa: F401, F811 - a fixture
from tests.hyperopt.test_workers import Workers, runs_of, states_of

pytestmark = pytest.mark.processes

QUICK = {"heartbeat_interval": 0.1, "stale_after": 0.6}


def test_a_trial_that_kills_its_workers_is_failed_after_retries(tmp_path):
    url = f"sqlite:///{tmp_path / 'deaths.db'}"
    study = f"oom-{uuid.uuid4().hex[:6]}"
    options = {"max_budget": 1, "retries": 1, **QUICK}
    workers = Workers(tmp_path, url, [{"algorithm": "grid", "study": study,
                                       "options": options}], sleep=0.0)
    job = json.loads(workers.job.read_text())
    workers.job.write_text(json.dumps({**job, "kill": 3}))
    codes = []
    for _ in range(3):  # one after the other: each waits for the dead one's stale trial
        (proc,) = workers.start(1)
        proc.communicate(timeout=60)
        codes.append(proc.returncode)
        if proc.returncode == 0:
            break
    assert codes == [-signal.SIGKILL, -signal.SIGKILL, 0], codes
    (dead,) = [s for s in states_of(url, study) if s.state == "failed"]
    assert dead.payload["values"] == {"x": 3, "c": "a"}
    assert dead.attempts == 3
    assert dead.error.startswith("WorkerDiedError: the workers running this trial died 2 "
                                 "times while running it"), dead.error
    assert "retries=1 allows 2 attempts" in dead.error
    assert sum(s.state == "completed" for s in states_of(url, study)) == 23
    failed = [r for r in runs_of(url, study) if r.status == "failed"]
    assert [r.error for r in failed] == [dead.error]
    # the third claim found it dead and did not run it: `ato search status` says 2 runs
    from ato.hyperopt.commands import summarize
    from ato.tracking import open_coordinator

    coordinator = open_coordinator(url)
    try:
        assert [f["attempts"] for f in summarize(coordinator, study)["failed"]] == [2]
    finally:
        coordinator.close()


def test_workers_started_without_retries_use_the_studys(tmp_path):
    """The first worker gives retries=1 and is killed; the workers started after it
    without retries use the study's retries=1, so the dead worker's trial runs again
    (not failed at once with 'retries=0 allows 1 attempt')."""
    url = f"sqlite:///{tmp_path / 'deaths.db'}"
    study = f"oom2-{uuid.uuid4().hex[:6]}"
    workers = Workers(tmp_path, url, [{"algorithm": "grid", "study": study, "options": {
        "max_budget": 1, "retries": 1, **QUICK}}], sleep=0.0)
    job = json.loads(workers.job.read_text())
    workers.job.write_text(json.dumps({**job, "kill": 3}))
    codes, errs = [], []
    for i in range(3):
        if i == 1:  # the restarted workers: no retries given
            workers.job.write_text(json.dumps({**job, "kill": 3, "studies": [
                {"algorithm": "grid", "study": study, "options": {"max_budget": 1, **QUICK}}]}))
        (proc,) = workers.start(1)
        errs.append(proc.communicate(timeout=60)[1])
        codes.append(proc.returncode)
        if proc.returncode == 0:
            break
    assert codes == [-signal.SIGKILL, -signal.SIGKILL, 0], (codes, errs)
    (dead,) = [s for s in states_of(url, study) if s.state == "failed"]
    assert "retries=1 allows 2 attempts" in dead.error, dead.error
    assert not any("this worker uses retries" in e for e in errs)


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGINT])
def test_a_stopped_worker_hands_its_trial_back_at_once(tmp_path, sig):
    url = f"sqlite:///{tmp_path / 'stop.db'}"
    study = f"stop-{uuid.uuid4().hex[:6]}"
    options = {"max_budget": 1, "heartbeat_interval": 0.5, "stale_after": 60}
    workers = Workers(tmp_path, url, [{"algorithm": "grid", "study": study,
                                       "options": options}], sleep=0.0)
    job = json.loads(workers.job.read_text())
    workers.job.write_text(json.dumps({**job, "pause": 0}))
    (proc,) = workers.start(1)
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline and not any(
            s.state == "running" and s.payload["values"]["x"] == 0 for s in states_of(url, study)):
        time.sleep(0.05)
    proc.send_signal(sig)
    _, stderr = proc.communicate(timeout=20)
    # as clean as SIGTERM: Ctrl-C exits 130, SIGTERM 143, each with one line, no traceback
    assert proc.returncode == 128 + sig, (proc.returncode, stderr)
    assert "Traceback" not in stderr and len(stderr.strip().splitlines()) == 1, stderr
    held = [s for s in states_of(url, study) if s.payload["values"] == {"x": 0, "c": "a"}][0]
    # back in the queue now (not after stale_after=60 s), and not counted as an attempt
    assert (held.state, held.worker, held.attempts) == ("queued", None, 0)


def test_a_worker_waiting_for_a_dead_workers_trial_says_so(tmp_path):
    """A worker restarted after a crash finds the dead one's trial still `running`; until
    stale_after lets it take it over it says on stderr what it waits for, once."""
    url = f"sqlite:///{tmp_path / 'wait.db'}"
    study = f"wait-{uuid.uuid4().hex[:6]}"
    options = {"max_budget": 1, "retries": 1, "heartbeat_interval": 0.1, "stale_after": 6}
    workers = Workers(tmp_path, url, [{"algorithm": "grid", "study": study,
                                       "options": options}], sleep=0.0)
    job = json.loads(workers.job.read_text())
    workers.job.write_text(json.dumps({**job, "kill": 3}))
    (first,) = workers.start(1)
    first.communicate(timeout=60)
    assert first.returncode == -signal.SIGKILL
    workers.job.write_text(json.dumps(job))
    (second,) = workers.start(1)
    _, stderr = second.communicate(timeout=120)
    assert second.returncode == 0, stderr
    said = [line for line in stderr.splitlines() if "waiting for trial" in line]
    assert len(said) == 1, stderr
    assert f"study {study!r}: waiting for trial " in said[0]
    assert "it is taken over once silent for stale_after=6 s" in said[0]


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGINT])
def test_a_processes_worker_signalled_as_a_group_hands_its_trials_back(tmp_path, db_url, sig):  # noqa: F811
    """`timeout`, scancel, a SLURM time limit and a terminal's Ctrl-C signal the whole
    process group, the pool's children too: the parent decides (its children ignore the
    signal), so both trials in flight go back to the queue at once, no child prints a
    traceback, and the attempts' runs end `killed` with why (none `failed`)."""
    import os
    import subprocess
    import sys

    from tests.hyperopt.test_workers import WORKER

    study = f"group-{uuid.uuid4().hex[:6]}"
    options = {"max_budget": 1, "executor": "processes", "heartbeat_interval": 0.5,
               "stale_after": 60}
    workers = Workers(tmp_path, db_url, [{"algorithm": "grid", "study": study,
                                          "options": options}], sleep=60)
    proc = subprocess.Popen([sys.executable, str(WORKER)], cwd=tmp_path, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True, start_new_session=True,
                            env={**os.environ, "PYTHONWARNINGS": "ignore",
                                 "ATO_WORKER_JOB": str(workers.job)})
    try:
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline and sum(
                s.state == "running" for s in states_of(db_url, study)) < 2:
            time.sleep(0.1)
        time.sleep(0.5)  # both children are in the objective
        started = time.monotonic()
        os.killpg(proc.pid, sig)
        _, stderr = proc.communicate(timeout=30)
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
    assert time.monotonic() - started < 15, "waited for the children's trials"
    assert proc.returncode == 128 + sig, (proc.returncode, stderr)
    assert "Traceback" not in stderr and len(stderr.strip().splitlines()) == 1, stderr
    assert stderr.strip().endswith(": 2 handed back"), stderr
    states = states_of(db_url, study)
    assert all((s.state, s.worker, s.attempts) == ("queued", None, 0) for s in states), \
        [(s.state, s.attempts) for s in states]
    from ato.tracking import open_finder

    runs = open_finder(db_url).find_runs()
    assert sorted(r.status for r in runs) == ["killed", "killed"], \
        [(r.status, r.error) for r in runs]
    assert all("handed back" in (r.error or "") for r in runs), [r.error for r in runs]
