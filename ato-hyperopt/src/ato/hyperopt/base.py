"""Search-algorithm building blocks: :class:`HyperOpt`, :class:`GridSpaceMixIn`,
:class:`DistributedMixIn` and :class:`DistributedHyperOpt`.

Nothing here imports torch or numpy; ``torch.distributed`` is imported only by the
distributed code paths (``pip install 'ato-hyperopt[torch]'``).
"""

from __future__ import annotations

import abc
import itertools
import math
import uuid

from ato.adict import ADict
from ato.errors import AtoError

__all__ = ["HyperOpt", "GridSpaceMixIn", "DistributedMixIn", "DistributedHyperOpt",
           "SearchSpaceError", "DistributedSearchError", "better", "worst_value"]


class SearchSpaceError(AtoError, ValueError):
    """A search-space entry is malformed; the message names the parameter."""


class DistributedSearchError(AtoError, RuntimeError):
    """A rank failed during a distributed search; raised on every rank."""

    def __init__(self, rank: int, error: str):
        self.rank = rank
        super().__init__(f"rank {rank} failed: {error}")


def worst_value(mode: str) -> float:
    return -math.inf if mode == "max" else math.inf


def better(mode: str):
    """Sort key: higher is better for 'max', lower for 'min'; NaN/None rank last."""
    def key(metric):
        if metric is None or metric != metric:
            return math.inf
        return -metric if mode == "max" else metric

    return key


def _linspace(start: float, stop: float, n: int) -> list[float]:
    if n == 1:
        return [float(start)]
    step = (stop - start) / (n - 1)
    values = [start + i * step for i in range(n)]
    values[0], values[-1] = float(start), float(stop)
    return values


class GridSpaceMixIn:
    """Turns search spaces into a grid of configs (``prepare_distributions``).

    Each entry: ``param_type`` ``FLOAT`` / ``INTEGER`` (with ``param_range=(start, stop)``,
    ``num_samples``, ``space_type`` ``LINEAR``/``LOG`` and optional ``base``) or
    ``CATEGORY`` (with ``categories``).  A dotted name (``'optimizer.lr'``) sets a nested key.
    """

    @staticmethod
    def parameter_values(name: str, spec) -> list:
        """The grid values of one search-space entry (float64, exact endpoints)."""
        if not hasattr(spec, "get") or spec.get("param_type") is None:
            raise SearchSpaceError(f"search space {name!r}: 'param_type' is required "
                                   f"(FLOAT, INTEGER or CATEGORY)")
        kind = str(spec.get("param_type")).upper()
        if kind == "CATEGORY":
            categories = spec.get("categories")
            if not categories:
                raise SearchSpaceError(f"search space {name!r}: CATEGORY needs a non-empty "
                                       f"'categories' list")
            return list(categories)
        if kind not in ("FLOAT", "INTEGER"):
            raise SearchSpaceError(f"search space {name!r}: param_type must be FLOAT, INTEGER or "
                                   f"CATEGORY, not {spec.get('param_type')!r}")
        if spec.get("param_range") is None or spec.get("num_samples") is None:
            raise SearchSpaceError(f"search space {name!r}: {kind} needs 'param_range' and "
                                   f"'num_samples'")
        start, stop = spec.get("param_range")
        n = int(spec.get("num_samples"))
        if n < 1:
            raise SearchSpaceError(f"search space {name!r}: num_samples must be >= 1, got {n}")
        space = str(spec.get("space_type", "LINEAR")).upper()
        if space == "LINEAR":
            values = _linspace(float(start), float(stop), n)
        elif space == "LOG":
            base = float(spec.get("base", 10 if kind == "FLOAT" else 2))
            if start <= 0 or stop <= 0:
                raise SearchSpaceError(f"search space {name!r}: a LOG range must be positive, "
                                       f"got {(start, stop)}")
            exps = _linspace(math.log(start, base), math.log(stop, base), n)
            values = [base ** e for e in exps]
            values[0], values[-1] = float(start), float(stop)
        else:
            raise SearchSpaceError(f"search space {name!r}: space_type must be LINEAR or LOG, "
                                   f"not {spec.get('space_type')!r}")
        if kind == "FLOAT":
            return values
        out = []
        for v in values:
            r = round(v)
            i = r if abs(v - r) < 1e-9 else math.floor(v)
            if i not in out:
                out.append(i)
        return out

    @classmethod
    def prepare_distributions(cls, base_config, search_spaces) -> list[ADict]:
        """The Cartesian grid (last parameter varying fastest) of configs."""
        names = list(search_spaces.keys())
        value_lists = [cls.parameter_values(n, search_spaces[n]) for n in names]
        grid = []
        for point in itertools.product(*value_lists):
            config = base_config.clone() if isinstance(base_config, ADict) else ADict(base_config)
            for name, value in zip(names, point):
                config.set_value_by_name(name, value)
            grid.append(config)
        return grid

    @classmethod
    def grid_size(cls, search_spaces) -> int:
        return math.prod(len(cls.parameter_values(n, s)) for n, s in search_spaces.items())


