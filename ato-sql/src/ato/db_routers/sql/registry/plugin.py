"""Entry point of the registry: ``ato models``, ``ato data``, ``ato store`` and the
built-in local artifact store (``file://`` URLs and plain paths)."""

from ato.plugins import hookimpl


@hookimpl
def ato_register_commands():
    from .commands import DataCommand, ModelsCommand, StoreCommand

    return [ModelsCommand, DataCommand, StoreCommand]


@hookimpl
def ato_register_artifact_stores():
    from ato.artifacts import LocalStoreBackend

    return LocalStoreBackend
