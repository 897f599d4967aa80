"""Built-in search algorithms beyond the seed's HyperBand, registered through
``ato_register_search_algorithms`` exactly like a third-party algorithm:

- ``grid``: every grid point at the full budget.
- ``random``: ``n_trials`` points sampled from the (continuous) search space.
- ``tpe``: ``n_trials`` points proposed one after the other by TPE.
- ``multi_hyperband``: Hyperband with several brackets (Li et al., JMLR 2018).
- ``bohb``: the same brackets, new configurations proposed by TPE (Falkner et al., ICML 2018).
- ``asha``: asynchronous successive halving (Li et al., MLSys 2020): workers never wait
  for a generation to fill.

Sampling algorithms take ``sampler='random'`` (default) or ``sampler='tpe'``
(:mod:`ato.hyperopt.samplers`).

Budget-aware algorithms give the objective ``config.__budget__`` (resource units, e.g.
epochs, between ``min_budget`` and ``max_budget``) and ``config.__num_halved__`` (the
rung).  Every result is an ADict with ``config``, ``metric``, ``logs`` (one entry per
trial), ``trials`` and ``budget_used``.
"""

from __future__ import annotations

import math
import random
import threading
from concurrent.futures import FIRST_COMPLETED, ThreadPoolExecutor, wait

from ato.adict import ADict
from ato.hyperopt.base import GridSpaceMixIn, HyperOpt, better
from ato.hyperopt.progress import Progress
from ato.hyperopt.samplers import make_sampler
from ato.hyperopt.study import TrialRecorder

__all__ = ["GridSearch", "RandomSearch", "TPESearch", "MultiBracketHyperband", "BOHB", "ASHA"]


class _BudgetSearch(HyperOpt):
    """Shared machinery: evaluation with budgets, trial logs, tracker, progress."""

    def __init__(self, scope, search_spaces, tracker=None, mode: str = "max",
                 max_budget: float = 1, min_budget: float = 1, eta: float = 3,
                 seed: int | None = None, study_id: str | None = None,
                 progress: bool | None = None, sampler: str = "random"):
        super().__init__(scope, search_spaces, tracker, mode, study_id)
        if not 0 < min_budget <= max_budget:
            raise ValueError(f"need 0 < min_budget <= max_budget, got {min_budget}, {max_budget}")
        if eta <= 1:
            raise ValueError(f"eta must be > 1, got {eta}")
        self.max_budget, self.min_budget, self.eta = max_budget, min_budget, eta
        self.rng = random.Random(seed)
        self.sampler = make_sampler(sampler, search_spaces, self.rng, mode)
        self.progress = progress
        self.key = better(mode)
        self._lock = threading.Lock()

    def main(self, func):
        """Decorate the objective; calling the result runs the search."""
        return self.launcher(func)

    def _start(self):
        self.logs: list[ADict] = []
        self.budget_used = 0.0
        self.recorder = TrialRecorder(self.tracker, self.get_hyperopt_id(),
                                      list(self.search_spaces.keys()))
        self.reporter = Progress(self.progress, label=self.PLUGIN_NAME)

    def trial(self, func, config, budget, rung, args, kwargs):
        config = config.clone()
        config["__budget__"] = budget
        config["__num_halved__"] = rung
        with self._lock:
            metric = self.recorder.cached(config, budget)
        if metric is None:
            metric = self.evaluate(func, config, *args, **kwargs)
            with self._lock:
                self.recorder.record(config, budget, rung, metric)
        with self._lock:
            self.sampler.observe(config, budget, metric)
            self.budget_used += budget
            config["__metric__"] = metric
            self.logs.append(config)
        return metric

    def _full_budget(self, func, configs, total: int, args, kwargs) -> ADict:
        """Evaluate every config of ``configs`` once at ``max_budget``."""
        self.reporter.start(f"{total} configs", total)
        for config in configs:
            self.trial(func, config, self.max_budget, 0, args, kwargs)
            self.reporter.step()
        result = self._result()
        self.reporter.summary(f"best {Progress.format(result.metric)} of {total}")
        return result

    def _result(self, candidates=None) -> ADict:
        pool = candidates if candidates is not None else self.logs
        top_budget = max(c["__budget__"] for c in pool)
        finalists = [c for c in pool if c["__budget__"] == top_budget]
        best = min(finalists, key=lambda c: self.key(c["__metric__"]))
        return ADict(config=best, metric=best["__metric__"], logs=self.logs,
                     trials=len(self.logs), budget_used=self.budget_used)


