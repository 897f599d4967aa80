"""Which logger a trial's own tracker calls reach when several trials run at once.

A search that runs trials concurrently in one process (an executor's threads, ASHA's
claim loops) opens each trial's run on a logger of its own — the tracker for one of them,
loggers opened on the tracker's config for the others — while the objective only knows the
tracker it was written against.  The search therefore runs each objective inside
:func:`route_to` ``(tracker, the logger holding this trial's run)``; a logger calls
:func:`routed` first in ``log_metric``, ``log_metrics`` and ``get_current_run_id`` and
hands the call over when the context routes it elsewhere.  The route is a
:class:`contextvars.ContextVar`, so it holds for the thread (or task) running that
objective alone, and costs one lookup when nothing is routed.

A backend's logger that does not call :func:`routed` still works alone; with trials run at
once its objective's calls reach whichever run the tracker holds.

In a worker *process* (the ``processes`` executor) the tracker the objective knows is a
copy — forked, or opened again when the child imported the objective's module — that holds
no run: the trial's run was opened by the parent.  The child runs the objective inside
:func:`route_unbound` ``(url, collector)``: calls on any logger of the same store that holds
no run of its own go to the collector, whose points travel back with the trial's outcome
and are logged on the run by the parent (the child never writes the store itself).  A logger the
objective opened and started a run on keeps its calls.
"""

from __future__ import annotations

import contextlib
from contextvars import ContextVar

_ROUTE: ContextVar = ContextVar("ato_tracking_route", default=None)


@contextlib.contextmanager
def route_to(origin, target):
    """Within the block (this thread or task only), calls on ``origin`` that consult
    :func:`routed` go to ``target``; ``target`` ``None`` or ``origin`` itself routes
    nothing."""
    token = _ROUTE.set(None if target is None or target is origin else (origin, target))
    try:
        yield
    finally:
        _ROUTE.reset(token)


class _Unbound:
    """The origin of a :func:`route_unbound` route: loggers of ``url`` without a run."""

    __slots__ = ("url",)

    def __init__(self, url: str):
        self.url = url

    def matches(self, logger, target) -> bool:
        return (logger is not target and getattr(logger, "url", None) == self.url
                and vars(logger).get("_run_id", 0) is None)


@contextlib.contextmanager
def route_unbound(url: str, target):
    """Within the block (this thread or task only), calls that consult :func:`routed` on
    any logger of ``url`` holding no run of its own (its ``_run_id`` is ``None``) go to
    ``target``: a trial's run attached in a worker process."""
    token = _ROUTE.set((_Unbound(str(url)), target))
    try:
        yield
    finally:
        _ROUTE.reset(token)


def routed(logger):
    """The logger ``logger``'s calls go to in this context (``logger`` itself unless a
    :func:`route_to` or :func:`route_unbound` block routes it)."""
    route = _ROUTE.get()
    if route is not None:
        origin, target = route
        if origin is logger or (type(origin) is _Unbound and origin.matches(logger, target)):
            return target
    return logger


__all__ = ["route_to", "route_unbound", "routed"]
