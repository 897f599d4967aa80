"""A rank of a random search over a torch.distributed group whose rank 1 fails some
trials (NaN, or an exception of a library module), started by test_failures_ranks.py."""

import json
import os

import torch.distributed as dist

from ato.adict import ADict
from ato.hyperopt import get_algorithm
from ato.scope import Scope

dist.init_process_group("gloo", init_method=f"file://{os.environ['ATO_TEST_STORE']}",
                        rank=int(os.environ["RANK"]), world_size=int(os.environ["WORLD_SIZE"]))
rank = dist.get_rank()
mode = os.environ["ATO_TEST_MODE"]
catch = {"none": (), "decode": (json.JSONDecodeError,), "value": (ValueError,),
         "other": (KeyError,)}[os.environ["ATO_TEST_CATCH"]]
Scope.set_argv([])
scope = Scope()
space = ADict(x=ADict(param_type="FLOAT", param_range=(0.0, 10.0)))


def train(config):
    if rank == 1 and mode == "nan":
        return float("nan")
    if rank == 1 and mode == "decode":
        json.loads("{not json")  # json.decoder.JSONDecodeError, a ValueError subclass
    return -(config.x - 3) ** 2


search = get_algorithm("random")(scope, space, n_trials=6, seed=0, progress=False, catch=catch)
try:
    result = search.main(train)()
    out = {"rank": rank, "metric": result.metric, "x": result.config.x}
except Exception as e:
    out = {"rank": rank, "error": type(e).__name__}
print(json.dumps(out), flush=True)
dist.destroy_process_group()
