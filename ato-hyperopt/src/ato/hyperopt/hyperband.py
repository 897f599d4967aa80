"""HyperBand as the original Ato defines it — successive halving over the grid — and its
distributed form over ``torch.distributed``.

Each generation evaluates every candidate, sorts them (stable, best first), keeps the top
``halving_rate`` fraction and stops once no more than ``num_min_samples`` survive.  The
winner is evaluated once more at the last budget.  ``config.__num_halved__`` is the
generation index, always a valid index into
``compute_optimized_initial_training_steps(max_steps)``.

With ``max_budget`` given, HyperBand is multi-fidelity: each trial also gets
``__trial__``, ``__resume_budget__`` and ``__checkpoint_dir__`` (:mod:`ato.hyperopt.trial`)
and a surviving configuration is charged only its increment (``result.budget_used``).
"""

from __future__ import annotations

import math
import numbers
import traceback
from fractions import Fraction

from ato.adict import ADict
from ato.hyperopt import budgets
from ato.hyperopt.base import (
    DistributedMixIn,
    DistributedSearchError,
    GridSpaceMixIn,
    HyperOpt,
    SearchOptionError,
    TrialRequest,
    better,
    succeeded,
)
from ato.hyperopt.progress import Progress
from ato.hyperopt.trial import prepare

__all__ = ["HyperBand", "DistributedHyperBand"]


