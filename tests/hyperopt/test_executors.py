"""The executor seam: choosing an executor, the local executors on real work, a third-party
executor through the hook, and the conformance suite against each."""

from __future__ import annotations

import os
import pickle
import subprocess
import sys
import threading
import uuid

import pytest

from ato.errors import PluginError, UnknownPluginError
from ato.hyperopt.executors import (
    BaseExecutor,
    ExecutorError,
    Outcome,
    TrialError,
    get_executor,
    run_one,
)
from ato.hyperopt.executors import local as local_executors
from ato.hyperopt.executors.base import first_done
from ato.hyperopt.executors.conformance import ExecutorConformance
from ato.hyperopt.executors.local import ProcessesExecutor, SerialExecutor, ThreadsExecutor
from ato.plugins import hookimpl
from ato.plugins.manager import check_plugin, describe_plugins, registered


# --------------------------------------------------------------------------- conformance
class TestSerialConformance(ExecutorConformance):
    executor = "serial"


class TestThreadsConformance(ExecutorConformance):
    executor = "threads"
    options = {"n_workers": 3}


class TestForkedProcessesConformance(ExecutorConformance):
    executor = "processes"
    options = {"n_workers": 2, "start_method": "fork"}


class TestSpawnedProcessesConformance(ExecutorConformance):
    executor = ProcessesExecutor
    options = {"n_workers": 2, "start_method": "spawn"}

    def test_runs_closures_and_several_functions(self, make):
        """Closures reach spawned workers through cloudpickle, an optional dependency."""
        pytest.importorskip("cloudpickle")
        super().test_runs_closures_and_several_functions(make)


# --------------------------------------------------------------------------- a third party
class Job:
    def __init__(self, fn, item, seq):
        self.fn, self.item, self.seq = fn, item, seq


class Reversed(BaseExecutor):
    """A third-party executor that implements only submit/wait_any (map comes from
    BaseExecutor) and finishes the latest submitted trial first."""

    PLUGIN_NAME = "reversed"

    def __init__(self, slots: int = 2):
        super().__init__()
        self.slots = slots
        self.in_flight = []
        self.most_in_flight = 0
        self.seq = 0

    def submit(self, fn, item):
        self._check_open()
        self.seq += 1
        job = Job(fn, item, self.seq)
        self.in_flight.append(job)
        self.most_in_flight = max(self.most_in_flight, len(self.in_flight))
        return job

    def wait_any(self, handles):
        job = max(handles, key=lambda j: j.seq)
        self.in_flight.remove(job)
        return job, run_one(job.fn, job.item)


class ThirdPartyPlugin:
    @hookimpl
    def ato_register_executors(self):
        return [Reversed]


class NoWaitAny:
    PLUGIN_NAME = "lazy"

    def map(self, fn, items):
        return [Outcome(True, fn(i)) for i in items]

    def submit(self, fn, item):
        return item

    def close(self):
        return None


class BrokenPlugin:
    @hookimpl
    def ato_register_executors(self):
        return [NoWaitAny]


@pytest.fixture
def third_party():
    with registered(ThirdPartyPlugin(), "third-party-executor"):
        yield


class TestThirdPartyConformance(ExecutorConformance):
    executor = Reversed


def test_a_third_party_executor_is_found_by_name(third_party):
    executor = get_executor("reversed", slots=3)
    n = 10
    outcomes = executor.map(lambda i: i * 10, range(n))
    assert [o.value for o in outcomes] == [i * 10 for i in range(n)]  # order restored
    assert executor.most_in_flight == 3  # map never holds more than slots in flight
    assert "reversed" in describe_plugins_row("third-party-executor")


def describe_plugins_row(name):
    row = next(r for r in describe_plugins() if r["name"] == name)
    return " ".join(row["provides"].get("search executors", []))


def test_the_built_in_executors_show_in_ato_plugins():
    provided = describe_plugins_row("hyperopt")
    for name in ("serial", "threads", "processes", "torch", "ray"):
        assert name in provided


