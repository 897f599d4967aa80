"""One worker of a shared study, started (many times at once) by test_workers*.py and
benchmarks/bench_workers.py.

``ATO_WORKER_JOB=JOB python shared_worker.py`` (the command line is the Scope's) where
JOB is a JSON file: ``url`` (tracker), ``log`` (a
directory: each objective call appends ``start``/``end`` lines to ``<pid>.log``),
``sleep`` (seconds per trial), ``fail`` (a value of ``x`` whose trials raise), ``kill``
(a value of ``x`` whose trials SIGKILL their own worker, as the OOM killer would),
``fail_all`` (true: every trial raises ``AttributeError: lrr``, a broken objective),
``pause`` (a value of ``x`` whose trials sleep 60 s, to be signalled meanwhile),
``studies`` (a list of ``{"algorithm", "study", "options"}`` run one after the other),
``curve`` (true: the objective logs ``train_loss`` once per epoch of its budget through
the tracker it was given, as a training loop does: :func:`curve_value`), ``rerun_sleep``
(seconds a call sleeps instead of ``sleep`` when its trial was started before, by any
worker: a slow re-run).
Prints one JSON line per study: ``{"study", "x", "c", "metric", "trials"}``.
Under torchrun (``RANK``/``WORLD_SIZE`` set, ``init_process_group`` in JOB) it first
joins a gloo process group, as a user's script would.
"""

import json
import os
import sys
import time
from pathlib import Path

from ato.adict import ADict
from ato.hyperopt import get_algorithm
from ato.scope import Scope

SPACE = ADict(x=ADict(param_type="INTEGER", param_range=(0, 11), num_samples=12),
              c=ADict(param_type="CATEGORY", categories=["a", "b"]))


def score(config) -> float:
    """Best at x=7, c='b'; better with a larger budget (when there is one)."""
    budget = config.get("__budget__")
    bonus = 0.0 if budget is None else -1.0 / (1.0 + float(budget))
    return -(config.x - 7) ** 2 + (0.5 if config.c == "b" else 0.0) + bonus


def curve_value(config, epoch: int) -> float:
    """The ``train_loss`` a trial of ``config`` logs at ``epoch``: it names the trial."""
    return config.x * 100 + (10 if config.c == "b" else 0) + epoch / 10


def main() -> None:
    job = json.loads(Path(os.environ["ATO_WORKER_JOB"]).read_text())
    if job.get("init_process_group"):
        import torch.distributed as dist

        dist.init_process_group("gloo")
    log = Path(job["log"]) / f"{os.getpid()}.log"
    sleep, fail = float(job.get("sleep", 0.05)), job.get("fail")
    kill, pause, curve = job.get("kill"), job.get("pause"), job.get("curve")
    from ato.tracking import open_logger

    for item in job["studies"]:
        scope = Scope(enable_override=True)
        tracker = open_logger(job["url"], project="workers") if job["url"] else None
        cls = get_algorithm(item["algorithm"])
        search = cls(scope, SPACE, tracker=tracker, study_id=item.get("study"),
                     progress=False, **item.get("options", {}))

        def objective(config, item=item, tracker=tracker):  # noqa: B008 - this iteration's
            ident = json.dumps([item.get("study"), config.x, config.c, str(config.get("__budget__")),
                                config.get("__num_halved__", 0), config.get("__bracket__", 0)])
            again = job.get("rerun_sleep") is not None and any(
                f"start {ident}" in other.read_text().splitlines() for other in log.parent.glob("*.log"))
            with log.open("a") as f:
                f.write(f"start {ident}\n")
            time.sleep(job["rerun_sleep"] if again else sleep)
            if curve:
                start = int(config.get("__resume_budget__") or 0)
                for epoch in range(start, int(config.get("__budget__") or 1)):
                    tracker.log_metric("train_loss", curve_value(config, epoch), epoch)
            if kill is not None and config.x == kill and config.c == "a":
                import signal

                os.kill(os.getpid(), signal.SIGKILL)
            if pause is not None and config.x == pause and config.c == "a":
                time.sleep(60)
            if fail is not None and config.x == fail:
                raise ValueError(f"x={fail} diverges")
            if job.get("fail_all"):  # a broken objective: every trial raises
                raise AttributeError("lrr")
            with log.open("a") as f:
                f.write(f"end {ident}\n")
            return score(config)

        started = time.perf_counter()
        result = search.main(objective)()
        line = json.dumps({"study": item.get("study"), "x": result.config.x,
                           "c": result.config.c, "metric": result.metric,
                           "trials": len(result.get("logs") or []),
                           "seconds": time.perf_counter() - started})
        # one write of the line and its newline: torchrun's ranks share one unbuffered
        # stdout, where print's two writes can interleave with another rank's line
        sys.stdout.write(line + "\n")
        sys.stdout.flush()
    if job.get("init_process_group"):
        import torch.distributed as dist

        dist.destroy_process_group()


if __name__ == "__main__":
    main()
