"""The algorithm base does the common work (issue 9 item 3): options, seeding, tracking
and resume of every trial that goes through evaluate(), and no private names that
collide with a subclass's."""

from __future__ import annotations

import math
import random
from fractions import Fraction

import pytest

from ato.adict import ADict
from ato.hyperopt.base import (
    DistributedHyperOpt,
    GridSpaceMixIn,
    HyperOpt,
    SearchOptionError,
    better,
)
from ato.scope import Scope

SPACE = ADict(x=ADict(param_type="INTEGER", param_range=(0, 5), num_samples=6))


class Plain(GridSpaceMixIn, HyperOpt):
    """The smallest algorithm: every grid point, the best wins."""

    PLUGIN_NAME = "plain"

    def main(self, func):
        def launch():
            scored = [(self.evaluate(func, c), c)
                      for c in self.prepare_distributions(self.config, self.search_spaces)]
            metric, config = min(scored, key=lambda mc: better(self.mode)(mc[0]))
            return ADict(config=config, metric=metric)

        return launch


class Crowded(GridSpaceMixIn, HyperOpt):
    """Uses every private name a base class might be tempted to use."""

    PLUGIN_NAME = "crowded"

    def __init__(self, scope, search_spaces, **options):
        self._config = lambda c: c  # the report: a callable member named _config
        self._study_id = "mine"
        self._state = {"sweeps": 0}
        self._seed = "not an int"
        self._rng = None
        self._lock = None
        self._recorder = "mine"
        self._tracker = "mine"
        self.__state = "mangled, but named like the base's"
        super().__init__(scope, search_spaces, **options)
        self._config_after = self._config

    def _evaluate(self, *args):
        raise AssertionError("the base must not call a subclass's _evaluate")

    def _load(self, *args):
        raise AssertionError("the base must not call a subclass's _load")

    def _budget_option(self, *args):
        raise AssertionError("the base must not call a subclass's _budget_option")

    def _check(self, *args):
        raise AssertionError("the base must not call a subclass's _check")

    def main(self, func):
        def launch():
            self._state["sweeps"] += 1
            scored = [(self.evaluate(func, self._config(c)), c)
                      for c in self.prepare_distributions(self.config, self.search_spaces)]
            metric, config = min(scored, key=lambda mc: better(self.mode)(mc[0]))
            return ADict(config=config, metric=metric)

        return launch


def peak(config):
    return -(config.x - 2) ** 2


@pytest.fixture
def store(tmp_path):
    from ato.db_routers.sql.manager import SQLFinder, SQLLogger

    config = ADict(experiment={"project_name": "base",
                               "sql": {"db_path": f"sqlite:///{tmp_path / 'b.db'}"}})
    SQLLogger(config)  # creates the database the finder reads
    return config, SQLLogger, SQLFinder(config)


class TestPrivateNames:
    def test_subclass_private_names_do_not_collide(self, store):
        """A subclass's _config, _study_id, _state, _seed... survive and work, and the
        search is still tracked and resumable."""
        config, logger, finder = store
        search = Crowded(Scope(), SPACE, tracker=logger(config), study_id="crowded", seed=9)
        result = search.main(peak)()
        assert (result.config.x, result.metric) == (2, 0)
        assert search._config_after is search._config and search._config(1) == 1
        assert (search._study_id, search._seed, search._recorder) == ("mine", "not an int", "mine")
        assert search._state == {"sweeps": 1}
        assert search.study_id == "crowded" and search.seed == 9
        assert len(finder.find_runs(tags=["study:crowded"])) == 6
        calls = []
        Crowded(Scope(enable_override=True), SPACE, tracker=logger(config), study_id="crowded",
                seed=9).main(lambda config: calls.append(1) or peak(config))()
        assert calls == []  # every trial was resumed


