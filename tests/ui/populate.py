"""Databases for the dashboard's tests, benchmark and screenshots, written through the
real SQLLogger (never by hand), plus one hostile run whose config and tags try to inject
markup."""

from __future__ import annotations

import math
import random

from ato.adict import ADict

XSS_SCRIPT = "<script>window.__pwned = 1</script>"
XSS_IMG = '"><img src=x onerror="window.__pwned = 2">'


def config_for(url: str, project: str = "vision", **values) -> ADict:
    return ADict(experiment={"project_name": project, "sql": {"db_path": url}}, **values)


def logger_for(url: str, project: str = "vision"):
    from ato.db_routers.sql.manager import SQLLogger

    return SQLLogger(config_for(url, project), flush_interval=60, heartbeat_interval=3600,
                     handle_signals=False)


def curve(rng: random.Random, lr: float, step: int, steps: int) -> float:
    progress = step / max(steps - 1, 1)
    return 2.5 * math.exp(-progress * 40 * lr) + 0.05 * rng.random() + 0.02 / (lr * 100 + 1)


def populate_small(url: str) -> dict:
    """About a dozen runs in two projects: varying lr/batch/model/seed, nested config,
    statuses completed/failed/crashed, artifacts, the hostile run and a 3-rung study.
    Returns ``{"runs": [ids], "xss": id, "study": "s1", "spiky": id}``."""
    rng = random.Random(0)
    log = logger_for(url)
    ids = []
    for i, (lr, bs, model, seed) in enumerate([
            (0.1, 32, "resnet18", 0), (0.1, 32, "resnet18", 1), (0.01, 32, "resnet18", 0),
            (0.01, 64, "resnet50", 0), (0.001, 64, "resnet50", 1), (0.03, 128, "vit", 2)]):
        cfg = config_for(url, lr=lr, batch_size=bs, model={"name": model, "depth": 18 + i},
                         seed=seed, optimizer="adam")
        run_id = log.run(tags=["baseline", model], config=cfg)
        for step in range(50):
            log.log_metric("loss", curve(rng, lr, step, 50), step)
            log.log_metric("val/acc", 1 - curve(rng, lr, step, 50) / 3, step)
        log.log_artifact(run_id, f"checkpoints/run{run_id}/best.pt", data_type="model",
                         metadata={"epoch": 49})
        log.finish("failed" if i == 5 else "completed")
        ids.append(run_id)
    # one long run with a single spike that a reduced series must keep
    spiky = log.run(tags=["long"], config=config_for(url, lr=0.05, batch_size=32,
                                                     model={"name": "resnet18", "depth": 18},
                                                     seed=3, optimizer="sgd"))
    for step in range(20_000):
        log.log_metric("loss", 99.0 if step == 12_345 else 1.0 / (1 + step / 500), step)
    log.finish("completed")
    ids.append(spiky)
    # the hostile run
    xss = log.run(tags=[XSS_SCRIPT, XSS_IMG], config=config_for(
        url, lr=0.02, batch_size=16, model={"name": XSS_IMG, "depth": 1}, seed=0,
        optimizer=XSS_SCRIPT))
    log.log_metric("loss", 1.0, 0)
    log.log_artifact(xss, XSS_IMG, data_type=XSS_SCRIPT, metadata={"note": XSS_SCRIPT})
    log.finish("completed")
    ids.append(xss)
    # a crashed run: left running (its heartbeat will be stale for stale_after=0.5)
    crashed = log.run(tags=["left-running"], config=config_for(url, lr=0.5, batch_size=32,
                      model={"name": "resnet18", "depth": 18}, seed=9, optimizer="adam"))
    log.log_metric("loss", 3.0, 0)
    log.flush()
    log._stop.set()
    log._run_id = None
    ids.append(crashed)
    # a successive-halving study: 6 trials at rung 0 (budget 1), 2 promoted to rung 1 (3)
    study = logger_for(url, "search")
    values = {"a": 0.9, "b": 0.5, "c": 0.7, "d": 0.2, "e": 0.6, "f": 0.8}
    for rung, budget, keys in [(0, "1/3", "abcdef"), (1, 1, "db")]:
        for key in keys:
            cfg = config_for(url, "search", lr=values[key], width=16)
            study.run(tags=["study:s1", f"trial:{key}-{rung}", "bracket:0",
                                  f"rung:{rung}", f"budget:{budget}", f"config:h{key}"],
                            config=cfg)
            study.log_metric("objective", values[key] / (1 + rung), rung)
            study.finish("completed")
    study.run(tags=["study:s1", "algorithm:hyperband", "final", "bracket:0", "rung:1",
                    "budget:1", "config:hd"],
              config=config_for(url, "search", lr=values["d"], width=16))
    study.log_metric("objective", 0.1, 1)
    study.finish("completed")
    import time

    return {"runs": ids, "xss": xss, "study": "s1", "spiky": spiky, "crashed": crashed,
            "_created": time.time()}


def populate_many(url: str, n_runs: int = 1000, steps: int = 20, keys=("loss", "acc", "lr"),
                  project: str = "sweep") -> list[int]:
    """``n_runs`` completed runs of ``steps`` points for each of ``keys``."""
    rng = random.Random(1)
    log = logger_for(url, project)
    ids = []
    for i in range(n_runs):
        lr = [0.1, 0.03, 0.01, 0.003][i % 4]
        cfg = config_for(url, project, lr=lr, batch_size=[32, 64][i % 2], seed=i,
                         model={"name": ["resnet18", "resnet50", "vit"][i % 3], "dropout": 0.1})
        ids.append(log.run(tags=[f"group{i % 5}"], config=cfg))
        for step in range(steps):
            v = curve(rng, lr, step, steps)
            for key in keys:
                log.log_metric(key, v if key == "loss" else 1 - v / 3, step)
        log.finish("completed")
    return ids


def populate_long(url: str, n_runs: int = 100, steps: int = 10_000,
                  project: str = "long") -> list[int]:
    """``n_runs`` runs of ``steps`` points of ``loss`` (each with one spike)."""
    rng = random.Random(2)
    log = logger_for(url, project)
    ids = []
    for i in range(n_runs):
        lr = 0.001 * (1 + i % 10)
        ids.append(log.run(tags=["long"], config=config_for(url, project, lr=lr, seed=i)))
        spike = rng.randrange(steps)
        for step in range(steps):
            log.log_metric("loss", 50.0 if step == spike else curve(rng, lr, step, steps), step)
        log.finish("completed")
    return ids
