"""A NaN metric fails its trial (recorded ``failed`` with the reason), alone and in a shared
study; a search whose deciding trials all failed raises one error counting the failures and
quoting the first errors, instead of returning ``metric=nan`` and an arbitrary config."""

import math

import pytest

from ato.adict import ADict
from ato.hyperopt import get_algorithm
from ato.hyperopt.base import NoSuccessfulTrialError
from ato.scope import Scope
from tests.hyperopt.test_workers_batch import tracker

SPACE = ADict(x=ADict(param_type="INTEGER", param_range=(0, 5), num_samples=6))


def nan_at_3(config):
    return math.nan if config.x == 3 else float(config.x)


@pytest.mark.parametrize("study_id", [None, "nan-shared"], ids=["alone", "shared"])
@pytest.mark.parametrize("algorithm, options", [("grid", {}), ("random", {"n_trials": 12}),
                                                ("asha", {"max_trials": 30, "max_budget": 3})])
def test_a_nan_metric_is_a_failed_trial(tmp_path, study_id, algorithm, options):
    from ato.tracking import open_finder

    logger = tracker(tmp_path)
    search = get_algorithm(algorithm)(Scope(enable_override=True), SPACE, tracker=logger,
                                      study_id=study_id, seed=4, progress=False, **options)
    result = search.main(nan_at_3)()
    assert result.metric == 5 and result.config.x == 5
    runs = open_finder(f"sqlite:///{tmp_path / 't.db'}").find_runs(
        tags=[f"study:{search.get_hyperopt_id()}"])
    threes = [r for r in runs if r.config.x == 3]
    assert threes, "x=3 was never tried"
    for run in threes:
        assert run.status == "failed" and "returned NaN" in run.error
    assert all(r.status == "completed" for r in runs if r.config.x != 3)
    if study_id:
        from ato.tracking import open_coordinator

        states = open_coordinator(f"sqlite:///{tmp_path / 't.db'}").trials(study_id)
        assert {s.state for s in states if s.payload["values"]["x"] == 3} == {"failed"}


def always_fails(config):
    raise ValueError(f"x={config.x} diverged")


@pytest.mark.parametrize("study_id", [None, "all-fail"], ids=["alone", "shared"])
@pytest.mark.parametrize("objective, error", [(always_fails, "ValueError: x=\\d diverged"),
                                              (lambda config: math.nan, "returned NaN")])
def test_every_trial_failing_is_one_clear_error(tmp_path, study_id, objective, error):
    search = get_algorithm("random")(Scope(enable_override=True), SPACE,
                                     tracker=tracker(tmp_path), study_id=study_id, n_trials=4,
                                     seed=1, progress=False, catch=(ValueError,))
    with pytest.raises(NoSuccessfulTrialError, match=r"random: study '[\w-]+' has no best "
                                                     r"configuration: 4 of 4 trials failed"
                                                     r".*first errors: .*" + error):
        search.main(objective)()


def test_a_search_without_a_tracker_raises_too():
    search = get_algorithm("asha")(Scope(enable_override=True), SPACE, max_trials=5,
                                   max_budget=3, progress=False)
    with pytest.raises(NoSuccessfulTrialError, match="returned NaN") as caught:
        search.main(lambda config: math.nan)()
    assert "ato runs list" not in str(caught.value)  # nothing was tracked to list
