"""Study coordination with real processes on a real SQLite file and a real PostgreSQL:
many workers draining one queue, no "database is locked", a SIGKILLed holder's trial
reclaimed exactly once."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from collections import Counter

import pytest

from ato.tracking import TrialSpec, open_coordinator

# real worker processes: run by `nox -s tests` after the quick run (docs/contributing.md)
pytestmark = pytest.mark.processes

# argv: url study worker barrier stale_after pause [hold]
# Waits at the barrier (a directory and a count: once that many workers have opened the
# study, all start together, so they contend), then claims until every trial of the study
# is completed, reporting each; prints one JSON line per claim.  With "hold", claims one
# trial, prints it, and sleeps (to be killed).
WORKER = r"""
import json, os, pathlib, socket, sys, time
from ato.tracking import open_coordinator
url, study, worker, barrier = sys.argv[1:5]
stale, pause = float(sys.argv[5]), float(sys.argv[6])
hold = len(sys.argv) > 7
c = open_coordinator(url)
c.join(study, worker, socket.gethostname(), os.getpid())
folder, count = barrier.rsplit(":", 1)
pathlib.Path(folder, worker).touch()
deadline = time.time() + 120
while len(os.listdir(folder)) < int(count) and time.time() < deadline:
    time.sleep(0.01)
if hold:
    claim = c.claim(study, worker, stale_after=stale)
    print(json.dumps({"key": claim.key, "attempt": claim.attempt}), flush=True)
    time.sleep(600)
idle_since = time.time()
while True:
    claim = c.claim(study, worker, stale_after=stale)
    if claim is None:
        states = c.trials(study)
        if all(s.state == "completed" for s in states) or time.time() - idle_since > 60:
            break
        time.sleep(0.05)
        c.heartbeat(study, worker)
        continue
    idle_since = time.time()
    time.sleep(pause)
    c.heartbeat(study, worker)
    ok = c.report(claim, "completed", metric=float(claim.payload["i"]))
    print(json.dumps({"key": claim.key, "attempt": claim.attempt, "accepted": ok}), flush=True)
c.leave(study, worker)
"""


def spawn(url, study, worker, barrier, stale=30.0, pause=0.0, hold=False):
    args = [sys.executable, "-c", WORKER, url, study, worker, barrier, repr(stale),
            repr(pause)] + (["hold"] if hold else [])
    return subprocess.Popen(args, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def collect(procs, timeout=240):
    lines, errors = [], []
    for proc in procs:
        out, err = proc.communicate(timeout=timeout)
        if proc.returncode != 0 or err.strip():
            errors.append(f"exit {proc.returncode}: {err.strip()}")
        lines += [json.loads(line) for line in out.splitlines() if line.strip()]
    return lines, errors


def specs(n):
    return [TrialSpec(f"t{i:04d}", {"i": i}) for i in range(n)]


def barrier(tmp_path, name: str, n_procs: int) -> str:
    """A start line for ``n_procs`` workers: they claim once all have opened the study."""
    folder = tmp_path / f"barrier-{name}"
    folder.mkdir()
    return f"{folder}:{n_procs}"


def test_eight_processes_claim_each_trial_exactly_once(db_url, tmp_path):
    """8 processes on one queue: every trial claimed once, every report accepted, no
    error in any process (stderr empty)."""
    coordinator = open_coordinator(db_url)
    coordinator.enqueue("eight", specs(64))
    at = barrier(tmp_path, "eight", 8)
    lines, errors = collect([spawn(db_url, "eight", f"w{i}", at, pause=0.002) for i in range(8)])
    assert errors == []
    counts = Counter(line["key"] for line in lines)
    assert sorted(counts) == [s.key for s in specs(64)] and set(counts.values()) == {1}
    assert all(line["accepted"] and line["attempt"] == 1 for line in lines)
    states = coordinator.trials("eight")
    assert {(s.state, s.attempts) for s in states} == {("completed", 1)}
    assert len({line["key"] for line in lines}) == 64
    assert len({s.worker for s in states}) > 1  # the work was in fact shared


def test_sixteen_processes_on_sqlite_never_see_database_is_locked(tmp_path):
    """16 processes hammering one SQLite file (claims, heartbeats, reports with no pause
    between them, all starting at the same instant): none raises, none prints a warning."""
    url = f"sqlite:///{tmp_path / 'busy.db'}"
    coordinator = open_coordinator(url)
    coordinator.enqueue("busy", specs(192))
    at = barrier(tmp_path, "busy", 16)
    lines, errors = collect([spawn(url, "busy", f"w{i}", at) for i in range(16)])
    assert errors == [], errors[:3]
    assert sorted(line["key"] for line in lines) == [s.key for s in specs(192)]
    assert all(line["accepted"] for line in lines)


def test_sigkilled_holder_is_reclaimed_exactly_once(db_url, tmp_path):
    """A worker SIGKILLed while holding a trial: after stale_after the trial goes to
    exactly one of the other workers (attempt 2), and every trial is recorded once."""
    stale = 1.5
    coordinator = open_coordinator(db_url)
    coordinator.enqueue("kill", specs(24))
    holder = spawn(db_url, "kill", "doomed", barrier(tmp_path, "doomed", 1), stale=stale,
                   hold=True)
    first = json.loads(holder.stdout.readline())
    assert first == {"key": "t0000", "attempt": 1}
    os.kill(holder.pid, signal.SIGKILL)
    holder.wait(timeout=30)
    assert holder.returncode == -signal.SIGKILL
    at = barrier(tmp_path, "rescuers", 4)
    lines, errors = collect([spawn(db_url, "kill", f"w{i}", at, stale=stale, pause=0.05)
                             for i in range(4)])
    assert errors == []
    counts = Counter(line["key"] for line in lines)
    assert sorted(counts) == [s.key for s in specs(24)] and set(counts.values()) == {1}
    rescued = [line for line in lines if line["key"] == "t0000"]
    assert [(r["attempt"], r["accepted"]) for r in rescued] == [(2, True)]
    state = {s.key: s for s in coordinator.trials("kill")}
    assert (state["t0000"].state, state["t0000"].attempts) == ("completed", 2)
    assert state["t0000"].worker != "doomed"
    assert {s.attempts for k, s in state.items() if k != "t0000"} == {1}
    doomed = next(w for w in coordinator.workers("kill", stale_after=stale)
                  if w["worker"] == "doomed")
    assert not doomed["alive"]


@pytest.mark.parametrize("backend", ["sqlite"])
def test_forked_child_does_not_share_the_parents_connections(tmp_path, backend):
    """A coordinator used in the parent and then in a fork()ed child keeps working in
    both (the child drops the inherited pool instead of sharing its sockets)."""
    url = f"sqlite:///{tmp_path / 'fork.db'}"
    coordinator = open_coordinator(url)
    coordinator.enqueue("f", specs(4))
    assert coordinator.claim("f", "parent").key == "t0000"
    pid = os.fork()
    if pid == 0:  # the child: claim one, exit with 0 only if all went well
        try:
            claim = coordinator.claim("f", "child")
            ok = claim is not None and coordinator.report(claim, "completed", metric=1.0)
        except BaseException:
            ok = False
        os._exit(0 if ok else 1)
    _, status = os.waitpid(pid, 0)
    assert os.waitstatus_to_exitcode(status) == 0
    assert coordinator.claim("f", "parent").key == "t0002"
    assert coordinator.trials("f", ["t0001"])[0].state == "completed"
