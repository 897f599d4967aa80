"""Executors on this machine: ``serial``, ``threads`` and ``processes``.

How the objective reaches a child process (``processes``):

- start method ``fork`` (the default on Linux): ``fn`` is put in a module-level registry
  *before* the worker processes are forked, so they inherit it and receive only a
  number.  Anything works: closures, lambdas, a decorated objective with its scope.  The
  children see ``fn`` and what it refers to as they were when they were forked; a new
  ``fn`` (another closure) starts a fresh set of workers (the old ones finish what they
  hold and exit).  A search hands a new function per batch, so each batch forks its
  workers: milliseconds, against trials worth running in parallel.  Forking a process that runs threads is what Python 3.12 warns about:
  prefer ``spawn`` when the parent runs threads that hold locks (a Ray driver, a
  dashboard).
- ``spawn`` / ``forkserver`` (the default on macOS and Windows): ``fn`` is pickled for
  each trial; a module-level function pickles by reference, anything else needs
  ``cloudpickle`` (``pip install cloudpickle``), which is used when it is installed.  A
  closure without cloudpickle is refused before any work starts, with what to do.

Items and return values travel by pickle in every case.  An objective's exception comes
back as the :class:`~ato.hyperopt.executors.base.Outcome`'s text (and the live exception
when it pickles); a child that dies (``os._exit``, a segfault, the OOM killer) fails the
trials it held with ``BrokenProcessPool: ...`` and the next call gets fresh workers.  A
child whose parent dies (killed, out of memory) exits within a second instead of finishing
its trial for nobody.
"""

from __future__ import annotations

import concurrent.futures as futures
import hashlib
import itertools
import multiprocessing
import os
import pickle
import sys
import threading
from collections.abc import Callable, Iterable, Sequence
from concurrent.futures.process import BrokenProcessPool
from typing import Any

from ato.hyperopt.executors.base import (
    BaseExecutor,
    ExecutorError,
    Outcome,
    first_done,
    run_one,
)

__all__ = ["SerialExecutor", "ThreadsExecutor", "ProcessesExecutor"]


def _positive_int(name: str, option: str, value) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise ExecutorError(f"executor {name!r}: {option} must be a positive int, got "
                            f"{value!r}")
    return value


def _default_workers() -> int:
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except (AttributeError, OSError):
        return max(1, os.cpu_count() or 1)


class SerialExecutor(BaseExecutor):
    """One trial at a time in the calling thread (the default; ``slots`` is 1).

    ``submit`` runs the trial at once and returns a finished handle, so an asynchronous
    algorithm behaves exactly as with one worker."""

    PLUGIN_NAME = "serial"

    def map(self, fn: Callable[[Any], Any], items: Sequence[Any]) -> list[Outcome]:
        self._check_open()
        return [run_one(fn, item) for item in items]



class ThreadsExecutor(BaseExecutor):
    """``n_workers`` threads of this process (default: the CPUs this process may use).

    Right for objectives that release the GIL (PyTorch, NumPy, I/O, a subprocess) and for
    many workers sharing one GPU's memory.  ``fn`` must be thread-safe."""

    PLUGIN_NAME = "threads"
    CONFORMANCE_OPTIONS = {"n_workers": 3}

    def __init__(self, n_workers: int | None = None):
        super().__init__()
        self.slots = _positive_int(self.PLUGIN_NAME, "n_workers",
                                   _default_workers() if n_workers is None else n_workers)
        self._pool: futures.ThreadPoolExecutor | None = None
        self._lock = threading.Lock()

    def submit(self, fn: Callable[[Any], Any], item: Any) -> futures.Future:
        self._check_open()
        with self._lock:
            if self._pool is None:
                self._pool = futures.ThreadPoolExecutor(self.slots,
                                                        thread_name_prefix="ato-trial")
            return self._pool.submit(run_one, fn, item)

    def _shutdown(self) -> None:
        if self._pool is not None:
            self._pool.shutdown(wait=True, cancel_futures=True)
            self._pool = None


# --------------------------------------------------------------------------- processes
#: ``token -> fn`` for the ``fork`` transport: filled before the workers fork.
_REGISTRY: dict[int, Callable] = {}
_TOKENS = itertools.count(1)
_KEEP = 8
#: In a child: functions already unpickled from cloudpickle bytes, by digest.
_LOADED: dict[str, Callable] = {}

