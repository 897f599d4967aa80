"""The Ato demo: a real (small) training job, end to end.

A two-layer neural network learns to read handwritten digits (scikit-learn's 8x8 digits,
which ship inside the package: nothing is downloaded).  Ato configures it (views, CLI
overrides, `manual`), searches its learning rate, width and batch size with HyperBand
(visible progress on a terminal), tracks every trial and the final training in SQLite,
records which version of the data the final training read and registers its checkpoints
as versions of the model `digits-mlp` (alias `candidate`), and ends by printing the best
run, the `ato runs` tables and `ato models list`.

    python examples/demo/train.py                       # the whole job
    python examples/demo/train.py wide train.epochs=30  # a named view and an override
    python examples/demo/train.py manual                # what can be configured, in order
    python examples/demo/train.py manual --why model.hidden wide
"""

from __future__ import annotations

import math
import sys
import tempfile
from importlib import resources
from pathlib import Path

import numpy as np

from ato.adict import ADict
from ato.db_routers.sql.manager import SQLFinder, SQLLogger
from ato.hyperopt.hyperband import HyperBand
from ato.scope import Scope

scope = Scope()


@scope.observe(default=True)
def defaults(cfg):
    cfg.model.hidden = 32
    cfg.model.activation = "tanh"
    cfg.train.lr = 0.1
    cfg.train.batch_size = 32
    cfg.train.epochs = 24
    cfg.train.weight_decay = 1e-4
    cfg.train.seed = 0
    cfg.search.halving_rate = 0.5
    cfg.search.num_min_samples = 2
    cfg.experiment.project_name = "digits"
    cfg.experiment.sql.db_path = "sqlite:///demo.db"


@scope.observe(priority=1)
def wide(cfg):
    cfg.model.hidden = 128


@scope.observe(priority=1)
def relu(cfg):
    cfg.model.activation = "relu"


