"""A rank of a random search over a 2-rank gloo group, in an interpreter where numpy
cannot be imported (as after ``pip install torch`` alone), started by
test_torch_without_numpy.py."""

import sys

sys.modules["numpy"] = None  # `import numpy` raises ImportError, as when it is missing

import os  # noqa: E402

import torch.distributed as dist  # noqa: E402

from ato.adict import ADict  # noqa: E402
from ato.hyperopt import get_algorithm  # noqa: E402
from ato.scope import Scope  # noqa: E402

dist.init_process_group("gloo", init_method=f"file://{os.environ['ATO_TEST_STORE']}",
                        rank=int(os.environ["RANK"]), world_size=int(os.environ["WORLD_SIZE"]))
Scope.set_argv([])
space = ADict(x=ADict(param_type="FLOAT", param_range=(0.0, 10.0)))
try:
    search = get_algorithm(os.environ["ATO_TEST_ALGORITHM"])(
        Scope(), space, n_trials=4, seed=0, progress=False)
    search.main(lambda config: config.x)()
finally:
    dist.destroy_process_group()