class TestOptions:
    @pytest.mark.parametrize("options, message", [
        (dict(mode="best"), "plain: mode must be 'min' or 'max', not 'best'"),
        (dict(max_budget=0), "plain: max_budget must be > 0, got 0"),
        (dict(max_budget="lots"),
         "plain: max_budget must be a number such as 9, 0.1 or 10/9, got 'lots'"),
        (dict(max_budget=math.inf), "plain: max_budget must be finite, got inf"),
        (dict(min_budget=True), "plain: min_budget must be a number, got True"),
        (dict(min_budget=5, max_budget=2),
         "plain: min_budget must be <= max_budget, got min_budget=5, max_budget=2"),
        (dict(eta=1), "plain: eta must be > 1, got 1"),
        (dict(eta=0.5), "plain: eta must be > 1, got 0.5"),
        (dict(seed=-1), "plain: seed must be a non-negative int, got -1"),
        (dict(seed=1.5), "plain: seed must be a non-negative int, got 1.5"),
        (dict(seed=True), "plain: seed must be a non-negative int, got True"),
        (dict(study_id="my study"),
         "plain: study_id must be a non-empty string without spaces or commas, got 'my study'"),
        (dict(study_id=""),
         "plain: study_id must be a non-empty string without spaces or commas, got ''"),
        (dict(progress="yes"), "plain: progress must be True, False or None, got 'yes'"),
        (dict(catch="ValueError"), "plain: catch must be an exception class or a tuple of them "
                                   "(subclasses of Exception), got 'ValueError'"),
        (dict(catch=(KeyboardInterrupt,)), "plain: catch must be an exception class or a tuple "
                                           "of them (subclasses of Exception), got "
                                           "(<class 'KeyboardInterrupt'>,)"),
        (dict(tracker=object()), "plain: tracker object lacks run, log_metric, finish (pass an "
                                 "SQLLogger or a logger of a tracker plugin)"),
        (dict(etaa=3), "plain: unknown option 'etaa' (did you mean 'eta'?); the common options "
                       "are tracker, mode, study_id, seed, max_budget, min_budget, eta, "
                       "progress, catch, executor, heartbeat_interval, stale_after, retries, "
                       "fail_fast, checkpoint_root"),
        (dict(colour="red"), "plain: unknown option 'colour'; the common options are tracker, "
                             "mode, study_id, seed, max_budget, min_budget, eta, progress, "
                             "catch, executor, heartbeat_interval, stale_after, retries, "
                             "fail_fast, checkpoint_root"),
        (dict(stale_after=0), "plain: stale_after must be a number of seconds > 0, got 0"),
        (dict(heartbeat_interval="5"),
         "plain: heartbeat_interval must be a number of seconds > 0, got '5'"),
        (dict(heartbeat_interval=10, stale_after=5),
         "plain: stale_after must be larger than heartbeat_interval (a live worker would look "
         "dead), got stale_after=5, heartbeat_interval=10"),
        (dict(retries=-1), "plain: retries must be an int >= 0, got -1"),
        (dict(executor=3), "plain: executor must be a name ('serial', 'threads', 'processes', "
                           "'torch', 'ray', ...) or an executor with map(fn, items), got 3"),
    ])
    def test_one_clear_error_per_wrong_option(self, options, message):
        """Each wrong common option raises SearchOptionError naming algorithm and option."""
        with pytest.raises(SearchOptionError) as info:
            Plain(Scope(), SPACE, **options)
        assert str(info.value) == message
        assert isinstance(info.value, ValueError)

    def test_search_spaces_must_be_a_mapping(self):
        with pytest.raises(SearchOptionError, match="^plain: search_spaces must be a mapping "
                                                    "of parameter name to spec, got list$"):
            Plain(Scope(), [("x", 1)])

    @pytest.mark.parametrize("options, expected", [
        ({}, (1, 1, 3)),
        (dict(max_budget=81), (81, 1, 3)),
        (dict(max_budget=0.5), (Fraction(1, 2), Fraction(1, 2), 3)),
        (dict(max_budget=8.1, min_budget=0.1, eta=1.5),
         (Fraction(81, 10), Fraction(1, 10), Fraction(3, 2))),
    ])
    def test_budget_defaults_and_exactness(self, options, expected):
        """max_budget 1, min_budget min(1, max_budget), eta 3; all exact Fractions."""
        search = Plain(Scope(), SPACE, **options)
        assert (search.max_budget, search.min_budget, search.eta) == expected
        assert all(isinstance(v, Fraction) for v in expected if not isinstance(v, int)) and \
            all(isinstance(v, Fraction) for v in (search.max_budget, search.min_budget, search.eta))


