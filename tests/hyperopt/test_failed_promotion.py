"""A failed trial ranks below every successful one and is never promoted to a larger
budget, by any successive-halving algorithm, alone and in a shared study (on a real
SQLite tracker): a configuration whose trial raised is not run again at the next rung,
even when fewer configurations succeeded than the rung promotes."""

from __future__ import annotations

import math

import pytest

from ato.adict import ADict
from ato.hyperopt import get_algorithm
from ato.hyperopt.base import NoSuccessfulTrialError
from ato.scope import Scope
from tests.hyperopt.test_workers_batch import tracker

SPACE = ADict(x=ADict(param_type="FLOAT", param_range=(0, 1), num_samples=9))
GRID = ADict(x=ADict(param_type="FLOAT", param_range=(0, 1), num_samples=8))

PLANS = {
    "asha": {"max_budget": 9, "min_budget": 1, "eta": 3, "max_trials": 30},
    "multi_hyperband": {"max_budget": 9, "min_budget": 1, "eta": 3},
    "bohb": {"max_budget": 9, "min_budget": 1, "eta": 3},
    "hyperband": {"halving_rate": 0.5, "num_min_samples": 1, "max_budget": 8},
}


def run(algorithm, tmp_path, study_id, threshold=0.7):
    calls = []

    def objective(config):
        calls.append((round(config.x, 6), config.__budget__))
        if config.x < threshold:
            raise ValueError(f"x={config.x:.4f} diverged")
        return config.x * float(config.__budget__)

    space = GRID if algorithm == "hyperband" else SPACE
    search = get_algorithm(algorithm)(Scope(enable_override=True), space,
                                      tracker=tracker(tmp_path), study_id=study_id, seed=5,
                                      progress=False, catch=(ValueError,), **PLANS[algorithm])
    try:
        return search.main(objective)(), calls
    except NoSuccessfulTrialError as e:
        return e, calls


@pytest.mark.parametrize("study_id", [None, "failed-shared"], ids=["alone", "shared"])
@pytest.mark.parametrize("algorithm", sorted(PLANS))
def test_a_failed_configuration_is_never_promoted(tmp_path, algorithm, study_id):
    result, calls = run(algorithm, tmp_path, study_id)
    failed_at = {}
    for x, budget in calls:
        if x < 0.7:
            failed_at.setdefault(x, budget)
    for x, budget in calls:
        assert not (x in failed_at and budget > failed_at[x]), \
            f"{algorithm}: x={x} failed at budget {failed_at[x]}, then ran at {budget}"
    assert failed_at, "no configuration failed: the test proves nothing"
    assert not isinstance(result, Exception), result
    assert result.config.x >= 0.7 and math.isfinite(result.metric)


@pytest.mark.parametrize("algorithm", sorted(PLANS))
def test_every_trial_failing_promotes_nothing(tmp_path, algorithm):
    result, calls = run(algorithm, tmp_path, None, threshold=2)
    assert isinstance(result, NoSuccessfulTrialError)
    lowest = min(b for _, b in calls)
    if algorithm != "multi_hyperband" and algorithm != "bohb":
        assert {b for _, b in calls} == {lowest}, calls  # nobody got a larger budget
    else:  # each bracket starts at its own budget; none promotes
        firsts = {}
        for x, b in calls:
            assert firsts.setdefault(x, b) == b, calls


def test_a_worker_says_what_it_did_when_it_leaves(tmp_path, capsys):
    """One line on stderr when a worker of a shared study leaves: its completed and
    failed trials (a SLURM task's log shows its part of the study)."""
    run("asha", tmp_path, "said-shared")
    lines = [line for line in capsys.readouterr().err.splitlines()
             if line.startswith("ato: study 'said-shared': worker ")]
    assert len(lines) == 1, lines
    assert "completed" in lines[0] and "failed" in lines[0]


def test_retries_without_a_shared_study_are_named(tmp_path):
    """retries= is a shared study's option: alone it would be ignored, so it warns."""
    search = get_algorithm("random")(Scope(enable_override=True), SPACE, n_trials=2,
                                     retries=2, progress=False)
    with pytest.warns(RuntimeWarning, match="retries=2 applies to a shared study only"):
        search.main(lambda config: config.x)()
