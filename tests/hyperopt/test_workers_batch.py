"""evaluate_batch in one process: executors, batches of proposals, and what a shared
study refuses (another search under the same study_id)."""

from __future__ import annotations

import math

import pytest

from ato.adict import ADict
from ato.hyperopt import get_algorithm
from ato.hyperopt.base import GridSpaceMixIn, HyperOpt, SearchOptionError, TrialRequest
from ato.hyperopt.workers import StudyMismatchError
from ato.scope import Scope

SPACE = ADict(x=ADict(param_type="INTEGER", param_range=(0, 9), num_samples=10),
              c=ADict(param_type="CATEGORY", categories=["a", "b"]))


def score(config):
    return -(config.x - 6) ** 2 + (0.5 if config.c == "b" else 0)


def tracker(tmp_path, name="t.db"):
    from ato.tracking import open_logger

    return open_logger(f"sqlite:///{tmp_path / name}", project="batch")


class Batched(GridSpaceMixIn, HyperOpt):
    """A third-party algorithm that hands the base its whole grid as one batch."""

    PLUGIN_NAME = "batched"

    def main(self, func):
        def launch():
            self.begin_search()
            grid = self.prepare_distributions(self.config, self.search_spaces)
            requests = [TrialRequest(c, budget=3, rung=1) if i % 2 else c
                        for i, c in enumerate(grid)]
            metrics = self.evaluate_batch(func, requests)
            best = max(range(len(grid)), key=lambda i: metrics[i])
            self.end_search()
            return ADict(config=grid[best], metric=metrics[best], metrics=metrics)

        return launch


@pytest.mark.parametrize("executor", ["serial", "threads"])
def test_a_batch_runs_on_the_executor_and_is_recorded_in_order(tmp_path, executor):
    """Requests and plain configs mix in one batch; metrics come back in order; every
    trial is one run with its budget and rung tags, whatever the executor."""
    from ato.tracking import open_finder

    search = Batched(Scope(enable_override=True), SPACE, tracker=tracker(tmp_path),
                     executor=executor)
    result = search.main(score)()
    grid = search.prepare_distributions(search.config, SPACE)
    assert result.metrics == [score(c) for c in grid]
    assert (result.config.x, result.config.c) == (6, "b")
    runs = open_finder(f"sqlite:///{tmp_path / 't.db'}").find_runs(
        tags=[f"study:{search.study_id}"])
    assert len(runs) == 20
    tags = [set(r.tags) for r in runs]
    assert sum("rung:1" in t and "budget:3" in t for t in tags) == 10


def test_an_uncaught_error_on_an_executor_propagates_after_the_batch_is_recorded(tmp_path):
    """On threads, the objective's own exception reaches the caller once every outcome
    of the batch is recorded (the failed trial `failed`, the others `completed`)."""
    from ato.tracking import open_finder

    def objective(config):
        if config.x == 4 and config.c == "a":
            raise ValueError("x=4 diverged")
        return score(config)

    search = get_algorithm("grid")(Scope(enable_override=True), SPACE,
                                   tracker=tracker(tmp_path), executor="threads",
                                   progress=False)
    with pytest.raises(ValueError, match="x=4 diverged"):
        search.main(objective)()
    runs = open_finder(f"sqlite:///{tmp_path / 't.db'}").find_runs(
        tags=[f"study:{search.study_id}"])
    assert sorted(r.status for r in runs) == ["completed"] * 19 + ["failed"]
    assert [r.error for r in runs if r.status == "failed"] == ["ValueError: x=4 diverged"]


def test_tpe_batches_are_the_same_for_a_seed_and_batch_size_is_checked():
    """TPE with batch_size=4 proposes the same for the same seed on serial and threads;
    a wrong batch_size is one clear error."""
    seen = []
    for executor in ("serial", "threads"):
        calls = []
        search = get_algorithm("tpe")(Scope(enable_override=True), SPACE, n_trials=16,
                                      batch_size=4, seed=3, executor=executor,
                                      progress=False)
        search.main(lambda config, calls=calls: calls.append((config.x, config.c))
                    or score(config))()
        seen.append(sorted(calls))
    assert seen[0] == seen[1] and len(seen[0]) == 16
    with pytest.raises(SearchOptionError, match="tpe: batch_size must be an int >= 1, got 0"):
        get_algorithm("tpe")(Scope(enable_override=True), SPACE, batch_size=0)


def test_another_search_under_the_same_study_id_is_refused(tmp_path):
    """The study keeps its first search's algorithm, mode, seed and space: a worker with
    another seed stops with an error naming what differs."""
    logger = tracker(tmp_path)
    get_algorithm("random")(Scope(enable_override=True), SPACE, tracker=logger,
                            study_id="same", seed=1, n_trials=3,
                            progress=False).main(score)()
    with pytest.raises(StudyMismatchError, match=r"study 'same' .* seed is 1 there, 2 here"):
        get_algorithm("random")(Scope(enable_override=True), SPACE, tracker=logger,
                                study_id="same", seed=2, n_trials=3,
                                progress=False).main(score)()


def test_the_seed_of_a_study_comes_from_its_id():
    """Without a seed, workers given the same study_id draw the same seed."""
    make = get_algorithm("random")
    a = make(Scope(enable_override=True), SPACE, study_id="lr-sweep-3")
    b = make(Scope(enable_override=True), SPACE, study_id="lr-sweep-3")
    c = make(Scope(enable_override=True), SPACE, study_id="lr-sweep-4")
    assert a.seed == b.seed != c.seed


def test_a_shared_study_reuses_every_result_when_run_again(tmp_path):
    """Run again with the same study_id, a shared study calls the objective for nothing
    and returns the same result (the coordinator holds the results)."""
    logger = tracker(tmp_path)
    make = get_algorithm("multi_hyperband")
    first = make(Scope(enable_override=True), SPACE, tracker=logger, study_id="again",
                 max_budget=9, progress=False).main(score)()
    calls = []
    again = make(Scope(enable_override=True), SPACE, tracker=logger, study_id="again",
                 max_budget=9, progress=False).main(lambda c: calls.append(1) or score(c))()
    assert calls == [] and again.metric == first.metric and not math.isnan(first.metric)


def test_a_shared_study_runs_its_claims_on_the_executor(tmp_path):
    """In a shared study, a worker with a 3-slot executor runs 3 claims at once (on the
    executor), and every trial is still recorded once."""
    import threading
    import time

    from ato.hyperopt.executors import get_executor
    from ato.tracking import open_finder

    active, peak, lock = [0], [0], threading.Lock()

    def objective(config):
        with lock:
            active[0] += 1
            peak[0] = max(peak[0], active[0])
        time.sleep(0.05)
        with lock:
            active[0] -= 1
        return score(config)

    result = get_algorithm("grid")(Scope(enable_override=True), SPACE,
                                   tracker=tracker(tmp_path), study_id="slots",
                                   executor=get_executor("threads", n_workers=3),
                                   progress=False).main(objective)()
    assert (result.config.x, result.config.c) == (6, "b")
    assert peak[0] == 3
    runs = open_finder(f"sqlite:///{tmp_path / 't.db'}").find_runs(tags=["study:slots"])
    assert len(runs) == 20 and {r.status for r in runs} == {"completed"}