class HyperBand(GridSpaceMixIn, HyperOpt):
    """``HyperBand(scope, search_spaces, halving_rate, num_min_samples, mode='max')``."""

    PLUGIN_NAME = "hyperband"
    CONFORMANCE_OPTIONS = {"halving_rate": 0.5, "num_min_samples": 2}

    def __init__(self, scope, search_spaces, halving_rate: float, num_min_samples: int,
                 tracker=None, mode: str = "max", study_id: str | None = None,
                 progress: bool | None = None, **options):
        try:  # exact, as budgets are: 1/3, '1/3' and Fraction(1, 3) are one third
            rate = budgets.exact(halving_rate, "halving_rate")
        except (TypeError, ValueError) as e:
            raise SearchOptionError(f"hyperband: {e}") from None
        if not 0 < rate < 1:
            raise SearchOptionError(f"hyperband: halving_rate must be between 0 and 1 "
                                    f"(exclusive), got {halving_rate!r}")
        if (isinstance(num_min_samples, bool) or not isinstance(num_min_samples, numbers.Integral)
                or num_min_samples < 1):
            raise SearchOptionError(f"hyperband: num_min_samples must be an int >= 1, got "
                                    f"{num_min_samples!r}")
        HyperOpt.__init__(self, scope, search_spaces, tracker, mode, study_id=study_id,
                          progress=progress, **options)
        self.halving_rate = rate
        self.num_min_samples = num_min_samples
        # The objective sees config.__budget__ only when a max_budget was asked for, and
        # then also what it needs to continue a surviving configuration.
        self.budgeted = options.get("max_budget") is not None
        self.MULTI_FIDELITY = self.budgeted
        self._budget_used = Fraction(0)
        self._distributions = None
        self._size = self.grid_size(search_spaces)

    def plan_options(self) -> dict:
        """The base's, with ``halving_rate`` as exact text (``1/3``, ``'1/3'`` and
        ``Fraction(1, 3)`` plan the same search)."""
        return {**super().plan_options(), "halving_rate": budgets.text(self.halving_rate)}

    @property
    def distributions(self) -> list[ADict]:
        """The grid built from the scope's config, each with ``__num_halved__ = 0``."""
        if self._distributions is None:
            grid = self.prepare_distributions(self.config, self.search_spaces)
            for config in grid:
                config["__num_halved__"] = 0
            self._distributions = grid
        return self._distributions

    # ------------------------------------------------------------------ schedule
    def num_generations(self) -> int:
        return math.ceil(math.log(self.num_min_samples / self._size) / math.log(self.halving_rate))

    def compute_optimized_initial_training_steps(self, max_steps: int) -> list[int]:
        """The training budget of every generation: each ``1/halving_rate`` times the
        previous, the last exactly ``max_steps``."""
        g = self.num_generations()
        if g <= 1:
            return [max_steps]
        r = self.halving_rate
        min_steps = max_steps * math.pow(r, g)
        return [math.ceil(min_steps / math.pow(r, i)) for i in range(1, g)] + [max_steps]

    def budget_of(self, generation: int) -> Fraction:
        """The exact budget of a generation: ``max_budget * halving_rate ** (last - k)``
        (``last`` = the schedule's last index), so the final generation gets
        ``max_budget``.  Unlike ``compute_optimized_initial_training_steps`` nothing is
        rounded up."""
        last = max(self.num_generations(), 1) - 1
        return self.max_budget * self.halving_rate ** (last - min(generation, last))

    # ------------------------------------------------------------------ search
    def _evaluate_generation(self, func, candidates, args, kwargs, generation, progress) -> list:
        """One generation is one batch (:meth:`evaluate_batch`): in a shared study its
        trials are divided between the workers, and the generation is decided once every
        one of them is done."""
        metrics = self.evaluate_batch(func, [self._request(c, generation) for c in candidates],
                                      args, kwargs)
        for config in candidates:
            self._charge(self.increment(config, self.budget_of(generation)))
        progress.step(len(candidates))
        return metrics

    def _request(self, config, generation, final=False) -> TrialRequest:
        """The trial of ``config`` in generation ``generation`` (``final``: the winner's
        re-evaluation)."""
        budget = self.budget_of(generation)
        if self.budgeted:
            config["__budget__"] = budgets.plain(budget)
        return TrialRequest(config, budget, generation, 0, final)

    def _evaluate_one(self, func, config, args, kwargs, generation, final=False, record=True):
        """One trial of generation ``generation`` (``final``: the winner's re-evaluation)."""
        request = self._request(config, generation, final)
        metric = self.evaluate_trial(func, config, args, kwargs, budget=request.budget,
                                     rung=generation, final=final, record=record)
        self._charge(self.increment(config, request.budget))
        return metric

    def _charge(self, cost: Fraction) -> None:
        self._budget_used += cost

    @property
    def budget_used(self) -> int | float:
        """Resource units (``max_budget`` units) the current search spent; a surviving
        configuration is charged only its increment when HyperBand is multi-fidelity."""
        return budgets.plain(self._budget_used)

    def _final(self, func, winner, args, kwargs):
        return self._evaluate_one(func, winner, args, kwargs, winner["__num_halved__"], True)

    def main(self, func):
        """Decorate the objective; calling the result runs the search."""
        return self.launcher(func)

    def run(self, func, *args, **kwargs) -> ADict:
        self._budget_used = Fraction(0)
        names = list(self.search_spaces.keys())
        progress = Progress(self.progress if self._is_reporter() else False, label="hyperband")
        key = better(self.mode)
        logs = []
        candidates = [c.clone() for c in self.distributions]
        generation = 0
        while True:
            for c in candidates:
                c["__num_halved__"] = generation
            progress.start(f"generation {generation}: {len(candidates)} configs", len(candidates))
            metrics = self._evaluate_generation(func, candidates, args, kwargs, generation,
                                                progress)
            for c, m in zip(candidates, metrics):
                c["__metric__"] = m
            order = sorted(range(len(candidates)), key=lambda i: key(metrics[i]))
            results = [candidates[i] for i in order]
            logs.append(results)
            best = results[0]
            progress.summary(f"generation {generation}: {len(results)} configs, best "
                             f"{Progress.format(best['__metric__'])} "
                             f"({Progress.describe(best, names)})")
            # a failed trial (NaN, sorted last) never survives, however few succeeded
            survivors = [s for s in results[:int(len(results) * self.halving_rate)]
                         if succeeded(s["__metric__"])]
            if len(survivors) <= self.num_min_samples or not survivors:
                break
            candidates = [s.clone() for s in survivors]
            generation += 1
        winner = logs[-1][0].clone()
        if not succeeded(winner["__metric__"]):
            # every trial of the last generation failed: nothing to re-evaluate (the
            # launcher raises NoSuccessfulTrialError for the NaN metric)
            return ADict(config=winner, metric=winner["__metric__"], logs=logs,
                         trials=sum(map(len, logs)), budget_used=self.budget_used)
        winner["__num_halved__"] = max(self.num_generations(), 1) - 1
        winner.pop("__metric__")
        metric = self._final(func, winner, args, kwargs)
        winner["__metric__"] = metric
        logs.append([winner])
        return ADict(config=winner, metric=metric, logs=logs, trials=sum(map(len, logs)),
                     budget_used=self.budget_used)

    def _is_reporter(self) -> bool:
        return True


