"""Failed trials of a shared study stay failed when the workers start again; the error
says so and how to run them again, and ``ato search requeue STUDY --failed`` does (a
real ``ato`` process)."""

import subprocess
import sys

import pytest

from ato.hyperopt import get_algorithm
from ato.hyperopt.base import NoSuccessfulTrialError
from ato.scope import Scope
from tests.hyperopt.test_search_status import SPACE
from tests.hyperopt.test_workers_batch import score, tracker

pytestmark = pytest.mark.processes


def ato(*args):
    return subprocess.run([sys.executable, "-m", "ato.cli", *args], capture_output=True,
                          text=True)


def search(logger, objective):
    return get_algorithm("random")(Scope(enable_override=True), SPACE, tracker=logger,
                                   study_id="fixme", n_trials=3, seed=1,
                                   progress=False).main(objective)()


def broken(config):
    raise RuntimeError("forgot to move the model to the GPU")


def test_failed_trials_run_again_after_requeue(tmp_path):
    logger, url = tracker(tmp_path), f"sqlite:///{tmp_path / 't.db'}"
    for _ in range(2):  # starting again reruns nothing, and says so
        with pytest.raises(NoSuccessfulTrialError) as caught:
            search(logger, broken)
        message = str(caught.value)
        assert "failed trials stay failed" in message
        assert f"ato search requeue fixme --failed --db {url}" in message
    calls = []

    def fixed(config):
        calls.append(config.x)
        return score(config)

    with pytest.raises(NoSuccessfulTrialError):
        search(logger, fixed)
    assert calls == []
    done = ato("search", "requeue", "fixme", "--failed", "--db", url)
    assert done.returncode == 0, done.stderr
    assert "requeued 3 failed trials of study 'fixme'" in done.stdout
    result = search(logger, fixed)
    assert len(calls) == 3 and result.metric == score(result.config)
    again = ato("search", "requeue", "fixme", "--failed", "--db", url)
    assert "study 'fixme' has no failed trial; nothing requeued" in again.stdout


def test_asha_after_requeue_promotes_as_a_fresh_study(tmp_path):
    """ASHA proposes its trials from the study's history: requeue forgets its failed
    trials, and the fixed search then makes the same trials as a fresh study with the
    same seed (promotions included), instead of spending max_trials on re-runs."""
    def asha(logger, objective, study):
        return get_algorithm("asha")(Scope(enable_override=True), SPACE, tracker=logger,
                                     study_id=study, seed=4, max_budget=9, min_budget=1,
                                     eta=3, max_trials=20, progress=False).main(objective)()

    def fixed(config):
        calls.append((round(config.x, 9), config.__budget__))
        return score(config)

    logger, url = tracker(tmp_path), f"sqlite:///{tmp_path / 't.db'}"
    with pytest.raises(NoSuccessfulTrialError):
        asha(logger, broken, "bug")
    done = ato("search", "requeue", "bug", "--failed", "--db", url)
    assert done.returncode == 0, done.stderr
    # fail_fast stopped the broken study after its first 5 failures, not 20
    assert "forgot 5 failed trials of study 'bug'" in done.stdout
    calls = []
    repaired = asha(logger, fixed, "bug")
    after_requeue, calls = calls, []
    fresh = asha(tracker(tmp_path, "fresh.db"), fixed, "bug")
    assert max(b for _, b in after_requeue) == 9  # promoted to the top rung
    assert after_requeue == calls and repaired.config.x == fresh.config.x


def test_requeue_names_what_is_wrong(tmp_path):
    search(tracker(tmp_path), score)
    url = f"sqlite:///{tmp_path / 't.db'}"
    missing = ato("search", "requeue", "fixmee", "--failed", "--db", url)
    assert missing.returncode == 2 and "no study 'fixmee'" in missing.stderr
    assert "did you mean 'fixme'" in missing.stderr
    bare = ato("search", "requeue", "fixme", "--db", url)
    assert bare.returncode == 2 and "--failed" in bare.stderr
