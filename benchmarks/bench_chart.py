"""The dashboard's chart read alone (issue #10: one chart of 100 runs x 10,000 steps),
written to benchmarks/results/chart.json.

    python benchmarks/bench_chart.py [--quick] [--baseline DIR] [--db PATH] [--rounds N]

No browser: ``ato ui``'s ``/api/series`` for a chart of every run, as a 646 px wide card
asks for it (``max_points`` 1292, the card's width x 2, no timestamps: the x axis is the
step), called in-process through Starlette's test client with ``Accept-Encoding: gzip``
(so it includes the JSON encoding and the compression), on a SQLite file of 100 runs x
10,000 steps of ``loss`` (each with one spike; ``tests.ui.populate.populate_long``, the
database ``bench_ui.py`` charts).  ``--db`` reuses such a file (it is written once, ~1 min,
and kept only when given; it must have been written by a logger of schema 6 or later, for
the blocks to exist, and is first upgraded to this code's schema, as a logger would: an
earlier version reads its own block sizes from it).

Each code version runs in its own subprocess (``--baseline DIR``: the ``*/src`` of an
earlier checkout first on ``PYTHONPATH``, e.g. ``git worktree add DIR REV``), the versions
taking turns, so both saw the same load; medians of the rounds.  Besides seconds it counts
SQLite virtual-machine instructions (a progress handler every 1,000), which do not depend on
the machine's load: the figure to compare when the load average is high, and CPU seconds of the process.

- ``series``: the whole request; ``read``: the tracker's part alone (the store's
  ``series``: what the finder returns, turned into the response's lists);
- ``scan floor``: one bare aggregate scan per run (``COUNT``, ``MIN``, ``MAX`` over its
  index range) — what any exact reduction reading every row costs at least;
- ``raw rows``: ``series`` again on a copy of the file whose block summaries are marked
  incomplete (``metric_block_counts`` emptied), so the reduction reads the raw rows as it
  does for pairs the blocks do not cover (and as the code before schema 6 always did);
- ``flush``: the logger's write path alone, 200,000 points of 2 keys flushed 5,000 at a
  time (the flush thread's work: rows, summary triggers and, with schema 6, the blocks),
  in points per second of wall time and of CPU time.
"""

from __future__ import annotations

import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(ROOT))

MAX_POINTS = int(os.environ.get("BENCH_MAX_POINTS", 1292))  # --baseline-max-points
STEPS = 10_000


def _count_instructions(engine) -> list[int]:
    """Install a progress handler on every SQLite connection of ``engine``; the returned
    one-element list counts thousands of VM instructions."""
    from sqlalchemy import event

    counter = [0]

    def on_connect(dbapi_conn, _record):
        def tick():
            counter[0] += 1
            return 0
        dbapi_conn.set_progress_handler(tick, 1000)

    event.listen(engine, "connect", on_connect)
    engine.dispose()
    return counter


def worker(db: str, runs: int) -> None:
    """Measure the code on ``sys.path`` once; print one JSON line."""
    from sqlalchemy import text
    from starlette.testclient import TestClient

    from ato.ui.app import create_app

    ids = list(range(1, runs + 1))
    query = (f"/api/series?runs={','.join(map(str, ids))}&key=loss&max_points={MAX_POINTS}"
             f"&times=0")
    out = {}
    with TestClient(create_app(f"sqlite:///{db}")) as client:
        store = client.app.state.store
        client.get(f"/api/series?runs=1&key=loss&max_points={MAX_POINTS}")  # opens the database
        finder = store._finder.backend
        counter = _count_instructions(finder.engine)
        counter[0] = 0
        t0, c0 = time.perf_counter(), time.process_time()
        got = client.get(query, headers={"accept-encoding": "gzip"})
        out["series"] = (time.perf_counter() - t0, counter[0] * 1000,
                         sum(s["returned"] for s in got.json()["series"]),
                         time.process_time() - c0, int(got.headers.get("content-length", 0)))
        counter[0] = 0
        t0, c0 = time.perf_counter(), time.process_time()
        store.series(ids, "loss", MAX_POINTS, None, None, False)
        out["read"] = (time.perf_counter() - t0, counter[0] * 1000, 0,
                       time.process_time() - c0, 0)
        counter[0] = 0
        t0, c0 = time.perf_counter(), time.process_time()
        with finder.engine.connect() as conn:
            for run_id in ids:
                conn.execute(text("SELECT COUNT(*), MIN(value), MAX(value) FROM metrics "
                                  "WHERE run_id = :r AND key = 'loss'"), {"r": run_id}).all()
        out["floor"] = (time.perf_counter() - t0, counter[0] * 1000, 0,
                        time.process_time() - c0, 0)
    print(json.dumps(out))