class DistributedHyperBand(DistributedMixIn, HyperBand):
    """HyperBand whose generations are split over the ranks of a ``torch.distributed``
    group: rank ``r`` evaluates the ``r``-th contiguous chunk, the metrics are gathered,
    and every rank sorts the same list and returns the same result.

    If any rank's objective raises, every rank raises :class:`DistributedSearchError`
    naming that rank and its error (no rank is left waiting).  The caller's process group
    is never destroyed.
    """

    def __init__(self, scope, search_spaces, halving_rate: float, num_min_samples: int,
                 tracker=None, mode: str = "max", rank: int = 0, world_size: int = 1,
                 backend: str = "pytorch", study_id: str | None = None,
                 progress: bool | None = None, **options):
        DistributedMixIn.__init__(self, rank, world_size, backend)
        HyperBand.__init__(self, scope, search_spaces, halving_rate, num_min_samples, tracker,
                           mode, study_id, progress, **options)

    def _is_reporter(self) -> bool:
        return self.is_root

    def _gather(self, work):
        """Run ``work()`` on every rank; gather (ok, value) and raise everywhere on error."""
        if self.world_size == 1:
            return [work()]  # nobody to tell: the objective's own error propagates
        error = None
        try:
            payload = (True, work())
        except Exception as e:
            error = e
            payload = (False, f"{type(e).__name__}: {e}\n{traceback.format_exc()}")
        gathered = self.all_gather_object(payload)
        for rank, (ok, value) in enumerate(gathered):
            if not ok:
                raise DistributedSearchError(rank, value) from (error if rank == self.rank
                                                                 else None)
        return [value for _, value in gathered]

    def _evaluate_generation(self, func, candidates, args, kwargs, generation, progress) -> list:
        n = len(candidates)
        chunk = math.ceil(n / self.world_size)
        mine = candidates[self.rank * chunk:(self.rank + 1) * chunk]

        def work():
            out = []
            for config in mine:
                out.append(self._evaluate_one(func, config, args, kwargs, generation))
                progress.step()
            return out

        metrics = [m for part in self._gather(work) for m in part]
        progress.step(n - len(mine))
        # Every rank charges (and learns what reached) the others' configurations too.
        budget = self.budget_of(generation)
        for config, metric in zip(candidates, metrics):
            if any(config is c for c in mine):
                continue
            if not self.MULTI_FIDELITY:
                self._charge(budget)
                continue
            resumed = prepare(config, self.continuations(), budget)
            self._charge(resumed.increment)
            if metric == metric:
                self.continuations().complete(resumed)
        return metrics

    def _final(self, func, winner, args, kwargs):
        # Every rank runs it (the objective may hold collectives); the root records it.
        metrics = self._gather(lambda: self._evaluate_one(
            func, winner, args, kwargs, winner["__num_halved__"], True, record=self.is_root))
        return metrics[0]  # the root's metric, the same on every rank
