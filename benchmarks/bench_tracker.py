"""Tracker performance (issue #5's targets), written to benchmarks/results/tracker.json.

    python benchmarks/bench_tracker.py [--quick]

SQLite files on disk in a temporary directory.  Medians; comparisons side by side in one
run: sustained log_metric throughput against raw sqlite3 executemany in one transaction;
find_best_run over 1,000 runs x 100 steps x 3 metrics; the `ato runs list --metrics`
query over 1,000 runs x 1,000 steps x 3 metrics (3M rows); logger start on a fresh file;
the import time of the tracker module.
"""

from __future__ import annotations

import sqlite3
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _common import processes_interleaved, write_results  # noqa: E402

from ato.adict import ADict  # noqa: E402
from ato.db_routers.sql.manager import SQLFinder, SQLLogger  # noqa: E402


def config(url, project="bench", **values):
    return ADict(experiment={"project_name": project, "sql": {"db_path": url}}, **values)


def logger_throughput(tmp: Path, n: int, i: int) -> float:
    logger = SQLLogger(config(f"sqlite:///{tmp}/log{i}.db"), handle_signals=False)
    logger.run()
    start = time.perf_counter()
    log = logger.log_metric
    for step in range(n // 2):
        log("loss", 0.5, step)
        log("acc", 0.9, step)
    logger.flush()
    elapsed = time.perf_counter() - start
    logger.finish()
    return n / elapsed


def raw_throughput(tmp: Path, n: int, i: int) -> float:
    path = tmp / f"raw{i}.db"
    SQLLogger(config(f"sqlite:///{path}"), handle_signals=False)  # same schema
    conn = sqlite3.connect(path, isolation_level=None)
    conn.execute("PRAGMA journal_mode=WAL")
    conn.execute("PRAGMA synchronous=NORMAL")
    stamp = "2026-01-01 00:00:00.000000"
    start = time.perf_counter()
    rows = [(1, "loss" if j % 2 else "acc", 0.5, j // 2, stamp) for j in range(n)]
    conn.execute("BEGIN")
    conn.executemany("INSERT INTO metrics (run_id, key, value, step, timestamp) "
                     "VALUES (?, ?, ?, ?, ?)", rows)
    conn.execute("COMMIT")
    elapsed = time.perf_counter() - start
    conn.close()
    return n / elapsed


def build_db(url: str, runs: int, steps: int, keys=("loss", "val_accuracy", "lr")) -> None:
    for r in range(runs):
        logger = SQLLogger(config(url, lr=0.001 * (r % 10 + 1), run=r), handle_signals=False,
                           flush_count=100_000)
        logger.run(tags=["bench"])
        log = logger.log_metric
        for step in range(steps):
            for k, key in enumerate(keys):
                log(key, ((r * 7919 + step * 31 + k) % 1000) / 1000, step)
        logger.finish()


def median_ms(fn, repeat=9) -> float:
    samples = []
    for _ in range(repeat):
        start = time.perf_counter()
        fn()
        samples.append((time.perf_counter() - start) * 1000)
    return statistics.median(samples)


def main(quick: bool) -> None:
    rows = []
    with tempfile.TemporaryDirectory() as tmp_name:
        tmp = Path(tmp_name)
        n = 100_000 if quick else 300_000
        ours, raw = [], []
        for i in range(3 if quick else 5):
            ours.append(logger_throughput(tmp, n, i))
            raw.append(raw_throughput(tmp, n, i))
        ours_m, raw_m = statistics.median(ours), statistics.median(raw)
        ratio = ours_m / raw_m
        rows.append({"measure": "log_metric sustained, metrics/s (vs raw executemany)",
                     "value": f"{ours_m:,.0f} vs {raw_m:,.0f} = {ratio:.0%}",
                     "target": ">= 50% of raw", "ok": ratio >= 0.5})

        url = f"sqlite:///{tmp}/best.db"
        build_db(url, 1000, 100)
        finder = SQLFinder(config(url))
        ms = median_ms(lambda: finder.find_best_run("bench", "val_accuracy", "max"))
        rows.append({"measure": "find_best_run, 1,000 runs x 100 steps x 3 metrics",
                     "value": f"{ms:.2f} ms", "target": "<= 2 ms", "ok": ms <= 2})

        if not quick:
            url = f"sqlite:///{tmp}/big.db"
            start = time.perf_counter()
            build_db(url, 1000, 1000)
            built = time.perf_counter() - start
            finder = SQLFinder(config(url))

            def table():
                runs = finder.find_runs("bench")
                return finder.metric_summaries([r.id for r in runs], ["val_accuracy", "loss"])

            assert len(table()) == 1000
            ms = median_ms(table)
            rows.append({"measure": "`ato runs list --metrics` data, 1,000 runs x 1,000 steps x 3",
                         "value": f"{ms:.1f} ms (3M rows written in {built:.0f} s)",
                         "target": "<= 50 ms", "ok": ms <= 50})

        starts = []
        for i in range(11):
            start = time.perf_counter()
            logger = SQLLogger(config(f"sqlite:///{tmp}/fresh{i}.db"), handle_signals=False)
            logger.run()
            starts.append((time.perf_counter() - start) * 1000)
            logger.finish()
        ms = statistics.median(starts)
        rows.append({"measure": "logger start on a fresh file (SQLLogger + run())",
                     "value": f"{ms:.1f} ms", "target": "<= 50 ms", "ok": ms <= 50})

    py = sys.executable
    times = processes_interleaved({"bare": [py, "-c", "pass"],
                                   "import": [py, "-c", "import ato.db_routers.sql.manager"]},
                                  repeat=15)
    ms = (times["import"] - times["bare"]) * 1000
    rows.append({"measure": "import ato.db_routers.sql.manager, ms over bare",
                 "value": f"{ms:.1f} ms", "target": "<= 200 ms", "ok": ms <= 200})
    write_results("tracker", rows)


if __name__ == "__main__":
    main("--quick" in sys.argv)
