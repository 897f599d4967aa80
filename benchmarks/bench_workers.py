"""Many workers on one shared study (issue 12): throughput scaling and ASHA's wall time,
written to benchmarks/results/workers.json.

    python benchmarks/bench_workers.py [--repeat N] [--workers 1,2,4,8] [--no-asha]
                                       [--only-asha --seeds 7]   (-> workers-asha.json)

Throughput: N worker processes (1, 2, 4, 8) share one random-search study of 12 trials
per worker through the tracker database, each trial sleeping 0.2 s (so the CPUs are not
what limits it). Trials per second are counted from the first claim to the last report,
by the database's clock, after every worker has started (a file barrier: process start-up
is not coordination); the ratio to linear is ``rate(N) / (N * rate(1))`` (target >= 0.9).
SQLite always; PostgreSQL when ``ATO_TEST_POSTGRES_URL`` names a server (the benchmark
creates and drops its own database there).

ASHA: 8 asynchronous worker processes against 1 on a synthetic learning curve whose trials
sleep 50 ms per budget unit (budgets 1 to 27); the single worker runs 120 trials, the
eight may run up to 240; the wall time until the incumbent (the best trial at the largest
budget completed so far) is as good as the single worker's final one, as a fraction of
the single worker's wall time (target <= 1/6), median over seeds.
"""

from __future__ import annotations

import json
import math
import os
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _common import write_results  # noqa: E402

from ato.adict import ADict  # noqa: E402
from ato.hyperopt import budgets  # noqa: E402

SPACE = ADict(x=ADict(param_type="FLOAT", param_range=(0.0, 1.0)),
              y=ADict(param_type="FLOAT", param_range=(0.0, 1.0)))
TRIAL_SECONDS = 0.2
PER_WORKER = 12


def final_score(x: float, y: float) -> float:
    """The score at full budget (best 1.0 at x=0.3, y=0.7)."""
    return 1.0 - (x - 0.3) ** 2 - 0.5 * (y - 0.7) ** 2


def observed(x: float, y: float, budget: float) -> float:
    """A learning curve: the final score minus a gap that closes with the budget (slower
    for large y, so curves cross)."""
    return final_score(x, y) - (0.3 + 0.3 * y) / (1.0 + budget)


# ---------------------------------------------------------------------- worker mode
def worker(job: dict) -> None:
    from ato.hyperopt import get_algorithm
    from ato.scope import Scope
    from ato.tracking import open_logger

    barrier = Path(job["barrier"])
    (barrier / f"{os.getpid()}.ready").touch()
    while len(list(barrier.glob("*.ready"))) < job["n"]:
        time.sleep(0.005)
    search = get_algorithm(job["algorithm"])(
        Scope(enable_override=True), SPACE, tracker=open_logger(job["url"], project="bench"),
        study_id=job["study"], progress=False, **job["options"])

    def objective(config):
        if job["algorithm"] == "asha":
            time.sleep(0.05 * float(config.__budget__))
            return observed(config.x, config.y, float(config.__budget__))
        time.sleep(TRIAL_SECONDS)
        return final_score(config.x, config.y)

    search.main(objective)()


