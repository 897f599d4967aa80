"""Built-in algorithms as plugins, third-party algorithms, tracked and resumed studies."""

import math

import pytest

from ato.adict import ADict
from ato.hyperopt import get_algorithm
from ato.hyperopt.algorithms import ASHA, GridSearch, MultiBracketHyperband, RandomSearch
from ato.hyperopt.base import GridSpaceMixIn, HyperOpt
from ato.plugins import hookimpl
from ato.plugins import manager as plugin_manager
from ato.scope import Scope

SPACE = ADict(lr=ADict(param_type="FLOAT", param_range=(1e-4, 1.0), num_samples=9, space_type="LOG"),
              depth=ADict(param_type="INTEGER", param_range=(1, 8), num_samples=8))


def objective(config):
    """Best at lr=0.01, depth=5; a larger budget removes a penalty."""
    budget = config.get("__budget__", 9)
    return -abs(math.log10(config.lr) + 2) - abs(config.depth - 5) / 10 - 1 / budget


class TestBuiltins:
    def test_registered_by_name(self):
        """Every built-in algorithm is found by its PLUGIN_NAME."""
        assert get_algorithm("hyperband").__name__ == "HyperBand"
        assert get_algorithm("asha") is ASHA and get_algorithm("random") is RandomSearch
        with pytest.raises(LookupError, match="no installed plugin provides 'cma-es'"):
            get_algorithm("cma-es")

    def test_grid_finds_the_optimum(self):
        """grid evaluates every point once at max_budget."""
        result = GridSearch(Scope(), SPACE, max_budget=9, progress=False).main(objective)()
        assert (result.config.lr, result.config.depth) == (pytest.approx(0.01), 5)
        assert result.trials == 72 and result.budget_used == 72 * 9

    def test_random_is_seeded(self):
        """random search is reproducible with a seed and samples inside the ranges."""
        runs = [RandomSearch(Scope(enable_override=True), SPACE, n_trials=30, seed=3,
                             progress=False).main(objective)() for _ in range(2)]
        assert (runs[0].config.lr, runs[0].config.depth) == (runs[1].config.lr, runs[1].config.depth)
        assert all(1e-4 <= c.lr <= 1 and 1 <= c.depth <= 8 for c in runs[0].logs)

    def test_tpe_beats_random_on_a_smooth_objective(self):
        """TPE concentrates its proposals where the objective is good."""
        space = ADict(lr=ADict(param_type="FLOAT", param_range=(1e-5, 1.0), space_type="LOG"))

        def f(config):
            return -(math.log10(config.lr) + 2.5) ** 2

        tpe = get_algorithm("tpe")(Scope(enable_override=True), space, n_trials=40, seed=1,
                                   progress=False).main(f)()
        late = [c.lr for c in tpe.logs[-15:]]
        assert tpe.metric > -0.01
        assert sum(10 ** -3.5 <= lr <= 10 ** -1.5 for lr in late) >= 10

    def test_bohb_is_multi_bracket_with_tpe(self):
        """bohb runs Hyperband's brackets within its budget, proposing with TPE."""
        bohb = get_algorithm("bohb")(Scope(enable_override=True), SPACE, max_budget=27,
                                     min_budget=1, eta=3, iterations=5, total_budget=600,
                                     seed=0, progress=False)
        result = bohb.main(objective)()
        assert result.budget_used <= 600 and type(bohb.sampler).__name__ == "TPESampler"

    def test_bohb_model_rules_follow_falkner(self):
        """The paper's rule (pool='largest'): the model is fit on the largest budget with
        d + 3 observations (2 parameters: 5); bohb draws a third of its proposals
        uniformly."""
        import random

        from ato.hyperopt.samplers import TPESampler

        bohb = get_algorithm("bohb")(Scope(enable_override=True), SPACE, max_budget=27,
                                     min_budget=1, eta=3, seed=0, progress=False)
        assert bohb.sampler.random_fraction == 1 / 3 and bohb.sampler.pool == "furthest"
        assert bohb.sampler.min_points == 10  # max(TPE's start-up, d + 3)
        sampler = TPESampler(SPACE, random.Random(0), "max", min_points=5)
        for i in range(20):  # budget 1: lr=1e-4 looks best (a misleading low budget)
            sampler.observe(ADict(lr=10 ** (-4 + i / 10), depth=1 + i % 8), 1, -i)
        assert sampler._model_data()[0][0]["lr"] == pytest.approx(1e-4)
        for i in range(4):  # budget 3: four are too few, the model stays on budget 1
            sampler.observe(ADict(lr=10 ** (-i / 2), depth=5), 3, -i)
        assert sampler._model_data()[0][0]["lr"] == pytest.approx(1e-4)
        sampler.observe(ADict(lr=0.01, depth=5), 3, 1.0)  # the fifth: budget 3 now
        good, bad = sampler._model_data()
        assert good[0]["lr"] == pytest.approx(0.01) and len(good) + len(bad) == 5
        # the default (the 'tpe' sampler) waits for max(n_startup=10, d + 2) observations
        assert TPESampler(SPACE, random.Random(0), "max").min_points == 10
        with pytest.raises(ValueError, match="pool must be 'largest' or 'furthest'"):
            TPESampler(SPACE, random.Random(0), "max", pool="highest")

    def test_furthest_pool_ranks_by_budget_reached_then_result(self):
        """pool='furthest': every configuration once, at the largest budget it reached;
        one promoted to 9 ranks above any stopped at 3, however good those looked."""
        import random

        from ato.hyperopt.samplers import TPESampler

        sampler = TPESampler(SPACE, random.Random(0), "max", min_points=4, pool="furthest",
                             gamma=0.25)
        configs = [ADict(lr=10 ** -(k / 2), depth=1 + k) for k in range(6)]
        for k, c in enumerate(configs):
            sampler.observe(c, 3, 10.0 - k)  # config 0 looks best at budget 3
        assert sampler._model_data()[0] == [{"lr": 1.0, "depth": 1},
                                            {"lr": pytest.approx(10 ** -0.5), "depth": 2}]
        sampler.observe(configs[4], 9, -5.0)  # promoted: it now outranks everyone
        sampler.observe(configs[5], 9, -6.0)
        good, bad = sampler._model_data()
        assert [g["depth"] for g in good] == [5, 6] and len(bad) == 4  # each config once
        assert TPESampler(SPACE, random.Random(0), "max", min_points=7,
                          pool="furthest")._model_data() is None

    def test_bohb_runs_each_iteration_least_aggressive_first(self):
        """bohb runs multi_hyperband's brackets, each iteration's in the other order."""
        options = dict(max_budget=27, min_budget=1, eta=3, progress=False)
        for extra in ({"iterations": 2}, {"iterations": 9, "total_budget": 27 * 20},
                      {"iterations": 9, "total_budget": 27 * 4}):
            hb = MultiBracketHyperband(Scope(enable_override=True), SPACE, **options, **extra).schedule()
            bohb = get_algorithm("bohb")(Scope(enable_override=True), SPACE, **options, **extra).schedule()
            assert sorted(bohb) == sorted(hb)
            if "total_budget" not in extra:
                assert bohb == [(4, 27), (6, 9), (12, 3), (27, 1)] * 2
        assert get_algorithm("bohb")(Scope(enable_override=True), SPACE, **options, iterations=1,
                                     total_budget=27 * 20).schedule()[0] == (4, 27)

    def test_multi_bracket_schedule(self):
        """Brackets follow Li et al.: (81,1) (34,3) (15,9) (8,27) (5,81) for R=81, eta=3."""
        hb = MultiBracketHyperband(Scope(), SPACE, max_budget=81, min_budget=1, eta=3)
        assert [(n, round(b)) for n, b in hb.brackets()] == [(81, 1), (34, 3), (15, 9), (8, 27), (5, 81)]
        result = hb.main(objective)()
        assert result.config.__budget__ == 81
        assert result.metric == max(c.__metric__ for c in result.logs if c.__budget__ == 81)

    @pytest.mark.parametrize("workers", [1, 4])
    def test_asha_respects_the_budget_and_promotes(self, workers):
        """ASHA stops at its total budget and promotes the best of each rung."""
        asha = ASHA(Scope(enable_override=True), SPACE, total_budget=300, min_budget=1,
                    max_budget=27, eta=3, seed=0, n_workers=workers, progress=False)
        result = asha.main(objective)()
        assert result.budget_used <= 300
        assert {c.__budget__ for c in result.logs} >= {1, 3, 9}
        assert result.config.__budget__ == max(c.__budget__ for c in result.logs)


