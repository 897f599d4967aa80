"""The behavioural suite every search algorithm should pass, shipped as a pytest plugin.

One command runs it against an installed algorithm (by ``PLUGIN_NAME``) or a class
(``module:Class``)::

    python -m ato.hyperopt.conformance coordinate
    python -m ato.hyperopt.conformance mypkg.search:MySearch --options '{"n_trials": 12}'

(the same as ``pytest -p ato.hyperopt.conformance --pyargs ato.hyperopt.conformance
--ato-algorithm NAME [--ato-options JSON]``; any further arguments go to pytest).  Or,
in a test module of your own::

    from ato.hyperopt.conformance import AlgorithmConformance

    class TestMySearch(AlgorithmConformance):
        algorithm = MySearch
        options = {"n_trials": 12}

The suite builds ``cls(scope, SPACE, **options, seed=..., mode=..., tracker=...,
study_id=..., progress=False)`` — the common options of :class:`ato.hyperopt.base.HyperOpt`
— and checks that the search: returns a config it evaluated with that metric; keeps
every budget within ``[min_budget, max_budget]`` (and ``total_budget`` / ``max_trials`` /
``n_trials`` when it has them); builds every candidate on the scope's applied config and
restores ``scope.config``; gives the same trials and result for the same seed; treats
``mode='min'`` on ``-f`` like ``mode='max'`` on ``f``; records every trial as a tagged run
and, resumed with the same study id after a crash, re-runs nothing that completed and
reaches the same result; lets an objective's exception propagate unchanged (recorded
``failed``) and, with ``catch=``, goes on.  Options come from ``--ato-options``, the test
class's ``options`` or the algorithm's ``CONFORMANCE_OPTIONS``, in that order; keep the
search small (it runs about ten times) and deterministic for a given seed.
"""

from __future__ import annotations

import importlib
import math
import sys
from fractions import Fraction

try:
    import pytest

    fixture = pytest.fixture
except ImportError:  # importable without pytest (tools import every module); runs under it
    pytest = None

    def fixture(function=None, **_options):
        return function if function is not None else (lambda f: f)

from ato.adict import ADict
from ato.hyperopt import budgets
from ato.hyperopt.suite_options import run_suite, spec_from_command_line, spec_of

__all__ = ["AlgorithmConformance", "SPACE", "objective", "resolve_algorithm", "main"]

#: The search space of the suite: 40 grid points, every parameter type.
SPACE = ADict(
    x=ADict(param_type="FLOAT", param_range=(0.0, 1.0), num_samples=5),
    k=ADict(param_type="INTEGER", param_range=(1, 4), num_samples=4),
    c=ADict(param_type="CATEGORY", categories=["a", "b"]),
)
NAMES = list(SPACE)
MAX_CALLS = 5000  # a search that evaluates more has lost track of its budget


def objective(config) -> float:
    """Best at x=0.6, k=3, c='b'; a larger ``__budget__`` (when given) is better."""
    budget = config.get("__budget__")
    penalty = 0.0 if budget is None else 1 / (1 + float(budget))
    return (-(config.x - 0.6) ** 2 - abs(config.k - 3) / 10 + (0.05 if config.c == "b" else 0)
            - penalty)


def resolve_algorithm(spec):
    """A class from a class, a ``PLUGIN_NAME`` or ``'module:Class'``."""
    if isinstance(spec, type):
        return spec
    if not isinstance(spec, str) or not spec:
        raise TypeError(f"the algorithm must be a class, a PLUGIN_NAME or 'module:Class', "
                        f"got {spec!r}")
    if ":" in spec:
        module, _, name = spec.partition(":")
        try:
            return getattr(importlib.import_module(module), name)
        except (ImportError, AttributeError) as e:
            raise LookupError(f"cannot import the algorithm {spec!r}: {e}") from None
    from ato.hyperopt import get_algorithm

    return get_algorithm(spec)


class _Interrupted(BaseException):
    """Stands for a crash (Ctrl-C, a killed job) in the middle of a search."""