class GridSearch(GridSpaceMixIn, _BudgetSearch):
    """Every grid point, evaluated once at ``max_budget``."""

    PLUGIN_NAME = "grid"

    def run(self, func, *args, **kwargs) -> ADict:
        self._start()
        grid = self.prepare_distributions(self.config, self.search_spaces)
        return self._full_budget(func, grid, len(grid), args, kwargs)


class RandomSearch(_BudgetSearch):
    """``n_trials`` configs sampled from the search space, each at ``max_budget``."""

    PLUGIN_NAME = "random"

    def __init__(self, scope, search_spaces, n_trials: int = 20, **options):
        super().__init__(scope, search_spaces, **options)
        self.n_trials = n_trials

    def run(self, func, *args, **kwargs) -> ADict:
        self._start()
        # A generator: each proposal is drawn after the previous trial was observed.
        proposals = (self.sampler.sample(self.config) for _ in range(self.n_trials))
        return self._full_budget(func, proposals, self.n_trials, args, kwargs)


class TPESearch(RandomSearch):
    """Sequential model-based search: ``n_trials`` configurations proposed by TPE
    (Bergstra et al., NeurIPS 2011), each at ``max_budget``."""

    PLUGIN_NAME = "tpe"

    def __init__(self, scope, search_spaces, n_trials: int = 20, **options):
        options.setdefault("sampler", "tpe")
        super().__init__(scope, search_spaces, n_trials, **options)


class MultiBracketHyperband(_BudgetSearch):
    """Hyperband (Li et al. 2018): brackets of successive halving that trade the number of
    configurations against the budget each gets, repeated ``iterations`` times (or until
    the next bracket would exceed ``total_budget``)."""

    PLUGIN_NAME = "multi_hyperband"

    def __init__(self, scope, search_spaces, iterations: int = 1,
                 total_budget: float | None = None, **options):
        super().__init__(scope, search_spaces, **options)
        self.iterations = iterations
        self.total_budget = total_budget
        self.s_max = int(math.floor(math.log(self.max_budget / self.min_budget, self.eta) + 1e-9))

    def brackets(self) -> list[tuple[int, float]]:
        """``(n configurations, initial budget)`` of each bracket, most exploratory first."""
        out = []
        for s in range(self.s_max, -1, -1):
            n = int(math.ceil((self.s_max + 1) / (s + 1) * self.eta ** s))
            out.append((n, self.max_budget * self.eta ** (-s)))
        return out

    def bracket_cost(self, n: int, budget: float) -> float:
        """Resource units one bracket spends."""
        cost = 0.0
        while n and budget <= self.max_budget * (1 + 1e-9):
            cost += n * budget
            n, budget = int(n / self.eta), budget * self.eta
        return cost

    def run(self, func, *args, **kwargs) -> ADict:
        self._start()
        finals = []
        for _ in range(self.iterations):
            for b, (n, budget) in enumerate(self.brackets()):
                if (self.total_budget is not None
                        and self.budget_used + self.bracket_cost(n, budget) > self.total_budget):
                    continue
                configs = [self.sampler.sample(self.config) for _ in range(n)]
                rung = 0
                while configs:
                    self.reporter.start(f"bracket {b} rung {rung}: {len(configs)} configs at "
                                        f"budget {budget:g}", len(configs))
                    scored = []
                    for c in configs:
                        scored.append((self.trial(func, c, budget, rung, args, kwargs), c))
                        self.reporter.step()
                    scored.sort(key=lambda mc: self.key(mc[0]))
                    keep = int(len(scored) / self.eta)
                    if budget * self.eta > self.max_budget * (1 + 1e-9) or keep == 0:
                        break
                    configs = [c for _, c in scored[:keep]]
                    budget *= self.eta
                    rung += 1
            finals = self.logs
        result = self._result(finals)
        self.reporter.summary(f"best {Progress.format(result.metric)} after {result.trials} trials")
        return result


