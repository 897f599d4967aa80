"""How a run ends (issue 8 §4), in real processes: exit status 0 -> ``completed``,
non-zero or ``sys.exit('msg')`` -> ``failed``, an exception -> ``failed`` with the error
recorded, a signal -> ``killed`` — identically with and without ``with SQLLogger(cfg)``.
One ``with`` block is one run."""

import signal
import subprocess
import sys
import textwrap
import time

import pytest

from ato.db_routers.sql.manager import SQLFinder, SQLLogger
from tests.sql.conftest import make_config

PRELUDE = """
import os, signal, sys, time
from ato.adict import ADict
from ato.db_routers.sql.manager import SQLLogger
cfg = ADict(experiment={{"project_name": "proj", "sql": {{"db_path": {url!r}}}}}, lr=0.1)
"""

BODIES = {
    "normal end": ("pass", 0, "completed", None),
    "sys.exit(0)": ("sys.exit(0)", 0, "completed", None),
    "sys.exit()": ("sys.exit()", 0, "completed", None),
    "sys.exit(False)": ("sys.exit(False)", 0, "completed", None),
    "sys.exit(1)": ("sys.exit(1)", 1, "failed", "exit status 1"),
    "sys.exit(3)": ("sys.exit(3)", 3, "failed", "exit status 3"),
    "sys.exit('msg')": ("sys.exit('bad data')", 1, "failed", "exit status 1: bad data"),
    "exception": ("raise ValueError('lr too high')", 1, "failed", "ValueError: lr too high"),
    "argparse error": ("import argparse; argparse.ArgumentParser().parse_args(['--nope'])", 2,
                       "failed", "exit status 2"),
    "SIGTERM": ("os.kill(os.getpid(), signal.SIGTERM); time.sleep(5)", -signal.SIGTERM,
                "killed", "signal SIGTERM"),
    "SIGINT": ("os.kill(os.getpid(), signal.SIGINT); time.sleep(5)", 1, "killed", None),
}


def script(url, body, with_block):
    code = PRELUDE.format(url=url)
    if with_block:
        code += "with SQLLogger(cfg) as logger:\n    logger.log_metric('x', 1, 0)\n"
        code += textwrap.indent(body, "    ") + "\n"
    else:
        code += "logger = SQLLogger(cfg)\nlogger.run()\nlogger.log_metric('x', 1, 0)\n"
        code += body + "\n"
    return code


def run_script(code, **kwargs):
    return subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          timeout=60, **kwargs)


@pytest.fixture
def sqlite_url(tmp_path):
    from ato.db_routers.sql.engine import forget_engine

    url = f"sqlite:///{tmp_path / 'experiments.db'}"
    yield url
    forget_engine(url)


@pytest.mark.parametrize("with_block", [True, False], ids=["with", "without-with"])
@pytest.mark.parametrize("case", list(BODIES))
def test_how_a_process_ends(sqlite_url, case, with_block):
    body, exit_status, status, error = BODIES[case]
    proc = run_script(script(sqlite_url, body, with_block))
    if case == "SIGTERM":
        assert proc.returncode in (-signal.SIGTERM, 128 + signal.SIGTERM), proc.stderr
    elif case == "SIGINT":
        assert proc.returncode in (1, -signal.SIGINT, 128 + signal.SIGINT), proc.stderr
    else:
        assert proc.returncode == exit_status, proc.stderr
    runs = SQLFinder(make_config(sqlite_url)).get_runs_in_project("proj")
    assert len(runs) == 1
    run = runs[0]
    assert (run.status, run.error if case != "SIGINT" else None) == (status, error)
    if case == "SIGINT":
        assert run.error in ("signal SIGINT", "KeyboardInterrupt")
    assert run.end_time is not None and [m.value for m in run.metrics] == [1.0]


def test_external_sigterm_while_training(db_url):
    """A run busy logging is ended `killed` by a SIGTERM from outside (both databases)."""
    code = PRELUDE.format(url=db_url) + textwrap.dedent("""
        with SQLLogger(cfg) as logger:
            print("ready", flush=True)
            for step in range(10**9):
                logger.log_metric("loss", 1 / (step + 1), step)
                time.sleep(0.001)
    """)
    proc = subprocess.Popen([sys.executable, "-c", code], stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True)
    assert proc.stdout.readline().strip() == "ready"
    time.sleep(0.3)
    proc.send_signal(signal.SIGTERM)
    proc.wait(timeout=60)
    run = SQLFinder(make_config(db_url)).get_runs_in_project("proj")[0]
    assert (run.status, run.error) == ("killed", "signal SIGTERM")
    assert len(run.metrics) > 0