class Exhaustive(GridSpaceMixIn, HyperOpt):
    """A third-party algorithm written as in SEED.md."""

    PLUGIN_NAME = "exhaustive"

    def main(self, func):
        configs = self.prepare_distributions(self.config, self.search_spaces)
        return lambda: max(((c, func(c)) for c in configs), key=lambda cm: cm[1])


class ExhaustivePlugin:
    @hookimpl
    def ato_register_search_algorithms(self):
        return Exhaustive


def test_third_party_algorithm_usable_by_name():
    """A search algorithm registered through the hook is usable by name."""
    pm = plugin_manager.plugin_manager()
    pm.register(ExhaustivePlugin(), name="exhaustive-test")
    plugin_manager._registries.clear()
    try:
        cls = get_algorithm("exhaustive")
        config, metric = cls(Scope(), SPACE).main(objective)()
        assert config.depth == 5
    finally:
        pm.unregister(name="exhaustive-test")
        plugin_manager._registries.clear()


class TestTrackedStudy:
    def test_trials_are_runs_and_resume_skips_them(self, tmp_path):
        """Each trial is a tagged run; the same study id resumes without re-running."""
        from ato.db_routers.sql.manager import SQLFinder, SQLLogger
        from ato.hyperopt.hyperband import HyperBand

        url = f"sqlite:///{tmp_path / 'study.db'}"
        tracker_config = ADict(experiment={"project_name": "search", "sql": {"db_path": url}})
        space = ADict(x=ADict(param_type="INTEGER", param_range=(0, 7), num_samples=8))
        calls = []

        def f(config):
            calls.append(config.x)
            if len(calls) == 10 and crash:
                raise KeyboardInterrupt  # killed half-way
            return -(config.x - 3) ** 2

        crash = True
        with pytest.raises(KeyboardInterrupt):
            HyperBand(Scope(), space, 0.5, 1, tracker=SQLLogger(tracker_config), study_id="s1",
                      progress=False).main(f)()
        assert len(calls) == 10
        crash = False
        calls.clear()
        result = HyperBand(Scope(enable_override=True), space, 0.5, 1,
                           tracker=SQLLogger(tracker_config), study_id="s1",
                           progress=False).main(f)()
        assert result.config.x == 3
        assert len(calls) == (8 + 4 + 2 + 1) - 9  # nine trials were already recorded
        finder = SQLFinder(tracker_config)
        runs = finder.find_runs("search", tags=["study:s1"])
        assert len(runs) == 15 and {r.status for r in runs} == {"completed"}
        assert sum("rung:0" in r.tags for r in runs) == 8
        assert 3 in {r.config.x for r in runs if "rung:2" in r.tags}


