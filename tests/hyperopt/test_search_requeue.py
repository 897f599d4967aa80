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


def test_requeue_names_what_is_wrong(tmp_path):
    search(tracker(tmp_path), score)
    url = f"sqlite:///{tmp_path / 't.db'}"
    missing = ato("search", "requeue", "fixmee", "--failed", "--db", url)
    assert missing.returncode == 2 and "no study 'fixmee'" in missing.stderr
    assert "did you mean 'fixme'" in missing.stderr
    bare = ato("search", "requeue", "fixme", "--db", url)
    assert bare.returncode == 2 and "--failed" in bare.stderr
