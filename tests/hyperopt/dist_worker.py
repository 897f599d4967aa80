"""A rank of a distributed search, started by test_distributed.py with torchrun-style env."""

import json
import os

import torch.distributed as dist

from ato.adict import ADict
from ato.hyperopt.hyperband import DistributedHyperBand
from ato.scope import Scope

dist.init_process_group("gloo", init_method=f"file://{os.environ['ATO_TEST_STORE']}",
                        rank=int(os.environ["RANK"]), world_size=int(os.environ["WORLD_SIZE"]))
rank, world = dist.get_rank(), dist.get_world_size()
fail_on = int(os.environ["ATO_TEST_FAIL_ON"])
scope = Scope()


@scope.observe(default=True)
def defaults(cfg):
    cfg.offset = 0.5


space = ADict(x=ADict(param_type="INTEGER", param_range=(0, 15), num_samples=16),
              c=ADict(param_type="CATEGORY", categories=["a", "b"]))
tracking = {}
if os.environ.get("ATO_TEST_DB"):  # every rank records its own trials into one database
    from ato.db_routers.sql.manager import SQLLogger

    tracking = {"tracker": SQLLogger(ADict(experiment={"project_name": "dist", "sql": {
        "db_path": os.environ["ATO_TEST_DB"]}})), "study_id": "dist", "max_budget": 16}
hyperband = DistributedHyperBand(scope, space, halving_rate=0.5, num_min_samples=3, mode="min",
                                 rank=rank, world_size=world, backend="pytorch", **tracking)
evaluated = []


@hyperband.main
def objective(config):
    evaluated.append(config.x)
    if rank == fail_on and len(evaluated) == 3:
        raise ValueError(f"boom on rank {rank}")
    return (config.x - 6) ** 2 + config.offset * config.x + (0.25 if config.c == "b" else 0)


try:
    result = objective()
    out = {"rank": rank, "config": {"x": result.config.x, "c": result.config.c},
           "metric": result.metric, "logs": [len(g) for g in result.logs],
           "evaluated": len(evaluated)}
except Exception as e:
    out = {"rank": rank, "error": f"{type(e).__name__}: {e}".splitlines()[0]}
print(json.dumps(out), flush=True)
dist.barrier()
print(json.dumps({"still_initialized": dist.is_initialized()}), flush=True)
dist.destroy_process_group()