class TestSeeding:
    def test_same_seed_same_stream(self):
        """rng is a random.Random seeded with seed."""
        a, b = (Plain(Scope(enable_override=True), SPACE, seed=42) for _ in range(2))
        assert isinstance(a.rng, random.Random) and a.rng is a.rng
        assert [a.rng.random() for _ in range(3)] == [b.rng.random() for _ in range(3)]
        assert a.seed == 42

    def test_a_missing_seed_is_drawn_once_and_recorded(self, store):
        """Without a seed one is drawn, kept, and tagged on every trial so the search can
        be repeated."""
        config, logger, finder = store
        search = Plain(Scope(), SPACE, tracker=logger(config), study_id="s")
        seed = search.seed
        assert isinstance(seed, int) and search.seed == seed
        search.main(peak)()
        tags = {t for r in finder.find_runs(tags=["study:s"]) for t in r.tags if t.startswith("seed:")}
        assert tags == {f"seed:{seed}"}


class TestEvaluate:
    def test_scope_config_is_restored_even_when_the_objective_raises(self):
        scope = Scope()
        before = scope.build()
        with pytest.raises(ZeroDivisionError):
            Plain(scope, SPACE).main(lambda config: 1 / 0)()
        assert scope.config is before

    @pytest.mark.parametrize("returned", [None, "0.5", (1, 2), [0.5], True])
    def test_the_objective_must_return_a_number(self, returned):
        """Anything but a number (or a 0-d tensor/array) is a clear TypeError."""
        with pytest.raises(TypeError, match=r"^plain: the objective must return a number "
                                            r"\(the metric\), got "):
            Plain(Scope(), SPACE).main(lambda config: returned)()

    def test_a_0d_array_is_a_number(self):
        np = pytest.importorskip("numpy")
        result = Plain(Scope(), SPACE).main(lambda config: np.array(float(config.x)))()
        assert result.metric == 5.0 and type(result.metric) is float

    def test_budget_in_the_config_is_normalised(self, store):
        """A __budget__ the algorithm wrote as a Fraction or a float reaches the objective
        and the record in its one representation."""
        config, logger, finder = store
        seen = []

        class Budgeted(Plain):
            def main(self, func):
                def launch():
                    c = self.config.clone()
                    c.x, c.__budget__ = 1, Fraction(27, 10)
                    return ADict(config=c, metric=self.evaluate(func, c))

                return launch

        Budgeted(Scope(), SPACE, tracker=logger(config), study_id="nb").main(
            lambda config: seen.append(config.__budget__) or 1.0)()
        assert seen == [2.7]
        (run,) = finder.find_runs(tags=["study:nb"])
        assert "budget:2.7" in run.tags and run.config.__budget__ == 2.7

    def test_repeated_trials_are_told_apart(self, store):
        """Evaluating the same configuration twice is two trials (two runs), and a resumed
        study replays both."""
        config, logger, finder = store

        class Twice(Plain):
            def main(self, func):
                def launch():
                    c = self.config.clone()
                    c.x = 3
                    return ADict(config=c, metric=[self.evaluate(func, c.clone())
                                                   for _ in range(2)][-1])

                return launch

        calls = []
        Twice(Scope(), SPACE, tracker=logger(config), study_id="tw").main(
            lambda config: calls.append(1) or 1.0)()
        runs = finder.find_runs(tags=["study:tw"])
        keys = [t for r in runs for t in r.tags if t.startswith("trial:")]
        assert len(calls) == 2 and len(runs) == 2 and len(set(keys)) == 2
        Twice(Scope(enable_override=True), SPACE, tracker=logger(config), study_id="tw").main(
            lambda config: calls.append(1) or 1.0)()
        assert len(calls) == 2

    def test_nan_objective_is_recorded_without_a_metric(self, store):
        """A NaN objective is a failed run without `objective`, its error saying why; it
        ranks last and the search goes on."""
        config, logger, finder = store
        result = Plain(Scope(), SPACE, tracker=logger(config), study_id="nan").main(
            lambda config: math.nan if config.x == 2 else float(config.x))()
        assert result.config.x == 5
        (nan_run,) = [r for r in finder.find_runs(tags=["study:nan"]) if r.config.x == 2]
        assert nan_run.status == "failed"
        assert "NaNMetricError" in nan_run.error and "returned NaN" in nan_run.error
        assert finder.get_metric_history(nan_run.id, "objective") == []