def test_a_class_lacking_a_member_is_refused_by_name():
    with pytest.raises(PluginError) as info:
        with registered(BrokenPlugin(), "broken-executor"):
            pass
    message = str(info.value)
    assert "'broken-executor'" in message and "NoWaitAny ('lazy') lacks wait_any" in message
    assert check_plugin(ThirdPartyPlugin(), "fine") == []


# --------------------------------------------------------------------------- choosing
def test_unknown_name_names_the_installed_executors():
    with pytest.raises(UnknownPluginError) as info:
        get_executor("thread")
    message = str(info.value)
    assert "'thread'" in message and "did you mean 'threads'?" in message
    assert "installed: processes, ray, serial, threads, torch" in message


def test_an_unknown_option_names_the_options():
    with pytest.raises(ExecutorError, match=r"executor 'threads' has no option 'n_worker' "
                                            r"\(did you mean 'n_workers'\?\); its options are "
                                            r"n_workers"):
        get_executor("threads", n_worker=4)


@pytest.mark.parametrize("value", [0, -1, 2.5, True, "4"])
def test_n_workers_must_be_a_positive_int(value):
    with pytest.raises(ExecutorError, match=f"n_workers must be a positive int, got {value!r}"):
        get_executor("threads", n_workers=value)


def test_an_unavailable_start_method_lists_the_available_ones():
    with pytest.raises(ExecutorError, match=r"start_method 'vfork' is not available here "
                                            r"\(available: .*spawn"):
        get_executor("processes", start_method="vfork")


def test_none_is_serial_and_an_instance_is_used_as_it_is():
    assert isinstance(get_executor(None), SerialExecutor)
    assert isinstance(get_executor(), SerialExecutor)
    executor = ThreadsExecutor(n_workers=2)
    assert get_executor(executor) is executor
    assert isinstance(get_executor(ThreadsExecutor, n_workers=2), ThreadsExecutor)
    with pytest.raises(ExecutorError, match=r"options \['n_workers'\] were given with an "
                                            r"executor instance"):
        get_executor(executor, n_workers=3)
    executor.close()


def test_an_object_that_is_not_an_executor_is_named():
    with pytest.raises(ExecutorError, match=r"builtins.dict is not an executor: it lacks name, "
                                            r"slots, map, submit, wait_any, close"):
        get_executor({"name": "x"})

    class ZeroSlots(SerialExecutor):
        def __init__(self):
            super().__init__()
            self.slots = 0

    with pytest.raises(ExecutorError, match="slots must be a positive int, got 0"):
        get_executor(ZeroSlots)


# --------------------------------------------------------------------------- outcomes
def test_outcome_result_gives_the_value_or_raises_the_error():
    assert Outcome(True, 3.5).result() == 3.5
    error = KeyError("lr")
    with pytest.raises(KeyError) as info:
        Outcome.failure(error).result()
    assert info.value is error
    remote = Outcome.failure(ValueError("bad lr"), keep=False)
    assert remote.error == "ValueError: bad lr" and remote.exception is None
    with pytest.raises(TrialError, match="^ValueError: bad lr$"):
        remote.result()


def test_a_crash_of_the_search_is_not_a_failed_trial():
    """KeyboardInterrupt in the objective propagates out of map (serial and threads)."""
    def interrupt(i):
        if i == 1:
            raise KeyboardInterrupt
        return i

    for executor in (SerialExecutor(), ThreadsExecutor(n_workers=2)):
        with executor, pytest.raises(KeyboardInterrupt):
            executor.map(interrupt, range(3))


def test_a_closed_executor_refuses_work():
    executor = ThreadsExecutor(n_workers=2)
    executor.close()
    with pytest.raises(ExecutorError, match="executor 'threads' is closed"):
        executor.map(abs, [1])
    with pytest.raises(ExecutorError, match="is closed"):
        executor.submit(abs, 1)


def test_wait_any_needs_a_handle():
    with pytest.raises(ValueError, match="at least one handle"):
        first_done([])


