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
rung).  The multi-fidelity ones (``multi_hyperband``, ``bohb``, ``asha``) also give
``__trial__``, ``__resume_budget__`` and ``__checkpoint_dir__`` (:mod:`ato.hyperopt.trial`)
and charge a promoted configuration only the increment (promoted from 3 to 9: 6).  Every
result is an ADict with ``config``, ``metric``, ``logs`` (one entry per trial), ``trials``
and ``budget_used``.
"""

from __future__ import annotations

import dataclasses
import math
import threading
from concurrent.futures import FIRST_COMPLETED, ThreadPoolExecutor, wait
from fractions import Fraction

from ato.adict import ADict
from ato.hyperopt import budgets
from ato.hyperopt.base import (
    GridSpaceMixIn,
    HyperOpt,
    SearchOptionError,
    TrialRequest,
    better,
    budget_option,
    succeeded,
)
from ato.hyperopt.progress import Progress
from ato.hyperopt.samplers import SAMPLERS, make_sampler

__all__ = ["GridSearch", "RandomSearch", "TPESearch", "MultiBracketHyperband", "BOHB", "ASHA"]


class _BudgetSearch(HyperOpt):
    """Shared machinery: trials at exact budgets, trial logs, progress."""

    def __init__(self, scope, search_spaces, tracker=None, mode: str = "max",
                 sampler: str = "random", **options):
        super().__init__(scope, search_spaces, tracker, mode, **options)
        if sampler not in SAMPLERS:
            raise SearchOptionError(f"{self.algorithm_name()}: sampler must be one of "
                                    f"{', '.join(sorted(SAMPLERS))}, not {sampler!r}")
        self.sampler = make_sampler(sampler, search_spaces, self.rng, mode)
        if self.MULTI_FIDELITY and hasattr(self.sampler, "split"):
            # cheap low-budget results make the pool grow to hundreds: a good set of
            # ceil(0.25 sqrt(n)) keeps l(x) on the best few (TPESampler's 'sqrt' split)
            self.sampler.split, self.sampler.gamma = "sqrt", 0.25
        self.key = better(mode)
        self._lock = threading.Lock()

    def main(self, func):
        """Decorate the objective; calling the result runs the search."""
        return self.launcher(func)

    def _start(self):
        self.logs: list[ADict] = []
        self._exact_budgets: list[Fraction] = []  # parallel to logs
        self._budget_used = Fraction(0)
        self.reporter = Progress(self.progress, label=self.PLUGIN_NAME)

    @property
    def budget_used(self) -> int | float:
        """Resource units spent so far (``budgets.plain`` of the exact sum)."""
        return budgets.plain(self._budget_used)

    def _trial(self, func, config, budget: Fraction, rung: int, args, kwargs,
               bracket: int = 0):
        config = config.clone()
        config["__budget__"] = budgets.plain(budget)
        config["__num_halved__"] = rung
        metric = self.evaluate_trial(func, config, args, kwargs, budget=budget, rung=rung,
                                     bracket=bracket)
        with self._lock:
            self.sampler.observe(config, budget, metric)
            # A continued configuration costs only what it adds (ato.hyperopt.trial).
            self._budget_used += self.increment(config, budget)
            config["__metric__"] = metric
            self.logs.append(config)
            self._exact_budgets.append(budget)
        return metric

    def _batch(self, func, jobs, args, kwargs) -> list:
        """Evaluate ``jobs`` — ``(config, budget, rung, bracket)`` — as one batch
        (:meth:`evaluate_batch`: divided between workers in a shared study); the results
        are observed and logged in the order of ``jobs``, so a fixed seed gives the same
        decisions however the trials were scheduled."""
        configs, requests = [], []
        for config, budget, rung, bracket in jobs:
            config = config.clone()
            config["__budget__"] = budgets.plain(budget)
            config["__num_halved__"] = rung
            configs.append(config)
            requests.append(TrialRequest(config, budget, rung, bracket))
        metrics = self.evaluate_batch(func, requests, args, kwargs)
        with self._lock:
            for config, request, metric in zip(configs, requests, metrics):
                self.sampler.observe(config, request.budget, metric)
                self._budget_used += self.increment(config, request.budget)
                config["__metric__"] = metric
                self.logs.append(config)
                self._exact_budgets.append(request.budget)
        self.reporter.step(len(jobs))
        return metrics

    def _full_budget(self, func, propose, total: int, batch_size: int, args, kwargs) -> ADict:
        """Evaluate ``total`` configs at ``max_budget``, in batches of ``batch_size``;
        ``propose()`` gives the next config (called after the previous batch was
        observed)."""
        self.reporter.start(f"{total} configs", total)
        done = 0
        while done < total:
            n = min(batch_size, total - done)
            self._batch(func, [(propose(), self.max_budget, 0, 0) for _ in range(n)], args,
                        kwargs)
            done += n
        result = self._result()
        self.reporter.summary(f"best {Progress.format(result.metric)} of {total}")
        return result

    def _result(self) -> ADict:
        """The best trial among all trials at the largest budget reached (compared
        exactly, whatever bracket or rung they ran in)."""
        top = max(self._exact_budgets)
        finalists = [c for c, b in zip(self.logs, self._exact_budgets) if b == top]
        best = min(finalists, key=lambda c: self.key(c["__metric__"]))
        return ADict(config=best, metric=best["__metric__"], logs=self.logs,
                     trials=len(self.logs), budget_used=self.budget_used)


class GridSearch(GridSpaceMixIn, _BudgetSearch):
    """Every grid point, evaluated once at ``max_budget``."""

    PLUGIN_NAME = "grid"
    CONFORMANCE_OPTIONS = {"max_budget": 9}

    def run(self, func, *args, **kwargs) -> ADict:
        self._start()
        grid = iter(self.prepare_distributions(self.config, self.search_spaces))
        size = self.grid_size(self.search_spaces)
        return self._full_budget(func, lambda: next(grid), size, size, args, kwargs)


class RandomSearch(_BudgetSearch):
    """``n_trials`` configs sampled from the search space, each at ``max_budget``.

    ``batch_size``: how many proposals are drawn before their results are observed — the
    trials that may run at once (on an executor, or by the workers of a shared study).
    Default: all ``n_trials`` for the uniform sampler (which learns nothing); for
    ``sampler='tpe'`` the executor's ``slots`` (1 without an executor). The proposals depend only on the seed and the results of earlier
    batches, never on which trial finished first."""

    PLUGIN_NAME = "random"
    CONFORMANCE_OPTIONS = {"n_trials": 12, "max_budget": 9}
    EXTENSIBLE_OPTIONS = ("n_trials",)

    def __init__(self, scope, search_spaces, n_trials: int = 20, batch_size: int | None = None,
                 **options):
        super().__init__(scope, search_spaces, **options)
        if isinstance(n_trials, bool) or not isinstance(n_trials, int) or n_trials < 1:
            raise SearchOptionError(f"{self.PLUGIN_NAME}: n_trials must be an int >= 1, "
                                    f"got {n_trials!r}")
        if batch_size is not None and (isinstance(batch_size, bool)
                                       or not isinstance(batch_size, int) or batch_size < 1):
            raise SearchOptionError(f"{self.PLUGIN_NAME}: batch_size must be an int >= 1, "
                                    f"got {batch_size!r}")
        self.n_trials = n_trials
        # a model-based sampler's default batch is what runs at once: the executor's slots
        # (the ranks under torchrun), else 1; decided when the search runs
        self._batch_per_slot = batch_size is None and options.get("sampler", "random") != "random"
        if batch_size is None:
            batch_size = n_trials if not self._batch_per_slot else 1
        self.batch_size = batch_size

    def run(self, func, *args, **kwargs) -> ADict:
        self._start()
        batch = self.batch_size
        executor = self.executor_instance() if self._batch_per_slot else None
        if executor is not None:
            batch = max(1, int(getattr(executor, "slots", 1)))
        return self._full_budget(func, lambda: self.sampler.sample(self.config), self.n_trials,
                                 batch, args, kwargs)


class TPESearch(RandomSearch):
    """Sequential model-based search: ``n_trials`` configurations proposed by TPE
    (Bergstra et al., NeurIPS 2011), each at ``max_budget``.

    ``batch_size`` proposals are drawn from the same model and evaluated together.  The
    default is the executor's ``slots`` (the ranks under ``torchrun`` with the ``torch``
    executor, the threads or processes of a local one), so each has a trial to run, and 1
    without an executor (each proposal sees every earlier result); in a shared study set
    it to the number of workers."""

    PLUGIN_NAME = "tpe"
    CONFORMANCE_OPTIONS = {"n_trials": 15}

    def __init__(self, scope, search_spaces, n_trials: int = 20, batch_size: int | None = None,
                 *, sampler: str = "tpe", **options):
        # named here, with its default, so that a study records 'tpe' for a worker that
        # left it out (a worker's options are compared with the study's, defaults filled)
        if sampler != "tpe":
            raise SearchOptionError(f"tpe: sampler is always 'tpe', not {sampler!r} (for "
                                    f"another sampler use the algorithm 'random' with "
                                    f"sampler={sampler!r})")
        super().__init__(scope, search_spaces, n_trials, batch_size, sampler=sampler, **options)


class MultiBracketHyperband(_BudgetSearch):
    """Hyperband (Li et al. 2018): brackets of successive halving that trade the number of
    configurations against the budget each gets, repeated ``iterations`` times (or until
    ``total_budget`` is spent).

    Budgets are exact (:mod:`ato.hyperopt.budgets`); the winner is the best of *all*
    trials at ``max_budget``, whichever bracket ran them.  Brackets are numbered in the
    order they run (``config.__bracket__``), across iterations.  A promoted configuration
    continues (:mod:`ato.hyperopt.trial`) and costs only its increment.

    With ``total_budget``, whole iterations run while they fit; what is left is spent by
    the small-budget rule of :meth:`schedule`, which never spends a budget too small for
    two brackets on the most aggressive bracket alone.
    """

    PLUGIN_NAME = "multi_hyperband"
    CONFORMANCE_OPTIONS = {"max_budget": 9, "min_budget": 1, "eta": 3}
    MULTI_FIDELITY = True
    #: How the budget left after the whole iterations is spent: 'fill' (default, see
    #: schedule); for comparison (benchmarks/bench_regret.py): 'aggressive' (most
    #: aggressive first, skipping what does not fit: the rule before continued trials),
    #: 'conservative' (least aggressive first, each shrunk to fit) and 'proportional'
    #: (every bracket shrunk by the same factor).
    small_budget_rule = "fill"

    def __init__(self, scope, search_spaces, iterations: int = 1,
                 total_budget=None, **options):
        super().__init__(scope, search_spaces, **options)
        if isinstance(iterations, bool) or not isinstance(iterations, int) or iterations < 1:
            raise SearchOptionError(f"{self.PLUGIN_NAME}: iterations must be an int >= 1, "
                                    f"got {iterations!r}")
        self.iterations = iterations
        self.total_budget = (None if total_budget is None
                             else budget_option(self.PLUGIN_NAME, "total_budget", total_budget))
        self.s_max = budgets.max_exponent(self.min_budget, self.max_budget, self.eta)
        if self.total_budget is not None:
            cheapest = min(self.bracket_cost(1, b) for _, b in self.brackets())
            if self.total_budget < cheapest:  # checked before any study is written
                raise SearchOptionError(
                    f"{self.PLUGIN_NAME}: total_budget={budgets.text(self.total_budget)} is "
                    f"smaller than the cheapest bracket ({budgets.text(cheapest)}: one "
                    f"configuration at max_budget)")

    def extensible_options(self) -> list[str]:
        """``iterations`` when no ``total_budget`` is given: more iterations add brackets
        after the same ones (with a total budget, the last, partial iteration would
        change)."""
        return ["iterations"] if self.total_budget is None else []

    def brackets(self) -> list[tuple[int, Fraction]]:
        """``(n configurations, initial budget)`` of each bracket, most exploratory first:
        ``n = ceil((s_max + 1) / (s + 1) * eta**s)`` at ``max_budget * eta**-s``."""
        return [(math.ceil(Fraction(self.s_max + 1, s + 1) * self.eta ** s),
                 self.max_budget / self.eta ** s)
                for s in range(self.s_max, -1, -1)]

    def survivors(self, n: int) -> int:
        """How many of ``n`` configurations a rung promotes: ``floor(n / eta)``, at least
        one, so that every bracket reaches ``max_budget``."""
        return max(1, math.floor(n / self.eta))

    def bracket_cost(self, n: int, budget: Fraction) -> Fraction:
        """Resource units one bracket of ``n`` configurations starting at ``budget``
        spends (exact), a promoted configuration charged only its increment."""
        cost, reached = Fraction(0), Fraction(0)
        while n and budget <= self.max_budget:
            cost += n * (budget - reached)
            reached = budget
            n, budget = self.survivors(n), budget * self.eta
        return cost

    def _fit(self, n: int, budget: Fraction, left: Fraction) -> int:
        """The most configurations (``<= n``) a bracket at ``budget`` can start within
        ``left``."""
        while n and self.bracket_cost(n, budget) > left:
            n -= 1
        return n

    def schedule(self) -> list[tuple[int, Fraction]]:
        """The brackets to run, in order, as ``(n configurations, initial budget)``.

        Without ``total_budget``: :meth:`brackets` ``iterations`` times.  With it: whole
        iterations while they fit; then, with the budget left (every cost counted in
        increments, :meth:`bracket_cost`):

        - if it holds at least two whole brackets, the brackets of one more iteration in
          Hyperband's order (most exploratory first) while each fits whole, and then the
          next one shrunk to the most configurations that fit what is left (nothing is
          left unspent that one more configuration could use);
        - if it is too small for two whole brackets, half of it goes to the most
          aggressive bracket and the rest to the least aggressive one (each shrunk to
          fit; what rounding leaves goes back to the aggressive one), the least
          aggressive one first.

        The hedge of the second case keeps a tiny budget from ranking every configuration
        on ``min_budget`` results alone, which loses whenever learning curves cross, while
        keeping most of the aggressive bracket's reach when they do not
        (benchmarks/bench_regret.py; docs/performance.md).
        """
        order = self.brackets()
        if self.total_budget is None:
            return order * self.iterations
        full = sum(self.bracket_cost(n, b) for n, b in order)
        plan, left = [], self.total_budget
        for _ in range(self.iterations):
            if full <= left:
                plan += order
                left -= full
                continue
            plan += self._partial(order, left, full)
            break
        return plan

    def _partial(self, order, left: Fraction, full: Fraction) -> list[tuple[int, Fraction]]:
        rule = self.small_budget_rule
        if rule == "fill":
            costs = [self.bracket_cost(n, b) for n, b in order]
            if len(order) > 1 and sorted(costs)[0] + sorted(costs)[1] <= left:
                out = []
                for (n, b), cost in zip(order, costs):
                    if cost <= left:
                        out.append((n, b))
                        left -= cost
                    else:
                        k = self._fit(n, b, left)
                        if k:
                            out.append((k, b))
                            left -= self.bracket_cost(k, b)
                return out
            (n0, b0), (n1, b1) = order[0], order[-1]
            if len(order) == 1:
                k = self._fit(n1, b1, left)
                return [(k, b1)] if k else []
            first = self._fit(n0, b0, left / 2)
            rest = left - (self.bracket_cost(first, b0) if first else 0)
            last = self._fit(n1, b1, rest)
            if not last:  # not even one configuration at max_budget beside it: all to one
                first = self._fit(n0, b0, left)
            else:  # what rounding left over goes back to the aggressive bracket
                first = self._fit(n0, b0, left - self.bracket_cost(last, b1))
            # the conservative bracket first: its configurations are not chosen by a model
            # fit on min_budget results (BOHB), which is what crossing curves mislead
            return [(k, b) for k, b in ((last, b1), (first, b0)) if k]
        if rule == "aggressive":
            out = []
            for n, b in order:
                cost = self.bracket_cost(n, b)
                if cost <= left:
                    out.append((n, b))
                    left -= cost
            return out
        if rule == "conservative":
            out = []
            for n, b in reversed(order):
                k = self._fit(n, b, left)
                if k:
                    out.append((k, b))
                    left -= self.bracket_cost(k, b)
            return out[::-1]
        factor = left / full
        sizes = [math.floor(n * factor) for n, _ in order]
        spent = sum(self.bracket_cost(k, b) for k, (_, b) in zip(sizes, order))
        while spent > left:  # a promoted minimum of one may overshoot: trim the largest
            i = max(range(len(sizes)), key=lambda j: sizes[j])
            sizes[i] -= 1
            spent = sum(self.bracket_cost(k, b) for k, (_, b) in zip(sizes, order))
        grown = True
        while grown:  # spend what rounding down left, least aggressive bracket first
            grown = False
            for i in range(len(order) - 1, -1, -1):
                (n, b), k = order[i], sizes[i]
                extra = self.bracket_cost(k + 1, b) - self.bracket_cost(k, b)
                if k < n and spent + extra <= left:
                    sizes[i], spent, grown = k + 1, spent + extra, True
        return [(k, b) for k, (_, b) in zip(sizes, order) if k]

    def run(self, func, *args, **kwargs) -> ADict:
        self._start()
        plan = self.schedule()
        for b, (n, budget) in enumerate(plan):
            configs = [self.sampler.sample(self.config) for _ in range(n)]
            for c in configs:
                c["__bracket__"] = b
            rung, reached = 0, Fraction(0)
            while configs:
                self.reporter.start(f"bracket {b} rung {rung}: {len(configs)} configs at "
                                    f"budget {budgets.text(budget)}"
                                    + (f" (+{budgets.text(budget - reached)} each, continued)"
                                       if reached else ""), len(configs))
                # one rung is one batch: decided once all its trials are done
                metrics = self._batch(func, [(c, budget, rung, b) for c in configs], args,
                                      kwargs)
                scored = list(zip(metrics, configs))
                scored.sort(key=lambda mc: self.key(mc[0]))
                if budget * self.eta > self.max_budget:
                    break
                # a failed trial (NaN) ranks below every successful one and is never
                # promoted, even when fewer than survivors() succeeded
                configs = [c for m, c in scored[:self.survivors(len(scored))] if succeeded(m)]
                reached, budget = budget, budget * self.eta
                rung += 1
        if not self.logs:
            cheapest = min(self.bracket_cost(1, b) for _, b in self.brackets())
            raise SearchOptionError(f"{self.PLUGIN_NAME}: total_budget={budgets.text(self.total_budget)} "
                                    f"is smaller than the cheapest bracket "
                                    f"({budgets.text(cheapest)}: one configuration at "
                                    f"max_budget)")
        result = self._result()
        self.reporter.summary(f"best {Progress.format(result.metric)} after {result.trials} "
                              f"trials, budget used {budgets.text(self._budget_used)}")
        return result


class BOHB(MultiBracketHyperband):
    """Hyperband's brackets with new configurations proposed by TPE (Falkner et al., ICML
    2018).

    With that paper's settings: the model waits for ``d + 3`` observed configurations
    (``N_min + 2``, ``N_min = d + 1`` for ``d`` searched parameters), and a third of the
    proposals (``random_fraction``, their ``rho``) are drawn uniformly whatever the model
    says.  Two rules of its own, both so that the model does not learn from rankings made
    on small budgets alone, which mislead whenever learning curves cross (the
    configurations that look best after one epoch are not the ones that end best):

    - within each Hyperband iteration the brackets run **least aggressive first**
      (``schedule``: the same brackets as ``multi_hyperband``, in the other order), so
      the first observations the model gets are at large budgets;
    - the model learns from **every configuration, ranked by the largest budget it
      reached**, then by its result there (the sampler's ``pool='furthest'``,
      :class:`ato.hyperopt.samplers.TPESampler`), rather than from one budget's results.

    Measured against the paper's rules alone (model on the largest budget with enough
    observations, brackets most aggressive first) in docs/performance.md, "Regret at
    equal budgets"."""

    PLUGIN_NAME = "bohb"
    CONFORMANCE_OPTIONS = {"max_budget": 9, "min_budget": 1, "eta": 3, "iterations": 2}
    #: The share of new configurations drawn uniformly (Falkner et al.'s ``rho``).
    random_fraction = 1 / 3
    #: Which observations the TPE model learns from (see TPESampler): 'furthest', or
    #: 'largest' for the paper's rule (benchmarks/bench_regret.py compares them).
    pool = "furthest"
    #: Run each iteration's brackets least aggressive first (False: Hyperband's order).
    conservative_first = True

    def __init__(self, scope, search_spaces, *, sampler: str = "tpe", **options):
        super().__init__(scope, search_spaces, sampler=sampler, **options)
        if hasattr(self.sampler, "min_points"):  # the TPE sampler
            # the paper's N_min + 2 counts one budget's observations; ranking every
            # configuration, the model waits for TPE's usual start-up (10) as well
            d = len(self.sampler.dims)
            self.sampler.min_points = (d + 3 if self.pool == "largest"
                                       else max(self.sampler.n_startup, d + 3))
            self.sampler.random_fraction = self.random_fraction
            self.sampler.pool = self.pool

    def schedule(self) -> list[tuple[int, Fraction]]:
        """:meth:`MultiBracketHyperband.schedule`'s brackets, each iteration's (a run of
        increasing initial budgets) reversed when ``conservative_first``."""
        plan = super().schedule()
        if not self.conservative_first:
            return plan
        out, run = [], []
        for bracket in plan:
            if run and bracket[1] < run[-1][1]:  # a new iteration starts
                out += run[::-1]
                run = []
            run.append(bracket)
        return out + run[::-1]