class _Calls:
    """Records every call of the objective the suite hands to an algorithm
    (:meth:`function`: a plain function taking ``config``, as users write them)."""

    def __init__(self, sign: float = 1.0, fail=None, interrupt_at: int | None = None):
        self.sign, self.fail, self.interrupt_at = sign, fail, interrupt_at
        self.seen: list[tuple] = []
        self.configs: list = []
        self.metrics: list[float] = []

    def function(self):
        def objective(config):
            return self.call(config)

        return objective

    def call(self, config):
        if len(self.seen) >= MAX_CALLS:
            raise AssertionError(f"more than {MAX_CALLS} objective calls: the search does not "
                                 f"stop")
        values = tuple(config.get(n) for n in NAMES)
        self.seen.append((values, config.get("__budget__")))
        self.configs.append(config.clone() if hasattr(config, "clone") else dict(config))
        if self.interrupt_at is not None and len(self.seen) == self.interrupt_at:
            raise _Interrupted()
        if self.fail is not None:
            error = self.fail(config, len(self.seen))
            if error is not None:
                raise error
        metric = self.sign * objective(config)
        self.metrics.append(metric)
        return metric


def _values(config) -> tuple:
    return tuple(config.get(n) for n in NAMES)


def _unpack(result):
    config = result.get("config") if hasattr(result, "get") else getattr(result, "config", None)
    metric = result.get("metric") if hasattr(result, "get") else getattr(result, "metric", None)
    assert config is not None and metric is not None, (
        f"main(func)() must return a result with `config` and `metric` (an ADict), got "
        f"{type(result).__name__}: {result!r:.200}")
    return config, metric


