"""The SQL reduction of a metric series equals ato.tracking.reduce_points, also for what
the logger of this version never writes but a database may hold: NaN (PostgreSQL's float
NaN, SQLite's text 'NaN'), bursts of repeated steps, negative steps."""

from __future__ import annotations

import math
import random
from datetime import datetime, timedelta

from ato.db_routers.sql.manager import SQLFinder, SQLLogger
from ato.tracking import reduce_points
from tests.sql.conftest import make_config


def _insert(url, values_steps, distinct_times=False):
    """Insert ``(value, step)`` rows in order; ``distinct_times`` stamps row *i* with
    2026-01-01 + *i* seconds, so that equal (step, value) points are told apart."""
    logger = SQLLogger(make_config(url), handle_signals=False)
    run_id = logger.run()
    logger.finish()
    sqlite = url.startswith("sqlite")
    with logger.engine.begin() as conn:
        from sqlalchemy import text

        for i, (value, step) in enumerate(values_steps):
            stored = "NaN" if sqlite and math.isnan(value) else value
            when = (datetime(2026, 1, 1) + timedelta(seconds=i if distinct_times else 0))
            conn.execute(text("INSERT INTO metrics (run_id, key, value, step, timestamp) "
                              "VALUES (:r, 'm', :v, :s, :t)"),
                         {"r": run_id, "v": stored, "s": step,
                          "t": when.strftime("%Y-%m-%d %H:%M:%S")})
    return run_id


def test_reduction_matches_the_reference_with_nan_and_repeated_steps(db_url):
    rng = random.Random(7)
    data = []
    step = -50
    for _ in range(3000):
        step += rng.choice([0, 0, 1, 1, 1, 7])
        value = rng.choice([float("nan"), rng.uniform(-5, 5), rng.uniform(-5, 5), 1.0])
        data.append((value, step))
    run_id = _insert(db_url, data)
    finder = SQLFinder(make_config(db_url))
    history = finder.get_metric_history(run_id, "m")
    assert len(history) == 3000 and sum(math.isnan(p.value) for p in history) > 100
    for max_points in (5, 11, 64, 500):
        series = finder.get_metric_series(run_id, "m", max_points=max_points)
        expected = reduce_points(history, max_points)
        assert [(p.step, repr(p.value)) for p in series.points] == [
            (p.step, repr(p.value)) for p in expected], max_points
        assert series.total == 3000 and series.reduced


def test_reduction_of_a_step_window_and_of_sparse_huge_steps(db_url):
    """A zoomed window is reduced by the same rule over its own points; steps far apart
    (empty buckets) and beyond 32-bit products reduce exactly too."""
    rng = random.Random(11)
    data = [(rng.choice([rng.uniform(-1, 1), 0.5, 0.5]), step) for step in range(2000)]
    data += [(rng.uniform(-1, 1), 10**9 + 7 * i * i) for i in range(300)]
    run_id = _insert(db_url, data)
    finder = SQLFinder(make_config(db_url))
    history = finder.get_metric_history(run_id, "m")
    for lo, hi, max_points in [(100, 1500, 50), (0, 1999, 8), (None, None, 200),
                               (10**9, None, 20), (1990, 10**9 + 7000, 11)]:
        window = [p for p in history if (lo is None or p.step >= lo)
                  and (hi is None or p.step <= hi)]
        series = finder.get_metric_series(run_id, "m", min_step=lo, max_step=hi,
                                          max_points=max_points)
        assert [(p.step, p.value) for p in series.points] == [
            (p.step, p.value) for p in reduce_points(window, max_points)], (lo, hi)
        assert series.total == len(window) and series.reduced


def test_reduction_with_infinities_and_tied_extremes_in_windows(db_url):
    """±inf are ordinary extremes (never dropped like NaN); a bucket whose minimum or
    maximum occurs several times, also at one repeated step, keeps the earliest; every
    zoom window (including one that starts or ends inside a burst of repeated steps)
    reduces its own points by the same rule."""
    inf = float("inf")
    rng = random.Random(23)
    data = []
    for step in range(1500):
        for _ in range(rng.choice([1, 1, 1, 2, 3])):  # bursts of repeated steps
            data.append((rng.choice([inf, -inf, float("nan"), 2.0, -2.0, 2.0, -2.0,
                                     rng.uniform(-1, 1)]), step))
    run_id = _insert(db_url, data, distinct_times=True)
    finder = SQLFinder(make_config(db_url))
    history = finder.get_metric_history(run_id, "m")
    assert len({p.timestamp for p in history}) == len(history)
    assert sum(p.value == inf for p in history) > 50 and sum(p.value == -inf for p in history) > 50
    steps = sorted({p.step for p in history})
    for lo, hi, max_points in [(None, None, 5), (None, None, 100), (None, None, 600),
                               (7, 1200, 29), (steps[3], steps[3] + 40, 8),
                               (500, None, 71)]:
        window = [p for p in history if (lo is None or p.step >= lo)
                  and (hi is None or p.step <= hi)]
        series = finder.get_metric_series(run_id, "m", min_step=lo, max_step=hi,
                                          max_points=max_points)
        assert [(p.step, repr(p.value), p.timestamp) for p in series.points] == [
            (p.step, repr(p.value), p.timestamp)
            for p in reduce_points(window, max_points)], (lo, hi, max_points)
