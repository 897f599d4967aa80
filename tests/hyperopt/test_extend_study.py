"""A shared study is extended by starting workers with a larger ``n_trials`` (random,
tpe), ``max_trials``/``total_budget`` (asha) or ``iterations`` (multi_hyperband, bohb
without a total budget): the trials already run are not run again, and the extended
search returns what a search planned that large from the start returns. Any other option
that differs is still a mismatch."""

from __future__ import annotations

import pytest

from ato.adict import ADict
from ato.hyperopt import get_algorithm
from ato.hyperopt.workers import StudyMismatchError
from ato.scope import Scope
from tests.hyperopt.test_workers_batch import tracker

SPACE = ADict(x=ADict(param_type="FLOAT", param_range=(0, 1), num_samples=9),
              y=ADict(param_type="FLOAT", param_range=(0, 1), num_samples=9))
MF = {"max_budget": 9, "min_budget": 1, "eta": 3}
CASES = {
    "random": ({"n_trials": 6}, {"n_trials": 10}),
    "tpe": ({"n_trials": 12}, {"n_trials": 16}),
    "asha": ({**MF, "max_trials": 10}, {**MF, "max_trials": 18}),
    "multi_hyperband": ({**MF, "iterations": 1}, {**MF, "iterations": 2}),
}


def search(algorithm, logger, study, options, calls):
    def objective(config):
        calls.append((round(config.x, 9), round(config.y, 9), str(config.__budget__)))
        return -(config.x - 0.3) ** 2 - (config.y - 0.6) ** 2 + float(config.__budget__) / 100

    return get_algorithm(algorithm)(Scope(enable_override=True), SPACE, tracker=logger,
                                    study_id=study, seed=11, progress=False,
                                    **options).main(objective)()


@pytest.mark.parametrize("algorithm", sorted(CASES))
def test_a_larger_plan_extends_the_study(tmp_path, algorithm):
    small, large = CASES[algorithm]
    logger = tracker(tmp_path)
    first, more = [], []
    search(algorithm, logger, "grow", small, first)
    extended = search(algorithm, logger, "grow", large, more)
    fresh_calls = []
    fresh = search(algorithm, tracker(tmp_path, "fresh.db"), "grow", large, fresh_calls)
    assert more and not set(more) & set(first)  # the first trials are not run again
    assert sorted(first + more) == sorted(fresh_calls)  # nothing twice, nothing else
    assert (extended.config.x, extended.config.y) == (fresh.config.x, fresh.config.y)


def test_other_options_still_differ(tmp_path):
    logger = tracker(tmp_path)
    search("random", logger, "fixed", {"n_trials": 4}, [])
    with pytest.raises(StudyMismatchError, match="max_budget"):
        search("random", logger, "fixed", {"n_trials": 8, "max_budget": 3}, [])