def test_distributed_hyperopt_is_constructible_on_one_rank():
    """SPEC 6.5's flaw (AttributeError on construction) is gone; the id is shared."""
    class D(DistributedHyperOpt):
        def main(self, func):
            return lambda: None

    d = D(Scope(), SPACE, study_id="d1", seed=1)
    assert (d.rank, d.world_size, d.is_root, d.get_hyperopt_id()) == (0, 1, True, "d1")
    assert d.config.__hyperopt_id__ == "d1"


class TestObjectiveKinds:
    def test_a_partial_and_a_callable_object_get_the_config(self):
        """Objectives without a code object of their own receive the config first."""
        import functools

        class Objective:
            def __call__(self, config, offset=0):
                return peak(config) + offset

        def scored(config, offset):
            return peak(config) + offset

        for func in (functools.partial(scored, offset=1), Objective()):
            result = Plain(Scope(enable_override=True), SPACE).main(func)()
            assert result.config.x == 2


def test_begin_search_is_where_ranks_agree():
    """The study id and the seed are agreed (broadcast) when a search begins, so a rank
    that runs no trial still takes part in the collective."""
    shared = []

    class Ranked(Plain):
        def broadcast_object_from_root(self, obj):
            shared.append(obj)
            return obj

    search = Ranked(Scope(), SPACE)
    assert shared == []
    search.begin_search()
    assert len(shared) == 2 and shared == [search.study_id, search.seed]


@pytest.mark.parametrize("bad, needle", [
    (["1e-5", "1e-1"], "holds '1e-5', which is not a number (a quoted number"),
    ([True, 2], "holds True, which is not a number"),
    ([0.1], "must be a pair [start, stop], got [0.1]"),
    ("0.1,1", "must be a pair [start, stop], got '0.1,1'"),
])
@pytest.mark.parametrize("algorithm", ["grid", "tpe"])
def test_param_range_that_is_not_two_numbers_is_a_search_space_error(bad, needle, algorithm):
    """A range read from a config file with quoted numbers (strings) is refused with the
    entry's name, for grid-style and sampling algorithms alike — never a raw TypeError."""
    from ato.hyperopt import get_algorithm
    from ato.hyperopt.base import SearchSpaceError
    from ato.scope import Scope

    scope = Scope()

    @scope.observe(default=True)
    def config(cfg):
        cfg.lr = 0.1

    space = {"lr": {"param_type": "FLOAT", "param_range": bad, "num_samples": 3,
                    "space_type": "LINEAR"}}
    with pytest.raises(SearchSpaceError) as info:
        search = get_algorithm(algorithm)(scope, space, max_budget=1)
        search.main(lambda cfg: cfg.lr)()
    assert "search space 'lr'" in str(info.value) and needle in str(info.value)