def test_signals_after_the_last_run_ends_act_as_without_ato(sqlite_url):
    """Once every run is finished, SIGTERM kills the process as its default would (no
    ``SystemExit`` unwinding from wherever it landed: a ``multiprocessing`` pool worker
    being terminated could hang in its queue's lock); Ctrl-C stays a KeyboardInterrupt."""
    finished = PRELUDE.format(url=sqlite_url) + textwrap.dedent("""
        with SQLLogger(cfg) as logger:
            logger.log_metric("x", 1, 0)
        os.kill(os.getpid(), signal.NAME)
        time.sleep(5)
    """)
    proc = run_script(finished.replace("NAME", "SIGTERM"))
    assert proc.returncode == -signal.SIGTERM, proc.stderr
    proc = run_script(finished.replace("NAME", "SIGINT"))
    assert proc.returncode in (1, -signal.SIGINT), proc.stderr
    assert proc.stderr.rstrip().endswith("KeyboardInterrupt"), proc.stderr
    # a run open again: it ends killed, then KeyboardInterrupt as before
    proc = run_script(script(sqlite_url, "os.kill(os.getpid(), signal.SIGINT)", True))
    assert proc.stderr.rstrip().endswith("KeyboardInterrupt"), proc.stderr
    statuses = [r.status for r in SQLFinder(make_config(sqlite_url)).get_runs_in_project("proj")]
    assert statuses == ["completed", "completed", "killed"]


def test_caught_exit_before_the_run_does_not_fail_it(sqlite_url):
    """A SystemExit caught before run() (a CLI parser in a try) is not how the run ends."""
    code = PRELUDE.format(url=sqlite_url) + textwrap.dedent("""
        try:
            sys.exit(4)
        except SystemExit:
            pass
        logger = SQLLogger(cfg)
        logger.run()
    """)
    assert run_script(code).returncode == 0
    assert SQLFinder(make_config(sqlite_url)).get_runs_in_project("proj")[0].status == "completed"


# --------------------------------------------------------------------------- one block, one run
def test_run_inside_with_names_the_block_run(db_url):
    """`with SQLLogger(cfg) as logger: logger.run(tags=[...])` records exactly one run."""
    config = make_config(db_url, lr=0.1)
    with SQLLogger(config, handle_signals=False) as logger:
        block_run = logger.get_current_run_id()
        assert logger.run(tags=["baseline", "resnet"]) == block_run
        logger.log_metric("acc", 0.5, 0)
    runs = SQLFinder(config).get_runs_in_project("proj")
    assert [(r.id, r.tags, r.status) for r in runs] == [(block_run, ["baseline", "resnet"],
                                                         "completed")]


def test_run_inside_with_can_give_the_config(db_url):
    config = make_config(db_url, lr=0.1)
    trial = make_config(db_url, lr=0.5)
    with SQLLogger(config, handle_signals=False) as logger:
        run_id = logger.run(tags=["trial"], config=trial)
    run = SQLFinder(config).find_run(run_id)
    assert run.config.lr == 0.5 and run.tags == ["trial"]
    assert run.structural_hash == trial.get_structural_hash()
    assert len(SQLFinder(config).get_runs_in_project("proj")) == 1


def test_repeated_and_nested(db_url):
    """A second run() in a block ends the first `completed` and starts another, which the
    block then ends; a nested `with` on the same logger neither starts nor ends a run."""
    config = make_config(db_url)
    with pytest.raises(RuntimeError), SQLLogger(config, handle_signals=False) as logger:
        first = logger.run(tags=["a"])
        with logger:
            assert logger.get_current_run_id() == first
        assert logger.get_current_run_id() == first
        second = logger.run(tags=["b"])
        raise RuntimeError("boom")
    runs = {r.id: r for r in SQLFinder(config).get_runs_in_project("proj")}
    assert sorted(runs) == [first, second]
    assert (runs[first].status, runs[first].tags) == ("completed", ["a"])
    assert (runs[second].status, runs[second].tags, runs[second].error) == (
        "failed", ["b"], "RuntimeError: boom")


def test_run_before_with_is_the_block_run(db_url):
    """run() then `with logger:` manages that run (no second one)."""
    config = make_config(db_url)
    logger = SQLLogger(config, handle_signals=False)
    run_id = logger.run(tags=["x"])
    with logger:
        assert logger.get_current_run_id() == run_id
    assert [(r.id, r.tags, r.status) for r in SQLFinder(config).get_runs_in_project("proj")] == [
        (run_id, ["x"], "completed")]


def test_run_again_without_with_ends_the_previous_run(db_url):
    """Outside a block run() still starts another run (the seed), never leaving the
    previous one `running` (it would later show as `crashed`)."""
    config = make_config(db_url)
    logger = SQLLogger(config, handle_signals=False)
    a = logger.run()
    b = logger.run()
    logger.log_metric("x", 1, 0)
    time.sleep(0.8)  # the background thread of the second run flushes on its own
    finder = SQLFinder(config)
    assert [m.value for m in finder.get_metric_history(b, "x")] == [1.0]
    logger.finish()
    statuses = {r.id: r.status for r in finder.get_runs_in_project("proj")}
    assert statuses == {a: "completed", b: "completed"}


def test_ato_runs_show_tells_why(sqlite_url):
    """`ato runs show` prints the recorded error; --json carries it."""
    import json

    run_script(script(sqlite_url, "raise ValueError('lr too high')", with_block=False))
    show = [sys.executable, "-m", "ato.cli", "runs", "show", "1", "--db", sqlite_url]
    proc = subprocess.run(show, capture_output=True, text=True)
    assert proc.returncode == 0 and "error: ValueError: lr too high" in proc.stdout
    proc = subprocess.run(show + ["--json"], capture_output=True, text=True)
    data = json.loads(proc.stdout)
    assert (data["status"], data["error"]) == ("failed", "ValueError: lr too high")