class ASHA(_BudgetSearch):
    """Asynchronous successive halving: a free worker promotes a configuration that is in
    the top ``1/eta`` of its rung, or else starts a new one at ``min_budget``.

    Rungs are ``min_budget * eta**k`` up to ``max_budget`` (exact).  Stops after
    ``max_trials`` trials or ``total_budget`` resource units, a promotion charged only its
    increment (the configuration continues, :mod:`ato.hyperopt.trial`).  As many
    evaluations run at once as the ``executor`` has slots, a free slot taking the next job
    by the promotion rule; without an executor, ``n_workers`` (threads: use it for
    objectives that release the GIL).
    """

    PLUGIN_NAME = "asha"
    EXTENSIBLE_OPTIONS = ("max_trials", "total_budget")
    #: A shared study's trials are proposed from its history (``_propose``): ``ato search
    #: requeue --failed`` forgets failed trials, and they are proposed again in order.
    PROPOSES_FROM_HISTORY = True
    CONFORMANCE_OPTIONS = {"max_budget": 9, "min_budget": 1, "eta": 3, "max_trials": 30}
    MULTI_FIDELITY = True

    def __init__(self, scope, search_spaces, max_trials: int | None = None,
                 total_budget=None, n_workers: int = 1, **options):
        super().__init__(scope, search_spaces, **options)
        if max_trials is None and total_budget is None:
            raise SearchOptionError("asha: needs max_trials or total_budget")
        if max_trials is not None and (isinstance(max_trials, bool)
                                       or not isinstance(max_trials, int) or max_trials < 1):
            raise SearchOptionError(f"asha: max_trials must be an int >= 1, got {max_trials!r}")
        if isinstance(n_workers, bool) or not isinstance(n_workers, int) or n_workers < 1:
            raise SearchOptionError(f"asha: n_workers must be an int >= 1, got {n_workers!r}")
        self.max_trials, self.n_workers = max_trials, n_workers
        self.total_budget = (None if total_budget is None
                             else budget_option(self.PLUGIN_NAME, "total_budget", total_budget))
        self.budgets = budgets.rungs(self.min_budget, self.max_budget, self.eta)
        if self.total_budget is not None and self.total_budget < self.min_budget:
            # checked before any study is written
            raise SearchOptionError(f"asha: total_budget={budgets.text(self.total_budget)} is "
                                    f"smaller than min_budget={budgets.text(self.min_budget)}")

    def _new_config(self, index: int):
        """The ``index``-th new configuration: drawn with the random generator re-seeded
        from (seed, index), so it is the same whichever worker draws it (TPE still fits
        on what was observed by then)."""
        self.rng.seed(f"{self.seed}:{index}")
        return self.sampler.sample(self.config)

    def _next_job(self, rungs, promoted, started):
        """The next trial: the best unpromoted configuration in the top 1/eta of the
        highest rung that has one, or a new configuration at the lowest rung."""
        for k in range(len(self.budgets) - 2, -1, -1):
            rung = rungs[k]  # kept sorted best first, failed trials last
            for _key, index, config, ok in rung[:math.floor(len(rung) / self.eta)]:
                if ok and (k, index) not in promoted:
                    promoted.add((k, index))
                    return k + 1, index, config
        return 0, started, self._new_config(started)

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
        cost = budget - self.budgets[rung - 1] if rung else budget  # a promotion continues
        if self.total_budget is not None and state["committed"] + cost > self.total_budget:
            if rung > 0:
                promoted.discard((rung - 1, index))
            state["committed"] = self.total_budget  # nothing else fits
            return None
        if rung == 0:
            state["started"] += 1
        state["committed"] += cost
        state["trials"] += 1
        return rung, index, config, budget

    def _record(self, rungs, rung, index, config, metric) -> None:
        import bisect

        # a failed trial counts in its rung (the top 1/eta is of every trial there) but
        # ranks below every successful one and is never promoted
        entry = (self.key(metric), index, config, succeeded(metric))
        bisect.insort(rungs[rung], entry, key=lambda e: (e[0], e[1]))

    def run(self, func, *args, **kwargs) -> ADict:
        self._start()
        shared = self.shared_study()
        if shared is not None:
            return self._run_shared(shared, func, args, kwargs)
        rungs = [[] for _ in self.budgets]
        promoted: set = set()
        state = {"started": 0, "trials": 0, "committed": Fraction(0)}
        total = self.max_trials or math.floor(self.total_budget / self.min_budget)
        self.reporter.start(f"up to {total} trials", total)
        executor = self.executor_instance()
        # as many trials at once as the executor has slots (n_workers threads without
        # one); a slot that comes free takes the next job by the promotion rule
        width = self.n_workers if executor is None else executor.slots
        if executor is not None and executor.slots > getattr(executor, "submit_slots",
                                                             executor.slots):
            self._run_rounds(func, args, kwargs, rungs, promoted, state, executor.slots)
        elif width == 1:
            while (job := self._plan(rungs, promoted, state)) is not None:
                rung, index, config, budget = job
                metric = self._trial(func, config, budget, rung, args, kwargs)
                self._record(rungs, rung, index, config, metric)
                self.reporter.step()
        else:
            # each thread hands its trial to the executor (evaluate_trial), so a trial
            # runs on one of the executor's slots, in a thread or a process of its own
            with ThreadPoolExecutor(max_workers=width) as pool:
                running = {}
                while True:
                    while len(running) < width:
                        job = self._plan(rungs, promoted, state)
                        if job is None:
                            break
                        rung, index, config, budget = job
                        future = pool.submit(self._trial, func, config, budget, rung, args,
                                             kwargs)
                        running[future] = (rung, index, config)
                    if not running:
                        break
                    finished, _ = wait(running, return_when=FIRST_COMPLETED)
                    for future in finished:
                        rung, index, config = running.pop(future)
                        self._record(rungs, rung, index, config, future.result())
                        self.reporter.step()
        if not self.logs:
            raise SearchOptionError(f"asha: total_budget={budgets.text(self.total_budget)} is "
                                    f"smaller than min_budget={budgets.text(self.min_budget)}")
        result = self._result()
        self.reporter.summary(f"best {Progress.format(result.metric)} after {result.trials} "
                              f"trials, budget used {budgets.text(self._budget_used)}")
        return result

    def _run_rounds(self, func, args, kwargs, rungs, promoted, state, width: int) -> None:
        """ASHA on an executor whose workers run a batch together (``torch``: the ranks of
        a process group, which cannot each pick their next trial alone): ``width`` jobs
        are planned at once — the jobs ``width`` free workers would take, promotions first
        — run as one batch (:meth:`_batch`, split over the ranks), then recorded in plan
        order, so every rank makes the same decisions.  The promotion rule is ASHA's;
        only its timing is that of workers finishing together."""
        while True:
            jobs = []
            while len(jobs) < width and (job := self._plan(rungs, promoted, state)) is not None:
                jobs.append(job)
            if not jobs:
                return
            metrics = self._batch(func, [(config, budget, rung, 0)
                                         for rung, _index, config, budget in jobs], args, kwargs)
            for (rung, index, config, _budget), metric in zip(jobs, metrics):
                self._record(rungs, rung, index, config, metric)

    # ------------------------------------------------------------------ shared study
    def _propose(self, states) -> list:
        """The promotion rule of Li et al. (2020) on every trial of the shared study
        (``states``, by seq; called under the study lock): the next trial, as a one-item
        list of :class:`ato.tracking.TrialSpec`, or ``[]`` once ``max_trials`` or
        ``total_budget`` is reached."""
        from ato.hyperopt.study import Trial, config_hash, searched_values
        from ato.hyperopt.workers import DONE_STATES, jsonable, metric_of
        from ato.tracking import TrialSpec

        committed = sum((self._cost(int(s.payload["rung"])) for s in states), Fraction(0))
        if self._exhausted(len(states), committed):
            return []
        rungs = [[] for _ in self.budgets]
        promoted, new_indices = set(), set()
        for s in states:
            rung, index = int(s.payload["rung"]), int(s.payload["index"])
            if rung > 0:
                promoted.add((rung - 1, index))
            else:
                new_indices.add(index)
            if s.state in DONE_STATES:
                rungs[rung].append((self.key(metric_of(s)), index, s, succeeded(metric_of(s))))
                if s.key not in self._observed:
                    self._observed.add(s.key)
                    self.sampler.observe(self._shared_config(s.payload),
                                         budgets.exact(s.payload["budget"]), metric_of(s))
        job = None
        for k in range(len(self.budgets) - 2, -1, -1):
            ranked = sorted(rungs[k], key=lambda e: (e[0], e[1]))
            for _key, index, s, ok in ranked[:math.floor(len(ranked) / self.eta)]:
                if ok and (k, index) not in promoted:
                    job = (k + 1, index, s.payload["values"])
                    break
            if job is not None:
                break
        if job is None:
            # the smallest index not started: after 'ato search requeue --failed' forgot
            # failed trials, their configurations are drawn again, in their order
            started = next(i for i in range(len(new_indices) + 1) if i not in new_indices)
            config = self._new_config(started)
            job = (0, started, searched_values(config, self.search_spaces.keys()))
        rung, index, values = job
        budget = self.budgets[rung]
        if self.total_budget is not None and committed + self._cost(rung) > self.total_budget:
            return []
        config = self._shared_config({"values": values, "budget": budgets.text(budget),
                                      "rung": rung})
        chash = config_hash(config, self.search_spaces.keys())
        occurrence = sum(1 for s in states if s.payload.get("config_hash") == chash
                         and int(s.payload["rung"]) == rung)
        trial = Trial(self.study_id, self.PLUGIN_NAME, chash, budget, 0, rung, occurrence,
                      self.seed)
        return [TrialSpec(trial.key, {
            "values": jsonable(values), "config": jsonable(config),
            "budget": budgets.text(budget), "bracket": 0, "rung": rung, "final": False,
            "config_hash": chash, "index": index, "occurrence": occurrence})]

    def _shared_config(self, payload):
        """A trial's config rebuilt from its payload on this worker's base config."""
        config = self.config.clone()
        for name, value in payload["values"].items():
            config.set_value_by_name(name, value)
        config["__budget__"] = budgets.plain(budgets.exact(payload["budget"]))
        config["__num_halved__"] = int(payload["rung"])
        return config

    def _cost(self, rung: int) -> Fraction:
        """What a trial at ``rung`` costs: a promotion continues from the rung below."""
        return self.budgets[rung] - (self.budgets[rung - 1] if rung else 0)

    def _continued_config(self, payload):
        """:meth:`_shared_config` with the keys that let the objective continue the
        configuration (:mod:`ato.hyperopt.trial`): a trial at rung ``k`` resumes from rung
        ``k - 1``'s budget, which the promotion rule saw completed."""
        from ato.hyperopt.trial import fill

        config = self._shared_config(payload)
        rung = int(payload["rung"])
        fill(config, self.continuations(), self.budgets[rung],
             self.budgets[rung - 1] if rung else Fraction(0), chash=payload.get("config_hash"))
        return config

    def _shared_trial(self, key: str, payload):
        from ato.hyperopt.study import Trial

        return Trial(self.study_id, self.PLUGIN_NAME, payload["config_hash"],
                     budgets.exact(payload["budget"]), 0, int(payload["rung"]),
                     int(payload.get("occurrence", 0)), self.seed)

    def _run_shared(self, shared, func, args, kwargs) -> ADict:
        """ASHA with the other workers of the shared study: each free worker (and each of
        ``n_workers`` threads) asks the study for its next trial — a promotion, else a new
        configuration — under the study lock, runs it and reports it."""
        from ato.hyperopt.study import ClaimRuns
        from ato.hyperopt.workers import DONE_STATES, metric_of

        self._observed: set = set()
        runs = ClaimRuns(self.recorder())

        def trial_of(claim):
            trial, rung = self._shared_trial(claim.key, claim.payload), int(claim.payload["rung"])
            if rung:
                trial = dataclasses.replace(trial, resumed_from=self.budgets[rung - 1])
            return trial

        def run(claim):
            # the trial's run is open while the objective runs (its log_metric calls land
            # on it), as in a single process
            config = self._continued_config(claim.payload)
            runs.start(claim, trial_of(claim), config)
            return self.call_objective(func, config, args, kwargs, on_executor=slots > 1,
                                       logger=runs.logger_of(claim))

        def record(claim, metric, status, error):
            runs.record(claim, trial_of(claim), self._continued_config(claim.payload), metric,
                        status, error)
            self.reporter.step()

        total = self.max_trials or math.floor(self.total_budget / self.min_budget)
        self.reporter.start(f"up to {total} trials, shared", total)
        # one claim loop per executor slot (n_workers without an executor), each running
        # its trials on the executor
        slots = self.executor_slots() if self.executor is not None else self.n_workers
        states = shared.run_async(self._propose, run, record, threads=slots,
                                  unrecorded=runs.unrecorded)
        for s in states:
            if s.state not in DONE_STATES:
                continue
            config = self._continued_config(s.payload)
            budget = budgets.exact(s.payload["budget"])
            config["__metric__"] = metric_of(s)
            self.logs.append(config)
            self._exact_budgets.append(budget)
            self._budget_used += self._cost(int(s.payload["rung"]))
        if not self.logs:
            raise SearchOptionError(f"asha: total_budget={budgets.text(self.total_budget)} is "
                                    f"smaller than min_budget={budgets.text(self.min_budget)}")
        result = self._result()
        self.reporter.summary(f"best {Progress.format(result.metric)} after {result.trials} trials")
        return result
