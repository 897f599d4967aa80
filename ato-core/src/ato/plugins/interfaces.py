"""The interfaces (structural protocols) plugin classes implement, one per hook.

Every class carries ``PLUGIN_NAME``; methods are static or class methods (core never
instantiates a format, a source or a command).
"""

from __future__ import annotations

from typing import Any, ClassVar, Protocol, runtime_checkable


@runtime_checkable
class ConfigFormat(Protocol):
    """A config file format, returned by ``ato_register_formats``.

    ``loads(text, path)`` returns plain data (a dict, or a list of dicts); ``dumps(data,
    path, **kwargs)`` returns the text to write, or raises *before* anything is written
    (core writes atomically).  Raise :class:`ato.errors.ConfigFileError` with the line and
    column for malformed input.
    """

    PLUGIN_NAME: ClassVar[str]
    suffixes: ClassVar[tuple[str, ...]]

    @staticmethod
    def loads(text: str, path: str) -> Any:
        ...

    @staticmethod
    def dumps(data: Any, path: str, **kwargs) -> str:
        ...


@runtime_checkable
class ConfigSource(Protocol):
    """Builds an ADict from something that is not one file, returned by
    ``ato_register_config_sources``; ``PLUGIN_NAME`` is the ADict method it serves."""

    PLUGIN_NAME: ClassVar[str]

    @staticmethod
    def load(*args, **kwargs):
        ...


@runtime_checkable
class TrackerBackend(Protocol):
    """An experiment-tracker backend, returned by ``ato_register_trackers``.

    ``schemes`` lists the URL schemes it serves (``sqlite``, ``jsonl``…).  ``logger(config)``
    and ``finder(config)`` return objects with the SQLLogger / SQLFinder methods.
    """

    PLUGIN_NAME: ClassVar[str]
    schemes: ClassVar[tuple[str, ...]]

    @classmethod
    def logger(cls, config):
        ...

    @classmethod
    def finder(cls, config):
        ...


@runtime_checkable
class SearchAlgorithm(Protocol):
    """A hyperparameter-search algorithm, returned by ``ato_register_search_algorithms``.

    Constructed as ``cls(scope, search_spaces, **options)``; ``cls.main(func)`` wraps the
    objective and returns a launcher whose result has ``config`` and ``metric``.
    """

    PLUGIN_NAME: ClassVar[str]


@runtime_checkable
class Command(Protocol):
    """An ``ato`` subcommand, returned by ``ato_register_commands``."""

    PLUGIN_NAME: ClassVar[str]
    help: ClassVar[str] = ""

    @staticmethod
    def add_arguments(parser) -> None:
        """Add this command's options to its ``argparse`` sub-parser."""

    @staticmethod
    def run(args) -> int:
        ...
