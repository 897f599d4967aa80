"""The checkpoint a trial resumes from belongs to an evaluation that finished: a worker
wrongly taken for dead (SIGSTOP past ``stale_after``, then SIGCONT) or killed in the middle
of a continuation (SIGKILL) never leaves a configuration's state behind the budget it
reached, and every call finds exactly ``__resume_budget__`` epochs in its directory."""

import os
import signal
import subprocess
import sys
import time
from fractions import Fraction
from pathlib import Path

import pytest

from ato.adict import ADict
from ato.hyperopt.trial import STATE_FILE, attempt, state_budget

WORKER = Path(__file__).with_name("ckpt_worker.py")
pytestmark = pytest.mark.processes


def _lines(logdir: Path, kind: str) -> list[tuple[int, list[str]]]:
    out = []
    for f in logdir.glob("*.log"):
        for line in f.read_text().splitlines():
            head, *rest = line.split()
            if head == kind:
                out.append((int(f.stem), rest))
    return out


def _start(url, study, logdir, root):
    return subprocess.Popen([sys.executable, str(WORKER), url, study, str(logdir), str(root)],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            env={**os.environ, "PYTHONWARNINGS": "ignore"})


def _wait_for(predicate, timeout=60.0):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        found = predicate()
        if found:
            return found
        time.sleep(0.02)
    raise AssertionError("timed out")


def _continuation_started(logdir: Path, pid: int):
    """A continuation (resume > 0) that worker ``pid`` started and has not ended."""
    ended = {tuple(r[:2]) for p, r in _lines(logdir, "end") if p == pid}
    for p, (trial, budget, resume) in _lines(logdir, "start"):
        if p == pid and int(resume) > 0 and (trial, budget) not in ended:
            return trial, int(budget)
    return None


def _check_states(logdir: Path, root: Path, study: str) -> None:
    assert not _lines(logdir, "bad"), _lines(logdir, "bad")
    reached: dict[str, int] = {}
    for _, (trial, budget) in _lines(logdir, "end"):
        reached[trial] = max(reached.get(trial, 0), int(budget))
    assert reached
    for trial, budget in reached.items():
        state = root / study / trial
        assert state_budget(state) == budget, (trial, state_budget(state), budget)
        assert len((state / "epochs.txt").read_text().splitlines()) == budget
    left = [p.name for p in (root / study / ".attempts").iterdir() if p.suffix != ".lock"]
    assert left == [], left  # no state aside, no directory of a dead or finished evaluation


@pytest.fixture
def url(tmp_path):
    return f"sqlite:///{tmp_path / 'ckpt.db'}"


def test_a_worker_taken_for_dead_never_overwrites_a_further_continued_state(tmp_path, url):
    logdir, root = tmp_path / "calls", tmp_path / "ckpt"
    logdir.mkdir()
    a = _start(url, "stop", logdir, root)
    trial, budget = _wait_for(lambda: _continuation_started(logdir, a.pid))
    a.send_signal(signal.SIGSTOP)  # its heartbeat stops too: after 1 s it looks dead
    try:
        b = _start(url, "stop", logdir, root)
        out, err = b.communicate(timeout=120)
        assert b.returncode == 0, err
    finally:
        a.send_signal(signal.SIGCONT)
    out, err = a.communicate(timeout=120)
    assert a.returncode == 0, err
    # the stopped trial was run again by b, and a's late evaluation changed nothing
    assert any(p == b.pid and r[:2] == [trial, str(budget)] for p, r in _lines(logdir, "start"))
    _check_states(logdir, root, "stop")


def test_a_worker_killed_mid_continuation_leaves_the_last_finished_state(tmp_path, url):
    logdir, root = tmp_path / "calls", tmp_path / "ckpt"
    logdir.mkdir()
    a = _start(url, "kill", logdir, root)
    _wait_for(lambda: _continuation_started(logdir, a.pid))
    time.sleep(0.1)  # some epochs written into its own directory
    a.send_signal(signal.SIGKILL)
    a.communicate(timeout=30)
    b = _start(url, "kill", logdir, root)
    out, err = b.communicate(timeout=120)
    assert b.returncode == 0, err
    _check_states(logdir, root, "kill")


def _config(root: Path, budget, resume):
    state = root / "s" / "t-b0"
    state.mkdir(parents=True, exist_ok=True)
    return ADict(__trial__="t-b0", __budget__=budget, __resume_budget__=resume,
                 __checkpoint_dir__=str(state))


def _evaluate(root, budget, resume, commit=True):
    config = _config(root, budget, resume)
    with attempt(config) as own:
        mine = Path(config.__checkpoint_dir__)
        got = int(config.__resume_budget__)
        with (mine / "epochs.txt").open("a") as f:
            f.writelines(f"{e}\n" for e in range(got, budget))
        if commit:
            own.commit()
    return got


