"""Study coordination overhead per trial (issue 12), written to benchmarks/results/studies.json.

    python benchmarks/bench_studies.py [--quick] [--pg URL]

What one worker pays the database per trial: Ato's ``report_and_claim`` (the report of
one trial and the claim of the next in one transaction, what a worker's loop calls between
two trials; also ``claim`` then ``report`` as two calls), against Optuna's RDB storage doing the same job — ``ask`` (one
float parameter from the RandomSampler, so no sampler cost to speak of) + ``tell`` — in
the same run, on an SQLite file on disk and on PostgreSQL.  Every trial is timed
separately, the four contenders in alternating rounds (a noisy neighbour hits all alike),
and the medians are quoted.  Also: the same claim + report while 7 other worker threads
claim from the same study (contention).

PostgreSQL: ``--pg URL`` or ``$ATO_TEST_POSTGRES_URL`` (a server URL whose user may
create databases; two scratch databases are created and dropped).  Without one the
PostgreSQL rows are skipped; without Optuna installed (``pip install optuna``) its
columns are.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import threading
import time
import uuid
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _common import write_results  # noqa: E402

from ato.tracking import TrialSpec, open_coordinator  # noqa: E402

TARGET_MS = {"sqlite": 2.0, "postgresql": 5.0}


# --------------------------------------------------------------------------- contenders
class AtoWorker:
    """One worker: claim the next trial, report it."""

    def __init__(self, url: str, n: int):
        self.coordinator = open_coordinator(url)
        self.study = f"bench-{uuid.uuid4().hex[:8]}"
        self.coordinator.create_study(self.study, {"mode": "min"})
        self.coordinator.join(self.study, "w0", "bench", os.getpid())
        self.coordinator.enqueue(self.study, [TrialSpec(f"t{i:06d}", {"x": i / n})
                                              for i in range(n)])

    def trial(self) -> None:
        claim = self.coordinator.claim(self.study, "w0")
        self.coordinator.report(claim, "completed", metric=claim.payload["x"] ** 2)


class AtoStepWorker(AtoWorker):
    """What a worker's loop does between two trials: report trial k and claim trial k + 1
    in one call (``report_and_claim``, one transaction)."""

    def __init__(self, url: str, n: int):
        super().__init__(url, n)
        self.claim = self.coordinator.claim(self.study, "w0")

    def trial(self) -> None:
        claim = self.claim
        _, self.claim = self.coordinator.report_and_claim(claim, "completed",
                                                          metric=claim.payload["x"] ** 2)


class OptunaWorker:
    """Optuna's RDB storage doing the same: ask (one float from the RandomSampler) + tell."""

    def __init__(self, url: str, n: int):
        import optuna

        optuna.logging.set_verbosity(optuna.logging.WARNING)
        self.distributions = {"x": optuna.distributions.FloatDistribution(0.0, 1.0)}
        storage = optuna.storages.RDBStorage(url)
        self.study = optuna.create_study(storage=storage, study_name=f"bench-{uuid.uuid4().hex[:8]}",
                                         sampler=optuna.samplers.RandomSampler(seed=0))

    def trial(self) -> None:
        trial = self.study.ask(self.distributions)
        self.study.tell(trial, trial.params["x"] ** 2)


class FloorWorker:
    """The floor under a worker's step on PostgreSQL: one durable commit of a one-row
    UPDATE by primary key in raw psycopg, no SQLAlchemy, no pool (``report_and_claim``
    is one such commit; separate claim + report are that plus one asynchronous commit)."""

    def __init__(self, url: str, n: int):
        import psycopg

        self.conn = psycopg.connect(url, autocommit=True)
        self.conn.execute("CREATE TABLE IF NOT EXISTS bench_floor (id int PRIMARY KEY, v float)")
        self.conn.execute("INSERT INTO bench_floor VALUES (1, 0) ON CONFLICT DO NOTHING")

    def trial(self) -> None:
        self.conn.execute("UPDATE bench_floor SET v = v + 1 WHERE id = 1")


def optuna_available() -> bool:
    try:
        import optuna  # noqa: F401
    except ImportError:
        return False
    return True


