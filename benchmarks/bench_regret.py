"""Regret at equal epoch budgets: Ato's multi-fidelity algorithms (promoted trials
continue) against Optuna's samplers and pruners, written to benchmarks/results/regret.json.

    python benchmarks/bench_regret.py [--seeds 101] [--budgets 4,6,12,24,60] [--jobs 2]
                                      [--problems smooth,crossing] [--quick] [--fresh]
                                      [--rerun 'ato bohb'] [--first-seed 100 --out regret-fresh]

Two simulated learning-curve problems over the same space (``lr`` log-uniform in
[1e-5, 1e-1], ``batch_size`` log-int in [16, 256], ``model`` in small/medium/large); a
configuration's score after ``t`` epochs is ``final - gap * exp(-t / tau) + noise(t)``
with noise shrinking like ``1/sqrt(t)`` and drawn from a hash of (configuration, t, seed),
so a continued configuration sees exactly what a restarted one would:

- ``smooth``: every configuration learns at nearly the same speed (``tau`` 3-5 epochs),
  so the rank after one epoch mostly predicts the rank after 27.
- ``crossing``: the configurations that end best learn slowest (small learning rates and
  the large model have ``tau`` up to 8 epochs, large learning rates and the small model
  ~1 epoch): after one epoch the eventual winners look worst, and curves cross.

Each search gets a total budget of B full trainings (B x 27 epochs); the simulated
objective charges what it trains (Ato: ``__budget__ - __resume_budget__``, a promoted
configuration continues; Optuna: every epoch reported, a pruned trial is charged the
epochs it ran, and the search stops when the budget is spent).  The regret is the best
final score of the space minus the true final score of the configuration the search
returns; the table gives the median and the interquartile range over the seeds.  No real
training happens; seeds run in parallel processes (``--jobs``).
"""

from __future__ import annotations

import argparse
import hashlib
import math
import os
import statistics
import sys
import time
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _common import write_results  # noqa: E402

MAX_EPOCHS = 27
MODELS = {"small": 0, "medium": 1, "large": 2}
PROBLEMS = ("smooth", "crossing")

# Ato algorithm -> its Optuna counterpart (sampler + pruner); the controls have none.
COUNTERPARTS = {
    "ato hyperband": "optuna random+sha",
    "ato multi_hyperband": "optuna random+hyperband",
    "ato bohb": "optuna tpe+hyperband",
    "ato asha": "optuna random+sha",
    "ato asha (tpe)": "optuna tpe+sha",
}


# ---------------------------------------------------------------- the problems
def final_score(problem: str, config) -> float:
    lr, bs, model = math.log10(config["lr"]), math.log2(config["batch_size"]), config["model"]
    m = MODELS[model]
    if problem == "smooth":
        peak, best_lr = (0.86, 0.91, 0.95)[m], (-1.85, -2.3, -2.75)[m]
        return max(0.0, peak - 0.06 * (lr - best_lr) ** 2 - 0.01 * (bs - 6.4) ** 2)
    peak, best_lr = (0.88, 0.92, 0.95)[m], (-2.6, -3.0, -3.4)[m]
    return max(0.0, peak - 0.05 * (lr - best_lr) ** 2 - 0.008 * (bs - 5.5) ** 2)


def curve(problem: str, config) -> tuple[float, float]:
    """(gap, tau): how far below its final score a configuration starts, and how many
    epochs it takes to close the gap by a factor e."""
    lr, bs, m = math.log10(config["lr"]), math.log2(config["batch_size"]), MODELS[config["model"]]
    if problem == "smooth":
        return 0.3, (3.0, 4.0, 5.0)[m]
    # slow learners: small learning rates, big models, small batches
    slowness = -0.35 * (lr + 2.0) + 0.4 * m + 0.06 * (6.0 - bs)
    return 0.35, min(8.0, max(0.7, 1.2 * math.exp(slowness)))


def noise(config, epochs: float, seed: int) -> float:
    key = f"{config['model']}|{config['lr']:.9g}|{config['batch_size']}|{epochs:.6g}|{seed}"
    u = int.from_bytes(hashlib.blake2b(key.encode(), digest_size=8).digest(), "big") / 2 ** 64
    return (u - 0.5) * 0.06 / math.sqrt(epochs)