# --------------------------------------------------------------------------- threads
def test_threads_run_n_workers_trials_at_once():
    """Three trials that each wait for the other two: only three threads at once pass."""
    barrier = threading.Barrier(3, timeout=30)

    def meet(i):
        barrier.wait()
        return threading.current_thread().name

    with ThreadsExecutor(n_workers=3) as executor:
        outcomes = executor.map(meet, range(6))
    assert all(o.ok for o in outcomes), outcomes
    assert len({o.value for o in outcomes}) == 3
    assert all(o.value.startswith("ato-trial") for o in outcomes)


# --------------------------------------------------------------------------- processes
def crash_on_two(i):
    if i == 2:
        os._exit(7)
    return i


class Unpicklable(Exception):
    def __init__(self, lock):
        super().__init__("holds a lock")
        self.lock = lock

    def __reduce__(self):
        raise TypeError("cannot pickle a lock")


def raise_unpicklable(i):
    raise Unpicklable(threading.Lock())


def test_processes_run_in_other_processes_and_see_the_forked_closure():
    offset = {"value": 100}  # a closure over local state: fork carries it

    def work(i):
        return os.getpid(), i + offset["value"]

    with ProcessesExecutor(n_workers=2, start_method="fork") as executor:
        outcomes = executor.map(work, range(4))
    assert [o.value[1] for o in outcomes] == [100, 101, 102, 103]
    assert os.getpid() not in {o.value[0] for o in outcomes}


def test_a_dead_child_fails_its_trials_and_the_next_batch_gets_fresh_workers():
    with ProcessesExecutor(n_workers=2, start_method="fork") as executor:
        outcomes = executor.map(crash_on_two, range(4))
        assert not outcomes[2].ok and outcomes[2].error.startswith(
            "BrokenProcessPool: a worker process died while this trial ran")
        again = executor.map(abs, [-1, -2, -3])
    assert [o.value for o in again] == [1, 2, 3]


def test_an_exception_comes_back_typed_when_it_pickles_and_as_text_otherwise():
    with ProcessesExecutor(n_workers=1, start_method="spawn") as executor:
        typed, untyped = executor.map(int, ["x"]) + executor.map(raise_unpicklable, [0])
    assert isinstance(typed.exception, ValueError)
    assert typed.error == "ValueError: invalid literal for int() with base 10: 'x'"
    assert untyped.exception is None
    assert untyped.error.endswith("Unpicklable: holds a lock")


def test_a_closure_under_spawn_without_cloudpickle_is_refused_with_what_to_do(monkeypatch):
    monkeypatch.setattr(local_executors, "cloudpickle", None)
    k = 3
    with ProcessesExecutor(n_workers=1, start_method="spawn") as executor:
        with pytest.raises(ExecutorError) as info:
            executor.map(lambda i: i + k, [1])
    message = str(info.value)
    assert "cannot send" in message and "does not pickle" in message
    assert "pip install cloudpickle" in message and "start_method='fork'" in message


def test_a_module_level_function_needs_nothing_under_spawn(monkeypatch):
    monkeypatch.setattr(local_executors, "cloudpickle", None)
    with ProcessesExecutor(n_workers=1, start_method="spawn") as executor:
        assert [o.value for o in executor.map(abs, [-4])] == [4]


def test_the_fork_registry_forgets_what_no_worker_can_need():
    with ProcessesExecutor(n_workers=1, start_method="fork") as executor:
        for k in range(12):
            assert executor.map(lambda i, k=k: i + k, [1])[0].value == 1 + k
        assert len(executor._tokens) == local_executors._KEEP
        tokens = list(executor._tokens.values())
    assert not any(t in local_executors._REGISTRY for t in tokens)


def test_outcomes_pickle():
    outcome = Outcome.failure(ValueError("x"))
    assert pickle.loads(pickle.dumps(outcome)).error == "ValueError: x"


def test_the_conformance_command_reports_an_unknown_executor():
    done = subprocess.run([sys.executable, "-m", "ato.hyperopt.executors.conformance", "rya"],
                          capture_output=True, text=True, timeout=120)
    assert done.returncode == 2
    assert "did you mean 'ray'?" in done.stderr and "Traceback" not in done.stderr


