"""Several trials at once in one process (an executor's threads, alone or in a shared
study): each objective's own ``tracker.log_metric`` calls land on its trial's run, never
on another trial's (the tracker holds one run; the others are on loggers the objective
does not see, and :mod:`ato.tracking.routing` hands its calls over)."""

from __future__ import annotations

import time

import pytest

from ato.adict import ADict
from ato.hyperopt import get_algorithm
from ato.hyperopt.executors.local import ThreadsExecutor
from ato.scope import Scope
from ato.tracking import open_finder
from tests.hyperopt.test_workers_batch import tracker

SPACE = ADict(x=ADict(param_type="FLOAT", param_range=(0, 1), num_samples=6))
PLANS = {
    "asha": {"max_budget": 9, "min_budget": 1, "eta": 3, "max_trials": 12},
    "multi_hyperband": {"max_budget": 9, "min_budget": 1, "eta": 3},
    "grid": {"max_budget": 3},
}


@pytest.mark.parametrize("study_id", [None, "routed"], ids=["alone", "shared"])
@pytest.mark.parametrize("algorithm", sorted(PLANS))
def test_each_trial_s_curve_is_on_its_own_run(tmp_path, algorithm, study_id):
    logger = tracker(tmp_path)
    search = get_algorithm(algorithm)(Scope(enable_override=True), SPACE, tracker=logger,
                                      study_id=study_id, seed=2, progress=False,
                                      executor=ThreadsExecutor(n_workers=2), **PLANS[algorithm])

    def objective(config):
        start = int(config.get("__resume_budget__", 0) or 0)
        for epoch in range(start + 1, int(config.__budget__) + 1):
            # the value names the configuration: a point on another trial's run shows
            logger.log_metric("train_x", config.x, epoch)
            logger.log_metric("run_id", logger.get_current_run_id(), epoch)
            time.sleep(0.005)
        return config.x

    search.main(objective)()
    finder = open_finder(logger.url)
    runs = [r for r in finder.find_runs(status="completed") if any(
        str(t).startswith("trial:") for t in r.tags)]
    assert len(runs) >= 4
    logged = 0
    for run in runs:
        xs = {p.value for p in finder.get_metric_history(run.id, "train_x")}
        ids = {p.value for p in finder.get_metric_history(run.id, "run_id")}
        assert all(x == pytest.approx(run.config.x) for x in xs), (run.id, xs, run.config.x)
        assert ids <= {run.id}, (run.id, ids)
        logged += len(finder.get_metric_history(run.id, "train_x"))
    assert logged > 0
