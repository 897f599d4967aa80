"""Sample efficiency and per-trial overhead of the search algorithms, written to
benchmarks/results/search.json.

    python benchmarks/bench_search.py [--seeds N] [--optuna]

The problem is a deterministic synthetic learning curve.  A configuration (lr, batch size,
model) has a final score f in [0, 1]; after t epochs the observed score is a noisy preview
of f: f minus a learning-curve gap that closes with t (a little slower for bigger models,
so the curves of close configurations can cross) plus noise that shrinks like 1/sqrt(t).
Evaluating at budget b costs b epochs.  Every algorithm gets the same total budget (the
budget the seed HyperBand spends), and its regret is f* minus the true final score of the
configuration it returns, median over seeds.  --optuna adds Optuna's TPE and random
samplers with its HyperbandPruner under the same budget.
"""

from __future__ import annotations

import hashlib
import math
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _common import write_results  # noqa: E402

from ato.adict import ADict  # noqa: E402
from ato.hyperopt.algorithms import ASHA, BOHB, MultiBracketHyperband, RandomSearch  # noqa: E402
from ato.hyperopt.hyperband import HyperBand  # noqa: E402
from ato.scope import Scope  # noqa: E402
from ato.scoping.cli import set_argv  # noqa: E402

set_argv([])  # this script's own arguments are not Ato command-line arguments

MAX_EPOCHS = 27
MODELS = {  # peak score, best log10(lr), time constant of the learning curve (epochs)
    "small": (0.86, -1.85, 3.0),
    "medium": (0.91, -2.3, 4.0),
    "large": (0.95, -2.75, 5.0),
}
SPACE = ADict(
    lr=ADict(param_type="FLOAT", param_range=(1e-5, 1e-1), num_samples=20, space_type="LOG"),
    batch_size=ADict(param_type="INTEGER", param_range=(16, 256), num_samples=5, space_type="LOG"),
    model=ADict(param_type="CATEGORY", categories=list(MODELS)),
)


def final_score(config) -> float:
    peak, best_lr, _ = MODELS[config["model"]]
    lr_term = 0.06 * (math.log10(config["lr"]) - best_lr) ** 2
    bs_term = 0.01 * (math.log2(config["batch_size"]) - 6.4) ** 2  # best near 84
    return max(0.0, peak - lr_term - bs_term)


def noise(config, epochs: float, seed: int) -> float:
    key = f"{config['model']}|{config['lr']:.6g}|{config['batch_size']}|{epochs}|{seed}"
    u = int.from_bytes(hashlib.blake2b(key.encode(), digest_size=8).digest(), "big") / 2 ** 64
    return (u - 0.5) * 0.1 / math.sqrt(epochs)


def observed(config, epochs: float, seed: int) -> float:
    f = final_score(config)
    _, _, tau = MODELS[config["model"]]
    return f - 0.3 * math.exp(-epochs / tau) + noise(config, epochs, seed)


def best_possible() -> float:
    return max(peak for peak, _, _ in MODELS.values())


class Counter:
    def __init__(self, seed):
        self.seed, self.epochs = seed, 0.0

    def __call__(self, config, epochs):
        # a promoted configuration continues (docs/hyperopt.md): it trains the increment
        self.epochs += epochs - config.get("__resume_budget__", 0)
        return observed(config, epochs, self.seed)


def run_seed_hyperband(seed):
    counter = Counter(seed)
    scope = Scope(enable_override=True)
    hb = HyperBand(scope, SPACE, halving_rate=0.3, num_min_samples=3, mode="max", progress=False)
    steps = hb.compute_optimized_initial_training_steps(MAX_EPOCHS)
    result = hb.main(lambda c: counter(c, steps[c.__num_halved__]))()
    return result.config, counter.epochs