def test_asha_workers_each_get_their_own_config_and_scope_comes_back():
    """With n_workers > 1 every objective call receives its own trial's config (the one
    recorded in the logs), and scope.config is the scope's own afterwards."""
    import threading
    import time

    scope = Scope(enable_override=True)
    before = scope.build()
    seen, lock = [], threading.Lock()

    def f(config):
        time.sleep(0.002)  # let the trials overlap
        with lock:
            seen.append((config.lr, config.depth, config.__budget__))
        return objective(config)

    asha = ASHA(scope, SPACE, max_trials=60, min_budget=1, max_budget=9, eta=3, seed=1,
                n_workers=4, progress=False)
    result = asha.main(f)()
    logged = sorted((c.lr, c.depth, c.__budget__) for c in result.logs)
    assert sorted(seen) == logged and len(seen) == 60
    assert all(c.__metric__ == objective(c) for c in result.logs)
    assert scope.config is before and "__budget__" not in before


def test_asha_promotion_rule_is_li_et_al_in_process_and_shared():
    """Li et al. (MLSys 2020), Algorithm 2: from the highest rung down, a configuration in
    the top floor(n / eta) of the n *completed* trials of its rung that was not promoted
    yet goes up one rung; else a new configuration starts at the lowest. Running trials
    neither count nor get promoted; fewer than eta completed promote nobody. The
    in-process path and the shared-study path decide alike."""
    from ato.tracking.studies import TrialState

    asha = ASHA(Scope(enable_override=True), SPACE, max_trials=100, min_budget=1,
                max_budget=9, eta=3, seed=0, progress=False)
    asha._observed = set()  # what the shared path has fed its sampler
    values = [{"lr": 10 ** -(k / 4), "depth": 1 + k % 8} for k in range(12)]

    def shared(history):
        states = [TrialState(f"t{i}", i, state, {"values": values[index], "budget": str(
            (1, 3, 9)[rung]), "rung": rung, "index": index}, metric)
            for i, (rung, index, state, metric) in enumerate(history)]
        spec = asha._propose(states)[0].payload
        return spec["rung"], spec["index"]

    def in_process(history):
        rungs, promoted = [[] for _ in asha.budgets], set()
        started = sum(1 for rung, *_ in history if rung == 0)
        for rung, index, state, metric in history:
            if rung:
                promoted.add((rung - 1, index))
            if state == "completed":
                asha._record(rungs, rung, index, ADict(values[index]), metric)
        rung, index, _ = asha._next_job(rungs, promoted, started)
        return rung, index

    two = [(0, 0, "completed", 0.4), (0, 1, "completed", 0.9), (0, 2, "running", None)]
    five = [(0, i, "completed", m) for i, m in enumerate([0.1, 0.5, 0.3, 0.2, 0.4])]
    cases = [
        (two, (0, 3)),  # two completed: nobody is in the top floor(2/3) = 0
        (five + [(0, 5, "running", None)], (1, 1)),  # top 1 of 5 completed: index 1
        (five + [(1, 1, "running", None)], (0, 5)),  # already promoted: a new one
        # six completed: the top 2 are 1 (promoted) and 4, which goes up
        (five + [(0, 5, "completed", 0.05), (1, 1, "completed", 0.7)], (1, 4)),
        # a later, better result displaces it: the top 2 are now 1 and 5
        (five + [(0, 5, "completed", 0.45), (1, 1, "completed", 0.7)], (1, 5)),
        # three completed at rung 1: the best of them goes to rung 2 before anything else
        ([(0, i, "completed", i / 10) for i in range(9)]
         + [(1, i, "completed", m) for i, m in ((8, 0.2), (7, 0.6), (6, 0.1))], (2, 7)),
    ]
    for history, expected in cases:
        assert shared(history) == expected, history
        assert in_process(history) == expected, history
