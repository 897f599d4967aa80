"""Where new configurations come from: uniform random sampling, or a tree-structured
Parzen estimator (TPE; Bergstra et al., NeurIPS 2011) with multivariate kernels (the
components as Watanabe, arXiv:2304.11127, studies them), fit on the observations of the
largest budget that has enough of them (as BOHB does, Falkner et al., ICML 2018) or on
every configuration ranked by the budget it reached.

Both sample the continuous space described by the search spaces (``LOG`` parameters in log
space, integers rounded to the nearest value in range, categories as indices).
"""

from __future__ import annotations

import math
import random

from ato.hyperopt.base import better, check_space


class _Dimension:
    def __init__(self, name, spec):
        self.name = name
        self.kind = check_space(name, spec)
        if self.kind == "CATEGORY":
            self.categories = list(spec["categories"])
            return
        start, stop = spec["param_range"]
        if self.kind == "INTEGER":  # the integers the range holds (check_space: at least one)
            start, stop = math.ceil(start), math.floor(stop)
        self.log = spec.get("space_type", "LINEAR").upper() == "LOG"
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
    """TPE (Bergstra et al., NeurIPS 2011): rank the observations, split them into the
    best ``gamma`` fraction ("good") and the rest, fit a Parzen estimator to each, and
    propose the candidate, drawn from the good estimator, with the highest ratio of good
    to bad density (the point of largest expected improvement).

    The estimators (the components Watanabe, arXiv:2304.11127, 2023, found to matter):

    - **multivariate** (default): one product kernel per observation over every
      parameter, so a candidate takes all its values from the neighbourhood of one good
      configuration and the ratio sees interactions (the best learning rate of each
      model); ``multivariate=False`` fits each parameter on its own, as the 2011 paper;
    - a **prior** kernel (the whole range; uniform over categories) with weight
      ``prior_weight`` beside the observations' weight 1 each, so no region has zero
      density;
    - numeric bandwidths from the gaps to the neighbouring observations (the paper's
      heuristic), clipped below at ``range / min(100, n + 1)`` (the "magic clip");
      kernels are Gaussians truncated to the range (``LOG`` parameters in log space);
    - categories by an Aitchison-Aitken kernel: an observation's own category has
      ``1 - category_smoothing`` of its mass, the others share the rest;
    - ``n_candidates`` candidates per proposal.

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
                 min_points: int | None = None, pool: str = "largest",
                 multivariate: bool = True, prior_weight: float = 1.0,
                 category_smoothing: float = 0.2, split: str = "linear"):
        super().__init__(search_spaces, rng, mode)
        self.key = better(mode)
        self.gamma, self.n_startup = gamma, n_startup
        self.n_candidates, self.random_fraction = n_candidates, random_fraction
        self.min_points = (max(n_startup, len(self.dims) + 2) if min_points is None
                           else min_points)
        if pool not in ("largest", "furthest"):
            raise ValueError(f"TPE pool must be 'largest' or 'furthest', not {pool!r}")
        self.pool = pool
        self.multivariate, self.prior_weight = multivariate, prior_weight
        if split not in ("linear", "sqrt"):
            raise ValueError(f"TPE split must be 'linear' or 'sqrt', not {split!r}")
        if not 0 < gamma <= 1:
            raise ValueError(f"TPE gamma must be in (0, 1], not {gamma!r}")
        if not prior_weight > 0:
            raise ValueError(f"TPE prior_weight must be > 0, not {prior_weight!r}")
        if not 0 <= category_smoothing < 1:
            raise ValueError(f"TPE category_smoothing must be in [0, 1), not "
                             f"{category_smoothing!r}")
        if isinstance(n_candidates, bool) or not isinstance(n_candidates, int) or n_candidates < 1:
            raise ValueError(f"TPE n_candidates must be an int >= 1, not {n_candidates!r}")
        self.category_smoothing, self.split = category_smoothing, split
        self.observations: dict = {}

    def observe(self, config, budget, metric) -> None:
        if metric is None or metric != metric:
            return
        values = {d.name: _read(config, d.name) for d in self.dims}
        self.observations.setdefault(budget, []).append((values, metric))

    def _model_data(self):
        """``(good, bad)`` value dicts the model is fit on, or ``None`` (sample
        uniformly)."""
        ranked = self._ranked()
        if ranked is None:
            return None
        good, bad = self._split(ranked)
        return [o[0] for o in good], [o[0] for o in bad]

    def _ranked(self):
        """The observations the model learns from, best first, as ``(values, metric)``;
        ``None`` while there are too few."""
        if self.pool == "furthest":
            return self._furthest()
        usable = [b for b, obs in self.observations.items() if len(obs) >= self.min_points]
        if not usable:
            return None
        return sorted(self.observations[max(usable)], key=lambda o: self.key(o[1]))

    def _furthest(self):
        furthest: dict = {}  # configuration -> (largest budget reached, metric, values)
        for budget in sorted(self.observations):
            for values, metric in self.observations[budget]:
                furthest[tuple(sorted((k, repr(v)) for k, v in values.items()))] = (
                    budget, metric, values)
        if len(furthest) < self.min_points:
            return None
        ranked = sorted(furthest.values(), key=lambda o: (-o[0], self.key(o[1])))
        return [(values, metric) for _, metric, values in ranked]

    def _split(self, obs):
        """The best ``gamma`` fraction of ``obs`` (ranked best first) and the rest."""
        n = len(obs)
        n_good = math.ceil(self.gamma * (math.sqrt(n) if self.split == "sqrt" else n))
        n_good = max(1, n_good)
        return obs[:n_good], obs[n_good:]

    def values(self) -> dict:
        ranked = self._ranked()
        if ranked is None or self.rng.random() < self.random_fraction:
            return super().values()
        good, bad = self._split(ranked)
        good, bad = [o[0] for o in good], [o[0] for o in bad]
        if self.multivariate:
            return self._propose(good, bad, self.dims)
        out = {}
        for d in self.dims:
            out.update(self._propose(good, bad, [d]))
        return out

    # -- the Parzen estimators
    def _kernels(self, points: list, dims) -> tuple[list, list]:
        """One estimator over ``dims``: ``(weights, columns)`` where ``columns[j]`` holds,
        for dimension ``dims[j]``, one kernel per observation and the prior last —
        ``(centre, bandwidth)`` for numbers (internal scale), a category index (``None``
        for the prior) for categories."""
        weights = [1.0] * len(points) + [self.prior_weight]
        columns = []
        for d in dims:
            if d.kind == "CATEGORY":
                index = {repr(c): i for i, c in enumerate(d.categories)}
                columns.append([index.get(repr(p[d.name])) for p in points] + [None])
                continue
            xs = [min(d.hi, max(d.lo, d.to_internal(p[d.name]))) for p in points]
            width = d.hi - d.lo
            floor = width / min(100.0, len(xs) + 2)  # the magic clip (prior included)
            order = sorted(range(len(xs)), key=xs.__getitem__)
            bands = [0.0] * len(xs)
            for rank, i in enumerate(order):
                left = xs[i] - (xs[order[rank - 1]] if rank > 0 else d.lo)
                right = (xs[order[rank + 1]] if rank + 1 < len(xs) else d.hi) - xs[i]
                bands[i] = min(width, max(floor, left, right))
            columns.append(list(zip(xs, bands)) + [((d.lo + d.hi) / 2, width)])
        return weights, columns

    def _log_density(self, x: list, dims, kernels) -> float:
        """log of the estimator's density at ``x`` (one value per dimension of ``dims``)."""
        weights, columns = kernels
        logs = [math.log(w) for w in weights]
        for j, d in enumerate(dims):
            column = columns[j]
            if d.kind == "CATEGORY":
                k = len(d.categories)
                eps = self.category_smoothing
                same, other = math.log(1 - eps + eps / k), math.log(eps / k) if eps > 0 else -1e9
                uniform = -math.log(k)
                for i, c in enumerate(column):
                    logs[i] += uniform if c is None else (same if c == x[j] else other)
                continue
            for i, (centre, h) in enumerate(column):
                mass = _normal_mass(d.lo, d.hi, centre, h)
                z = (x[j] - centre) / h
                logs[i] += -0.5 * z * z - math.log(h * mass) - _LOG_SQRT_2PI
        top = max(logs)
        return top + math.log(sum(math.exp(v - top) for v in logs)) - math.log(sum(weights))

    def _draw(self, dims, kernels) -> list:
        """One candidate from the estimator: pick a kernel by weight, then each value."""
        weights, columns = kernels
        rng = self.rng
        i = rng.choices(range(len(weights)), weights=weights)[0]
        x = []
        for j, d in enumerate(dims):
            if d.kind == "CATEGORY":
                c = columns[j][i]
                k = len(d.categories)
                if c is None or rng.random() < self.category_smoothing:
                    x.append(rng.randrange(k))
                else:
                    x.append(c)
                continue
            centre, h = columns[j][i]
            for _ in range(20):  # the truncated Gaussian, by rejection
                v = rng.gauss(centre, h)
                if d.lo <= v <= d.hi:
                    break
            x.append(min(d.hi, max(d.lo, v)))
        return x

    def _propose(self, good: list, bad: list, dims) -> dict:
        """The candidate with the largest ``log l(x) - log g(x)`` among
        ``n_candidates`` drawn from ``l`` (the good estimator)."""
        lk, gk = self._kernels(good, dims), self._kernels(bad, dims)
        best_x, best_score = None, -math.inf
        for _ in range(self.n_candidates):
            x = self._draw(dims, lk)
            score = self._log_density(x, dims, lk) - self._log_density(x, dims, gk)
            if score > best_score:
                best_x, best_score = x, score
        return {d.name: (d.categories[v] if d.kind == "CATEGORY" else d.to_value(v))
                for d, v in zip(dims, best_x)}


_LOG_SQRT_2PI = 0.5 * math.log(2 * math.pi)


def _normal_mass(lo: float, hi: float, centre: float, h: float) -> float:
    """The probability that N(centre, h^2) falls in [lo, hi] (at least 1e-12)."""
    s = h * math.sqrt(2)
    return max(1e-12, 0.5 * (math.erf((hi - centre) / s) - math.erf((lo - centre) / s)))


SAMPLERS = {"random": RandomSampler, "tpe": TPESampler}


def make_sampler(name, search_spaces, rng, mode):
    if name not in SAMPLERS:
        raise ValueError(f"sampler must be one of {sorted(SAMPLERS)}, not {name!r}")
    return SAMPLERS[name](search_spaces, rng, mode)
