"""The Ray executor on a local Ray instance (``pip install 'ato-hyperopt[ray]'``; CI installs
it): trials as Ray tasks in other processes, per-trial resources, errors as outcomes."""

from __future__ import annotations

import os

import pytest

from ato.hyperopt.executors import ExecutorError, get_executor
from ato.hyperopt.executors.conformance import ExecutorConformance

# real worker processes: run by `nox -s tests` after the quick run (docs/contributing.md)
pytestmark = pytest.mark.processes

ray = pytest.importorskip("ray", reason="the Ray executor needs pip install 'ato-hyperopt[ray]'")


@pytest.fixture(scope="module", autouse=True)
def local_ray():
    """One local Ray instance with 2 CPUs for the module."""
    saved = os.environ.get("RAY_AUTH_MODE")
    os.environ["RAY_AUTH_MODE"] = "disabled"  # no auth token written under ~/.ray
    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False)
    yield
    ray.shutdown()
    if saved is None:
        os.environ.pop("RAY_AUTH_MODE", None)
    else:
        os.environ["RAY_AUTH_MODE"] = saved


class TestRayConformance(ExecutorConformance):
    executor = "ray"
    options = {"max_concurrent": 2}


def die(i):
    if i == 1:
        os._exit(3)
    return i


def test_trials_are_tasks_in_other_processes_with_their_closure():
    table = {"a": 1, "b": 2}  # shipped with the function by Ray's cloudpickle

    def lookup(key):
        return os.getpid(), table[key] * 10

    executor = get_executor("ray")
    outcomes = executor.map(lookup, ["a", "b", "a"])
    assert [o.value[1] for o in outcomes] == [10, 20, 10]
    assert os.getpid() not in {o.value[0] for o in outcomes}
    executor.close()
    assert ray.is_initialized(), "close() shut down a Ray instance the executor did not start"


def test_slots_follow_the_per_trial_request_and_max_concurrent():
    assert get_executor("ray").slots == 2                 # 2 CPUs, 1 each
    assert get_executor("ray", num_cpus=2).slots == 1
    assert get_executor("ray", num_cpus=0.5).slots == 4
    assert get_executor("ray", max_concurrent=1).slots == 1


def test_max_concurrent_caps_the_cluster_never_raises_it():
    """A worker of a shared study claims ``slots`` trials at once: ``max_concurrent`` above
    what the 2-CPU cluster runs must not claim trials that only wait in Ray's queue."""
    assert get_executor("ray", num_cpus=1, max_concurrent=16).slots == 2
    assert get_executor("ray", num_cpus=2, max_concurrent=16).slots == 1
    assert get_executor("ray", num_cpus=0.5, max_concurrent=3).slots == 3
    assert get_executor("ray", num_cpus=1, max_concurrent=16).capacity == 2


def _leave_a_mark(item):
    name, folder = item
    seen = sorted(os.listdir(folder))
    open(os.path.join(folder, name), "w").close()
    return seen


def test_max_concurrent_one_runs_trials_one_after_another(tmp_path):
    executor = get_executor("ray", num_cpus=0.25, max_concurrent=1)
    outcomes = executor.map(_leave_a_mark, [(str(i), str(tmp_path)) for i in range(4)])
    assert [o.value for o in outcomes] == [[], ["0"], ["0", "1"], ["0", "1", "2"]]


def test_a_request_no_node_can_run_is_refused_at_once():
    with pytest.raises(ExecutorError, match=r"no node of the Ray cluster can run a trial asking "
                                            r"for CPU=1, GPU=1 \(nodes have: CPU=2\)"):
        get_executor("ray", num_gpus=1)
    with pytest.raises(ExecutorError, match=r"asking for CPU=1, accelerator=1 \(nodes have: "
                                            r"CPU=2\)"):
        get_executor("ray", resources={"accelerator": 1})
    assert ray.is_initialized()


@pytest.mark.parametrize(("options", "message"), [
    ({"resources": {"GPU": 1}}, r"ask for GPU with num_gpus=, not resources="),
    ({"num_cpus": -1}, r"num_cpus must be a number >= 0, got -1"),
    ({"max_concurrent": 0}, r"max_concurrent must be a positive int, got 0"),
    ({"num_gpu": 1}, r"has no option 'num_gpu' \(did you mean 'num_gpus'\?\)"),
])
def test_bad_options_are_named(options, message):
    with pytest.raises(ExecutorError, match=message):
        get_executor("ray", **options)


def test_a_task_ray_loses_is_a_failed_outcome_and_the_rest_go_on():
    executor = get_executor("ray")
    outcomes = executor.map(die, range(3))
    assert [o.ok for o in outcomes] == [True, False, True]
    assert outcomes[1].exception is None and "died" in outcomes[1].error.lower(), outcomes[1]
    assert [o.value for o in executor.map(abs, [-5])] == [5]


def test_a_search_on_ray(tmp_path):
    """Grid and Hyperband with executor='ray' evaluate what the serial search does, record
    each trial once in the driver's database, and run the objective in Ray workers."""
    from tests.hyperopt.test_executors import check_search

    check_search("ray", tmp_path, elsewhere=True)


def test_a_search_on_ray_with_per_trial_resources(tmp_path):
    from tests.hyperopt.test_executors import run_search

    result, runs, calls = run_search(get_executor("ray", num_cpus=2), tmp_path)
    assert (result.config.x, result.config.y) == (3, "b")
    assert len(runs) == len(calls) == 16


def test_a_function_ray_cannot_send_is_one_clear_error():
    import threading

    lock = threading.Lock()

    def holds_a_lock(i):
        with lock:
            return i

    executor = get_executor("ray")
    with pytest.raises(ExecutorError, match=r"executor 'ray' cannot send <function .*holds_a_lock"
                                            r".* to Ray workers: .*lock.*inspect_serializability"):
        executor.map(holds_a_lock, [1])
    with pytest.raises(ExecutorError, match=r"cannot send <function .*holds_a_lock"):
        executor.submit(holds_a_lock, 1)