def flush_worker(directory: str) -> None:
    """Measure the logger's flush on a fresh file; print one JSON line."""
    from ato.db_routers.sql.manager import SQLLogger
    from tests.sql.conftest import make_config

    n, batch = 200_000, 5_000
    logger = SQLLogger(make_config(f"sqlite:///{directory}/flush.db"), handle_signals=False,
                       flush_interval=3600, flush_count=10**9)
    logger.run()
    wall = cpu = 0.0
    for start in range(0, n // 2, batch // 2):
        for step in range(start, start + batch // 2):
            logger.log_metric("loss", 1.0 / (1 + step), step)
            logger.log_metric("acc", step % 97 / 97, step)
        t0, c0 = time.perf_counter(), time.process_time()
        logger.flush()
        wall += time.perf_counter() - t0
        cpu += time.process_time() - c0
    logger.finish()
    print(json.dumps({"flush": [n / wall, n / cpu]}))


def code_env(baseline: Path | None) -> dict:
    env = dict(os.environ)
    paths = [str(ROOT)]
    if baseline is not None:
        paths = [str(p) for p in sorted(baseline.glob("*/src"))] + paths
    env["PYTHONPATH"] = os.pathsep.join(paths + [env.get("PYTHONPATH", "")])
    return env


def run_worker(db: Path, runs: int, env: dict) -> dict:
    args = ["--worker", str(db), str(runs)] if runs else ["--flush-worker", str(db)]
    proc = subprocess.run([sys.executable, __file__, *args],
                          env=env, capture_output=True, text=True, check=False)
    if proc.returncode != 0:
        raise SystemExit(f"bench_chart worker failed:\n{proc.stderr}")
    return json.loads(proc.stdout.strip().splitlines()[-1])


def main(quick: bool, baseline: Path | None, db: Path | None, rounds: int | None = None,
         baseline_max_points: int | None = None
         ) -> None:
    from _common import write_results

    from tests.ui.populate import populate_long

    runs = 20 if quick else 100
    rounds = rounds or (3 if quick else 5)
    tmp = Path(tempfile.mkdtemp(prefix="bench-chart-"))
    try:
        if db is None or not db.exists():
            target = db or tmp / "chart.db"
            t0 = time.perf_counter()
            populate_long(f"sqlite:///{target}", runs, STEPS)
            print(f"database written in {time.perf_counter() - t0:.1f} s")
            db = target
        from ato.db_routers.sql.engine import ensure_schema, forget_engine, get_engine

        ensure_schema(get_engine(f"sqlite:///{db}"))
        forget_engine(f"sqlite:///{db}")
        raw = tmp / "raw.db"
        shutil.copy(db, raw)
        import sqlite3

        with sqlite3.connect(raw) as conn:
            conn.execute("DELETE FROM metric_block_counts")
        versions = {"now": (db, code_env(None)), "raw rows": (raw, code_env(None))}
        if baseline is not None:
            versions["before"] = (db, {**code_env(baseline), "BENCH_MAX_POINTS": str(
                baseline_max_points or MAX_POINTS)})
        samples: dict = {name: [] for name in versions}
        flushes: dict = {name: [] for name in ("now", "before") if name in versions}
        load = [os.getloadavg()[0]]
        for i in range(rounds):
            for name, (path, env) in versions.items():
                samples[name].append(run_worker(path, runs, env))
            for name in flushes:
                target = tmp / f"flush-{name}-{i}"
                target.mkdir()
                flushes[name].append(run_worker(target, 0, versions[name][1]))
        load.append(os.getloadavg()[0])
    finally:
        shutil.rmtree(tmp, ignore_errors=True)

    def med(name, part, i):
        return statistics.median(s[part][i] for s in samples[name])

    rows = []
    points = samples["now"][0]["series"][2]
    for name in versions:
        for part, what in (("series", "GET /api/series"), ("read", "the store's read alone")):
            seconds = med(name, part, 0)
            rows.append({
                "measure": f"{name}: {what}, {runs} runs x {STEPS:,} steps -> {points:,} points",
                "value": f"{seconds:.3f} s, {med(name, part, 3):.3f} CPU s, "
                         f"{med(name, part, 1) / 1e6:.1f} M VM instructions"
                         + (f", {med(name, part, 4) / 1e6:.2f} MB sent" if part == "series"
                            else ""),
                "seconds": seconds, "cpu_seconds": med(name, part, 3),
                "instructions": med(name, part, 1), "bytes": med(name, part, 4),
                "target": "< 1 s" if name == "now" and part == "series" else "",
                "ok": seconds < 1 if name == "now" and part == "series" else None})
    rows.append({"measure": f"scan floor: one aggregate scan of each run's {STEPS:,} rows",
                 "value": f"{med('now', 'floor', 0):.3f} s, "
                          f"{med('now', 'floor', 1) / 1e6:.1f} M VM instructions",
                 "seconds": med("now", "floor", 0), "instructions": med("now", "floor", 1)})
    for name, runs_ in flushes.items():
        wall = statistics.median(s["flush"][0] for s in runs_)
        cpu = statistics.median(s["flush"][1] for s in runs_)
        rows.append({"measure": f"flush ({name}): 200,000 points of 2 keys, 5,000 per flush",
                     "value": f"{wall:,.0f} points/s wall, {cpu:,.0f} points/s CPU",
                     "points_per_s": wall, "points_per_cpu_s": cpu})
    write_results("chart", rows, {"load_average_1min": load, "rounds": rounds,
                                  "max_points": MAX_POINTS})


def parse_args(argv=None):
    import argparse

    parser = argparse.ArgumentParser(
        description="Time ato ui's /api/series for one chart of 100 runs x 10,000 steps "
                    "(results: benchmarks/results/chart.json).")
    parser.add_argument("--quick", action="store_true", help="20 runs, 3 rounds")
    parser.add_argument("--baseline", type=Path, metavar="DIR",
                        help="a checkout of an earlier revision, measured in turns with "
                             "this one (e.g. git worktree add DIR REV)")
    parser.add_argument("--db", type=Path, metavar="PATH",
                        help="the SQLite file to chart: reused when it exists, else "
                             "written there and kept")
    parser.add_argument("--rounds", type=int, metavar="N", help="rounds (default 5)")
    parser.add_argument("--baseline-max-points", type=int, metavar="N",
                        help="the max_points the baseline's card asked for (970 before "
                             "the four-point buckets), default the same as now")
    args = parser.parse_args(argv)
    if args.baseline is not None and not args.baseline.is_dir():
        parser.error(f"--baseline {args.baseline}: no such directory")
    return args


if __name__ == "__main__":
    if sys.argv[1:2] == ["--worker"]:
        worker(sys.argv[2], int(sys.argv[3]))
    elif sys.argv[1:2] == ["--flush-worker"]:
        flush_worker(sys.argv[2])
    else:
        options = parse_args()
        main(options.quick, options.baseline, options.db, options.rounds,
             options.baseline_max_points)
