"""The ``ray`` executor: each trial a Ray task (``pip install 'ato-hyperopt[ray]'``).

Ray is imported only when the executor is created.  It uses the Ray instance this process
is already connected to, or connects with ``ray.init(address=address, **init_options)``
(``address='auto'`` or ``'ray://head:10001'`` for a cluster; ``None`` starts a local
instance) and then shuts Ray down again on :meth:`RayExecutor.close`.

Each trial asks for ``num_cpus`` (default 1), ``num_gpus`` (default 0; Ray sets
``CUDA_VISIBLE_DEVICES`` for the task) and custom ``resources``; a request no node of the
cluster can ever satisfy is refused when the executor is created instead of waiting
forever.  ``slots`` is how many trials the cluster's resources hold at once with that
per-trial request (measured when the executor is created), capped by ``max_concurrent``:
``min(max_concurrent, capacity)``.  ``max_concurrent`` never raises ``slots`` above what
the cluster can run — in a shared study a worker claims ``slots`` trials at once, and a
claim the cluster cannot start yet would only starve the other workers.  :meth:`map` hands
Ray at most ``max_concurrent`` tasks at once (all of them without it): Ray queues what
does not fit yet, which an autoscaler sees as demand.  On a cluster whose nodes join later,
create the executor once they are up (``capacity`` is measured once).

The objective ``fn`` and each item are serialized by Ray (cloudpickle): closures work, and
``fn`` is put in the object store once per ``map``.  The task returns an
:class:`~ato.hyperopt.executors.base.Outcome` (the objective's exception travels as text,
and as the live exception when it pickles); a task Ray itself loses (a worker or node
died, the task was cancelled) becomes a failed outcome naming Ray's error.  The worker
processes need Ato and the objective's modules importable (same environment, or Ray's
``runtime_env`` through ``init_options``) but no database: the search records trials in
the driver.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable, Sequence
from typing import Any

from ato.hyperopt.executors.base import BaseExecutor, ExecutorError, Outcome, run_one

__all__ = ["RayExecutor"]


def _run_task(fn: Callable[[Any], Any], item) -> Outcome:
    """The body of one Ray task."""
    import pickle

    outcome = run_one(fn, item)
    if outcome.exception is not None:
        try:
            pickle.dumps(outcome.exception)
        except Exception:
            outcome.exception = None
    return outcome


class RayExecutor(BaseExecutor):
    """Trials as Ray tasks (module docstring).  ``options`` of :func:`get_executor`:
    ``address``, ``num_cpus``, ``num_gpus``, ``resources`` (``{'TPU': 1}``),
    ``max_concurrent``, ``init_options`` (more ``ray.init`` keywords)."""

    PLUGIN_NAME = "ray"
    in_process = False
    CONFORMANCE_OPTIONS = {"max_concurrent": 2}

    def __init__(self, address: str | None = None, num_cpus: float = 1, num_gpus: float = 0,
                 resources: dict[str, float] | None = None, max_concurrent: int | None = None,
                 init_options: dict | None = None):
        super().__init__()
        try:
            import ray
        except ImportError:
            raise ExecutorError("executor 'ray' needs Ray: pip install "
                                "'ato-hyperopt[ray]'") from None
        self._ray = ray
        for option, value in (("num_cpus", num_cpus), ("num_gpus", num_gpus)):
            if isinstance(value, bool) or not isinstance(value, (int, float)) or value < 0:
                raise ExecutorError(f"executor 'ray': {option} must be a number >= 0, got "
                                    f"{value!r}")
        resources = dict(resources or {})
        for key in ("CPU", "GPU"):
            if key in resources:
                raise ExecutorError(f"executor 'ray': ask for {key} with num_{key.lower()}s=, "
                                    f"not resources={{{key!r}: ...}}")
        if max_concurrent is not None and (isinstance(max_concurrent, bool) or not isinstance(
                max_concurrent, int) or max_concurrent < 1):
            raise ExecutorError(f"executor 'ray': max_concurrent must be a positive int, got "
                                f"{max_concurrent!r}")
        self._owns_ray = False
        if not ray.is_initialized():
            ray.init(address=address, **dict(init_options or {}))
            self._owns_ray = True
        self.request = {"CPU": float(num_cpus), "GPU": float(num_gpus), **{
            k: float(v) for k, v in resources.items()}}
        self._check_feasible()
        self._remote = ray.remote(_run_task).options(
            num_cpus=num_cpus, num_gpus=num_gpus, resources=resources or None,
            max_retries=0)
        self.max_concurrent = max_concurrent
        self.capacity = self._capacity()
        self.slots = min(max_concurrent or self.capacity, self.capacity)
        self._in_flight: set = set()

    # ------------------------------------------------------------------ resources
    def _check_feasible(self) -> None:
        """Refuse a per-trial request that no node can ever run (Ray would wait forever)."""
        wanted = {k: v for k, v in self.request.items() if v > 0}
        nodes = [n.get("Resources", {}) for n in self._ray.nodes() if n.get("Alive")]
        if any(all(node.get(k, 0) >= v for k, v in wanted.items()) for node in nodes):
            return
        have = "; ".join(", ".join(f"{k}={v:g}" for k, v in sorted(node.items())
                                   if k in ("CPU", "GPU") or k in wanted) for node in nodes)
        if self._owns_ray:
            self._ray.shutdown()
        raise ExecutorError(
            f"executor 'ray': no node of the Ray cluster can run a trial asking for "
            f"{', '.join(f'{k}={v:g}' for k, v in wanted.items())} (nodes have: "
            f"{have or 'no alive node'})")

    def _capacity(self) -> int:
        """Trials the whole cluster runs at once with the per-trial request."""
        total = self._ray.cluster_resources()
        fits = [math.floor(total.get(k, 0) / v + 1e-9) for k, v in self.request.items()
                if v > 0]
        return max(1, min(fits)) if fits else max(1, int(total.get("CPU", 1)))

    # ------------------------------------------------------------------ protocol
    def map(self, fn: Callable[[Any], Any], items: Sequence[Any]) -> list[Outcome]:
        self._check_open()
        items = list(items)
        if not items:
            return []
        try:
            shared = self._ray.put(fn)  # one copy in the object store for every trial
        except Exception as e:
            raise self._unsendable(fn, e) from None
        window = self.max_concurrent or len(items)  # Ray queues what does not fit yet
        outcomes: list[Outcome | None] = [None] * len(items)
        pending: dict = {}
        queue = iter(enumerate(items))
        try:
            for index, item in queue:
                pending[self._start(shared, item)] = index
                if len(pending) >= window:
                    break
            while pending:
                handle, outcome = self.wait_any(list(pending))
                outcomes[pending.pop(handle)] = outcome
                for index, item in queue:
                    pending[self._start(shared, item)] = index
                    break
        except BaseException:
            self._abandon(list(pending))
            raise
        return outcomes  # type: ignore[return-value]

    def submit(self, fn: Callable[[Any], Any], item: Any):
        """Start one trial; the handle is its ``ray.ObjectRef``."""
        self._check_open()
        return self._start(fn, item)

    def _unsendable(self, what, error: Exception) -> ExecutorError:
        lines = [line.strip() for line in str(error).splitlines() if line.strip()]
        return ExecutorError(
            f"executor 'ray' cannot send {what!r} to Ray workers: "
            f"{lines[0] if lines else type(error).__name__}; Ray pickles it with everything "
            f"it refers to (ray.util.inspect_serializability(obj) shows which part fails)")

    def _start(self, fn, item):
        try:
            ref = self._remote.remote(fn, item)
        except Exception as e:
            raise self._unsendable(item if self._ray.ObjectRef is type(fn) else fn,
                                   e) from None
        self._in_flight.add(ref)
        return ref

    def wait_any(self, handles: Iterable[Any]) -> tuple[Any, Outcome]:
        handles = list(handles)
        if not handles:
            raise ValueError("wait_any() needs at least one handle")
        ready, _ = self._ray.wait(handles, num_returns=1)
        done = set(ready)
        if len(handles) > 1:  # anything else already done: report the first in order
            more, _ = self._ray.wait(handles, num_returns=len(handles), timeout=0)
            done.update(more)
        handle = next(h for h in handles if h in done)
        self._in_flight.discard(handle)
        try:
            outcome = self._ray.get(handle)
        except Exception as e:  # Ray lost the task: a dead worker or node, a cancel
            return handle, Outcome.failure(e, keep=False)
        if not isinstance(outcome, Outcome):
            outcome = Outcome(True, outcome)
        return handle, outcome

    def _abandon(self, handles: list) -> None:
        for ref in handles:
            self._in_flight.discard(ref)
            try:
                self._ray.cancel(ref, force=True)
            except Exception:  # best effort: it may have finished meanwhile
                continue

    def _shutdown(self) -> None:
        self._abandon(list(self._in_flight))
        if self._owns_ray and self._ray.is_initialized():
            self._ray.shutdown()