class AlgorithmConformance:
    """Subclass it with ``algorithm`` (a class, a ``PLUGIN_NAME`` or ``'module:Class'``)
    and ``options`` (constructor keywords beyond the common ones)."""

    algorithm = None
    options: dict | None = None

    # ------------------------------------------------------------------ fixtures
    @fixture(autouse=True)
    def _fresh_command_line(self):
        from ato.scope import Scope
        from ato.scoping.cli import set_argv

        Scope.initialize_registry()
        set_argv([])  # never pytest's own arguments
        yield
        Scope.initialize_registry()

    @fixture
    def spec(self, request):
        """``(algorithm class, options)``."""
        return spec_of(resolve_algorithm, self.algorithm, self.options)

    @fixture
    def store(self, tmp_path):
        """``(logger, finder, config)`` of a fresh SQLite tracker."""
        pytest.importorskip("sqlalchemy", reason="recording needs ato-sql")
        from ato.db_routers.sql.manager import SQLFinder, SQLLogger

        config = ADict(experiment={"project_name": "conformance",
                                   "sql": {"db_path": f"sqlite:///{tmp_path / 'trials.db'}"}})
        return SQLLogger(config), SQLFinder(config), config

    # ------------------------------------------------------------------ helpers
    @staticmethod
    def make(spec, scope=None, **common):
        from ato.scope import Scope

        cls, options = spec
        common.setdefault("progress", False)
        common.setdefault("seed", 0)
        scope = scope if scope is not None else Scope(enable_override=True)
        return cls(scope, SPACE, **{**options, **common})

    @staticmethod
    def search(algorithm, calls: _Calls):
        return _unpack(algorithm.main(calls.function())())

    # ------------------------------------------------------------------ the suite
    def test_returns_a_config_it_evaluated(self, spec):
        """The result is a configuration the objective saw, with the metric it returned,
        inside the search space."""
        calls = _Calls()
        config, metric = self.search(self.make(spec), calls)
        assert calls.seen, "the objective was never called"
        x, k, c = _values(config)
        assert 0.0 <= x <= 1.0 and k in (1, 2, 3, 4) and c in ("a", "b"), config
        seen = [m for cfg, m in zip(calls.configs, calls.metrics) if _values(cfg) == (x, k, c)]
        assert metric in seen, (f"the result's metric {metric!r} is not what the objective "
                                f"returned for {x, k, c} ({seen})")

    def test_respects_its_budget(self, spec):
        """Every budget handed to the objective lies within [min_budget, max_budget];
        total_budget, max_trials and n_trials are never exceeded."""
        calls = _Calls()
        algorithm = self.make(spec)
        self.search(algorithm, calls)
        low = getattr(algorithm, "min_budget", None)
        high = getattr(algorithm, "max_budget", None)
        spent = Fraction(0)
        for (_, budget), config in zip(calls.seen, calls.configs):
            if budget is None:
                continue
            exact = budgets.exact(budget)
            # A multi-fidelity trial that continues its configuration costs the increment.
            spent += exact - budgets.exact(config.get("__resume_budget__", 0))
            if low is not None:
                assert budgets.exact(low) <= exact, f"budget {budget} < min_budget {low}"
            if high is not None:
                assert exact <= budgets.exact(high), f"budget {budget} > max_budget {high}"
        total = getattr(algorithm, "total_budget", None)
        if total is not None:
            assert spent <= budgets.exact(total), f"spent {spent} > total_budget {total}"
        for limit in ("max_trials", "n_trials"):
            value = getattr(algorithm, limit, None)
            if isinstance(value, int):
                assert len(calls.seen) <= value, f"{len(calls.seen)} trials > {limit}={value}"

    def test_builds_on_the_scope_and_restores_it(self, spec):
        """Every candidate carries the scope's views and command line; its searched values
        are the algorithm's; scope.config is the same object afterwards."""
        from ato.scope import Scope

        scope = Scope()

        @scope.observe(default=True)
        def defaults(cfg):
            cfg.bias = 1
            cfg.x = -1.0  # searched values must win over the scope's

        scope.apply(["bias=100"])
        before = scope.config
        snapshot = before.to_dict() if hasattr(before, "to_dict") else dict(before)
        calls = _Calls()
        self.search(self.make(spec, scope), calls)
        assert {cfg.get("bias") for cfg in calls.configs} == {100}
        assert all(0.0 <= cfg.x <= 1.0 for cfg in calls.configs)
        assert scope.config is before, "scope.config was not restored"
        after = before.to_dict() if hasattr(before, "to_dict") else dict(before)
        assert after == snapshot, "the scope's config was modified"

    def test_same_seed_same_search(self, spec):
        """Two searches with the same seed evaluate the same trials and return the same
        result."""
        runs = []
        for _ in range(2):
            calls = _Calls()
            config, metric = self.search(self.make(spec, seed=1234), calls)
            runs.append((calls.seen, _values(config), metric))
        assert runs[0] == runs[1]

    def test_min_mode_mirrors_max_mode(self, spec):
        """mode='min' on -f makes the same choices as mode='max' on f."""
        up, down = _Calls(), _Calls(sign=-1.0)
        best_up = self.search(self.make(spec, mode="max"), up)
        best_down = self.search(self.make(spec, mode="min"), down)
        assert up.seen == down.seen
        assert _values(best_up[0]) == _values(best_down[0]) and best_up[1] == -best_down[1]

    def test_records_every_trial(self, spec, store):
        """Each objective call is one completed run tagged study/algorithm/trial/bracket/
        rung/budget/config/seed, with the returned value as its metric `objective`."""
        from ato.hyperopt.study import config_hash

        logger, finder, _ = store
        calls = _Calls()
        algorithm = self.make(spec, tracker=logger, study_id="conformance-rec", seed=3)
        self.search(algorithm, calls)
        runs = finder.find_runs(tags=["study:conformance-rec"])
        assert len(runs) == len(calls.seen), (f"{len(calls.seen)} objective calls but "
                                              f"{len(runs)} recorded trials")
        keys = set()
        for run, metric in zip(runs, calls.metrics):
            tags = dict(str(t).partition(":")[::2] for t in run.tags)
            missing = {"study", "algorithm", "trial", "bracket", "rung", "budget", "config",
                       "seed"} - set(tags)
            assert not missing, f"run {run.id} lacks the tags {sorted(missing)}: {run.tags}"
            assert tags["seed"] == "3" and tags["config"] == config_hash(run.config, NAMES)
            int(tags["bracket"]), int(tags["rung"]), budgets.exact(tags["budget"])
            keys.add(tags["trial"])
            assert run.status == "completed"
            history = finder.get_metric_history(run.id, "objective")
            assert [h.value for h in history] == [pytest.approx(metric)]
        assert len(keys) == len(runs), "two trials share a trial key"

    def test_resumes_a_crashed_study(self, spec, store, tmp_path):
        """After a crash, the same study id re-runs nothing that completed and reaches the
        result of an uninterrupted search."""
        from ato.db_routers.sql.manager import SQLLogger

        full = _Calls()
        expected = self.search(self.make(spec, seed=5), full)
        crash_at = max(2, len(full.seen) // 2)
        _, _, config = store
        first = _Calls(interrupt_at=crash_at)
        with pytest.raises(_Interrupted):
            self.search(self.make(spec, seed=5, tracker=SQLLogger(config),
                                  study_id="conformance-resume"), first)
        resumed = _Calls()
        result = self.search(self.make(spec, seed=5, tracker=SQLLogger(config),
                                       study_id="conformance-resume"), resumed)
        assert len(resumed.seen) == len(full.seen) - (crash_at - 1), (
            f"{crash_at - 1} trials had completed, yet the resumed search made "
            f"{len(resumed.seen)} of {len(full.seen)} calls")
        assert first.seen[:crash_at - 1] + resumed.seen == full.seen
        assert (_values(result[0]), result[1]) == (_values(expected[0]), expected[1])

    def test_an_objective_error_propagates(self, spec, store):
        """The objective's own exception reaches the caller, the trial is recorded
        `failed`, the earlier ones `completed`, and scope.config is restored."""
        from ato.scope import Scope

        logger, finder, _ = store
        scope = Scope()
        before = scope.build()

        def fail(config, n):
            return ValueError("diverged at trial 3") if n == 3 else None

        calls = _Calls(fail=fail)
        # no study_id: a search alone (a given study_id on a database that coordinates
        # studies makes a shared study, where a trial's error does not end the search)
        algorithm = self.make(spec, scope, tracker=logger)
        with pytest.raises(ValueError, match="diverged at trial 3"):
            algorithm.main(calls.function())()
        assert scope.config is before
        statuses = [r.status for r in finder.find_runs(tags=[f"study:{algorithm.study_id}"])]
        assert statuses == ["completed", "completed", "failed"]

    def test_a_shared_study_records_a_failed_trial_and_goes_on(self, spec, store):
        """In a shared study (a tracker that coordinates studies and a study_id), an
        objective's exception fails that trial — recorded with its error — and the search
        goes on to a result that succeeded; with retries=1 a trial that fails once runs
        again and completes."""
        from ato.tracking import open_finder

        logger, finder, config = store
        if "studies" not in open_finder(config).capabilities:
            pytest.skip("the tracker backend does not coordinate studies")
        calls = _Calls(fail=lambda config, n: ValueError("diverged") if n == 2 else None)
        result = self.search(self.make(spec, tracker=logger, study_id="conformance-shared"),
                             calls)
        runs = finder.find_runs(tags=["study:conformance-shared"])
        from ato.hyperopt.workers import split_error

        failed = [split_error(r.error) for r in runs if r.status == "failed"]
        # the summary, then the objective's traceback (docs/hyperopt.md)
        assert [summary for summary, _ in failed] == ["ValueError: diverged"]
        assert all(trace and trace.rstrip().endswith("ValueError: diverged")
                   for _, trace in failed), failed
        assert len(runs) == len(calls.seen) > 2, "the search stopped at the failed trial"
        assert not math.isnan(result[1]), "the result is the trial that failed"
        # alone in the study, a released trial is claimed again at once: every odd call
        # is a first attempt
        retried = _Calls(fail=lambda config, n: ValueError("lost the GPU") if n % 2 else None)
        self.search(self.make(spec, tracker=logger, study_id="conformance-retry", retries=1),
                    retried)
        runs = finder.find_runs(tags=["study:conformance-retry"])
        assert runs and all(r.status == "completed" for r in runs)
        assert len(retried.seen) == 2 * len(runs)

    def test_catch_keeps_searching(self, spec):
        """With catch=(ValueError,), trials that raise it rank last and the search returns
        a trial that succeeded."""
        def fail(config, n):
            return ValueError("k=1 is unstable") if config.k == 1 else None

        calls = _Calls(fail=fail)
        config, metric = self.search(self.make(spec, catch=(ValueError,)), calls)
        assert config.k != 1 and isinstance(metric, (int, float)) and not math.isnan(metric)


def pytest_addoption(parser) -> None:
    group = parser.getgroup("ato-hyperopt", "ato search-algorithm conformance")
    group.addoption("--ato-algorithm", default=None,
                    help="the algorithm to check: a PLUGIN_NAME or module:Class")
    group.addoption("--ato-options", default=None,
                    help="JSON object of constructor options beyond the common ones")


class TestAlgorithm(AlgorithmConformance):
    """The suite for ``--ato-algorithm`` (collected when this module is given to pytest)."""

    @fixture
    def spec(self, request):
        return spec_from_command_line(request, resolve_algorithm, "--ato-algorithm",
                                      "--ato-options")


def main(argv=None) -> int:
    """``python -m ato.hyperopt.conformance ALGORITHM [--options JSON] [pytest args]``."""
    return run_suite("ato.hyperopt.conformance", "search algorithm", "asha",
                     resolve_algorithm, "--ato-algorithm", "--ato-options", argv,
                     build=lambda cls, options: AlgorithmConformance.make((cls, options)))


if __name__ == "__main__":
    sys.exit(main())