def observed(problem: str, config, epochs: float, seed: int) -> float:
    gap, tau = curve(problem, config)
    return final_score(problem, config) - gap * math.exp(-epochs / tau) + noise(config, epochs, seed)


_BEST: dict = {}


def best_possible(problem: str) -> float:
    """The best final score over a fine grid of the space (plus a local refinement)."""
    if problem not in _BEST:
        best = 0.0
        for model in MODELS:
            for i in range(401):
                lr = 10 ** (-5 + 4 * i / 400)
                for bs in range(16, 257):
                    best = max(best, final_score(problem, {"lr": lr, "batch_size": bs,
                                                           "model": model}))
        _BEST[problem] = best
    return _BEST[problem]


# ---------------------------------------------------------------- Ato
def _space():
    from ato.adict import ADict

    return ADict(
        lr=ADict(param_type="FLOAT", param_range=(1e-5, 1e-1), space_type="LOG",
                 num_samples=20),
        batch_size=ADict(param_type="INTEGER", param_range=(16, 256), space_type="LOG",
                         num_samples=5),
        model=ADict(param_type="CATEGORY", categories=list(MODELS)),
    )


class Charged:
    """The simulated objective: observes the curve at ``__budget__`` epochs and charges
    ``__budget__ - __resume_budget__`` (the epochs a continued configuration trains)."""

    def __init__(self, problem: str, seed: int):
        self.problem, self.seed, self.epochs = problem, seed, 0.0

    def __call__(self, config):
        budget = config["__budget__"]
        self.epochs += budget - config.get("__resume_budget__", 0)
        return observed(self.problem, config, budget, self.seed)


def _scope():
    from ato.scope import Scope

    return Scope(enable_override=True)


_HB_SIZE: dict = {}


def _hyperband(num_min_samples: int, root: str):
    from ato.hyperopt.hyperband import HyperBand

    return HyperBand(_scope(), _space(), halving_rate=1 / 3, num_min_samples=num_min_samples,
                     max_budget=MAX_EPOCHS, progress=False, checkpoint_root=root)


def hyperband_size(budget_epochs: float, root: str) -> int:
    """The largest ``num_min_samples`` whose HyperBand search (the 300-point grid of the
    space, halving rate 1/3) spends at most ``budget_epochs``: the seed's HyperBand has no
    total budget, the grid and ``num_min_samples`` set what it spends (found by dry runs,
    which cost nothing here)."""
    if budget_epochs not in _HB_SIZE:
        def cost(m):
            return _hyperband(m, root).main(lambda config: 0.0)().budget_used

        lo, hi = 1, 300
        while lo < hi:  # the largest m with cost(m) <= budget (cost grows with m)
            mid = (lo + hi + 1) // 2
            if cost(mid) <= budget_epochs:
                lo = mid
            else:
                hi = mid - 1
        _HB_SIZE[budget_epochs] = lo
    return _HB_SIZE[budget_epochs]


# bohb and the alternatives to its two rules (its TPE pool, its bracket order), for
#   --algorithms "ato bohb,ato bohb (paper's rules),..." --first-seed 200 --seeds 105
#   --budgets 6,12,24 --out regret-bohb-rules
BOHB_RULES = {
    "ato bohb": ("furthest", True),
    "ato bohb (paper's rules)": ("largest", False),
    "ato bohb (largest budget; conservative first)": ("largest", True),
    "ato bohb (furthest; Hyperband's order)": ("furthest", False),
}


def run_ato(name: str, problem: str, seed: int, b: int, root: str):
    from ato.hyperopt.algorithms import ASHA, BOHB, MultiBracketHyperband, RandomSearch, TPESearch

    total = b * MAX_EPOCHS
    objective = Charged(problem, seed)
    common = dict(seed=seed, progress=False, max_budget=MAX_EPOCHS, checkpoint_root=root)
    if name == "ato hyperband":
        algorithm = _hyperband(hyperband_size(total, root), root)
    elif name == "ato multi_hyperband":
        algorithm = MultiBracketHyperband(_scope(), _space(), min_budget=1, eta=3,
                                          iterations=10_000, total_budget=total, **common)
    elif name in BOHB_RULES:
        pool, conservative_first = BOHB_RULES[name]
        variant = type("BOHBRules", (BOHB,), {"pool": pool,
                                              "conservative_first": conservative_first})
        algorithm = variant(_scope(), _space(), min_budget=1, eta=3, iterations=10_000,
                            total_budget=total, **common)
    elif name.startswith("ato asha"):
        algorithm = ASHA(_scope(), _space(), min_budget=1, eta=3, total_budget=total,
                         sampler="tpe" if "tpe" in name else "random", **common)
    elif name == "ato tpe":
        algorithm = TPESearch(_scope(), _space(), n_trials=b, **common)
    elif name == "ato random":
        algorithm = RandomSearch(_scope(), _space(), n_trials=b, **common)
    else:
        raise ValueError(name)
    result = algorithm.main(objective)()
    return result.config, objective.epochs