def test_wrong_constructor_arguments_and_names_say_which_algorithm():
    """A missing positional option, an unknown sampler and a name in the wrong case each
    get an error that names the algorithm (never a bare TypeError from ``__init__``)."""
    from ato.errors import UnknownPluginError
    from ato.hyperopt import get_algorithm

    with pytest.raises(SearchOptionError, match="^hyperband: missing a required argument: "
                                                "'halving_rate'; its signature is HyperBand"):
        get_algorithm("hyperband")(Scope(name="hb_args"), SPACE)
    for name in ("asha", "bohb"):
        with pytest.raises(SearchOptionError, match=f"^{name}: sampler must be one of "
                                                    "random, tpe, not 'xx'"):
            get_algorithm(name)(Scope(name=f"{name}_sampler"), SPACE, sampler="xx")
    with pytest.raises(UnknownPluginError, match="did you mean 'asha'"):
        get_algorithm("ASHA")


@pytest.mark.parametrize("entry, needle", [
    ({"param_type": "FLOAT", "param_range": (1, 0), "num_samples": 3},
     "param_range runs backwards (1 > 0); write it [0, 1]"),
    ({"param_type": "INTEGER", "param_range": (10, -2), "num_samples": 3}, "runs backwards"),
    ({"param_type": "FLOAT", "param_range": (0.0, float("inf")), "num_samples": 3},
     "param_range must be finite"),
    ({"param_type": "FLOAT", "param_range": (float("nan"), 1.0), "num_samples": 3},
     "param_range must be finite"),
    ({"param_type": "CATEGORY", "categories": []}, "CATEGORY needs a non-empty 'categories'"),
    ({"param_type": "CATEGORY", "categories": "abc"}, "CATEGORY needs a non-empty 'categories'"),
    ({"param_type": "FLOAT", "param_rang": (0, 1), "num_samples": 3},
     "unknown key 'param_rang'; did you mean 'param_range'?"),
    ({"param_type": "CATEGORY", "choices": ["a"]}, "unknown key 'choices' (known: "),
])
@pytest.mark.parametrize("algorithm", ["random", "tpe", "grid", "hyperband", "asha", "bohb"])
def test_a_malformed_entry_is_refused_alike_by_every_algorithm(entry, needle, algorithm):
    """Each kind of malformed search-space entry is one SearchSpaceError naming the entry,
    whether the algorithm samples (random, tpe, asha, bohb) or builds a grid — never an
    IndexError, a math domain error or a silently reversed grid."""
    from ato.hyperopt import get_algorithm
    from ato.hyperopt.base import SearchSpaceError

    options = {"halving_rate": 0.5, "num_min_samples": 1} if algorithm == "hyperband" else {}
    with pytest.raises(SearchSpaceError) as info:
        search = get_algorithm(algorithm)(Scope(enable_override=True), {"w": entry},
                                          progress=False, **options)
        search.main(lambda cfg: 1.0)()
    assert str(info.value).startswith("search space 'w': ") and needle in str(info.value)


