"""The executor seam: how a search runs the trials it can run at once.

An executor takes ``fn`` (runs the objective for one trial, scope injection included, and
returns its metric) and the trials' items, and returns one :class:`Outcome` per item, in
item order.  An objective's exception is an outcome (``ok=False``), never raised by
:meth:`Executor.map`, so one failed trial never loses the others; the search decides what
a failure means (``catch=``, ``retries=``).  The search records trials in the tracker
itself, in the process that called the executor: a remote worker needs no database.

Built in (ato-hyperopt's plugin, hook ``ato_register_executors``): ``serial``,
``threads``, ``processes`` (:mod:`.local`), ``torch`` (:mod:`.torch`), ``ray``
(:mod:`.ray`).  Third parties add theirs through the same hook and check them with
``python -m ato.hyperopt.executors.conformance NAME``.
"""

from __future__ import annotations

import concurrent.futures as futures
import inspect
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from typing import Any, Protocol, runtime_checkable

from ato.errors import AtoError
from ato.tracking.outcome import describe_exception

__all__ = ["Outcome", "Executor", "BaseExecutor", "ExecutorError", "TrialError",
           "get_executor", "check_executor", "run_one", "exception_types", "REQUIRED"]

#: What an executor instance must have (:func:`check_executor`).
REQUIRED = ("name", "slots", "map", "submit", "wait_any", "close")


class ExecutorError(AtoError, RuntimeError):
    """An executor cannot be chosen, built or used (not an objective's error: those are
    :class:`Outcome` values)."""


class TrialError(AtoError, RuntimeError):
    """An objective's error raised again in the parent when the live exception could not
    travel back (another process or machine): its text is the child's
    ``'ValueError: message'``."""


def traceback_of(exc: BaseException) -> str | None:
    """``exc``'s formatted traceback (``Traceback (most recent call last): ...``, its
    causes first), or the one it carries from the process that raised it; ``None`` when it
    has none (never raised)."""
    carried = getattr(exc, "_ato_traceback", None)
    if isinstance(carried, str) and carried:
        return carried
    if exc.__traceback__ is None:
        return None
    import traceback

    return "".join(traceback.format_exception(exc)).rstrip()


def exception_types(exc: BaseException | type) -> tuple[str, ...]:
    """The names ``'module.qualname'`` of ``exc``'s class and of every class it derives
    from, most derived first (``('builtins.ValueError', 'builtins.Exception',
    'builtins.BaseException', 'builtins.object')``): what a process that has only the
    text of a failure matches ``catch=`` classes against, subclasses included."""
    cls = exc if isinstance(exc, type) else type(exc)
    return tuple(f"{c.__module__}.{c.__qualname__}" for c in cls.__mro__)


def matches(types: Sequence[str], classes: Iterable[type]) -> bool:
    """Whether a failure whose class had the MRO names ``types``
    (:func:`exception_types`) is an instance of one of ``classes``."""
    names = set(types)
    return any(f"{c.__module__}.{c.__qualname__}" in names for c in classes)


@dataclass
class Outcome:
    """What running ``fn`` on one item gave.

    ``ok``: it returned; ``value``: what it returned (``None`` when not ok); ``error``:
    ``'ValueError: bad lr'`` (:func:`ato.tracking.outcome.describe_exception`) when it
    raised; ``exception``: the live exception when it could come back (always in-process;
    from another process when it pickles), else ``None``; ``types``: the MRO names of the
    exception's class (:func:`exception_types`), which travel with the text wherever the
    outcome goes, so a process without the live exception still decides by type whether
    it is one of ``catch=`` (empty when ok, or when the failure was no exception).
    """

    ok: bool
    value: Any = None
    error: str | None = None
    exception: BaseException | None = None
    types: tuple[str, ...] = ()
    #: the formatted traceback of the failure (``None`` when ok): it travels with the
    #: outcome from another process, where the live exception's traceback does not
    traceback: str | None = None

    @classmethod
    def failure(cls, exc: BaseException, *, keep: bool = True) -> Outcome:
        """The outcome of ``exc`` (``keep=False`` drops the live exception, never its
        type names)."""
        return cls(False, None, describe_exception(exc), exc if keep else None,
                   exception_types(exc), traceback_of(exc))

    def raised(self, classes: Iterable[type]) -> bool:
        """Whether this failed outcome's exception is an instance of one of ``classes``:
        by ``isinstance`` when the live exception is here, else by :attr:`types`."""
        classes = tuple(classes)
        if self.ok:
            return False
        if self.exception is not None:
            return isinstance(self.exception, classes)
        return matches(self.types, classes)

    def result(self):
        """``value``, or raise the error: the live exception when there is one, else
        :class:`TrialError` with the error text."""
        if self.ok:
            return self.value
        error = self.exception
        if error is None:
            error = TrialError(self.error or "the trial failed without an error message")
        if self.traceback and not getattr(error, "_ato_traceback", None):
            try:  # where it was raised, when that was another process
                error._ato_traceback = self.traceback
            except AttributeError:  # an exception class with __slots__
                pass
        raise error


