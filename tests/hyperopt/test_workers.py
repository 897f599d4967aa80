"""Many worker processes on one shared study (issue 12), on SQLite and PostgreSQL: every
trial of the plan runs exactly once, killed workers' trials run again elsewhere exactly
once, the decisions equal a single process's, a failing objective fails its trial and the
study goes on, late joiners help, a study whose workers all died resumes, ASHA follows
its promotion rule.  The workers are real processes (tests/hyperopt/shared_worker.py)."""

from __future__ import annotations

import importlib.util
import json
import math
import os
import signal
import subprocess
import sys
import time
import uuid
from collections import Counter
from pathlib import Path

import pytest

from ato.adict import ADict
from tests import databases

# real worker processes: run by `nox -s tests` after the quick run (docs/contributing.md)
pytestmark = pytest.mark.processes

WORKER = Path(__file__).with_name("shared_worker.py")
PG_URL = databases.PG_URL
# A live worker is never taken for dead here, even on a machine loaded far beyond its
# cores; the tests that kill workers use STALE, short enough to keep them fast.
FAST = {"heartbeat_interval": 0.5, "stale_after": 60}
STALE = {"heartbeat_interval": 0.2, "stale_after": 4, "retries": 1}  # a death is an attempt
PLANS = {  # algorithm -> options; every one has a fixed seed
    "grid": {"max_budget": 9},
    "random": {"n_trials": 16, "max_budget": 9, "seed": 3},
    "hyperband": {"halving_rate": 0.5, "num_min_samples": 2, "max_budget": 8},
    "multi_hyperband": {"max_budget": 9, "min_budget": 1, "eta": 3, "seed": 3},
}


def _shared_worker():
    spec = importlib.util.spec_from_file_location("shared_worker", WORKER)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


db_url = databases.db_url  # the fixture, shared with tests/sql


@pytest.fixture
def url(db_url):
    """A fresh SQLite file, then a fresh PostgreSQL database (tests/databases.py)."""
    return db_url


class Workers:
    """Worker processes of one job (a JSON file), their output and their call logs."""

    def __init__(self, tmp_path: Path, url: str, studies: list, sleep: float = 0.05,
                 fail=None, name: str = "job", **job):
        self.cwd = tmp_path  # checkpoints (./ato-studies) land here, not in the checkout
        self.log = tmp_path / f"{name}-calls"
        self.log.mkdir(exist_ok=True)
        self.job = tmp_path / f"{name}.json"
        self.job.write_text(json.dumps({"url": url, "log": str(self.log), "sleep": sleep,
                                        "fail": fail, "studies": studies, **job}))
        self.procs: list[subprocess.Popen] = []

    def start(self, n: int, command=None) -> list[subprocess.Popen]:
        new = [subprocess.Popen(command or [sys.executable, str(WORKER)], cwd=self.cwd,
                                stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                                env={**os.environ, "PYTHONWARNINGS": "ignore",
                                     "ATO_WORKER_JOB": str(self.job)})
               for _ in range(n)]
        self.procs += new
        return new

    def finish(self, timeout: float = 180) -> list[tuple[int, list, str]]:
        out = []
        for p in self.procs:
            stdout, stderr = p.communicate(timeout=timeout)
            out.append((p.returncode, [json.loads(line) for line in stdout.splitlines()
                                       if line.startswith("{")], stderr))
        return out

    def calls(self, what: str = "end") -> Counter:
        """How many objective calls started or ended, per trial identity."""
        seen = Counter()
        for f in self.log.glob("*.log"):
            for line in f.read_text().splitlines():
                kind, _, ident = line.partition(" ")
                if kind == what:
                    seen[ident] += 1
        return seen

    def pids_running_a_trial(self) -> set[int]:
        """Workers with a started, unfinished call."""
        busy = set()
        for f in self.log.glob("*.log"):
            lines = f.read_text().splitlines()
            if lines and lines[-1].startswith("start "):
                busy.add(int(f.stem))
        return busy