try:
    import cloudpickle
except ImportError:  # optional: closures under spawn need it
    cloudpickle = None


def _run_in_child(transport: tuple, item) -> Outcome:
    """Runs in a worker process: find ``fn`` from ``transport``, run it on ``item``."""
    kind, payload = transport[0], transport[1]
    if kind == "registered":
        fn = _REGISTRY[payload]
    elif kind == "cloudpickle":
        digest = transport[2]
        fn = _LOADED.get(digest)
        if fn is None:
            fn = _LOADED[digest] = pickle.loads(payload)
    else:
        fn = payload
    outcome = run_one(fn, item)
    if outcome.exception is not None:
        try:
            pickle.dumps(outcome.exception)
        except Exception:
            outcome.exception = None  # the text still says what happened
    return outcome


#: Seconds between a pool child's looks at whether its parent still lives.
PARENT_POLL = 0.5


def _watch_parent(parent: int) -> None:
    """Initializer of every pool child: a daemon thread ends the child (``os._exit``)
    once its parent is gone (SIGKILL, the OOM killer), so no orphan keeps running trials
    nobody will read, or holding a GPU's memory.  The parent's pid is compared, not a
    death signal: prctl's PR_SET_PDEATHSIG fires when the *thread* that started the child
    ends, and a search starts pool children from short-lived claim threads."""
    import signal
    import time

    # Ctrl-C and SIGTERM reach the whole process group (a terminal, `timeout`, scancel, a
    # SLURM time limit): the parent decides.  It gives the trials back to the queue and
    # then kills its children (ProcessesExecutor._kill_children); a child that died of the
    # signal first would read as a crashed trial (BrokenProcessPool, recorded failed) and
    # print a KeyboardInterrupt traceback of its own.
    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, signal.SIG_IGN)

    def watch():
        while os.getppid() == parent:
            time.sleep(PARENT_POLL)
        os._exit(1)

    if os.getppid() != parent:
        os._exit(1)
    threading.Thread(target=watch, name="ato-parent-watch", daemon=True).start()


def _default_start_method() -> str:
    methods = multiprocessing.get_all_start_methods()
    return "fork" if "fork" in methods and sys.platform.startswith("linux") else "spawn"