def run_one(fn: Callable[[Any], Any], item) -> Outcome:
    """``fn(item)`` as an :class:`Outcome`.  An :class:`Exception` becomes a failed
    outcome; ``KeyboardInterrupt``, ``SystemExit`` and other ``BaseException`` propagate
    (a crash of the search is not a failed trial)."""
    try:
        return Outcome(True, fn(item))
    except Exception as e:
        return Outcome.failure(e)


@runtime_checkable
class Executor(Protocol):
    """Runs trials.  Chosen with a search's ``executor=`` option (a name, or an instance)
    or :func:`get_executor`.

    ``name``: the registered name; ``slots``: how many trials it runs at once (threads:
    ``n_workers``; torch: the world size; ray: what the cluster holds, or
    ``max_concurrent``), which a search uses to size what it hands over at once.  An
    executor whose ``submit`` runs fewer trials at once than ``map`` says so in an optional
    ``submit_slots`` (torch: 1, ``submit`` runs on the calling rank).  An optional
    ``in_process`` (``True`` for serial and threads) says ``fn`` runs in this process, on
    the objects it was given rather than copies: a search then hands each trial's
    tracker calls to the logger holding that trial's run (:mod:`ato.tracking.routing`);
    missing counts as ``False``.
    """

    name: str
    slots: int

    def map(self, fn: Callable[[Any], Any], items: Sequence[Any]) -> list[Outcome]:
        """One :class:`Outcome` per item, in item order, once all are done.  Under
        torch.distributed every rank calls it with the same items and gets every
        outcome."""

    def submit(self, fn: Callable[[Any], Any], item: Any) -> Any:
        """Start ``fn(item)``; return a handle for :meth:`wait_any` (for asynchronous
        algorithms such as ASHA)."""

    def wait_any(self, handles: Iterable[Any]) -> tuple[Any, Outcome]:
        """Block until one of ``handles`` is done; return ``(that handle, its
        outcome)``.  When several are done, the first of them in ``handles``."""

    def close(self) -> None:
        """Release workers (idempotent; a closed executor refuses new work)."""


class BaseExecutor:
    """What most executors share: a context manager, ``close`` idempotent, a check that
    the executor is open, and :meth:`map` built on :meth:`submit` and :meth:`wait_any`
    (at most ``slots`` items in flight).  Subclasses set ``PLUGIN_NAME``; the default
    :meth:`submit` runs the trial at once in the calling thread and returns a finished
    ``concurrent.futures.Future``, and the default :meth:`wait_any` waits on such futures,
    so an executor that runs trials elsewhere overrides :meth:`submit` (and
    :meth:`wait_any` when its handles are not futures, :meth:`_shutdown` when it holds
    workers).
    """

    PLUGIN_NAME = ""
    #: Constructor options for the conformance suite (small and fast).
    CONFORMANCE_OPTIONS: dict = {}
    #: ``fn`` runs in this process (the default ``submit`` runs it in the calling thread);
    #: an executor that runs it elsewhere (a child process, a Ray task) sets ``False``.
    in_process = True

    def __init__(self) -> None:
        self.name = self.PLUGIN_NAME
        self.slots = 1
        self._closed = False

    # --------------------------------------------------------------- protocol
    def map(self, fn: Callable[[Any], Any], items: Sequence[Any]) -> list[Outcome]:
        self._check_open()
        items = list(items)
        outcomes: list[Outcome | None] = [None] * len(items)
        pending: dict = {}  # handle -> index
        queue = iter(enumerate(items))
        try:
            for index, item in queue:
                pending[self.submit(fn, item)] = index
                if len(pending) >= max(1, self.slots):
                    break
            while pending:
                handle, outcome = self.wait_any(list(pending))
                outcomes[pending.pop(handle)] = outcome
                for index, item in queue:
                    pending[self.submit(fn, item)] = index
                    break
        except BaseException:
            self._abandon(list(pending))
            raise
        return outcomes  # type: ignore[return-value]

    def submit(self, fn: Callable[[Any], Any], item: Any) -> futures.Future:
        """Run ``fn(item)`` now, in the calling thread; a finished handle."""
        self._check_open()
        handle: futures.Future = futures.Future()
        handle.set_result(run_one(fn, item))
        return handle

    def wait_any(self, handles: Iterable[futures.Future]) -> tuple[futures.Future, Outcome]:
        return first_done(handles)

    def close(self) -> None:
        if self._closed:
            return
        self._closed = True
        self._shutdown()

    # --------------------------------------------------------------- helpers
    def _shutdown(self) -> None:
        """Release what the executor holds (called once, by :meth:`close`)."""

    def _abandon(self, handles: list) -> None:
        """Best effort to stop work nobody will wait for (``map`` interrupted)."""
        for handle in handles:
            cancel = getattr(handle, "cancel", None)
            if callable(cancel):
                cancel()

    def _check_open(self) -> None:
        if self._closed:
            raise ExecutorError(f"executor {self.name!r} is closed; create a new one")

    def __enter__(self):
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def __repr__(self) -> str:
        return f"<{type(self).__qualname__} {self.name!r} slots={self.slots}>"


