"""A shared study whose objective cannot succeed stops early (fail_fast), retries are
for crashes only, and each worker says on stderr why a trial failed and what its part was;
``retries`` and ``fail_fast`` are the study's unless a worker gives its own.  Real SQLite
files and the real PostgreSQL server (tests/databases.py), in this process."""

from __future__ import annotations

import math
import uuid

import pytest

from ato.adict import ADict
from ato.hyperopt import get_algorithm
from ato.hyperopt.base import NoSuccessfulTrialError, StudyStoppedError
from ato.scope import Scope
from ato.tracking import open_coordinator, open_logger
from tests import databases

SPACE = ADict(x=ADict(param_type="INTEGER", param_range=(0, 9), num_samples=10))
db_url = databases.db_url


def search(url, study, objective, **options):
    return get_algorithm("random")(Scope(enable_override=True), SPACE,
                                   tracker=open_logger(url, project="ff"), study_id=study,
                                   seed=1, progress=False, heartbeat_interval=0.2,
                                   stale_after=30, **{"n_trials": 20, **options}
                                   ).main(objective)()


def typo(config):
    return config.lrr  # the newcomer's typo: AttributeError on every trial


def states(url, study):
    coordinator = open_coordinator(url)
    try:
        return coordinator.trials(study), coordinator.get_study(study)
    finally:
        coordinator.close()


def test_a_broken_objective_stops_the_study_after_five_failures(db_url, capsys):
    study, calls = f"ff-{uuid.uuid4().hex[:6]}", []

    def broken(config):
        calls.append(config.x)
        return typo(config)

    with pytest.raises(StudyStoppedError) as caught:
        search(db_url, study, broken, retries=2)
    assert isinstance(caught.value, NoSuccessfulTrialError)
    message = str(caught.value)
    # 5 trials x 3 attempts, not 20 x 3
    assert len(calls) == 15
    assert "fail_fast=5" in message and "5 of its trials failed with the same error" in message
    assert "AttributeError: lrr" in message and "values {'x': " in message
    assert f"ato search status {study} --db " in message
    assert f"ato search requeue {study} --failed --db " in message
    err = capsys.readouterr().err
    # one line per failed attempt: the trial, its values and the error, no traceback
    failed_lines = [line for line in err.splitlines() if " failed (" in line]
    assert len(failed_lines) == 15, err
    assert all("with values {'x': " in line and line.endswith("AttributeError: lrr")
               for line in failed_lines)
    assert "Traceback" not in err
    trials, record = states(db_url, study)
    assert sum(t.state == "failed" for t in trials) == 5
    assert record["meta"]["stopped"]["error"].endswith("AttributeError: lrr")
    # a worker started again stops at once, running nothing, until requeue --failed
    with pytest.raises(StudyStoppedError):
        search(db_url, study, broken, retries=2)
    assert len(calls) == 15
    assert "0 completed (the study was stopped by fail_fast)" in capsys.readouterr().err
    coordinator = open_coordinator(db_url)
    coordinator.requeue_failed(study)
    coordinator.close()
    result = search(db_url, study, lambda config: -(config.x - 6) ** 2, retries=2)
    assert result.metric == 0


def test_fail_fast_zero_runs_every_trial(db_url):
    study, calls = f"ff0-{uuid.uuid4().hex[:6]}", []

    def broken(config):
        calls.append(config.x)
        raise ValueError("broken")

    with pytest.raises(NoSuccessfulTrialError) as caught:
        search(db_url, study, broken, n_trials=8, fail_fast=0)
    assert not isinstance(caught.value, StudyStoppedError)
    assert len(calls) == 8


def test_failures_that_differ_do_not_stop_the_study(db_url):
    """A region of the space that fails first (a grid starting at the learning rates that
    diverge, each error naming its value) is no broken objective: the study goes on."""
    study = f"ffd-{uuid.uuid4().hex[:6]}"

    def diverges_low(config):
        if config.x < 7:
            raise ValueError(f"x={config.x} diverged")
        return float(config.x)

    result = get_algorithm("grid")(Scope(enable_override=True), SPACE,
                                   tracker=open_logger(db_url, project="ff"), study_id=study,
                                   progress=False, fail_fast=2).main(diverges_low)()
    assert result.metric == 9