class HyperOpt(abc.ABC):
    """Base class of search algorithms: holds the scope, the search spaces, the optional
    tracker and the optimisation ``mode`` ('max' or 'min').

    ``config`` is the scope's fully built config (views and CLI applied) plus
    ``__hyperopt_id__``; subclasses implement ``main(func)``.
    """

    PLUGIN_NAME = "base"

    def __init__(self, scope, search_spaces, tracker=None, mode: str = "max",
                 study_id: str | None = None):
        if mode not in ("min", "max"):
            raise ValueError(f"mode must be 'min' or 'max', not {mode!r}")
        self.scope = scope
        self.search_spaces = search_spaces
        self.tracker = tracker
        self.mode = mode
        self._study_id = study_id
        self._config = None

    def get_hyperopt_id(self) -> str:
        if self._study_id is None:
            self._study_id = uuid.uuid4().hex[:12]
        return self._study_id

    @property
    def config(self) -> ADict:
        """The base config of every candidate (built from the scope on first use)."""
        if self._config is None:
            base = self.scope.build().clone() if hasattr(self.scope, "build") else ADict(self.scope.config)
            base["__hyperopt_id__"] = self.get_hyperopt_id()
            self._config = base
        return self._config

    @config.setter
    def config(self, value) -> None:
        self._config = value

    def evaluate(self, func, config, *args, **kwargs):
        """Run the objective on ``config`` through the scope (normal injection)."""
        scope = self.scope
        previous = scope._config
        scope._config = config
        try:
            return scope(func)(*args, **kwargs)
        finally:
            scope._config = previous

    def launcher(self, func):
        """A callable running ``self.run(func, ...)``: what ``main`` returns for
        algorithms that implement ``run``."""
        def launch(*args, **kwargs) -> ADict:
            return self.run(func, *args, **kwargs)

        launch.__name__ = getattr(func, "__name__", "launch")
        launch.__wrapped__ = func
        return launch

    @abc.abstractmethod
    def main(self, func):
        """Wrap the objective ``func(config) -> metric``; return a callable that runs the
        search and returns its result."""


class DistributedMixIn:
    """Collectives over ``torch.distributed`` (imported only here)."""

    def __init__(self, rank: int = 0, world_size: int = 1, backend: str = "pytorch"):
        if backend != "pytorch":
            raise ValueError(f"backend must be 'pytorch', not {backend!r}")
        self.rank = rank
        self.world_size = world_size
        self.backend = backend

    @property
    def is_root(self) -> bool:
        return self.rank == 0

    def _dist(self):
        import torch.distributed as dist

        if self.world_size > 1 and not dist.is_initialized():
            raise AtoError("torch.distributed is not initialised: call "
                           "dist.init_process_group(...) before the search")
        return dist

    def broadcast_object_from_root(self, obj):
        if self.world_size == 1:
            return obj
        holder = [obj]
        self._dist().broadcast_object_list(holder, src=0)
        return holder[0]

    def all_gather_object(self, obj) -> list:
        if self.world_size == 1:
            return [obj]
        out = [None] * self.world_size
        self._dist().all_gather_object(out, obj)
        return out

    def destroy(self) -> None:
        import torch.distributed as dist

        if dist.is_initialized():
            dist.destroy_process_group()

    def get_hyperopt_id(self) -> str:
        if self._study_id is None:
            self._study_id = self.broadcast_object_from_root(uuid.uuid4().hex[:12])
        return self._study_id


class DistributedHyperOpt(DistributedMixIn, HyperOpt):
    def __init__(self, scope, search_spaces, tracker=None, mode: str = "max", rank: int = 0,
                 world_size: int = 1, backend: str = "pytorch", study_id: str | None = None):
        DistributedMixIn.__init__(self, rank, world_size, backend)
        HyperOpt.__init__(self, scope, search_spaces, tracker, mode, study_id)