def test_only_a_higher_budget_replaces_the_state(tmp_path):
    assert _evaluate(tmp_path, 1, 0) == 0
    assert _evaluate(tmp_path, 3, 1) == 1
    assert _evaluate(tmp_path, 3, 1) == 3  # a repeat reads the state at 3: trains nothing
    assert _evaluate(tmp_path, 9, 3) == 3
    state = tmp_path / "s" / "t-b0"
    assert state_budget(state) == Fraction(9)
    # a late evaluation at 3 (its directory filled when the state was at 1) is refused
    config = _config(tmp_path, 3, 1)
    late = attempt(config)
    late.__enter__()
    late.budget = Fraction(3)
    assert late.commit() is False
    late.__exit__(None, None, None)
    assert state_budget(state) == 9 and len((state / "epochs.txt").read_text().split()) == 9
    assert config.__checkpoint_dir__ == str(state)
    # an evaluation that fails (no commit) leaves no directory behind
    _evaluate(tmp_path, 27, 9, commit=False)
    assert state_budget(state) == 9
    assert [p.name for p in (tmp_path / "s" / ".attempts").iterdir()] == ["t-b0.lock"]


def test_the_next_evaluation_removes_what_a_dead_one_left_and_nothing_of_a_live_one(tmp_path):
    import fcntl
    import socket

    _evaluate(tmp_path, 1, 0)
    attempts = tmp_path / "s" / ".attempts"
    here = socket.gethostname()
    # a killed evaluation: its directory and its lock file, whose lock died with it
    (attempts / "t-b0-dead0000dead" / "ckpt").mkdir(parents=True)
    (attempts / "t-b0-dead0000dead.alive").write_text(here)
    # an evaluation still running (of another configuration): its lock is held
    (attempts / "t-b9-live0000live").mkdir()
    held = os.open(attempts / "t-b9-live0000live.alive", os.O_RDWR | os.O_CREAT)
    os.write(held, here.encode())
    fcntl.flock(held, fcntl.LOCK_EX)
    # another host's: its lock may be host-local (NFS local_lock=flock), so it looks free
    (attempts / "t-b1-away0000away").mkdir()
    (attempts / "t-b1-away0000away.alive").write_text(here + ".elsewhere")
    try:
        assert _evaluate(tmp_path, 3, 1) == 1
        assert sorted(p.name for p in attempts.iterdir()) == [
            "t-b0.lock", "t-b1-away0000away", "t-b1-away0000away.alive",
            "t-b9-live0000live", "t-b9-live0000live.alive"]
    finally:
        os.close(held)


def test_an_evaluation_that_cannot_start_leaves_nothing(tmp_path):
    _evaluate(tmp_path, 1, 0)
    config = _config(tmp_path, 3, "not a budget")
    with pytest.raises(ValueError):
        attempt(config).__enter__()
    assert [p.name for p in (tmp_path / "s" / ".attempts").iterdir()] == ["t-b0.lock"]
    assert config.__checkpoint_dir__ == str(tmp_path / "s" / "t-b0")


def test_a_state_past_the_budget_asked_for_is_not_handed_out(tmp_path):
    _evaluate(tmp_path, 9, 0)
    assert _evaluate(tmp_path, 3, 0) == 0  # starts afresh in an empty directory


def test_a_swap_killed_halfway_is_undone_by_the_next_reader(tmp_path):
    _evaluate(tmp_path, 3, 0)
    state = tmp_path / "s" / "t-b0"
    os.replace(state, tmp_path / "s" / ".attempts" / "t-b0.old")  # killed between renames
    assert _evaluate(tmp_path, 9, 3) == 3
    assert state_budget(state) == 9 and STATE_FILE in os.listdir(state)


@pytest.mark.parametrize("study_id", ["/abs", "../escaped", ".", "..", "a/b", "a\\b",
                                      "tab\x07bell", "/"])
def test_a_study_id_that_would_leave_the_checkpoint_root_is_refused(study_id, tmp_path):
    from ato.hyperopt import get_algorithm
    from ato.hyperopt.base import SearchOptionError
    from ato.scope import Scope

    space = ADict(x=ADict(param_type="INTEGER", param_range=(0, 3), num_samples=4))
    with pytest.raises(SearchOptionError, match=r"asha: study_id .* names a directory under "
                                                r"checkpoint_root"):
        get_algorithm("asha")(Scope(), space, study_id=study_id, max_trials=3, max_budget=3,
                              checkpoint_root=tmp_path / "root", progress=False)
    assert not (tmp_path / "root").exists()


@pytest.mark.parametrize("identity", ["../x-b0", "/etc-b0", "../../up-b0"])
def test_an_identity_from_the_database_cannot_leave_the_root(identity, tmp_path):
    from ato.hyperopt.trial import Continuations, fill

    continuations = Continuations("s", ["x"], tmp_path / "root")
    with pytest.raises(ValueError, match="cannot name a checkpoint directory"):
        fill(ADict(x=1), continuations, 3, 1, chash=identity.rpartition("-b")[0] or identity)
    assert not any(tmp_path.rglob("x-b0")) and not (tmp_path / "etc-b0").exists()