def test_a_success_first_turns_fail_fast_off(db_url):
    study = f"ffok-{uuid.uuid4().hex[:6]}"
    seen = []

    def mostly_broken(config):
        seen.append(config.x)
        if len(seen) == 1:
            return 1.0
        raise ValueError("region that diverges")

    result = search(db_url, study, mostly_broken, n_trials=12, fail_fast=2)
    assert result.metric == 1.0 and len(seen) == 12


@pytest.mark.parametrize("returned", [None, "0.5", math.nan])
def test_a_bad_return_value_is_not_retried(db_url, capsys, returned):
    study, calls = f"ffr-{uuid.uuid4().hex[:6]}", []

    def bad(config):
        calls.append(config.x)
        return returned

    with pytest.raises(NoSuccessfulTrialError):
        search(db_url, study, bad, n_trials=3, retries=2)
    assert len(calls) == 3  # once each: retries are for crashes, not for what it returns
    err = capsys.readouterr().err
    assert err.count("attempt 1 of 3, recorded failed") == 3
    assert "retried" not in err


def test_retries_and_fail_fast_are_the_studys(db_url, capsys):
    """The first worker stores retries and fail_fast; a worker that leaves them out uses
    the study's, one that gives another value is told so and uses its own."""
    study = f"ffs-{uuid.uuid4().hex[:6]}"
    search(db_url, study, lambda config: float(config.x), n_trials=2, retries=1, fail_fast=3)
    _, record = states(db_url, study)
    assert record["meta"]["retries"] == 1 and record["meta"]["fail_fast"] == 3
    capsys.readouterr()
    calls = []

    def flaky(config):
        calls.append(config.x)
        raise OSError("node lost its GPU")

    search(db_url, study, flaky, n_trials=4)  # 2 new trials, the study's retries=1
    assert len(calls) == 4
    assert "this worker uses" not in capsys.readouterr().err
    search(db_url, study, flaky, n_trials=6, retries=0)  # its own, announced
    assert len(calls) == 6
    assert ("this worker uses retries=0 as given, not the study's retries=1"
            in capsys.readouterr().err)

    other = f"ffs2-{uuid.uuid4().hex[:6]}"
    with pytest.raises(StudyStoppedError):
        search(db_url, other, flaky, fail_fast=2)
    assert len(calls) == 8
    coordinator = open_coordinator(db_url)
    coordinator.requeue_failed(other)
    coordinator.close()
    with pytest.raises(StudyStoppedError, match="fail_fast=2"):  # the study's, not 5
        search(db_url, other, flaky)
    assert len(calls) == 10


def test_nothing_to_do_still_says_its_part(db_url, capsys):
    study = f"ffn-{uuid.uuid4().hex[:6]}"
    search(db_url, study, lambda config: float(config.x), n_trials=6)
    capsys.readouterr()
    search(db_url, study, lambda config: float(config.x), n_trials=6)
    err = capsys.readouterr().err
    assert "0 completed (nothing left to run" in err
    search(db_url, study, lambda config: float(config.x), n_trials=4)
    assert "0 completed (nothing left to run" in capsys.readouterr().err


@pytest.mark.processes
def test_every_worker_stops_when_one_stops_the_study(db_url, tmp_path):
    """Three worker processes on a 24-trial grid whose objective always raises: the
    worker that sees the fifth failure records the stop, the others read it with their
    next heartbeat and stop too, far before the 24 trials (x 2 attempts) ran."""
    from tests.hyperopt.test_workers import Workers

    study = f"ffp-{uuid.uuid4().hex[:6]}"
    workers = Workers(tmp_path, db_url, [{"algorithm": "grid", "study": study, "options": {
        "max_budget": 9, "retries": 1, "heartbeat_interval": 0.2, "stale_after": 30}}],
        sleep=0.2, fail_all=True)
    workers.start(3)
    outputs = workers.finish()
    assert all(code != 0 and "StudyStoppedError" in err for code, _, err in outputs), outputs
    assert all("0 completed" in err or " failed" in err for _, _, err in outputs)
    started = sum(workers.calls("start").values())
    assert started < 24, started
    trials, record = states(db_url, study)
    assert 5 <= sum(t.state == "failed" for t in trials) < 24
    assert not any(t.state == "running" for t in trials)  # given back, not held
    assert record["meta"]["stopped"]["error"] == "AttributeError: lrr"


@pytest.mark.parametrize("executor", ["serial", pytest.param("processes",
                                                              marks=pytest.mark.processes)])