@pytest.mark.parametrize("entry, needle", [
    ({"param_type": "FLOAT", "param_range": (0, 1), "num_samples": 3, "space_type": "LOGG"},
     "space_type must be LINEAR or LOG, not 'LOGG'"),
    ({"param_type": "FLOAT", "param_range": (0, 1), "space_type": 2}, "space_type must be"),
    ({"param_type": "FLOAT", "param_range": (0, 1), "num_samples": 0},
     "num_samples must be >= 1, got 0"),
    ({"param_type": "INTEGER", "param_range": (0, 9), "num_samples": -1},
     "num_samples must be >= 1, got -1"),
    ({"param_type": "FLOAT", "param_range": (0, 1), "num_samples": 2.5},
     "num_samples must be an integer, got 2.5"),
    ({"param_type": "FLOAT", "param_range": (0, 1), "num_samples": True},
     "num_samples must be an integer, got True"),
    ({"param_type": "FLOAT", "param_range": (1, 10), "num_samples": 3, "space_type": "LOG",
      "base": 1}, "base must be a finite number > 0 and != 1, got 1"),
    ({"param_type": "FLOAT", "param_range": (1, 10), "num_samples": 3, "space_type": "LOG",
      "base": 0}, "base must be a finite number > 0 and != 1, got 0"),
    ({"param_type": "FLOAT", "param_range": (1, 10), "num_samples": 3, "space_type": "LOG",
      "base": -2}, "base must be"),
    ({"param_type": "FLOAT", "param_range": (1, 10), "num_samples": 3, "space_type": "LOG",
      "base": float("nan")}, "base must be"),
    ({"param_type": "INTEGER", "param_range": (1, 10), "num_samples": 3, "space_type": "LOG",
      "base": "2"}, "base must be"),
    ({"param_type": "FLOAT", "param_range": (0, 10), "num_samples": 3, "space_type": "log"},
     "a LOG range must be positive, got (0, 10)"),
    ({"param_type": "FLOAT", "param_range": (-1, 10), "num_samples": 3, "space_type": "LOG"},
     "a LOG range must be positive"),
    ({"param_type": "INTEGER", "param_range": (0.5, 0.7), "num_samples": 3},
     "an INTEGER param_range must hold an integer, but (0.5, 0.7) holds none"),
    ({"param_type": "INTEGER", "param_range": (2.1, 2.9)}, "must hold an integer"),
    ({"param_type": "FLOAT", "num_samples": 3}, "FLOAT needs 'param_range'"),
    ({"param_type": "FLOAT", "param_range": (float("-inf"), 1)}, "param_range must be finite"),
])
@pytest.mark.parametrize("algorithm", ["random", "tpe", "grid", "hyperband", "asha", "bohb",
                                       "multi_hyperband"])
def test_every_entry_is_checked_up_front_the_same_by_every_algorithm(entry, needle, algorithm):
    """Each mistake is the one SearchSpaceError naming the entry, raised by the
    constructor of every algorithm (sampling or grid) before the objective runs — never a
    silent linear sampling, a ZeroDivisionError or a value outside the range."""
    from ato.hyperopt import get_algorithm
    from ato.hyperopt.base import SearchSpaceError

    options = {"halving_rate": 0.5, "num_min_samples": 1} if algorithm == "hyperband" else {}
    with pytest.raises(SearchSpaceError) as info:
        get_algorithm(algorithm)(Scope(enable_override=True), {"w": entry}, progress=False,
                                 **options)
    assert str(info.value).startswith("search space 'w': ") and needle in str(info.value)


@pytest.mark.parametrize("algorithm", ["random", "tpe", "grid", "asha"])
def test_integers_stay_inside_a_range_with_fractional_ends(algorithm):
    """An INTEGER range such as (0.5, 2.5) yields only the integers it holds (1 and 2):
    rounding down or to the nearest never steps outside ``param_range``."""
    from ato.hyperopt import get_algorithm

    seen = []

    def objective(cfg):
        seen.append(cfg.x)
        return float(cfg.x)

    scope = Scope(enable_override=True)

    @scope.observe(default=True)
    def config(cfg):
        cfg.x = 1

    space = {"x": {"param_type": "INTEGER", "param_range": (0.5, 2.5), "num_samples": 3}}
    options = {"grid": {}, "asha": {"max_trials": 12}}.get(algorithm, {"n_trials": 12})
    get_algorithm(algorithm)(scope, space, progress=False, **options).main(objective)()
    assert seen and set(seen) <= {1, 2}


def test_torchrun_without_a_process_group_warns_that_every_rank_runs_every_trial(monkeypatch):
    from ato.hyperopt import get_algorithm

    monkeypatch.setenv("WORLD_SIZE", "2")
    search = get_algorithm("random")(Scope(enable_override=True), SPACE, n_trials=2,
                                     progress=False)
    with pytest.warns(RuntimeWarning, match=r"^random: this process is one of WORLD_SIZE=2 "
                                            r"\(torchrun\) but no torch.distributed process "
                                            r"group is initialised, so every rank runs every"):
        search.main(lambda cfg: 1.0)()
    monkeypatch.setenv("WORLD_SIZE", "1")
    import warnings

    with warnings.catch_warnings():
        warnings.simplefilter("error")
        search.main(lambda cfg: 1.0)()
