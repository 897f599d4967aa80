"""ASHA runs its trials on the executor's slots, alone and in a shared study (a real
SQLite tracker): asynchronously, a slot that comes free taking the next job by the
promotion rule; and a misspelled executor name is refused when any search is built."""

from __future__ import annotations

import os
import time
from pathlib import Path

import pytest

from ato.adict import ADict
from ato.hyperopt import get_algorithm
from ato.hyperopt.base import SearchOptionError
from ato.hyperopt.executors import get_executor
from ato.scope import Scope
from tests.hyperopt.test_workers_batch import tracker

SPACE = ADict(x=ADict(param_type="FLOAT", param_range=(0, 1)))
ASHA = {"max_budget": 9, "min_budget": 1, "eta": 3, "max_trials": 8, "seed": 2}


def slow(config):
    """Half a second per trial; notes the process that ran it."""
    time.sleep(0.5)
    Path(os.environ["ATO_TEST_PIDS"], str(os.getpid())).touch()
    return config.x


@pytest.fixture
def pids(tmp_path, monkeypatch):
    folder = tmp_path / "pids"
    folder.mkdir()
    monkeypatch.setenv("ATO_TEST_PIDS", str(folder))
    return folder


@pytest.mark.parametrize("study_id", [None, "asha-slots"], ids=["alone", "shared"])
@pytest.mark.parametrize("kind", ["threads", "processes"])
def test_asha_uses_the_executors_slots(tmp_path, pids, kind, study_id):
    executor = get_executor(kind, n_workers=2)
    try:
        search = get_algorithm("asha")(Scope(enable_override=True), SPACE,
                                       tracker=tracker(tmp_path) if study_id else None,
                                       study_id=study_id, progress=False, executor=executor,
                                       **ASHA)
        started = time.perf_counter()
        result = search.main(slow)()
        took = time.perf_counter() - started
    finally:
        executor.close()
    assert result.trials == 8
    assert took < 3.4, f"8 trials of 0.5 s on 2 slots took {took:.1f} s (one at a time: 4 s)"
    ran_in = {int(p.name) for p in pids.iterdir()}
    if kind == "processes":
        assert os.getpid() not in ran_in and len(ran_in) >= 2, ran_in  # a process a trial
    else:
        assert ran_in == {os.getpid()}


@pytest.mark.parametrize("algorithm, options", [("asha", {"max_trials": 4}),
                                                ("random", {"n_trials": 4}), ("grid", {})])
@pytest.mark.parametrize("study_id", [None, "typo"], ids=["alone", "shared"])
def test_a_misspelled_executor_is_refused_when_the_search_is_built(tmp_path, algorithm,
                                                                    options, study_id):
    with pytest.raises(SearchOptionError, match=rf"{algorithm}: executor='thread': .*"
                                                r"did you mean 'threads'"):
        get_algorithm(algorithm)(Scope(enable_override=True), SPACE if algorithm != "grid"
                                 else ADict(x=ADict(param_type="CATEGORY", categories=[1, 2])),
                                 tracker=tracker(tmp_path), study_id=study_id,
                                 executor="thread", progress=False, **options)