class ProcessesExecutor(BaseExecutor):
    """``n_workers`` worker processes on this machine (default: the CPUs this process may
    use), for objectives that hold the GIL (pure Python, scikit-learn without n_jobs).

    ``start_method``: ``'fork'`` (default on Linux), ``'spawn'`` or ``'forkserver'``; the
    module docstring says how ``fn`` reaches the children under each."""

    PLUGIN_NAME = "processes"
    in_process = False
    #: A search runs each trial as an ato.hyperopt.study.AttachedRun: what the objective
    #: logs on the tracker in the child reaches the trial's run, which the parent holds.
    attach_runs = True
    CONFORMANCE_OPTIONS = {"n_workers": 2}

    def __init__(self, n_workers: int | None = None, start_method: str | None = None):
        super().__init__()
        self.slots = _positive_int(self.PLUGIN_NAME, "n_workers",
                                   _default_workers() if n_workers is None else n_workers)
        methods = multiprocessing.get_all_start_methods()
        self.start_method = start_method or _default_start_method()
        if self.start_method not in methods:
            raise ExecutorError(f"executor 'processes': start_method {self.start_method!r} "
                                f"is not available here (available: {', '.join(methods)})")
        self._context = multiprocessing.get_context(self.start_method)
        self._pool: futures.ProcessPoolExecutor | None = None
        self._pool_tokens: frozenset[int] = frozenset()   # registered before it forked
        self._retired: list[futures.ProcessPoolExecutor] = []
        self._retired_children: list = []                 # their worker processes
        self._tokens: dict[int, int] = {}                 # id(fn) -> token
        self._lock = threading.Lock()

    # ------------------------------------------------------------------ transport
    def _transport(self, fn: Callable) -> tuple:
        if self.start_method == "fork":
            token = self._tokens.get(id(fn))
            if token is None or _REGISTRY.get(token) is not fn:
                token = next(_TOKENS)
                _REGISTRY[token] = fn
                self._tokens[id(fn)] = token
                # Workers forked earlier hold their own copy: the parent keeps only the
                # last few functions (a search that alternates between two reuses its pool).
                while len(self._tokens) > _KEEP:
                    _REGISTRY.pop(self._tokens.pop(next(iter(self._tokens))), None)
            return ("registered", token)
        try:
            pickle.dumps(fn)
            return ("plain", fn)
        except Exception as e:
            if cloudpickle is None:
                raise ExecutorError(
                    f"executor 'processes' (start method {self.start_method!r}) cannot send "
                    f"{fn!r} to a worker process: it does not pickle ({type(e).__name__}: "
                    f"{e}). Define the objective at module level, pip install cloudpickle, "
                    f"or use start_method='fork' (Linux)") from None
            payload = cloudpickle.dumps(fn)
            return ("cloudpickle", payload, hashlib.sha256(payload).hexdigest())

    def _pool_for(self, transport: tuple, broken: bool = False) -> futures.ProcessPoolExecutor:
        token = transport[1] if transport[0] == "registered" else None
        stale = token is not None and token not in self._pool_tokens
        if self._pool is None or stale or broken:
            if self._pool is not None:
                # shutdown forgets its processes: keep them, to kill them on Ctrl-C
                self._retired_children = [p for p in self._retired_children if p.is_alive()]
                self._retired_children += self._children_of(self._pool)
                self._pool.shutdown(wait=False)   # finishes what it holds, then exits
                self._retired.append(self._pool)
                self._retired = [p for p in self._retired  # forget the finished ones
                                 if getattr(p, "_pending_work_items", True)]
            self._pool = futures.ProcessPoolExecutor(self.slots, mp_context=self._context,
                                                     initializer=_watch_parent,
                                                     initargs=(os.getpid(),))
            self._pool_tokens = frozenset(_REGISTRY) if self.start_method == "fork" else frozenset()
        return self._pool

    # ------------------------------------------------------------------ protocol
    def submit(self, fn: Callable[[Any], Any], item: Any) -> futures.Future:
        self._check_open()
        with self._lock:
            transport = self._transport(fn)
            pool = self._pool_for(transport)
            try:
                handle = pool.submit(_run_in_child, transport, item)
            except BrokenProcessPool:  # a child died earlier: fresh workers
                handle = self._pool_for(transport, broken=True).submit(_run_in_child,
                                                                       transport, item)
            # a search's trial (ato.hyperopt.study.AttachedRun): what the objective logged
            # in the child reaches the trial's run here, before the outcome is read
            handle._ato_deliver = getattr(fn, "deliver", None)
            return handle

    def wait_any(self, handles: Iterable[futures.Future]) -> tuple[futures.Future, Outcome]:
        handle, outcome = first_done(handles)
        deliver = getattr(handle, "_ato_deliver", None)
        if deliver is not None:
            handle._ato_deliver = None  # once, however often the handle is waited on
            outcome = deliver(outcome)
        if isinstance(outcome.exception, BrokenProcessPool):
            outcome.error = (f"BrokenProcessPool: a worker process died while this trial ran "
                             f"or waited (killed, os._exit, out of memory?); "
                             f"{outcome.exception}")
        return handle, outcome

    def _kill_children(self) -> None:
        """SIGKILL every worker process (they ignore SIGINT and SIGTERM, so that the
        parent decides what an interruption means): what they ran is abandoned."""
        for process in [*self._retired_children, *self._children_of(self._pool)]:
            try:
                process.kill()
            except (OSError, ValueError, AttributeError):
                pass

    @staticmethod
    def _children_of(pool) -> list:
        return list((getattr(pool, "_processes", None) or {}).values())

    def _abandon(self, handles: list) -> None:
        super()._abandon(handles)
        error = sys.exc_info()[1]
        if error is not None and not isinstance(error, Exception):  # Ctrl-C, SIGTERM
            self._kill_children()

    def _shutdown(self) -> None:
        error = sys.exc_info()[1]
        if error is not None and not isinstance(error, Exception):
            # closed while Ctrl-C or SIGTERM (SystemExit) ends the program: the trials in
            # flight were given back, nobody waits for them
            self._kill_children()
        for pool in [*self._retired, self._pool]:
            if pool is not None:
                pool.shutdown(wait=True, cancel_futures=True)
        self._pool, self._retired, self._retired_children = None, [], []
        for token in self._tokens.values():
            _REGISTRY.pop(token, None)
        self._tokens.clear()
