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
