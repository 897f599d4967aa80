"""Exceptions Ato raises for user mistakes.

Every user-facing error derives from :class:`AtoError`, which the CLI prints as one clean
line (no traceback) with exit status 2.  Each class also subclasses the built-in exception
it resembles, so ``except KeyError`` and friends keep working.
"""

from __future__ import annotations


class AtoError(Exception):
    """Base class of every error Ato reports to a user."""

    exit_code = 2


class FrozenError(AtoError, TypeError):
    """A write was attempted on a frozen ADict."""


class CLIError(AtoError, ValueError):
    """A command-line token could not be understood.

    ``token`` is the offending argument, ``position`` the 0-based character offset in it
    where the problem was found (``None`` when the whole token is at fault) and
    ``argument`` which command-line argument it is: its number ``N`` in ``sys.argv[N]``
    (or in the list given to ``Scope.set_argv``/``Scope.apply``, counted from 1), a pair
    ``(first, last)`` for a value the shell split over several arguments
    (``model=%resnet 101%`` typed unquoted), or ``None`` when it is not known.  The
    message reads ``argument 3 'lr==0.1' at character 4: <what is wrong and how to fix
    it>`` (the character counted from 1).
    """

    def __init__(self, message: str, token: str | None = None, position: int | None = None,
                 argument: int | tuple[int, int] | None = None):
        self.token = token
        self.position = position
        self.argument = argument
        self.detail = message
        super().__init__(self._message())

    def _message(self) -> str:
        if self.token is None:
            return self.detail
        where = f" at character {self.position + 1}" if self.position is not None else ""
        token = self.token
        if len(token) > 120:  # a huge argument is shown by its ends
            token = f"{token[:60]}...{token[-40:]}"
        return f"{argument_label(self.argument)} {token!r}{where}: {self.detail}"


def argument_label(argument) -> str:
    """``'argument 3'``, ``'arguments 2-3'`` or ``'argument'`` (number not known)."""
    if argument is None:
        return "argument"
    if isinstance(argument, tuple):
        first, last = argument
        if first is None or last is None or first == last:
            return argument_label(last if first is None else first)
        return f"arguments {first}-{last}"
    return f"argument {argument}"


class UnknownViewError(CLIError, KeyError):
    """A bare word on the command line names no registered view."""

    def __str__(self) -> str:  # KeyError would quote the message
        return self.args[0]


class PluginNotInstalledError(AtoError, LookupError):
    """A feature was requested whose distribution is not installed."""


class UnknownPluginError(AtoError, LookupError):
    """A format, tracker, search algorithm or command name matches no plugin."""


class ConfigFileError(AtoError, ValueError):
    """A config file is malformed; the message names the file, line and column."""

    def __init__(self, path, message: str, line: int | None = None, column: int | None = None):
        self.path = str(path)
        self.line = line
        self.column = column
        where = self.path
        if line is not None:
            where += f":{line}"
            if column is not None:
                where += f":{column}"
        super().__init__(f"{where}: {message}")


class ConfigFileNotFoundError(AtoError, FileNotFoundError):
    """A config file that was asked for does not exist; the message names the path as
    given and, for a relative path, the directory it was looked up in."""

    def __init__(self, path):
        import os

        self.path = str(path)
        where = "" if os.path.isabs(self.path) else f" (looked up in {os.getcwd()})"
        super().__init__(f"{self.path}: config file does not exist{where}")
        self.filename = self.path

    def __str__(self) -> str:  # OSError would prefix "[Errno ...]" for two arguments
        return self.args[0]


class PluginError(AtoError, LookupError):
    """An installed plugin is broken, so what it would provide cannot be used.

    The message is one line naming the plugin's entry point, its distribution and what is
    wrong with it (as ``ato plugins`` reports it); every other plugin keeps working.
    """


def user_stacklevel() -> int:
    """The ``stacklevel`` for a ``warnings.warn`` made by the caller of this function that
    names the first frame outside the ``ato`` package: the user's line that called into
    Ato (through any of Ato's wrappers), not Ato's own."""
    import sys

    frame = sys._getframe(2)  # the frame that called warnings.warn's caller: level 2
    level = 2
    while frame is not None and frame.f_back is not None and (
            frame.f_globals.get("__name__", "").partition(".")[0] == "ato"):
        frame = frame.f_back
        level += 1
    return level
