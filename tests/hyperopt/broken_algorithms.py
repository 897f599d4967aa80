"""Algorithms with one fault each, to prove that ato.hyperopt.conformance fails them."""

from __future__ import annotations

import random

from ato.adict import ADict
from ato.hyperopt.base import GridSpaceMixIn, HyperOpt, better


class _Sampling(HyperOpt):
    """A correct little random search: n_trials points at max_budget."""

    PLUGIN_NAME = "sampling"
    CONFORMANCE_OPTIONS = {"n_trials": 6, "max_budget": 9}

    def __init__(self, scope, search_spaces, n_trials: int = 6, **options):
        super().__init__(scope, search_spaces, **options)
        self.n_trials = n_trials

    def draw(self, rng):
        config = self.config.clone()
        config.x = rng.choice([0.0, 0.25, 0.5, 0.75, 1.0])
        config.k = rng.choice([1, 2, 3, 4])
        config.c = rng.choice(["a", "b"])
        config.__budget__ = self.max_budget
        return config

    def evaluate_one(self, func, config):
        return self.evaluate(func, config)

    def main(self, func):
        def launch():
            rng = self.rng
            scored = []
            for _ in range(self.n_trials):
                config = self.draw(rng)
                config.__metric__ = self.evaluate_one(func, config)
                scored.append(config)
            best = min(scored, key=lambda c: better(self.mode)(c.__metric__))
            return ADict(config=best, metric=best.__metric__)

        return launch


class OverBudget(_Sampling):
    """Hands the objective one more than max_budget."""

    def draw(self, rng):
        config = super().draw(rng)
        config.__budget__ = int(self.max_budget) + 1
        return config


class LeaksScope(_Sampling):
    """Leaves the last candidate in scope.config."""

    def evaluate_one(self, func, config):
        metric = super().evaluate_one(func, config)
        self.scope.config = config
        return metric


class Unseeded(_Sampling):
    """Draws from the global random module instead of self.rng."""

    def main(self, func):
        self.__dict__["_draw_rng"] = random.Random()
        return super().main(func)

    def draw(self, rng):
        return super().draw(self.__dict__["_draw_rng"])


class SwallowsErrors(_Sampling):
    """Turns every objective error into a bad score."""

    def evaluate_one(self, func, config):
        try:
            return super().evaluate_one(func, config)
        except ValueError:
            return float("-inf")


class IgnoresMode(GridSpaceMixIn, HyperOpt):
    """Always maximises."""

    PLUGIN_NAME = "ignores_mode"

    def main(self, func):
        def launch():
            grid = self.prepare_distributions(self.config, self.search_spaces)
            scored = [(self.evaluate(func, c), c) for c in grid[:8]]
            metric, config = max(scored, key=lambda mc: mc[0])
            return ADict(config=config, metric=metric)

        return launch


class ReturnsATuple(_Sampling):
    """Returns (config, metric) instead of a result with config and metric."""

    def main(self, func):
        launch = super().main(func)
        return lambda: tuple(launch().values())