def single_process(algorithm: str, options: dict, study: str, fail=None):
    """The reference: the same search in this process, untracked: (calls, (x, c), metric)."""
    from ato.hyperopt import get_algorithm
    from ato.scope import Scope

    worker = _shared_worker()
    calls = Counter()
    search = get_algorithm(algorithm)(Scope(enable_override=True), worker.SPACE,
                                      progress=False, catch=(ValueError,),
                                      **{"seed": 0, **options})

    def objective(config):
        calls[json.dumps([study, config.x, config.c, str(config.get("__budget__")),
                          config.get("__num_halved__", 0), config.get("__bracket__", 0)])] += 1
        if fail is not None and config.x == fail:
            raise ValueError(f"x={fail} diverges")
        return worker.score(config)

    result = search.main(objective)()
    return calls, (result.config.x, result.config.c), result.metric


def runs_of(url: str, study: str):
    from ato.tracking import open_finder

    return open_finder(url).find_runs(tags=[f"study:{study}"])


def states_of(url: str, study: str):
    from ato.tracking import open_coordinator

    coordinator = open_coordinator(url)
    try:
        return coordinator.trials(study)
    finally:
        coordinator.close()


def ident(study: str, state) -> str:
    """The identity shared_worker.py logs for a trial, from its coordinator state."""
    p = state.payload
    return json.dumps([study, p["values"]["x"], p["values"]["c"], p["budget"], p["rung"],
                       p["bracket"]])


def assert_clean(outputs, expected_ok: int | None = None):
    ok = [o for o in outputs if o[0] == 0]
    for rc, _, stderr in outputs:
        assert "database is locked" not in stderr, stderr
        if rc not in (0, -signal.SIGKILL):
            raise AssertionError(f"a worker exited {rc}:\n{stderr}")
    if expected_ok is not None:
        assert len(ok) == expected_ok, [o[2][-2000:] for o in outputs]
    return ok


def study_plan(prefix: str) -> list[dict]:
    return [{"algorithm": a, "study": f"{prefix}-{a}", "options": {"seed": 0, **o, **FAST}}
            for a, o in PLANS.items()]


def test_eight_workers_divide_every_algorithm_exactly_once(url, tmp_path):
    """8 processes run grid, random, hyperband and multi_hyperband studies one after the
    other: every trial of each plan ran exactly once (objective calls, tracker runs and
    coordinator states agree), 0 errors, no 'database is locked', every worker returns the
    single-process winner, and the set of evaluated configurations is the single
    process's."""
    studies = study_plan(f"eight-{uuid.uuid4().hex[:6]}")
    workers = Workers(tmp_path, url, studies)
    workers.start(8)
    outputs = assert_clean(workers.finish(), expected_ok=8)
    ended = workers.calls("end")
    assert workers.calls("start") == ended  # nothing started that did not end
    for item in studies:
        calls, winner, metric = single_process(item["algorithm"], item["options"],
                                               item["study"])
        mine = Counter({k: v for k, v in ended.items() if json.loads(k)[0] == item["study"]})
        assert mine == calls, item["algorithm"]  # the same trials, each exactly once
        results = {(r["x"], r["c"], r["metric"]) for _, lines, _ in outputs for r in lines
                   if r["study"] == item["study"]}
        assert results == {(*winner, metric)}, item["algorithm"]
        runs = runs_of(url, item["study"])
        assert len(runs) == sum(calls.values())
        assert {r.status for r in runs} == {"completed"}
        keys = [next(t for t in r.tags if t.startswith("trial:")) for r in runs]
        assert len(set(keys)) == len(keys), "a trial was recorded twice"
        states = states_of(url, item["study"])
        assert len(states) == len(runs)
        assert all(s.state == "completed" and s.attempts == 1 for s in states)
    busy = Counter(s.worker for item in studies for s in states_of(url, item["study"]))
    assert len(busy) >= 4, f"the work was not divided: {busy}"


