"""An objective that logs through the search's tracker on the ``processes`` executor: each
trial's points reach its own run (the parent opened it; the child attaches to it), on
SQLite and PostgreSQL, under fork and spawn — never lost, never a failed trial."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from ato.tracking import open_finder
from tests.databases import db_url  # noqa: F401 - fixture

pytestmark = pytest.mark.processes

ROOT = Path(__file__).resolve().parents[2]
SCRIPT = Path(__file__).with_name("processes_logging.py")


@pytest.mark.parametrize("study", ["lr-7", ""], ids=["shared", "alone"])
@pytest.mark.parametrize("start", ["fork", "spawn"])
def test_an_objectives_metrics_reach_its_trial_run_from_a_child(db_url, start,  # noqa: F811
                                                                  study, tmp_path):
    env = {**os.environ, "PYTHONPATH": str(ROOT), "ATO_TEST_URL": db_url,
           "ATO_TEST_START": start, "ATO_TEST_STUDY": study}
    proc = subprocess.run([sys.executable, str(SCRIPT)], cwd=tmp_path,
                          env=env, capture_output=True, text=True, timeout=240)
    assert proc.returncode == 0, proc.stderr
    finder = open_finder(db_url)
    runs = finder.find_runs()
    assert len(runs) == 30 and {r.status for r in runs} == {"completed"}, \
        sorted((r.id, r.status, r.error) for r in runs)
    for r in runs:
        budget = next(int(t[7:]) for t in r.tags if t.startswith("budget:"))
        resumed = next((int(t[13:]) for t in r.tags if t.startswith("resumed_from:")), 0)
        steps = [p.step for p in finder.get_metric_history(r.id, "train_loss")]
        assert steps == list(range(resumed, budget)), (r.id, r.tags, steps)


OTHER_CALL = '''
import os
from ato.adict import ADict
from ato.hyperopt import get_algorithm
from ato.scope import Scope
from ato.tracking import open_logger

logger = open_logger(os.environ["ATO_TEST_URL"], project="search")


def objective(config):
    logger.log_metric("seen", 1.0, 0)
    assert logger.get_current_run_id() is not None
    logger.use_dataset("data", __file__)
    return 1.0


if __name__ == "__main__":
    space = ADict(x=ADict(param_type="FLOAT", param_range=(0, 1)))
    get_algorithm("random")(Scope(enable_override=True), space, tracker=logger, n_trials=1,
                            progress=False, executor="processes").main(objective)()
'''


def test_a_tracker_call_a_child_cannot_make_names_the_fix(tmp_path):
    """use_dataset() from a processes child fails the trial with what to do instead, on
    the first call; what it logged before reaches the failed trial's run."""
    script = tmp_path / "other_call.py"
    script.write_text(OTHER_CALL)
    url = f"sqlite:///{tmp_path / 'experiments.db'}"
    env = {**os.environ, "PYTHONPATH": str(ROOT), "ATO_TEST_URL": url}
    proc = subprocess.run([sys.executable, str(script)], cwd=tmp_path, env=env,
                          capture_output=True, text=True, timeout=120)
    assert proc.returncode == 1
    assert proc.stderr.strip().splitlines()[-1] == (
        "RuntimeError: the tracker's use_dataset() in a 'processes' worker: the trial's run "
        "is open in the search's process, which receives only log_metric/log_metrics from "
        "here; open a logger inside the objective (with open_logger(url) as logger: ...) "
        "or use executor='threads'"), proc.stderr
    finder = open_finder(url)
    (run,) = finder.find_runs()
    assert run.status == "failed" and "use_dataset()" in run.error
    assert [p.value for p in finder.get_metric_history(run.id, "seen")] == [1.0]