def outcome_of_future(future: futures.Future) -> Outcome:
    """The :class:`Outcome` of a finished ``concurrent.futures`` future whose work returns
    an ``Outcome`` (or raises: a broken pool, a cancelled future).  A ``BaseException``
    that is not an ``Exception`` propagates."""
    if future.cancelled():
        return Outcome(False, None, "CancelledError: the trial was cancelled")
    exc = future.exception()
    if exc is None:
        value = future.result()
        return value if isinstance(value, Outcome) else Outcome(True, value)
    if not isinstance(exc, Exception):
        raise exc
    return Outcome.failure(exc)


def first_done(handles: Iterable[futures.Future]) -> tuple[futures.Future, Outcome]:
    """:meth:`Executor.wait_any` for ``concurrent.futures`` handles."""
    handles = list(handles)
    if not handles:
        raise ValueError("wait_any() needs at least one handle")
    done = [h for h in handles if h.done()]
    if not done:
        finished, _ = futures.wait(handles, return_when=futures.FIRST_COMPLETED)
        done = [h for h in handles if h in finished]
    return done[0], outcome_of_future(done[0])


# --------------------------------------------------------------------------- lookup
def check_executor(executor) -> None:
    """Raise :class:`ExecutorError` naming every member of :data:`REQUIRED` that
    ``executor`` (an instance) lacks, or a ``slots`` that is not a positive int."""
    missing = [m for m in REQUIRED if not hasattr(executor, m)]
    what = f"{type(executor).__module__}.{type(executor).__qualname__}"
    if missing:
        raise ExecutorError(f"{what} is not an executor: it lacks {', '.join(missing)} "
                            f"(an executor has {', '.join(REQUIRED)}; see "
                            f"ato.hyperopt.executors.Executor)")
    for method in ("map", "submit", "wait_any", "close"):
        if not callable(getattr(executor, method)):
            raise ExecutorError(f"{what} is not an executor: {method} is not a method")
    slots = executor.slots
    if isinstance(slots, bool) or not isinstance(slots, int) or slots < 1:
        raise ExecutorError(f"executor {getattr(executor, 'name', what)!r}: slots must be a "
                            f"positive int, got {slots!r}")


def executor_class(name: str) -> type:
    """The executor class registered as ``name``; the error names the unknown executor
    and the installed ones (``did you mean 'threads'?``)."""
    from ato.plugins.manager import executor as lookup

    return lookup(name)


def get_executor(name_or_instance: str | Executor | type | None = "serial",
                 **options) -> Executor:
    """An executor from a registered name (``'threads'``, ``'ray'``…; ``None`` is
    ``'serial'``), an executor class, or an instance (returned as it is).

    ``options`` go to the class (``get_executor('threads', n_workers=4)``,
    ``get_executor('ray', address='auto', num_gpus=1)``).  Raises
    :class:`ato.errors.UnknownPluginError` for an unknown name (naming the installed
    executors), :class:`ExecutorError` for options the executor does not take (naming the
    ones it takes), for options given with an instance, and for an object that is not an
    executor.
    """
    if name_or_instance is None:
        name_or_instance = "serial"
    if isinstance(name_or_instance, str):
        cls = executor_class(name_or_instance)
        label = name_or_instance
    elif isinstance(name_or_instance, type):
        cls = name_or_instance
        label = getattr(cls, "PLUGIN_NAME", None) or cls.__qualname__
    else:
        if options:
            raise ExecutorError(
                f"executor options {sorted(options)} were given with an executor instance "
                f"({name_or_instance!r}); pass them to its constructor instead")
        check_executor(name_or_instance)
        return name_or_instance
    _check_options(cls, label, options)
    executor = cls(**options)
    check_executor(executor)
    return executor


def _check_options(cls: type, label: str, options: dict) -> None:
    try:
        signature = inspect.signature(cls)
    except (TypeError, ValueError):  # a builtin or C class: let the call speak
        return
    params = signature.parameters
    if any(p.kind is p.VAR_KEYWORD for p in params.values()):
        return
    accepted = [n for n, p in params.items() if p.kind in (p.POSITIONAL_OR_KEYWORD,
                                                           p.KEYWORD_ONLY)]
    unknown = sorted(set(options) - set(accepted))
    if unknown:
        import difflib

        hints = [f"{u!r} (did you mean {m[0]!r}?)" if (m := difflib.get_close_matches(
            u, accepted, n=1)) else repr(u) for u in unknown]
        raise ExecutorError(f"executor {label!r} has no option {', '.join(hints)}; its "
                            f"options are {', '.join(accepted) or 'none'}")
