"""The interfaces (structural protocols) plugin classes implement, one per hook.

Every class carries ``PLUGIN_NAME``; methods are static or class methods (core never
instantiates a format, a source or a command).  :func:`missing_members` is what the plugin
manager checks when it collects a class, so a class lacking a member is refused at once,
by name, instead of failing deep inside a later call.  docs/plugins.md lists every member
with the signature below; tests/integration/test_docs.py fails if the two drift apart.
"""

from __future__ import annotations

from typing import Any, ClassVar, Protocol


class ConfigFormat(Protocol):
    """A config file format, returned by ``ato_register_formats``.

    ``suffixes`` are lower case with their dot (``(".yaml", ".yml")``, a multi-part
    ``".tar.json"`` is allowed); a file is served by the longest suffix its name ends with.
    """

    PLUGIN_NAME: ClassVar[str]
    suffixes: ClassVar[tuple[str, ...]]

    @staticmethod
    def loads(text: str, path: str, **kwargs) -> Any:
        """Plain data (a dict, or a list of dicts) from the file's text; ``kwargs`` are
        what the caller passed to ``ADict.load``.  Raise :class:`ato.errors.ConfigFileError`
        with the line and column for malformed input, and for a file that holds something
        else (:func:`config_data` does that check).  Any other exception, or another
        return value, is reported as the plugin's fault (``PluginError``)."""

    @staticmethod
    def dumps(data: Any, path: str, **kwargs) -> str:
        """The text to write, or an exception *before* anything is written (core writes
        the returned text atomically)."""


class ConfigSource(Protocol):
    """Builds an ADict from something that is not one file, returned by
    ``ato_register_config_sources``; ``PLUGIN_NAME`` is the ADict method it serves."""

    PLUGIN_NAME: ClassVar[str]

    @staticmethod
    def load(*args, **kwargs):
        """The ADict, from the arguments the ADict method received."""


class TrackerBackend(Protocol):
    """An experiment-tracker backend, returned by ``ato_register_trackers``.

    ``schemes`` are the URL schemes it serves (``("jsonl",)``); ``+driver`` suffixes are
    ignored when matching.  Both class methods receive a config holding the URL in
    ``config.experiment.sql.db_path`` (and the project in ``config.experiment.project_name``)
    plus backend-specific keyword options, and return objects satisfying the tracker
    protocol (:class:`ato.tracking.TrackerLogger`, :class:`ato.tracking.TrackerFinder`);
    ``ato.tracking.open_logger``/``open_finder`` check the required members.  Run
    ``pytest --pyargs ato.tracking.conformance --tracker-url=<scheme>://...`` to prove it.

    ``coordinator`` is optional (listed in ``__optional__``): a backend whose finder
    declares the ``"studies"`` capability provides it.
    """

    __optional__ = ("coordinator",)
    PLUGIN_NAME: ClassVar[str]
    schemes: ClassVar[tuple[str, ...]]

    @classmethod
    def logger(cls, config, **options):
        """A :class:`ato.tracking.TrackerLogger` writing to the config's URL."""

    @classmethod
    def finder(cls, config, **options):
        """A read-only :class:`ato.tracking.TrackerFinder` over the config's URL (it never
        creates a missing store)."""

    @classmethod
    def coordinator(cls, config, **options):
        """Optional: a :class:`ato.tracking.StudyCoordinator` on the config's URL, for
        workers sharing a search (``"studies"`` capability); ``readonly=True`` among the
        options means: never create, migrate or write."""


class SearchAlgorithm(Protocol):
    """A hyperparameter-search algorithm, returned by ``ato_register_search_algorithms``.

    Constructed as ``cls(scope, search_spaces, **options)``; ``options`` include the
    common ones (``tracker``, ``mode``, ``study_id``, ``seed``, ``max_budget``,
    ``min_budget``, ``eta``, ``progress``, ``catch``), which
    :class:`ato.hyperopt.base.HyperOpt` parses, checks and acts on (seeding, tracking and
    resuming every trial that goes through its ``evaluate``).  Subclass it, and check the
    algorithm with ``python -m ato.hyperopt.conformance NAME`` (docs/hyperopt.md)."""

    PLUGIN_NAME: ClassVar[str]

    def main(self, func):
        """Wrap the objective; the returned callable runs the search and returns a result
        with ``config`` and ``metric``."""


class Command(Protocol):
    """An ``ato`` subcommand, returned by ``ato_register_commands``; ``PLUGIN_NAME`` is
    the subcommand (a lower-case word).  An optional ``help`` string is shown by
    ``ato --help``."""

    PLUGIN_NAME: ClassVar[str]

    @staticmethod
    def add_arguments(parser) -> None:
        """Add this command's options to its ``argparse`` sub-parser."""

    @staticmethod
    def run(args) -> int:
        """Run the command; return the exit status."""


class SearchExecutor(Protocol):
    """How a search runs trials, returned by ``ato_register_executors``; chosen by
    ``PLUGIN_NAME`` in a search's ``executor=`` option and constructed as
    ``cls(**options)``.  An instance also has ``name`` and ``slots`` (trials at once);
    the whole protocol, with :class:`Outcome`, is
    :class:`ato.hyperopt.executors.Executor`.  Check one with ``python -m
    ato.hyperopt.executors.conformance NAME``."""

    PLUGIN_NAME: ClassVar[str]

    def map(self, fn, items) -> list:
        """One ``Outcome`` per item, in item order; an objective's exception is an
        outcome, never raised."""

    def submit(self, fn, item):
        """Start ``fn(item)``; return a handle for ``wait_any``."""

    def wait_any(self, handles) -> tuple:
        """``(the first handle done, its Outcome)``."""

    def close(self) -> None:
        """Release workers; idempotent."""


from ato.artifacts import ArtifactStore  # noqa: E402  (the store seam's interface)

INTERFACES = {"format": ConfigFormat, "source": ConfigSource, "tracker": TrackerBackend,
              "search": SearchAlgorithm, "command": Command, "store": ArtifactStore,
              "executor": SearchExecutor}


def config_data(data, path: str):
    """``data`` when it is what a config file must hold — a dict, or a list of dicts —
    else :class:`ato.errors.ConfigFileError` naming ``path`` and what it holds instead.
    For a format's ``loads``, on the data it parsed."""
    from ato.errors import ConfigFileError
    from ato.representable import a_type

    if isinstance(data, list):
        for i, item in enumerate(data):
            if not isinstance(item, dict):
                raise ConfigFileError(path, f"the top level must be a mapping (or a list of "
                                            f"mappings), but item {i} of its list is "
                                            f"{a_type(item)}")
        return data
    if not isinstance(data, dict):
        raise ConfigFileError(path, f"the top level must be a mapping, not {a_type(data)}")
    return data


def missing_members(cls, interface) -> list[str]:
    """The members of ``interface`` that ``cls`` lacks."""
    names = set(getattr(interface, "__annotations__", {}))
    names |= {n for n in vars(interface) if not n.startswith("_")}
    names -= set(getattr(interface, "__optional__", ()))
    return sorted(n for n in names if not hasattr(cls, n))
