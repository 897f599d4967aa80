"""Where new configurations come from: uniform random sampling, or a tree-structured
Parzen estimator (TPE; Bergstra et al., NeurIPS 2011) fit, as BOHB does (Falkner et al.,
ICML 2018), on the observations of the largest budget that has enough of them.

Both sample the continuous space described by the search spaces (``LOG`` parameters in log
space, integers rounded, categories by frequency).
"""

from __future__ import annotations

import math
import random

from ato.hyperopt.base import SearchSpaceError, better, numeric_range


class _Dimension:
    def __init__(self, name, spec):
        self.name = name
        self.kind = str(spec.get("param_type", "")).upper()
        if self.kind == "CATEGORY":
            self.categories = list(spec["categories"])
            return
        if self.kind not in ("FLOAT", "INTEGER"):
            raise SearchSpaceError(f"search space {name!r}: param_type must be FLOAT, INTEGER or "
                                   f"CATEGORY, not {spec.get('param_type')!r}")
        start, stop = numeric_range(name, spec)
        self.log = str(spec.get("space_type", "LINEAR")).upper() == "LOG"
        if self.log and (start <= 0 or stop <= 0):
            raise SearchSpaceError(f"search space {name!r}: a LOG range must be positive")
        pad = 0.5 if self.kind == "INTEGER" else 0.0
        lo, hi = start - pad, stop + pad
        if self.log:
            lo, hi = math.log(lo if lo > 0 else start), math.log(hi)
        self.lo, self.hi = lo, hi
        self.start, self.stop = start, stop

    def to_internal(self, value) -> float:
        return math.log(value) if self.log else float(value)

    def to_value(self, x: float):
        v = math.exp(x) if self.log else x
        if self.kind == "INTEGER":
            return int(min(self.stop, max(self.start, round(v))))
        return min(self.stop, max(self.start, v))

    def uniform(self, rng: random.Random):
        if self.kind == "CATEGORY":
            return rng.choice(self.categories)
        return self.to_value(rng.uniform(self.lo, self.hi))


class RandomSampler:
    """Uniform over the space (log-uniform for ``LOG`` parameters)."""

    def __init__(self, search_spaces, rng: random.Random, mode: str = "max"):
        self.dims = [_Dimension(n, s) for n, s in search_spaces.items()]
        self.rng = rng

    def values(self) -> dict:
        return {d.name: d.uniform(self.rng) for d in self.dims}

    def sample(self, base):
        config = base.clone()
        for name, value in self.values().items():
            config.set_value_by_name(name, value)
        return config

    def observe(self, config, budget, metric) -> None:
        """Random sampling learns nothing."""


def _read(config, name):
    value = config
    for part in str(name).split("."):
        value = value.get(part) if hasattr(value, "get") else None
    return value


