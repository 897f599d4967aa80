"""An objective that logs its own per-epoch metrics through the tracker it was given, in
a shared study worked on by real worker processes: each trial's run is open while its
objective runs, as in a single process, so the curve lands on that trial's run and every
trial still has exactly one completed run."""

from __future__ import annotations

import uuid

import pytest

from tests import databases
from tests.hyperopt.test_workers import FAST, Workers, _shared_worker, assert_clean, runs_of

pytestmark = pytest.mark.processes

db_url = databases.db_url  # the fixture: a SQLite file, then a PostgreSQL database


@pytest.mark.parametrize("algorithm, options", [
    ("grid", {"max_budget": 3}),
    ("asha", {"max_budget": 9, "min_budget": 1, "eta": 3, "max_trials": 10, "seed": 0}),
])
def test_per_epoch_metrics_land_on_their_trial_runs(db_url, tmp_path, algorithm, options):
    from ato.tracking import open_finder

    study = f"curve-{algorithm}-{uuid.uuid4().hex[:6]}"
    workers = Workers(tmp_path, db_url, [{"algorithm": algorithm, "study": study,
                                          "options": {**options, **FAST}}], curve=True)
    workers.start(2)
    outputs = assert_clean(workers.finish(), expected_ok=2)
    assert all(lines for _, lines, _ in outputs)
    curve_value = _shared_worker().curve_value
    runs = runs_of(db_url, study)
    finder = open_finder(db_url)
    expected_runs = 24 if algorithm == "grid" else 10
    assert len(runs) == expected_runs and {r.status for r in runs} == {"completed"}
    assert len({t for r in runs for t in r.tags if t.startswith("trial:")}) == expected_runs
    curves = 0
    for r in runs:
        config, budget = r.config, int(r.config["__budget__"])
        start = int(config.get("__resume_budget__") or 0)
        history = finder.get_metric_history(r.id, "train_loss")
        # a configuration asked again for a budget it reached trains nothing (ASHA drawing
        # the same values twice): its objective resumes at the budget, so no epochs
        first = budget - len(history)
        assert first >= start and (algorithm != "grid" or first == start)
        assert [(p.step, p.value) for p in history] == [
            (e, pytest.approx(curve_value(config, e))) for e in range(first, budget)], \
            (r.id, r.tags)
        assert finder.get_metric_history(r.id, "objective")
        curves += bool(history)
    assert curves >= expected_runs - 2
