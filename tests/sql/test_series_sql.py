"""The SQL reduction of a metric series equals ato.tracking.reduce_points, also for what
the logger of this version never writes but a database may hold: NaN (PostgreSQL's float
NaN, SQLite's text 'NaN'), bursts of repeated steps, negative steps."""

from __future__ import annotations

import math
import random
from datetime import datetime, timedelta

import pytest

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
    for max_points in (9, 11, 64, 500):
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
    for lo, hi, max_points in [(100, 1500, 50), (0, 1999, 9), (None, None, 200),
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
    for lo, hi, max_points in [(None, None, 9), (None, None, 100), (None, None, 600),
                               (7, 1200, 29), (steps[3], steps[3] + 40, 9),
                               (500, None, 71)]:
        window = [p for p in history if (lo is None or p.step >= lo)
                  and (hi is None or p.step <= hi)]
        series = finder.get_metric_series(run_id, "m", min_step=lo, max_step=hi,
                                          max_points=max_points)
        assert [(p.step, repr(p.value), p.timestamp) for p in series.points] == [
            (p.step, repr(p.value), p.timestamp)
            for p in reduce_points(window, max_points)], (lo, hi, max_points)


# --------------------------------------------------------------------------- block summaries
# The logger's flush writes per-block summaries (schema 6); a reduction read from them must
# equal reduce_points on the raw rows, whatever the data, and fall back to the raw rows
# wherever the blocks do not cover the series.

@pytest.fixture
def block_reads(monkeypatch):
    """Counts the reductions answered from block summaries (``get_metric_series`` and
    ``get_metric_series_columns`` each read them once per reduction): the runs of each."""
    from ato.db_routers.sql import blocks

    calls = []
    real = blocks.reduce_runs

    def counted(*args, **kwargs):
        calls.append(sorted(args[3]))
        return real(*args, **kwargs)

    monkeypatch.setattr(blocks, "reduce_runs", counted)
    return calls


def _blocks_cover(url, run_id, key="m") -> bool:
    from sqlalchemy import text

    from ato.db_routers.sql.engine import get_engine

    with get_engine(url).connect() as conn:
        row = conn.execute(text(
            "SELECT s.count, c.rows FROM metric_summaries s LEFT JOIN metric_block_counts c "
            "ON c.run_id = s.run_id AND c.key = s.key WHERE s.run_id = :r AND s.key = :k"),
            {"r": run_id, "k": key}).first()
    return row is not None and row[0] == row[1]


def _logged(url, batches, key="m"):
    """Log ``batches`` (lists of ``(value, step)``) through the logger, one flush each."""
    logger = SQLLogger(make_config(url), handle_signals=False, flush_interval=3600)
    run_id = logger.run()
    for batch in batches:
        for value, step in batch:
            logger.log_metric(key, value, step)
        logger.flush()
    logger.finish()
    return run_id


def _check_windows(finder, run_id, windows, key="m"):
    history = finder.get_metric_history(run_id, key)
    reduced = 0
    for lo, hi, max_points in windows:
        window = [p for p in history if (lo is None or p.step >= lo)
                  and (hi is None or p.step <= hi)]
        series = finder.get_metric_series(run_id, key, min_step=lo, max_step=hi,
                                          max_points=max_points)
        expected = reduce_points(window, max_points)
        assert [(p.step, repr(p.value), p.timestamp) for p in series.points] == [
            (p.step, repr(p.value), p.timestamp) for p in expected], (lo, hi, max_points)
        assert series.total == len(window)
        reduced += series.reduced
        # the columns of the chart's read: the same points, the same counts
        columns, = finder.get_metric_series_columns([run_id], key, min_step=lo, max_step=hi,
                                                    max_points=max_points)
        assert [(s, repr(v), t) for s, v, t in zip(columns.steps, columns.values,
                                                    columns.times)] == [
            (p.step, repr(p.value), p.timestamp) for p in expected], (lo, hi, max_points)
        assert (columns.total, columns.reduced) == (series.total, series.reduced)
    return reduced


def _random_series(rng, n):
    """Values with NaN, ±inf, many ties; steps with bursts of repeats, gaps, negative and
    huge steps, and out-of-order logging."""
    inf, nan = float("inf"), float("nan")
    step = rng.choice([-5000, -3, 0, 17, 10**9])
    data = []
    for _ in range(n):
        step += rng.choice([0, 0, 1, 1, 1, 1, 2, 5, 63, 1000, 70_000])
        logged = step - rng.choice([0, 0, 0, 0, 0, 3, 40, 2000])  # sometimes out of order
        value = rng.choice([nan, inf, -inf, 1.0, -1.0, 0.0, 1.0, rng.uniform(-9, 9),
                            rng.uniform(-9, 9), rng.uniform(-9, 9)])
        data.append((value, logged))
    return data


def test_block_reduction_equals_the_reference_on_random_series(db_url, block_reads):
    """Property-style: random series logged in random flush sizes; every reduction (whole
    series, random windows, every bucket width) equals reduce_points on the raw rows."""
    rng = random.Random(2026)
    for _ in range(6):
        data = _random_series(rng, rng.choice([400, 1500, 4000]))
        batches, i = [], 0
        while i < len(data):
            k = rng.choice([1, 7, 300, 2000])
            batches.append(data[i:i + k])
            i += k
        run_id = _logged(db_url, batches)
        assert _blocks_cover(db_url, run_id)
        finder = SQLFinder(make_config(db_url))
        steps = sorted(s for _, s in data)
        windows = [(None, None, mp) for mp in (9, 10, 35, 200, 970)]
        for _ in range(6):
            a, b = sorted(rng.sample(steps, 2))
            windows.append((rng.choice([a, a - 1, None]), rng.choice([b, b + 2, None]),
                            rng.choice([9, 11, 64, 300])))
        before = len(block_reads)
        reduced = _check_windows(finder, run_id, windows)
        # every reduction read the blocks, once as a series and once as columns
        assert len(block_reads) - before == 2 * reduced and reduced >= 8


def test_block_reduction_on_dense_long_series_with_spikes(db_url):
    """The dashboard's case: 20,000 dense steps, spikes, one flush per 500 points; the
    spikes survive and the points equal the reference."""
    rng = random.Random(5)
    data = [(math.sin(s / 300) + rng.uniform(-0.1, 0.1), s) for s in range(20_000)]
    for s in (1234, 7777, 15_001):
        data[s] = (50.0, s)
    run_id = _logged(db_url, [data[i:i + 500] for i in range(0, len(data), 500)])
    finder = SQLFinder(make_config(db_url))
    _check_windows(finder, run_id, [(None, None, 970), (None, None, 100), (1000, 9000, 301),
                                    (1233, 1235, 9), (-10, 5, 9)])
    kept = {p.step for p in finder.get_metric_series(run_id, "m", max_points=50).points}
    assert {1234, 7777, 15_001} <= kept


def test_two_writers_of_one_run_keep_the_blocks_exact(db_url):
    """Two loggers (e.g. ranks) appending to the same run, flushes interleaved, equal
    steps and values from both: the merged blocks still give the reference's points."""
    first = SQLLogger(make_config(db_url), handle_signals=False, flush_interval=3600)
    run_id = first.run()
    second = SQLLogger(make_config(db_url), handle_signals=False, flush_interval=3600)
    second._run_id = run_id  # a second process writing the same run
    rng = random.Random(3)
    for round_ in range(20):
        for logger in (first, second, first):
            for s in range(round_ * 100, round_ * 100 + 100, rng.choice([1, 2, 3])):
                logger.log_metric("m", rng.choice([1.0, -1.0, rng.uniform(-2, 2)]), s)
            logger.flush()
    first.finish()
    assert _blocks_cover(db_url, run_id)
    _check_windows(SQLFinder(make_config(db_url)), run_id,
                   [(None, None, 9), (None, None, 99), (None, None, 500), (150, 1700, 40)])


def test_foreign_rows_updates_and_deletes_fall_back_to_raw_rows(db_url, block_reads):
    """Rows the logger did not write, and any update or delete, leave the pair without
    complete blocks: the reduction is read from the raw rows and stays exact; a pair
    whose rows were all deleted gets exact blocks again from the next flushes."""
    from sqlalchemy import text

    from ato.db_routers.sql.engine import get_engine

    rng = random.Random(9)
    logger = SQLLogger(make_config(db_url), handle_signals=False, flush_interval=3600)
    run_id = logger.run()
    for s in range(3000):
        logger.log_metric("m", rng.uniform(-1, 1), s)
        logger.log_metric("n", rng.uniform(-1, 1), s)
    logger.flush()
    finder = SQLFinder(make_config(db_url))
    windows = [(None, None, 50), (10, 2000, 20)]
    assert _blocks_cover(db_url, run_id) and _blocks_cover(db_url, run_id, "n")
    engine = get_engine(db_url)
    with engine.begin() as conn:  # a foreign writer: a spike the blocks never saw
        conn.execute(text("INSERT INTO metrics (run_id, key, value, step) "
                          "VALUES (:r, 'm', 99.0, 1500)"), {"r": run_id})
    assert not _blocks_cover(db_url, run_id)
    _check_windows(finder, run_id, windows)
    assert block_reads == []  # read from the raw rows
    assert 1500 in {p.step for p in finder.get_metric_series(run_id, "m", max_points=20).points}
    with engine.begin() as conn:
        conn.execute(text("UPDATE metrics SET value = -99.0 WHERE run_id = :r AND key = 'n' "
                          "AND step = 700"), {"r": run_id})
    assert not _blocks_cover(db_url, run_id, "n")
    _check_windows(finder, run_id, windows, key="n")
    with engine.begin() as conn:
        conn.execute(text("DELETE FROM metrics WHERE run_id = :r AND key = 'n'"), {"r": run_id})
    for s in range(2000):
        logger.log_metric("n", rng.uniform(-1, 1), s)
    logger.flush()
    logger.finish()
    assert _blocks_cover(db_url, run_id, "n")
    _check_windows(finder, run_id, windows, key="n")
    assert len(block_reads) == 2 * len(windows)


def test_series_still_growing_while_read(db_url):
    """A reader racing the logger's flushes always returns the reference reduction of
    some consistent prefix of the series (one snapshot per call)."""
    import threading

    logger = SQLLogger(make_config(db_url), handle_signals=False, flush_interval=3600)
    run_id = logger.run()
    for s in range(1000):
        logger.log_metric("m", math.cos(s), s)
    logger.flush()
    done = threading.Event()

    def write():
        for s in range(1000, 6000):
            logger.log_metric("m", math.cos(s) * (1 + s % 7), s)
            if s % 250 == 0:
                logger.flush()
        logger.flush()
        done.set()

    writer = threading.Thread(target=write)
    writer.start()
    finder = SQLFinder(make_config(db_url))
    seen = 0
    try:
        while not done.is_set() or seen < 3:
            series = finder.get_metric_series(run_id, "m", max_points=64)
            prefix = finder.get_metric_history(run_id, "m")[:series.total]
            assert [(p.step, p.value) for p in series.points] == [
                (p.step, p.value) for p in reduce_points(prefix, 64)]
            seen += 1
    finally:
        writer.join()
        logger.finish()


def test_columns_of_many_runs_equal_each_runs_series(db_url, block_reads):
    """The chart's read of many runs at once: runs with different first and last steps
    (several plans), a run without block summaries (rows written by another program), a
    short run, a run without the key, an unknown run and a repeated id, in the order
    asked; each equals its own series."""
    rng = random.Random(11)
    runs = []
    for _ in range(7):
        start = rng.choice([0, 0, -40, 3])
        n = rng.choice([900, 2500])
        data = [(rng.choice([math.sin(s / 40), float("nan"), 1.0]), s)
                for s in range(start, start + n)]
        data[n // 3] = (1e6, data[n // 3][1])  # a spike
        runs.append(_logged(db_url, [data[j:j + 400] for j in range(0, n, 400)]))
    foreign = _insert(db_url, [(float(s % 13), s) for s in range(1500)])
    short = _logged(db_url, [[(0.5, 0), (0.25, 1)]])
    other_key = _logged(db_url, [[(1.0, 0)]], key="other")
    asked = [runs[3], foreign, *runs[:3], short, other_key, 10**6, runs[3], *runs[4:]]
    finder = SQLFinder(make_config(db_url))
    together = []
    for times in (True, False):
        before = len(block_reads)
        got = finder.get_metric_series_columns(asked, "m", max_points=64, times=times)
        together += block_reads[before:]
        assert [c.run_id for c in got] == asked
        for c in got:
            series = finder.get_metric_series(c.run_id, "m", max_points=64)
            assert c.steps == [p.step for p in series.points]
            assert [repr(v) for v in c.values] == [repr(p.value) for p in series.points]
            assert all(type(v) is float for v in c.values)
            assert c.times == ([p.timestamp for p in series.points] if times else None)
            assert (c.key, c.total, c.reduced) == ("m", series.total, series.reduced)
        assert got[5].steps == [0, 1] and got[6].total == got[7].total == 0
        assert 1e6 in got[0].values
    # the runs with complete blocks were reduced together, in one read per call
    assert len(together) == 2
    assert all(call == sorted(runs) for call in together)
    with pytest.raises(ValueError):
        finder.get_metric_series_columns(runs, "m", max_points=8)
    assert finder.get_metric_series_columns([], "m", max_points=64) == []


def test_columns_keep_infinities_and_nan_as_floats(db_url):
    inf, nan = float("inf"), float("nan")
    values = [inf, 1.0, nan, -inf] * 300
    run_id = _logged(db_url, [[(v, s) for s, v in enumerate(values)]])
    finder = SQLFinder(make_config(db_url))
    columns, = finder.get_metric_series_columns([run_id], "m", max_points=40, times=False)
    history = finder.get_metric_history(run_id, "m")
    expected = reduce_points(history, 40)
    assert [repr(v) for v in columns.values] == [repr(p.value) for p in expected]
    assert {repr(v) for v in columns.values} >= {"inf", "-inf"}


def test_a_whole_series_chart_reads_no_raw_range(db_url):
    """The dashboard's read of whole series comes from block rows: the statements sent
    touch ``metrics`` only for each run's first and last point and the kept points'
    timestamps — no bucket's range of raw rows (SQLite's trace of every statement)."""
    if not db_url.startswith("sqlite"):
        pytest.skip("SQLite's statement trace")
    from sqlalchemy import event

    from ato.db_routers.sql.engine import forget_engine, get_engine

    run_ids = [_logged(db_url, [[(math.sin(s / 50), s) for s in range(i, 6000)]])
               for i in range(3)]
    forget_engine(db_url)
    sent: list = []
    event.listen(get_engine(db_url, readonly=True), "connect",
                 lambda dbapi, _: dbapi.set_trace_callback(sent.append))
    finder = SQLFinder(make_config(db_url))
    for times in (False, True):
        del sent[:]
        got = finder.get_metric_series_columns(run_ids, "m", max_points=301, times=times)
        assert all(c.reduced and 100 < len(c.steps) <= 301 for c in got)
        raw = [q for q in sent if "FROM metrics" in q and "r.run" not in q]
        assert raw == ([] if not times else raw[:1]) and all("BETWEEN" not in q for q in raw)
        assert any("FROM metric_blocks" in q for q in sent), sent
    forget_engine(db_url)