# --------------------------------------------------------------------------- PostgreSQL
def pg_database(server_url: str, name: str) -> str:
    import psycopg

    with psycopg.connect(server_url, autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        conn.execute(f'CREATE DATABASE "{name}"')
    base, _, _ = server_url.rpartition("/")
    return f"{base}/{name}"


def drop_pg_database(server_url: str, name: str) -> None:
    import psycopg

    with psycopg.connect(server_url, autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def with_driver(url: str) -> str:
    """Optuna builds its own engine: name the installed psycopg 3 driver explicitly."""
    if url.startswith("postgresql://"):
        return "postgresql+psycopg://" + url[len("postgresql://"):]
    return url


# --------------------------------------------------------------------------- measuring
def measure(workers: dict, rounds: int, per_round: int) -> dict:
    """Per-trial seconds of each worker, in alternating rounds; warm-up trials first."""
    samples = {name: [] for name in workers}
    for worker in workers.values():
        for _ in range(5):
            worker.trial()
    for _ in range(rounds):
        for name, worker in workers.items():
            for _ in range(per_round):
                start = time.perf_counter()
                worker.trial()
                samples[name].append(time.perf_counter() - start)
    return {name: statistics.median(s) for name, s in samples.items()}


def contended(url: str, n_threads: int, per_thread: int) -> float:
    """Median claim + report of one timed worker while ``n_threads - 1`` others claim and
    report from the same study as fast as they can."""
    coordinator = open_coordinator(url)
    study = f"bench-contended-{uuid.uuid4().hex[:8]}"
    total = n_threads * per_thread * 2
    coordinator.enqueue(study, [TrialSpec(f"t{i:06d}", {"x": i}) for i in range(total)])
    stop = threading.Event()

    def background(i):
        claim = coordinator.claim(study, f"bg{i}")
        while claim is not None and not stop.is_set():
            _, claim = coordinator.report_and_claim(claim, "completed", metric=1.0)
        if claim is not None:
            coordinator.release(claim)

    threads = [threading.Thread(target=background, args=(i,)) for i in range(n_threads - 1)]
    for t in threads:
        t.start()
    samples = []
    claim = coordinator.claim(study, "timed")
    for _ in range(per_thread):
        if claim is None:
            break
        start = time.perf_counter()
        _, claim = coordinator.report_and_claim(claim, "completed", metric=1.0)
        samples.append(time.perf_counter() - start)
    stop.set()
    for t in threads:
        t.join()
    return statistics.median(samples)


def ms(seconds: float) -> str:
    return f"{seconds * 1e3:.2f}"


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="fewer trials (a smoke run)")
    parser.add_argument("--pg", default=os.environ.get("ATO_TEST_POSTGRES_URL"),
                        help="PostgreSQL server URL (default: $ATO_TEST_POSTGRES_URL)")
    args = parser.parse_args(argv)
    rounds, per_round = (3, 10) if args.quick else (9, 40)
    n = rounds * per_round + 10
    with_optuna = optuna_available()
    rows, extra = [], {"rounds": rounds, "trials_per_round": per_round,
                       "optuna": None, "postgresql": bool(args.pg)}
    if with_optuna:
        import optuna

        extra["optuna"] = optuna.__version__
    tmp = Path(tempfile.mkdtemp(prefix="ato-bench-studies-"))
    databases, urls = [], {}
    try:
        urls = {"sqlite": (f"sqlite:///{tmp}/ato.db", f"sqlite:///{tmp}/optuna.db")}
        if args.pg:
            tag = uuid.uuid4().hex[:6]
            names = (f"bench_studies_ato_{tag}", f"bench_studies_optuna_{tag}")
            urls["postgresql"] = tuple(pg_database(args.pg, name) for name in names)
            databases += names
        for dialect, (ato_url, optuna_url) in urls.items():
            workers = {"ato": AtoStepWorker(ato_url, n), "ato_separate": AtoWorker(ato_url, n)}
            if with_optuna:
                workers["optuna"] = OptunaWorker(with_driver(optuna_url), n)
            if dialect == "postgresql":
                workers["floor"] = FloorWorker(ato_url, n)
            medians = measure(workers, rounds, per_round)
            value = f"{ms(medians['ato'])}"
            if "optuna" in medians:
                value += (f" vs Optuna ask+tell {ms(medians['optuna'])} (Optuna "
                          f"x{medians['optuna'] / medians['ato']:.1f})")
            rows.append({"measure": f"claim + report per trial (report_and_claim), {dialect} (ms)",
                         "value": value, "target": f"<= {TARGET_MS[dialect]:g} ms",
                         "ok": medians["ato"] * 1e3 <= TARGET_MS[dialect],
                         "ato_ms": round(medians["ato"] * 1e3, 3),
                         "optuna_ms": (round(medians["optuna"] * 1e3, 3)
                                       if "optuna" in medians else None)})
            rows.append({"measure": f"  claim, then report: two calls, {dialect} (ms)",
                         "value": ms(medians["ato_separate"]),
                         "ato_ms": round(medians["ato_separate"] * 1e3, 3)})
            if "floor" in medians:
                rows.append({"measure": "  floor: one durable commit in raw psycopg (ms)",
                             "value": f"{ms(medians['floor'])} (report_and_claim = floor x"
                                      f"{medians['ato'] / medians['floor']:.2f})",
                             "floor_ms": round(medians["floor"] * 1e3, 3)})
            busy = contended(ato_url, 8, 20 if args.quick else 60)
            rows.append({"measure": f"report_and_claim with 7 other workers claiming, {dialect} (ms)",
                         "value": ms(busy), "ato_ms": round(busy * 1e3, 3)})
        if not args.pg:
            rows.append({"measure": "PostgreSQL", "value": "skipped (no --pg URL and no "
                                                           "$ATO_TEST_POSTGRES_URL)"})
        if not with_optuna:
            rows.append({"measure": "Optuna", "value": "skipped (pip install optuna)"})
    finally:
        from ato.db_routers.sql.engine import forget_engine

        for pair in urls.values():
            for url in pair:
                forget_engine(url)
        for name in databases:
            drop_pg_database(args.pg, name)
    write_results("studies", rows, extra)


if __name__ == "__main__":
    main()