def test_a_failed_trials_traceback_is_recorded_and_shown_once(db_url, capsys, executor):
    """The objective's traceback (file, line, code) reaches the failed trial's run, `ato
    search status --json` (``traceback``) and stderr — there the first time an error is
    seen in this worker, later the same error in one line; tables keep the summary."""
    from ato.hyperopt.commands import summarize
    from ato.tracking import open_finder

    study = f"tb-{uuid.uuid4().hex[:6]}"
    with pytest.raises(StudyStoppedError):
        search(db_url, study, typo, executor=executor)
    err = capsys.readouterr().err
    failed_lines = [line for line in err.splitlines() if " failed (attempt " in line]
    assert len(failed_lines) >= 5 and all(line.endswith(": AttributeError: lrr")
                                          for line in failed_lines), err
    # the first failure's line is followed by the traceback's last frames, once
    assert err.count("return config.lrr") == 1, err
    assert err.count("Traceback (most recent call last)") <= 1, err
    first = err.splitlines().index(failed_lines[0])
    shown = err.splitlines()[first + 1:first + 12]
    assert any("in typo" in line for line in shown), err
    assert len([line for line in shown if line.startswith("    ")]) <= 11
    coordinator = open_coordinator(db_url)
    try:
        failed = summarize(coordinator, study)["failed"]
    finally:
        coordinator.close()
    assert {f["error"] for f in failed} == {"AttributeError: lrr"}
    assert all("in typo" in f["traceback"] and "return config.lrr" in f["traceback"]
               and f["traceback"].startswith("Traceback (most recent call last):")
               for f in failed), failed
    runs = [r for r in open_finder(db_url).find_runs(tags=[f"study:{study}"])
            if r.status == "failed"]
    assert len(runs) == len(failed_lines)
    for run in runs:
        assert run.error.startswith("AttributeError: lrr\n\nTraceback (most recent call last):")
        assert "in typo" in run.error and "return config.lrr" in run.error


def test_fail_fast_0_does_not_clear_a_stop_and_says_what_does(db_url, capsys):
    """A worker started with fail_fast=0 on a stopped study is told that fail_fast=0 only
    keeps a study from being stopped, and which command clears the stop; after that
    command the study runs."""
    import subprocess
    import sys

    study = f"ff0-{uuid.uuid4().hex[:6]}"
    with pytest.raises(StudyStoppedError):
        search(db_url, study, typo)
    with pytest.raises(StudyStoppedError) as caught:
        search(db_url, study, lambda config: float(config.x), fail_fast=0)
    message = str(caught.value)
    assert "fail_fast=0 keeps the study from being stopped again; it does not clear a " \
        "stop already recorded" in message, message
    assert f"`ato search requeue {study} --failed --db " in message
    assert "clears the stop" in message
    capsys.readouterr()
    # every command ato suggests carries the --db the user gave
    shown = subprocess.run([sys.executable, "-m", "ato.cli", "search", "status", study,
                            "--db", db_url], capture_output=True, text=True)
    from ato.tracking.secrets import db_option

    assert f"`ato search requeue {study} --failed {db_option(db_url)}` runs them again" \
        in shown.stdout, shown.stdout
    done = subprocess.run([sys.executable, "-m", "ato.cli", "search", "requeue", study,
                           "--failed", "--db", db_url], capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    result = search(db_url, study, lambda config: float(config.x), fail_fast=0)
    assert result.metric == 9.0


def test_a_stopped_worker_says_so_and_its_error_starts_at_the_scripts_call(db_url, capsys):
    """The worker that ran trials and then stopped says the study was stopped (not only
    '5 failed'); StudyStoppedError's traceback holds the script's frames and the search's
    call, not the claim loop's."""
    import traceback

    study = f"ffs-{uuid.uuid4().hex[:6]}"
    with pytest.raises(StudyStoppedError) as caught:
        search(db_url, study, typo)
    err = capsys.readouterr().err
    (line,) = [x for x in err.splitlines() if ": worker " in x]
    assert line.endswith(": 5 failed (then the study was stopped by fail_fast)"), err
    frames = traceback.extract_tb(caught.value.__traceback__)
    assert [f.name for f in frames] == ["test_a_stopped_worker_says_so_and_its_error_starts_"
                                        "at_the_scripts_call", "search", "launch"], frames
    assert caught.value.__cause__ is None and caught.value.__suppress_context__
