"""How a run ends: the status and error text every tracker backend records for the way a
block or a process finished, so that ``completed``/``failed``/``killed`` mean the same on
every backend (the rules of :class:`ato.tracking.TrackerLogger.__exit__`)."""

from __future__ import annotations

import traceback

#: Characters of an error message a backend keeps.
MAX_ERROR = 10_000


def describe_exception(exc: BaseException) -> str:
    """``'ValueError: bad lr'``: the exception's type and message, as Python prints them
    last in a traceback (at most :data:`MAX_ERROR` characters)."""
    text = "".join(traceback.format_exception_only(type(exc), exc)).strip()
    return text[:MAX_ERROR]


def exit_outcome(code) -> tuple[str, str | None]:
    """``(status, error)`` of a process ending with ``SystemExit(code)``, with Python's own
    rules for the exit status: ``None``/``0`` is success (``completed``); any other int,
    and any other object (``sys.exit('msg')`` prints it and exits 1), is ``failed``."""
    if code is None or (isinstance(code, int) and code == 0):
        return "completed", None
    if isinstance(code, int):
        return "failed", f"exit status {int(code)}"
    return "failed", f"exit status 1: {code}"[:MAX_ERROR]


def block_outcome(exc_type, exc) -> tuple[str, str | None]:
    """``(status, error)`` for a ``with`` block that ended with ``exc`` (``None``: normally):
    ``completed``; ``SystemExit`` by :func:`exit_outcome`; ``KeyboardInterrupt`` is
    ``killed``; any other exception ``failed`` with :func:`describe_exception`."""
    if exc_type is None:
        return "completed", None
    if issubclass(exc_type, SystemExit):
        return exit_outcome(exc.code if exc is not None else None)
    if issubclass(exc_type, KeyboardInterrupt):
        return "killed", "KeyboardInterrupt"
    return "failed", describe_exception(exc if exc is not None else exc_type())
