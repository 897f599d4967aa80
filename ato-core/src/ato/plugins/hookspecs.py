"""The hook specifications: every seam where a plugin extends Ato.

Each hook takes no arguments and returns a class (or a list or tuple of classes) carrying
a ``PLUGIN_NAME``, or ``None`` / ``[]`` to provide nothing (e.g. when an optional
dependency is missing; not an error).  Core calls each plugin's implementation on its own, checks every class
against the seam's interface (:mod:`ato.plugins.interfaces`) and reports, rather than
raises, what is wrong, so one broken plugin never breaks another.
"""

import pluggy

hookspec = pluggy.HookspecMarker("ato")


@hookspec
def ato_register_formats():
    """Return config-format classes (:class:`~ato.plugins.interfaces.ConfigFormat`).

    Chosen by file suffix in ``ADict.from_file``, ``ADict.load`` and ``ADict.dump``.
    """


@hookspec
def ato_register_config_sources():
    """Return config-source classes (:class:`~ato.plugins.interfaces.ConfigSource`).

    Chosen by the ADict method called (``load_mm_config``, ``compose_hierarchy``).
    """


@hookspec
def ato_register_trackers():
    """Return tracker-backend classes (:class:`~ato.plugins.interfaces.TrackerBackend`).

    Chosen by the URL scheme of ``experiment.sql.db_path`` (``sqlite``, ``postgresql``…).
    """


@hookspec
def ato_register_search_algorithms():
    """Return search-algorithm classes (:class:`~ato.plugins.interfaces.SearchAlgorithm`).

    Chosen by ``PLUGIN_NAME`` (``ato.hyperopt.get_algorithm('hyperband')``) or used as
    classes.
    """


@hookspec
def ato_register_commands():
    """Return ``ato`` subcommand classes (:class:`~ato.plugins.interfaces.Command`).

    Chosen by the subcommand name: ``ato <PLUGIN_NAME> ...``.
    """


@hookspec
def ato_register_artifact_stores():
    """Return artifact-store classes (:class:`~ato.artifacts.ArtifactStore`).

    Chosen by the URL scheme of a store (``file`` is built in; ``s3``… from plugins).
    """


@hookspec
def ato_register_executors():
    """Return search-executor classes (:class:`~ato.plugins.interfaces.SearchExecutor`).

    Chosen by ``PLUGIN_NAME`` in a search's ``executor=`` option
    (``ato.hyperopt.executors.get_executor('ray', num_gpus=1)``).
    """