def run_random(seed, budget, sampler="random"):
    counter = Counter(seed)
    n = int(budget // MAX_EPOCHS)
    rs = RandomSearch(Scope(enable_override=True), SPACE, n_trials=n, max_budget=MAX_EPOCHS,
                      seed=seed, progress=False, sampler=sampler)
    result = rs.main(lambda c: counter(c, c.__budget__))()
    return result.config, counter.epochs


def run_multi(seed, budget):
    counter = Counter(seed)
    hb = MultiBracketHyperband(Scope(enable_override=True), SPACE, max_budget=MAX_EPOCHS,
                               min_budget=1, eta=3, seed=seed, progress=False,
                               iterations=100, total_budget=budget)
    result = hb.main(lambda c: counter(c, c.__budget__))()
    return result.config, counter.epochs


def run_bohb(seed, budget):
    counter = Counter(seed)
    hb = BOHB(Scope(enable_override=True), SPACE, max_budget=MAX_EPOCHS, min_budget=1, eta=3,
              seed=seed, progress=False, iterations=100, total_budget=budget)
    result = hb.main(lambda c: counter(c, c.__budget__))()
    return result.config, counter.epochs


def run_asha(seed, budget, sampler="random"):
    counter = Counter(seed)
    asha = ASHA(Scope(enable_override=True), SPACE, total_budget=budget, min_budget=1,
                max_budget=MAX_EPOCHS, eta=3, seed=seed, progress=False, sampler=sampler)
    result = asha.main(lambda c: counter(c, c.__budget__))()
    return result.config, counter.epochs


def run_optuna(seed, budget, sampler_name):
    import optuna

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    sampler = (optuna.samplers.TPESampler(seed=seed) if sampler_name == "tpe"
               else optuna.samplers.RandomSampler(seed=seed))
    study = optuna.create_study(direction="maximize", sampler=sampler,
                                pruner=optuna.pruners.HyperbandPruner(1, MAX_EPOCHS, 3))
    counter = Counter(seed)

    def objective(trial):
        config = {"lr": trial.suggest_float("lr", 1e-5, 1e-1, log=True),
                  "batch_size": trial.suggest_int("batch_size", 16, 256, log=True),
                  "model": trial.suggest_categorical("model", list(MODELS))}
        value = None
        for epoch in range(1, MAX_EPOCHS + 1):
            counter.epochs += 1
            value = observed(config, epoch, seed)
            trial.report(value, epoch)
            if trial.should_prune():
                raise optuna.TrialPruned()
        return value

    while counter.epochs < budget:
        study.optimize(objective, n_trials=1)
    complete = [t for t in study.trials if t.state.name == "COMPLETE"]
    best = max(complete, key=lambda t: t.value) if complete else study.trials[-1]
    return best.params, counter.epochs


def overhead() -> dict:
    """Microseconds per trial with a trivial objective."""
    space = ADict(x=ADict(param_type="INTEGER", param_range=(0, 1999), num_samples=2000))
    out = {}
    for name, make in {
        "hyperband": lambda: HyperBand(Scope(enable_override=True), space, 0.5, 2, progress=False),
        "random": lambda: RandomSearch(Scope(enable_override=True), space, n_trials=2000,
                                       progress=False),
        "asha": lambda: ASHA(Scope(enable_override=True), space, max_trials=2000,
                             max_budget=9, min_budget=1, progress=False),
    }.items():
        samples = []
        for _ in range(5):
            algo = make()
            calls = [0]

            def objective(c, calls=calls):
                calls[0] += 1
                return c.x

            start = time.perf_counter()
            algo.main(objective)()
            samples.append((time.perf_counter() - start) / calls[0] * 1e6)
        out[name] = statistics.median(samples)
    return out


def main() -> None:
    seeds = range(int(sys.argv[sys.argv.index("--seeds") + 1]) if "--seeds" in sys.argv else 7)
    best = best_possible()
    algorithms = {"seed HyperBand": None, "random": run_random,
                  "TPE (sequential, full budget)": lambda s, b: run_random(s, b, "tpe"),
                  "multi-bracket Hyperband": run_multi, "BOHB (Hyperband + TPE)": run_bohb,
                  "ASHA": run_asha, "ASHA + TPE": lambda s, b: run_asha(s, b, "tpe")}
    if "--optuna" in sys.argv:
        algorithms["Optuna TPE + HyperbandPruner"] = lambda s, b: run_optuna(s, b, "tpe")
        algorithms["Optuna Random + HyperbandPruner"] = lambda s, b: run_optuna(s, b, "random")
    regrets = {name: [] for name in algorithms}
    budgets = {name: [] for name in algorithms}
    for seed in seeds:
        config, budget = run_seed_hyperband(seed)
        regrets["seed HyperBand"].append(best - final_score(config))
        budgets["seed HyperBand"].append(budget)
        for name, run in algorithms.items():
            if run is None:
                continue
            config, used = run(seed, budget)
            regrets[name].append(best - final_score(config))
            budgets[name].append(used)
    rows = []
    medians = {name: statistics.median(r) for name, r in regrets.items()}
    ours = min(v for k, v in medians.items() if not k.startswith("Optuna"))
    for name in algorithms:
        rows.append({"measure": f"median regret: {name}",
                     "value": f"{medians[name]:.4f} (budget {statistics.median(budgets[name]):.0f} "
                              f"epochs, {len(regrets[name])} seeds)"})
    rows.append({"measure": "our best built-in vs the best reference figure (0.016)",
                 "value": f"{ours:.4f}", "target": "< 0.016", "ok": ours < 0.016})
    peers = {k: v for k, v in medians.items() if k.startswith("Optuna")}
    if peers:
        rows.append({"measure": "our best built-in vs every Optuna setup, same run",
                     "value": f"{ours:.4f} vs {min(peers.values()):.4f}",
                     "target": "lower", "ok": ours < min(peers.values())})
    for name, us in overhead().items():
        rows.append({"measure": f"per-trial overhead, {name}, trivial objective",
                     "value": f"{us:.1f} us", "target": "<= 50 us", "ok": us <= 50})
    write_results("search", rows, {"regrets": regrets})


if __name__ == "__main__":
    main()