def launch(n: int, job: dict) -> None:
    with tempfile.TemporaryDirectory() as barrier:
        path = Path(barrier) / "job.json"
        path.write_text(json.dumps({**job, "n": n, "barrier": barrier}))
        env = {**os.environ, "ATO_BENCH_WORKER_JOB": str(path), "PYTHONWARNINGS": "ignore"}
        procs = [subprocess.Popen([sys.executable, __file__], env=env,
                                  stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
                 for _ in range(n)]
        for p in procs:
            _, err = p.communicate(timeout=900)
            if p.returncode != 0:
                raise RuntimeError(f"a worker failed:\n{err}")


def states(url: str, study: str):
    from ato.tracking import open_coordinator

    coordinator = open_coordinator(url)
    try:
        return coordinator.trials(study)
    finally:
        coordinator.close()


# ---------------------------------------------------------------------- throughput
def throughput(url: str, n: int) -> float:
    """Trials per second of n workers on one study (first claim to last report)."""
    study = f"tput-{uuid.uuid4().hex[:8]}"
    launch(n, {"url": url, "study": study, "algorithm": "random",
               "options": {"n_trials": PER_WORKER * n, "seed": 1, "heartbeat_interval": 1.0,
                           "stale_after": 120}})
    trials = states(url, study)
    assert len(trials) == PER_WORKER * n and all(t.state == "completed" for t in trials)
    start = min(t.claimed_at for t in trials)
    end = max(t.finished_at for t in trials)
    return len(trials) / (end - start).total_seconds()


# ---------------------------------------------------------------------- overhead
def overhead(url: str, trials: int = 100, repeat: int = 3) -> dict:
    """Milliseconds per trial of a grid search with an instant objective in one process:
    untracked, tracked alone, and as the single worker of a shared study (the difference
    is the coordination: claim, report, the heartbeat thread), median of 3."""
    from ato.hyperopt import get_algorithm
    from ato.scope import Scope
    from ato.tracking import open_logger

    space = ADict(x=ADict(param_type="INTEGER", param_range=(0, trials - 1),
                          num_samples=trials))
    logger = open_logger(url, project="bench")
    setups = {"untracked": {}, "tracked": {"tracker": logger},
              "shared": {"tracker": logger, "study_id": None}}
    samples = {name: [] for name in setups}
    for _ in range(repeat):
        for name, options in setups.items():
            if "study_id" in options:
                options = {**options, "study_id": f"ovh-{uuid.uuid4().hex[:8]}"}
            search = get_algorithm("grid")(Scope(enable_override=True), space, progress=False,
                                           **options)
            start = time.perf_counter()
            search.main(lambda config: config.x)()
            samples[name].append((time.perf_counter() - start) / trials * 1e3)
    return {name: statistics.median(s) for name, s in samples.items()}


SRC_DIRS = ("ato-core", "ato-formats", "ato-sql", "ato-hyperopt", "ato-mmlab", "ato-ui")


def overhead_round(url: str, tree: str | None, trials: int) -> dict:
    """One :func:`overhead` round in a fresh interpreter importing Ato from ``tree`` (a
    checkout of another commit: its ``*/src`` folders go first on ``PYTHONPATH``), or from
    this installation when ``None``."""
    env = {**os.environ, "ATO_BENCH_OVERHEAD": json.dumps({"url": url, "trials": trials}),
           "PYTHONWARNINGS": "ignore"}
    if tree:
        env["PYTHONPATH"] = os.pathsep.join(
            [str(Path(tree) / d / "src") for d in SRC_DIRS] + [env.get("PYTHONPATH", "")])
    out = subprocess.run([sys.executable, __file__], env=env, capture_output=True, text=True,
                         timeout=900)
    if out.returncode != 0:
        raise RuntimeError(f"an overhead round failed:\n{out.stderr}")
    return json.loads(out.stdout.strip().splitlines()[-1])


def before_after(url: str, baseline: str, rounds: int, trials: int = 60) -> dict:
    """What one worker spends per trial outside an instant objective, this tree against
    ``baseline``, in alternating rounds (each a fresh process and a fresh study); medians
    in ms of ``tracked`` (the trial's run alone) and ``shared`` (one worker of a study:
    claim, report, heartbeat and the run)."""
    samples = {"before": [], "after": []}
    for _ in range(rounds):
        samples["before"].append(overhead_round(url, baseline, trials))
        samples["after"].append(overhead_round(url, None, trials))
    return {side: {k: statistics.median(r[k] for r in rs) for k in rs[0]}
            for side, rs in samples.items()}


# ---------------------------------------------------------------------- ASHA
def asha_curve(url: str, n: int, seed: int, trials: int) -> tuple[list[tuple[float, float]],
                                                                  float]:
    """``[(seconds since the first claim, regret of the incumbent)]`` and the total wall
    time of an ASHA study run by n workers."""
    study = f"asha-{uuid.uuid4().hex[:8]}"
    launch(n, {"url": url, "study": study, "algorithm": "asha",
               "options": {"max_trials": trials, "min_budget": 1, "max_budget": 27, "eta": 3,
                           "seed": seed, "heartbeat_interval": 1.0, "stale_after": 120}})
    trials = [t for t in states(url, study) if t.state == "completed"]
    start = min(t.claimed_at for t in trials)
    curve, top, incumbent = [], -1.0, None
    for t in sorted(trials, key=lambda t: t.finished_at):
        budget = float(budgets.exact(t.payload["budget"]))
        if budget > top or (budget == top and t.metric > incumbent.metric):
            top, incumbent = max(top, budget), t
        values = incumbent.payload["values"]
        curve.append(((t.finished_at - start).total_seconds(),
                      1.0 - final_score(values["x"], values["y"])))
    end = max(t.finished_at for t in trials)
    return curve, (end - start).total_seconds()


def time_to_reach(curve, regret: float) -> float:
    return next(t for t, r in curve if r <= regret + 1e-12)


def trials_to_reach(curve, regret: float) -> int | None:
    """How many trials had completed when the incumbent first reached ``regret``."""
    return next((i + 1 for i, (_, r) in enumerate(curve) if r <= regret + 1e-12), None)


def eight_wall_per_trial(curve) -> float:
    return curve[-1][0] / len(curve)


# ---------------------------------------------------------------------- main
def databases() -> list[tuple[str, str, object]]:
    out = [("sqlite", f"sqlite:///{tempfile.mkdtemp()}/workers.db", None)]
    pg = os.environ.get("ATO_TEST_POSTGRES_URL")
    if pg:
        import psycopg

        name = f"ato_bench_workers_{uuid.uuid4().hex[:8]}"
        with psycopg.connect(pg, autocommit=True) as conn:
            conn.execute(f'CREATE DATABASE "{name}"')

        def drop():
            with psycopg.connect(pg, autocommit=True) as conn:
                conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')

        out.append(("postgresql", f"{pg.rpartition('/')[0]}/{name}", drop))
    return out


def main() -> None:
    import argparse

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--workers", default="1,2,4,8")
    parser.add_argument("--seeds", type=int, default=3)
    parser.add_argument("--no-asha", action="store_true")
    parser.add_argument("--only-asha", action="store_true",
                        help="skip the throughput runs (and PostgreSQL)")
    parser.add_argument("--baseline", metavar="TREE",
                        help="only the per-trial cost of one worker outside the objective, "
                             "this tree against a checkout of another commit (e.g. "
                             "`git worktree add /tmp/base <commit>`), side by side; results "
                             "to workers-overhead.json")
    parser.add_argument("--rounds", type=int, default=5,
                        help="alternating rounds for --baseline (default 5)")
    args = parser.parse_args()
    sys.argv[1:] = []  # the searches run here build Scopes, which read the command line
    if args.baseline:
        main_before_after(args.baseline, args.rounds)
        return
    counts = [int(n) for n in args.workers.split(",")]
    rows, extra = [], {"throughput": {}, "asha": {}}
    for name, url, drop in databases():
        try:
            samples = {n: [] for n in counts}
            if args.only_asha:
                if name != "sqlite":
                    continue
                samples, counts = {}, []
            for _ in range(args.repeat if counts else 0):  # interleaved: a noisy neighbour hits every N alike
                for n in counts:
                    samples[n].append(throughput(url, n))
            if not args.only_asha:
                ms = overhead(url)
                extra.setdefault("overhead_ms", {})[name] = ms
                rows.append({"measure": f"{name}: ms per trial alone / shared (one worker)",
                             "value": f"{ms['tracked']:.1f} / {ms['shared']:.1f}",
                             "ok": None})
            rates = {n: statistics.median(s) for n, s in samples.items()}
            if samples:
                extra["throughput"][name] = {str(n): s for n, s in samples.items()}
            for n in counts:
                ratio = rates[n] / (n * rates[counts[0]] / counts[0])
                rows.append({"measure": f"{name}: {n} workers, trials/s (ratio to linear)",
                             "value": f"{rates[n]:.2f} ({ratio:.2f})", "target": ">= 0.9",
                             "ok": ratio >= 0.9, "rate": rates[n], "ratio": ratio})
            if not args.no_asha and name == "sqlite":
                fractions = []
                for seed in range(args.seeds):
                    one, one_wall = asha_curve(url, 1, seed, 120)
                    eight, _ = asha_curve(url, 8, seed, 240)
                    target = one[-1][1]
                    reached = time_to_reach(eight, target) if any(
                        r <= target + 1e-12 for _, r in eight) else math.inf
                    fractions.append(reached / one_wall)
                    # completed trials until the target: separates the promotions decided
                    # on fewer results (more trials) from per-trial overhead (more time)
                    extra["asha"][str(seed)] = {"single_wall": one_wall,
                                                "single_regret": target,
                                                "eight_reached": reached,
                                                "fraction": reached / one_wall,
                                                "single_trials": trials_to_reach(one, target),
                                                "eight_trials": trials_to_reach(eight, target),
                                                "eight_wall_per_trial": eight_wall_per_trial(
                                                    eight),
                                                "single_wall_per_trial": one_wall / len(one)}
                    print(f"asha seed {seed}: {extra['asha'][str(seed)]}", flush=True)
                frac = statistics.median(fractions)
                rows.append({"measure": "asha: 8 workers' time to the 1-worker regret / "
                                        "1-worker time",
                             "value": f"{frac:.3f}", "target": "<= 0.167",
                             "ok": frac <= 1 / 6, "fractions": fractions})
        finally:
            if drop is not None:
                from ato.db_routers.sql.engine import forget_engine

                forget_engine(url)
                drop()
    # --only-asha / --no-asha write one part each, beside the last full run's file
    write_results("workers-asha" if args.only_asha else
                  "workers-throughput" if args.no_asha else "workers", rows, extra)


def main_before_after(baseline: str, rounds: int) -> None:
    rows, extra = [], {"baseline": str(baseline), "rounds": rounds}
    for name, url, drop in databases():
        try:
            result = before_after(url, baseline, rounds)
        finally:
            if drop is not None:
                from ato.db_routers.sql.engine import forget_engine

                forget_engine(url)
                drop()
        extra[name] = result
        for kind, what in (("tracked", "the trial's tracker run alone"),
                           ("shared", "one worker of a shared study (claim, report, run)")):
            b, a = result["before"][kind], result["after"][kind]
            rows.append({"measure": f"{name}: ms per trial outside the objective, {what}",
                         "value": f"{b:.2f} -> {a:.2f} (x{b / a:.2f} faster)",
                         "before_ms": b, "after_ms": a})
    write_results("workers-overhead", rows, extra)


if __name__ == "__main__":
    job = os.environ.get("ATO_BENCH_WORKER_JOB")
    if os.environ.get("ATO_BENCH_OVERHEAD"):
        spec = json.loads(os.environ["ATO_BENCH_OVERHEAD"])
        print(json.dumps(overhead(spec["url"], spec["trials"], repeat=1)))
    elif job:
        worker(json.loads(Path(job).read_text()))
    else:
        main()
