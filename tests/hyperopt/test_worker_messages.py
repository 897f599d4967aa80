"""What a worker of a shared study says: one prefix per message, times as ``ato search
status`` shows them (seconds), and a Python API's words for a database that moved.  Real
SQLite files and the real coordinator, in this process."""

from __future__ import annotations

import re
import time

import pytest

from ato.adict import ADict
from ato.hyperopt import get_algorithm
from ato.hyperopt.workers import SharedStudy
from ato.scope import Scope
from ato.tracking import TrialSpec, open_coordinator, open_logger

SPACE = ADict(x=ADict(param_type="INTEGER", param_range=(0, 3), num_samples=4))


def test_the_waiting_message_shows_seconds(tmp_path, capsys):
    coordinator = open_coordinator(f"sqlite:///{tmp_path / 't.db'}")
    coordinator.enqueue("st", [TrialSpec("k0", {"values": {"x": 1}})])
    coordinator.join("st", "dead", "elsewhere", 1)
    assert coordinator.claim("st", "dead", stale_after=30) is not None
    shared = SharedStudy(coordinator, "st", heartbeat_interval=0.05, stale_after=30)
    try:
        time.sleep(0.3)  # 'dead' is silent for more than three heartbeat intervals
        shared._say_waiting(coordinator.trials("st"), 12)
    finally:
        shared.close()
    err = capsys.readouterr().err
    assert re.search(r"silent since \d{4}-\d\d-\d\d \d\d:\d\d:\d\d; it is taken over", err), err


def test_a_refused_report_names_the_study_and_trial_once(tmp_path, capsys):
    """A worker taken for dead whose report is refused: its run's reason has the
    ``study 'st', trial …:`` prefix once (ClaimRuns adds it), stderr has it once."""
    url = f"sqlite:///{tmp_path / 't.db'}"
    coordinator = open_coordinator(url)
    other = open_coordinator(url)
    coordinator.enqueue("st", [TrialSpec("k0", {"values": {"x": 1}})])
    shared = SharedStudy(coordinator, "st", heartbeat_interval=10, stale_after=30)
    whys = []
    try:
        claim = coordinator.claim("st", shared.worker, stale_after=30)

        def run(claim):  # meanwhile another worker takes the trial for dead and reports it
            time.sleep(0.05)
            taken = other.claim("st", "other", stale_after=0.01)
            assert taken is not None
            assert other.report(taken, "failed", error="WorkerDiedError: ...")
            return 1.0

        shared.run_claim(claim, run, lambda *a: None, lambda c, why: whys.append(why))
    finally:
        shared.close()
        other.close()
    (why,) = whys
    assert why.startswith("(completed) was not recorded from this worker"), why
    err = capsys.readouterr().err
    (line,) = [line for line in err.splitlines() if "was not recorded" in line]
    assert line.count("study 'st'") == 1 and line.startswith("ato: study 'st': trial k0 ")


def test_a_moved_database_is_worded_for_the_api(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    logger = open_logger("sqlite:///rel.db", project="p")
    (tmp_path / "w").mkdir()
    monkeypatch.chdir(tmp_path / "w")
    with pytest.raises(Exception) as caught:  # noqa: B017 - the backend's own class
        get_algorithm("random")(Scope(enable_override=True), SPACE, tracker=logger,
                                study_id="s", n_trials=2, progress=False).main(lambda c: c.x)()
    message = str(caught.value)
    assert type(caught.value).__name__ == "TrackerUnavailableError"
    assert "--db" not in message and "$ATO_DB" not in message and "reading" not in message
    assert "random: study 's': cannot read its completed trials back" in message
    assert "open the logger with an absolute path" in message


def test_a_dead_workers_trial_is_one_line_too(tmp_path, capsys):
    coordinator = open_coordinator(f"sqlite:///{tmp_path / 't.db'}")
    coordinator.enqueue("st", [TrialSpec("k0", {"values": {"x": 1}})])
    coordinator.join("st", "dead", "elsewhere", 1)
    assert coordinator.claim("st", "dead", stale_after=30) is not None
    shared = SharedStudy(coordinator, "st", heartbeat_interval=0.05, stale_after=0.2)
    try:
        time.sleep(0.4)
        claim = shared._claim(None)
        assert claim is not None and claim.attempt == 2
        shared.run_claim(claim, lambda c: pytest.fail("a dead worker's trial ran again"),
                         lambda *a: None)
    finally:
        shared.close()
    (line,) = [x for x in capsys.readouterr().err.splitlines() if " failed (" in x]
    assert line.startswith("ato: study 'st': trial k0 failed (not run again, recorded failed) "
                           "with values {'x': 1}: WorkerDiedError: the workers running this "
                           "trial died 1 time"), line