class BOHB(MultiBracketHyperband):
    """Hyperband's brackets with new configurations proposed by TPE, fit on the largest
    budget that has enough observations (Falkner et al., ICML 2018)."""

    PLUGIN_NAME = "bohb"

    def __init__(self, scope, search_spaces, **options):
        options.setdefault("sampler", "tpe")
        super().__init__(scope, search_spaces, **options)


class ASHA(_BudgetSearch):
    """Asynchronous successive halving: a free worker promotes a configuration that is in
    the top ``1/eta`` of its rung, or else starts a new one at ``min_budget``.

    Stops after ``max_trials`` trials or ``total_budget`` resource units.  ``n_workers``
    evaluations run at once (threads: use it for objectives that release the GIL).
    """

    PLUGIN_NAME = "asha"

    def __init__(self, scope, search_spaces, max_trials: int | None = None,
                 total_budget: float | None = None, n_workers: int = 1, **options):
        super().__init__(scope, search_spaces, **options)
        if max_trials is None and total_budget is None:
            raise ValueError("ASHA needs max_trials or total_budget")
        self.max_trials, self.total_budget, self.n_workers = max_trials, total_budget, n_workers
        self.budgets = [self.min_budget]
        while self.budgets[-1] * self.eta <= self.max_budget * (1 + 1e-9):
            self.budgets.append(self.budgets[-1] * self.eta)

    def _next_job(self, rungs, promoted, started):
        """The next trial: the best unpromoted configuration in the top 1/eta of the
        highest rung that has one, or a new configuration at the lowest rung."""
        for k in range(len(self.budgets) - 2, -1, -1):
            rung = rungs[k]  # kept sorted best first
            for _key, index, config in rung[:len(rung) // int(self.eta)]:
                if (k, index) not in promoted:
                    promoted.add((k, index))
                    return k + 1, index, config
        return 0, started, self.sampler.sample(self.config)

    def _exhausted(self, started_trials, committed) -> bool:
        if self.max_trials is not None and started_trials >= self.max_trials:
            return True
        return self.total_budget is not None and committed >= self.total_budget

    def _plan(self, rungs, promoted, state):
        """Reserve the next job, or ``None`` when the trial or budget limit is reached."""
        if self._exhausted(state["trials"], state["committed"]):
            return None
        rung, index, config = self._next_job(rungs, promoted, state["started"])
        budget = self.budgets[rung]
        if self.total_budget is not None and state["committed"] + budget > self.total_budget:
            if rung > 0:
                promoted.discard((rung - 1, index))
            state["committed"] = self.total_budget  # nothing else fits
            return None
        if rung == 0:
            state["started"] += 1
        state["committed"] += budget
        state["trials"] += 1
        return rung, index, config, budget

    def _record(self, rungs, rung, index, config, metric) -> None:
        import bisect

        entry = (self.key(metric), index, config)
        bisect.insort(rungs[rung], entry, key=lambda e: (e[0], e[1]))

    def run(self, func, *args, **kwargs) -> ADict:
        self._start()
        rungs = [[] for _ in self.budgets]
        promoted: set = set()
        state = {"started": 0, "trials": 0, "committed": 0.0}
        total = self.max_trials or int(self.total_budget / self.min_budget)
        self.reporter.start(f"up to {total} trials", total)
        if self.n_workers == 1:
            while (job := self._plan(rungs, promoted, state)) is not None:
                rung, index, config, budget = job
                metric = self.trial(func, config, budget, rung, args, kwargs)
                self._record(rungs, rung, index, config, metric)
                self.reporter.step()
        else:
            with ThreadPoolExecutor(max_workers=self.n_workers) as pool:
                running = {}
                while True:
                    while len(running) < self.n_workers:
                        job = self._plan(rungs, promoted, state)
                        if job is None:
                            break
                        rung, index, config, budget = job
                        future = pool.submit(self.trial, func, config, budget, rung, args, kwargs)
                        running[future] = (rung, index, config)
                    if not running:
                        break
                    finished, _ = wait(running, return_when=FIRST_COMPLETED)
                    for future in finished:
                        rung, index, config = running.pop(future)
                        self._record(rungs, rung, index, config, future.result())
                        self.reporter.step()
        result = self._result()
        self.reporter.summary(f"best {Progress.format(result.metric)} after {result.trials} trials")
        return result