def test_two_killed_workers_trials_run_again_exactly_once(url, tmp_path):
    """SIGKILL 2 of 8 workers in the middle of a trial: their trials are claimed again
    once their heartbeat is stale and run exactly once more; every other trial runs once;
    the 6 survivors return the single-process result."""
    study = f"kill-{uuid.uuid4().hex[:6]}"
    options = {"n_trials": 40, "max_budget": 9, "seed": 5, **STALE}
    workers = Workers(tmp_path, url, [{"algorithm": "random", "study": study,
                                       "options": options}], sleep=0.25)
    procs = workers.start(8)
    by_pid = {p.pid: p for p in procs}
    deadline = time.monotonic() + 60
    victims = set()
    while len(victims) < 2 and time.monotonic() < deadline:
        for pid in workers.pids_running_a_trial() - victims:
            if len(victims) < 2:
                by_pid[pid].send_signal(signal.SIGKILL)
                victims.add(pid)
        time.sleep(0.02)
    assert len(victims) == 2, "no worker was caught in the middle of a trial"
    outputs = assert_clean(workers.finish(), expected_ok=6)
    started, ended = workers.calls("start"), workers.calls("end")
    unfinished = started - ended
    assert sum(unfinished.values()) == 2  # the two killed trials
    calls, winner, metric = single_process("random", options, study)
    # the killed trials ran again elsewhere, exactly once: every call of the plan ended
    # exactly as often as the single process made it
    assert ended == calls, "a trial ran twice, or one was lost"
    assert set(unfinished) <= set(calls)
    assert {(r["x"], r["c"], r["metric"]) for _, lines, _ in outputs for r in lines} == \
        {(*winner, metric)}
    states = states_of(url, study)
    assert all(s.state == "completed" for s in states)
    assert sorted(s.attempts for s in states if s.attempts > 1) == [2, 2]
    runs = runs_of(url, study)
    assert len(runs) == 40 and {r.status for r in runs} == {"completed"}


def test_a_failing_objective_fails_its_trial_and_the_study_goes_on(url, tmp_path):
    """x=3 always raises: with retries=1 each such trial runs twice and is then recorded
    failed with the error; the other trials complete and all 3 workers return the
    single-process result (where catch= ranks the failure last)."""
    study = f"fail-{uuid.uuid4().hex[:6]}"
    options = {"max_budget": 9, "retries": 1, **FAST}
    workers = Workers(tmp_path, url, [{"algorithm": "grid", "study": study,
                                       "options": options}], fail=3)
    workers.start(3)
    outputs = assert_clean(workers.finish(), expected_ok=3)
    failing = [k for k in workers.calls("start") if json.loads(k)[1] == 3]
    assert len(failing) == 2 and all(workers.calls("start")[k] == 2 for k in failing)
    runs = runs_of(url, study)
    failed = [r for r in runs if r.status == "failed"]
    assert len(runs) == 24 and len(failed) == 2
    from ato.hyperopt.workers import split_error

    # the summary, then the objective's traceback
    assert {split_error(r.error)[0] for r in failed} == {"ValueError: x=3 diverges"}
    assert all('raise ValueError(f"x={fail} diverges")' in split_error(r.error)[1]
               for r in failed)
    _, winner, metric = single_process("grid", {"max_budget": 9}, study, fail=3)
    assert {(r["x"], r["c"], r["metric"]) for _, lines, _ in outputs for r in lines} == \
        {(*winner, metric)}
    states = {s.key: s for s in states_of(url, study)}
    assert sorted(s.attempts for s in states.values() if s.state == "failed") == [2, 2]


def test_a_late_worker_joins_and_a_dead_study_resumes(url, tmp_path):
    """Two workers start a multi_hyperband study and are SIGKILLed after some trials; a
    worker started later resumes it alone (reclaiming the dead workers' trials once they
    are stale) and a second one joins it late: reported trials never run again, every
    trial of the plan is reported once, and both return the single-process result."""
    study = f"resume-{uuid.uuid4().hex[:6]}"
    options = {"max_budget": 9, "min_budget": 1, "eta": 3, "seed": 11, **STALE}
    item = [{"algorithm": "multi_hyperband", "study": study, "options": options}]
    first = Workers(tmp_path, url, item, name="first", sleep=0.1)
    first.start(2)
    deadline = time.monotonic() + 60
    while sum(first.calls("end").values()) < 6 and time.monotonic() < deadline:
        time.sleep(0.02)
    for p in first.procs:
        p.send_signal(signal.SIGKILL)
    assert_clean(first.finish(), expected_ok=0)
    # what was reported before the kill (an objective that ended unreported runs again)
    reported = Counter(ident(study, s) for s in states_of(url, study)
                       if s.state == "completed")
    assert 4 <= sum(reported.values()) and reported <= first.calls("end")  # 2 may be unreported
    # slower trials now, so that the late joiner has work left when it is up
    second = Workers(tmp_path, url, item, name="second", sleep=0.4)
    second.start(1)
    while not second.calls("start") and time.monotonic() < deadline:
        time.sleep(0.02)
    second.start(1)  # the late joiner
    outputs = assert_clean(second.finish(), expected_ok=2)
    calls, winner, metric = single_process("multi_hyperband", options, study)
    assert reported + second.calls("end") == calls, "a completed trial ran again"
    assert {(r["x"], r["c"], r["metric"]) for _, lines, _ in outputs for r in lines} == \
        {(*winner, metric)}
    # the late worker returned the result above; whether it also ran trials depends on
    # how long its start-up took on a loaded machine, so it is not asserted