class TPESampler(RandomSampler):
    """Independent (per-parameter) TPE: sample candidates from the density of the best
    ``gamma`` fraction, keep the one with the highest good/bad density ratio.

    Which observations the model learns from (``pool``):

    - ``'largest'`` (default): those of the largest budget that has at least
      ``min_points`` of them (default ``max(n_startup, d + 2)`` for ``d`` parameters), as
      BOHB's paper does (Falkner et al., ICML 2018);
    - ``'furthest'``: every configuration once, ranked first by the largest budget it
      reached and then by its result there (a configuration promoted to 9 epochs ranks
      above every one stopped at 3), once ``min_points`` configurations were observed.
      Promotion decisions count as evidence, and the model never has to wait for one
      budget to fill; Optuna's TPE ranks pruned trials the same way.

    Until the model has its data, and for a ``random_fraction`` of the proposals after
    that, the proposal is uniform.  ``bohb`` uses ``pool='furthest'`` with the settings of
    Falkner et al.: ``min_points = d + 3`` (their ``N_min + 2``, ``N_min = d + 1``) and
    ``random_fraction = 1/3``."""

    def __init__(self, search_spaces, rng: random.Random, mode: str = "max", gamma: float = 0.15,
                 n_startup: int = 10, n_candidates: int = 32, random_fraction: float = 0.1,
                 min_points: int | None = None, pool: str = "largest"):
        super().__init__(search_spaces, rng, mode)
        self.key = better(mode)
        self.gamma, self.n_startup = gamma, n_startup
        self.n_candidates, self.random_fraction = n_candidates, random_fraction
        self.min_points = (max(n_startup, len(self.dims) + 2) if min_points is None
                           else min_points)
        if pool not in ("largest", "furthest"):
            raise ValueError(f"TPE pool must be 'largest' or 'furthest', not {pool!r}")
        self.pool = pool
        self.observations: dict = {}

    def observe(self, config, budget, metric) -> None:
        if metric is None or metric != metric:
            return
        values = {d.name: _read(config, d.name) for d in self.dims}
        self.observations.setdefault(budget, []).append((values, metric))

    def _model_data(self):
        """``(good, bad)`` value dicts the model is fit on, or ``None`` (sample
        uniformly)."""
        if self.pool == "furthest":
            return self._furthest()
        usable = [b for b, obs in self.observations.items() if len(obs) >= self.min_points]
        if not usable:
            return None
        obs = sorted(self.observations[max(usable)], key=lambda o: self.key(o[1]))
        return self._split(obs)

    def _furthest(self):
        furthest: dict = {}  # configuration -> (largest budget reached, metric, values)
        for budget in sorted(self.observations):
            for values, metric in self.observations[budget]:
                furthest[tuple(sorted((k, repr(v)) for k, v in values.items()))] = (
                    budget, metric, values)
        if len(furthest) < self.min_points:
            return None
        ranked = sorted(furthest.values(), key=lambda o: (-o[0], self.key(o[1])))
        return self._split([(values, metric) for _, metric, values in ranked])

    def _split(self, obs):
        """The best ``gamma`` fraction of ``obs`` (ranked best first) and the rest."""
        n_good = max(1, math.ceil(self.gamma * len(obs)))
        return [o[0] for o in obs[:n_good]], [o[0] for o in obs[n_good:]]

    def values(self) -> dict:
        data = self._model_data()
        if data is None or self.rng.random() < self.random_fraction:
            return super().values()
        good, bad = data
        out = {}
        for d in self.dims:
            out[d.name] = self._sample_dimension(d, [g[d.name] for g in good],
                                                 [b[d.name] for b in bad])
        return out

    def _sample_dimension(self, d: _Dimension, good: list, bad: list):
        rng = self.rng
        if d.kind == "CATEGORY":
            def weights(values):
                counts = [1.0 + sum(1 for v in values if v == c) for c in d.categories]
                total = sum(counts)
                return [c / total for c in counts]

            lw, gw = weights(good), weights(bad)
            candidates = rng.choices(range(len(d.categories)), weights=lw, k=self.n_candidates)
            best = max(candidates, key=lambda i: math.log(lw[i]) - math.log(gw[i]))
            return d.categories[best]
        gx = [d.to_internal(v) for v in good]
        bx = [d.to_internal(v) for v in bad]
        width = d.hi - d.lo

        def parzen(xs):
            """Kernels with per-point widths from the gaps to their neighbours (clipped
            to [width / min(100, n + 1), width]), plus a wide prior kernel."""
            points = sorted(xs + [(d.lo + d.hi) / 2])
            floor = width / min(100.0, len(points) + 1)
            kernels = []
            for i, x in enumerate(points):
                left = x - points[i - 1] if i > 0 else x - d.lo
                right = points[i + 1] - x if i + 1 < len(points) else d.hi - x
                kernels.append((x, min(width, max(floor, left, right))))
            return kernels

        lk, gk = parzen(gx), parzen(bx)

        def density(x, kernels):
            return sum(math.exp(-0.5 * ((x - c) / h) ** 2) / h for c, h in kernels) / len(kernels)

        best_x, best_score = None, -math.inf
        for _ in range(self.n_candidates):
            center, h = rng.choice(lk)
            x = min(d.hi, max(d.lo, rng.gauss(center, h)))
            score = math.log(density(x, lk) + 1e-300) - math.log(density(x, gk) + 1e-300)
            if score > best_score:
                best_x, best_score = x, score
        return d.to_value(best_x)


SAMPLERS = {"random": RandomSampler, "tpe": TPESampler}


def make_sampler(name, search_spaces, rng, mode):
    if name not in SAMPLERS:
        raise ValueError(f"sampler must be one of {sorted(SAMPLERS)}, not {name!r}")
    return SAMPLERS[name](search_spaces, rng, mode)
