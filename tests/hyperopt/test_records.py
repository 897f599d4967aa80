"""Per-trial search records: the tags every trial run carries (docs/hyperopt.md, "Trial
records"), what the dashboard derives from them, and failed trials."""

from __future__ import annotations

import math
from collections import defaultdict

import pytest

from ato.adict import ADict
from ato.hyperopt.algorithms import ASHA, GridSearch, MultiBracketHyperband
from ato.hyperopt.base import HyperOpt
from ato.hyperopt.hyperband import HyperBand
from ato.hyperopt.study import config_hash
from ato.scope import Scope

pytest.importorskip("sqlalchemy")

SPACE = ADict(x=ADict(param_type="FLOAT", param_range=(0.0, 1.0), num_samples=4),
              k=ADict(param_type="INTEGER", param_range=(1, 4), num_samples=4))


def objective(config):
    budget = config.get("__budget__", 1)
    return -(config.x - 0.6) ** 2 - abs(config.k - 3) / 10 - 1 / (1 + budget)


@pytest.fixture
def store(tmp_path):
    """(logger, finder) of a fresh SQLite file."""
    from ato.db_routers.sql.manager import SQLFinder, SQLLogger

    config = ADict(experiment={"project_name": "search",
                               "sql": {"db_path": f"sqlite:///{tmp_path / 'runs.db'}"}})
    return SQLLogger(config), SQLFinder(config)


def tag_map(run) -> dict:
    """``{'study': 's', 'rung': '0', ...}`` from a run's tags (``final`` → True)."""
    out = {}
    for tag in run.tags:
        name, sep, value = str(tag).partition(":")
        out[name] = value if sep else True
    return out


def study_runs(finder, study):
    runs = finder.find_runs(tags=[f"study:{study}"])
    return runs, [tag_map(r) for r in runs]


def check_required_tags(finder, runs, tags, study, algorithm, names):
    """Every run has the required tags, the config hash of its own config and the
    objective it returned."""
    for run, t in zip(runs, tags):
        assert {"study", "algorithm", "trial", "bracket", "rung", "budget", "config",
                "seed"} <= set(t)
        assert t["study"] == study and t["algorithm"] == algorithm
        assert len(t["trial"]) == 16 and len(t["config"]) == 16
        int(t["trial"], 16), int(t["config"], 16)
        assert t["config"] == config_hash(run.config, names)
        for metric in finder.get_metric_history(run.id, "objective"):
            assert metric.step == int(t["rung"])
    assert len({t["trial"] for t in tags}) == len(tags)  # one key per trial


def promoted(tags) -> set:
    """(bracket, rung, config hash) of every promoted trial, derived as the dashboard does:
    the same study, bracket and config hash exist at rung r + 1."""
    present = {(t["bracket"], int(t["rung"]), t["config"]) for t in tags}
    return {(b, r, h) for b, r, h in present if (b, r + 1, h) in present}


