"""Trials recorded through a tracker, and resuming a study without re-running them.

Each trial is one tracker run tagged ``study:<id>``, ``generation:<k>`` and
``trial:<hash of the searched values and budget>``, with its objective logged as the
metric ``objective``.  Starting a study again with the same id reuses every completed
trial instead of running it.
"""

from __future__ import annotations

import hashlib
import json

OBJECTIVE = "objective"


def trial_key(config, names, budget) -> str:
    values = {}
    for name in names:
        value = config
        for part in str(name).split("."):
            value = value.get(part) if hasattr(value, "get") else None
        values[str(name)] = value
    text = json.dumps([values, budget], sort_keys=True, default=str)
    return hashlib.sha1(text.encode("utf-8")).hexdigest()[:16]


class TrialRecorder:
    """Wraps a tracker logger (:class:`ato.tracking.TrackerLogger`: ``run(tags, config)``,
    ``log_metric``, ``finish``, and ``url`` or ``config``) for one study; completed trials
    are read back with :func:`ato.tracking.open_finder` on the same URL."""

    def __init__(self, tracker, study_id: str, names):
        self.tracker = tracker
        self.study_id = study_id
        self.names = list(names)
        self.done: dict[str, float] = {}
        if tracker is not None:
            self._load()

    def _load(self) -> None:
        """Read the study's completed trials back through the tracker protocol (any
        backend: the finder is opened from the logger's URL, never from ato-sql)."""
        from ato.tracking import open_finder, url_of

        url = getattr(self.tracker, "url", None) or url_of(self.tracker.config)
        finder = open_finder(url)
        for run in finder.find_runs(tags=[f"study:{self.study_id}"], status="completed"):
            key = next((t[6:] for t in run.tags if str(t).startswith("trial:")), None)
            history = finder.get_metric_history(run.id, OBJECTIVE)
            if key and history:
                self.done[key] = history[-1].value

    def cached(self, config, budget):
        if self.tracker is None:
            return None
        return self.done.get(trial_key(config, self.names, budget))

    def record(self, config, budget, generation: int, metric) -> None:
        if self.tracker is None:
            return
        key = trial_key(config, self.names, budget)
        tracker = self.tracker
        tracker.run(tags=[f"study:{self.study_id}", f"generation:{generation}", f"trial:{key}"],
                    config=config)
        if metric is not None and metric == metric:
            tracker.log_metric(OBJECTIVE, metric, generation)
        tracker.finish("completed")
        self.done[key] = metric