# ---------------------------------------------------------------- Optuna
class _Spent(Exception):
    pass


def run_optuna(name: str, problem: str, seed: int, b: int):
    import optuna

    optuna.logging.set_verbosity(optuna.logging.ERROR)  # not the _Spent trials
    _, sampler_name, pruner_name = name.replace("+", " ").split()
    sampler = (optuna.samplers.TPESampler(seed=seed) if sampler_name == "tpe"
               else optuna.samplers.RandomSampler(seed=seed))
    pruner = (optuna.pruners.HyperbandPruner(min_resource=1, max_resource=MAX_EPOCHS,
                                             reduction_factor=3)
              if pruner_name == "hyperband" else
              optuna.pruners.SuccessiveHalvingPruner(min_resource=1, reduction_factor=3))
    study = optuna.create_study(direction="maximize", sampler=sampler, pruner=pruner,
                                study_name=f"regret-{seed}")
    total, spent = b * MAX_EPOCHS, [0]

    def objective(trial):
        config = {"lr": trial.suggest_float("lr", 1e-5, 1e-1, log=True),
                  "batch_size": trial.suggest_int("batch_size", 16, 256, log=True),
                  "model": trial.suggest_categorical("model", list(MODELS))}
        value = None
        for epoch in range(1, MAX_EPOCHS + 1):
            if spent[0] >= total:
                raise _Spent()  # the budget ends mid-trial: it never completes
            spent[0] += 1
            value = observed(problem, config, epoch, seed)
            trial.report(value, epoch)
            if trial.should_prune():
                raise optuna.TrialPruned()
        return value

    while spent[0] < total:
        try:
            study.optimize(objective, n_trials=1, catch=())
        except _Spent:
            break
    complete = [t for t in study.trials if t.state.name == "COMPLETE"]
    if not complete:
        return None, spent[0]
    best = max(complete, key=lambda t: t.value)
    return best.params, spent[0]


# ---------------------------------------------------------------- driver
ALGORITHMS = ["ato hyperband", "ato multi_hyperband", "ato bohb", "ato asha", "ato asha (tpe)",
              "ato tpe", "ato random", "optuna random+hyperband", "optuna tpe+hyperband",
              "optuna random+sha", "optuna tpe+sha"]


def one_run(task):
    """One (problem, budget, algorithm, seed): its regret, the epochs it spent, seconds."""
    problem, b, name, seed, root = task
    from ato.scoping.cli import set_argv

    set_argv([])  # this script's own arguments are not Ato command-line arguments
    start = time.perf_counter()
    if name.startswith("optuna"):
        config, used = run_optuna(name, problem, seed, b)
    else:
        config, used = run_ato(name, problem, seed, b, root)
    best = best_possible(problem)
    regret = best if config is None else best - final_score(problem, config)
    return problem, b, name, seed, regret, used, time.perf_counter() - start


def quartiles(values):
    q = statistics.quantiles(values, n=4, method="inclusive")
    return q[0], statistics.median(values), q[2]


def gap_interval(ours, theirs, rounds: int = 2000) -> tuple[float, float]:
    """The 95% bootstrap interval of ``median(ours) - median(theirs)``: each side's seeds
    resampled with replacement, independently (the two libraries draw different
    configurations from the same seed), percentiles 2.5 and 97.5 of ``rounds`` gaps.
    An interval that contains 0 means the seeds cannot tell the two medians apart."""
    import random

    rng = random.Random(0)  # the same interval for the same regrets
    gaps = sorted(statistics.median(rng.choices(ours, k=len(ours)))
                  - statistics.median(rng.choices(theirs, k=len(theirs)))
                  for _ in range(rounds))
    return gaps[int(0.025 * rounds)], gaps[int(0.975 * rounds) - 1]