def test_the_conformance_command_runs_the_suite():
    done = subprocess.run([sys.executable, "-m", "ato.hyperopt.executors.conformance",
                           "threads", "--options", '{"n_workers": 2}'],
                          capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stdout + done.stderr
    assert "9 passed" in done.stdout


# --------------------------------------------------------------------------- searches
SPACE = {"x": {"param_type": "INTEGER", "param_range": (0, 7), "num_samples": 8},
         "y": {"param_type": "CATEGORY", "categories": ["a", "b"]}}


def run_search(executor, folder, algorithm="grid", study=None, **options):
    """A search whose objective leaves one file per call (``pid-x-y-budget-unique``) in
    ``folder``; returns ``(result, recorded runs, the files)``.  With ``study`` (an
    explicit study id), the search shares its study through the tracker."""
    from ato.adict import ADict
    from ato.db_routers.sql.manager import SQLFinder, SQLLogger
    from ato.hyperopt import get_algorithm
    from ato.scope import Scope

    scope = Scope(enable_override=True)

    @scope.observe(default=True)
    def defaults(cfg):
        cfg.x, cfg.y, cfg.offset = 0, "a", 1.0

    calls = folder / "calls"
    calls.mkdir(parents=True)
    config = ADict(experiment={"project_name": "executors",
                               "sql": {"db_path": f"sqlite:///{folder / 'runs.db'}"}})
    search = get_algorithm(algorithm)(scope, ADict(SPACE), mode="min", seed=1,
                                      tracker=SQLLogger(config), study_id=study,
                                      executor=executor, progress=False, **options)

    @search.main
    def objective(config):
        budget = config.get("__budget__", "")
        (calls / f"{os.getpid()}-{config.x}-{config.y}-{budget}-{uuid.uuid4().hex}").touch()
        return (config.x - 3) ** 2 + (0 if config.y == "b" else config.offset) + (
            1 / float(budget) if budget else 0)

    result = objective()
    return result, SQLFinder(config).find_runs(project_name="executors"), sorted(
        p.name for p in calls.iterdir())


def check_search(executor, tmp_path, *, elsewhere: bool, **options):
    """The search on ``executor`` evaluates what the serial one does, records each trial
    once, and (``elsewhere``) runs the objective in other processes."""
    (tmp_path / "serial").mkdir()
    (tmp_path / "other").mkdir()
    for algorithm, extra in (("grid", {}), ("hyperband", {"halving_rate": 0.5,
                                                          "num_min_samples": 2,
                                                          "max_budget": 8})):
        base, base_runs, base_calls = run_search("serial", tmp_path / "serial" / algorithm,
                                                 algorithm, **extra)
        result, runs, calls = run_search(executor, tmp_path / "other" / algorithm, algorithm,
                                         **extra, **options)
        assert (result.config.x, result.config.y, result.metric) == (
            base.config.x, base.config.y, base.metric) == (3, "b", base.metric)
        def what(names):
            return sorted(n.split("-", 1)[1].rsplit("-", 1)[0] for n in names)

        assert what(calls) == what(base_calls), (calls, base_calls)
        assert len(runs) == len(base_runs) == len(calls)
        assert all(r.status == "completed" for r in runs)
        pids = {int(c.split("-", 1)[0]) for c in calls}
        assert (os.getpid() not in pids) is elsewhere, (algorithm, pids)


def test_a_search_on_threads(tmp_path):
    check_search("threads", tmp_path, elsewhere=False)


def test_a_search_on_processes(tmp_path):
    check_search(ProcessesExecutor(n_workers=2), tmp_path, elsewhere=True)


def test_a_search_on_spawned_processes(tmp_path):
    """Under spawn the trial function, and with it the search, is pickled: the copy leaves
    the tracker and the locks behind and still runs the objective through the scope.  The
    objective here is a closure, which needs cloudpickle."""
    pytest.importorskip("cloudpickle")
    check_search(ProcessesExecutor(n_workers=2, start_method="spawn"), tmp_path,
                 elsewhere=True)


@pytest.mark.parametrize("algorithm", ["grid", "random"])
def test_a_module_level_objective_needs_no_cloudpickle_under_spawn(tmp_path, monkeypatch,
                                                                    algorithm):
    """Ato's own wrapper around a module-level objective pickles by reference, so a search
    runs on spawned workers with plain pickle (cloudpickle switched off here)."""
    from ato.adict import ADict
    from ato.hyperopt import get_algorithm
    from ato.scope import Scope
    from tests.hyperopt.spawn_objective import distance

    monkeypatch.setattr(local_executors, "cloudpickle", None)
    monkeypatch.setenv("ATO_TEST_SPAWN_DIR", str(tmp_path))
    space = ADict(x=ADict(param_type="INTEGER", param_range=(0, 5), num_samples=6))
    options = {"n_trials": 6} if algorithm == "random" else {}
    search = get_algorithm(algorithm)(Scope(enable_override=True), space, mode="min", seed=0,
                                      executor=ProcessesExecutor(n_workers=2,
                                                                 start_method="spawn"),
                                      progress=False, **options)
    result = search.main(distance)()
    pids = {int(p.name.split("-")[0]) for p in tmp_path.iterdir()}
    assert len(list(tmp_path.iterdir())) == 6 and os.getpid() not in pids
    if algorithm == "grid":
        assert (result.config.x, result.metric) == (3, 0)


def test_a_search_on_threads_runs_trials_at_once(tmp_path):
    """Two trials that wait for each other finish only when they run at the same time."""
    from ato.adict import ADict
    from ato.hyperopt.algorithms import GridSearch
    from ato.scope import Scope

    barrier = threading.Barrier(2, timeout=30)
    scope = Scope()
    space = ADict(x=ADict(param_type="INTEGER", param_range=(0, 3), num_samples=4))
    search = GridSearch(scope, space, mode="max", progress=False,
                        executor=ThreadsExecutor(n_workers=2))

    @search.main
    def objective(config):
        barrier.wait()
        return config.x

    assert objective().config.x == 3


def test_tpe_fills_the_executor_s_slots_by_default():
    """TPE's default batch is the executor's slots (torchrun's ranks, the threads of a
    local executor): trials that wait for each other in pairs all meet."""
    from ato.adict import ADict
    from ato.hyperopt.algorithms import TPESearch
    from ato.scope import Scope

    barrier = threading.Barrier(2, timeout=20)
    space = ADict(x=ADict(param_type="FLOAT", param_range=(0.0, 1.0)))
    search = TPESearch(Scope(), space, n_trials=4, mode="max",
                       progress=False, seed=3, executor=ThreadsExecutor(n_workers=2))
    waited = []

    @search.main
    def objective(config):
        try:
            barrier.wait()
            waited.append(True)
        except threading.BrokenBarrierError:
            waited.append(False)
            barrier.reset()
        return config.x

    objective()
    assert waited == [True] * 4


def test_a_failing_trial_on_an_executor_is_recorded_and_caught(tmp_path):
    from ato.adict import ADict
    from ato.db_routers.sql.manager import SQLFinder, SQLLogger
    from ato.hyperopt.algorithms import GridSearch
    from ato.scope import Scope

    config = ADict(experiment={"project_name": "executors",
                               "sql": {"db_path": f"sqlite:///{tmp_path / 'runs.db'}"}})
    space = ADict(x=ADict(param_type="INTEGER", param_range=(0, 3), num_samples=4))
    search = GridSearch(Scope(), space, mode="max", progress=False, catch=(ValueError,),
                        executor=ProcessesExecutor(n_workers=2), tracker=SQLLogger(config),
                        study_id="failing")

    @search.main
    def objective(config):
        if config.x == 3:
            raise ValueError("x=3 diverged")
        return config.x

    assert objective().config.x == 2
    failed = SQLFinder(config).find_runs(tags=["study:failing"], status="failed")
    assert len(failed) == 1 and "ValueError: x=3 diverged" in (failed[0].error or "")


def test_a_shared_study_runs_its_claims_on_the_executor(tmp_path):
    """A shared study's worker runs its claims on the executor's processes."""
    _, runs, calls = run_search(ProcessesExecutor(n_workers=2), tmp_path, study="shared")
    assert len(runs) == len(calls) == 16
    assert os.getpid() not in {int(c.split("-", 1)[0]) for c in calls}
