"""A search algorithm: coordinate descent over the grid of the search spaces.

Start from the middle of every parameter's grid; for one parameter after the other, try
each of its values with the others held, keep the best; stop when a full sweep improves
nothing.  Usable by name once installed: ``get_algorithm('coordinate')``.

Every trial goes through ``self.evaluate``, so the base records it to a ``tracker=`` and
resumes it in a study started again with the same ``study_id``; the common options
(``mode``, ``seed``, ``catch``...) pass through ``**options`` to the base.  Check it with
``python -m ato.hyperopt.conformance coordinate``.
"""

from __future__ import annotations

from ato.adict import ADict
from ato.hyperopt.base import GridSpaceMixIn, HyperOpt, better


class CoordinateSearch(GridSpaceMixIn, HyperOpt):
    PLUGIN_NAME = "coordinate"

    def __init__(self, scope, search_spaces, max_sweeps: int = 10, **options):
        super().__init__(scope, search_spaces, **options)
        self.max_sweeps = max_sweeps

    def main(self, func):
        def launch(*args, **kwargs):
            self.begin_search()  # a new search: trials numbered afresh (resume matches them)
            names = list(self.search_spaces)
            grids = {n: self.parameter_values(n, self.search_spaces[n]) for n in names}
            point = {n: grids[n][len(grids[n]) // 2] for n in names}
            key = better(self.mode)
            seen: dict = {}
            logs = []

            def score(values):
                frozen = tuple(repr(values[n]) for n in names)
                if frozen not in seen:
                    config = self.config.clone()
                    for n, v in values.items():
                        config.set_value_by_name(n, v)
                    seen[frozen] = self.evaluate(func, config, *args, **kwargs)
                    config["__metric__"] = seen[frozen]
                    logs.append(config)
                return seen[frozen]

            best = score(point)
            for _ in range(self.max_sweeps):
                improved = False
                for n in names:
                    for v in grids[n]:
                        candidate = {**point, n: v}
                        s = score(candidate)
                        if key(s) < key(best):
                            point, best, improved = candidate, s, True
                if not improved:
                    break
            config = self.config.clone()
            for n, v in point.items():
                config.set_value_by_name(n, v)
            return ADict(config=config, metric=best, logs=logs, trials=len(logs))

        return launch