def test_asha_with_four_workers_follows_the_promotion_rule(url, tmp_path):
    """4 asynchronous workers: every promotion to rung k+1 was, when it was decided, in
    the top 1/eta of the trials completed at rung k; max_trials is respected; every worker
    returns the same result, the best trial at the largest budget reached."""
    study = f"asha-{uuid.uuid4().hex[:6]}"
    options = {"max_trials": 40, "min_budget": 1, "max_budget": 9, "eta": 3, "seed": 2,
               **FAST}
    workers = Workers(tmp_path, url, [{"algorithm": "asha", "study": study,
                                       "options": options}], sleep=0.05)
    workers.start(4)
    outputs = assert_clean(workers.finish(), expected_ok=4)
    states = states_of(url, study)
    assert len(states) == 40 and all(s.state == "completed" for s in states)
    assert len({s.worker for s in states}) >= 2
    promotions = [s for s in states if s.payload["rung"] > 0]
    assert promotions, "nothing was promoted"
    for s in promotions:
        k = s.payload["rung"] - 1
        # What the proposer saw: the rung-k trials completed when it was claimed. Database
        # timestamps are transaction starts (PostgreSQL's now()), so a report stamped just
        # before the claim may have committed just after it: accept any prefix, by finish
        # time, of the trials stamped before the claim (plus a second of slack).
        done = sorted((t for t in states if t.payload["rung"] == k
                       and t.finished_at is not None
                       and (t.finished_at - s.claimed_at).total_seconds() <= 1.0),
                      key=lambda t: t.finished_at)
        tops = []
        for m in range(1, len(done) + 1):
            seen = sorted(done[:m], key=lambda t: (-t.metric, t.payload["index"]))
            tops.append({t.payload["index"] for t in seen[:math.floor(m / 3)]})
        assert any(s.payload["index"] in top for top in tops), s
    final = max(s.payload["rung"] for s in states)
    best = max((s for s in states if s.payload["rung"] == final), key=lambda s: s.metric)
    assert {(r["x"], r["c"], r["metric"]) for _, lines, _ in outputs for r in lines} == \
        {(best.payload["values"]["x"], best.payload["values"]["c"], best.metric)}
    assert len(runs_of(url, study)) == 40


def test_payloads_carry_what_status_shows(tmp_path):
    """A shared study's trials carry their searched values, config, exact budget, bracket
    and rung (what `ato search status` and other workers read)."""
    from ato.hyperopt import get_algorithm
    from ato.scope import Scope
    from ato.tracking import open_logger

    url = f"sqlite:///{tmp_path / 's.db'}"
    search = get_algorithm("multi_hyperband")(
        Scope(enable_override=True), ADict(x=ADict(param_type="FLOAT", param_range=(0, 1))),
        tracker=open_logger(url, project="p"), study_id="payloads", max_budget=9, eta=3,
        progress=False)
    search.main(lambda config: config.x)()
    states = states_of(url, "payloads")
    assert {s.payload["budget"] for s in states} == {"1", "3", "9"}
    assert all(set(s.payload) >= {"values", "config", "budget", "bracket", "rung",
                                  "config_hash"} for s in states)
    assert all(s.payload["config"]["x"] == s.payload["values"]["x"] for s in states)
