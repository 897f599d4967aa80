"""DistributedHyperBand over real torch.distributed processes (gloo on the CPU)."""

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

# real worker processes: run by `nox -s tests` after the quick run (docs/contributing.md)
pytestmark = pytest.mark.processes

torch = pytest.importorskip("torch")
WORKER = Path(__file__).with_name("dist_worker.py")


def launch(world_size, tmp_path, fail_on=-1, db=""):
    store = tmp_path / "store"
    procs = []
    for rank in range(world_size):
        env = dict(os.environ, RANK=str(rank), WORLD_SIZE=str(world_size), PYTHONWARNINGS="ignore",
                   ATO_TEST_STORE=str(store), ATO_TEST_FAIL_ON=str(fail_on), ATO_TEST_DB=db)
        procs.append(subprocess.Popen([sys.executable, str(WORKER)],
                                      env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                                      text=True))
    outputs = []
    for p in procs:
        out, err = p.communicate(timeout=240)
        assert p.returncode == 0, err
        outputs.append([json.loads(line) for line in out.splitlines() if line.startswith("{")])
    return outputs


def single_process_result():
    from ato.adict import ADict
    from ato.hyperopt.hyperband import HyperBand
    from ato.scope import Scope

    scope = Scope()

    @scope.observe(default=True)
    def defaults(cfg):
        cfg.offset = 0.5

    scope.apply([])
    space = ADict(x=ADict(param_type="INTEGER", param_range=(0, 15), num_samples=16),
                  c=ADict(param_type="CATEGORY", categories=["a", "b"]))
    hb = HyperBand(scope, space, halving_rate=0.5, num_min_samples=3, mode="min")
    result = hb.main(lambda config: (config.x - 6) ** 2 + config.offset * config.x
                     + (0.25 if config.c == "b" else 0))()
    return {"x": result.config.x, "c": result.config.c}, result.metric, [len(g) for g in result.logs]


@pytest.mark.parametrize("world_size", [2, 4])
def test_same_winner_as_single_process(tmp_path, world_size):
    """Every rank returns the single-process winner; the work is split between ranks."""
    config, metric, logs = single_process_result()
    outputs = launch(world_size, tmp_path)
    results = [o[0] for o in outputs]
    assert all(r["config"] == config and r["metric"] == metric and r["logs"] == logs
               for r in results)
    total = sum(logs[:-1])  # generations, without the final re-evaluation (done on every rank)
    assert sum(r["evaluated"] for r in results) == total + world_size
    assert max(r["evaluated"] for r in results) < total
    assert all(o[1] == {"still_initialized": True} for o in outputs)  # caller's group intact


def test_a_failing_rank_fails_every_rank(tmp_path):
    """An error on one rank is raised on all ranks, naming that rank (no hang)."""
    outputs = launch(2, tmp_path, fail_on=1)
    errors = [o[0]["error"] for o in outputs]
    assert errors == ["DistributedSearchError: rank 1 failed: ValueError: boom on rank 1"] * 2


def test_each_trial_is_recorded_once(tmp_path):
    """Two ranks record their own chunks into one database; the winner's re-evaluation,
    run on every rank, is recorded once (by the root); every run carries the search tags,
    and a second start of the study re-runs nothing."""
    from ato.adict import ADict
    from ato.db_routers.sql.manager import SQLFinder, SQLLogger

    url = f"sqlite:///{tmp_path / 'dist.db'}"
    _, _, logs = single_process_result()
    outputs = launch(2, tmp_path, db=url)
    config = ADict(experiment={"project_name": "dist", "sql": {"db_path": url}})
    SQLLogger(config)
    runs = SQLFinder(config).find_runs(tags=["study:dist"])
    assert len(runs) == sum(logs[:-1]) + 1
    tags = [{t.partition(":")[0]: t.partition(":")[2] for t in r.tags} for r in runs]
    assert all(t["algorithm"] == "hyperband" and t["bracket"] == "0" for t in tags)
    assert sum("final" in t for t in tags) == 1
    assert {(t["rung"], t["budget"]) for t in tags} == {("0", "2"), ("1", "4"), ("2", "8"), ("3", "16")}
    assert sum(o[0]["evaluated"] for o in outputs) == sum(logs[:-1]) + 2
    (tmp_path / "store").unlink(missing_ok=True)
    again = launch(2, tmp_path, db=url)
    assert all(o[0]["evaluated"] == 0 for o in again)
    assert [o[0]["config"] for o in again] == [o[0]["config"] for o in outputs]
