"""The ``torch`` executor: the ranks of a ``torch.distributed`` group split each batch.

Every rank calls :meth:`TorchExecutor.map` with the same items (a collective, like
``all_reduce``).  Rank ``r`` of ``W`` runs its share — items ``r, r+W, r+2W, …``
(``split='strided'``, the default, which spreads a batch sorted by cost) or the ``r``-th
contiguous chunk (``split='contiguous'``, what ``DistributedHyperBand`` does) — and the
outcomes are all-gathered, so every rank returns every outcome in item order.  An
objective's exception on one rank is an ``Outcome(ok=False, error=...)`` on every rank,
never a rank left waiting; the rank where it happened also has the live exception.  A
``KeyboardInterrupt``/``SystemExit`` on one rank still takes part in the gather (its
remaining items fail with ``not run: ...``) and is then raised on that rank.

The group: the one passed as ``group=``, else the default group; when none is initialised
and the process was started by ``torchrun`` (``WORLD_SIZE`` in the environment), the
executor initialises it (``backend``, default ``nccl`` with CUDA, else ``gloo``) and
leaves it to the process (a default group cannot be initialised twice in one torchrun
process, so a second search reuses it; it is destroyed at exit).  :meth:`close` never
destroys a group.  Outcomes travel over gloo: with an NCCL group the executor
makes a gloo group of the same ranks for them, so no CUDA device needs to be set for it.

``submit``/``wait_any`` run on the calling rank only (no collective): asynchronous
algorithms share work between ranks through the tracker's study coordination instead.
"""

from __future__ import annotations

import atexit
import os
import pickle
from collections.abc import Callable, Sequence
from typing import Any

from ato.hyperopt.executors.base import (
    BaseExecutor,
    ExecutorError,
    Outcome,
    run_one,
)
from ato.tracking.outcome import describe_exception

__all__ = ["TorchExecutor", "shares"]

SPLITS = ("strided", "contiguous")


def shares(n: int, world: int, split: str = "strided") -> list[list[int]]:
    """The item indices each of ``world`` ranks runs out of ``n``:
    ``shares(5, 2) == [[0, 2, 4], [1, 3]]``; ``shares(5, 2, 'contiguous') ==
    [[0, 1, 2], [3, 4]]``."""
    if split == "strided":
        return [list(range(r, n, world)) for r in range(world)]
    chunk = -(-n // world)
    return [list(range(r * chunk, min(n, (r + 1) * chunk))) for r in range(world)]


class TorchExecutor(BaseExecutor):
    """Split each batch over the ranks of a ``torch.distributed`` group (module
    docstring).  ``slots`` is the world size; ``rank``/``world_size`` are this process's
    place in the group.  ``submit`` (from :class:`BaseExecutor`) runs a trial on this rank
    at once, with no collective."""

    PLUGIN_NAME = "torch"
    in_process = False  # each rank runs its share of a batch: not the caller's objects
    #: ``submit`` runs on the calling rank, one trial at a time.
    submit_slots = 1

    def __init__(self, group=None, split: str = "strided", backend: str | None = None):
        super().__init__()
        if split not in SPLITS:
            raise ExecutorError(f"executor 'torch': split must be one of {', '.join(SPLITS)}, "
                                f"got {split!r}")
        try:
            import torch
            import torch.distributed as dist
        except ImportError:
            raise ExecutorError("executor 'torch' needs PyTorch: pip install "
                                "'ato-hyperopt[torch]'") from None
        if not dist.is_available():
            raise ExecutorError("executor 'torch': this PyTorch build has no "
                                "torch.distributed")
        self._dist = dist
        if group is None and not dist.is_initialized():
            if "WORLD_SIZE" not in os.environ:
                raise ExecutorError(
                    "executor 'torch' needs an initialised torch.distributed process group: "
                    "start the script with torchrun (torchrun --nproc-per-node N "
                    "script.py), or call torch.distributed.init_process_group() first")
            backend = backend or ("nccl" if torch.cuda.is_available() else "gloo")
            dist.init_process_group(backend)
            # a group left alive until interpreter teardown can abort the process after
            # its results were printed ("terminate called without an active exception")
            atexit.register(_destroy_at_exit, dist)
        self.group = group
        self.split = split
        self.rank = dist.get_rank(group)
        self.world_size = dist.get_world_size(group)
        self.slots = self.world_size
        # Outcomes are Python objects: gather them over gloo whatever the trials use.
        self._gather_group = group
        if dist.get_backend(group) != "gloo":
            ranks = (list(range(self.world_size)) if group is None
                     else dist.get_process_group_ranks(group))
            self._gather_group = dist.new_group(ranks, backend="gloo")

    # ------------------------------------------------------------------ protocol
    def map(self, fn: Callable[[Any], Any], items: Sequence[Any]) -> list[Outcome]:
        self._check_open()
        items = list(items)
        mine = shares(len(items), self.world_size, self.split)[self.rank]
        local: dict[int, Outcome] = {}
        rows: list[tuple] = []    # (index, ok, value, error, types): what the other ranks get
        interrupted: BaseException | None = None
        for index in mine:
            if interrupted is not None:
                error = (f"not run: rank {self.rank} was interrupted by "
                         f"{describe_exception(interrupted)}")
                local[index] = Outcome(False, None, error)
                rows.append((index, False, None, error, ()))
                continue
            try:
                outcome = run_one(fn, items[index])
            except BaseException as e:  # KeyboardInterrupt, SystemExit: still gather
                interrupted = e
                outcome = Outcome.failure(e)
            if outcome.ok:
                try:
                    pickle.dumps(outcome.value)
                except Exception as e:
                    outcome = Outcome(False, None, f"the value of item {index} cannot be "
                                      f"sent to the other ranks: {describe_exception(e)}")
            local[index] = outcome
            rows.append((index, outcome.ok, outcome.value, outcome.error, outcome.types))
        gathered: list = [None] * self.world_size
        self._dist.all_gather_object(gathered, (len(items), rows), group=self._gather_group)
        counts = [n for n, _ in gathered]
        if len(set(counts)) > 1:
            raise ExecutorError(
                "executor 'torch': the ranks called map() with different numbers of items ("
                + ", ".join(f"rank {r}: {n}" for r, n in enumerate(counts))
                + "); every rank must pass the same batch")
        outcomes: list[Outcome | None] = [None] * len(items)
        for _, part in gathered:
            for index, ok, value, error, types in part:
                outcomes[index] = local.get(index) or Outcome(ok, value, error, None, types)
        if interrupted is not None:
            raise interrupted
        return outcomes  # type: ignore[return-value]


def _destroy_at_exit(dist) -> None:
    """Destroy the default group this executor initialised, if the program has not."""
    try:
        if dist.is_initialized():
            dist.destroy_process_group()
    except Exception:  # never mask how the program ends
        pass