class TestHyperBandRecords:
    def test_tags_budgets_and_promotion(self, store):
        """Every HyperBand trial is a run with study/trial/bracket 0/rung = generation/
        exact budget/config hash/objective; promotions derive from the tags."""
        logger, finder = store
        hb = HyperBand(Scope(), SPACE, 0.5, 1, tracker=logger, study_id="hb", max_budget=8,
                       progress=False, seed=5)
        result = hb.main(objective)()
        runs, tags = study_runs(finder, "hb")
        assert len(runs) == 16 + 8 + 4 + 2 + 1
        check_required_tags(finder, runs, tags, "hb", "hyperband", ["x", "k"])
        assert {t["bracket"] for t in tags} == {"0"} and {t["seed"] for t in tags} == {"5"}
        by_rung = defaultdict(list)
        for run, t in zip(runs, tags):
            if t.get("final") is not True:
                by_rung[int(t["rung"])].append((run, t))
        assert {r: {t["budget"] for _, t in rs} for r, rs in by_rung.items()} == {
            0: {"1"}, 1: {"2"}, 2: {"4"}, 3: {"8"}}
        assert [t for t in tags if t.get("final") is True] == [tags[-1]]
        assert (tags[-1]["budget"], tags[-1]["rung"]) == ("8", "3")
        # promotion: the survivors of generation g are exactly the configs at g + 1
        for g, log in enumerate(result.logs[:-2]):
            survivors = {config_hash(c, ["x", "k"]) for c in log[:len(log) // 2]}
            assert {h for b, r, h in promoted(tags) if r == g} == survivors
        # the objective of each run is what the objective returned
        for run, t in zip(runs, tags):
            (value,) = [m.value for m in finder.get_metric_history(run.id, "objective")]
            assert value == pytest.approx(objective(run.config))
            assert run.config.__budget__ == int(t["budget"])

    def test_budget_is_a_share_of_one_without_max_budget(self, store):
        """Without max_budget the objective gets no __budget__ and the tags give each
        generation's exact share of the final budget."""
        logger, finder = store
        seen = []
        HyperBand(Scope(), SPACE, 0.5, 1, tracker=logger, study_id="hb1", progress=False).main(
            lambda c: seen.append("__budget__" in c) or objective(c))()
        assert not any(seen)
        _, tags = study_runs(finder, "hb1")
        assert [t["budget"] for t in tags if t["rung"] == "0"][0] == "0.125"
        assert tags[-1]["budget"] == "1"


class TestMultiBracketRecords:
    def test_brackets_rungs_and_promotion(self, store):
        """Brackets are numbered in the order they run, across iterations; rungs restart
        at 0 in each bracket; promotion keeps the top 1/eta of each rung."""
        logger, finder = store
        hb = MultiBracketHyperband(Scope(), SPACE, max_budget=9, min_budget=1, eta=3,
                                   iterations=2, tracker=logger, study_id="mb", seed=1,
                                   progress=False)
        result = hb.main(objective)()
        runs, tags = study_runs(finder, "mb")
        assert len(runs) == result.trials
        check_required_tags(finder, runs, tags, "mb", "multi_hyperband", ["x", "k"])
        assert sorted({int(t["bracket"]) for t in tags}) == list(range(6))
        for b in range(6):
            first = [t for t in tags if int(t["bracket"]) == b and t["rung"] == "0"]
            assert {t["budget"] for t in first} == {("1", "3", "9")[b % 3]}
        # within a bracket, rung r + 1 holds the best floor(n / 3) of rung r
        for b in range(6):
            for r in (0, 1):
                rung = [(run, t) for run, t in zip(runs, tags)
                        if int(t["bracket"]) == b and int(t["rung"]) == r]
                if not any(int(t["bracket"]) == b and int(t["rung"]) == r + 1 for t in tags):
                    assert not {h for bb, rr, h in promoted(tags) if bb == str(b) and rr == r}
                    continue
                rung.sort(key=lambda rt: -objective(rt[0].config))
                best = {t["config"] for _, t in rung[:len(rung) // 3]}
                assert {h for bb, rr, h in promoted(tags) if bb == str(b) and rr == r} == best

    def test_exact_budget_tags(self, store):
        """(0.1, 8.1, 3): the rungs are recorded 0.1, 0.3, 0.9, 2.7, 8.1 exactly."""
        logger, finder = store
        ASHA(Scope(), SPACE, min_budget=0.1, max_budget=8.1, eta=3, max_trials=200,
             tracker=logger, study_id="asha", seed=2, progress=False).main(objective)()
        runs, tags = study_runs(finder, "asha")
        assert {t["bracket"] for t in tags} == {"0"}
        assert {(t["rung"], t["budget"]) for t in tags} == {
            ("0", "0.1"), ("1", "0.3"), ("2", "0.9"), ("3", "2.7"), ("4", "8.1")}
        assert {r.config.__budget__ for r in runs} == {0.1, 0.3, 0.9, 2.7, 8.1}


class ThirdParty(HyperOpt):
    """An algorithm that knows nothing about tracking: it only calls evaluate()."""

    PLUGIN_NAME = "third_party"

    def main(self, func):
        def launch():
            scores = []
            for x in (0.0, 0.5, 1.0):
                config = self.config.clone()
                config.x, config.k = x, 3
                scores.append((self.evaluate(func, config), config))
            return max(scores, key=lambda mc: mc[0])

        return launch


def test_a_third_party_algorithm_is_recorded_through_the_base(store):
    """evaluate() alone records each trial with bracket 0, rung 0, budget max_budget."""
    logger, finder = store
    ThirdParty(Scope(), SPACE, tracker=logger, study_id="tp", max_budget=5).main(objective)()
    runs, tags = study_runs(finder, "tp")
    check_required_tags(finder, runs, tags, "tp", "third_party", ["x", "k"])
    assert [(t["bracket"], t["rung"], t["budget"]) for t in tags] == [("0", "0", "5")] * 3
    assert [r.config.x for r in runs] == [0.0, 0.5, 1.0]


def test_config_hash_ignores_the_budget_and_the_number_type():
    """One configuration has one hash on every rung; 2 and 2.0 are one value."""
    a = ADict(x=0.5, k=2, __budget__=1, __num_halved__=0)
    b = ADict(x=0.5, k=2.0, __budget__=9, __num_halved__=2, other="ignored")
    assert config_hash(a, ["x", "k"]) == config_hash(b, ["x", "k"])
    assert config_hash(a, ["x", "k"]) != config_hash(ADict(x=0.5, k=3), ["x", "k"])
    nested = ADict(opt={"lr": 0.1})
    assert config_hash(nested, ["opt.lr"]) == config_hash(ADict(opt={"lr": 0.1, "m": 1}), ["opt.lr"])


class TestFailedTrials:
    def test_a_raising_objective_is_recorded_failed_and_propagates(self, store):
        """The trial that raised is a `failed` run without an objective; the error is the
        objective's own; earlier trials are completed."""
        logger, finder = store
        calls = []

        def f(config):
            calls.append(1)
            if len(calls) == 3:
                raise ValueError("diverged")
            return objective(config)

        scope = Scope()
        before = scope.build()
        search = GridSearch(scope, SPACE, tracker=logger, progress=False)  # alone: no study_id
        with pytest.raises(ValueError, match="diverged"):
            search.main(f)()
        assert scope.config is before
        runs = finder.find_runs(tags=[f"study:{search.study_id}"])
        assert [r.status for r in runs] == ["completed", "completed", "failed"]
        assert finder.get_metric_history(runs[-1].id, "objective") == []

    def test_catch_lets_the_search_go_on(self, store):
        """With catch=(ValueError,) a failing trial scores NaN, is recorded failed, and
        the search still returns the best successful trial."""
        logger, finder = store

        def f(config):
            if config.k == 3:
                raise ValueError("k=3 is broken")
            return objective(config)

        result = GridSearch(Scope(), SPACE, tracker=logger, study_id="c", catch=ValueError,
                            progress=False).main(f)()
        assert result.config.k in (2, 4) and not math.isnan(result.metric)
        runs = finder.find_runs(tags=["study:c"])
        assert sum(r.status == "failed" for r in runs) == 4 and len(runs) == 16
        assert all(r.config.k == 3 for r in runs if r.status == "failed")


def test_a_failed_trial_records_its_error(tmp_path):
    """A trial whose objective raises is a failed run that says why (caught or not)."""
    from ato.adict import ADict
    from ato.db_routers.sql.manager import SQLLogger
    from ato.hyperopt import get_algorithm
    from ato.scope import Scope
    from ato.tracking import open_finder

    url = f"sqlite:///{tmp_path}/t.db"
    cfg = ADict(experiment=ADict(project_name="p", sql=ADict(db_path=url)))
    scope = Scope()

    @scope.observe(default=True)
    def config(c):
        c.x = 1

    space = {"x": {"param_type": "INTEGER", "param_range": (1, 3), "num_samples": 3}}

    def objective(c):
        if c.x == 2:
            raise ValueError("x too big")
        return float(c.x)

    search = get_algorithm("grid")(scope, space, tracker=SQLLogger(cfg), study_id="s",
                                   catch=(ValueError,))
    search.main(objective)()
    failed = open_finder(url).find_runs("p", status="failed")
    # a shared study (study_id and an SQL tracker): the summary, then the traceback
    (error,) = [r.error for r in failed]
    summary, _, trace = error.partition("\n\nTraceback (most recent call last):\n")
    assert summary == "ValueError: x too big"
    assert 'raise ValueError("x too big")' in trace and trace.endswith("ValueError: x too big")
