"""A trial's run is opened when the trial starts (status ``running``, its real start time)
and ended when it ends: one after the other, and on an executor (trials at once each get
a run).  (A shared-study worker still writes a trial's run whole when the study accepts
its report: docs/hyperopt.md, "Tracking and resuming".)"""

from __future__ import annotations

import time

import pytest

from ato.adict import ADict
from ato.hyperopt import get_algorithm
from ato.scope import Scope

pytest.importorskip("sqlalchemy")

SPACE = ADict(x=ADict(param_type="INTEGER", param_range=(0, 3), num_samples=4))
NAP = 0.3


def search(tmp_path, **options):
    from ato.tracking import open_finder, open_logger

    url = f"sqlite:///{tmp_path / 'runs.db'}"
    logger = open_logger(url, project="live")
    study = options.pop("study_id", "live")
    algorithm = get_algorithm("grid")(Scope(enable_override=True), SPACE, tracker=logger,
                                      progress=False, study_id=study, **options)
    tag = f"study:{algorithm.study_id}"
    seen = []  # (x, statuses of this study's runs) seen from inside each trial

    def objective(config):
        seen.append((config.x, sorted(r.status for r in open_finder(url).find_runs(tags=[tag]))))
        time.sleep(NAP)
        return -config.x

    started = time.time()
    result = algorithm.main(objective)()
    return result, open_finder(url).find_runs(tags=[tag]), seen, started


def check_runs(runs, started, trials=4):
    assert len(runs) == trials and {r.status for r in runs} == {"completed"}
    for run in runs:
        assert run.duration >= NAP * 0.9, run.duration  # not the instant of a late record
        assert run.start_time.timestamp() >= started - 1


@pytest.mark.parametrize("options", [{}, {"executor": "threads"}])
def test_runs_start_with_their_trials(tmp_path, options):
    if options:
        from ato.hyperopt.executors import get_executor

        options = {"executor": get_executor("threads", n_workers=2)}
    result, runs, seen, started = search(tmp_path, study_id=None, **options)
    check_runs(runs, started)
    # each trial sees its own run running while it runs
    assert all("running" in statuses for _, statuses in seen), seen
    if options:  # two at once: two runs running at the same time, each its own
        assert any(statuses.count("running") == 2 for _, statuses in seen), seen