def verdict(entry, peer) -> str:
    """'below' (at or below the counterpart's median), 'tie' (above it, but the 95%
    interval of the gap contains 0) or 'above' (the interval is above 0)."""
    if entry["median"] <= peer["median"]:
        return "below"
    return "tie" if gap_interval(entry["regrets"], peer["regrets"])[0] <= 0 else "above"


def markdown(table, problems, budgets_, algorithms, n_seeds: int) -> str:
    """One table per problem as docs/performance.md shows them: median (interquartile
    range); bold at or below the Optuna counterpart, ≈ above it within the seeds' noise
    (:func:`gap_interval` contains 0), a cross above it beyond the noise."""
    out = []
    for problem in problems:
        out += [f"**{problem}** — median regret (interquartile range), {n_seeds} seeds", "",
                "| algorithm (counterpart) | " + " | ".join(f"B = {b}" for b in budgets_)
                + " |", "| --- |" + " --- |" * len(budgets_)]
        for name in algorithms:
            peer = COUNTERPARTS.get(name)
            cells = []
            for b in budgets_:
                entry = table[problem][str(b)].get(name, {})
                if "median" not in entry:
                    cells.append("—")
                    continue
                text = f"{entry['median']:.4f} ({entry['q1']:.4f}–{entry['q3']:.4f})"
                other = table[problem][str(b)].get(peer, {})
                if entry["median_epochs"] > b * MAX_EPOCHS:
                    text += " ⚠ over budget"
                elif "median" in other:
                    text = {"below": f"**{text}**", "tie": f"{text} ≈",
                            "above": f"{text} ✗"}[verdict(entry, other)]
                cells.append(text)
            label = f"{name} (vs {peer})" if peer else name
            out.append(f"| {label} | " + " | ".join(cells) + " |")
        out.append("")
    return "\n".join(out)


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seeds", type=int, default=101)
    parser.add_argument("--budgets", default="4,6,12,24,60",
                        help="total budgets in full trainings (x 27 epochs)")
    parser.add_argument("--problems", default=",".join(PROBLEMS))
    parser.add_argument("--algorithms", default=",".join(ALGORITHMS))
    parser.add_argument("--jobs", type=int, default=min(4, os.cpu_count() or 1))
    parser.add_argument("--quick", action="store_true", help="5 seeds, budgets 6 and 24")
    parser.add_argument("--out", default="regret")
    parser.add_argument("--fresh", action="store_true", help="ignore the cached runs")
    parser.add_argument("--report", action="store_true",
                        help="tabulate the cached runs without running more")
    parser.add_argument("--markdown", action="store_true",
                        help="also print the tables of docs/performance.md")
    parser.add_argument("--rerun", default="",
                        help="comma-separated algorithms whose cached runs are dropped "
                             "(after a change to them)")
    parser.add_argument("--first-seed", type=int, default=0,
                        help="seeds first-seed .. first-seed + seeds - 1 (fresh seeds to "
                             "check a change without tuning on the table's seeds)")
    args = parser.parse_args(argv)
    if args.quick:
        args.seeds, args.budgets = 5, "6,24"
    budgets_ = [int(b) for b in args.budgets.split(",")]
    problems = args.problems.split(",")
    algorithms = args.algorithms.split(",")
    try:
        import optuna  # noqa: F401
    except ImportError:
        print("optuna is not installed (pip install optuna, or nox -s bench_regret): "
              "Ato's algorithms only", file=sys.stderr)
        algorithms = [a for a in algorithms if not a.startswith("optuna")]
    import json
    import tempfile

    root = tempfile.mkdtemp(prefix="ato-bench-regret-")  # the (unused) checkpoint dirs
    # Every finished run is appended to a cache, so an interrupted benchmark continues
    # where it stopped (delete the cache, or pass --fresh, to measure again).
    cache = Path(tempfile.gettempdir()) / f"ato-bench-{args.out}.runs.jsonl"
    if args.fresh and cache.exists():
        cache.unlink()
    done = {}
    rerun = {name for name in args.rerun.split(",") if name}
    if cache.exists():
        for line in cache.read_text().splitlines():  # a later line replaces an earlier one
            row = json.loads(line)
            if row[2] not in rerun:
                done[tuple(row[:4])] = row
    seeds = range(args.first_seed, args.first_seed + args.seeds)
    tasks = [(p, b, name, s, root) for b in sorted(budgets_) for p in problems
             for name in algorithms for s in seeds
             if (p, b, name, s) not in done]
    if args.report:  # only tabulate what the cache holds
        tasks = []
    started = time.perf_counter()
    cache.parent.mkdir(exist_ok=True)
    with ProcessPoolExecutor(max_workers=args.jobs) as pool, cache.open("a") as out:
        for row in pool.map(one_run, tasks, chunksize=4):
            out.write(json.dumps(list(row)) + "\n")
            out.flush()
            done[tuple(row[:4])] = list(row)
    elapsed = time.perf_counter() - started
    rows_raw = [done[(p, b, name, s)] for b in budgets_ for p in problems for name in algorithms
                for s in seeds if (p, b, name, s) in done]
    present = {(r[0], r[1]) for r in rows_raw}
    budgets_ = [b for b in budgets_ if all((p, b) in present for p in problems)]

    table: dict = {}
    for problem, b, name, _seed, regret, used, seconds in rows_raw:
        entry = table.setdefault(problem, {}).setdefault(str(b), {}).setdefault(
            name, {"regrets": [], "epochs": [], "seconds": []})
        entry["regrets"].append(regret)
        entry["epochs"].append(used)
        entry["seconds"].append(seconds)
    rows = []
    verdicts = []
    for cell in (c for p in table.values() for c in p.values()):
        for entry in cell.values():
            if len(entry["regrets"]) >= 2:
                q1, med, q3 = quartiles(entry["regrets"])
                entry.update(median=med, q1=q1, q3=q3,
                             median_epochs=statistics.median(entry["epochs"]))
    for problem in problems:
        for b in budgets_:
            cell = table[problem][str(b)]
            for name in algorithms:
                if "median" not in cell.get(name, {}):
                    continue
                q1, med, q3 = (cell[name][k] for k in ("q1", "median", "q3"))
                row = {"measure": f"{problem} B={b}: {name}",
                       "value": f"{med:.4f} [{q1:.4f}, {q3:.4f}] "
                                f"({statistics.median(cell[name]['epochs']):.0f} epochs, "
                                f"{len(cell[name]['regrets'])} seeds)"}
                peer = COUNTERPARTS.get(name)
                if cell[name]["median_epochs"] > b * MAX_EPOCHS:
                    # the seed's HyperBand cannot be made smaller than one halving of its
                    # grid: over the budget, it is shown but not compared
                    row["value"] += " over the budget, not compared"
                elif peer in cell and "median" in cell[peer]:
                    their = cell[peer]["median"]
                    low, high = gap_interval(cell[name]["regrets"], cell[peer]["regrets"])
                    row["target"] = (f"<= {peer} {their:.4f} (gap {med - their:+.4f}, "
                                     f"95% interval {low:+.4f} to {high:+.4f})")
                    row["ok"] = med <= their
                    verdicts.append(verdict(cell[name], cell[peer]))
                rows.append(row)
    rows.append({"measure": "Ato multi-fidelity at or below its Optuna counterpart",
                 "value": f"{verdicts.count('below')} of {len(verdicts)} (problem, budget, "
                          f"algorithm); above within the seeds' noise: "
                          f"{verdicts.count('tie')}; above beyond it: {verdicts.count('above')}",
                 "target": "all", "ok": verdicts.count("below") == len(verdicts)})
    cpu = sum(row[6] for row in rows_raw)
    rows.append({"measure": "benchmark time", "value": f"{cpu:.0f} s of runs "
                 f"({args.seeds} seeds, {args.jobs} processes; {elapsed:.0f} s this session)"})
    for cell in (c for p in table.values() for c in p.values()):
        for entry in cell.values():
            entry.pop("seconds")
    if args.markdown:
        print(markdown(table, problems, budgets_, algorithms, len(seeds)))
    write_results(args.out, rows, {"seeds": args.seeds, "budgets_full_trainings": budgets_,
                                   "max_epochs": MAX_EPOCHS, "counterparts": COUNTERPARTS,
                                   "results": table})


if __name__ == "__main__":
    main()