@scope.observe(lazy=True, default=True)
def derived(cfg):
    # Depends on values the command line may have changed: runs after the CLI.
    cfg.train.warmup_epochs = max(1, cfg.train.epochs // 8)


@scope.manual
def docs(cfg):
    cfg.model = {"hidden": "width of the hidden layer", "activation": "tanh or relu"}
    cfg.train = {"lr": "SGD learning rate", "batch_size": "examples per step",
                 "epochs": "epochs of the final training (the search uses fewer)"}
    cfg.experiment = {"sql": {"db_path": "where runs are tracked (any SQLAlchemy URL)"}}


def load_data(seed: int):
    from sklearn.datasets import load_digits

    x, y = load_digits(return_X_y=True)
    x = x / 16.0
    order = np.random.default_rng(seed).permutation(len(x))
    split = int(0.8 * len(x))
    return (x[order[:split]], y[order[:split]]), (x[order[split:]], y[order[split:]])


def data_file() -> Path:
    """The file `load_data` reads (inside scikit-learn): the dataset version recorded."""
    return Path(str(resources.files("sklearn.datasets.data") / "digits.csv.gz"))


def fit(cfg, epochs: int, data, logger=None, checkpoint=None) -> float:
    """Train the network for ``epochs``; return the validation accuracy.
    ``checkpoint(epoch, weights, accuracy)`` is called after each epoch when given."""
    (xt, yt), (xv, yv) = data
    rng = np.random.default_rng(cfg.train.seed)
    hidden = cfg.model.hidden
    w1 = rng.normal(0, 1 / math.sqrt(64), (64, hidden))
    w2 = rng.normal(0, 1 / math.sqrt(hidden), (hidden, 10))
    b1, b2 = np.zeros(hidden), np.zeros(10)
    act, dact = ((np.tanh, lambda h: 1 - h ** 2) if cfg.model.activation == "tanh"
                 else (lambda z: np.maximum(z, 0), lambda h: (h > 0).astype(float)))
    onehot = np.eye(10)[yt]
    lr, bs, wd = cfg.train.lr, cfg.train.batch_size, cfg.train.weight_decay
    accuracy = 0.0
    for epoch in range(epochs):
        order = rng.permutation(len(xt))
        loss = 0.0
        for start in range(0, len(xt), bs):
            idx = order[start:start + bs]
            h = act(xt[idx] @ w1 + b1)
            logits = h @ w2 + b2
            p = np.exp(logits - logits.max(1, keepdims=True))
            p /= p.sum(1, keepdims=True)
            loss += -np.log(p[np.arange(len(idx)), yt[idx]] + 1e-12).sum()
            g = (p - onehot[idx]) / len(idx)
            gh = (g @ w2.T) * dact(h)
            w2 -= lr * (h.T @ g + wd * w2)
            b2 -= lr * g.sum(0)
            w1 -= lr * (xt[idx].T @ gh + wd * w1)
            b1 -= lr * gh.sum(0)
        accuracy = float((np.argmax(act(xv @ w1 + b1) @ w2 + b2, 1) == yv).mean())
        if logger is not None:
            logger.log_metrics({"train_loss": loss / len(xt), "val_accuracy": accuracy}, epoch)
        if checkpoint is not None:
            checkpoint(epoch, {"w1": w1, "b1": b1, "w2": w2, "b2": b2}, accuracy)
    return accuracy


@scope
def main(cfg):
    data = load_data(cfg.train.seed)
    print(f"== config (see `manual` for what each key means)\n{cfg.to_xyz()}\n")

    space = ADict({
        "train.lr": ADict(param_type="FLOAT", param_range=(0.01, 1.0), num_samples=5,
                          space_type="LOG"),
        "train.batch_size": ADict(param_type="INTEGER", param_range=(16, 128), num_samples=2,
                                  space_type="LOG"),
        "model.hidden": ADict(param_type="CATEGORY", categories=[cfg.model.hidden, 64]),
    })
    search = HyperBand(scope, space, halving_rate=cfg.search.halving_rate,
                       num_min_samples=cfg.search.num_min_samples, mode="max",
                       tracker=SQLLogger(cfg), progress=True)
    epochs_per_generation = search.compute_optimized_initial_training_steps(cfg.train.epochs // 2)

    @search.main
    def objective(trial):
        return fit(trial, epochs_per_generation[trial.__num_halved__], data)

    print(f"== HyperBand over {len(search.distributions)} configs, "
          f"epochs per generation {epochs_per_generation}")
    result = objective()
    best = result.config
    print(f"   best: lr={best.train.lr:.3g} batch_size={best.train.batch_size} "
          f"hidden={best.model.hidden} -> val_accuracy {result.metric:.3f}\n")

    final = cfg.clone()
    final.train.lr, final.train.batch_size = best.train.lr, best.train.batch_size
    final.model.hidden = best.model.hidden
    print(f"== final training: {cfg.train.epochs} epochs with the best settings")
    with SQLLogger(final) as logger, tempfile.TemporaryDirectory() as tmp:
        run_id = logger.get_current_run_id()
        # the data this run read: recorded in place (its digest, not a copy)
        logger.use_dataset("digits", data_file(), description="scikit-learn's 8x8 digits")
        every = max(1, cfg.train.epochs // 3)
        best = [-1.0]

        def checkpoint(epoch, weights, accuracy):
            last = epoch + 1 == cfg.train.epochs
            if (epoch + 1) % every and not last:
                return
            path = Path(tmp) / "digits-mlp.npz"
            np.savez(path, **weights)
            # stored content-addressed; 'best' follows the best so far (each move is
            # recorded), 'candidate' marks the last; this run keeps its best 2 by score
            aliases = (["best"] if accuracy > best[0] else []) + (["candidate"] if last else [])
            best[0] = max(best[0], accuracy)
            version = logger.log_model("digits-mlp", path, step=epoch, score=accuracy, keep=2,
                                       aliases=aliases,
                                       description="two-layer MLP on the digits")
            print(f"   epoch {epoch + 1}: digits-mlp v{version.version} "
                  f"(val_accuracy {accuracy:.3f}{', ' if aliases else ''}{', '.join(aliases)})")

        accuracy = fit(final, cfg.train.epochs, data, logger, checkpoint)
    print(f"   run {run_id}: val_accuracy {accuracy:.3f}\n")

    finder = SQLFinder(cfg)
    best_run = finder.find_best_run("digits", "val_accuracy", mode="max")
    print(f"== best tracked run: {best_run.id} (lr={best_run.config.train.lr:.3g}, "
          f"batch_size={best_run.config.train.batch_size}, status {best_run.status})\n")
    from ato.cli import main as ato

    url = cfg.experiment.sql.db_path
    print(f"$ ato runs list --db {url} --project digits --metrics objective,val_accuracy --last 8")
    ato(["runs", "list", "--db", url, "--project", "digits", "--metrics",
         "objective,val_accuracy", "--last", "8"])
    print(f"\n$ ato runs best --db {url} --project digits --metric val_accuracy")
    ato(["runs", "best", "--db", url, "--project", "digits", "--metric", "val_accuracy"])
    print(f"\n$ ato models list --db {url}")
    ato(["models", "list", "--db", url])
    print(f"\n$ ato data list --db {url}")
    ato(["data", "list", "--db", url])
    return accuracy


if __name__ == "__main__":
    sys.exit(0 if main() > 0.5 else 1)
